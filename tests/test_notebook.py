"""notebooks/quickstart.ipynb runs from top to bottom (nbclient, a Python kernel of this
environment), on the shipped sample, with 2 training epochs instead of 8: the quick start's
curves, an evaluation, a classified image and a Grad-CAM come out inline, and nothing is
written beside the notebook."""

import base64

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

pytestmark = pytest.mark.slow

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert "EPOCHS = 8" in parameters.source
    parameters.source = parameters.source.replace("EPOCHS = 8", "EPOCHS = 2")
    before = sorted(p.name for p in NOTEBOOK.parent.iterdir())

    # The kernel runs in tmp_path, where the notebook's outputs/ goes; an error in a cell raises here.
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [base64.b64decode(o.data["image/png"]) for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3 and all(p.startswith(b"\x89PNG") for p in pngs)  # curves, confusion matrix, Grad-CAM
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "final test accuracy on the sample's 500 test images" in text and "\r" not in text
    assert "test-image-7.png: " in text  # predict's line
    [run] = (tmp_path / "outputs").glob("quickstart-*")
    assert (run / "final.weights.h5").is_file() and (run / "curves.png").is_file()
    assert sorted(p.name for p in NOTEBOOK.parent.iterdir()) == before
