"""Train a CIFAR-10 network from a YAML config.

The command lives in ``suite/commands/train.py``; installed, it is also ``cifar10-train``.
"""

import sys

from suite.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
