"""Optimizers by name: SGD (momentum, Nesterov), Adam, AdamW, RMSprop.

Weight decay comes in two kinds (``optimizer.weight_decay_mode``):

* ``l2``: an L2 penalty on the kernels of every Conv/Dense layer, passed to the model
  builder (``weight_decay/2 * ||w||^2``, so the gradient gains ``weight_decay * w``, the
  papers' SGD weight decay);
* ``decoupled``: Keras' optimizer-side decay, ``w -= lr * weight_decay * w`` each step
  (Loshchilov & Hutter's AdamW/SGDW), kept off biases and batch-norm parameters.
"""

import keras


def decay_mode(cfg):
    mode = cfg["optimizer"]["weight_decay_mode"]
    if mode == "auto":
        mode = "decoupled" if cfg["optimizer"]["name"] == "adamw" else "l2"
    return mode


def l2_for_model(cfg):
    """The ``weight_decay`` knob for the model builder (0 unless the mode is ``l2``)."""
    return cfg["optimizer"]["weight_decay"] if decay_mode(cfg) == "l2" else 0.0


def build_optimizer(cfg, learning_rate):
    o = cfg["optimizer"]
    decoupled = o["weight_decay"] if decay_mode(cfg) == "decoupled" else None
    common = {"learning_rate": learning_rate, "weight_decay": decoupled or None, "clipnorm": o["clipnorm"]}
    if o["name"] == "sgd":
        opt = keras.optimizers.SGD(momentum=o["momentum"], nesterov=o["nesterov"], **common)
    elif o["name"] == "adam":
        opt = keras.optimizers.Adam(beta_1=o["beta_1"], beta_2=o["beta_2"], epsilon=o["epsilon"], **common)
    elif o["name"] == "adamw":
        opt = keras.optimizers.AdamW(beta_1=o["beta_1"], beta_2=o["beta_2"], epsilon=o["epsilon"],
                                     **{**common, "weight_decay": decoupled or 0.0})
    elif o["name"] == "rmsprop":
        opt = keras.optimizers.RMSprop(rho=o["rho"], momentum=o["momentum"], epsilon=o["epsilon"], **common)
    else:
        raise ValueError(f"unknown optimizer {o['name']!r}")  # the config check makes this unreachable
    if decoupled:
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt
