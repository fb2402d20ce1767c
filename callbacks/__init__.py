"""Keras callbacks of the suite, for what Keras' own callbacks don't do."""

from suite.callbacks.checkpoints import BestCheckpoint, TrainingState, restore_state  # noqa: F401
from suite.callbacks.guards import (StopAfterEpoch, StopOnNaN, StopOnSignal, TrainingDiverged,  # noqa: F401
                                    TrainingInterrupted)
from suite.callbacks.learning_rate import LearningRateLogger, TensorBoard  # noqa: F401
from suite.callbacks.training_monitor import TrainingMonitor  # noqa: F401
