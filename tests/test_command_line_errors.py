"""Mistakes as a user meets them, in a process of their own: ``python train.py`` and
``python -m models`` exit with status 2 and one line on stderr, no traceback, and a hostile
batch file runs nothing. (Each process starts TensorFlow, seconds apiece: the in-process
checks of the same mistakes are in the fast tier.)"""

import os
import pickle
import subprocess
import sys

from conftest import REPO
from test_hostile_files import REFUSED, Payload, batches


def test_bad_config_from_the_command_line_has_no_traceback(tmp_path):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("model: {name: shallownet}\ntraining: {epochs: 1, batch_sise: 32}\n")
    proc = subprocess.run([sys.executable, "train.py", "--config", str(cfg)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {cfg}: training.batch_sise: unknown key (did you mean 'batch_size'?)"]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_python_m_models_bad_param_is_one_error_line():
    proc = subprocess.run([sys.executable, "-m", "models", "shallownet", "--param", "dropout=[0.5,"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["error: --param dropout: cannot parse value '[0.5,' "
                                                "(expected the node content, but found '<stream end>')"]


def test_train_dry_run_on_a_malicious_folder_exits_2_with_one_line(tmp_path):
    marker = tmp_path / "ran"
    path = batches(tmp_path / "c", replace={"data_batch_1": pickle.dumps(Payload(marker))})
    proc = subprocess.run([sys.executable, "train.py", "--config", "configs/quickstart.yaml", "--dry-run",
                           "--set", "data.source=cifar10", "--set", f"data.path={path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {path}/data_batch_1: refused to load "
                                                f"{os.system.__module__}.system {REFUSED}"]
    assert not marker.exists()
