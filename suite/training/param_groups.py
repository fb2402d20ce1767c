"""What Keras' optimizers lack and airbench94 needs (Jordan, arXiv:2404.00498; its
``legacy/airbench94.py``), for any optimizer the config names:

- ``lr_scale``: a learning-rate factor for the variables whose path matches a pattern
  (airbench's ``bias_scaler`` of 64 for the batch-norm biases), not applied to the
  weight decay (as the source: its per-group weight decay is divided by the factor);
- ``train_epochs``: variables that are updated only in the first N epochs (the source's
  whitening bias, ``requires_grad`` off after 3 epochs): no update at all afterwards;
- ``coupled`` weight decay: ``gradient += weight_decay * w`` for every trained variable,
  inside the optimizer, as PyTorch's ``SGD(weight_decay=...)``;
- lookahead (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back",
  arXiv:1907.08610), with airbench's schedule: every ``every`` steps the slow weights move
  towards the fast ones, ``slow += (1 - decay * (t / T) ** power) * (fast - slow)``, and the
  fast weights restart from them; at the last step ``T`` the weights become the slow ones.

Everything is computed from the optimizer's iteration counter and its own variables
(the slow weights are optimizer variables, saved in ``state.h5``), so a resumed run
continues exactly, and it is plain ``keras.ops``: the same code runs under TensorFlow
and JAX. Patterns are ``fnmatch`` patterns over ``variable.path``
(``block1_norm1/beta``; ``python -m models NAME`` lists a model's layers).
"""

import fnmatch
from dataclasses import dataclass, field

from keras import ops

from suite.core.errors import UserError


@dataclass
class Extras:
    lr_scale: dict = field(default_factory=dict)       # pattern -> factor
    train_epochs: dict = field(default_factory=dict)   # pattern -> epochs
    coupled_decay: float = 0.0
    lookahead_every: int = 0                           # 0: off
    lookahead_decay: float = 0.0
    lookahead_power: float = 1.0
    steps_per_epoch: int = 1
    total_steps: int = 1

    def wanted(self):
        return bool(self.lr_scale or self.train_epochs or self.coupled_decay or self.lookahead_every)


def extend(optimizer, extras):
    """``optimizer`` (a Keras optimizer, not yet built) with ``extras``; itself if none is asked."""
    if not extras.wanted():
        return optimizer
    optimizer.__class__ = _extended_class(type(optimizer))
    optimizer.extras = extras
    return optimizer


_CLASSES = {}


def _extended_class(base):
    if base not in _CLASSES:
        _CLASSES[base] = type(base.__name__, (_Extended, base), {"__module__": __name__})
    return _CLASSES[base]


def _matching(patterns, path):
    """The value of the first pattern that matches ``path``, else None."""
    return next((value for pattern, value in patterns.items() if fnmatch.fnmatchcase(path, pattern)), None)


class _Extended:
    """Mixed in front of a Keras optimizer class by ``extend``."""

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        paths = [v.path for v in variables]
        for key in ("lr_scale", "train_epochs"):
            for pattern in getattr(self.extras, key):
                if not any(fnmatch.fnmatchcase(p, pattern) for p in paths):
                    raise UserError(f"optimizer.{key}: {pattern!r} matches no trained variable of this model "
                                    f"(they are named like {', '.join(paths[:3])}, ...)")
        self._scales = [_matching(self.extras.lr_scale, p) or 1.0 for p in paths]
        self._epochs = [_matching(self.extras.train_epochs, p) for p in paths]
        self._slow = []
        if self.extras.lookahead_every:
            self._slow = self.add_optimizer_variables(variables, "slow")
            for slow, variable in zip(self._slow, variables):
                slow.assign(ops.copy(variable))  # a copy: JAX may not donate one buffer twice

    def update_step(self, gradient, variable, learning_rate):
        # ``variable`` may be the backend's own variable (TensorFlow's), without a Keras path.
        extras, dtype, index = self.extras, variable.dtype, self._get_variable_index(variable)
        scale, epochs = self._scales[index], self._epochs[index]
        learning_rate = ops.cast(learning_rate, dtype) * scale
        if extras.coupled_decay:
            gradient = ops.cast(gradient, dtype) + (extras.coupled_decay / scale) * variable
        if epochs is not None:
            active = ops.cast(ops.less(self.iterations, epochs * extras.steps_per_epoch), dtype)
            learning_rate = learning_rate * active
            if getattr(self, "momentums", None):  # SGD: no residual momentum once frozen
                self.assign(self.momentums[index], self.momentums[index] * active)
        super().update_step(gradient, variable, learning_rate)
        if extras.lookahead_every:
            self._lookahead(variable, self._slow[index])

    def _lookahead(self, variable, slow):
        extras = self.extras
        step = self.iterations + 1  # the steps done once this one is
        on_beat = ops.equal(step % extras.lookahead_every, 0)
        progress = ops.cast(step, "float32") / extras.total_steps
        weight = ops.where(on_beat, 1.0 - extras.lookahead_decay * progress ** extras.lookahead_power, 0.0)
        fast, before = ops.convert_to_tensor(variable), ops.convert_to_tensor(slow)
        moved = before + ops.cast(weight, fast.dtype) * (fast - before)
        now = ops.logical_or(on_beat, ops.greater_equal(step, extras.total_steps))
        self.assign(slow, ops.where(now, moved, before))
        self.assign(variable, ops.where(now, moved, fast))
