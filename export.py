"""Export trained weights as files that need none of the suite's code: a Keras model

The command lives in ``suite/commands/export.py``; installed, it is also ``cifar10-export``.
"""

import sys

from suite.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
