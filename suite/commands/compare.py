"""Compare runs: their learning curves in one figure, and a summary table.

    python compare.py curves outputs/minivgg_step0.25-* outputs/minivgg_step0.5-* -o step.png
    python compare.py curves outputs                       # every run in outputs/
    python compare.py table outputs --md runs.md --csv runs.csv

A RUN is a run folder (one that holds ``history.json``) or a folder of run folders, such
as ``outputs/``, which stands for the runs in it; folders without ``history.json``, or
whose ``history.json`` is broken or holds no epoch, are skipped with a warning. Runs are labelled with their folder names, or with ``--labels``.

``curves`` overlays training and validation loss and accuracy and the learning rate per
epoch, one colour per run (default file: ``outputs/compare-<timestamp>.png``). ``table``
prints a Markdown table - model, config name, epochs, best and final validation accuracy
(history.json), final and best test accuracy, parameters, training time and median
images/s (metrics.json), status - and writes it as Markdown and/or CSV. A missing value
is "-" in Markdown and an empty cell in CSV.
"""

import argparse
import sys

from suite.api.tools import compare
from suite.core.errors import run_cli
from suite.core.provenance import add_version_argument


def parse_args(argv):
    p = argparse.ArgumentParser(description="Compare training runs: overlaid learning curves or a summary table.")
    add_version_argument(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="{curves,table}")

    def runs_args(sp):
        sp.add_argument("runs", nargs="+", metavar="RUN",
                        help="a run folder, or a folder of run folders (e.g. outputs/)")
        sp.add_argument("--labels", nargs="+", metavar="LABEL",
                        help="names for the runs, one per run in their order, given after the RUNs "
                             "(default: the run folder names)")

    curves = sub.add_parser("curves", help="overlay the runs' loss, accuracy and learning rate per epoch")
    runs_args(curves)
    curves.add_argument("-o", "--output", metavar="FILE.png",
                        help="figure file (.png, .pdf or .svg); default outputs/compare-<timestamp>.png")
    curves.add_argument("--title", help="figure title (default: 'Learning curves of N runs')")

    table = sub.add_parser("table", help="summarise the runs as a table (printed as Markdown)")
    runs_args(table)
    table.add_argument("--md", metavar="FILE", help="also write the Markdown table to FILE")
    table.add_argument("--csv", metavar="FILE", help="also write the table as CSV to FILE")
    return p.parse_args(argv)


def main(argv=None):
    return run_cli(lambda options: compare(**options), vars(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
