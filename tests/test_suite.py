"""The reference suite validates, covers every TF.js layer class, and every builder runs in Keras."""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness.suite import CASES, validate
from harness.suite.declare import NAME_RE, case_name
from harness.vocabulary import TIERS

# Every layer class tfjs-layers 4.22 registers and exports (`static className` in its dist, minus
# abstract bases and InputLayer), containers included.
TFJS_LAYER_CLASSES = (
    "Activation",
    "Add",
    "AlphaDropout",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Bidirectional",
    "CategoryEncoding",
    "CenterCrop",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "ConvLSTM2D",
    "Cropping2D",
    "Dense",
    "DepthwiseConv2D",
    "Dot",
    "Dropout",
    "ELU",
    "Embedding",
    "Flatten",
    "GRU",
    "GRUCell",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "LSTM",
    "LSTMCell",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "Multiply",
    "PReLU",
    "Permute",
    "RNN",
    "RandomWidth",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "Resizing",
    "SeparableConv2D",
    "SimpleRNN",
    "SimpleRNNCell",
    "Softmax",
    "SpatialDropout1D",
    "StackedRNNCells",
    "ThresholdedReLU",
    "TimeDistributed",
    "UpSampling2D",
    "ZeroPadding2D",
    "Sequential",
    "Functional",
)
# Registered, but computing differently from Keras whatever the config: certified as refusals.
TFJS_DIVERGENT_CLASSES = ("Resizing", "RandomWidth")

# Every activation TF.js has (Keras 3 spells swish `silu`).
TFJS_ACTIVATIONS = (
    "elu",
    "selu",
    "relu",
    "relu6",
    "linear",
    "sigmoid",
    "hard_sigmoid",
    "softplus",
    "softsign",
    "tanh",
    "softmax",
    "log_softmax",
    "gelu",
    "mish",
    "swish",
    "silu",
)


def test_names_are_unique_readable_ids():
    validate(CASES)
    assert all(NAME_RE.match(c.name) and " " not in c.name for c in CASES)


def test_validate_refuses_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        validate([CASES[0], CASES[0]])


def test_case_name_lists_options():
    assert case_name("Conv2D", {"padding": "same", "strides": 2}) == "Conv2D[padding=same,strides=2]"
    assert case_name("Cropping2D", {"cropping": ((1, 2), (0, 1))}) == "Cropping2D[cropping=((1,2),(0,1))]"
    assert case_name("Activation", {"activation": "gelu"}, label="gelu") == "Activation[gelu]"
    assert case_name("Dense", {}) == "Dense"


def test_every_tier_is_present():
    assert {c.tier for c in CASES} == set(TIERS) - {"user"}


def test_every_tfjs_layer_class_is_certified():
    covered = {cls for c in CASES if c.expect.outcome != "reject" for cls in c.layer_classes}
    assert sorted(set(TFJS_LAYER_CLASSES) - set(TFJS_DIVERGENT_CLASSES) - covered) == []
    refused = {cls for c in CASES if c.expect.outcome == "reject" for cls in c.layer_classes}
    assert sorted(set(TFJS_DIVERGENT_CLASSES) - refused) == []


def test_every_tfjs_activation_is_certified():
    covered = {
        c.options.get("activation")
        for c in CASES
        if c.layer_classes == ("Activation",) and c.expect.outcome != "reject"
    }
    assert sorted(set(TFJS_ACTIVATIONS) - covered) == []


def test_known_failures_cite_tfjs():
    for c in CASES:
        if c.expect.outcome == "xfail":
            assert re.search(r"tfjs|TF\.js", c.expect.reason), c.name  # a citation of the TF.js source


def test_what_takes_long_is_marked_slow():
    """pytest schedules slow tests first and `-m "not slow"` leaves them out: a variant that took more than 15 s in
    the run the costs were measured in (reports/costs.json, written with the baseline from a warm run) must
    belong to a case marked slow (the apps: seconds a variant)."""
    from harness.pipeline.shard import load_costs

    measured = load_costs()
    assert measured, "reports/costs.json is missing or empty"
    slow = {v.id for c in CASES if c.slow for v in c.variants()}
    assert sorted(vid for vid, seconds in measured.items() if seconds > 15 and vid not in slow) == []


# --- Keras references (slow: imports TensorFlow) ------------------------------------------------------------
# Every builder runs in every flavour when certification prepares its reference (a builder that fails is a
# `reference_error` record; the cache key follows the builder's source), so no test here builds them again.


def _make_inputs(case, model, seed):
    from harness.suite.inputs import make_inputs, specs_from_model

    return make_inputs(case.inputs or specs_from_model(model), case.batch, seed)


CHANNELS_FIRST = [
    c
    for c in CASES
    if c.options.get("data_format") == "channels_first"
    and set(c.flavours) == {"keras3", "tf_keras"}
    and c.tier in ("layer", "lowered")
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CHANNELS_FIRST, ids=lambda c: c.name)
def test_keras3_channels_first_reference_agrees_with_tf_keras(case):
    """Keras 3.15 adds some channels_first biases on the wrong axis (see harness/suite/layers.py): a reference is
    only kept where Keras 3, given tf_keras's weights, computes what tf_keras computes."""
    import keras
    import tf_keras

    keras.utils.set_random_seed(0)
    tf_keras.utils.set_random_seed(0)
    k3, k2 = case.build(keras), case.build(tf_keras)
    k3.set_weights(k2.get_weights())
    xs = _make_inputs(case, k2, 0)
    np.testing.assert_allclose(np.asarray(k3(xs[0])), np.asarray(k2(xs[0])), atol=1e-5, rtol=1e-5)


def test_channels_first_cases_are_certified_from_both_flavours():
    assert len(CHANNELS_FIRST) >= 12
    assert {c.name for c in CHANNELS_FIRST} >= {
        "Conv2D[data_format=channels_first]",
        "Conv3D[data_format=channels_first]",
        "SeparableConv2D[data_format=channels_first]",
    }


def test_webgpu_samples_every_layer_class_of_each_flavour_and_an_app():
    """By default WebGPU certifies a sample (harness/suite/sample.py): it must still see every layer class the
    suite certifies, in each flavour, and one app; naming the backend certifies every variant."""
    from harness.suite.sample import APP, COVERED_TIERS, backends_for, sample, suite_records
    from harness.vocabulary import DEFAULT_BACKENDS, FLAVOURS

    sampled = sample(CASES)
    by_id = {v.id: v for c in CASES for v in c.variants()}
    for flavour in FLAVOURS:
        wanted = {
            cls
            for c in CASES
            if c.tier in COVERED_TIERS and flavour in c.flavours
            if any(v.expect_on("webgpu").outcome == "pass" for v in c.variants())
            for cls in c.layer_classes
        }
        seen = {cls for i in sampled if by_id[i].flavour == flavour for cls in by_id[i].case.layer_classes}
        assert sorted(wanted - seen) == [], flavour
    assert any(by_id[i].case.name == APP for i in sampled)
    assert len(sampled) < len(by_id) / 4  # a sample, not the suite
    records = suite_records(CASES)
    on_webgpu = {v.id for v, b in records if b == "webgpu"}
    refused = {v.id for c in CASES if c.expect.outcome == "reject" for v in c.variants()}
    assert on_webgpu == sampled | refused
    assert all(b in DEFAULT_BACKENDS for v, b in records if b != "webgpu")
    some = by_id[sorted(set(by_id) - sampled - refused)[0]]
    assert backends_for(some, ["cpu", "webgpu"], sampled, named=False) == ["cpu"]
    assert backends_for(some, ["cpu", "webgpu"], sampled, named=True) == ["cpu", "webgpu"]


def test_quantized_forms_certify_on_cpu_and_wasm_unless_a_backend_is_named():
    """TF.js dequantizes in its io module before any backend holds a weight (harness/vocabulary.py): by
    default a quantized form is certified on QUANTIZED_BACKENDS, its float32 variant on every default backend."""
    from harness.suite.sample import backends_for, sample, suite_records
    from harness.vocabulary import DEFAULT_BACKENDS, QUANTIZED_BACKENDS

    sampled = sample(CASES)
    forms = [v for c in CASES for v in c.variants() if v.quantization is not None]
    assert {v.quantization for v in forms} == {"float16", "uint16", "uint8", "plan"}
    records = suite_records(CASES)
    assert {b for v, b in records if v.quantization is not None} == set(QUANTIZED_BACKENDS)
    plain = forms[0].case.variants()[0]
    assert plain.quantization is None and {b for v, b in records if v.id == plain.id} >= set(DEFAULT_BACKENDS)
    assert backends_for(forms[0], DEFAULT_BACKENDS, sampled, named=False) == list(QUANTIZED_BACKENDS)
    assert backends_for(forms[0], ["webgl"], sampled, named=True) == ["webgl"]


def test_the_plugin_knows_the_vocabularys_backends():
    from harness import pytest_plugin, vocabulary

    assert pytest_plugin.BACKENDS == vocabulary.BACKENDS
    assert pytest_plugin.DEFAULT_BACKENDS.split(",") == list(vocabulary.DEFAULT_BACKENDS)


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_an_app_normalization_computes_with_the_weights_it_saves(flavour):
    """EfficientNet's Normalization reads its statistics into constants when built: nontrivial_weights' new
    values reached the file, not the reference (which then disagreed with the file by 4e-4)."""
    import importlib

    from harness.suite.builders import nontrivial_weights, refreshed

    k = importlib.import_module(flavour)
    inp = k.Input((3,))
    model = k.Model(inp, k.layers.Normalization()(inp))
    x = np.ones((1, 3), "float32")
    model = refreshed(nontrivial_weights(model))
    mean, variance = model.layers[1].get_weights()[:2]
    np.testing.assert_allclose(np.asarray(model(x)), (x - mean) / np.sqrt(variance), rtol=1e-6)
