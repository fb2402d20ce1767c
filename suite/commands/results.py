"""The suite's own measured results: records of finished runs in ``results/``, their table
beside the published figures, and the weights that ship in ``weights/``.

    python results.py record outputs/minivggnet-20261201-204253             # copy its record
    python results.py record outputs/minivggnet-20261201-204253 --weights   # ... and ship its final weights
    python results.py readme                                                 # rewrite results/README.md
    python results.py shipped --limit 2000          # robustness and calibration of every shipped weights file

``record`` copies a completed full-data run's ``config.yaml``, ``history.json``,
``metrics.json`` and ``curves.png`` into ``results/<config name>/`` (never its weights),
then rewrites ``results/README.md``. With ``--weights`` it also copies the run's
``final.weights.h5`` to ``weights/<model>.weights.h5`` with a sidecar that adds the final
test accuracy (and the accuracy on the first 1,000 test images, which CI checks), so
``suite.models.create(<model>, pretrained=True)`` and ``evaluate.py --pretrained <model>``
find them. An existing record or weights file is kept unless
``--replace`` is given.

``readme`` builds the table from the records alone: model, config, epochs, final test
accuracy (the last epoch's, never the best, which is chosen on the test set), the
source's figure (``results/published.yaml``) and the difference, training time and the
machine, followed by each record's hand-written ``NOTE.md`` (what a shortfall was traced
to), if it has one.
"""

import argparse
import sys

from suite.api.tools import results
from suite.core.errors import run_cli
from suite.core.paths import RESULTS, WEIGHTS
from suite.core.provenance import add_version_argument


def parse_args(argv):
    p = argparse.ArgumentParser(description="Records of finished runs in results/, and the weights that ship.")
    add_version_argument(p)
    p.add_argument("--results", default=str(RESULTS), help="the records folder (default: results/ of this checkout)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{record,readme,shipped}")
    record = sub.add_parser("record", help="copy a finished run's record into results/<config name>/")
    record.add_argument("run", metavar="RUN_DIR", help="a completed train.py run folder")
    record.add_argument("--weights", action="store_true",
                        help="also ship its final weights as weights/<model>.weights.h5 with a sidecar")
    record.add_argument("--weights-dir", default=str(WEIGHTS), help="where shipped weights go (default: weights/)")
    record.add_argument("--replace", action="store_true", help="overwrite an existing record or weights file")
    sub.add_parser("readme", help="rewrite results/README.md from the records")
    shipped = sub.add_parser("shipped", help="measure every shipped weights file's robustness and calibration "
                                             "(evaluate.py --calibrate --corruptions all) into results/shipped/")
    shipped.add_argument("names", nargs="*", metavar="NAME", help="only these shipped weights (default: all)")
    shipped.add_argument("--limit", type=int, metavar="N", help="only the first N test images")
    shipped.add_argument("--severities", default="1-5", help="the corruption severities (default: 1-5)")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(lambda options: results(**options), vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
