"""Keras builders for the classic CIFAR-10 networks, one module per family.

Importing this package registers every family; ``create(name, **params)`` builds one.
"""

from suite.quiet import import_keras

import_keras()  # TensorFlow's native start-up lines hidden, whoever imports the models first (python -m models)

from models.registry import builder_params, create, list_models, register  # noqa: F401,E402
from models import airbench, allcnn, lenet, minivggnet, resnet, shallownet, shathenet  # noqa: F401,E402
