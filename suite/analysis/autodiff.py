"""The gradient of a scalar function, under whichever backend Keras runs: the one place
where the suite differentiates outside ``fit`` (Grad-CAM, ``suite.analysis.gradcam``). Keras 3
has no backend-neutral gradient call, so this dispatches to TensorFlow's
``GradientTape``, ``jax.grad`` or ``torch.autograd``.
"""

import keras
import numpy as np


def gradient(fn, x):
    """``d fn(x) / d x`` as a numpy array, for ``fn`` mapping a tensor to a scalar tensor."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # lazy: TensorFlow only under its backend

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x).numpy()
    if backend == "jax":
        import jax  # lazy: JAX only under its backend

        return np.asarray(jax.grad(fn)(jax.numpy.asarray(x)))
    if backend == "torch":
        import torch  # lazy: PyTorch only under its backend

        x = torch.tensor(np.asarray(x), requires_grad=True)
        fn(x).backward()
        return x.grad.detach().cpu().numpy()
    raise NotImplementedError(f"no gradient for the {backend} backend")
