"""Devices, precision, XLA and distribution: the suite's TensorFlow-specific set-up
(the ``tf.data`` input is in ``suite.data.pipeline``).

``configure`` is called once, before any model is built. Under the TensorFlow backend
it sets threads, GPU memory growth, op determinism, logical CPU devices and the
``tf.distribute`` strategy; under JAX it uses ``keras.distribution`` when several
devices are visible. TensorFlow is imported only when it is the backend.

``jit_compile: auto`` is off on the CPU and on for GPUs (docs/performance.md, "What makes the CPU path fast").
"""

import contextlib
import functools
import os
from dataclasses import dataclass, field

import keras

from suite.core.errors import UserError
from suite.core.quiet import native_stderr_silenced
from suite.training import cluster


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
    precision_note: str = ""  # why ``runtime.precision: auto`` chose what it chose, for the header
    fused_batch_norm: bool = False  # TensorFlow's fused kernel for Keras' BatchNormalization (fuse_batch_norm)

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
    runtime.precision, runtime.precision_note = _precision(rt_cfg["precision"], runtime)
    keras.mixed_precision.set_dtype_policy(runtime.precision)
    jit = rt_cfg["jit_compile"]
    runtime.jit_compile = (runtime.accelerator == "gpu" or backend == "jax") if jit == "auto" else bool(jit)
    runtime.augment_in = _augment_in(rt_cfg["augment_in"], backend)
    runtime.steps_per_execution = _steps_per_execution(rt_cfg["steps_per_execution"], backend, runtime.strategy)
    fused = rt_cfg["fused_batch_norm"]
    runtime.fused_batch_norm = (backend == "tensorflow" and runtime.accelerator == "cpu") if fused == "auto" \
        else bool(fused)
    if runtime.fused_batch_norm and backend != "tensorflow":
        raise UserError(f"runtime.fused_batch_norm: true needs the TensorFlow backend (this is {backend}); "
                        f"use auto or false")
    return runtime


STEPS_PER_EXECUTION = 8  # under TensorFlow, by default; see _steps_per_execution


def _steps_per_execution(asked, backend, strategy=None):
    """Under TensorFlow ``fit`` runs STEPS_PER_EXECUTION training steps per call of its
    compiled step by default (a ``tf.while_loop`` in the graph), so that the Python work
    between steps (the call, the callbacks, the logs) is paid once per execution
    (docs/performance.md, "What makes the CPU path fast"). The cost is granularity: batch
    callbacks (the NaN and Ctrl-C checks, progress bars) see one batch per execution.
    The tf.data input holds one epoch, so an epoch's last execution stops at its end.
    Under JAX it stays at 1: not measured there. Under a ``tf.distribute`` strategy
    Keras' multi-step loop fails in TF 2.21 ("You must feed a value for placeholder
    tensor" in ``multi_step_on_iterator``, MirroredStrategy over two logical CPUs), so
    there it is 1 as well, and more is refused."""
    if strategy is not None:
        if asked not in ("auto", 1):
            raise UserError(f"runtime.steps_per_execution: {asked} fails under a tf.distribute strategy "
                            f"in this TensorFlow; use 1 or auto")
        return 1
    if asked != "auto":
        return asked
    return STEPS_PER_EXECUTION if backend == "tensorflow" else 1


def _augment_in(asked, backend):
    """Flip-and-crop runs in the tf.data input under TensorFlow, by default: there it is
    one gather from a copy of the data padded once, on tf.data's threads beside the step
    (``RandomFlipCrop``; ``python bench/preprocessing.py`` times it). Elsewhere it runs
    in the model, on the accelerator, unless asked for in the input (``suite.data.pipeline.Batches``,
    in NumPy)."""
    return ("input" if backend == "tensorflow" else "model") if asked == "auto" else asked


def _precision(asked, runtime):
    """``(policy, note)``: the dtype policy for ``runtime.precision``, and for ``auto`` on
    the CPU the reason it is float32, for the run header."""
    if asked != "auto":
        return asked, ""
    if runtime.accelerator != "gpu":
        return "float32", ("auto; mixed bfloat16 stays off on the CPU: it trained MiniVGGNet to a lower accuracy, "
                           "results/studies/minivggnet_bf16/NOTE.md")
    # bfloat16 needs compute capability 8.0 (Ampere) or newer; older GPUs get float16.
    return ("mixed_bfloat16" if runtime.compute_capability >= (8, 0) else "mixed_float16"), ""


def _configure_tensorflow(rt_cfg, deterministic):
    import tensorflow as tf  # lazy: TensorFlow only under its backend

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
    import jax  # lazy: JAX only under its backend

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


def device_description(runtime):
    """A short human description of the hardware, for headers and sidecars."""
    if runtime.accelerator == "gpu":
        kind = ""
        if runtime.backend == "jax":
            import jax  # lazy: JAX only under its backend
            kind = jax.devices()[0].device_kind
        else:
            import tensorflow as tf  # lazy: TensorFlow only under its backend
            gpus = tf.config.list_physical_devices("GPU")
            kind = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "GPU"
        return f"{len(runtime.devices)} x {kind}"
    return f"CPU ({os.cpu_count()} cores)"


def batch_norm_line(runtime, asked):
    """What the header says of batch norm: the kernel and why (``asked``: the config's
    ``runtime.fused_batch_norm``)."""
    kernel = "TensorFlow's fused kernel" if runtime.fused_batch_norm else "Keras' ops"
    why = "auto: fused under TensorFlow on the CPU" if asked == "auto" else "runtime.fused_batch_norm in the config"
    return f"batch norm: {kernel} ({why})"


def fuse_batch_norm(net, runtime):
    """Run ``net``'s batch norms through TensorFlow's fused kernel when ``runtime`` says
    so; the number of layers changed.

    Keras 3 computes ``BatchNormalization`` from separate ops (mean, squared difference,
    mean, then the normalisation, and as many again for the gradient), each a pass over
    the activations; TensorFlow's ``FusedBatchNormV3`` (oneDNN's on the CPU) does the
    statistics and normalisation in one kernel and the gradient in one more, and at
    inference Grappler folds it into the convolution before it. The variables, their
    names and the saved files are Keras' own (only each layer's ``call`` is replaced),
    and the results are Keras' to float rounding: the moving variance is updated with
    the biased batch variance, as Keras does (the kernel returns the unbiased one), and
    the epsilon is the layer's (``tf.nn.fused_batch_norm`` would raise it to 1.001e-5).
    Layers it does not cover (masks, renorm, synchronised, not 4-D with channels last)
    keep Keras' ``call``. docs/performance.md has the measurement."""
    if not runtime.fused_batch_norm:
        return 0
    layers = [layer for layer in net._flatten_layers(include_self=True, recursive=True)
              if type(layer) is keras.layers.BatchNormalization and not layer.renorm and not layer.synchronized]
    for layer in layers:
        object.__setattr__(layer, "call", _fused_call(layer, layer.call))
    return len(layers)


def _fused_call(layer, keras_call):
    import tensorflow as tf  # lazy: TensorFlow only under its backend

    def call(inputs, training=None, mask=None):
        if mask is not None or len(inputs.shape) != 4 or layer.axis not in (-1, 3):
            return keras_call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, "float32")  # statistics in float32, as Keras computes them
        channels = x.shape[-1]
        scale = tf.cast(layer.gamma, "float32") if layer.scale else tf.ones([channels])
        offset = tf.cast(layer.beta, "float32") if layer.center else tf.zeros([channels])
        fused = functools.partial(tf.raw_ops.FusedBatchNormV3, x=x, scale=scale, offset=offset,
                                  epsilon=layer.epsilon, exponential_avg_factor=1.0, data_format="NHWC")
        if training and layer.trainable:
            y, mean, unbiased, *_ = fused(mean=tf.zeros([0]), variance=tf.zeros([0]), is_training=True)
            n = tf.cast(tf.size(x) // channels, "float32")
            variance = unbiased * ((n - 1.0) / n)
            m = layer.momentum
            layer.moving_mean.assign(layer.moving_mean * m + mean * (1.0 - m))
            layer.moving_variance.assign(layer.moving_variance * m + variance * (1.0 - m))
        else:
            y, *_ = fused(mean=tf.cast(layer.moving_mean, "float32"), variance=tf.cast(layer.moving_variance, "float32"),
                          is_training=False)
        return tf.cast(y, layer.compute_dtype)

    return call
