"""Train a CIFAR-10 network from a YAML config.

    python train.py --config configs/minivggnet.yaml
    python train.py --config configs/resnet20.yaml --set training.epochs=2 --set data.subset=100
    python train.py --resume outputs/resnet20-20261122-153000
    python train.py --config configs/allcnn_c.yaml --dry-run      # check, build, summarise; no training

Everything a run produces goes into its own folder ``outputs/<name>-<timestamp>/``:
the resolved ``config.yaml``, ``model.txt`` (summary) and ``model.png`` (diagram),
``history.json`` and ``curves.png`` (rewritten every epoch), ``best.weights.h5`` and
``state.h5`` (each with a ``.json`` sidecar), ``final.weights.h5`` and
``metrics.json`` at the end, and ``tensorboard/`` when enabled.
"""

import argparse
import datetime
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Keep TensorFlow's C++ start-up chatter out of the header; in a cluster also its C++ log
# of a lost worker, which suite.cluster reports in one line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if os.environ.get("TF_CONFIG") else "2")

from suite.config import SCHEDULE_KEYS, dump_config, load_config, monitor_mode, steps_per_epoch  # noqa: E402
from suite.atomic import write_json, write_text  # noqa: E402
from suite import cluster  # noqa: E402
from suite.errors import UserError, run_cli  # noqa: E402
from suite.quiet import import_keras  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description="Train a CIFAR-10 CNN from a YAML config.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="experiment config (YAML)")
    what.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=5 (repeatable; values are YAML)")
    p.add_argument("--stop-after", type=int, metavar="EPOCH",
                   help="stop cleanly after this epoch, ready for --resume (training in chunks)")
    p.add_argument("--dry-run", action="store_true", help="validate, build and summarise the model; no training")
    return p.parse_args(argv)


def main(argv=None, extra_callbacks=()):
    """``extra_callbacks`` run before the suite's own (``bench/throughput.py`` times bare
    training steps between epochs with one)."""
    return run_cli(lambda args: cluster.reporting_lost_workers(run, args, extra_callbacks), parse_args(argv))


def run(args, extra_callbacks=()):
    started = time.perf_counter()
    import_keras()
    # ------------------------------------------------------------------ config and data
    if args.resume:
        run_dir = Path(args.resume)
        if args.set:
            raise UserError("--resume continues a run with its own config.yaml; --set cannot change it")
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"{run_dir}: no config.yaml; not a run folder that can be resumed")
        cfg = load_config(run_dir / "config.yaml")
    else:
        cfg = load_config(args.config, args.set)

    from suite import data as datasets
    splits = datasets.prepare(cfg["data"], cfg["training"]["seed"])

    # ------------------------------------------------------------------ runtime and run folder
    import keras
    import models
    from suite.optim import build_optimizer, l2_for_model
    from suite.preprocessing import augmentation, fill_colour, wrap
    from suite.runtime import configure, device_description
    from suite.schedules import build_schedule, learning_rate_at

    tc = cfg["training"]
    runtime = configure(cfg["runtime"], tc["seed"], tc["deterministic"])
    if not args.dry_run:
        run_dir = cluster.run_folder(args.resume, lambda: new_run_dir(cfg))  # private on a worker but the chief

    # ------------------------------------------------------------------ model
    batch_size = tc["batch_size"]
    steps = steps_per_epoch(len(splits.x_train), batch_size)
    with runtime.scope():
        net = models.create(cfg["model"]["name"], **cfg["model"]["params"], weight_decay=l2_for_model(cfg))
        flip_crop, other_augmentation = augmentation(cfg["augment"], tc["seed"], fill_colour(splits.mean))
        in_model = flip_crop if runtime.augment_in == "model" else None  # else the input pipeline does it
        model = wrap(net, splits.mean, splits.std, in_model, other_augmentation)
        schedule = build_schedule(cfg, steps)
        one_hot = tc["label_smoothing"] > 0
        loss = (keras.losses.CategoricalCrossentropy(label_smoothing=tc["label_smoothing"]) if one_hot
                else keras.losses.SparseCategoricalCrossentropy())
        model.compile(optimizer=build_optimizer(cfg, schedule), loss=loss, metrics=["accuracy"],
                      jit_compile=runtime.jit_compile, steps_per_execution=runtime.steps_per_execution)

    print(header(cfg, net, splits, runtime, device_description(runtime), steps,
                 [learning_rate_at(schedule, e * steps) for e in range(tc["epochs"])],
                 None if args.dry_run else run_dir))
    if args.dry_run:
        net.summary()
        return 0

    # ------------------------------------------------------------------ run files
    from suite.sidecar import describe_weights

    if not args.resume:
        write_text(run_dir / "model.txt", summary_text(net))
        write_diagram(net, run_dir / "model.png")
    initial_epoch = 0
    if args.resume:
        from suite.atomic import remove_temporaries
        remove_temporaries(run_dir)  # half-written files of a killed process; the real ones are intact
    if args.resume and (run_dir / "state.h5").exists():
        from callbacks import restore_state
        initial_epoch = restore_state(model, run_dir / "state.h5")
        if initial_epoch >= tc["epochs"]:
            raise UserError(f"{run_dir}: all {tc['epochs']} epochs are already done")
        print(f"resuming {run_dir} after epoch {initial_epoch} of {tc['epochs']}")
    elif args.resume:
        print(f"{run_dir} has no complete epoch yet: starting it from epoch 1")

    def describe(epoch, **extra):
        return describe_weights(cfg, splits.preprocessing, splits.class_names, epoch=epoch,
                                run_dir=str(run_dir), device=device_description(runtime), **extra)

    # ------------------------------------------------------------------ callbacks and training
    from callbacks import (BestCheckpoint, LearningRateLogger, StopAfterEpoch, StopOnNaN, StopOnSignal,
                           TrainingDiverged, TrainingInterrupted, TrainingMonitor, TrainingState)
    from suite.pipeline import training_input, validation_input

    cb = cfg["callbacks"]
    mode = monitor_mode(cfg)
    train_data, train_steps, order_callbacks = training_input(splits.x_train, splits.y_train, batch_size, tc["seed"],
                                                              initial_epoch, one_hot, runtime.backend,
                                                              flip_crop if runtime.augment_in == "input" else None)
    best = BestCheckpoint(net, run_dir / "best.weights.h5", cb["monitor"], mode,
                          lambda epoch, value: describe(epoch, checkpoint={"kind": "best", "epoch": epoch,
                                                                          "monitor": cb["monitor"], "value": value}))
    monitor = TrainingMonitor(run_dir / "history.json", run_dir / "curves.png", cfg["name"],
                              len(splits.x_train), start_epoch=initial_epoch)
    signals = StopOnSignal()
    callbacks = [
        *extra_callbacks,
        signals,                             # Ctrl-C: stop within a batch, keep the last complete epoch
        StopOnNaN(cb["nan_check_every"]),    # before anything is saved
        *order_callbacks,                    # the epoch the batches start at
        LearningRateLogger(schedule, steps),
        monitor,
        best,
        TrainingState(run_dir / "state.h5", lambda epoch: describe(epoch, checkpoint={"kind": "training-state"})),
    ]
    if cb["early_stopping"]:
        callbacks.append(keras.callbacks.EarlyStopping(cb["monitor"], patience=cb["early_stopping"], mode=mode))
    if cb["tensorboard"]:
        from callbacks import TensorBoard
        callbacks.append(TensorBoard(str(run_dir / "tensorboard"), write_graph=False))
    if args.stop_after:
        callbacks.append(StopAfterEpoch(args.stop_after))  # last: after this epoch's checkpoints and logs

    y_val = keras.utils.to_categorical(splits.y_val, 10) if one_hot else splits.y_val
    val_data, val_batch_size = validation_input(splits.x_val, y_val, tc["eval_batch_size"], runtime.backend)
    if cluster.active():
        train_data, val_data = cluster.shard_by_data(train_data), cluster.shard_by_data(val_data)
    status, reason = "completed", None
    try:
        model.fit(train_data, steps_per_epoch=train_steps, validation_data=val_data, epochs=tc["epochs"],
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=tc["verbose"],
                  validation_batch_size=val_batch_size, shuffle=False)  # the input shuffles, by (seed, epoch)
    except TrainingInterrupted as e:
        status, reason = "interrupted", f"stopped by {e}"
    except TrainingDiverged as e:
        status, reason = "diverged", str(e)
    finally:
        signals.restore()
    monitor.wait()

    # ------------------------------------------------------------------ final evaluation and metrics
    from callbacks.training_monitor import load_history
    history = load_history(run_dir / "history.json")
    metrics = {"status": status, "reason": reason, "name": cfg["name"], "model": cfg["model"]["name"],
               "parameters": net.count_params(), "epochs_planned": tc["epochs"],
               "epochs_run": len(history.get("epoch", [])), "monitor": cb["monitor"],
               "best_epoch": best.best_epoch, "best_value": best.best,
               "train_time_sec": round(sum(history.get("epoch_time", [])), 2),
               "session_wall_time_sec": round(time.perf_counter() - started, 2),
               "train_images_per_sec": round(statistics.median(history["train_images_per_sec"]), 1)
               if history.get("train_images_per_sec") else None,
               "train_images": len(splits.x_train), "test_images": len(splits.x_test),
               "data_source": splits.source, "is_sample": splits.is_sample,
               "backend": runtime.backend, "device": device_description(runtime), "precision": runtime.precision}
    if status == "completed":
        from callbacks.checkpoints import save_weights_atomic
        save_weights_atomic(net, run_dir / "final.weights.h5", describe(metrics["epochs_run"], checkpoint={"kind": "final"}))
        metrics.update(evaluate_on_test(model, splits, tc["eval_batch_size"], "final"))
        if best.best_epoch is not None:
            net.load_weights(str(run_dir / "best.weights.h5"))
            metrics.update(evaluate_on_test(model, splits, tc["eval_batch_size"], "best"))
    write_json(run_dir / "metrics.json", metrics)

    if status == "interrupted":
        done = metrics["epochs_run"]
        saved = f"epochs 1-{done} are saved in {run_dir}" if done else "no epoch was complete yet"
        when = f"after epoch {done}" if args.stop_after else f"during epoch {done + 1}"
        print(f"\nTraining {reason} {when}; {saved}.\nResume with: python train.py --resume {run_dir}", file=sys.stderr)
        return 0 if args.stop_after and done >= args.stop_after else 130
    if status == "diverged":
        print(f"\nerror: training stopped: {reason}. The last good checkpoints (epoch {metrics['epochs_run']}) "
              f"are kept in {run_dir}; metrics.json records why.", file=sys.stderr)
        return 1
    print(f"\ndone: {metrics['epochs_run']} epochs in {metrics['train_time_sec']:.0f} s; "
          f"test accuracy {metrics['final_test_accuracy']:.4f} (final), "
          f"{metrics.get('best_test_accuracy', float('nan')):.4f} (best, epoch {best.best_epoch}); {run_dir}")
    return 0


def evaluate_on_test(model, splits, batch_size, label):
    """Test cross-entropy and accuracy (plain cross-entropy: no L2 penalty, no label smoothing)."""
    import keras
    import numpy as np
    probs = model.predict(splits.x_test, batch_size=batch_size, verbose=0)
    loss = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(splits.y_test, probs))
    return {f"{label}_test_loss": float(np.mean(loss)),
            f"{label}_test_accuracy": float(np.mean(probs.argmax(axis=1) == splits.y_test))}


def new_run_dir(cfg):
    """``<output.dir>/<name>-<timestamp>``, holding its config.yaml from the first moment.

    The folder is made under a hidden temporary name with the config in it and then
    renamed, so a run folder without its config never exists, even if the process is
    killed at once; an existing folder is never reused.
    """
    root = Path(cfg["output"]["dir"])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        draft = Path(tempfile.mkdtemp(prefix=f".{cfg['name']}-", suffix=".tmp", dir=root))
        write_text(draft / "config.yaml", dump_config(cfg))
        for n in range(1, 1000):
            run_dir = root / (f"{cfg['name']}-{stamp}" + (f"-{n}" if n > 1 else ""))
            if run_dir.exists():
                continue
            try:
                draft.rename(run_dir)
                return run_dir
            except OSError:  # another process took the name in between
                continue
    except OSError as e:
        raise UserError(f"output.dir: cannot write run folders into {root} ({e.strerror})") from None
    raise UserError(f"output.dir: too many runs named {cfg['name']}-{stamp} in {root}")


def header(cfg, net, splits, runtime, device, steps, lrs, run_dir):
    import keras
    o, s, t, a = cfg["optimizer"], cfg["schedule"], cfg["training"], cfg["augment"]
    params = ", ".join(f"{k}={v}" for k, v in cfg["model"]["params"].items())
    augs = [n for n, on in (("flip", a["flip"]), (f"pad-and-crop {a['crop']}px", a["crop"]),
                            (f"translate {a['translate']}", a["translate"])) if on] or ["none"]
    opt = f"{o['name']} lr {o['lr']}" + (f", momentum {o['momentum']}" if o["name"] in ("sgd", "rmsprop") else "") \
        + (", nesterov" if o["name"] == "sgd" and o["nesterov"] else "")
    wd = f"{o['weight_decay']} ({'decoupled' if o['name'] == 'adamw' or o['weight_decay_mode'] == 'decoupled' else 'L2 on kernels'})" \
        if o["weight_decay"] else "none"
    sched_params = ", ".join(f"{k} {s[k]}" for k in sorted(SCHEDULE_KEYS[s["name"]]))
    sample = "  [the quick-start SAMPLE, not the full data set]" if splits.is_sample else ""
    rows = [
        ("model", f"{cfg['model']['name']}({params})  {net.count_params():,} parameters"),
        ("data", f"CIFAR-10 from {splits.source}{sample}"),
        ("sizes", f"{len(splits.x_train):,} training, {len(splits.x_val):,} validation ({splits.validation}), "
                  f"{len(splits.x_test):,} test images; normalize {cfg['data']['normalize']}"),
        ("augment", ", ".join(augs) + (f"; flip-and-crop in the {runtime.augment_in}"
                                       if a["flip"] or a["crop"] else "")),
        ("devices", f"{device}: {', '.join(runtime.devices)}"),
        ("backend", f"{runtime.backend}, keras {keras.__version__}"),
        ("precision", f"{runtime.precision}; XLA {'on' if runtime.jit_compile else 'off'}"),
        ("strategy", runtime.strategy_name),
        ("optimizer", f"{opt}; weight decay {wd}"),
        ("schedule", f"{s['name']}" + (f" ({sched_params})" if sched_params else "")
                     + f"; lr epoch 1: {lrs[0]:.4g}, epoch {len(lrs)}: {lrs[-1]:.4g}"),
        ("training", f"{t['epochs']} epochs x {steps} steps of {t['batch_size']}, seed {t['seed']}, "
                     f"{runtime.steps_per_execution} steps per execution"
                     + (", deterministic" if t["deterministic"] else "")),
        ("run folder", str(run_dir) if run_dir else "(dry run: nothing written)"),
    ]
    width = max(len(k) for k, _ in rows)
    title = f"== {cfg['name']} =="
    return "\n".join([title] + [f"{k:<{width}}  {v}" for k, v in rows]) + "\n"


def summary_text(net):
    buffer = io.StringIO()
    net.summary(print_fn=lambda line, *a, **k: buffer.write(line + "\n"))
    return buffer.getvalue()


def write_diagram(net, path):
    """``keras.utils.plot_model``; without Graphviz, one warning and training goes on."""
    import keras
    try:
        import pydot  # noqa: F401
    except ImportError:
        pydot = None
    if pydot is None or shutil.which("dot") is None:
        missing = "the pydot package" if pydot is None else "Graphviz's `dot` program"
        print(f"warning: no model diagram ({missing} not found); install Graphviz to get model.png "
              "(apt-get install graphviz, brew install graphviz, or conda install graphviz)", file=sys.stderr)
        return
    try:
        keras.utils.plot_model(net, to_file=str(path), show_shapes=True, show_layer_names=True, dpi=72)
    except Exception as e:  # a diagram is never worth a failed run
        print(f"warning: no model diagram ({type(e).__name__}: {e})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
