"""Evaluate trained weights on the CIFAR-10 test set: loss, accuracy, a per-class report,
the most confused classes, a confusion matrix and a grid of misclassified images.

    python evaluate.py --run outputs/allcnn_c-20261122-153000                  # the run's best.weights.h5
    python evaluate.py --run outputs/allcnn_c-20261122-153000 --checkpoint final
    python evaluate.py --weights weights/allcnn_c.weights.h5                    # model from the .json sidecar
    python evaluate.py --weights weights/allcnn_c.weights.h5 --data sample      # the quick-start sample
    python evaluate.py --weights x.weights.h5 --config configs/allcnn_c_pretrain.yaml
    python evaluate.py --weights all_cnn_weights_0.9088_0.4994.hdf5 --model allcnn_c_study --normalize scale

The weights file may be a Keras 3 ``.weights.h5`` (what the suite writes) or a Keras 2
HDF5 file (``save_weights("x.h5")``; told apart by its contents, see
``suite/legacy_weights.py``). The model and its input scaling come from, in this order,
``--model`` (with ``--param`` and ``--normalize``), ``--config``, the sidecar JSON beside
the weights, or the run folder's ``config.yaml``.

Everything goes into a new folder ``outputs/eval-<name>-<timestamp>/`` (``--out-dir``):
``metrics.json``, ``per_class.csv``, ``report.txt`` (what is printed), ``confusion.png``
and ``misclassified.png``.
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the report

import numpy as np  # noqa: E402

from suite.errors import UserError, run_cli  # noqa: E402
from suite.quiet import import_keras  # noqa: E402

# Default batch sizes. CPU: the fastest of 100/250/500/1000/2000 for All-CNN-C on the 2-core
# AVX-512 machine under TF 2.21 with oneDNN (smaller batches stay in cache; see docs/evaluate.md).
CPU_BATCH_SIZE = 250
GPU_BATCH_SIZE = 1000
TOP_CONFUSED = 5
GRID_ROWS, GRID_COLS = 6, 8    # misclassified images shown: the most confident mistakes
EPSILON = 1e-7                  # keras.config.epsilon(), as Keras' cross-entropy clips


def parse_args(argv):
    p = argparse.ArgumentParser(description="Evaluate CIFAR-10 weights on the test set and write a report.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--weights", help="a weights file: Keras 3 .weights.h5 or Keras 2 .h5/.hdf5")
    what.add_argument("--run", metavar="RUN_DIR", help="a train.py run folder: evaluates its best.weights.h5")
    p.add_argument("--checkpoint", choices=("best", "final"), default="best",
                   help="with --run: which checkpoint (default: best)")
    p.add_argument("--config", help="the model and normalisation from this experiment config (YAML)")
    p.add_argument("--model", help="the model by registry name (needed for legacy files, which have no sidecar)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="with --model: a builder knob, e.g. --param batch_norm=false (repeatable; values are YAML)")
    p.add_argument("--normalize", choices=("scale", "standardize"),
                   help="with --model: scale (x/255, default) or standardize (per-channel statistics of the training images)")
    p.add_argument("--data", choices=("cifar10", "sample"), default="cifar10",
                   help="cifar10: the test set (default); sample: the test part of the quick-start sample in data/")
    p.add_argument("--data-path", help="CIFAR-10 folder, .tar.gz or .npz (default: $CIFAR10_PATH, then Keras' cache)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N test images")
    p.add_argument("--batch-size", type=int,
                   help=f"images per forward pass (default: {CPU_BATCH_SIZE} on a CPU, {GPU_BATCH_SIZE} on a GPU)")
    p.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"), default="auto",
                   help="auto (default): float32 on a CPU, mixed on a GPU, as train.py; mixed_bfloat16 is about "
                        "twice as fast on CPUs with AVX512_BF16 or AMX, with slightly different figures")
    p.add_argument("--out-dir", default="outputs", help="where the report folder is created (default: outputs)")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(run, parse_args(argv))


def run(args):
    import_keras()
    # ------------------------------------------------------------------ arguments
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be >= 1, got {args.limit}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if (args.param or args.normalize) and not args.model:
        raise UserError("--param and --normalize go with --model")
    if args.model and args.config:
        raise UserError("give the model either with --model or with --config, not both")
    if args.data == "sample" and args.data_path:
        raise UserError("--data sample reads the sample in data/; drop --data-path or use --data cifar10")
    if args.checkpoint != "best" and not args.run:
        raise UserError("--checkpoint goes with --run")

    # ------------------------------------------------------------------ the weights file and its format
    from suite.legacy_weights import FORMAT_NAMES, LEGACY, detect_format, load_weights_file
    from suite.sidecar import read_sidecar, sidecar_path

    run_dir = Path(args.run) if args.run else None
    if run_dir is not None:
        if not run_dir.is_dir():
            raise UserError(f"--run {run_dir}: no such folder")
        weights = run_dir / f"{args.checkpoint}.weights.h5"
        if not weights.is_file():
            raise UserError(f"{run_dir}: no {weights.name}; not a finished train.py run folder"
                            + (" (final.weights.h5 is written when a run completes)" if args.checkpoint == "final" else ""))
    else:
        weights = Path(args.weights)
    fmt = detect_format(weights)

    # ------------------------------------------------------------------ the model and its preprocessing
    sidecar = None
    if fmt != LEGACY and not args.model and not args.config:
        if run_dir is not None and not sidecar_path(weights).exists() and (run_dir / "config.yaml").is_file():
            args.config = str(run_dir / "config.yaml")
        else:
            sidecar = read_sidecar(weights)  # UserError naming --model / --config when it is missing
    if fmt == LEGACY and not args.model and not args.config:
        raise UserError(f"{weights}: Keras 2 weights carry no model description; name the model with --model "
                        "(e.g. --model allcnn_c_study --normalize scale for the study project's All-CNN weights)")

    if args.model:
        spec = {"name": args.model, "params": parse_params(args.param), "normalize": args.normalize or "scale",
                "origin": "--model"}
    elif args.config:
        from suite.config import load_config
        cfg = load_config(args.config)
        spec = {"name": cfg["model"]["name"], "params": dict(cfg["model"]["params"]),
                "normalize": cfg["data"]["normalize"], "origin": f"--config {args.config}", "cfg": cfg}
    else:
        pre = sidecar.get("preprocessing") or {}
        if not (isinstance(pre.get("mean"), list) and isinstance(pre.get("std"), list)):
            raise UserError(f"{sidecar_path(weights)}: no preprocessing mean/std; name the model with --model and --normalize")
        spec = {"name": sidecar["model"]["name"], "params": dict(sidecar["model"].get("params") or {}),
                "mean": pre["mean"], "std": pre["std"], "origin": f"sidecar {sidecar_path(weights).name}"}

    import models
    # ------------------------------------------------------------------ runtime, model, weights
    import keras

    from suite.config import DEFAULTS
    from suite.preprocessing import wrap
    from suite.runtime import configure, device_description

    runtime = configure(dict(DEFAULTS["runtime"], strategy="none", precision=args.precision), 0, False)
    device = device_description(runtime)
    net = models.create(spec["name"], **spec["params"])
    fmt, load_info = load_weights_file(net, weights, fmt)

    # ------------------------------------------------------------------ data and input scaling
    from suite.data import channel_stats, load_cifar10
    data = load_cifar10(args.data_path, args.data)
    x_test, y_test = data.x_test, data.y_test
    if args.limit:
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]   # views: no copy of the images
    class_names = list((sidecar or {}).get("class_names") or data.class_names)
    if net.output_shape[-1] != len(class_names):
        raise UserError(f"model {spec['name']!r} has {net.output_shape[-1]} outputs; CIFAR-10 has {len(class_names)} classes")

    if "mean" not in spec:
        if spec["normalize"] == "scale":
            spec["mean"], spec["std"] = [0.0] * 3, [255.0] * 3
        else:
            train_images, where = training_images(spec.get("cfg"), data, args)
            spec["mean"], spec["std"] = channel_stats(train_images)
            spec["stats"] = f"per-channel statistics of {len(train_images):,} training images ({where})"
    model = wrap(net, spec["mean"], spec["std"])
    batch_size = args.batch_size or (GPU_BATCH_SIZE if runtime.accelerator == "gpu" else CPU_BATCH_SIZE)

    # ------------------------------------------------------------------ header
    what = "SAMPLE" if data.is_sample else "test"
    params = ", ".join(f"{k}={v}" for k, v in spec["params"].items())
    checkpoint = (sidecar or {}).get("checkpoint") or {}
    ckpt = f"; {checkpoint['kind']} checkpoint" + (f", epoch {checkpoint['epoch']}" if checkpoint.get("epoch") else "") \
        if checkpoint.get("kind") else ""
    scaling = spec.get("stats") or "(x - mean) / std"
    if spec["mean"] == [0.0] * 3 and spec["std"] == [255.0] * 3:
        scaling = "x / 255"
    else:
        scaling += f": mean {_floats(spec['mean'])}, std {_floats(spec['std'])}"
    total = len(data.x_test)
    images = f"{len(x_test):,} images" + (f" (the first {len(x_test):,} of {total:,}, --limit)" if len(x_test) < total else "")
    data_line = (f"the quick-start SAMPLE ({data.source}), {images} of its test part -- NOT the CIFAR-10 test set"
                 if data.is_sample else f"CIFAR-10 test set from {data.source}: {images}")
    rows = [
        ("weights", f"{weights} ({FORMAT_NAMES[fmt]}{ckpt})"),
        ("model", f"{spec['name']}({params})  {net.count_params():,} parameters  [from {spec['origin']}]"),
        ("input", f"uint8 -> {scaling}"),
        ("data", data_line),
        ("device", f"{device}; {runtime.backend} backend, keras {keras.__version__}, {runtime.precision}, "
                   f"XLA {'on' if runtime.jit_compile else 'off'}, batch {batch_size}"),
    ]
    if fmt == LEGACY:
        rows.insert(1, ("legacy", f"{load_info['layers']} weighted layers loaded by order; saved by Keras "
                                  f"{load_info['keras_version'] or '?'} ({load_info['backend'] or '?'} backend)"
                                  + ("; Theano kernels flipped" if load_info["theano_kernels_flipped"] else "")))
    width = max(len(k) for k, _ in rows)
    lines = [f"== evaluate {weights} on {'the quick-start SAMPLE' if data.is_sample else 'the CIFAR-10 test set'} =="]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    print("\n".join(lines), flush=True)

    # ------------------------------------------------------------------ predict
    probs, images_per_sec, seconds = predict(model, x_test, batch_size, runtime)

    # ------------------------------------------------------------------ metrics
    p = probs.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(np.mean(-np.log(np.clip(p[np.arange(len(y_test)), y_test], EPSILON, 1 - EPSILON))))
    predicted = probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    k = len(class_names)
    confusion = np.bincount(y_test * k + predicted, minlength=k * k).reshape(k, k)  # rows: true, columns: predicted
    per_class, averages = class_report(confusion, class_names)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = sorted(range(k * k), key=lambda i: -off.flat[i])[:TOP_CONFUSED]
    confused = [{"true": class_names[i // k], "predicted": class_names[i % k], "count": int(off.flat[i])}
                for i in order if off.flat[i] > 0]

    # ------------------------------------------------------------------ results
    res = [f"\n{what} loss {loss:.4f}  accuracy {accuracy:.4f}  ({len(y_test):,} images, "
           f"{images_per_sec:,.0f} images/s, {seconds:.1f} s)"]
    if data.is_sample:
        res.append("note: these figures are on the quick-start sample, not the CIFAR-10 test set")
    res += ["", report_table(per_class, averages), "", "most confused (true -> predicted):"]
    res += [f"  {c['true']:>10} -> {c['predicted']:<10} {c['count']:>5}" for c in confused] or ["  (no mistakes)"]

    # ------------------------------------------------------------------ report folder
    from suite.atomic import atomic_path, write_json, write_text

    stem = run_dir.name + f"-{args.checkpoint}" if run_dir is not None else _stem(weights)
    out = new_eval_dir(Path(args.out_dir), stem + ("-sample" if data.is_sample else ""))
    res.append(f"\nreport: {out}")
    print("\n".join(res))
    metrics = {
        "loss": loss, "accuracy": accuracy, "images": len(y_test),
        "images_per_sec": round(images_per_sec, 1), "predict_seconds": round(seconds, 3), "batch_size": batch_size,
        "split": "sample" if data.is_sample else "test", "is_sample": data.is_sample,
        "data_source": data.source, "limit": args.limit,
        **({"note": "evaluated on the test part of the quick-start sample (data/cifar10_sample.npz), "
                    "not on the CIFAR-10 test set"} if data.is_sample else {}),
        "class_names": class_names,
        "per_class": per_class, **averages,
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_axes": "rows: true class, columns: predicted class, in class_names order",
        "most_confused": confused,
        "weights": str(weights), "weights_format": fmt, "checkpoint": checkpoint or None,
        "legacy": load_info if fmt == LEGACY else None,
        "model": spec["name"], "model_params": spec["params"], "parameters": net.count_params(),
        "model_from": spec["origin"], "preprocessing": {"mean": spec["mean"], "std": spec["std"]},
        "backend": runtime.backend, "keras_version": keras.__version__, "device": device,
        "precision": runtime.precision, "jit_compile": runtime.jit_compile,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    write_json(out / "metrics.json", metrics)
    with atomic_path(out / "predictions.npz") as tmp:
        np.savez_compressed(tmp, probs=probs, y_true=y_test, y_pred=predicted.astype(np.int32))
    write_text(out / "per_class.csv", report_csv(per_class, averages))
    write_text(out / "report.txt", "\n".join(lines + res) + "\n")
    title = f"{spec['name']}: accuracy {accuracy:.2%} on {len(y_test):,} " + \
        ("SAMPLE images (not the test set)" if data.is_sample else "test images")
    plot_confusion(confusion, class_names, out / "confusion.png", title)
    plot_mistakes(x_test, y_test, predicted, probs, class_names, out / "misclassified.png",
                  f"{spec['name']}: the most confident mistakes" + (" (on the SAMPLE)" if data.is_sample else ""))
    return 0


def parse_params(items):
    """``--param KEY=VALUE`` items into a dict, each value read as YAML (``0.5``, ``false``, ``[32, 32, 3]``)."""
    import yaml
    params = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--param {item}: expected KEY=VALUE")
        try:
            params[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise UserError(f"--param {key}: cannot parse value {text!r} ({getattr(e, 'problem', None) or e})") from None
    return params


def training_images(cfg, data, args):
    """The training images whose per-channel statistics ``standardize`` needs, as training saw them."""
    from suite.data import load_cifar10, stratified_indices, stratified_split
    if cfg is None:  # --model NAME --normalize standardize: the whole training part of the data read
        return data.x_train, data.source + (" [the sample]" if data.is_sample else "")
    dc, seed = cfg["data"], cfg["training"]["seed"]
    same = dc["source"] == args.data and (dc["source"] == "sample" or dc["path"] == args.data_path or not dc["path"])
    source = data if same else load_cifar10(dc["path"], dc["source"])
    x, y = source.x_train, source.y_train
    if dc["subset"]:
        idx = stratified_indices(y, dc["subset"], seed)
        x, y = x[idx], y[idx]
    if dc["validation"] != "test":
        keep, _ = stratified_split(y, dc["validation"], seed)
        x = x[keep]
    return x, f"{source.source}, as the config's data section picks them"


def predict(model, x, batch_size, runtime):
    """Softmax outputs for uint8 images ``x``, batch by batch; ``(probs, images/s, seconds)``.

    Under TensorFlow a ``tf.function`` with a fixed signature (uint8, any batch) is traced once
    and fed slices of ``x`` (no float copy of the set). The first batch, which traces the
    function and builds the oneDNN kernels, is left out of the timing.
    """
    import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        fn = tf.function(lambda b: model(b, training=False), jit_compile=runtime.jit_compile,
                         input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.uint8)])

        def step(batch):
            return fn(batch).numpy()
    else:
        def step(batch):
            return np.asarray(model.predict_on_batch(batch))
    out = np.empty((len(x), model.output_shape[-1]), np.float32)
    out[:batch_size] = step(x[:batch_size])
    start = time.perf_counter()
    for i in range(batch_size, len(x), batch_size):
        out[i:i + batch_size] = step(x[i:i + batch_size])
    seconds, timed = time.perf_counter() - start, len(x) - batch_size
    if timed <= 0:  # a single batch: time it once more, now that it is compiled
        start = time.perf_counter()
        step(x[:batch_size])
        seconds, timed = time.perf_counter() - start, len(x)
    return out, timed / seconds, seconds


def class_report(confusion, class_names):
    """Precision, recall, F1 and support per class (0 where undefined), macro and weighted averages."""
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    per_class = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(class_names, precision, recall, f1, support)]
    n = int(support.sum())
    weights = support / n if n else np.zeros_like(tp)
    averages = {
        "macro_avg": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                      "f1": float(f1.mean()), "support": n},
        "weighted_avg": {"precision": float(precision @ weights), "recall": float(recall @ weights),
                         "f1": float(f1 @ weights), "support": n},
    }
    return per_class, averages


def report_table(per_class, averages):
    width = max(12, *(len(c["class"]) for c in per_class))
    rows = [f"{'class':<{width}}  precision  recall  f1-score  support"]
    for name, c in [(c["class"], c) for c in per_class] + [("", None)] + \
            [(k.replace("_avg", " avg"), v) for k, v in averages.items()]:
        rows.append(f"{name:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}  {c['f1']:8.4f}  {c['support']:7d}"
                    if c else "")
    return "\n".join(rows)


def report_csv(per_class, averages):
    rows = ["class,precision,recall,f1,support"]
    for name, c in [(c["class"], c) for c in per_class] + [(k, v) for k, v in averages.items()]:
        rows.append(f"{name},{c['precision']:.6f},{c['recall']:.6f},{c['f1']:.6f},{c['support']}")
    return "\n".join(rows) + "\n"


def plot_confusion(confusion, class_names, path, title):
    """Counts in every cell; colour by the fraction of the true class (row), so the mistakes show."""
    from matplotlib.figure import Figure

    from suite.plots import save
    k = len(class_names)
    rows = confusion.sum(axis=1, keepdims=True)
    fraction = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    fig = Figure(figsize=(9.5, 8.5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    size = 11 if confusion.max() < 1000 else 9
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=size,
                    color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    save(fig, path)


def plot_mistakes(x, y, predicted, probs, class_names, path, title):
    """The misclassified images the model was most sure of, with true and predicted labels."""
    from matplotlib.figure import Figure

    from suite.plots import save
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:GRID_ROWS * GRID_COLS]
    cols = GRID_COLS
    rows = max(1, -(-len(wrong) // cols))
    fig = Figure(figsize=(2 * cols, 2.35 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(x[i], interpolation="nearest")
        ax.set_title(f"true: {class_names[y[i]]}\npred: {class_names[predicted[i]]} "
                     f"({probs[i, predicted[i]]:.0%})", fontsize=9)
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(f"{title} ({len(wrong)} of {int(np.sum(predicted != y)):,} misclassified)")
    save(fig, path)


def new_eval_dir(root, stem):
    """``<root>/eval-<stem>-<timestamp>``, created now; an existing folder is never reused."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            out = root / (f"eval-{stem}-{stamp}" + (f"-{n}" if n > 1 else ""))
            try:
                out.mkdir()
                return out
            except FileExistsError:
                continue
    except OSError as e:
        raise UserError(f"--out-dir: cannot create a report folder in {root} ({e.strerror})") from None
    raise UserError(f"--out-dir: too many reports named eval-{stem}-{stamp} in {root}")


def _stem(path):
    name = path.name
    for suffix in (".weights.h5", ".hdf5", ".h5"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _floats(values):
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    sys.exit(main())
