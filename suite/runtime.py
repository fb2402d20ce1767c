"""Devices, precision, XLA, distribution and the tf.data input: the suite's
TensorFlow-specific code (with ``suite.cluster``, for several machines).

``configure`` is called once, before any model is built. Under the TensorFlow backend
it sets threads, GPU memory growth, op determinism, logical CPU devices and the
``tf.distribute`` strategy; under JAX it uses ``keras.distribution`` when several
devices are visible. TensorFlow is imported only when it is the backend.

CPU defaults, measured on the 2-core AVX-512 machine (Keras 3.15, TF 2.21, batch 128,
``fit`` on random in-memory data, images/s without XLA -> with XLA, best of two runs):
shallownet 6,307 -> 4,245, lenet 1,173 -> 1,172, minivggnet 696 -> 199, resnet20 297 ->
218, resnet56 149 -> 37, allcnn_c 118 -> 47. TF's oneDNN kernels beat XLA's CPU code for
every model but LeNet (a tie), so ``jit_compile: auto`` is off on the CPU and on for
GPUs. Other CPU findings that shaped the suite: ``fit`` on NumPy arrays is itself slow here (Keras'
tf.data array pipeline competes for the two cores: MiniVGGNet 397 images/s against 725
for its bare ``train_on_batch`` step, ResNet-20 about 390 against 510), so train.py
feeds uint8 batches from its own ``tf.data`` pipeline (``tf_batches``, see
``suite.pipeline``); and TF's fused batch norm (``FusedBatchNormV3``) was no faster than
Keras' batch norm (299 against 298 images/s for ResNet-20), so the models keep
``keras.layers.BatchNormalization``.
"""

import contextlib
import os
from dataclasses import dataclass, field

import keras


@dataclass
class Runtime:
    backend: str
    devices: list            # names of the devices used
    accelerator: str         # "cpu" or "gpu"
    precision: str
    jit_compile: bool
    strategy_name: str
    strategy: object = None  # a tf.distribute strategy, or None
    notes: list = field(default_factory=list)
    compute_capability: tuple = (0, 0)
    augment_in: str = "model"  # where flip-and-crop runs: "model" or "input" (the tf.data input)
    steps_per_execution: int = 1

    def scope(self):
        """Build and compile the model inside this (the strategy's scope under TF)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync if self.strategy is not None else max(1, len(self.devices))


def configure(rt_cfg, seed, deterministic):
    """Set up the backend as ``rt_cfg`` (the config's runtime section) asks; returns a Runtime."""
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        runtime = _configure_tensorflow(rt_cfg, deterministic)
    elif backend == "jax":
        runtime = _configure_jax(rt_cfg)
    else:
        runtime = Runtime(backend, ["cpu"], "cpu", "float32", False, "none")
    runtime.precision = _precision(rt_cfg["precision"], runtime)
    keras.mixed_precision.set_dtype_policy(runtime.precision)
    jit = rt_cfg["jit_compile"]
    runtime.jit_compile = (runtime.accelerator == "gpu" or backend == "jax") if jit == "auto" else bool(jit)
    runtime.augment_in = _augment_in(rt_cfg["augment_in"], backend)
    runtime.steps_per_execution = _steps_per_execution(rt_cfg["steps_per_execution"], backend, runtime.strategy)
    return runtime


STEPS_PER_EXECUTION = 8  # under TensorFlow, by default; see _steps_per_execution


def _steps_per_execution(asked, backend, strategy=None):
    """Under TensorFlow ``fit`` runs STEPS_PER_EXECUTION training steps per call of its
    compiled step by default (a ``tf.while_loop`` in the graph), so that the Python work
    between steps (the call, the callbacks, the logs) is paid once per execution. On the
    2-core CPU, ShallowNet's train.py epochs (flip-and-crop on) against its bare step
    (``python bench/throughput.py --models shallownet --set
    runtime.steps_per_execution=N``, one run after the other): N=1 0.954 and 0.913, N=4
    1.035, N=8 1.044 and 1.042, N=16 1.070: about 1-1.5 ms of a 15 ms step. Networks
    whose steps take 100 ms or more should gain under 1% (an estimate from that, not
    measured). The cost is granularity: batch callbacks (the NaN and Ctrl-C checks,
    progress bars) see one batch per execution, which for All-CNN-C on this CPU (about
    1.1 s a step) is about 9 s. The tf.data input holds one epoch, so an epoch's last execution stops at its
    end. Under JAX it stays at 1: not measured there. Under a ``tf.distribute`` strategy
    Keras' multi-step loop fails in TF 2.21 ("You must feed a value for placeholder
    tensor" in ``multi_step_on_iterator``, MirroredStrategy over two logical CPUs), so
    there it is 1 as well, and more is refused."""
    if strategy is not None:
        if asked not in ("auto", 1):
            from suite.errors import UserError
            raise UserError(f"runtime.steps_per_execution: {asked} fails under a tf.distribute strategy "
                            f"in this TensorFlow; use 1 or auto")
        return 1
    if asked != "auto":
        return asked
    return STEPS_PER_EXECUTION if backend == "tensorflow" else 1


def _augment_in(asked, backend):
    """Flip-and-crop runs in the tf.data input under TensorFlow, by default: there it is
    one gather from a copy of the data padded once, on tf.data's threads beside the step
    (``RandomFlipCrop``; ``python bench/preprocessing.py``: 0.6-0.8 ms a batch of 128,
    1.0-1.4 ms of CPU, against 0.2-0.3 ms and 0.3-0.5 ms for the plain gather of the batch).
    Elsewhere it runs in the model, on the accelerator."""
    if asked == "input" and backend != "tensorflow":
        from suite.errors import UserError
        raise UserError(f"runtime.augment_in: input needs the TensorFlow backend (a tf.data input); "
                        f"this is {backend}: use model or auto")
    return ("input" if backend == "tensorflow" else "model") if asked == "auto" else asked


def _precision(asked, runtime):
    if asked != "auto":
        return asked
    if runtime.accelerator != "gpu":
        return "float32"
    # bfloat16 needs compute capability 8.0 (Ampere) or newer; older GPUs get float16.
    return "mixed_bfloat16" if runtime.compute_capability >= (8, 0) else "mixed_float16"


def _configure_tensorflow(rt_cfg, deterministic):
    import tensorflow as tf

    from suite import cluster
    from suite.quiet import native_stderr_silenced

    if rt_cfg["threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(rt_cfg["threads"])
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    with native_stderr_silenced():  # "failed call to cuInit" on machines without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    notes = []
    for gpu in gpus:
        if rt_cfg["memory_growth"]:
            tf.config.experimental.set_memory_growth(gpu, True)
    cpus = tf.config.list_physical_devices("CPU")
    if not gpus and rt_cfg["cpu_devices"] > 1:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * rt_cfg["cpu_devices"])
    strategy, strategy_name = None, "none"
    wanted = rt_cfg["strategy"]
    if wanted == "multiworker" or (wanted == "auto" and os.environ.get("TF_CONFIG")):
        strategy, strategy_name = cluster.tf_strategy()  # first: it configures TF's context
    logical = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    names = [d.name for d in logical]
    if strategy is None and (wanted == "mirrored" or (wanted == "auto" and len(names) > 1)):
        strategy = tf.distribute.MirroredStrategy(names)
        strategy_name = f"MirroredStrategy over {len(names)} devices"
    runtime = Runtime("tensorflow", names, "gpu" if gpus else "cpu", "", False, strategy_name, strategy, notes)
    runtime.compute_capability = _tf_compute_capability(tf, gpus)
    return runtime


def _tf_compute_capability(tf, gpus):
    if not gpus:
        return (0, 0)
    details = tf.config.experimental.get_device_details(gpus[0])
    return tuple(details.get("compute_capability", (0, 0)))


def _configure_jax(rt_cfg):
    import jax

    devices = jax.devices()
    accelerator = "gpu" if devices[0].platform == "gpu" else "cpu"
    strategy_name = "none"
    if len(devices) > 1 and rt_cfg["strategy"] in ("auto", "mirrored"):
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        strategy_name = f"keras.distribution.DataParallel over {len(devices)} devices"
    runtime = Runtime("jax", [str(d) for d in devices], accelerator, "", True, strategy_name)
    cc = getattr(devices[0], "compute_capability", "0.0") if accelerator == "gpu" else "0.0"
    runtime.compute_capability = tuple(int(p) for p in str(cc).split(".")[:2])
    return runtime


def tf_batches(x, y, batch_size, seed, epoch, one_hot, flip_crop=None):
    """A ``tf.data`` dataset of one epoch of ``(uint8 images, labels)`` batches, in
    ``epoch_order``. Each pass over it (each ``iter``) serves the next epoch that
    ``epoch`` (an ``EpochCounter``) counts; train.py's ``EpochOrder`` callback sets the
    first when ``fit`` begins. Its cardinality is known, so ``fit`` opens one pass per
    epoch, as soon as an epoch's last batch is taken, and a multi-step execution
    (``steps_per_execution``) stops at the epoch's end instead of running on into the
    next one. Only the order is made in Python, once per pass.

    With ``flip_crop`` (a ``RandomFlipCrop`` layer) each batch is flipped and cropped
    here, by one gather from a copy of ``x`` padded once, with each image's move drawn
    from ``(seed, epoch, step)``: a resumed run draws what an uninterrupted one would,
    and the order of tf.data's parallel calls does not matter."""
    import tensorflow as tf

    from suite.config import steps_per_epoch
    from suite.pipeline import epoch_order

    n, steps = len(x), steps_per_epoch(len(x), batch_size)
    labels = tf.constant(y)
    if flip_crop is None:
        images = tf.constant(x)
    else:
        flip_crop.build((None, *x.shape[1:]))
        pixels = tf.reshape(flip_crop.padded(tf.constant(x)), (-1, x.shape[-1]))

    def this_epoch():
        number = epoch.take()
        yield number, epoch_order(seed, number, n)

    def batches_of(epoch_number, order):
        return tf.data.Dataset.range(steps).map(
            lambda i: (epoch_number, i, order[i * batch_size:(i + 1) * batch_size]))

    def gather(epoch_number, step, idx):
        if flip_crop is None:
            batch_images = tf.gather(images, idx)
        else:
            key = tf.random.experimental.stateless_fold_in(tf.stack([tf.cast(seed, tf.int64), epoch_number]), step)
            moves = tf.random.stateless_uniform(tf.shape(idx), key, 0, flip_crop.moves, tf.int32)
            batch_images = flip_crop.apply(pixels, idx, moves, take=tf.gather)
        batch_labels = tf.gather(labels, idx)
        return batch_images, tf.one_hot(batch_labels, 10) if one_hot else batch_labels

    signature = (tf.TensorSpec([], tf.int64), tf.TensorSpec([n], tf.int64))
    ds = tf.data.Dataset.from_generator(this_epoch, output_signature=signature).flat_map(batches_of)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    return _without_autotune(ds.apply(tf.data.experimental.assert_cardinality(steps)))


def tf_eval_batches(x, y, batch_size):
    """The validation data as ``fit`` would batch it, as a ``tf.data`` dataset without autotune."""
    import tensorflow as tf

    return _without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(2))


def _without_autotune(ds):
    """``ds`` with tf.data's autotuning off. ``fit`` opens a new iterator over its data
    every epoch, and deleting an autotuned iterator waits for the autotuning thread: with it on, each epoch of ShatheNet v1.1 (2 batches, 2-core CPU)
    stalled for about a training step before its first batch, and for about a second at
    the end of validation, every other epoch; All-CNN-C's for 0.7-1.4 s. Turned off
    earlier, it made no difference to the input's speed."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def device_description(runtime):
    """A short human description of the hardware, for headers and sidecars."""
    if runtime.accelerator == "gpu":
        kind = ""
        if runtime.backend == "jax":
            import jax
            kind = jax.devices()[0].device_kind
        else:
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")
            kind = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "GPU"
        return f"{len(runtime.devices)} x {kind}"
    return f"CPU ({os.cpu_count()} cores)"
