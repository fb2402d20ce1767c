"""predict.py on real CIFAR-10 images written as files: the top classes, CSV, unreadable files,
and the Kaggle competition's submission."""

import csv

import numpy as np
import pytest
from PIL import Image

from suite import models
from suite.commands import predict

N = 12


@pytest.fixture(scope="module")
def allcnn():
    return models.create("allcnn_c", pretrained=True)


@pytest.fixture(scope="module")
def expected(cifar, allcnn):
    """The shipped All-CNN-C's probabilities for the first N test images."""
    return allcnn.predict(cifar.x_test[:N], verbose=0)


def run(capsys, *args):
    code = predict.main([*map(str, args), "--pretrained", "allcnn_c"])
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err.strip().splitlines()


def test_png_files_are_classified_as_the_model_classifies_the_arrays(tmp_path, capsys, cifar, expected):
    for i in range(N):
        Image.fromarray(cifar.x_test[i]).save(tmp_path / f"img{i:02d}.png")
    code, out, err = run(capsys, tmp_path, "--top", "2", "--csv", tmp_path / "p.csv")
    assert code == 0 and not err
    assert len(out) == N
    names = cifar.class_names
    for i, line in enumerate(out):
        top = np.argsort(-expected[i])[:2]
        assert line.startswith(f"{tmp_path / f'img{i:02d}.png'}: {names[top[0]]} ")
        assert f", {names[top[1]]} " in line
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == N and rows[0]["class_1"] == names[int(np.argmax(expected[0]))]
    assert float(rows[0]["probability_1"]) == pytest.approx(float(expected[0].max()), abs=1e-5)


def test_photos_of_any_size_are_brought_to_32x32(tmp_path, capsys, cifar):
    Image.fromarray(cifar.x_test[3]).resize((300, 200), Image.Resampling.BICUBIC).save(tmp_path / "plane.jpg", quality=95)
    code, out, _ = run(capsys, tmp_path / "plane.jpg")
    assert code == 0 and out[0].split(": ")[1].startswith(cifar.class_names[cifar.y_test[3]])  # an airplane


def test_an_unreadable_file_is_one_line_and_the_others_are_still_classified(tmp_path, capsys, cifar):
    Image.fromarray(cifar.x_test[0]).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, out, err = run(capsys, tmp_path / "broken.png", tmp_path / "good.png", tmp_path / "missing.jpg")
    assert code == 1
    assert len(out) == 1 and out[0].startswith(str(tmp_path / "good.png"))
    assert [line.split(":")[0] for line in err[:2]] == ["error"] * 2
    assert "broken.png" in err[0] and "missing.jpg" in err[1] and "Traceback" not in "\n".join(err)


def kaggle_folder(root, images, ids):
    folder = root / "test"
    folder.mkdir()
    for image, i in zip(images, ids):
        Image.fromarray(image).save(folder / f"{i}.png")
    return folder


def test_kaggle_submission_has_every_id_in_numeric_order_with_class_names(tmp_path, capsys, cifar, expected):
    ids = list(range(1, N + 1))
    folder = kaggle_folder(tmp_path, cifar.x_test[:N], ids)  # 1.png ... 12.png: 10 sorts before 2 as text
    code, out, _ = run(capsys, "--kaggle", folder, "-o", tmp_path / "submission.csv")
    assert code == 0 and out[-1] == f"{tmp_path / 'submission.csv'}: {N} predictions"
    rows = list(csv.reader((tmp_path / "submission.csv").open()))
    assert rows[0] == ["id", "label"]
    assert [int(r[0]) for r in rows[1:]] == ids
    assert [r[1] for r in rows[1:]] == [cifar.class_names[k] for k in expected.argmax(axis=1)]


def test_kaggle_folder_with_a_stray_file_writes_nothing(tmp_path, capsys, cifar):
    folder = kaggle_folder(tmp_path, cifar.x_test[:3], [1, 2, 3])
    (folder / "notes.txt").write_text("x")
    old = tmp_path / "submission.csv"
    old.write_text("id,label\n1,cat\n")
    code, _, err = run(capsys, "--kaggle", folder, "-o", old)
    assert code == 2 and len(err) == 1 and "notes.txt is not <id>.png" in err[0]
    assert old.read_text() == "id,label\n1,cat\n"


@pytest.mark.parametrize("args, message", [
    ([], "give image files or folders"),
    (["x.png", "--top", "0"], "--top must be >= 1"),
    (["x.png", "-o", "s.csv"], "-o goes with --kaggle"),
])
def test_bad_arguments_are_one_line(capsys, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2 and len(err) == 1 and message in err[0]


def test_train_on_a_kaggle_folder_then_submit(tmp_path, capsys, cifar):
    """A Kaggle-layout folder of real images: train.py holds out a validation fraction (there
    are no test labels), predict.py --kaggle writes the submission from the run."""
    from conftest import train_run
    folder = tmp_path / "kaggle"
    (folder / "train").mkdir(parents=True)
    idx = np.concatenate([np.flatnonzero(cifar.y_train == c)[:20] for c in range(10)])
    rows = ["id,label"]
    for i, k in enumerate(idx, start=1):
        Image.fromarray(cifar.x_train[k]).save(folder / "train" / f"{i}.png")
        rows.append(f"{i},{cifar.class_names[cifar.y_train[k]]}")
    (folder / "trainLabels.csv").write_text("\n".join(rows) + "\n")
    test = kaggle_folder(folder, cifar.x_test[:15], range(1, 16))

    code, run_dir = train_run(tmp_path / "runs", "model.name=shallownet", "model.params={}", "data.source=cifar10", f"data.path={folder}",
                              "data.validation=0.2", "training.epochs=1", name="kaggle")
    assert code == 0
    out = capsys.readouterr().out
    assert "160 training, 40 validation" in out and "no test labels" in out
    import json
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_images"] == 160 and "final_test_accuracy" not in metrics
    assert 0 <= metrics["final_val_accuracy"] <= 1

    code = predict.main(["--kaggle", str(test), "-o", str(tmp_path / "submission.csv"), "--run", str(run_dir),
                         "--checkpoint", "final"])
    assert code == 0
    rows = list(csv.reader((tmp_path / "submission.csv").open()))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 16)) and {r[1] for r in rows[1:]} <= set(cifar.class_names)


def test_a_kaggle_folder_cannot_validate_on_test_labels_it_lacks(tmp_path, capsys, cifar):
    from conftest import train_run
    folder = tmp_path / "kaggle"
    (folder / "train").mkdir(parents=True)
    Image.fromarray(cifar.x_train[0]).save(folder / "train" / "1.png")
    (folder / "trainLabels.csv").write_text(f"id,label\n1,{cifar.class_names[cifar.y_train[0]]}\n")
    code, run_dir = train_run(tmp_path / "runs", "data.source=cifar10", f"data.path={folder}", "training.epochs=1")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and run_dir is None and len(err) == 1 and "has no test labels" in err[0]
    (folder / "trainLabels.csv").write_text("id,label\n1,kitten\n")
    code, _ = train_run(tmp_path / "runs", "data.source=cifar10", f"data.path={folder}", "data.validation=0.5", "training.epochs=1")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "trainLabels.csv:2: expected <id>,<class name>" in err[0]
