"""What the suite ships, checked without the data set: results/ holds complete records of
full-data runs and its README.md is what they make; the shipped weights are listed and
looked up by name, and a wrong name is one line. What the shipped weights score, and
``results.py record``: tests/test_shipped_weights.py."""

import json
import shutil

import pytest

from suite import models
from suite.commands import results
from conftest import REPO
from suite.models import pretrained
from suite.workflows import results as records
from suite.core.errors import UserError

pytestmark = pytest.mark.fast


def one_error_line(capsys, code):
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


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


def test_evaluate_names_the_pretrained_weights_that_exist(tmp_path, capsys):
    from test_evaluate import evaluate_main, one_error_line as one_line
    code, _, err, report = evaluate_main(tmp_path, capsys, "--pretrained", "allcnn")
    assert "no pretrained weights named 'allcnn' (did you mean 'allcnn_c'?)" in one_line(code, err, report)


def test_results_readme_is_what_the_records_make(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(REPO / "results", copy)
    records.write_readme(copy)
    assert (copy / "README.md").read_text() == (REPO / "results" / "README.md").read_text(), \
        "results/README.md is stale: run `python results.py readme`"


def test_readme_of_a_missing_results_folder_is_one_line(tmp_path, capsys):
    code = results.main(["--results", str(tmp_path / "nowhere"), "readme"])
    assert "nowhere: no such folder of records" in one_error_line(capsys, code)
    assert not (tmp_path / "nowhere").exists()


def test_every_record_is_a_complete_full_data_run():
    folders = [p for p in (REPO / "results").iterdir() if p.is_dir() and p.name not in (records.STUDIES, records.SHIPPED)]
    for folder in folders:
        assert all((folder / f).is_file() for f in records.RECORD_FILES), folder
        m = records.finished_run(folder)  # the checks `record` made
        history = json.loads((folder / "history.json").read_text())
        assert len(history["val_accuracy"]) == m["epochs_run"] == m["epochs_planned"]
        assert m["name"] == folder.name


def test_seed_records_differ_from_their_record_only_in_the_seed():
    """mean ± sd never mixes recipes: every ``seed<N>/`` beside a record is the record's
    config with ``training.seed: N`` and nothing else changed (its precision as resolved)."""
    folders = [p for p in (REPO / "results").iterdir() if p.is_dir() and p.name not in (records.STUDIES, records.SHIPPED)]
    seeded = 0
    for folder in folders:
        config, seed = records.config_without_seed(folder)
        for sub in sorted(folder.glob("seed*")):
            other, other_seed = records.config_without_seed(sub)
            assert other == config, f"{sub} differs from {folder} in more than the seed"
            assert sub.name == f"seed{other_seed}" and other_seed != seed, sub
            assert sub in records.seed_records(folder)
            seeded += 1
    assert seeded >= 4


def test_a_changed_setting_is_not_a_seed(tmp_path):
    record = tmp_path / "minivggnet"
    shutil.copytree(REPO / "results" / "minivggnet", record, ignore=shutil.ignore_patterns("seed*"))
    other = record / "seed7"
    shutil.copytree(record, other)
    text = (record / "config.yaml").read_text()
    (other / "config.yaml").write_text(text.replace("seed: 42", "seed: 7"))
    assert records.seed_records(record) == [record, other]
    (other / "config.yaml").write_text(text.replace("seed: 42", "seed: 7").replace("batch_size: 64", "batch_size: 32"))
    assert records.seed_records(record) == [record]


def test_no_record_names_a_path_of_the_machine_that_made_it():
    """The data is named by what it is (a name and the hash of its test images), and the
    weights and configs by their place in the checkout, never by where they lay."""
    for path in (REPO / "results").rglob("*.json"):
        text = path.read_text()
        assert "data_source" not in text and str(REPO) not in text, path
        record = json.loads(text)
        if path.name == "metrics.json":
            assert set(record["data"]) == {"name", "test_images", "test_sha256"}, path
            assert not str(record.get("weights", "")).startswith("/"), path


def test_every_shipped_weights_file_has_its_robustness_and_calibration_in_the_table():
    readme = (REPO / "results" / "README.md").read_text()
    measured = {r["name"]: r for r in records.shipped_rows(REPO / "results")}
    assert set(measured) == set(models.list_models(pretrained=True))
    for name, r in measured.items():
        assert 0 < r["corruption_accuracy"] < r["accuracy"] and 0 <= r["ece"] < 1 and r["temperature"] > 0, name
        assert f"| `{name}` | {r['images']:,} | {100 * r['accuracy']:.2f} | {100 * r['corruption_accuracy']:.2f} |" in readme
        m = json.loads((REPO / "results" / records.SHIPPED / name / "metrics.json").read_text())
        assert m["corruptions"]["names"] == list(records_names()) and m["corruptions"]["severities"] == [1, 2, 3, 4, 5]


def records_names():
    from suite.data.corruptions import NAMES
    return NAMES


def test_every_study_has_a_note_and_is_listed():
    studies = sorted(p for p in (REPO / "results" / records.STUDIES).iterdir() if p.is_dir())
    assert studies
    readme = (REPO / "results" / "README.md").read_text()
    for folder in studies:
        assert (folder / "NOTE.md").read_text().startswith("# "), folder
        assert f"({records.STUDIES}/{folder.name}/NOTE.md)" in readme, folder
