"""The rules values pass on their way in: ``KEY=VALUE`` items read as YAML
(``suite.core.keyvalue``), and a model knob's value of the wrong kind (``suite.core.rules``), each
mistake one line."""

import pytest

from suite.models import create
from suite.core.errors import UserError
from suite.core.keyvalue import parse_items

pytestmark = pytest.mark.fast


def test_key_value_items():
    assert parse_items(["a=1", "b=[1, 2]", "c=", "d=false"], "--param") == [
        ("a", 1), ("b", [1, 2]), ("c", None), ("d", False)]
    with pytest.raises(UserError, match=r"--param nokey: expected KEY=VALUE"):
        parse_items(["nokey"], "--param")
    with pytest.raises(UserError, match=r"--param a: cannot parse value '\[1,'"):
        parse_items(["a=[1,"], "--param")


@pytest.mark.parametrize("name, param, expected", [
    ("minivggnet", "weight_decay=abc", "model 'minivggnet': weight_decay must be a finite number, got 'abc'"),
    ("minivggnet", "weight_decay=.inf", "model 'minivggnet': weight_decay must be a finite number, got inf"),
    ("allcnn_c", "final_relu=3", "model 'allcnn_c': final_relu must be true or false, got 3"),
    ("resnet", "depth=2.5", "model 'resnet': depth must be a whole number, got 2.5"),
    ("lenet", "input_shape=[2,2,3]", "model 'lenet' cannot be built with input_shape=[2, 2, 3]: Computed output "
                                     "size would be zero or negative."),
], ids=["text for a number", "infinite", "number for a bool", "fraction for an int", "input too small"])
def test_a_wrong_kind_of_knob_value_is_one_line(name, param, expected):
    key, value = parse_items([param], "--param")[0]
    with pytest.raises(UserError) as e:
        create(name, **{key: value})
    assert str(e.value).startswith(expected) and "\n" not in str(e.value) and "\x1b" not in str(e.value)
