"""converter/lowering/: which rules apply, the weights they rewrite, what they refuse, and what they do to
training. Whether TF.js then computes what Keras does is the `lowered` tier's job (tests/test_certify.py);
here the weight transforms are checked in Keras itself: the rewritten layer, given the rewritten weights,
must compute what the user's layer computes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

import keras_models as km  # noqa: E402

import converter  # noqa: E402
from converter.errors import UnsupportedModelError  # noqa: E402
from converter.lowering.convolution import block_diagonal, dilate  # noqa: E402
from converter.lowering_table import LOWERINGS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _save(model, tmp_path: Path, name: str, suffix=".keras") -> Path:
    path = tmp_path / f"{name}{suffix}"
    model.save(path)
    return path


def _rules(analysis) -> list[str]:
    return [a.rule for a in analysis.lowerings]


def test_every_lowering_is_certified_by_a_suite_case():
    from harness.suite import CASES

    declared = {rule for case in CASES for rule in case.lowered}
    assert declared == set(LOWERINGS)


def test_every_lowering_says_why_it_is_exact():
    for name, rule in LOWERINGS.items():
        assert rule.construct and rule.replacement and rule.why_exact, name


def test_dilated_kernel_computes_the_dilated_convolution():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32")
    dilated = keras.layers.DepthwiseConv2D(3, dilation_rate=2)
    want = np.asarray(dilated(x))
    plain = keras.layers.DepthwiseConv2D(5)
    plain.build(x.shape)
    kernel, bias = dilated.get_weights()
    plain.set_weights([dilate(kernel, (2, 2)), bias])
    np.testing.assert_allclose(np.asarray(plain(x)), want, atol=1e-5)


def test_block_diagonal_kernel_computes_the_grouped_convolution():
    x = np.random.default_rng(1).normal(size=(2, 7, 7, 6)).astype("float32")
    grouped = keras.layers.Conv2D(4, 3, groups=2)
    want = np.asarray(grouped(x))
    plain = keras.layers.Conv2D(4, 3)
    plain.build(x.shape)
    kernel, bias = grouped.get_weights()
    wide = block_diagonal(kernel, 2)
    assert wide.shape == (3, 3, 6, 4)
    plain.set_weights([wide, bias])
    np.testing.assert_allclose(np.asarray(plain(x)), want, atol=1e-5)


def test_a_lowered_model_converts_with_its_weights_transformed(tmp_path):
    inp = keras.Input((6, 6, 6))
    model = keras.Model(inp, keras.layers.Conv2D(6, 3, groups=3, name="grouped")(inp))
    km.randomize(model)
    out = tmp_path / "out"
    result = converter.convert(_save(model, tmp_path, "grouped"), out)
    assert [a.rule for a in result.lowerings] == ["grouped_conv"]
    weights = km.read_artifact(out)
    kernel = model.get_layer("grouped").get_weights()[0]
    np.testing.assert_array_equal(weights["grouped/kernel"], block_diagonal(kernel, 3))
    layer = json.loads((out / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"][1]
    assert (layer["class_name"], layer["config"].get("groups", 1)) == ("Conv2D", 1)


def test_the_lowerings_are_recorded_for_tools_that_compare_layer_by_layer(tmp_path):
    a, b = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([a, b], keras.layers.Subtract(name="diff")([a, b]))
    out = tmp_path / "out"
    converter.convert(_save(model, tmp_path, "sub"), out, metadata={"owner": "me"})
    meta = json.loads((out / "model.json").read_text())["userDefinedMetadata"]
    assert meta["owner"] == "me"
    (applied,) = meta["tfjs_certify"]["lowerings"]
    assert (applied["rule"], applied["layer"]) == ("subtract", "diff")
    layers = json.loads((out / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"]
    assert [entry["class_name"] for entry in layers] == ["InputLayer", "InputLayer", "Rescaling", "Add"]
    assert layers[-1]["name"] == "diff"  # the user's name stays on the layer holding the output


def test_an_unlowered_model_has_no_lowering_metadata(tmp_path):
    inp = keras.Input((4,))
    out = tmp_path / "out"
    converter.convert(_save(keras.Model(inp, keras.layers.Dense(2)(inp)), tmp_path, "plain"), out)
    assert "userDefinedMetadata" not in json.loads((out / "model.json").read_text())


def test_a_chain_moves_the_output_of_the_users_layer_and_says_where(tmp_path):
    inp = keras.Input((6, 3))
    x = keras.layers.GlobalAveragePooling1D(keepdims=True, name="pool")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(x))
    analysis = converter.check(_save(model, tmp_path, "pool"))
    assert _rules(analysis) == ["global_pooling_keepdims"]
    names = [e["name"] for e in analysis.model_config["config"]["layers"]]
    assert names.index("pool__pool") < names.index("pool") < names.index("head")
    head = analysis.model_config["config"]["layers"][-1]
    assert head["inbound_nodes"][0][0][0] == "pool"


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_a_sequential_cannot_hold_a_branch_and_is_refused_in_one_line(k, tmp_path):
    model = k.Sequential([k.Input((5,)), k.layers.ReLU(negative_slope=0.1, threshold=0.3, name="relu")])
    path = _save(model, tmp_path, "seq", ".keras" if k is keras else ".h5")
    with pytest.raises(UnsupportedModelError) as e:
        converter.convert(path, tmp_path / "out")
    assert "not_lowerable" in {i.code for i in e.value.issues}
    assert not (tmp_path / "out").exists()


def test_a_model_lowered_with_zero_weights_converts_uncompiled(tmp_path):
    inp = keras.Input((6, 6, 4))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, groups=2)(inp))
    model.compile(optimizer="sgd", loss="mse")
    path = _save(model, tmp_path, "compiled")
    analysis = converter.check(path)
    assert not analysis.training.carried
    assert [i.code for i in analysis.training.issues] == ["lowered_for_inference"]
    with pytest.raises(UnsupportedModelError):
        converter.convert(path, tmp_path / "strict", require_training=True)
    out = tmp_path / "out"
    converter.convert(path, out)
    assert "trainingConfig" not in json.loads((out / "model.json").read_text())


def test_a_model_lowered_exactly_for_training_stays_compiled(tmp_path):
    a, b = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Subtract()([a, b])))
    model.compile(optimizer="sgd", loss="mse")
    analysis = converter.check(_save(model, tmp_path, "compiled"))
    assert _rules(analysis) == ["subtract"] and analysis.training.carried


def test_keras3_arithmetic_with_constants_becomes_rescaling(tmp_path):
    inp = keras.Input((4,))
    x = keras.layers.Dense(3, name="dense")(inp)
    model = keras.Model(inp, (2.0 - x) / 4.0)
    analysis = converter.check(_save(model, tmp_path, "ops"))
    assert analysis.supported and _rules(analysis) == ["scalar_op", "scalar_op"]
    rescalings = [e["config"] for e in analysis.model_config["config"]["layers"] if e["class_name"] == "Rescaling"]
    assert [(r["scale"], r["offset"]) for r in rescalings] == [(-1.0, 2.0), (0.25, 0.0)]


def test_check_lists_the_lowerings(tmp_path):
    inp = keras.Input((8, 3))
    model = keras.Model(inp, keras.layers.Conv1D(2, 3, padding="causal", name="causal")(inp))
    path = _save(model, tmp_path, "causal")
    run = subprocess.run(
        [sys.executable, "-m", "converter", "--check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert "lowered: 1 layer(s)" in run.stdout
    assert "[causal_conv_1d]" in run.stdout and "ZeroPadding2D(2 left)" in run.stdout


class _Gain(keras.layers.Layer):
    """A custom layer with a weight: the converter cannot name it in a .keras file."""

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.gain


def test_a_custom_layer_does_not_hide_the_other_weights_a_lowering_needs(tmp_path):
    # ConvNeXt's .keras file was refused "the weight ..._depthwise_conv/kernel needed to lower it is missing" for
    # every grouped convolution: one layer whose weights could not be named emptied the weight list.
    inp = keras.Input((6, 6, 4))
    x = keras.layers.Conv2D(4, 3, groups=2, name="grouped")(inp)
    model = keras.Model(inp, _Gain(name="gain")(x))
    analysis = converter.check(_save(model, tmp_path, "custom"))
    assert _rules(analysis) == ["grouped_conv"]
    assert [(i.layer, i.code) for i in analysis.issues] == [("gain", "unknown_layer")]


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_lowered_1d_convolutions_leave_static_shapes_tfjs_can_build_on(k, tmp_path):
    # A Reshape to -1 stays -1 in TF.js 4.22's static shape (the batch size is unknown): a temporal network's
    # Flatten + Dense after lowered causal convolutions was built with a negative size and did not load. The
    # Dense first leaves the time steps out of a tf_keras file (TimeDistributed then expands), not a Keras 3 one.
    inp = k.Input((9, 3))
    x = k.layers.Dense(3)(inp)
    x = k.layers.Conv1D(4, 3, padding="causal", dilation_rate=2)(x)
    x = k.layers.SeparableConv1D(4, 3, strides=2, padding="same")(x)
    x = k.layers.Conv1DTranspose(2, 3, strides=2)(x)
    model = k.Model(inp, k.layers.Dense(2)(k.layers.Flatten()(x)))
    analysis = converter.check(_save(model, tmp_path, "conv1d", ".keras" if k is keras else ".h5"))
    assert analysis.supported and set(_rules(analysis)) == {"causal_conv_1d", "conv_1d_as_2d"}
    layers = analysis.model_config["config"]["layers"]
    targets = [e["config"]["target_shape"] for e in layers if e["class_name"] == "Reshape"]
    assert all(d > 0 for t in targets for d in t), targets
    if k is keras:  # the file records every input shape: Reshapes to the static shapes Keras computed
        assert targets == [[9, 1, 3], [13, 3], [9, 1, 4], [5, 4], [5, 1, 4], [11, 2]]
    else:
        assert not targets and sum(e["class_name"] == "TimeDistributed" for e in layers) == 6
