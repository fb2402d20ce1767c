"""The suite's measured results: the shipped weights load by name and give their recorded
figures again, results.py records runs and ships weights, results/README.md is current."""

import json
import math
import shutil

import numpy as np
import pytest

import models
import results
from conftest import REPO
from models import pretrained
from suite.errors import UserError

FIRST = results.FIRST_TEST  # test images each shipped weights file is checked on


def one_error_line(capsys, code):
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("name", models.list_models(pretrained=True))
def test_shipped_weights_give_their_sidecar_figure_on_the_first_1000_test_images(name, cifar):
    sidecar = json.loads((pretrained.WEIGHTS_DIR / f"{name}.json").read_text())
    net = models.create(name, pretrained=True)
    probs = net.predict(cifar.x_test[:FIRST], batch_size=250, verbose=0)
    assert probs.shape == (FIRST, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)  # probabilities, from uint8 input
    accuracy = float(np.mean(probs.argmax(axis=1) == cifar.y_test[:FIRST]))
    # The figure these images gave when the weights were shipped, to within one image
    # (another CPU may round one borderline prediction the other way).
    assert accuracy == pytest.approx(sidecar[f"test_accuracy_first_{FIRST}"], abs=1.5 / FIRST), name
    p = sidecar["test_accuracy"]  # on all 10,000 test images
    tolerance = 3 * math.sqrt(p * (1 - p) / FIRST)  # three binomial standard errors of a 1,000-image estimate
    assert abs(accuracy - p) <= tolerance, (name, accuracy, p, tolerance)


def test_list_models_pretrained_lists_the_shipped_weights():
    names = models.list_models(pretrained=True)
    assert "allcnn_c" in names
    assert set(names) <= set(models.list_models())
    assert all((pretrained.WEIGHTS_DIR / f"{n}.weights.h5").is_file() for n in names)


@pytest.mark.parametrize("name", ["resnet110", "minivggnet_nobn", "nosuch"],
                         ids=["registered", "a config's name", "unregistered"])
def test_unknown_pretrained_name_is_one_line_that_lists_the_available(name):
    with pytest.raises(UserError) as e:
        models.create(name, pretrained=True)
    message = str(e.value)
    assert message.startswith(f"no pretrained weights named {name!r}") and "\n" not in message
    listed = message.split("pretrained weights exist for: ")[1].split(", ")
    assert listed == models.list_models(pretrained=True)
    with pytest.raises(UserError, match="did you mean 'allcnn_c'"):
        pretrained.pretrained_weights("allcnn_cc")


def test_pretrained_refuses_knobs_the_weights_do_not_have():
    with pytest.raises(UserError, match="final_relu=True differs"):
        models.create("allcnn_c", pretrained=True, final_relu=True)


@pytest.mark.parametrize("name", models.list_models(pretrained=True))
def test_evaluate_takes_pretrained_weights_by_name(name, tmp_path, capsys, cifar):
    from test_evaluate import evaluate_main, metrics_of
    code, out, _, report = evaluate_main(tmp_path, capsys, "--pretrained", name, "--limit", "200", "--batch-size", "100")
    assert code == 0 and f"weights/{name}.weights.h5" in out
    m = metrics_of(report)
    assert m["images"] == 200 and m["model"] == name
    probs = models.create(name, pretrained=True).predict(cifar.x_test[:200], batch_size=100, verbose=0)
    # what models.create's network predicts, to within one borderline image
    assert m["accuracy"] == pytest.approx(float(np.mean(probs.argmax(axis=1) == cifar.y_test[:200])), abs=1.5 / 200)


def test_evaluate_names_the_pretrained_weights_that_exist(tmp_path, capsys):
    from test_evaluate import evaluate_main, one_error_line as one_line
    code, _, err, report = evaluate_main(tmp_path, capsys, "--pretrained", "allcnn")
    assert "no pretrained weights named 'allcnn' (did you mean 'allcnn_c'?)" in one_line(code, err, report)


def test_results_readme_is_what_the_records_make(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(REPO / "results", copy)
    results.write_readme(copy)
    assert (copy / "README.md").read_text() == (REPO / "results" / "README.md").read_text(), \
        "results/README.md is stale: run `python results.py readme`"


def test_readme_of_a_missing_results_folder_is_one_line(tmp_path, capsys):
    code = results.main(["--results", str(tmp_path / "nowhere"), "readme"])
    assert "nowhere: no such folder of records" in one_error_line(capsys, code)
    assert not (tmp_path / "nowhere").exists()


def test_every_record_is_a_complete_full_data_run():
    folders = [p for p in (REPO / "results").iterdir() if p.is_dir()]
    for folder in folders:
        assert all((folder / f).is_file() for f in results.RECORD_FILES), folder
        m = results.finished_run(folder)  # the checks `record` made
        history = json.loads((folder / "history.json").read_text())
        assert len(history["val_accuracy"]) == m["epochs_run"] == m["epochs_planned"]
        assert m["name"] == folder.name


def test_record_refuses_a_subset_run_and_writes_nothing(tiny_run, tmp_path, capsys):
    code = results.main(["--results", str(tmp_path / "results"), "record", str(tiny_run)])
    assert "a record is a run on the full CIFAR-10" in one_error_line(capsys, code)
    assert not (tmp_path / "results").exists()


def test_record_copies_the_files_and_ships_weights_that_load_by_name(tiny_run, tmp_path, capsys, monkeypatch,
                                                                      fixed_batch, cifar):
    # The tiny run stands in for a full one (its metrics say so): what is tested is the copying.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(train_images=results.FULL_TRAIN, test_images=results.FULL_TEST)
    (run / "metrics.json").write_text(json.dumps(metrics))
    out, weights = tmp_path / "results", tmp_path / "weights"
    args = ["--results", str(out), "record", str(run), "--weights", "--weights-dir", str(weights)]

    assert results.main(args) == 0
    capsys.readouterr()
    record = out / metrics["name"]
    for name in results.RECORD_FILES:
        assert (record / name).read_bytes() == (run / name).read_bytes()
    assert not list(record.glob("*.weights.h5"))  # a record holds no weights
    shipped = weights / "shallownet.weights.h5"
    assert shipped.read_bytes() == (run / "final.weights.h5").read_bytes()
    sidecar = json.loads((weights / "shallownet.json").read_text())
    assert sidecar["test_accuracy"] == metrics["final_test_accuracy"]
    net, _ = pretrained.load_wrapped(shipped, models.create)
    probs = net.predict(cifar.x_test[:FIRST], batch_size=250, verbose=0)
    assert sidecar[f"test_accuracy_first_{FIRST}"] == float(np.mean(probs.argmax(axis=1) == cifar.y_test[:FIRST]))
    assert sidecar["model"]["name"] == "shallownet" and sidecar["epochs"] == 2
    assert "shallownet" in (out / "README.md").read_text()

    before = {p: p.read_bytes() for p in [*record.iterdir(), shipped]}
    assert "--replace" in one_error_line(capsys, results.main(args))
    assert {p: p.read_bytes() for p in before} == before

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    assert models.list_models(pretrained=True) == ["shallownet"]
    net = models.create("shallownet", pretrained=True)
    own = models.create("shallownet")
    own.load_weights(str(run / "final.weights.h5"))
    images = fixed_batch[0]
    expected = own.predict(images.astype("float32") / 255.0, verbose=0)  # the run's normalize: scale
    np.testing.assert_allclose(net.predict(images, verbose=0), expected, atol=1e-5)
