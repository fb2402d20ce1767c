"""Installed, the suite works anywhere: the wheel built from this checkout carries the configs,
the shipped weights with their sidecars and the quick-start sample, and installed into a
fresh virtual environment outside the checkout it runs the quick start by the config's name,
a ``--pretrained`` evaluation, an ONNX export that onnxruntime loads, and ``cifar10-models``,
from a folder of its own.

The new environment gets this one's packages (TensorFlow and the rest) through a ``.pth``
file instead of downloading them again, and the wheel itself with ``pip install --no-deps``;
the checkout is not importable there (checked).
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "README.md", "LICENSE", "suite", "models", "callbacks", "configs", "weights", "data")
MAX_WHEEL_BYTES = 100 * 1024 * 1024


def build_wheel(tmp_path):
    """The wheel of a copy of the checkout's sources (so that no build/ appears in the checkout)."""
    source, dist = tmp_path / "source", tmp_path / "dist"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(dist), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = dist.glob("cifar10_cnn_suite-*.whl")
    return wheel


def fresh_environment(tmp_path, wheel):
    """A new virtual environment with the wheel installed, this one's packages visible through a .pth."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_suite_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def test_the_wheel_carries_the_shipped_files_and_runs_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    size = wheel.stat().st_size
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_weights = sorted(p.name for p in (REPO / "weights").iterdir() if p.suffix in (".h5", ".json"))
    assert {f"suite/shipped/configs/{p.name}" for p in (REPO / "configs").glob("*.yaml")} <= names
    assert {f"suite/shipped/weights/{n}" for n in shipped_weights} <= names
    assert {"suite/shipped/data/cifar10_sample.npz", "suite/shipped/data/SAMPLE.md", "suite/models/registry.py",
            "suite/callbacks/checkpoints.py", "suite/api/training.py"} <= names
    assert not any(n.startswith(("tests/", "results/", "outputs/", "bench/")) for n in names)
    assert size < MAX_WHEEL_BYTES, f"{wheel.name}: {size / 2**20:.1f} MB"
    print(f"{wheel.name}: {size / 2**20:.1f} MB, {len(names)} files")

    venv = fresh_environment(tmp_path, wheel)
    bin_dir = venv / "bin"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    def run(*argv, timeout=900):
        proc = subprocess.run([str(a) for a in argv], cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, f"{argv}: {proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr
        return proc.stdout

    where = json.loads(run(bin_dir / "python", "-c", "import json, suite, suite.core.paths as p; "
                           "print(json.dumps([suite.__file__, str(p.SAMPLE), p.IN_CHECKOUT]))"))
    assert Path(where[0]).is_relative_to(venv) and not Path(where[0]).is_relative_to(REPO)
    assert Path(where[1]).is_relative_to(venv) and where[2] is False

    assert " 0.1.0 (cifar10-cnn-suite; installed at " in run(bin_dir / "cifar10-train", "--version")
    run(bin_dir / "cifar10-train", "--config", "quickstart", "--set", "training.epochs=1")
    [run_dir] = (elsewhere / "outputs").glob("quickstart-*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["is_sample"] and metrics["test_images"] == 500

    evaluated = run(bin_dir / "cifar10-evaluate", "--pretrained", "allcnn_c", "--data", "sample")
    assert "accuracy" in evaluated and len(list((elsewhere / "outputs").glob("eval-allcnn_c*"))) == 1

    exported = run(bin_dir / "cifar10-export", "--pretrained", "allcnn_c", "--format", "onnx", "--data", "sample",
                   "-o", "exported")
    assert "in onnxruntime" in exported and "class for 500 of 500" in exported
    loads = run(bin_dir / "python", "-c", "import numpy as np, onnxruntime as ort; "
                "s = ort.InferenceSession('exported/allcnn_c.onnx', providers=['CPUExecutionProvider']); "
                "print(s.run(None, {'images': np.zeros((2, 32, 32, 3), np.uint8)})[0].shape)")
    assert loads.strip() == "(2, 10)"

    listed = run(bin_dir / "cifar10-models")
    assert {"airbench94", "allcnn_c", "resnet20", "shallownet"} <= {line.split()[0] for line in listed.splitlines()}
