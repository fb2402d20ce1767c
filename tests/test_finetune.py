"""Fine-tuning on real data: model.init loads what fits and leaves a new head fresh,
model.freeze keeps layers fixed through training, data.classes trains and tests on a
subset of the classes, and every mistake is one line."""

import json

import h5py
import numpy as np
import pytest

from suite.commands import evaluate
from conftest import REPO, train_run

REPO_CONFIG = REPO / "configs" / "quickstart.yaml"

BASE = ["model.name=shallownet", "model.params={}", "data.source=cifar10", "data.subset=20", "data.test_subset=20",
        "training.epochs=1"]


def arrays(path):
    """``{dataset path: array}`` of a .weights.h5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def cats_dogs(tiny_run, tmp_path_factory):
    """ShallowNet fine-tuned on cats and dogs from the tiny 10-class run, its conv frozen."""
    code, run_dir = train_run(tmp_path_factory.mktemp("ft"), *BASE, f"model.init={tiny_run / 'final.weights.h5'}",
                              "model.freeze=[conv2d]", "data.classes=[cat, dog]", name="catsdogs")
    assert code == 0
    return run_dir


def test_frozen_layers_keep_the_initial_weights_and_the_new_head_is_fresh(tiny_run, cats_dogs):
    start, end = arrays(tiny_run / "final.weights.h5"), arrays(cats_dogs / "final.weights.h5")
    conv = [k for k in start if k.startswith("layers/conv2d/")]
    head = [k for k in start if k.startswith("layers/dense/")]
    assert conv and head
    for k in conv:
        np.testing.assert_array_equal(end[k], start[k])   # frozen: not one step moved it
    assert [end[k].shape[-1] for k in head] == [2, 2]       # kernel and bias of a 2-class head
    assert {start[k].shape[-1] for k in head} == {10}


def test_a_subset_of_classes_is_relabelled_and_recorded(cats_dogs, capsys, tmp_path):
    metrics = json.loads((cats_dogs / "metrics.json").read_text())
    assert metrics["train_images"] == 40 and metrics["test_images"] == 40  # 20 of each class
    sidecar = json.loads((cats_dogs / "final.json").read_text())
    assert sidecar["class_names"] == ["cat", "dog"] and sidecar["model"]["params"]["num_classes"] == 2
    code = evaluate.main(["--run", str(cats_dogs), "--checkpoint", "final", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "2,000 images" in out  # the test set's cats and dogs
    report = next(tmp_path.glob("eval-*"))
    assert [c["class"] for c in json.loads((report / "metrics.json").read_text())["per_class"]] == ["cat", "dog"]


def test_a_pretrained_name_starts_the_network(tmp_path, capsys, cifar_dir):
    code, run_dir = train_run(tmp_path, "model.name=allcnn_c", "model.params={final_relu: false}", "data.source=cifar10",
                              "data.subset=5", "data.test_subset=5", "data.classes=[cat, dog]", "training.epochs=1",
                              "model.init=allcnn_c", "model.freeze=[conv2d, 'conv2d_[1-7]']", name="fromname")
    out = capsys.readouterr().out
    assert code == 0
    assert "weights from" in out and "allcnn_c.weights.h5, with their input scaling (fresh, shapes differ: conv2d_8)" in out


@pytest.mark.parametrize("sets, message", [
    (["data.classes=[cat, dgo]"], "data.classes: no class 'dgo' (did you mean 'dog'?)"),
    (["data.classes=[cat]"], "data.classes: must be null or a list of two or more distinct class names"),
    (["model.freeze=[conv9]"], "model.freeze: 'conv9' matches no layer of shallownet; its layers are"),
    (["model.init=nothing.weights.h5"], "model.init: nothing.weights.h5 does not exist"),
    (["model.init=resnet"], "no pretrained weights named 'resnet'"),
    (["model.init=allcnn_c"], "holds weights of 'allcnn_c' (allcnn_c.json), this config trains 'shallownet'"),
    (["model.name=allcnn_c", "model.init=allcnn_c"], "model.params.final_relu: True, but the model.init weights"),
    (["data.classes=[cat, dog]", "model.params={num_classes: 3}"], "num_classes: 3 for the 2 classes"),
])
def test_mistakes_are_one_line_and_make_no_run_folder(tmp_path, capsys, cifar_dir, sets, message):
    code, run_dir = train_run(tmp_path, *BASE, *sets)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and run_dir is None, err
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_weights_of_another_architecture_without_a_sidecar_are_refused(tmp_path, capsys, cifar_dir):
    from conftest import REPO
    bare = tmp_path / "bare.weights.h5"
    bare.write_bytes((REPO / "weights" / "allcnn_c.weights.h5").read_bytes())  # no sidecar beside it
    code, run_dir = train_run(tmp_path / "runs", *BASE, f"model.init={bare}")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and run_dir is None and len(err) == 1 and "another architecture" in err[0]


def test_a_stopped_fine_tune_resumes_with_its_layers_still_frozen(tiny_run, tmp_path, capsys):
    sets = [*BASE, "training.epochs=2", f"model.init={tiny_run / 'final.weights.h5'}", "model.freeze=[conv2d]",
            "data.classes=[cat, dog]"]
    from suite.commands import train
    args = ["--config", str(REPO_CONFIG), "--stop-after", "1"] + [a for x in [*sets, f"output.dir={tmp_path}"]
                                                                  for a in ("--set", x)]
    assert train.main(args) == 0
    run_dir, = tmp_path.glob("quickstart-*")
    assert train.main(["--resume", str(run_dir)]) == 0
    start, end = arrays(tiny_run / "final.weights.h5"), arrays(run_dir / "final.weights.h5")
    for k in (k for k in start if k.startswith("layers/conv2d/")):
        np.testing.assert_array_equal(end[k], start[k])
