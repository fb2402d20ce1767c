"""A network's summary and diagram, as a run folder's ``model.txt`` and ``model.png``
(and ``python -m models NAME --diagram``)."""

import io
import shutil
import sys
from pathlib import Path

import keras

from suite.core.atomic import atomic_path


def summary_text(net):
    buffer = io.StringIO()
    net.summary(print_fn=lambda line, *a, **k: buffer.write(line + "\n"))
    return buffer.getvalue()


def write_diagram(net, path):
    """``keras.utils.plot_model``; without Graphviz, one warning and training goes on."""
    try:
        import pydot  # noqa: F401
    except ImportError:
        pydot = None
    if pydot is None or shutil.which("dot") is None:
        missing = "the pydot package" if pydot is None else "Graphviz's `dot` program"
        print(f"warning: no model diagram ({missing} not found); install Graphviz to get model.png "
              "(apt-get install graphviz, brew install graphviz, or conda install graphviz)", file=sys.stderr)
        return
    try:
        with atomic_path(path, suffix=Path(path).suffix or ".png") as tmp:  # plot_model reads the format from it
            keras.utils.plot_model(net, to_file=str(tmp), show_shapes=True, show_layer_names=True, dpi=72)
            if tmp.stat().st_size == 0:
                raise RuntimeError("plot_model wrote nothing")
    except Exception as e:  # a diagram is never worth a failed run
        print(f"warning: no model diagram ({type(e).__name__}: {e})", file=sys.stderr)
