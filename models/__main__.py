"""``python -m models`` in a checkout: the registry from the command line (``suite/commands/models.py``;
installed, also ``cifar10-models`` and ``python -m suite.models``)."""

import sys

from suite.commands.models import main

sys.exit(main())
