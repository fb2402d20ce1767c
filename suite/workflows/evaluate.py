"""Evaluating weights on the CIFAR-10 test set into a report folder (``suite/commands/evaluate.py``
lists what it holds); ``run(args)`` takes that command's arguments.
"""

import datetime
import sys
from pathlib import Path

import keras

from suite import models
from suite.analysis.inference import predict
from suite.analysis import calibration, robustness
from suite.analysis.reports import Evaluation, run_reports
from suite.analysis.tta import NAMES as TTA_NAMES
from suite.config import DEFAULTS, load_config
from suite.core import cpu
from suite.core.atomic import write_json, write_text
from suite.core.errors import UserError
from suite.core.folders import new_folder
from suite.core.outcome import Outcome
from suite.core.paths import SHIPPED
from suite.core.provenance import data_identity, provenance
from suite.core.keyvalue import parse_items
from suite.data import corruptions, whitening
from suite.data.cifar10 import (RAW_SCALING, channel_stats, data_name, load_cifar10, only_classes,
                                stratified_indices, stratified_split)
from suite.data.preprocessing import scaling_layer, wrap
from suite.training.runtime import configure, device_description, fuse_batch_norm
from suite.weights.formats import FORMAT_NAMES, LEGACY, detect_format, load_weights_file
from suite.weights.sidecar import read_sidecar, sidecar_path
from suite.weights.temperature import save_temperature
from suite.workflows.weight_source import selection, weights_file

# Default batch sizes; on the CPU 100 to 2000 were within 5% of each other for All-CNN-C
# (docs/evaluating.md, Speed).
CPU_BATCH_SIZE = 250
GPU_BATCH_SIZE = 1000


def run(args):
    check_arguments(args)
    weights, run_dir = weights_file(args)
    fmt = detect_format(weights)
    spec, sidecar = model_spec(args, weights, run_dir, fmt)
    runtime = configure(dict(DEFAULTS["runtime"], strategy="none", precision=args.precision), 0, False)
    net = models.create(spec["name"], **spec["params"])
    fuse_batch_norm(net, runtime)
    fmt, load_info = load_weights_file(net, weights, fmt)
    class_names = (sidecar or {}).get("class_names")
    data, x_test, y_test = load_test_set(args, class_names)
    class_names = list(class_names or data.class_names)
    if net.output_shape[-1] != len(class_names):
        raise UserError(f"model {spec['name']!r} has {net.output_shape[-1]} outputs; CIFAR-10 has {len(class_names)} classes")
    fill_scaling(spec, data, args)
    model = wrap(net, scaling_layer(spec["mean"], spec["std"], spec.get("whitening")))
    batch_size = args.batch_size or (GPU_BATCH_SIZE if runtime.accelerator == "gpu" else CPU_BATCH_SIZE)
    checkpoint = selection(weights, run_dir, warn=args.weights is not None) or {}  # --run best warned already
    head = header(weights, fmt, load_info, checkpoint, spec, net, data, x_test, runtime, batch_size, args.tta)
    print("\n".join(head), flush=True)

    def predict_images(images, quiet=False):
        return predict(model, images, batch_size, runtime.jit_compile, progress=not quiet, tta=args.tta)

    temperature = fit_on_held_out(args, spec, data, run_dir, weights, predict_images) if args.calibrate else None
    probs, images_per_sec, seconds = predict_images(x_test)
    out = new_report_folder(args, weights, run_dir, data.is_sample)
    evaluation = Evaluation(x_test, y_test, probs, class_names, spec["name"], data.is_sample, images_per_sec, seconds,
                            *(temperature[:2] if temperature else (None, "")))
    lines, metrics = run_reports(evaluation, out)
    if temperature:
        lines.append(save_temperature(weights, *temperature, out))
    if args.corruptions or args.corruptions_dir:
        more_lines, metrics["corruptions"] = corruption_report(args, predict_images, x_test, y_test,
                                                               metrics["accuracy"], out, spec["name"])
        lines += more_lines
    lines.append(f"\nreport: {out}")
    print("\n".join(lines))
    facts = run_facts(args, weights, fmt, load_info, checkpoint, spec, net, data, x_test, y_test, runtime, batch_size)
    write_json(out / "metrics.json", {**metrics, **facts})
    write_text(out / "report.txt", "\n".join(head + lines) + "\n")
    return Outcome(0, folder=out)


def corruption_report(args, predict_images, x, y, clean_accuracy, out, model_name):
    """Accuracy under the 15 CIFAR-10-C corruptions (``suite.data.corruptions``, made here,
    or the user's real CIFAR-10-C with ``--corruptions-dir``) at ``--severities``:
    ``corruptions.png``, ``corruption_grid.png`` (the first test image under each, for the
    corruptions made here), the lines of the report and the ``metrics.json`` entry."""
    names = corruptions.parse_names(args.corruptions or "all")
    severities = corruptions.parse_severities(args.severities)
    where = (f"the real CIFAR-10-C in {Path(args.corruptions_dir).name}/" if args.corruptions_dir
             else f"made here (suite.data.corruptions, seed {args.corruption_seed})")
    print(f"corruptions: {len(names)} x {len(severities)} severities x {len(x):,} images, {where}", flush=True)

    def plain_probabilities(images):
        return predict_images(images, quiet=True)[0]

    results = robustness.evaluate(plain_probabilities, x, y, names, severities, args.corruption_seed,
                                  real_dir=args.corruptions_dir, progress=lambda line: print(line, flush=True))
    summary = robustness.summary(results, clean_accuracy)
    summary.update({"names": names, "severities": severities, "source": where})
    robustness.heatmap(results, out / "corruptions.png", f"{model_name}: accuracy under corruption ({len(x):,} images)")
    if not args.corruptions_dir:
        robustness.grid(x[0], out / "corruption_grid.png", args.corruption_seed, names, severities)
    lines = ["", f"corruptions ({where}; severities {', '.join(map(str, severities))}): mean accuracy "
                 f"{summary['mean_corruption_accuracy']:.4f}, mean corruption error {summary['mean_corruption_error']:.4f}"
                 + (f", {summary['relative_to_clean']:.2f}x the clean error" if summary["relative_to_clean"] else "")
                 + f" ({results['images']:,} images, {results['seconds']:.0f} s)"]
    lines += [f"  {name:<18} " + " ".join(f"{results['accuracy'][name][s]:.4f}" for s in severities)
              + f"   mean {summary['by_corruption'][name]:.4f}" for name in names]
    return lines, summary


CALIBRATION_IMAGES = 5000  # Guo et al. 2017 hold out 5,000 CIFAR training images


def fit_on_held_out(args, spec, data, run_dir, weights, predict_images):
    """``(T, note, held_out)``: temperature scaling fitted on training images, never the test set: the
    run's own held-out split where it validated on one, else ``CALIBRATION_IMAGES`` of the
    training images (stratified, seed 0), which a network trained on them has seen: such a
    T is fitted where the network is surer than on new images, which the note says."""
    cfg = spec.get("cfg") or config_of(run_dir, weights)
    if cfg is not None and cfg["data"]["validation"] != "test" and not data.is_sample:
        x, y, where = config_split(cfg, data, args, held_out=True)
        note, held_out = f"fitted on the run's {len(x):,} held-out training images ({where})", True
    else:
        count = min(CALIBRATION_IMAGES, len(data.y_train) // 2)
        _, keep = stratified_split(data.y_train, count, 0)
        x, y = data.x_train[keep], data.y_train[keep]
        note = (f"fitted on {len(x):,} training images (stratified, seed 0) that the network "
                f"{'was trained on' if cfg is not None else 'may have been trained on'}: no held-out split "
                f"(train with data.validation: 0.1 for one)")
        held_out = False
        print(f"warning: --calibrate: {note}; such a temperature tends to be too low", file=sys.stderr)
    print(f"calibrating: predicting {len(x):,} training images", flush=True)
    probs, _, _ = predict_images(x)
    return calibration.fit_temperature(probs, y), note, held_out


def config_of(run_dir, weights):
    """The config the weights were trained with, where it is known: the run folder's
    ``config.yaml``, or the shipped config their sidecar names; else None."""
    folder = run_dir or Path(weights).parent
    candidates = [folder / "config.yaml"]
    shipped = (read_sidecar(weights, missing_ok=True) or {}).get("config") if sidecar_path(weights).is_file() else None
    if isinstance(shipped, str):
        candidates.append(SHIPPED / shipped)  # the checkout's, or an installed wheel's copy
    for path in candidates:
        if path.is_file():
            try:
                return load_config(path)
            except UserError:
                return None
    return None


def check_arguments(args):
    """Combinations of arguments that make no sense, before anything is read."""
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
    if args.corruptions or args.corruptions_dir:  # a bad name, severity or CIFAR-10-C folder, before any work
        names, severities = corruptions.parse_names(args.corruptions or "all"), corruptions.parse_severities(args.severities)
        if args.corruption_seed < 0:
            raise UserError(f"--corruption-seed must be >= 0, got {args.corruption_seed}")
        if args.corruptions_dir:
            corruptions.load_real(args.corruptions_dir, names, severities, limit=1)


def model_spec(args, weights, run_dir, fmt):
    """``(spec, sidecar)``: the model's name, knobs and scaling, and where they came from."""
    config, sidecar = args.config, None
    if fmt != LEGACY and not args.model and not config:
        if run_dir is not None and not sidecar_path(weights).exists() and (run_dir / "config.yaml").is_file():
            config = str(run_dir / "config.yaml")
        else:
            sidecar = read_sidecar(weights)  # UserError naming --model / --config when it is missing
    if fmt == LEGACY and not args.model and not config:
        raise UserError(f"{weights}: Keras 2 weights carry no model description; name the model with --model "
                        "(e.g. --model allcnn_c_study --normalize scale for the study project's All-CNN weights)")
    if args.model:
        return {"name": args.model, "params": dict(parse_items(args.param, "--param")),
                "normalize": args.normalize or "scale", "origin": "--model"}, None
    if config:
        cfg = load_config(config)
        return {"name": cfg["model"]["name"], "params": dict(cfg["model"]["params"]),
                "normalize": cfg["data"]["normalize"], "origin": f"--config {config}", "cfg": cfg}, None
    pre = sidecar.get("preprocessing") or {}
    if not (isinstance(pre.get("mean"), list) and isinstance(pre.get("std"), list)):
        raise UserError(f"{sidecar_path(weights)}: no preprocessing mean/std; name the model with --model and --normalize")
    spec = {"name": sidecar["model"]["name"], "params": dict(sidecar["model"].get("params") or {}),
            "mean": pre["mean"], "std": pre["std"], "origin": f"sidecar {sidecar_path(weights).name}"}
    spec["whitening"] = whitening.of_preprocessing(pre, Path(weights).parent)
    if spec["whitening"] is not None:
        spec["stats"] = f"{pre['zca']['file']} (sha256 {spec['whitening'].sha256[:12]}..., as the sidecar records)"
    return spec, sidecar


def load_test_set(args, class_names=None):
    """``(data, x_test, y_test)``: the test images (the first ``--limit``, as views: no copy);
    only those of ``class_names`` (a fine-tuned network's classes) if they are a part of CIFAR-10's."""
    data = load_cifar10(args.data_path, args.data)
    if not len(data.x_test):
        raise UserError(f"{data.source}: has no test images (no test labels) to evaluate on")
    if class_names and list(class_names) != data.class_names and set(class_names) <= set(data.class_names):
        data = only_classes(data, class_names)
    if args.limit:
        return data, data.x_test[:args.limit], data.y_test[:args.limit]
    return data, data.x_test, data.y_test


def fill_scaling(spec, data, args):
    """Give ``spec`` its mean and std: x / 255, or the statistics of the training images, and
    for ``zca`` the whitening fitted on them."""
    if "mean" in spec:
        return
    if spec["normalize"] in RAW_SCALING:
        spec["mean"], spec["std"] = RAW_SCALING[spec["normalize"]]
        return
    train_images, where = training_images(spec.get("cfg"), data, args)
    spec["mean"], spec["std"] = channel_stats(train_images)
    spec["stats"] = f"per-channel statistics of {len(train_images):,} training images ({where})"
    if spec["normalize"] == "zca":
        bias = spec["cfg"]["data"]["zca_bias"] if spec.get("cfg") else whitening.BIAS
        spec["whitening"] = whitening.fit(train_images, bias)
        spec["stats"] = f"fitted on {len(train_images):,} training images ({where}), bias {bias}"


def training_images(cfg, data, args):
    """The training images whose per-channel statistics ``standardize`` needs, as training saw them."""
    if cfg is None:  # --model NAME --normalize standardize: the whole training part of the data read
        return data.x_train, data.source + (" [the sample]" if data.is_sample else "")
    x, _, where = config_split(cfg, data, args)
    return x, where


def config_split(cfg, data, args, held_out=False):
    """``(x, y, where)``: the training images the config trained on, or with ``held_out``
    the ones its ``data.validation`` held out, picked as train.py picks them."""
    dc, seed = cfg["data"], cfg["training"]["seed"]
    same = dc["source"] == args.data and (dc["source"] == "sample" or dc["path"] == args.data_path or not dc["path"])
    source = data if same else load_cifar10(dc["path"], dc["source"])
    x, y = source.x_train, source.y_train
    if dc["subset"]:
        idx = stratified_indices(y, dc["subset"], seed)
        x, y = x[idx], y[idx]
    if dc["validation"] != "test":
        keep, held = stratified_split(y, dc["validation"], seed)
        x, y = (x[held], y[held]) if held_out else (x[keep], y[keep])
    return x, y, f"{data_name(source.source, source.is_sample)}, as the config's data section picks them"


def header(weights, fmt, load_info, checkpoint, spec, net, data, x_test, runtime, batch_size, tta=0):
    """The lines printed before predicting: the weights, the model, its input, the data, the device."""
    params = ", ".join(f"{k}={v}" for k, v in spec["params"].items())
    ckpt = f"; {checkpoint['kind']} checkpoint" + (f", epoch {checkpoint['epoch']}" if checkpoint.get("epoch") else "") \
        + (f", chosen on {checkpoint['selected_on']} by {checkpoint.get('monitor')}" if checkpoint.get("selected_on") else "") \
        if checkpoint.get("kind") else ""
    scaling = spec.get("stats") or "(x - mean) / std"
    if spec.get("whitening"):
        scaling = f"GCN + ZCA whitening, {scaling}"
    elif spec["mean"] == [0.0] * 3 and spec["std"] == [255.0] * 3:
        scaling = "x / 255"
    else:
        scaling += f": mean {_floats(spec['mean'])}, std {_floats(spec['std'])}"
    total = len(data.x_test)
    images = f"{len(x_test):,} images" + (f" (the first {len(x_test):,} of {total:,}, --limit)" if len(x_test) < total else "")
    data_line = (f"the quick-start SAMPLE ({data.source}), {images} of its test part -- NOT the CIFAR-10 test set"
                 if data.is_sample else f"CIFAR-10 test set from {data.source}: {images}")
    if checkpoint.get("test_set_selected"):
        data_line += " [the checkpoint was SELECTED on these test images]"
    rows = [
        ("weights", f"{weights} ({FORMAT_NAMES[fmt]}{ckpt})"),
        ("model", f"{spec['name']}({params})  {net.count_params():,} parameters  [from {spec['origin']}]"),
        ("input", f"uint8 -> {scaling}"),
        ("data", data_line),
        ("device", f"{device_description(runtime)}; {runtime.backend} backend, keras {keras.__version__}, "
                   f"{runtime.precision}, XLA {'on' if runtime.jit_compile else 'off'}, "
                   + ("batch norm: TensorFlow's fused kernel, " if runtime.fused_batch_norm else "") + f"batch {batch_size}"),
        ("cpu", cpu.header_line(runtime.backend)),
        ("tta", TTA_NAMES[tta]),
    ]
    if fmt == LEGACY:
        rows.insert(1, ("legacy", f"{load_info['layers']} weighted layers loaded by order; saved by Keras "
                                  f"{load_info['keras_version'] or '?'} ({load_info['backend'] or '?'} backend)"
                                  + ("; Theano kernels flipped" if load_info["theano_kernels_flipped"] else "")))
    width = max(len(k) for k, _ in rows)
    title = f"== evaluate {weights} on {'the quick-start SAMPLE' if data.is_sample else 'the CIFAR-10 test set'} =="
    return [title] + [f"{k:<{width}}  {v}" for k, v in rows]


def new_report_folder(args, weights, run_dir, is_sample):
    """``<--out-dir>/eval-<run>-<checkpoint>-<timestamp>`` or ``eval-<weights stem>-...``."""
    stem = run_dir.name + f"-{args.checkpoint}" if run_dir is not None else _stem(weights)
    return new_folder(args.out_dir, "eval-" + stem + ("-sample" if is_sample else ""),
                      "--out-dir: cannot create a report folder in")


def run_facts(args, weights, fmt, load_info, checkpoint, spec, net, data, x_test, y_test, runtime, batch_size):
    """The metrics.json entries that say what was evaluated, how and where (``provenance``:
    what made the report, ``suite.core.provenance``)."""
    identity = data_identity(data_name(data.source, data.is_sample), x_test, y_test)
    return {
        "batch_size": batch_size, "split": "sample" if data.is_sample else "test", "is_sample": data.is_sample,
        "data": identity, "limit": args.limit,
        "test_set_selected_checkpoint": bool(checkpoint.get("test_set_selected")),
        **({"note": "evaluated on the test part of the quick-start sample (data/cifar10_sample.npz), "
                    "not on the CIFAR-10 test set"} if data.is_sample else {}),
        "weights": f"weights/{Path(weights).name}" if args.pretrained else str(weights),
        "pretrained": args.pretrained, "weights_format": fmt, "checkpoint": checkpoint or None,
        "legacy": load_info if fmt == LEGACY else None,
        "model": spec["name"], "model_params": spec["params"], "parameters": net.count_params(),
        "model_from": spec["origin"], "preprocessing": {"mean": spec["mean"], "std": spec["std"],
                                                     **({"zca": spec["whitening"].describe()} if spec.get("whitening") else {})},
        "backend": runtime.backend, "keras_version": keras.__version__, "device": device_description(runtime),
        "precision": runtime.precision, "jit_compile": runtime.jit_compile, "tta": args.tta,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "provenance": provenance(runtime.backend, device_description(runtime), runtime.precision, identity),
    }


def _stem(path):
    name = path.name
    for suffix in (".weights.h5", ".hdf5", ".h5"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _floats(values):
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"
