"""The ablation knobs every family shares (``suite.models.common``): the defaults build the
published networks, and each knob changes what it says and nothing it should not."""

import keras
import numpy as np
import pytest

from suite.models import builder_params, create, list_models
from suite.core.errors import UserError

# count_params() of every model at its defaults: the README's models table.
PUBLISHED_COUNTS = {
    "shallownet": 328_586, "lenet": 1_632_080, "minivggnet": 2_171_178,
    "model_a": 839_242, "model_b": 885_610, "model_c": 954_730, "strided_cnn_c": 954_730,
    "convpool_cnn_c": 1_369_738, "allcnn_c": 1_369_738, "allcnn_c_study": 1_369_738,
    "shathenet_v1_0": 17_882, "shathenet_v1_1": 1_252_138, "shathenet_v1_2": 941_738,
    "resnet20": 271_098, "resnet32": 466_426, "resnet44": 661_754, "resnet56": 857_082,
    "resnet110": 1_736_058, "resnet": 271_098, "airbench94": 1_973_944,
}
KNOBS = ("activation", "kernel_initializer", "batch_norm", "downsample", "head", "dropout")
SMALL = {"shathenet_v1_0": {"input_size": 64}, "shathenet_v1_1": {"input_size": 64},
         "shathenet_v1_2": {"input_size": 160}}


# One model per code path of the builders (the other depths and paper models share them).
REPRESENTATIVES = ["shallownet", "lenet", "minivggnet", "model_a", "allcnn_c", "allcnn_c_study", "resnet20",
                   "shathenet_v1_0", "shathenet_v1_2"]


def build(name, **params):
    return create(name, **{**SMALL.get(name, {}), **params})


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.backend.clear_session()


def test_every_model_is_covered_and_defaults_keep_the_published_size():
    assert set(PUBLISHED_COUNTS) == set(list_models())
    for name, count in PUBLISHED_COUNTS.items():
        assert create(name).count_params() == count, name


def expected_knobs(name):
    """All six, but where a family has nothing to choose: the All-CNN paper's models are its
    own pool-against-stride study and all end in global average pooling; ShallowNet has no
    down-sampling; airbench94 is one tuned recipe whose initialisation and poolings are part
    of it (docs/airbench94.md), so it takes activation, batch_norm and dropout."""
    if name == "airbench94":
        return {"activation", "batch_norm", "dropout"}
    if name.startswith(("model_", "allcnn", "strided", "convpool")):
        return set(KNOBS) - {"downsample", "head"}
    if name == "shallownet":
        return set(KNOBS) - {"downsample"}
    return set(KNOBS)


@pytest.mark.parametrize("name", list_models())
def test_every_family_takes_the_shared_knobs_it_can(name):
    assert set(builder_params(name)) & set(KNOBS) == expected_knobs(name)


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_activation_reaches_every_layer_that_had_a_relu(name):
    def activations(model):
        found = [layer.activation.__name__ for layer in model.layers
                 if getattr(layer, "activation", None) is not None and layer.name != "predictions"]
        return [a for a in found if a != "linear"]

    relu, elu = activations(build(name)), activations(build(name, activation="elu"))
    assert relu and set(relu) == {"relu"}
    assert len(elu) == len(relu) and set(elu) == {"elu"}


def test_airbench94_takes_the_shared_knobs_it_can():
    """Its GELUs follow ``activation`` (models.create("airbench94", activation="elu") was refused
    once), ``batch_norm=False`` drops its norms and ``dropout`` adds one before the classifier."""
    def activations(model):
        return [layer.activation.__name__ for layer in layers_of(model, keras.layers.Activation)
                if layer.name != "predictions"]

    default, elu = create("airbench94"), create("airbench94", activation="elu")
    assert activations(default) == ["gelu"] * 7 and activations(elu) == ["elu"] * 7
    assert not layers_of(create("airbench94", batch_norm=False), keras.layers.BatchNormalization)
    dropped = create("airbench94", dropout=0.2)
    assert [d.rate for d in layers_of(dropped, keras.layers.Dropout)] == [pytest.approx(0.2)]
    assert dropped.count_params() == default.count_params()
    with pytest.raises(UserError, match="model 'airbench94': activation must be"):
        create("airbench94", activation="relu7")


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_batch_norm_adds_or_removes_normalisation(name):
    default = builder_params(name)["batch_norm"]
    flipped = build(name, batch_norm=not default)
    before = len(layers_of(build(name), keras.layers.BatchNormalization))
    after = len(layers_of(flipped, keras.layers.BatchNormalization))
    assert (before > 0) == default and (after > 0) == (not default)
    out = flipped(np.zeros((2, *flipped.input_shape[1:]), "float32"))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("name", [n for n in REPRESENTATIVES if "downsample" in builder_params(n)])
def test_downsample_trades_pooling_for_strides(name):
    default = builder_params(name)["downsample"]
    other = "stride" if default == "pool" else "pool"
    a, b = build(name), build(name, downsample=other)
    pools = {m: len(layers_of(m, keras.layers.MaxPooling2D)) for m in (a, b)}
    pooled, strided = (a, b) if default == "pool" else (b, a)
    assert pools[pooled] > 0 and pools[strided] == 0
    assert b(np.zeros((2, *b.input_shape[1:]), "float32")).shape == (2, 10)


@pytest.mark.parametrize("name", [n for n in REPRESENTATIVES if "head" in builder_params(n)])
def test_head_switches_flatten_and_global_average_pooling(name):
    default = builder_params(name)["head"]
    other = build(name, head="gap" if default == "flatten" else "flatten")
    gap = layers_of(other, keras.layers.GlobalAveragePooling2D)
    flatten = layers_of(other, keras.layers.Flatten)
    assert (len(gap), len(flatten)) == ((1, 0) if default == "flatten" else (0, 1))


@pytest.mark.parametrize("name", ["shallownet", "lenet", "resnet20", "shathenet_v1_0"])
def test_dropout_before_the_classifier(name):
    assert not layers_of(build(name), keras.layers.Dropout)
    model = build(name, dropout=0.3)
    drops = layers_of(model, keras.layers.Dropout)
    assert len(drops) == 1 and drops[0].rate == pytest.approx(0.3)
    assert model.count_params() == build(name).count_params()


def test_kernel_initializer_is_the_conv_kernels():
    model = create("minivggnet", kernel_initializer="he_uniform")
    convs = layers_of(model, keras.layers.Conv2D)
    assert convs and all(type(c.kernel_initializer).__name__ == "HeUniform" for c in convs)
    assert type(layers_of(create("shathenet_v1_0"), keras.layers.Conv2D)[0].kernel_initializer).__name__ \
        == "TruncatedNormal"


@pytest.mark.parametrize("knob, value", [("activation", "relu7"), ("kernel_initializer", "zeros"),
                                         ("downsample", "avg"), ("head", "dense"), ("batch_norm", "yes"),
                                         ("dropout", 1.0)])
def test_bad_knob_values_name_the_knob_and_the_choices(knob, value):
    with pytest.raises(UserError, match=f"model 'lenet': {knob} must be"):
        create("lenet", **{knob: value})
