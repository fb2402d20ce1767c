"""The options of each command, as typed dataclasses: what ``suite.api``'s functions fill
from their keyword arguments and hand to the workflows (which read them as attributes,
as they read parsed arguments).

Each field is the ``dest`` of one of the command's options (``--data-path`` is
``data_path``) with the same default, so that ``evaluate(data="sample", limit=100)`` means
``evaluate.py --data sample --limit 100``. A new option of a command is one line here,
beside its line in ``suite/commands/<name>.py``; ``tests/test_api.py`` checks that the two
agree, option by option.
"""

import os
from dataclasses import MISSING, dataclass, field, fields

from suite.core.errors import UserError
from suite.core.paths import RESULTS, WEIGHTS
from suite.core.registry import did_you_mean


@dataclass
class WeightsOptions:
    """Which weights (``suite.workflows.weight_source``): exactly one of the first three."""
    weights: str | None = None          # a .weights.h5 (or Keras 2 .h5) file
    run: str | None = None              # a train.py run folder
    pretrained: str | None = None       # shipped weights, by name
    checkpoint: str = "final"           # with run: "final" or "best"


@dataclass
class EvaluateOptions(WeightsOptions):
    """``evaluate.py``'s options."""
    config: str | None = None
    model: str | None = None
    param: list = field(default_factory=list)   # "key=value" builder knobs, with model
    normalize: str | None = None
    data: str = "cifar10"                # or "sample"
    data_path: str | None = None
    limit: int | None = None
    batch_size: int | None = None
    precision: str = "auto"
    tta: int = 0
    calibrate: bool = False
    corruptions: str | None = None       # "all" or names/groups separated by commas
    severities: str = "1-5"
    corruptions_dir: str | None = None   # the real CIFAR-10-C
    corruption_seed: int = 0
    out_dir: str = "outputs"


@dataclass
class PredictOptions(WeightsOptions):
    """``predict.py``'s options."""
    images: list = field(default_factory=list)  # image files and folders
    top: int = 3
    csv: str | None = None
    kaggle: str | None = None
    output: str | None = None
    workers: int = field(default_factory=os.cpu_count)
    tta: int = 0
    no_temperature: bool = False


@dataclass
class ExportOptions(WeightsOptions):
    """``export.py``'s options."""
    out: str | None = None              # a new folder (required)
    format: str = "keras"               # keras (.keras and SavedModel), onnx, tflite
    data: str = "cifar10"               # the test images the onnx and tflite files are checked on
    data_path: str | None = None


@dataclass
class VisualizeOptions(WeightsOptions):
    """``visualize.py``'s options (``command``: filters, features, gradcam or layers)."""
    command: str = "layers"
    layer: str | None = None
    out_dir: str = "outputs"
    data_path: str | None = None
    image: list | None = None           # image files instead of test images (features, gradcam)
    index: int = 0                      # features: the test image
    count: int = 8                      # gradcam: the first N test images
    mistakes: int | None = None         # gradcam: the N most confident mistakes


@dataclass
class CompareOptions:
    """``compare.py``'s options (``command``: curves or table)."""
    command: str = "table"
    runs: list = field(default_factory=list)
    labels: list | None = None
    output: str | None = None           # curves: the figure file
    title: str | None = None
    md: str | None = None               # table: Markdown file
    csv: str | None = None              # table: CSV file


@dataclass
class ResultsOptions:
    """``results.py``'s options (``command``: record, readme or shipped)."""
    command: str = "readme"
    results: str = str(RESULTS)
    run: str | None = None              # record: the run folder
    weights: bool = False               # record: ship its final weights too
    weights_dir: str = str(WEIGHTS)
    replace: bool = False
    names: list = field(default_factory=list)  # shipped: the weights to measure (all if empty)
    limit: int | None = None            # shipped: the first N test images
    severities: str = "1-5"             # shipped: the corruption severities


@dataclass
class ModelsOptions:
    """``python -m models``'s options."""
    name: str | None = None
    param: list = field(default_factory=list)
    diagram: str | None = None


def options(kind, command, given):
    """``kind`` (one of the dataclasses above) from the keyword options ``given``; a name
    it has no field for is a UserError naming the closest one."""
    names = [f.name for f in fields(kind)]
    for key in given:
        if key not in names:
            raise UserError(f"{command}: no option {key!r}{did_you_mean(key, names)}; options: {', '.join(names)}")
    return kind(**given)


def defaults(kind):
    """``{field: default}`` of one of the dataclasses above."""
    return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(kind)}
