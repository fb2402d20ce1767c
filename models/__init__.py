"""Keras builders for the classic CIFAR-10 networks, one module per family.

Importing this package registers every family; ``create(name, **params)`` builds one.
"""

from models.registry import builder_params, create, list_models, register  # noqa: F401
from models import allcnn, lenet, minivggnet, resnet, shallownet, shathenet  # noqa: F401,E402
