"""ResNet-20 training through train.py next to the same network in PyTorch eager, in turns.

    suite    images/s of train.py's epochs (``bench/throughput.py``'s suite figure: the
             tf.data input, flip-and-crop, scaling, callbacks and per-epoch files)
    pytorch  images/s of a plain PyTorch eager training step on float32 tensors already
             in memory (no input pipeline, no augmentation): ResNet-20 with option-A
             shortcuts (He et al. 2015, section 4.2), as ``models.resnet`` builds it, in
             PyTorch's default NCHW layout, SGD with momentum, cross-entropy

Each round runs both, one after the other in fresh processes (the order alternates), so
the machine's drift (+-30% over minutes) hits both alike; the table gives each round's
figures and their ratio, and the median ratio. Batch 128, random data. PyTorch is not a
dependency of the suite; install it beside it for this script (``pip install torch``).

    python bench/pytorch_resnet20.py                   # 4 rounds, 5 minutes here
    python bench/pytorch_resnet20.py --rounds 6 --seconds 20
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

BATCH = 128
LEARNABLE_PARAMS = 269_722  # ResNet-20, option A, without BN's moving statistics (models/resnet.py)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0,
                   help="PyTorch's timed steps, and each of train.py's 3 timed epochs, take about this long")
    p.add_argument("--child", choices=("suite", "pytorch"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p.parse_args()


def pytorch_rate(seconds):
    """Images/s of PyTorch eager training steps on ResNet-20, timed after a warm-up."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            s = x[:, :, ::self.stride, ::self.stride]  # option A: subsample, zero-pad channels
            if self.extra:
                s = nn.functional.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            return torch.relu(y + s)

    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(3):
            layers.append(Block(cin, cout, 2 if stage and not i else 1))
            cin = cout
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    params = sum(p.numel() for p in net.parameters())
    if params != LEARNABLE_PARAMS:
        raise SystemExit(f"the PyTorch ResNet-20 has {params:,} parameters, not {LEARNABLE_PARAMS:,}")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        optimizer.step()

    for _ in range(10):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return {"rate": steps * BATCH / (time.perf_counter() - start), "version": torch.__version__}


def suite_rate(seconds):
    """Median images/s of 3 timed epochs of train.py on ResNet-20 (after 2 warm-up epochs)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import throughput

    runtime = throughput.configure(throughput.DEFAULTS["runtime"], seed=0, deterministic=False)
    step = throughput.BareStep("resnet20", BATCH, runtime.jit_compile).seconds(3) / 3  # sizes the epochs
    n_images = max(4, round(seconds / step)) * BATCH
    options = argparse.Namespace(repeats=3, max_repeats=3, error=1.0, precision="auto", set=[])
    with tempfile.TemporaryDirectory() as tmp:
        suite, _, _ = throughput.suite_run("resnet20", BATCH, n_images, options, Path(tmp)).timed()
    return {"rate": statistics.median(suite), "version": throughput.keras.__version__}


def main():
    args = parse_args()
    if args.child:
        measure = pytorch_rate if args.child == "pytorch" else suite_rate
        Path(args.out).write_text(json.dumps(measure(args.seconds)))
        return 0
    if importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed here: pip install torch (it is not a dependency of the suite)",
              file=sys.stderr)
        return 2
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"ResNet-20, batch {BATCH}, {os.cpu_count()} cores; {args.rounds} rounds\n")
    print("| round | first | suite (train.py) img/s | PyTorch eager img/s | suite/PyTorch |")
    print("|---:|---|---:|---:|---:|", flush=True)
    ratios, versions = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ("suite", "pytorch") if r % 2 == 0 else ("pytorch", "suite")
            got = {}
            for side in order:
                out = Path(tmp) / f"{side}.json"
                subprocess.run([sys.executable, __file__, "--child", side, "--seconds", str(args.seconds),
                                "--out", str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
                got[side] = json.loads(out.read_text())
                versions[side] = got[side]["version"]
            ratios.append(got["suite"]["rate"] / got["pytorch"]["rate"])
            print(f"| {r + 1} | {order[0]} | {got['suite']['rate']:,.0f} | {got['pytorch']['rate']:,.0f} "
                  f"| {ratios[-1]:.3f} |", flush=True)
    print(f"\nmedian suite/PyTorch: {statistics.median(ratios):.3f} "
          f"(keras {versions['suite']}, torch {versions['pytorch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
