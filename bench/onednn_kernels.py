"""oneDNN's kernels one by one under TensorFlow (the suite's network) and PyTorch eager
(the same network, ``bench/torch_nets.py``), on this CPU: whether a gap between the two
is in the kernels or around them.

Both frameworks call oneDNN for their convolutions and dense layers on the CPU. Each side
runs in a child process with ``ONEDNN_VERBOSE=1`` (and its timestamps), which makes
oneDNN print every primitive it executes with its time in milliseconds; after
``--warmup`` steps the child runs ``--steps`` more, and the primitives executed between
their start and end are summed per step by primitive, direction (forward, backward for
data, backward for weights) and shape.

- TensorFlow: the network as train.py builds it (``suite.workflows.train.build``), ``fit``
  steps on random images in memory, or evaluate.py's prediction loop (``--inference``),
  as ``bench/profile_step.py`` runs them. With one inter-op thread
  (``TF_NUM_INTEROP_THREADS=1``): with more, TensorFlow runs the backward convolutions for
  data and for weights at once and each reports the time of the shared cores.
- PyTorch: ``bench/pytorch_paired.py``'s eager training step or ``inference_mode``
  forward, channels last. PyTorch runs batch norm, pooling and the elementwise ops in its
  own (ATen) kernels, not in oneDNN: they are not in its column.

    python bench/onednn_kernels.py --model allcnn_c
    python bench/onednn_kernels.py --model minivggnet --inference --by-shape
"""

import argparse
import collections
import json
import os
import subprocess
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
    p.add_argument("--steps", type=int, default=5, help="steps counted")
    p.add_argument("--warmup", type=int, default=3, help="steps before them (oneDNN builds its kernels)")
    p.add_argument("--by-shape", action="store_true", help="a row per primitive, direction and shape")
    p.add_argument("--child", choices=("tensorflow", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- children


def tensorflow_steps(job):
    """Run the suite's network; ``(start, end)`` of the counted steps, in oneDNN's clock."""
    import profile_step
    from suite.config import load_config
    from suite.data import cifar10
    from suite.training.runtime import configure
    from suite.workflows import train as training

    cfg = load_config(pytorch_paired.REPO / pytorch_paired.CONFIGS[job["model"]])
    runtime = configure(cfg["runtime"], cfg["training"]["seed"], cfg["training"]["deterministic"])
    splits = cifar10.prepare({**cfg["data"], "subset": 50, "test_subset": 10}, cfg["training"]["seed"])
    trainer = training.build(cfg, splits, runtime)
    if job["inference"]:
        def steps(n):
            profile_step.predict_steps(trainer.model, job["batch"], n)
    else:
        def steps(n):
            profile_step.fit_steps(trainer, job["batch"], n)
    return _timed(steps, job)


def torch_steps(job):
    import torch
    from torch import nn

    import torch_nets

    r = job["recipe"]
    net = torch_nets.build(r["net"], r["learnable"]).to(memory_format=torch.channels_last)
    x = torch.randn(job["batch"], 3, 32, 32).contiguous(memory_format=torch.channels_last)
    if job["inference"]:
        net.eval()

        def steps(n):
            with torch.inference_mode():
                for _ in range(n):
                    net(x)
    else:
        y = torch.randint(0, 10, (job["batch"],))
        optimizer = torch.optim.SGD(net.parameters(), lr=r["lr"], momentum=r["momentum"], nesterov=r["nesterov"],
                                    weight_decay=r["weight_decay"])
        loss_fn = nn.CrossEntropyLoss(label_smoothing=r["label_smoothing"])
        step = torch_nets.airbench94_step(net, x, y) if r["net"] == "airbench94" else None

        def steps(n):
            for _ in range(n):
                if step:
                    step()
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss_fn(net(x), y).backward()
                optimizer.step()
    return _timed(steps, job)


def _timed(steps, job):
    steps(job["warmup"])
    start = time.time() * 1e3  # oneDNN's timestamps: milliseconds since the epoch
    steps(job["steps"])
    return {"start": start, "end": time.time() * 1e3}


# ----------------------------------------------------------------------------- the parent


def side(kind, job, workdir):
    """``{(primitive, direction, shape, implementation): ms}`` summed over the counted steps."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", ONEDNN_VERBOSE_TIMESTAMP="1", CUDA_VISIBLE_DEVICES="",
               TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    out, log = workdir / f"{kind}.json", workdir / f"{kind}.log"
    with open(log, "w") as f:
        code = subprocess.run([sys.executable, __file__, "--child", kind, "--job", json.dumps(job), "--out", str(out)],
                              env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"the {kind} child failed (exit {code}):\n{tail}")
    window = json.loads(out.read_text())
    return kernel_times(log.read_text(errors="replace").splitlines(), window["start"], window["end"])


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
    out = collections.Counter()
    for (primitive, direction, shape, _), ms in totals.items():
        out[(primitive, DIRECTIONS.get(direction, direction), shape if by_shape else "")] += ms
    return out


def table(tf_totals, torch_totals, steps, by_shape):
    tf_rows, torch_rows = rows(tf_totals, by_shape), rows(torch_totals, by_shape)
    keys = sorted(set(tf_rows) | set(torch_rows), key=lambda k: -(tf_rows[k] + torch_rows[k]))
    lines = ["| primitive | direction |" + (" shape |" if by_shape else "") + " TensorFlow ms/step | PyTorch ms/step |",
             "|---|---|" + ("---|" if by_shape else "") + "---:|---:|"]
    for key in keys:
        cells = key if by_shape else key[:2]
        lines.append("| " + " | ".join(cells) + f" | {tf_rows[key] / steps:,.1f} | {torch_rows[key] / steps:,.1f} |")
    lines.append("| all |" + (" |" if by_shape else "") + f" | {sum(tf_rows.values()) / steps:,.1f} | "
                 f"{sum(torch_rows.values()) / steps:,.1f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        job = json.loads(args.job)
        result = tensorflow_steps(job) if args.child == "tensorflow" else torch_steps(job)
        Path(args.out).write_text(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="onednn_kernels-") as tmp:
        workdir = Path(tmp)
        recipe = pytorch_paired.child("recipe", {"models": [args.model], "set": []}, workdir,
                                      dict(os.environ))["models"][args.model]
        job = {"model": args.model, "recipe": recipe, "inference": args.inference, "steps": args.steps,
               "warmup": args.warmup, "batch": recipe["eval_batch"] if args.inference else recipe["batch"]}
        tf_totals, torch_totals = side("tensorflow", job, workdir), side("torch", job, workdir)
    print(f"{args.model}, {'inference' if args.inference else 'training'}, batch {job['batch']}, "
          f"oneDNN primitives summed over {args.steps} steps after {args.warmup}\n")
    print(table(tf_totals, torch_totals, args.steps, args.by_shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
