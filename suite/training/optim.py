"""Optimizers by name, registered in ``OPTIMIZERS``: SGD (momentum, Nesterov), Adam,
AdamW, RMSprop.

Each is a function of ``(learning_rate, weight_decay, clipnorm)``, the settings every
optimizer shares, whose keyword-only parameters are the ``optimizer`` keys it takes
(see ``suite.core.registry``). Weight decay comes in two kinds (``optimizer.weight_decay_mode``):

* ``l2``: an L2 penalty on the kernels of every Conv/Dense layer, passed to the model
  builder (``weight_decay/2 * ||w||^2``, so the gradient gains ``weight_decay * w``, the
  papers' SGD weight decay);
* ``decoupled``: Keras' optimizer-side decay, ``w -= lr * weight_decay * w`` each step
  (Loshchilov & Hutter's AdamW/SGDW), kept off biases and batch-norm parameters;
* ``coupled``: ``gradient += weight_decay * w`` for every trained variable, inside the
  optimizer (PyTorch's ``SGD(weight_decay=...)``; ``suite.training.param_groups``).

Learning-rate factors and time limits per group of variables, and lookahead, are
``suite.training.param_groups``.
"""

import keras

from suite.core import rules
from suite.core.registry import Registry
from suite.training.param_groups import Extras, extend

OPTIMIZERS = Registry("optimizer")


@OPTIMIZERS.register
def sgd(learning_rate, weight_decay, clipnorm, *, momentum: rules.UNIT = 0.9, nesterov: rules.FLAG = False):
    return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay, clipnorm=clipnorm)


@OPTIMIZERS.register
def adam(learning_rate, weight_decay, clipnorm, *, beta_1: rules.UNIT = 0.9, beta_2: rules.UNIT = 0.999,
         epsilon: rules.POSITIVE = 1e-7):
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                 weight_decay=weight_decay, clipnorm=clipnorm)


def _adamw_decays_decoupled(params, cfg):
    if cfg["optimizer"]["weight_decay_mode"] == "l2":
        return "weight_decay_mode", "adamw decays decoupled; use adam for l2"
    return None


@OPTIMIZERS.register(check=_adamw_decays_decoupled)
def adamw(learning_rate, weight_decay, clipnorm, *, beta_1: rules.UNIT = 0.9, beta_2: rules.UNIT = 0.999,
          epsilon: rules.POSITIVE = 1e-7):
    return keras.optimizers.AdamW(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                  weight_decay=weight_decay or 0.0, clipnorm=clipnorm)


@OPTIMIZERS.register
def rmsprop(learning_rate, weight_decay, clipnorm, *, rho: rules.UNIT = 0.9, momentum: rules.UNIT = 0.9,
            epsilon: rules.POSITIVE = 1e-7):
    return keras.optimizers.RMSprop(learning_rate, rho=rho, momentum=momentum, epsilon=epsilon,
                                    weight_decay=weight_decay, clipnorm=clipnorm)


def decay_mode(cfg):
    mode = cfg["optimizer"]["weight_decay_mode"]
    if mode == "auto":
        mode = "decoupled" if cfg["optimizer"]["name"] == "adamw" else "l2"
    return mode


def l2_for_model(cfg):
    """The ``weight_decay`` knob for the model builder (0 unless the mode is ``l2``)."""
    return cfg["optimizer"]["weight_decay"] if decay_mode(cfg) == "l2" else 0.0


def build_optimizer(cfg, learning_rate, steps_per_epoch=1):
    """The config's optimizer, with ``suite.training.param_groups``' extras where the config asks for them."""
    o = cfg["optimizer"]
    decoupled = (o["weight_decay"] if decay_mode(cfg) == "decoupled" else None) or None
    opt = OPTIMIZERS.call(o["name"], (learning_rate, decoupled, o["clipnorm"]), o)
    if decoupled:
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    extras = Extras(lr_scale=o["lr_scale"], train_epochs=o["train_epochs"],
                    coupled_decay=o["weight_decay"] if decay_mode(cfg) == "coupled" else 0.0,
                    lookahead_every=o["lookahead_every"], lookahead_decay=o["lookahead_decay"],
                    lookahead_power=o["lookahead_power"], steps_per_epoch=steps_per_epoch,
                    total_steps=steps_per_epoch * cfg["training"]["epochs"] if o["lookahead_every"] else 0)
    return extend(opt, extras)
