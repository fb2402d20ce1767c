"""The suite's light tools from Python, which load no TensorFlow until they need it:
``compare`` runs (compare.py), ``results`` records (results.py) and ``describe`` models
(``python -m models``). Each returns the command's exit status.

    suite.compare("table", ["outputs"], md="runs.md")
    suite.api.describe("resnet20", param=["shortcut=B"])
"""

from suite.api.options import CompareOptions, ModelsOptions, ResultsOptions, options
from suite.workflows import compare as compare_workflow


def compare(command, runs, **settings) -> int:
    """``"curves"`` (one figure, ``output=``) or ``"table"`` (``md=``, ``csv=``) of the run
    folders ``runs`` (a folder of runs stands for the runs in it), as compare.py does."""
    runs = [runs] if isinstance(runs, str) or hasattr(runs, "is_dir") else runs
    return compare_workflow.run(options(CompareOptions, "compare",
                                        {**settings, "command": command, "runs": [str(r) for r in runs]}))


def results(command, **settings) -> int:
    """``"record"`` a finished full-data run (``run=``, ``weights=True`` to ship its weights)
    in results/, or rewrite results/README.md (``"readme"``), as results.py does."""
    from suite.workflows import results as results_workflow  # lazy: it loads TensorFlow (suite.config), compare not

    return results_workflow.run(options(ResultsOptions, "results", {**settings, "command": command}))


def describe(name=None, **settings) -> int:
    """Print every registered model with its parameter count, or one model's summary
    (``param=["key=value"]``, ``diagram="x.png"``), as ``python -m models`` does."""
    from suite.workflows import describe_model  # lazy: it loads TensorFlow, which compare and results never need

    return describe_model.run(options(ModelsOptions, "models", {**settings, "name": name}))
