"""Look inside a trained network: its filters, its feature maps, and Grad-CAM heatmaps of

The command lives in ``suite/commands/visualize.py``; installed, it is also ``cifar10-visualize``.
"""

import sys

from suite.commands.visualize import main

if __name__ == "__main__":
    sys.exit(main())
