"""The command-line programs: each parses its arguments and calls its workflow in
``suite.workflows`` (console scripts ``cifar10-<name>``; ``python <name>.py`` in a checkout).

Importing the package is the start-up they share (``suite.core.quiet.prepare``).
"""

from suite.core.quiet import prepare

prepare()
