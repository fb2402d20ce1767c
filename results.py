"""The suite's own measured results: records of finished runs in ``results/``, their table

The command lives in ``suite/commands/results.py``; installed, it is also ``cifar10-results``.
"""

import sys

from suite.commands.results import main

if __name__ == "__main__":
    sys.exit(main())
