"""The bare training step in float32 against mixed bfloat16, on this machine's CPU.

    python bench/precision.py                                   # minivggnet, allcnn_c, resnet20
    python bench/precision.py --models resnet20 --seconds 20 --out bench/precision_cpu.md

For each model, two copies of the network are built in one process, one under Keras'
``float32`` policy and one under ``mixed_bfloat16`` (a layer keeps the policy it was
built with), and their ``train_on_batch`` steps on float32 tensors already in memory
(``throughput.BareStep``: no input pipeline, no augmentation, no callbacks) run in
turns, in blocks of about ``--block`` seconds, until each has run about ``--seconds``.
Figures taken in turns share the machine's drift, so the ratio of each pair of blocks is
steadier than either speed; the table gives the medians over the pairs. On a CPU mixed
bfloat16 can only be faster where oneDNN has bfloat16 kernels (AVX512_BF16, AMX).
This measures speed only: whether training in bfloat16 reaches the same accuracy is a
separate, much longer measurement.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import BareStep, keras  # noqa: E402  (keras imported quietly there)

PRECISIONS = ("float32", "mixed_bfloat16")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="minivggnet,allcnn_c,resnet20", help="comma-separated names")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds of each precision, per model")
    p.add_argument("--block", type=float, default=3.0, help="seconds of one block of steps")
    p.add_argument("--out", help="also write the table (Markdown) and the raw figures (.json beside it)")
    return p.parse_args()


def cpu_flags():
    """The CPU's bfloat16 features, from /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return sorted({"avx512_bf16", "amx_bf16", "amx_tile"} & set(flags.split(":", 1)[1].split()))


def measure(name, batch, seconds, block):
    """``{precision: [images/s of each block]}`` for ``name``, the precisions in turns."""
    steps = {}
    for precision in PRECISIONS:
        keras.mixed_precision.set_dtype_policy(precision)
        steps[precision] = BareStep(name, batch, jit=False)
    keras.mixed_precision.set_dtype_policy("float32")
    per_block = {p: max(1, round(block / step.seconds(1))) for p, step in steps.items()}
    rates, spent = {p: [] for p in PRECISIONS}, dict.fromkeys(PRECISIONS, 0.0)
    while min(spent.values()) < seconds:
        for p in PRECISIONS:
            elapsed = steps[p].seconds(per_block[p])
            spent[p] += elapsed
            rates[p].append(per_block[p] * batch / elapsed)
    return rates, per_block


def main():
    args = parse_args()
    names = args.models.split(",")
    load_before = os.getloadavg()[0]  # on a busy machine the figures say little: record how busy
    rows, raw = [], {"cpu_flags": cpu_flags(), "keras": keras.__version__, "backend": keras.backend.backend(),
                     "batch_size": args.batch_size, "models": {}}
    for name in names:
        rates, per_block = measure(name, args.batch_size, args.seconds, args.block)
        ratios = [b / f for f, b in zip(rates["float32"], rates["mixed_bfloat16"])]
        raw["models"][name] = {"images_per_sec": rates, "steps_per_block": per_block, "ratios": ratios}
        rows.append(f"| {name} | {statistics.median(rates['float32']):,.0f} | "
                    f"{statistics.median(rates['mixed_bfloat16']):,.0f} | {statistics.median(ratios):.2f} "
                    f"({min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} pairs) |")
        print(rows[-1], flush=True)
    raw["load_average"] = [load_before, os.getloadavg()[0]]
    header = (f"Bare training step, batch {args.batch_size}, {keras.backend.backend()} backend "
              f"(keras {keras.__version__}), XLA off; CPU bfloat16 features: "
              f"{', '.join(raw['cpu_flags']) or 'none'}; {os.cpu_count()} cores, load average "
              f"{load_before:.1f} at the start, {raw['load_average'][1]:.1f} at the end\n\n"
              "| model | float32 img/s | mixed_bfloat16 img/s | bf16/f32 (range, pairs of blocks) |\n"
              "|---|---:|---:|---:|\n")
    table = header + "\n".join(rows) + "\n"
    print("\n" + table)
    if args.out:
        Path(args.out).write_text(table)
        Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
