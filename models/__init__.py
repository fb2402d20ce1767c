"""Keras builders for the classic CIFAR-10 networks, one module per family, and the
weights that ship for them.

Importing this package registers every family; ``create(name, **params)`` builds one.
"""

from suite.models import airbench, allcnn, lenet, minivggnet, resnet, shallownet, shathenet  # noqa: F401
from suite.models.pretrained import list_pretrained, load_pretrained
from suite.models.registry import MODELS, build, builder_params, register  # noqa: F401


def list_models(pretrained=False):
    """The registered model names, sorted; with ``pretrained=True`` only those whose
    weights ship in ``weights/`` (``suite.models.pretrained``)."""
    if pretrained:
        registered = set(MODELS.names())
        return [n for n in list_pretrained() if n in registered]
    return MODELS.names()


def create(name, pretrained=False, **params):
    """Build the model registered as ``name`` with the given knobs.

    ``pretrained=True`` returns it with the weights that ship under that name
    (``suite.models.pretrained``), wrapped so that it takes uint8 images and returns class
    probabilities.
    """
    if pretrained:
        return load_pretrained(name, build, **params)
    return build(name, **params)
