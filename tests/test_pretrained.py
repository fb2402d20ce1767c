"""The pretrained All-CNN-C weights that ship in weights/: they load and reach their recorded accuracy."""

import json

import pytest

from conftest import REPO
from test_evaluate import evaluate_main, metrics_of

WEIGHTS = REPO / "weights" / "allcnn_c.weights.h5"


def test_shipped_weights_reach_the_accuracy_in_their_sidecar(tmp_path, capsys):
    sidecar = json.loads(WEIGHTS.with_name("allcnn_c.json").read_text())
    assert sidecar["model"] == {"name": "allcnn_c", "params": {"final_relu": False}}
    code, _, _, report = evaluate_main(tmp_path, capsys, "--weights", str(WEIGHTS), "--limit", "1000")
    assert code == 0
    m = metrics_of(report)
    assert m["images"] == 1000 and not m["is_sample"]
    assert m["accuracy"] == pytest.approx(sidecar["test_accuracy_first_1000"], abs=0.0015)
    assert (REPO / "weights" / "allcnn_c_curves.png").stat().st_size > 10_000
