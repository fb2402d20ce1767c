"""Evaluate trained weights on the CIFAR-10 test set: loss, accuracy, a per-class report,

The command lives in ``suite/commands/evaluate.py``; installed, it is also ``cifar10-evaluate``.
"""

import sys

from suite.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
