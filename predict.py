"""Classify your own images with trained weights: the top classes and their probabilities.

The command lives in ``suite/commands/predict.py``; installed, it is also ``cifar10-predict``.
"""

import sys

from suite.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())
