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
import converter.api  # noqa: E402
from converter import topology  # noqa: E402
from converter.errors import UnsupportedModelError  # noqa: E402
from converter.lowering.convolution import block_diagonal, dilate  # noqa: E402
from converter.lowering_table import LOWERINGS  # noqa: E402
from converter.reader import read_model_file  # noqa: E402
from converter.weights import model_weights  # noqa: E402

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


# --- the attention family: rewritten layers, run in Keras with the weights as written (`_rebuilt`, below),
# equal the user's ----------------------------------------------------------------------------------------------


def _attention_models(k):
    q, v, key = k.Input((5, 8), name="q"), k.Input((4, 6), name="v"), k.Input((4, 5), name="key")
    mha = k.layers.MultiHeadAttention
    yield "mha_self", [q], mha(2, 4, name="mha")(q, q)
    yield "mha_key", [q, v, key], mha(3, 2, value_dim=3, use_bias=False, output_shape=(2, 3), name="mha")(q, v, key)
    yield "mha_causal", [q], mha(2, 4, output_shape=6, name="mha")(q, q, use_causal_mask=True)
    yield "mha_causal_dropout", [q], mha(2, 4, dropout=0.2, name="mha")(q, q, use_causal_mask=True)
    yield "attention_dot", [q, v], k.layers.Attention(use_scale=True, name="att")([q, k.layers.Dense(8, name="d")(v)])
    concat = k.layers.Attention(use_scale=True, score_mode="concat", name="att")
    yield "attention_concat_causal", [q], concat([q, q], use_causal_mask=True)
    # tf_keras records no shapes but an Input's: an additive score's reshape needs the value's length from one
    value = k.Input((4, 8), name="value")
    yield "additive", [q, value], k.layers.AdditiveAttention(name="att")([q, value])
    yield "additive_causal", [q], k.layers.AdditiveAttention(use_scale=False, name="att")([q, q], use_causal_mask=True)
    einsum = k.layers.EinsumDense
    yield "einsum_permute", [q], einsum("abc,ced->adbe", output_shape=(3, None, 2), bias_axes="e", name="ed")(q)
    yield "einsum_ellipsis", [q], einsum("...b,bc->...c", output_shape=4, bias_axes="c", name="ed")(q)


ATTENTION_MODELS = [name for name, *_ in _attention_models(keras)]


@pytest.mark.parametrize("suffix", [".keras", ".h5"], ids=["keras3-keras", "keras3-h5"])
@pytest.mark.parametrize("case", ATTENTION_MODELS)
def test_a_lowered_attention_computes_the_users_layer_in_keras(case, suffix, tmp_path):
    _check_rebuilt(keras, case, suffix, tmp_path)


@pytest.mark.parametrize("case", ATTENTION_MODELS)
def test_a_lowered_tf_keras_attention_computes_the_users_layer_in_keras(case, tmp_path):
    _check_rebuilt(tf_keras, case, ".h5", tmp_path)


def _check_rebuilt(k, case, suffix, tmp_path):
    inputs, out = next((i, o) for name, i, o in _attention_models(k) if name == case)
    model = k.Model(inputs, out)
    km.randomize(model)
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(2, *x.shape[1:])).astype("float32") for x in inputs]
    path = _save(model, tmp_path, case, suffix)
    result = converter.convert(path, tmp_path / "out")
    assert len(result.lowerings) == 1
    want = np.asarray(model.predict(xs, verbose=0))
    got = np.asarray(_rebuilt(tmp_path / "out").predict(xs, verbose=0))
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


def test_multi_head_attention_weights_are_split_per_head(tmp_path):
    q = keras.Input((5, 8))
    model = keras.Model(q, keras.layers.MultiHeadAttention(2, 3, value_dim=4, name="mha")(q, q))
    km.randomize(model)
    out = tmp_path / "out"
    converter.convert(_save(model, tmp_path, "mha"), out)
    weights = km.read_artifact(out)
    layer = model.get_layer("mha")
    for h in range(2):
        np.testing.assert_array_equal(weights[f"mha__q{h}/kernel"], layer.query_dense.kernel.numpy()[:, h, :])
        np.testing.assert_array_equal(weights[f"mha__k{h}/bias"], layer.key_dense.bias.numpy()[h])
        np.testing.assert_array_equal(weights[f"mha__v{h}/kernel"], layer.value_dense.kernel.numpy()[:, h, :])
    np.testing.assert_array_equal(weights["mha/kernel"], layer.output_dense.kernel.numpy().reshape(8, 8))
    assert not any(name.startswith("mha/query") or "attention_output" in name for name in weights)
    # the derived weights stand where the layer's stored weights were, in the order the heads are built
    manifest = json.loads((out / "model.json").read_text())["weightsManifest"][0]["weights"]
    assert [w["name"] for w in manifest][:4] == ["mha__q0/kernel", "mha__q0/bias", "mha__k0/kernel", "mha__k0/bias"]


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_attention_weights_are_named_alike_in_every_format(k, tmp_path):
    q = k.Input((5, 8), name="q")
    outs = [
        k.layers.MultiHeadAttention(2, 3, name="mha")(q, q),
        k.layers.Attention(use_scale=True, score_mode="concat", name="att")([q, q]),
        k.layers.AdditiveAttention(name="add")([q, q]),
        k.layers.EinsumDense("abc,cd->abd", output_shape=(None, 3), bias_axes="d", name="ed")(q),
    ]
    model = k.Model(q, outs)
    expected = {
        *(f"mha/{p}/{w}" for p in ("query", "key", "value", "attention_output") for w in ("kernel", "bias")),
        "att/scale",
        "att/concat_score_weight",
        "add/scale",
        "ed/kernel",
        "ed/bias",
    }
    for suffix in (".keras", ".h5") if k is keras else (".h5",):
        path = _save(model, tmp_path, f"m{suffix[1:]}", suffix)
        with read_model_file(path) as mf:
            assert {w.name for w in model_weights(mf, topology.clean(mf.model_config))} == expected


def test_a_causal_mask_is_a_float32_constant_whatever_the_quantization(tmp_path):
    q = keras.Input((5, 8))
    model = keras.Model(q, keras.layers.MultiHeadAttention(2, 4, name="mha")(q, q, use_causal_mask=True))
    km.randomize(model)
    out = tmp_path / "out"
    converter.convert(_save(model, tmp_path, "causal"), out, quantize={"uint8": None})
    manifest = {w["name"]: w for w in json.loads((out / "model.json").read_text())["weightsManifest"][0]["weights"]}
    constants = {n for n in manifest if "causal" in n}
    assert constants == {f"mha__causal_{p}/{w}" for p in ("col", "row") for w in ("kernel", "bias")}
    assert all("quantization" not in manifest[n] for n in constants)
    assert all("quantization" in manifest[n] for n in set(manifest) - constants)
    np.testing.assert_array_equal(km.read_artifact(out)["mha__causal_row/bias"], -np.arange(5))


def test_a_plan_naming_a_stored_weight_covers_the_weights_derived_from_it(tmp_path):
    q = keras.Input((5, 8))
    model = keras.Model(q, keras.layers.MultiHeadAttention(2, 4, name="mha")(q, q))
    km.randomize(model)
    path = _save(model, tmp_path, "mha")
    out = tmp_path / "out"
    converter.convert(path, out, quantize_plan={"mha/query/kernel": "uint8", "mha/key/kernel": "float16"})
    manifest = {w["name"]: w for w in json.loads((out / "model.json").read_text())["weightsManifest"][0]["weights"]}
    quantized = {n for n, w in manifest.items() if "quantization" in w}
    assert quantized == {f"mha__{r}{h}/kernel" for r in "qk" for h in "01"}
    assert manifest["mha__k1/kernel"]["quantization"]["dtype"] == "float16"
    # what quantization starts from: every weight as written, in float32
    assert converter.api.tfjs_weights(path).keys() == manifest.keys()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda k, q, m: k.layers.MultiHeadAttention(2, 4, name="att")(q, q, attention_mask=m), "attention_mask"),
        (lambda k, q, m: k.layers.MultiHeadAttention(2, 4, name="att")(q, q, return_attention_scores=True)[0], "score"),
        (lambda k, q, m: k.layers.Attention(name="att")([q, q], return_attention_scores=True)[0], "scores"),
        (lambda k, q, m: k.layers.EinsumDense("abc,bd->acd", (8, 3), name="att")(q), "equation"),
        (lambda k, q, m: k.layers.EinsumDense("abc,cd->abd", (5, 3), bias_axes="b", name="att")(q), "bias_axes"),
    ],
    ids=["attention_mask", "mha_scores", "attention_scores", "einsum_equation", "einsum_bias"],
)
@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_attention_forms_not_lowered_are_refused_by_name(k, make, reason, tmp_path):
    q, m = k.Input((5, 8), name="q"), k.Input((5, 5), name="m")
    model = k.Model([q, m], make(k, q, m))
    analysis = converter.check(_save(model, tmp_path, "refused", ".keras" if k is keras else ".h5"))
    issues = [(i.layer, i.code) for i in analysis.issues]
    assert issues == [("att", "not_lowerable")]  # the lowering's reason alone, without unknown_layer
    assert reason in analysis.issues[0].reason


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_a_mask_reaching_attention_is_refused_even_through_a_nested_model(k, tmp_path):
    x = k.Input((5, 8), name="x")
    inner = k.Model(x, k.layers.MultiHeadAttention(2, 4, name="mha")(x, x), name="block")
    tokens = k.Input((5,), dtype="int32", name="tokens")
    embedded = k.layers.Embedding(10, 8, mask_zero=True, name="embedding")(tokens)
    model = k.Model(tokens, inner(k.layers.Dense(8, name="dense")(embedded)))
    analysis = converter.check(_save(model, tmp_path, "masked", ".keras" if k is keras else ".h5"))
    assert [(i.layer, i.code) for i in analysis.issues] == [("mha", "not_lowerable")]
    assert "mask" in analysis.issues[0].reason


def test_a_model_lowered_with_attention_converts_uncompiled(tmp_path):
    q = keras.Input((5, 8))
    model = keras.Model(q, keras.layers.MultiHeadAttention(2, 4)(q, q))
    model.compile(optimizer="adam", loss="mse")
    analysis = converter.check(_save(model, tmp_path, "compiled"))
    assert not analysis.training.carried
    (issue,) = analysis.training.issues
    assert issue.code == "lowered_for_inference" and "split per head" in issue.reason


def test_every_inexact_lowering_says_what_training_would_do():
    for name, rule in LOWERINGS.items():
        assert rule.training_exact or rule.why_not_for_training, name


def test_attention_called_in_training_mode_is_refused(tmp_path):
    q = keras.Input((5, 8))
    model = keras.Model(q, keras.layers.MultiHeadAttention(2, 4, dropout=0.5, name="mha")(q, q, training=True))
    analysis = converter.check(_save(model, tmp_path, "training"))
    assert ("mha", "training") in {(i.layer, i.argument) for i in analysis.issues}


def test_a_refused_rule_leaves_the_weights_as_stored(tmp_path):
    # the scale is folded into a Rescaling before the causal mask is found to need a length the file lacks
    q, v = keras.Input((5, 8)), keras.Input((None, 8))
    att = keras.layers.Attention(use_scale=True, name="att")([q, v], use_causal_mask=True)
    analysis = converter.check(_save(keras.Model([q, v], att), tmp_path, "refused"))
    assert [i.code for i in analysis.issues] == ["not_lowerable"]
    assert [w for layer in analysis.layers for w in layer.weights] == ["att/scale"]


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


def test_the_rank_is_followed_from_the_input_through_every_layer_of_a_tf_keras_file(tmp_path):
    # A tf_keras file records only its InputLayer's shape. The rank was lost after a lowered chain (the
    # BatchNormalization over axis 1 below) and at layers out_rank did not know, so a channels_first
    # segmentation net's Softmax(axis=1) was refused as "needs the input's rank".
    from harness.suite.builders import segmentation_channels_first

    path = _save(segmentation_channels_first(tf_keras), tmp_path, "segmentation", ".h5")
    analysis = converter.check(path)
    assert not analysis.issues, [str(i) for i in analysis.issues]
    assert "softmax_axis" in _rules(analysis)


@pytest.mark.parametrize(
    "layer, rank",
    [
        ({"class_name": "TimeDistributed", "config": {"layer": {"class_name": "Flatten", "config": {}}}}, 3),
        ({"class_name": "SpatialDropout2D", "config": {}}, 4),
        ({"class_name": "RandomFlip", "config": {}}, 4),
        ({"class_name": "ConvLSTM2D", "config": {"return_sequences": True}}, 5),
        ({"class_name": "EinsumDense", "config": {"output_shape": [3, 4]}}, 3),
        (
            {
                "class_name": "TFOpLambda",
                "config": {"function": "reshape"},
                "inbound_nodes": [["x", 0, 0, {"shape": [-1, 8]}]],
            },
            2,
        ),
        ({"class_name": "TFOpLambda", "config": {"function": "math.exp"}}, None),
        ({"class_name": "Lambda", "config": {}}, None),
    ],
)
def test_out_rank_follows_what_each_config_says(layer, rank):
    from converter.lowering import out_rank

    assert out_rank(layer, [4]) == rank


def test_out_rank_follows_a_nested_model():
    from converter.lowering import out_rank

    inner = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(2, 1), keras.layers.Flatten()])
    config = json.loads(json.dumps(inner.get_config()))
    assert out_rank({"class_name": "Sequential", "config": config}, [4]) == 2
    x = tf_keras.Input((5, 3))
    functional = tf_keras.Model(x, tf_keras.layers.LSTM(2, return_sequences=True)(tf_keras.layers.Dense(3)(x)))
    assert out_rank({"class_name": "Functional", "config": json.loads(functional.to_json())["config"]}, [3]) == 3


# --- the new lowerings, computed in Keras: the artifact's layers (tf_keras rebuilds TF.js's config, which is
# the Keras 2 form) with the artifact's weights must compute what the user's model computes ----------------


def _rebuilt(out: Path):
    """The converted artifact as a tf_keras model: its config and its weights, looked up by name as TF.js does."""
    model_json = json.loads((out / "model.json").read_text())
    model = tf_keras.models.model_from_json(json.dumps(model_json["modelTopology"]["model_config"]))
    weights = km.read_artifact(out)
    used = set()
    for layer in model.layers:
        names = [w.name.split(":")[0] for w in layer.weights]
        names = [n if n in weights else f"{layer.name}/{n.split('/')[-1]}" for n in names]
        layer.set_weights([weights[n] for n in names])
        used |= set(names)
    assert used == set(weights), f"weights TF.js would find no layer for: {set(weights) - used}"
    return model


def _lowered_matches(model, x, tmp_path, rules, suffix=".keras", rtol=1e-5, atol=1e-6):
    """Convert `model`, check the lowerings applied, and compare the rebuilt artifact with Keras on `x`."""
    path = _save(model, tmp_path, "model", suffix)
    out = tmp_path / "out"
    result = converter.convert(path, out)
    assert sorted({a.rule for a in result.lowerings}) == sorted(rules)
    want = model(x, training=False)
    got = _rebuilt(out)(x, training=False)
    for w, g in zip(want if isinstance(want, list) else [want], got if isinstance(got, list) else [got]):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)
    return out


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_normalization_becomes_rescaling_constants_and_its_statistics_are_not_written(k, tmp_path):
    rng = np.random.default_rng(0)
    adapted = k.layers.Normalization(name="standardize")
    adapted.adapt(rng.normal([100.0, -3.0, 0.0], [20.0, 0.1, 0.0], size=(32, 3)).astype("float32"))
    inp = k.Input((3,))
    x = adapted(inp)
    x = k.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 9.0], invert=True, name="invert")(x)
    x = k.layers.Normalization(axis=None, mean=0.5, variance=2.0, name="scalar")(x)
    model = k.Model(inp, x)
    data = rng.normal(size=(8, 3)).astype("float32") * 50
    out = _lowered_matches(model, data, tmp_path, ["normalization"], ".keras" if k is keras else ".h5", rtol=2e-7)
    assert km.read_artifact(out) == {}  # the statistics are constants of the Rescalings
    std = np.maximum(np.sqrt(adapted.get_weights()[1]), np.float32(1e-7))
    layers = json.loads((out / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"]
    center, scale = layers[1]["config"], layers[2]["config"]
    np.testing.assert_array_equal(np.float32(center["offset"]), -adapted.get_weights()[0])
    np.testing.assert_array_equal(np.float32(scale["scale"]), np.float32(1) / std)


def test_normalization_over_leading_axes_broadcasts_as_keras_does(tmp_path):
    inp = keras.Input((4, 3, 2))
    norm = keras.layers.Normalization(axis=(1, 2), mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 0.0])
    x = np.random.default_rng(1).normal(size=(2, 4, 3, 2)).astype("float32")
    _lowered_matches(keras.Model(inp, norm(inp)), x, tmp_path, ["normalization"], rtol=2e-7)


@pytest.mark.parametrize("axis, shape", [(-1, (5, 4, 6)), (1, (6, 3, 4)), (-1, (6,))])
def test_group_normalization_is_layer_normalization_of_the_groups(axis, shape, tmp_path):
    inp = keras.Input(shape)
    model = keras.Model(inp, keras.layers.GroupNormalization(groups=3, axis=axis, epsilon=1e-3)(inp))
    km.randomize(model)
    x = (np.random.default_rng(2).normal(size=(2, *shape)) * 3 + 1).astype("float32")
    _lowered_matches(model, x, tmp_path, ["group_normalization"], rtol=1e-5, atol=1e-5)


def test_unit_and_rms_normalization_are_layer_normalization_of_x_and_minus_x(tmp_path):
    inp = keras.Input((3, 5))
    unit = keras.layers.UnitNormalization(name="unit")(inp)
    rms = keras.layers.RMSNormalization(name="rms")(inp)
    model = keras.Model(inp, [unit, rms])
    km.randomize(model)
    x = np.random.default_rng(3).normal(size=(2, 3, 5)).astype("float32")
    x[0, 1] = 0.0  # an all-zero row: Keras gives zeros, so must the lowering (no 0 * inf)
    _lowered_matches(model, x, tmp_path, ["unit_normalization", "rms_normalization"], rtol=1e-6, atol=1e-7)


def test_tf_keras_unit_normalization_matches_its_l2_normalize(tmp_path):
    inp = tf_keras.Input((4,))
    model = tf_keras.Model(inp, tf_keras.layers.UnitNormalization()(inp))
    x = np.random.default_rng(4).normal(size=(3, 4)).astype("float32") * np.float32([[1], [1e-3], [0]])
    _lowered_matches(model, x, tmp_path, ["unit_normalization"], ".h5", rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_keras_applications_own_layers_become_rescaling_and_add(k, tmp_path):
    from harness.suite.builders import application_layers

    model = application_layers(k)
    x = np.random.default_rng(5).normal(size=(2, 4, 4, 6)).astype("float32")
    out = _lowered_matches(
        model, x, tmp_path, ["layer_scale", "custom_scale"], ".keras" if k is keras else ".h5", rtol=1e-6
    )
    assert set(km.read_artifact(out)) == {"branch/kernel", "branch/bias"}  # LayerScale's gamma is a constant


def test_a_grouped_conv2d_with_one_channel_per_group_is_a_depthwise_conv2d(tmp_path):
    inp = keras.Input((6, 6, 4))
    model = keras.Model(inp, keras.layers.Conv2D(8, 3, groups=4, padding="same", name="dw")(inp))
    km.randomize(model)
    x = np.random.default_rng(6).normal(size=(2, 6, 6, 4)).astype("float32")
    out = _lowered_matches(model, x, tmp_path, ["depthwise_conv"])
    assert {n: w.shape for n, w in km.read_artifact(out).items()} == {
        "dw/depthwise_kernel": (3, 3, 4, 2),
        "dw/bias": (8,),
    }


def test_tf_keras_tensorflow_functions_become_layers(tmp_path):
    from harness.suite.builders import tf_ops

    model = tf_ops(tf_keras)
    x = np.random.default_rng(7).normal(size=(2, 4, 6)).astype("float32")
    _lowered_matches(model, x, tmp_path, ["scalar_op", "tensor_op", "tf_op_lambda", "tf_op_slice"], ".h5", rtol=1e-5)


@pytest.mark.parametrize("k", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_layers_that_are_the_identity_at_inference_are_removed(k, tmp_path):
    from harness.suite.builders import augmentation_in_model

    model = augmentation_in_model(k)
    x = np.random.default_rng(8).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    out = _lowered_matches(model, x, tmp_path, ["augmentation"], ".keras" if k is keras else ".h5")
    classes = json.dumps(json.loads((out / "model.json").read_text())["modelTopology"])
    assert "Random" not in classes


def test_a_removed_first_layer_of_a_sequential_leaves_the_input_shape(tmp_path):
    model = tf_keras.Sequential(
        [tf_keras.layers.SpatialDropout2D(0.5, input_shape=(6, 6, 3)), tf_keras.layers.Conv2D(2, 3)]
    )
    x = np.random.default_rng(9).normal(size=(2, 6, 6, 3)).astype("float32")
    out = _lowered_matches(model, x, tmp_path, ["inference_identity"], ".h5")
    layers = json.loads((out / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"]
    assert [e["class_name"] for e in layers] == ["InputLayer", "Conv2D"]
    assert layers[0]["config"]["batch_input_shape"] == [None, 6, 6, 3]


def test_a_removed_first_layer_carrying_the_input_shape_leaves_an_input_layer():
    from converter.lowering import Context, lower_sequential

    drop = {
        "class_name": "SpatialDropout2D",
        "config": {"name": "drop", "rate": 0.5, "batch_input_shape": [None, 6, 6, 3]},
    }
    dense = {"class_name": "Dense", "config": {"name": "dense", "units": 2}}
    low = Context(2)
    out = lower_sequential([drop, dense], low)
    assert [(e["class_name"], e["config"].get("batch_input_shape")) for e in out] == [
        ("InputLayer", [None, 6, 6, 3]),
        ("Dense", None),
    ]
    assert low.outputs == {"drop": "drop_input"}


# --- what the new lowerings refuse ----------------------------------------------------------------


def _issues(model, tmp_path, suffix=".keras") -> list[tuple[str, str]]:
    analysis = converter.check(_save(model, tmp_path, "refused", suffix))
    return sorted({(i.code, i.reason) for i in analysis.issues})


def _codes(model, tmp_path, suffix=".keras") -> set[str]:
    return {code for code, _ in _issues(model, tmp_path, suffix)}


def test_unit_normalization_in_a_sequential_or_over_several_axes_is_refused(tmp_path):
    seq = keras.Sequential([keras.Input((4,)), keras.layers.UnitNormalization()])
    assert "not_lowerable" in _codes(seq, tmp_path)
    inp = keras.Input((3, 4))
    model = keras.Model(inp, keras.layers.UnitNormalization(axis=[1, 2])(inp))
    assert "not_lowerable" in _codes(model, tmp_path)


def test_group_normalization_over_a_middle_axis_is_refused(tmp_path):
    inp = keras.Input((4, 6, 3))
    assert "not_lowerable" in _codes(keras.Model(inp, keras.layers.GroupNormalization(2, axis=2)(inp)), tmp_path)


def test_augmentation_of_an_integer_input_is_refused(tmp_path):
    inp = keras.Input((6, 6, 3), dtype="int32")
    x = keras.layers.RandomFlip()(inp)
    assert "not_lowerable" in _codes(keras.Model(inp, keras.layers.Conv2D(2, 1)(x)), tmp_path)


def test_keras3_records_training_true_on_augmentation_but_predicts_without_it(tmp_path):
    # Keras 3 writes training=True (RandomFlip.call's default) into every node and overrides it at inference.
    inp = keras.Input((6, 6, 3))
    model = keras.Model(inp, keras.layers.RandomFlip()(inp, training=True))
    assert json.loads(model.to_json())["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] == {"training": True}
    assert converter.check(_save(model, tmp_path, "flip")).supported


def test_a_user_layer_named_like_keras_applications_is_not_taken_for_it(tmp_path):
    @keras.saving.register_keras_serializable(package="mine")
    class LayerScale(keras.layers.Layer):
        def __init__(self, init_values, projection_dim, **kwargs):
            super().__init__(**kwargs)
            self.init_values, self.projection_dim = init_values, projection_dim

        def build(self, _):
            self.gamma = self.add_weight(shape=(self.projection_dim,))

        def call(self, x):
            return x + self.gamma  # not ConvNeXt's x * gamma

        def get_config(self):
            return {**super().get_config(), "init_values": self.init_values, "projection_dim": self.projection_dim}

    inp = keras.Input((4,))
    assert _codes(keras.Model(inp, LayerScale(0.1, 4)(inp)), tmp_path) == {"needs_python_code"}
    LayerScale.__module__ = "my_models"  # unregistered: the bare class name, from another module
    keras.saving.get_custom_objects().pop("mine>LayerScale")
    issues = _issues(keras.Model(inp, LayerScale(0.1, 4)(inp)), tmp_path)
    assert {code for code, _ in issues} == {"needs_python_code"}


def test_tf_functions_outside_the_tables_are_refused_by_name(tmp_path):
    import tensorflow as tf

    inp = tf_keras.Input((4,))
    x = tf_keras.layers.Dense(4)(inp)
    model = tf_keras.Model(inp, [tf.math.exp(x), x / x, 2.0 / x, tf.reshape(x, [2, 8])])
    issues = _issues(model, tmp_path, ".h5")
    reasons = " ".join(r for _, r in issues)
    assert "calls tf.math.exp" in reasons
    assert "no TF.js layer divides" in reasons and "a constant by a tensor" in reasons
    assert "not a batch of a fixed shape" in reasons


def test_a_per_channel_constant_needs_the_inputs_last_dimension(tmp_path):
    import tensorflow as tf

    inp = tf_keras.Input((4, 3))
    x = tf_keras.layers.Dense(3)(inp)  # the file does not record x's shape
    model = tf_keras.Model(inp, tf.math.multiply(x, tf.reshape([1.0, 2.0, 3.0], [1, 1, 3])))
    assert any("last dimension" in r for _, r in _issues(model, tmp_path, ".h5"))
    after_input = tf_keras.Model(inp, tf.math.multiply(inp, tf.reshape([1.0, 2.0, 3.0], [1, 1, 3])))
    assert converter.check(_save(after_input, tmp_path, "ok", ".h5")).supported


def test_slices_with_a_step_an_index_or_bounds_from_an_unknown_size_are_refused(tmp_path):
    inp = tf_keras.Input((6, 4))
    x = tf_keras.layers.Dense(4)(inp)
    for sliced in (x[:, ::2], x[:, 1], x[:, 1:3], x[:, :, 1:]):
        assert "not_lowerable" in _codes(tf_keras.Model(inp, sliced), tmp_path, ".h5")


def test_a_compiled_model_with_augmentation_converts_uncompiled(tmp_path):
    inp = keras.Input((6, 6, 3))
    x = keras.layers.RandomFlip()(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    model.compile(optimizer="sgd", loss="mse")
    analysis = converter.check(_save(model, tmp_path, "augmented"))
    assert analysis.supported and not analysis.training.carried
    (issue,) = analysis.training.issues
    assert issue.code == "lowered_for_inference" and "augmentation" in issue.reason
