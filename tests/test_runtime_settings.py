"""The runtime settings' rules (``suite.training.runtime``): where the flips and crops run, and how
many steps one execution takes."""

import pytest

from suite.core.errors import UserError
from suite.training.runtime import STEPS_PER_EXECUTION, _augment_in, _steps_per_execution

pytestmark = pytest.mark.fast


def test_flip_crop_runs_in_the_input_under_tensorflow_by_default():
    assert _augment_in("auto", "tensorflow") == "input" and _augment_in("auto", "jax") == "model"
    assert _augment_in("model", "tensorflow") == "model"
    assert _augment_in("input", "jax") == "input"  # suite.data.pipeline.Batches, in NumPy


def test_steps_per_execution_default_and_limits():
    assert _steps_per_execution("auto", "tensorflow") == STEPS_PER_EXECUTION > 1
    assert _steps_per_execution("auto", "jax") == 1 and _steps_per_execution(3, "jax") == 3
    strategy = object()  # any tf.distribute strategy
    assert _steps_per_execution("auto", "tensorflow", strategy) == 1
    with pytest.raises(UserError, match="runtime.steps_per_execution: 4 fails under a tf.distribute strategy"):
        _steps_per_execution(4, "tensorflow", strategy)
