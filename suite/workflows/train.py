"""Training a config: one run, new or resumed, into its run folder (``suite.api.train``
runs sweeps of them, ``suite.workflows.sweep``).

The run folder's files are listed in ``suite/commands/train.py``; ``run(options)`` takes
a ``TrainOptions``, which ``suite.api.train`` fills from its arguments.
"""

import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import keras

from suite import models
from suite.analysis.model_files import summary_text, write_diagram
from suite.analysis.reports import scores_on_test
from suite.callbacks import (BestCheckpoint, LearningRateLogger, StopAfterEpoch, StopOnNaN, StopOnSignal,
                             TensorBoard, TrainingDiverged, TrainingInterrupted, TrainingMonitor, TrainingState,
                             restore_state)
from suite.callbacks.checkpoints import epochs_saved, save_weights_atomic
from suite.callbacks.training_monitor import load_history
from suite.config import dump_config, load_config, monitor_mode
from suite.core import cpu
from suite.core.atomic import remove_temporaries, write_json, write_text
from suite.core.errors import UserError, WriteError, one_line
from suite.core.folders import new_folder
from suite.core.lock import lock_folder
from suite.core.outcome import Outcome
from suite.core.provenance import provenance
from suite.data import cifar10 as datasets
from suite.data import whitening
from suite.data.augment import augmentation
from suite.data.pipeline import steps_per_epoch, training_input, validation_input
from suite.data.preprocessing import ALTERNATING, adapt_to_data, fill_colour, scaling_layer, wrap
from suite.training import cluster
from suite.training import finetune
from suite.training.optim import OPTIMIZERS, build_optimizer, decay_mode, l2_for_model
from suite.training.runtime import batch_norm_line, configure, device_description, fuse_batch_norm
from suite.training.schedules import build_schedule, learning_rate_at
from suite.weights.sidecar import describe_weights
from suite.workflows import sweep


@dataclass
class TrainOptions:
    """One training: a new run of ``config`` (with ``overrides``) or ``resume`` of a run folder."""
    config: object = None       # a config file, a shipped config's name or a dict (suite.config.load_config)
    overrides: list = field(default_factory=list)  # ``--set`` items, "key.sub=value" (values are YAML)
    resume: str | None = None   # a run folder to continue
    stop_after: int | None = None  # stop cleanly after this epoch
    dry_run: bool = False       # check, build and summarise; nothing trained or written


@dataclass
class Trainer:
    """What ``build`` makes: the network, the compiled training model around it, and the
    pieces the input and the callbacks need."""
    net: object
    model: object
    flip_crop: object       # the RandomFlipCrop (in the model or for the tf.data input), or None
    schedule: object
    steps: int              # per epoch
    one_hot: int            # classes to one-hot encode labels into (label smoothing), 0: sparse labels
    init: str = ""          # the header's line on model.init and model.freeze


def run(options, extra_callbacks=()):
    """One training (``TrainOptions``); the exit status, an ``Outcome`` that carries the run
    folder, the trained network and model, the config and the metrics. ``extra_callbacks``
    run before the suite's own (``bench/throughput.py`` times bare training steps between
    epochs with one)."""
    with contextlib.ExitStack() as locks:  # the run folder's lock, held until the run ends
        return run_one(options, extra_callbacks, locks)


def run_one(args, extra_callbacks, locks):
    """A new run (``--config``) or a resumed one; ``locks`` holds its folder's lock."""
    started = time.perf_counter()
    cfg = read_config(args)
    if args.resume and not args.dry_run:
        hold(args.resume, "run folder", locks)  # before anything but its config.yaml is read, or anything changed
    splits = datasets.prepare(cfg["data"], cfg["training"]["seed"], own_whitening(args))
    classes_for_the_model(cfg, splits)
    splits = finetune.with_init_scaling(cfg["model"], splits)
    keras.backend.clear_session()  # layer names as in a fresh process, which model.freeze names
    runtime = configure(cfg["runtime"], cfg["training"]["seed"], cfg["training"]["deterministic"])
    trainer = build(cfg, splits, runtime, resuming=bool(args.resume))
    if args.dry_run:
        print(header(cfg, trainer, splits, runtime, None))
        trainer.net.summary()
        return Outcome(0, config=cfg, net=trainer.net, model=trainer.model)
    run_dir = cluster.run_folder(args.resume, lambda: new_run_dir(cfg, locks))  # private on a worker but the chief
    print(header(cfg, trainer, splits, runtime, run_dir))
    try:
        metrics = train_into(run_dir, args, cfg, trainer, splits, runtime, extra_callbacks, started)
    except WriteError as e:
        return Outcome(report_write_failure(run_dir, e), folder=run_dir, config=cfg)
    return Outcome(report_outcome(args, run_dir, metrics), folder=run_dir, config=cfg, metrics=metrics,
                   net=trainer.net, model=trainer.model)


def train_into(run_dir, args, cfg, trainer, splits, runtime, extra_callbacks, started):
    """Open the run folder, train, and write the final weights and ``metrics.json``; the metrics."""
    initial_epoch = open_run_folder(args, run_dir, cfg, trainer, splits)
    record_provenance(run_dir, splits, runtime, initial_epoch)
    inputs = make_inputs(cfg, trainer, splits, runtime, initial_epoch)
    callbacks = make_callbacks(args, cfg, trainer, splits, runtime, run_dir, initial_epoch, inputs, extra_callbacks)
    status, reason = fit(cfg, trainer, inputs, callbacks, initial_epoch)
    metrics = final_metrics(cfg, trainer, splits, runtime, run_dir, callbacks.best, status, reason, started)
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def hold(folder, what, locks):
    """Lock ``folder`` (``suite.core.lock``) until ``locks`` closes, so that no other process
    writes it meanwhile. In a cluster only the chief locks it: the other workers read it
    and write private copies (``suite.training.cluster``)."""
    if cluster.is_chief_process():
        locks.enter_context(lock_folder(folder, what))


def read_config(args):
    """The config from ``--config`` and ``--set``, or the run folder's own with ``--resume``."""
    if not args.resume:
        return load_config(args.config, args.overrides)
    run_dir = Path(args.resume)
    if args.overrides:
        raise UserError("--resume continues a run with its own config.yaml; --set cannot change it")
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir}: no config.yaml; not a run folder that can be resumed")
    return load_config(run_dir / "config.yaml")


def build(cfg, splits, runtime, resuming=False):
    """The network (started from ``model.init`` unless ``resuming``, which restores its own
    state), its scaling and augmentation, the schedule and optimizer, compiled."""
    tc = cfg["training"]
    steps = steps_per_epoch(len(splits.x_train), tc["batch_size"])
    with runtime.scope():
        net = models.create(cfg["model"]["name"], **cfg["model"]["params"], weight_decay=l2_for_model(cfg))
        fuse_batch_norm(net, runtime)
        scaling = scaling_layer(splits.mean, splits.std, splits.whitening)
        if not resuming:
            adapt_to_data(net, scaling, splits.x_train)
        init = start_from(cfg["model"], net, resuming)
        flip_crop, other_augmentation = augmentation(cfg["augment"], tc["seed"], fill_colour(splits.mean))
        if flip_crop is not None and flip_crop.flip == ALTERNATING and runtime.augment_in == "model":
            raise UserError("augment.flip: alternating needs each image's index and epoch, which only the input "
                            "pipeline knows; set runtime.augment_in: input")
        in_model = flip_crop if runtime.augment_in == "model" else None  # else the input pipeline does it
        model = wrap(net, scaling, in_model, other_augmentation)
        schedule = build_schedule(cfg, steps)
        one_hot = len(splits.class_names) if tc["label_smoothing"] > 0 else 0
        loss = (keras.losses.CategoricalCrossentropy(label_smoothing=tc["label_smoothing"]) if one_hot
                else keras.losses.SparseCategoricalCrossentropy())
        model.compile(optimizer=build_optimizer(cfg, schedule, steps), loss=loss, metrics=["accuracy"],
                      jit_compile=runtime.jit_compile, steps_per_execution=runtime.steps_per_execution)
    return Trainer(net, model, flip_crop, schedule, steps, one_hot, init)


def classes_for_the_model(cfg, splits):
    """With ``data.classes``, the network gets that many outputs (``model.params.num_classes``,
    recorded in the run's config and sidecars)."""
    params, k = cfg["model"]["params"], len(splits.class_names)
    if params.get("num_classes", k) != k:
        raise UserError(f"model.params.num_classes: {params['num_classes']} for the {k} classes of data.classes")
    if k != 10:
        params["num_classes"] = k


def start_from(model_cfg, net, resuming):
    """``model.init`` (unless ``resuming``: the run's state holds the weights) and
    ``model.freeze`` applied to ``net``; one line for the header ('' if neither)."""
    parts = []
    if model_cfg["init"] and not resuming:
        path, fresh = finetune.load_matching(net, model_cfg["init"])
        parts.append(f"weights from {path}, with their input scaling"
                     + (f" (fresh, shapes differ: {', '.join(fresh)})" if fresh else ""))
    if model_cfg["freeze"]:
        frozen = finetune.freeze(net, model_cfg["freeze"])
        parts.append(f"frozen: {', '.join(frozen)}")
    return "; ".join(parts)


def new_run_dir(cfg, locks=None):
    """``<output.dir>/<name>-<timestamp>``, holding its config.yaml from the first moment
    (``suite.core.folders.new_folder``) and, given ``locks``, locked from it too; an existing
    folder is never reused."""
    def fill(draft):
        if locks is not None:
            hold(draft, "run folder", locks)
        write_text(draft / "config.yaml", dump_config(cfg))

    return new_folder(cfg["output"]["dir"], cfg["name"], "output.dir: cannot write run folders into", fill=fill)


def own_whitening(args):
    """A resumed run's ZCA whitening (``suite.data.whitening``), so that it goes on with exactly
    the one it started with; None for a new run or another normalisation."""
    path = Path(args.resume) / whitening.FILE if args.resume else None
    return whitening.read(path) if path is not None and path.is_file() else None


def open_run_folder(args, run_dir, cfg, trainer, splits):
    """Write a new run's model files (and ZCA whitening), or restore a resumed run's state;
    the epochs already done."""
    if not args.resume:
        write_text(run_dir / "model.txt", summary_text(trainer.net))
        write_diagram(trainer.net, run_dir / "model.png")
        if splits.whitening is not None:
            splits.whitening.save(run_dir / whitening.FILE)
        return 0
    remove_temporaries(run_dir)  # half-written files of a killed process; the real ones are intact
    if not (run_dir / "state.h5").exists():
        print(f"{run_dir} has no complete epoch yet: starting it from epoch 1")
        return 0
    epochs = cfg["training"]["epochs"]
    done = restore_state(trainer.model, run_dir / "state.h5")
    if done >= epochs and sweep.finished(run_dir):
        raise UserError(f"{run_dir}: all {epochs} epochs are already done")
    print(f"resuming {run_dir} after epoch {done} of {epochs}"
          + ("; only its final weights and metrics are missing" if done >= epochs else ""))
    return done


PROVENANCE = "provenance.json"


def record_provenance(run_dir, splits, runtime, initial_epoch):
    """Add this process to the run's ``provenance.json``: one entry for the process that
    started the run and one for each that resumed it (``suite.core.provenance``)."""
    path = run_dir / PROVENANCE
    sessions = read_provenance(run_dir) if initial_epoch or path.exists() else []
    entry = provenance(runtime.backend, device_description(runtime), runtime.precision, splits.identity)
    write_json(path, [*sessions, {"from_epoch": initial_epoch + 1, **entry}])


def read_provenance(run_dir):
    """The entries of ``provenance.json`` ([] for a run from before the suite wrote it)."""
    path = run_dir / PROVENANCE
    try:
        sessions = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return sessions if isinstance(sessions, list) else []


class Inputs(NamedTuple):
    train: object
    train_steps: object     # steps per epoch for fit, or None (the input knows)
    callbacks: list         # the input's epoch counter
    val: object
    val_batch_size: object


def make_inputs(cfg, trainer, splits, runtime, initial_epoch):
    """The training input from ``initial_epoch`` on (``suite.data.pipeline``) and the validation input."""
    tc = cfg["training"]
    flip_crop = trainer.flip_crop if runtime.augment_in == "input" else None
    train, steps, order_callbacks = training_input(splits.x_train, splits.y_train, tc["batch_size"], tc["seed"],
                                                   initial_epoch, trainer.one_hot, runtime.backend, flip_crop)
    y_val = keras.utils.to_categorical(splits.y_val, trainer.one_hot) if trainer.one_hot else splits.y_val
    val, val_batch_size = validation_input(splits.x_val, y_val, tc["eval_batch_size"], runtime.backend)
    if cluster.active():
        train, val = cluster.shard_by_data(train), cluster.shard_by_data(val)
    return Inputs(train, steps, order_callbacks, val, val_batch_size)


class Callbacks(NamedTuple):
    all: list               # in the order they must run
    best: BestCheckpoint
    monitor: TrainingMonitor
    signals: StopOnSignal


def make_callbacks(args, cfg, trainer, splits, runtime, run_dir, initial_epoch, inputs, extra_callbacks):
    """The run's callbacks: guards, the input's epoch counter, logs, checkpoints, stops."""
    cb, mode = cfg["callbacks"], monitor_mode(cfg)

    def describe(epoch, checkpoint):
        return sidecar(cfg, splits, runtime, run_dir, epoch, checkpoint)

    best = BestCheckpoint(trainer.net, run_dir / "best.weights.h5", cb["monitor"], mode,
                          lambda epoch, value: describe(epoch, {"kind": "best", "epoch": epoch,
                                                                "monitor": cb["monitor"], "value": value,
                                                                "selected_on": splits.validation}))
    monitor = TrainingMonitor(run_dir / "history.json", run_dir / "curves.png", cfg["name"], len(splits.x_train),
                              start_epoch=initial_epoch)
    signals = StopOnSignal()
    callbacks = [
        *extra_callbacks,
        signals,                             # Ctrl-C: stop within a batch, keep the last complete epoch
        StopOnNaN(cb["nan_check_every"]),    # before anything is saved
        *inputs.callbacks,                   # the epoch the batches start at
        LearningRateLogger(trainer.schedule, trainer.steps),
        monitor,
        best,
        TrainingState(run_dir / "state.h5", lambda epoch: describe(epoch, {"kind": "training-state"})),
    ]
    if cb["early_stopping"]:
        callbacks.append(keras.callbacks.EarlyStopping(cb["monitor"], patience=cb["early_stopping"], mode=mode))
    if cb["tensorboard"]:
        callbacks.append(TensorBoard(str(run_dir / "tensorboard"), write_graph=False))
    if args.stop_after:
        callbacks.append(StopAfterEpoch(args.stop_after))  # last: after this epoch's checkpoints and logs
    return Callbacks(callbacks, best, monitor, signals)


def sidecar(cfg, splits, runtime, run_dir, epoch, checkpoint):
    """The JSON beside a weights file of this run (``suite.weights.sidecar``)."""
    return describe_weights(cfg, splits.preprocessing, splits.class_names, epoch=epoch, run_dir=str(run_dir),
                            device=device_description(runtime), checkpoint=checkpoint)


def fit(cfg, trainer, inputs, callbacks, initial_epoch):
    """``model.fit``; ``(status, reason)``: completed, interrupted (Ctrl-C, --stop-after) or diverged."""
    tc = cfg["training"]
    status, reason = "completed", None
    try:
        trainer.model.fit(inputs.train, steps_per_epoch=inputs.train_steps, validation_data=inputs.val,
                          epochs=tc["epochs"], initial_epoch=initial_epoch, callbacks=callbacks.all,
                          verbose=progress(tc["verbose"]), validation_batch_size=inputs.val_batch_size,
                          shuffle=False)  # the input shuffles, by (seed, epoch)
    except TrainingInterrupted as e:
        status, reason = "interrupted", f"stopped by {e}"
    except TrainingDiverged as e:
        status, reason = "diverged", str(e)
    except WriteError:
        callbacks.monitor.abandon()  # a drawing under way ends before the error is reported
        raise
    finally:
        callbacks.signals.restore()
    callbacks.monitor.wait()
    return status, reason


def progress(verbose):
    """Keras' ``verbose`` for ``training.verbose``: its progress bar (1), redrawn with
    carriage returns, only on a terminal; where output is a log file or a notebook cell,
    one line per epoch (2) instead."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


def final_metrics(cfg, trainer, splits, runtime, run_dir, best, status, reason, started):
    """``metrics.json``: how the run went and, if it completed, the final and best test figures."""
    tc, net = cfg["training"], trainer.net
    history = load_history(run_dir / "history.json")
    images_per_sec = history.get("train_images_per_sec")
    metrics = {"status": status, "reason": reason, "name": cfg["name"], "model": cfg["model"]["name"],
               "parameters": net.count_params(), "epochs_planned": tc["epochs"],
               "epochs_run": len(history.get("epoch", [])), "monitor": cfg["callbacks"]["monitor"],
               "best_epoch": best.best_epoch, "best_value": best.best,
               "train_time_sec": round(sum(history.get("epoch_time", [])), 2),
               "session_wall_time_sec": round(time.perf_counter() - started, 2),
               "train_images_per_sec": round(statistics.median(images_per_sec), 1) if images_per_sec else None,
               "train_images": len(splits.x_train), "test_images": len(splits.x_test),
               "data": splits.identity, "is_sample": splits.is_sample,
               "backend": runtime.backend, "device": device_description(runtime), "precision": runtime.precision,
               "provenance": read_provenance(run_dir)}
    if status != "completed":
        return metrics
    save_weights_atomic(net, run_dir / "final.weights.h5",
                        sidecar(cfg, splits, runtime, run_dir, metrics["epochs_run"], {"kind": "final"}))
    metrics["final_val_accuracy"] = history["val_accuracy"][-1] if history.get("val_accuracy") else None
    if not len(splits.x_test):  # a Kaggle folder: no test labels
        return metrics
    if tc["tta"]:
        metrics["tta"] = tc["tta"]
    metrics.update(scores_on_test(trainer.model, splits.x_test, splits.y_test, tc["eval_batch_size"], "final",
                                  tc["tta"]))
    if best.best_epoch is not None:
        net.load_weights(str(run_dir / "best.weights.h5"))
        metrics.update(scores_on_test(trainer.model, splits.x_test, splits.y_test, tc["eval_batch_size"], "best"))
    return metrics


def report_outcome(args, run_dir, metrics):
    """The closing line(s) and the exit status: 0 done (or stopped as asked), 130 interrupted, 1 diverged."""
    done, reason = metrics["epochs_run"], metrics["reason"]
    if metrics["status"] == "interrupted":
        when = f"after epoch {done}" if args.stop_after else f"during epoch {done + 1}"
        print(f"\nTraining {reason} {when}; {how_to_go_on(run_dir, done)}", file=sys.stderr)
        return 0 if args.stop_after and done >= args.stop_after else 130
    if metrics["status"] == "diverged":
        print(f"\nerror: training stopped: {reason}. The last good checkpoints (epoch {done}) "
              f"are kept in {run_dir}; metrics.json records why.", file=sys.stderr)
        return 1
    if "final_test_accuracy" not in metrics:
        print(f"\ndone: {done} epochs in {metrics['train_time_sec']:.0f} s; validation accuracy "
              f"{metrics['final_val_accuracy']:.4f} (final; the data has no test labels); {run_dir}")
        return 0
    print(f"\ndone: {done} epochs in {metrics['train_time_sec']:.0f} s; "
          f"test accuracy {metrics['final_test_accuracy']:.4f} (final), "
          f"{metrics.get('best_test_accuracy', float('nan')):.4f} (best, epoch {metrics['best_epoch']}); {run_dir}")
    return 0


def report_write_failure(run_dir, error):
    """A write that failed during the run (a full disk, a quota, a read-only folder, an
    I/O error): one error line, and how to go on from the last complete epoch, whose
    files are whole; exit status 1."""
    print(f"\nerror: {one_line(error)}; {how_to_go_on(run_dir, epochs_saved(run_dir / 'state.h5'))}",
          file=sys.stderr)
    return 1


def how_to_go_on(run_dir, done):
    """What a stopped run keeps, and the command that resumes it."""
    saved = f"epochs 1-{done} are saved in {run_dir}" if done else "no epoch was complete yet"
    return f"{saved}.\nResume with: python train.py --resume {run_dir}"


DECAY_KINDS = {"l2": "L2 on kernels", "decoupled": "decoupled", "coupled": "coupled, every trained variable"}


def header(cfg, trainer, splits, runtime, run_dir):
    """The lines printed before training: what runs, on what, and where it goes."""
    o, s, t, a = cfg["optimizer"], cfg["schedule"], cfg["training"], cfg["augment"]
    lrs = [learning_rate_at(trainer.schedule, e * trainer.steps) for e in range(t["epochs"])]
    params = ", ".join(f"{k}={v}" for k, v in cfg["model"]["params"].items())
    augs = ", ".join(k if v is True else f"{k} {v}" for k, v in a.items() if v) or "none"
    opt = ", ".join([f"{o['name']} lr {o['lr']}"] + [f"{k} {o[k]}" for k in OPTIMIZERS.params(o["name"])])
    wd = f"{o['weight_decay']} ({DECAY_KINDS[decay_mode(cfg)]})" if o["weight_decay"] else "none"
    sched_params = ", ".join(f"{k} {v}" for k, v in s.items() if k != "name")
    sample = "  [the quick-start SAMPLE, not the full data set]" if splits.is_sample else ""
    device = device_description(runtime)
    rows = [
        ("model", f"{cfg['model']['name']}({params})  {trainer.net.count_params():,} parameters"),
        *([("start", trainer.init)] if trainer.init else []),
        ("data", f"CIFAR-10 from {splits.source}{sample}"
                 + (f"; classes {', '.join(splits.class_names)}" if cfg["data"]["classes"] else "")),
        ("sizes", f"{len(splits.x_train):,} training, {len(splits.x_val):,} validation ({splits.validation}), "
                  f"{len(splits.x_test):,} test images; normalize {cfg['data']['normalize']}"),
        ("augment", augs + (f"; flip-and-crop in the {runtime.augment_in}" if trainer.flip_crop else "")),
        ("devices", f"{device}: {', '.join(runtime.devices)}"),
        ("cpu", cpu.header_line(runtime.backend)),
        ("backend", f"{runtime.backend}, keras {keras.__version__}"),
        ("precision", f"{runtime.precision}" + (f" ({runtime.precision_note})" if runtime.precision_note else "")
                      + f"; XLA {'on' if runtime.jit_compile else 'off'}"
                      + f"; {batch_norm_line(runtime, cfg['runtime']['fused_batch_norm'])}"),
        ("strategy", runtime.strategy_name),
        ("optimizer", f"{opt}; weight decay {wd}"),
        ("schedule", f"{s['name']}" + (f" ({sched_params})" if sched_params else "")
                     + f"; lr epoch 1: {lrs[0]:.4g}, epoch {len(lrs)}: {lrs[-1]:.4g}"),
        ("training", f"{t['epochs']} epochs x {trainer.steps} steps of {t['batch_size']}, seed {t['seed']}, "
                     f"{runtime.steps_per_execution} steps per execution"
                     + (", deterministic" if t["deterministic"] else "")),
        ("run folder", str(run_dir) if run_dir else "(dry run: nothing written)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join([f"== {cfg['name']} =="] + [f"{k:<{width}}  {v}" for k, v in rows]) + "\n"
