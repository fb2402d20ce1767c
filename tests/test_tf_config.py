"""TF_CONFIG, the cluster of a multi-worker run (``suite.training.cluster``): who the chief is, one
line for every mistake, before train.py writes anything, and the cause of a lost worker.
The workers themselves: tests/test_multiworker.py."""

import json

import pytest

from conftest import train_run
from suite.training.cluster import _cause, from_tf_config, loopback_tf_configs
from suite.core.errors import UserError
from test_multiworker import SETS

pytestmark = pytest.mark.fast


def test_tf_config_names_the_chief():
    workers = ["10.0.0.1:2222", "10.0.0.2:2222"]
    plain = from_tf_config(json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 1}}))
    assert not plain.is_chief and plain.addresses == tuple(workers)
    spec = {"cluster": {"chief": ["10.0.0.9:2222"], "worker": workers}, "task": {"type": "worker", "index": 0}}
    with_chief = from_tf_config(json.dumps(spec))
    assert not with_chief.is_chief and with_chief.rank == 1
    assert from_tf_config(json.dumps({**spec, "task": {"type": "chief", "index": 0}})).is_chief


@pytest.mark.parametrize("text, expected", [
    ("{not json", "TF_CONFIG: expected JSON like"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG: expected JSON like"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG: jobs ps are not supported"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG: task worker 2 is not in the cluster (2 worker)"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG: cluster must map each job to a list"),
])
def test_a_bad_tf_config_is_one_line(text, expected):
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        from_tf_config(text)


def test_a_bad_tf_config_stops_train_py_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker"}}')
    code, run = train_run(tmp_path / "runs", *SETS, config="configs/shallownet.yaml")
    assert code == 2 and run is None
    err = capsys.readouterr().err
    assert err.startswith("error: TF_CONFIG: expected JSON like") and err.count("\n") == 1


def test_tf_config_under_another_backend_is_refused_before_a_folder_is_made(monkeypatch):
    import keras

    from suite.training import cluster
    monkeypatch.setenv("TF_CONFIG", loopback_tf_configs(2)[1])
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(UserError, match="TF_CONFIG: training on several machines needs the TensorFlow backend; "
                                        "this is jax"):
        cluster.run_folder(None, lambda: pytest.fail("made a run folder"))


def test_the_cause_of_a_lost_worker_is_the_line_that_says_it():
    # shaped as TF 2.21's (the killed-worker test checks a real one): a peer unreachable, a peer silent
    refused = ("Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at (most recent call last):\n"
               "  File \"train.py\", line 1, in <module>\n\nfailed to connect to all addresses; last error: "
               "Connection refused\nAdditional GRPC error information from remote target /job:worker/task:1:\n"
               "\t [[{{node CollectiveReduceV2}}]] [Op:__inference_one_step_on_iterator_1]")
    assert _cause(refused) == "failed to connect to all addresses; last error: Connection refused"
    stopped = ("{{function_node __wrapped__CollectiveReduceV2}} Collective ops is aborted by: The following tasks "
               "are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.")
    assert _cause(stopped) == ("Collective ops is aborted by: The following tasks are unhealthy "
                               "(stopped sending heartbeats): /job:worker/replica:0/task:1")
