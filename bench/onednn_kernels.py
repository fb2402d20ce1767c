"""oneDNN's kernels one by one under TensorFlow (the suite's network) and PyTorch eager
(the same network, ``bench/torch_nets.py``), on this CPU: whether a gap between the two
is in the kernels or around them.

Both frameworks call oneDNN for their convolutions on the CPU. Each side runs in a child
process with ``ONEDNN_VERBOSE=1`` (and its timestamps), which makes oneDNN print every
primitive it executes with its time in milliseconds; after ``--warmup`` steps the child
runs ``--steps`` more, and the primitives executed between their start and end are summed
per step by primitive, direction (forward, gradient of the input, gradient of the weights)
and, with ``--by-shape``, shape; the last column names oneDNN's implementations. With
``--rounds`` above 1 the sides take turns going first and each row is the mean.

- TensorFlow: the network as train.py builds it (``suite.workflows.train.build``), ``fit``
  steps on random images in memory, or evaluate.py's prediction loop (``--inference``),
  as ``bench/profile_step.py`` runs them. With one inter-op thread
  (``TF_NUM_INTEROP_THREADS=1``): with more, TensorFlow runs the backward convolutions for
  data and for weights at once and each reports the time of the shared cores.
- PyTorch: ``bench/pytorch_paired.py``'s eager training step or ``inference_mode``
  forward, channels last. PyTorch runs batch norm, pooling, the dense layers and the
  elementwise ops in its own kernels (ATen, MKL), not in oneDNN: they are not in its
  column.

    python bench/onednn_kernels.py --model allcnn_c --rounds 2
    python bench/onednn_kernels.py --model minivggnet --inference --by-shape
"""

import argparse
import collections
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import pytorch_paired  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(pytorch_paired.CONFIGS), default="allcnn_c")
    p.add_argument("--inference", action="store_true", help="evaluate.py's forward pass at its CPU batch size")
    p.add_argument("--steps", type=positive, default=5, help="steps counted")
    p.add_argument("--warmup", type=positive, default=3, help="steps before them (oneDNN builds its kernels)")
    p.add_argument("--rounds", type=positive, default=1, help="runs of each side, taking turns")
    p.add_argument("--by-shape", action="store_true", help="a row per primitive, direction and shape")
    p.add_argument("--child", choices=("tensorflow", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of at least 1")
    return int(text)


# ----------------------------------------------------------------------------- children


def tensorflow_steps(job):
    """Run the suite's network; ``(start, end)`` of the counted steps, in oneDNN's clock."""
    import profile_step

    _, _, trainer = profile_step.build_trainer(pytorch_paired.REPO / pytorch_paired.CONFIGS[job["model"]])
    if job["inference"]:
        def steps(n):
            profile_step.predict_steps(trainer.model, job["batch"], n)
    else:
        def steps(n):
            profile_step.fit_steps(trainer, job["batch"], n)
    return _timed(steps, job)


def torch_steps(job):
    """Run ``bench/pytorch_paired.py``'s PyTorch workload in channels last; as ``tensorflow_steps``."""
    step, _ = pytorch_paired.torch_workload(job["recipe"], "channels_last", "infer" if job["inference"] else "train")

    def steps(n):
        for _ in range(n):
            step()
    return _timed(steps, job)


def _timed(steps, job):
    steps(job["warmup"])
    start = time.time() * 1e3  # oneDNN stamps its lines in milliseconds since the epoch (on Linux)
    steps(job["steps"])
    return {"start": start, "end": time.time() * 1e3}


# ----------------------------------------------------------------------------- the parent


def side(kind, job, workdir):
    """``{(primitive, direction, shape, implementation): ms}`` summed over the counted steps
    of one child of ``kind`` (``tensorflow``, ``torch``)."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", ONEDNN_VERBOSE_TIMESTAMP="1", CUDA_VISIBLE_DEVICES="",
               TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    out = workdir / f"{kind}.json"
    try:  # stderr apart: oneDNN's lines go to stdout in blocks
        log = pytorch_paired.run([sys.executable, __file__, "--child", kind, "--job", json.dumps(job), "--out", str(out)],
                                 workdir / f"{kind}.log", env, errors=workdir / f"{kind}.err")
    except RuntimeError as failed:
        raise SystemExit(f"the {kind} child: {failed}")
    window = json.loads(out.read_text())
    totals = kernel_times(log.splitlines(), window["start"], window["end"])
    if not totals:
        raise SystemExit(f"the {kind} child logged no oneDNN primitive: is oneDNN on (TF_ENABLE_ONEDNN_OPTS) "
                         f"and does this build print ONEDNN_VERBOSE's version-1 lines?")
    return totals


def kernel_times(lines, start, end):
    """Sum oneDNN's verbose ``exec`` lines (version 1, with timestamps) stamped between
    ``start`` and ``end``, by primitive, direction, shape and implementation."""
    totals = collections.Counter()
    for line in lines:
        f = line.split(",")
        if len(f) < 14 or f[0] != "onednn_verbose" or f[3:5] != ["primitive", "exec"]:
            continue
        if start <= float(f[2]) <= end:
            totals[(f[6], f[8], f[-2], f[7])] += float(f[-1])
    return totals


DIRECTIONS = {"forward_training": "forward", "forward_inference": "forward", "backward_data": "backward, data",
              "backward_weights": "backward, weights", "backward": "backward", "undef": ""}


def rows(totals, by_shape):
    """``({row: ms}, {row: implementations})``, a row being (primitive, direction[, shape])."""
    ms, impls = collections.Counter(), collections.defaultdict(set)
    for (primitive, direction, shape, impl), t in totals.items():
        row = (primitive, DIRECTIONS.get(direction, direction), shape if by_shape else "")
        ms[row] += t
        impls[row].add(impl)
    return ms, impls


def table(tf_totals, torch_totals, steps, by_shape):
    """Markdown: milliseconds a step on each side, the rows with the most time first."""
    (tf_rows, tf_impls), (torch_rows, torch_impls) = rows(tf_totals, by_shape), rows(torch_totals, by_shape)
    keys = sorted(set(tf_rows) | set(torch_rows), key=lambda k: -(tf_rows[k] + torch_rows[k]))
    lines = ["| primitive | direction |" + (" shape |" if by_shape else "")
             + " TensorFlow ms/step | PyTorch ms/step | oneDNN implementations (TensorFlow; PyTorch) |",
             "|---|---|" + ("---|" if by_shape else "") + "---:|---:|---|"]
    for key in keys:
        cells = key if by_shape else key[:2]
        names = [", ".join(sorted(side[key])) or "-" for side in (tf_impls, torch_impls)]
        lines.append("| " + " | ".join(cells) + f" | {tf_rows[key] / steps:,.1f} | {torch_rows[key] / steps:,.1f} | "
                     + (names[0] if names[0] == names[1] else "; ".join(names)) + " |")
    lines.append("| all |" + (" |" if by_shape else "") + f" | {sum(tf_rows.values()) / steps:,.1f} | "
                 f"{sum(torch_rows.values()) / steps:,.1f} | |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        job = json.loads(args.job)
        result = tensorflow_steps(job) if args.child == "tensorflow" else torch_steps(job)
        Path(args.out).write_text(json.dumps(result))
        return 0
    for package in ("torch", *(["airbench"] if args.model == "airbench94" else [])):
        if importlib.util.find_spec(package) is None:
            print(f"{package} is not installed here; see bench/pytorch_paired.py", file=sys.stderr)
            return 2
    totals = {"tensorflow": collections.Counter(), "torch": collections.Counter()}
    with tempfile.TemporaryDirectory(prefix="onednn_kernels-") as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
        recipe = pytorch_paired.child("recipe", {"models": [args.model], "set": []}, workdir, env)["models"][args.model]
        job = {"model": args.model, "recipe": recipe, "inference": args.inference, "steps": args.steps,
               "warmup": args.warmup, "batch": recipe["eval_batch"] if args.inference else recipe["batch"]}
        for r in range(args.rounds):
            for kind in ("tensorflow", "torch") if r % 2 == 0 else ("torch", "tensorflow"):
                totals[kind].update(side(kind, job, workdir))
    print(f"{args.model}, {'inference' if args.inference else 'training'}, batch {job['batch']}, "
          f"oneDNN primitives over {args.steps} steps after {args.warmup}, {args.rounds} round(s)\n")
    print(table(totals["tensorflow"], totals["torch"], args.steps * args.rounds, args.by_shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
