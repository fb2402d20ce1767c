"""train.py and evaluate.py against PyTorch eager on the same networks, in turns, on this CPU.

    train.py     images/s of the real command, ``python train.py --config configs/<model>.yaml``
                 on a stratified subset of the real CIFAR-10 (``data.subset``): its tf.data
                 input, augmentation, scaling, callbacks and per-epoch files, with a constant
                 learning rate (the configs' schedules need their 40-350 epochs; the rate
                 is one scalar a step either way). Each epoch after ``--warmup`` counts
                 from the end of the one before to its own end, less its validation pass
                 (``history.json``: ``wall_clock`` and ``validation_time``), as
                 ``bench/throughput.py``'s suite figure does; the round's figure is the
                 median of the ``--epochs`` timed epochs.
    evaluate.py  images/s that ``python evaluate.py --run <that run> --limit N`` reports
                 (its first, compiling batch left out), at its CPU batch size.
    PyTorch      images/s of a plain PyTorch eager training step (``bench/torch_nets.py``:
                 the same network, the config's batch, SGD with its momentum, Nesterov and
                 weight decay, cross-entropy; for airbench94 the source's own network and
                 step from the ``airbench`` package, in float32) on float32 tensors already
                 in memory (no input pipeline, no augmentation), for ``--seconds`` after a
                 warm-up; and of
                 ``net.eval()`` under ``torch.inference_mode()`` on N images at
                 evaluate.py's batch size, the first batch left out. Both in PyTorch's two
                 layouts, NCHW and channels_last: the table takes the faster (median over
                 the rounds), and its ratios pair each round with that layout's figure.

Every figure comes from a fresh process. In each round every model runs once on each
side, training then inference, the side that goes first alternating from round to
round (and the order of PyTorch's layouts with it), so that the machine's drift (+-30%
over minutes here) hits both sides alike; the table gives the median figures and the
median of the per-round ratios, with their range. The children see no GPU
(``CUDA_VISIBLE_DEVICES=``) and inherit the environment as it is, so train.py and
evaluate.py choose TensorFlow's CPU kernels themselves (``suite/core/cpu.py``; the table
quotes their header's ``cpu`` line). The table and the raw figures (.json beside it) go
to ``bench/pytorch_paired_<amx|avx512|avx2|machine>.md`` after every round.

PyTorch is not a dependency of the suite: ``pip install torch`` beside it, and for
airbench94 ``pip install airbench==0.1.8 --no-deps`` (its network needs no torchvision). The data
is the real CIFAR-10, found as train.py finds it (``$CIFAR10_PATH``, Keras' cache).

    python bench/pytorch_paired.py       # ResNet-20, MiniVGGNet, All-CNN-C, airbench94, 3 rounds: 27 min on 2 AVX-512 cores
    python bench/pytorch_paired.py --models resnet20 --rounds 1 --epochs 1 --warmup 1 --subset 20 --seconds 2
    python bench/pytorch_paired.py --set runtime.threads=1      # any train.py override
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from suite.core import cpu  # noqa: E402  (reads /proc/cpuinfo; imports no TensorFlow)

CONFIGS = {"resnet20": "configs/resnet20.yaml", "minivggnet": "configs/minivggnet.yaml",
           "allcnn_c": "configs/allcnn_c.yaml", "airbench94": "configs/airbench94.yaml"}
# Training images per class for train.py's epochs: about 10 s each on the 2-core AVX2
# CPU of issue 31 (ResNet-20 about 230 images/s with oneDNN, All-CNN-C about 50);
# airbench94's batch is 1,024, so 5 steps an epoch (about 30 s).
SUBSET = {"resnet20": 256, "minivggnet": 512, "allcnn_c": 64, "airbench94": 512}
TEST_SUBSET = 10   # validation images per class in train.py's runs (not timed)
LAYOUTS = ("nchw", "channels_last")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs of each train.py run")
    p.add_argument("--warmup", type=int, default=2, help="epochs before them, not timed (compilation, first writes)")
    p.add_argument("--subset", type=int, help="training images per class for every model (default: per model, "
                                              + ", ".join(f"{k} {v}" for k, v in SUBSET.items()) + ")")
    p.add_argument("--seconds", type=float, default=15.0, help="PyTorch's timed training steps take about this long")
    p.add_argument("--eval-images", type=int, default=2000, help="test images for evaluate.py and PyTorch's inference")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for train.py's runs (repeatable)")
    p.add_argument("--out", help=f"the table (Markdown; the raw figures in .json beside it); default "
                                 f"bench/pytorch_paired_{cpu.cpu_facts().kind()}.md")
    p.add_argument("--child", choices=("recipe", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)  # a child's task, as JSON
    args = p.parse_args(argv)
    args.models = args.models.split(",")
    unknown = [m for m in args.models if m not in CONFIGS]
    if unknown:
        p.error(f"--models: {', '.join(unknown)} not among {', '.join(CONFIGS)}")
    if args.warmup < 1 or args.epochs < 1:
        p.error("--warmup and --epochs must be at least 1 (the first epoch compiles)")
    return args


# ----------------------------------------------------------------------------- children


def recipes(models, sets):
    """What PyTorch needs of each model's config (with ``--set``), in a child that imports
    TensorFlow so that this process does not: batch, optimizer, label smoothing, the Keras
    model's trainable parameters, evaluate.py's CPU batch size."""
    from suite.core.quiet import import_keras
    keras = import_keras()
    import tensorflow as tf

    from suite.workflows import evaluate
    from suite import models as registry
    from suite.config import load_config

    out = {"versions": f"keras {keras.__version__}, tensorflow {tf.__version__}", "models": {}}
    for name in models:
        cfg = load_config(REPO / CONFIGS[name], sets)
        o = cfg["optimizer"]
        if o["name"] != "sgd":
            raise SystemExit(f"{CONFIGS[name]}: optimizer {o['name']}; this benchmark has PyTorch's SGD only")
        net = registry.create(cfg["model"]["name"], **cfg["model"]["params"])
        out["models"][name] = {"net": cfg["model"]["name"], "batch": cfg["training"]["batch_size"], "lr": o["lr"],
                               "momentum": o["momentum"], "nesterov": o["nesterov"],
                               "weight_decay": o["weight_decay"], "label_smoothing": cfg["training"]["label_smoothing"],
                               "learnable": sum(int(w.numpy().size) for w in net.trainable_weights),
                               "eval_batch": evaluate.CPU_BATCH_SIZE}
    return out


def timed_rate(step, images_per_step, seconds, least_steps=1):
    """Images/s of ``step`` run for about ``seconds`` (at least ``least_steps`` times)."""
    steps, start = 0, time.perf_counter()
    while steps < least_steps or time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * images_per_step / (time.perf_counter() - start)


def torch_workload(recipe, layout, mode):
    """``(step, batch)``: one PyTorch eager training step of ``recipe``'s network (the
    module docstring says which), or one forward pass under ``inference_mode`` at
    evaluate.py's batch, on random tensors in ``layout`` (``nchw``, ``channels_last``)."""
    import torch
    from torch import nn

    sys.path.insert(0, str(HERE))
    import torch_nets

    r, layout = recipe, torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = torch_nets.build(r["net"], r["learnable"]).to(memory_format=layout)
    batch = r["batch"] if mode == "train" else r["eval_batch"]
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=layout)
    if mode != "train":
        net.eval()

        def forward():
            with torch.inference_mode():
                net(x)
        return forward, batch
    y = torch.randint(0, 10, (batch,))
    if r["net"] == "airbench94":
        return torch_nets.airbench94_step(net, x, y), batch
    optimizer = torch.optim.SGD(net.parameters(), lr=r["lr"], momentum=r["momentum"], nesterov=r["nesterov"],
                                weight_decay=r["weight_decay"])
    loss_fn = nn.CrossEntropyLoss(label_smoothing=r["label_smoothing"])

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        optimizer.step()
    return step, batch


def torch_rate(job):
    """Images/s of PyTorch eager training or inference, as the module docstring says."""
    import torch

    step, batch = torch_workload(job["recipe"], job["layout"], job["mode"])
    if job["mode"] == "train":
        timed_rate(step, batch, 2.0, least_steps=2)  # warm-up: oneDNN's primitives, the allocator
        rate = timed_rate(step, batch, job["seconds"])
    else:
        step()  # the first batch, left out as evaluate.py leaves it out
        rate = timed_rate(step, batch, 0.0, least_steps=max(1, -(-job["images"] // batch) - 1))
    return {"rate": rate, "torch": torch.__version__, "threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- the sides


def run(command, log, env, errors=None):
    """Run ``command`` in the repository, its output into ``log`` and its standard error
    with it, or into ``errors`` where given (apart, they cannot break each other's lines);
    what it wrote to ``log``, or RuntimeError with the end of its errors if it fails."""
    with open(log, "w") as out, open(errors or os.devnull, "w") as err:
        code = subprocess.run(command, cwd=REPO, env=env, stdout=out,
                              stderr=err if errors else subprocess.STDOUT).returncode
    if code:
        tail = "\n".join(Path(errors or log).read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{' '.join(map(str, command))} failed (exit {code}):\n{tail}")
    return Path(log).read_text(errors="replace")


def child(kind, job, workdir, env):
    """A child process of this script; what it wrote."""
    out = workdir / "child.json"
    run([sys.executable, __file__, "--child", kind, "--job", json.dumps(job), "--out", str(out)],
        workdir / f"{kind}.log", env)
    return json.loads(out.read_text())


def new_folder(parent, before):
    made = sorted(set(parent.iterdir()) - before)
    if len(made) != 1:
        raise RuntimeError(f"expected one new folder in {parent}, found {len(made)}")
    return made[0]


def header_row(output, key):
    """The value of ``key``'s row of a header that train.py or evaluate.py printed."""
    return next((line[len(key):].strip() for line in output.splitlines() if line.startswith(key + " ")), None)


def suite_train(name, args, workdir, env):
    """One train.py run: its per-epoch figures (see the module docstring) and header line."""
    runs = workdir / "runs"
    runs.mkdir(exist_ok=True)
    before = set(runs.iterdir())
    sets = [f"training.epochs={args.warmup + args.epochs}", f"data.subset={args.subset or SUBSET[name]}",
            f"data.test_subset={TEST_SUBSET}", "schedule.name=constant", f"output.dir={runs}", "training.verbose=0",
            f"name=bench-{name}", *args.set]
    output = run([sys.executable, "train.py", "--config", CONFIGS[name], *(a for s in sets for a in ("--set", s))],
                 workdir / "train.log", env)
    run_dir = new_folder(runs, before)
    history = json.loads((run_dir / "history.json").read_text())
    images = json.loads((run_dir / "metrics.json").read_text())["train_images"]
    clock, validation = history["wall_clock"], history["validation_time"]
    epochs = [images / (clock[i] - clock[i - 1] - validation[i]) for i in range(args.warmup, len(clock))]
    return {"rate": statistics.median(epochs), "epochs": epochs, "train_images": images,
            "history_train_images_per_sec": history["train_images_per_sec"][args.warmup:],
            "cpu": header_row(output, "cpu"), "backend": header_row(output, "backend"), "run_dir": run_dir}


def suite_eval(run_dir, args, workdir, env):
    """images/s of evaluate.py on ``run_dir``'s best weights, as it reports them."""
    reports = workdir / "evals"
    reports.mkdir(exist_ok=True)
    before = set(reports.iterdir())
    output = run([sys.executable, "evaluate.py", "--run", str(run_dir), "--limit", str(args.eval_images),
                  "--out-dir", str(reports)], workdir / "evaluate.log", env)
    metrics = json.loads((new_folder(reports, before) / "metrics.json").read_text())
    return {"rate": metrics["images_per_sec"], "batch": metrics["batch_size"], "cpu": header_row(output, "cpu")}


def one_round(r, name, recipe, args, workdir, env):
    """Both sides of one model, training then inference, in this round's order."""
    layouts = LAYOUTS if r % 2 == 0 else LAYOUTS[::-1]
    got = {"first": "train.py" if r % 2 == 0 else "PyTorch", "torch_train": {}, "torch_infer": {}}

    def torch_side(mode):
        for layout in layouts:
            job = {"recipe": recipe, "layout": layout, "mode": mode, "seconds": args.seconds,
                   "images": args.eval_images}
            got[f"torch_{mode}"][layout] = child("torch", job, workdir, env)

    def suite_side(mode):
        if mode == "train":
            got["suite_train"] = suite_train(name, args, workdir, env)
        else:
            got["suite_eval"] = suite_eval(got["suite_train"]["run_dir"], args, workdir, env)

    for mode in ("train", "infer"):
        for side in ((suite_side, torch_side) if r % 2 == 0 else (torch_side, suite_side)):
            side(mode)
    del got["suite_train"]["run_dir"]  # a temporary folder
    return got


# ----------------------------------------------------------------------------- the table


def summary(rounds, suite_key, torch_key):
    """``(suite median, torch median, layout, ratio median, lowest, highest)`` over ``rounds``:
    PyTorch in its faster layout (by median), each round's ratio against that layout."""
    medians = {layout: statistics.median(g[torch_key][layout]["rate"] for g in rounds) for layout in LAYOUTS}
    layout = max(medians, key=medians.get)
    ratios = [g[suite_key]["rate"] / g[torch_key][layout]["rate"] for g in rounds]
    return (statistics.median(g[suite_key]["rate"] for g in rounds), medians[layout], layout,
            statistics.median(ratios), min(ratios), max(ratios))


def cells(s):
    suite, torch, layout, ratio, low, high = s
    return f"{suite:,.0f} | {torch:,.0f} ({'NCHW' if layout == 'nchw' else layout}) | {ratio:.2f} ({low:.2f}-{high:.2f})"


def table(args, raw):
    rows = ["| model | batch | train.py img/s | PyTorch eager train img/s (layout) | train.py/PyTorch (range) "
            "| evaluate.py img/s | PyTorch eager inference img/s (layout) | evaluate.py/PyTorch (range) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in raw["models"].items():
        if m["rounds"]:
            rows.append(f"| {name} | {m['recipe']['batch']} | {cells(summary(m['rounds'], 'suite_train', 'torch_train'))} "
                        f"| {cells(summary(m['rounds'], 'suite_eval', 'torch_infer'))} |")
    done = min(len(m["rounds"]) for m in raw["models"].values())
    subset = f"{args.subset} images per class" if args.subset else \
        ", ".join(f"{name} {SUBSET[name] * 10:,} images" for name in raw["models"])
    return (f"train.py and evaluate.py against PyTorch eager, medians of {done} round(s): "
            f"`python bench/pytorch_paired.py {' '.join(raw['argv'])}`\n\n"
            f"- CPU (train.py's header): {raw.get('cpu_line') or raw['cpu']}\n"
            f"- {raw['versions']}, {raw.get('torch', 'torch ?')}\n"
            f"- train.py: epochs {args.warmup + 1}-{args.warmup + args.epochs} (of {args.warmup + args.epochs}) "
            f"of a run on {subset} "
            f"(`data.subset`), each from the end of the one before to its end, less validation; PyTorch: "
            f"{args.seconds:g} s of training steps on in-memory tensors\n"
            f"- inference: evaluate.py --limit {args.eval_images} against PyTorch eager on as many images\n"
            f"- ratios: per round, against PyTorch in its faster layout\n\n" + "\n".join(rows) + "\n")


def write(out, text, raw):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(raw, indent=2))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        job = json.loads(args.job)
        result = recipes(job["models"], job["set"]) if args.child == "recipe" else torch_rate(job)
        Path(args.out).write_text(json.dumps(result))
        return 0
    if importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed here: pip install torch (it is not a dependency of the suite)",
              file=sys.stderr)
        return 2
    if "airbench94" in args.models and importlib.util.find_spec("airbench") is None:
        print("airbench94 is measured against the airbench package: pip install airbench==0.1.8 --no-deps "
              "(or leave it out with --models)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else HERE / f"pytorch_paired_{cpu.cpu_facts().kind()}.md"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        found = child("recipe", {"models": args.models, "set": args.set}, workdir, env)
        raw = {"argv": sys.argv[1:] if argv is None else argv, "cpu": cpu.cpu_facts().describe(),
               "cpu_kind": cpu.cpu_facts().kind(), "versions": found["versions"],
               "models": {name: {"recipe": found["models"][name], "rounds": []} for name in args.models}}
        print(f"{raw['cpu']}; {args.rounds} rounds of {', '.join(args.models)}; table: {out}", flush=True)
        for r in range(args.rounds):
            for name in args.models:
                got = one_round(r, name, found["models"][name], args, workdir, env)
                raw["models"][name]["rounds"].append(got)
                some_torch = got["torch_train"]["nchw"]
                raw["cpu_line"], raw["torch"] = got["suite_train"]["cpu"], \
                    f"torch {some_torch['torch']} ({some_torch['threads']} threads)"
                best = {mode: max(got[f"torch_{mode}"].values(), key=lambda g: g["rate"])["rate"]
                        for mode in ("train", "infer")}
                print(f"round {r + 1} {name}: train.py {got['suite_train']['rate']:,.0f} / PyTorch "
                      f"{best['train']:,.0f} img/s; evaluate.py {got['suite_eval']['rate']:,.0f} / PyTorch "
                      f"{best['infer']:,.0f} img/s", flush=True)
            write(out, table(args, raw), raw)
    print("\n" + out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
