"""Compare runs: their learning curves in one figure, and a summary table.

The command lives in ``suite/commands/compare.py``; installed, it is also ``cifar10-compare``.
"""

import sys

from suite.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
