"""The command-line programs: each parses its arguments and passes them to its function of the
Python API, ``suite.api`` (console scripts ``cifar10-<name>``; ``python -m suite.commands.<name>``;
``python <name>.py`` in a checkout).

Importing the package is the start-up they share (``suite.core.quiet.prepare``).
"""

from suite.core.quiet import prepare

prepare()
