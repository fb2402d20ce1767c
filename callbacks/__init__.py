"""Keras callbacks of the suite, for what Keras' own callbacks don't do."""

from callbacks.checkpoints import BestCheckpoint, TrainingState, restore_state  # noqa: F401
from callbacks.learning_rate import LearningRateLogger, TensorBoard  # noqa: F401
from callbacks.guards import StopAfterEpoch, StopOnNaN, StopOnSignal, TrainingDiverged, TrainingInterrupted  # noqa: F401
from callbacks.training_monitor import TrainingMonitor  # noqa: F401
