"""The companion stage of the converter (converter/companion/, converter/companion_table.py) and the user's own
custom classes: what is refused by default and how the refusal names the option, what `--companion` writes, how
custom layers' weights are named. Whether TF.js then computes what Keras does is the `companion` tier's job
(tests/test_certify.py) and tests/test_companion_browser.py's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

import converter  # noqa: E402
from converter import companion  # noqa: E402
from converter.companion_table import ARGUMENTS, COMPANIONS, JS_FILE  # noqa: E402
from converter.errors import ConversionError, UnsupportedModelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _gru_model(k, **gru):
    inp = k.Input((5, 3), name="input")
    x = k.layers.Bidirectional(k.layers.GRU(4, return_sequences=True, name="gru1", **gru), name="bidi")(inp)
    return k.Model(inp, k.layers.GRU(2, name="gru2", **gru)(x), name="grus")


@pytest.fixture(scope="module")
def gru_files(tmp_path_factory):
    """A default-GRU model (reset_after=True) from Keras 3 (.keras, .h5) and tf_keras (.h5)."""
    d = tmp_path_factory.mktemp("gru")
    files = {}
    for name, k, suffix in (("k3", keras, ".keras"), ("k3h5", keras, ".h5"), ("tfk", tf_keras, ".h5")):
        files[name] = d / f"{name}{suffix}"
        _gru_model(k).save(files[name])
    return files


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


# --- the table and the module agree -------------------------------------------------------------------------------


def test_every_companion_rule_is_in_the_table_and_certified_by_a_suite_case():
    from harness.suite import CASES

    assert {name for name, _ in companion.RULES.values()} == set(COMPANIONS)
    declared = {rule for case in CASES if case.tier == "companion" for rule in case.companion}
    assert declared == set(COMPANIONS)
    for entry in COMPANIONS.values():
        assert entry.construct and entry.js_class and entry.why and entry.why_exact


def test_the_module_registers_exactly_the_classes_the_converter_writes():
    source = companion.SOURCE.read_text()
    listed = re.search(r"const CLASS_NAMES = \[(.*?)\];", source, re.S)
    assert listed is not None
    names = set(re.findall(r"'(\w+)'", listed.group(1)))
    assert names == set(ARGUMENTS)
    for name in names:
        assert name.startswith("TfjsCertify")  # never a name TF.js registers
        assert f"{name}.className = '{name}';" in source
    from converter.support_table import LAYERS

    assert not names & set(LAYERS)


def test_the_module_ships_inside_the_converter_package():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'converter = ["companion/*.js"]' in pyproject
    assert companion.SOURCE == ROOT / "converter" / "companion" / JS_FILE


# --- refused by default, naming the option ------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["k3", "k3h5", "tfk"])
def test_a_default_gru_is_refused_without_the_option(gru_files, tmp_path, flavour):
    with pytest.raises(UnsupportedModelError) as e:
        converter.convert(gru_files[flavour], tmp_path / "out")
    issues = e.value.issues
    assert {(i.layer, i.code) for i in issues} == {("gru1", "needs_companion"), ("gru2", "needs_companion")}
    assert all("--companion" in i.reason and "companion=True" in i.reason for i in issues)
    assert not (tmp_path / "out").exists()


def test_the_command_line_names_the_option_and_writes_nothing(gru_files, tmp_path):
    rc = run_cli(gru_files["k3"], tmp_path / "out")
    assert rc.returncode == 3
    assert "needs_companion" in rc.stderr and "--companion" in rc.stderr and "Traceback" not in rc.stderr
    assert not (tmp_path / "out").exists()


def test_check_lists_the_layers_that_need_the_module(gru_files):
    without = run_cli(gru_files["tfk"], "--check")
    assert without.returncode == 3
    assert "needs the companion module: 2 layer(s), gru1 (GRU), gru2 (GRU): convert with --companion" in without.stdout
    with_it = run_cli(gru_files["tfk"], "--check", "--companion")
    assert with_it.returncode == 0, with_it.stdout
    assert f"companion: 2 layer(s) run by the companion module ({JS_FILE})" in with_it.stdout
    assert "gru2: GRU -> TfjsCertifyGRU [gru_reset_after]" in with_it.stdout


# --- converted with the option ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["k3", "k3h5", "tfk"])
def test_the_option_writes_the_module_and_records_its_classes(gru_files, tmp_path, flavour):
    result = converter.convert(gru_files[flavour], tmp_path / "out", companion=True)
    assert result.companion_file == tmp_path / "out" / JS_FILE
    assert result.companion_file.read_bytes() == companion.SOURCE.read_bytes()
    assert set(result.files) == {"model.json", "group1-shard1of1.bin", JS_FILE}
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    meta = model["userDefinedMetadata"]["tfjs_certify"]["companion"]
    assert meta["file"] == JS_FILE and meta["classes"] == ["TfjsCertifyGRU"]
    assert [(x["layer"], x["rule"]) for x in meta["layers"]] == [
        ("gru1", "gru_reset_after"),
        ("gru2", "gru_reset_after"),
    ]
    layers = {x["name"]: x for x in model["modelTopology"]["model_config"]["config"]["layers"]}
    assert layers["gru2"]["class_name"] == "TfjsCertifyGRU"
    assert layers["gru2"]["config"]["reset_after"] is True
    assert layers["bidi"]["config"]["layer"]["class_name"] == "TfjsCertifyGRU"
    # the weights keep the names TF.js's RNN gives the cell's (the middle part falls away when loading)
    names = [w["name"] for w in model["weightsManifest"][0]["weights"]]
    assert "gru2/gru_cell/bias" in names and "bidi/forward_gru1/gru_cell/kernel" in names
    bias = next(w for w in model["weightsManifest"][0]["weights"] if w["name"] == "gru2/gru_cell/bias")
    assert bias["shape"] == [2, 6]


def test_the_command_line_prints_the_script_line(gru_files, tmp_path):
    rc = run_cli(gru_files["k3"], tmp_path / "web" / "model", "--companion")
    assert rc.returncode == 0, rc.stderr
    line = rc.stdout.strip().splitlines()[-1]
    assert line.endswith(f'<script src="{(tmp_path / "web" / "model").as_posix()}/{JS_FILE}"></script>')
    assert (tmp_path / "web" / "model" / JS_FILE).is_file()


def test_a_model_without_such_layers_gets_no_module(tmp_path):
    path = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    result = converter.convert(path, tmp_path / "out", companion=True)
    assert result.companion_file is None and JS_FILE not in result.files
    assert "userDefinedMetadata" not in json.loads((tmp_path / "out" / "model.json").read_text())


def test_companion_and_lowering_metadata_live_side_by_side(tmp_path):
    inp = keras.Input((6, 3))
    x = keras.layers.Conv1D(2, 3, padding="causal", name="causal")(inp)
    model = keras.Model(inp, keras.layers.GRU(2, name="gru")(x))
    model.save(tmp_path / "m.keras")
    converter.convert(tmp_path / "m.keras", tmp_path / "out", companion=True, metadata={"mine": 1})
    meta = json.loads((tmp_path / "out" / "model.json").read_text())["userDefinedMetadata"]
    assert meta["mine"] == 1
    assert [x["rule"] for x in meta["tfjs_certify"]["lowerings"]] == ["causal_conv_1d"]
    assert meta["tfjs_certify"]["companion"]["classes"] == ["TfjsCertifyGRU"]


@pytest.mark.parametrize(
    "layer, shape, code",
    [
        (lambda: keras.layers.GRU(2, recurrent_activation="hard_sigmoid"), (5, 3), "unknown_activation"),
        (lambda: keras.layers.Resizing(4, 4, antialias=True), (4, 4, 2), "unsupported_value"),
        (lambda: keras.layers.Discretization(bin_boundaries=[0.0], output_mode="one_hot"), (3,), "unsupported_value"),
    ],
)
def test_what_the_module_does_not_compute_is_refused_with_or_without_the_option(tmp_path, layer, shape, code):
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input(shape), layer()]).save(path)
    for option in (False, True):
        with pytest.raises(UnsupportedModelError) as e:
            converter.convert(path, tmp_path / f"out{option}", companion=option)
        assert code in {i.code for i in e.value.issues}
        assert "needs_companion" not in {i.code for i in e.value.issues}


def test_an_unknown_argument_is_refused_fail_closed():
    config = {"name": "gru", "units": 2, "reset_after": True, "frobnicate": 1}
    found = companion.adapt("GRU", config, 3, companion.Context(enabled=True))
    assert found is not None and [(i.argument, i.code) for i in found[2]] == [("frobnicate", "unsupported_argument")]


# --- training -----------------------------------------------------------------------------------------------------


def _compiled_gru(k, path, **gru):
    model = k.Sequential([k.Input((5, 3)), k.layers.GRU(3, name="gru", **gru), k.layers.Dense(2, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    model.save(path)
    return path


def test_a_compiled_gru_converts_compiled(tmp_path):
    result = converter.convert(_compiled_gru(keras, tmp_path / "m.keras"), tmp_path / "out", companion=True)
    assert result.training.carried


def test_a_gru_with_dropout_converts_uncompiled_with_its_reason(tmp_path):
    path = _compiled_gru(keras, tmp_path / "m.keras", dropout=0.2)
    result = converter.convert(path, tmp_path / "out", companion=True)
    assert not result.training.carried
    assert [i.code for i in result.training.issues] == ["js_layer_for_inference"]
    assert "gru (TfjsCertifyGRU)" in result.training.issues[0].reason


def test_a_class_no_train_case_certifies_leaves_the_model_uncompiled(tmp_path):
    path = tmp_path / "m.keras"
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Resizing(4, 4), keras.layers.Flatten()])
    model.compile(optimizer="sgd", loss="mse")
    model.save(path)
    result = converter.convert(path, tmp_path / "out", companion=True)
    assert [i.code for i in result.training.issues] == ["js_layer_for_inference"]
    assert "TfjsCertifyResizing" in result.training.issues[0].reason


# --- the user's own custom classes --------------------------------------------------------------------------------

_SCALES: dict = {}


def scale_class(k):
    """A custom layer with a trainable and a non-trainable weight, registered as `tfjs_certify_test>Scale`."""
    if k.__name__ not in _SCALES:
        register = k.saving.register_keras_serializable if hasattr(k, "saving") else k.utils.register_keras_serializable

        @register(package="tfjs_certify_test")
        class Scale(k.layers.Layer):
            def build(self, input_shape):
                self.offset = self.add_weight(name="offset", shape=(), initializer="zeros", trainable=False)
                self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")

            def call(self, x):
                return x * self.gain + self.offset

        _SCALES[k.__name__] = Scale
    return _SCALES[k.__name__]


def _custom_model(k, path):
    inp = k.Input((4,), name="input")
    x = k.layers.Dense(3, name="dense")(inp)
    model = k.Model(inp, scale_class(k)(name="scale")(x))
    model.save(path)
    return path


CLASS = "tfjs_certify_test>Scale"


@pytest.mark.parametrize("k, suffix", [(keras, ".keras"), (keras, ".h5"), (tf_keras, ".h5")])
def test_a_custom_class_is_refused_unless_named(tmp_path, k, suffix):
    path = _custom_model(k, tmp_path / f"m{suffix}")
    with pytest.raises(UnsupportedModelError) as e:
        converter.convert(path, tmp_path / "out")
    assert [(i.layer, i.class_name, i.code) for i in e.value.issues] == [("scale", CLASS, "needs_python_code")]


def test_a_keras_file_needs_the_weight_names_and_says_the_convention(tmp_path):
    path = _custom_model(keras, tmp_path / "m.keras")
    with pytest.raises(ConversionError, match=r"by position only.*--custom_class 'tfjs_certify_test>Scale:w0,w1'$"):
        converter.convert(path, tmp_path / "out", custom_classes=[CLASS])
    with pytest.raises(ConversionError, match=r"2 weight.*1 named"):
        converter.convert(path, tmp_path / "out", custom_classes={CLASS: ["gain"]})
    assert not (tmp_path / "out").exists()


def test_a_keras_file_names_custom_weights_by_position(tmp_path):
    """Keras 3 stores a layer's trainable variables, then its non-trainable ones: gain (vars/0), offset (vars/1)."""
    path = _custom_model(keras, tmp_path / "m.keras")
    model = keras.models.load_model(path)
    model.get_layer("scale").set_weights([np.full((3,), 2.0, "f4"), np.array(0.5, "f4")])
    model.save(path)
    result = converter.convert(path, tmp_path / "out", custom_classes={CLASS: ["gain", "offset"]})
    assert result.custom_layers == [("scale", CLASS)]
    model_json = json.loads((tmp_path / "out" / "model.json").read_text())
    specs = model_json["weightsManifest"][0]["weights"]
    data = np.frombuffer((tmp_path / "out" / "group1-shard1of1.bin").read_bytes(), "<f4")
    at, values = 0, {}
    for spec in specs:
        n = int(np.prod(spec["shape"]))
        values[spec["name"]] = data[at : at + n]
        at += n
    np.testing.assert_array_equal(values["scale/gain"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(values["scale/offset"], [0.5])
    layer = model_json["modelTopology"]["model_config"]["config"]["layers"][-1]
    assert layer["class_name"] == CLASS and layer["inbound_nodes"] == [[["dense", 0, 0, {}]]]
    assert model_json["userDefinedMetadata"]["tfjs_certify"]["custom_classes"] == {CLASS: "tfjsCertifyTest>Scale"}


@pytest.mark.parametrize("k", [keras, tf_keras])
def test_an_h5_file_names_custom_weights_itself_and_given_names_must_agree(tmp_path, k):
    path = _custom_model(k, tmp_path / "m.h5")
    converter.convert(path, tmp_path / "out", custom_classes=[CLASS])
    names = [
        w["name"] for w in json.loads((tmp_path / "out" / "model.json").read_text())["weightsManifest"][0]["weights"]
    ]
    assert {"scale/gain", "scale/offset"} <= set(names)
    with pytest.raises(ConversionError, match="not \\['offset', 'gain', 'bias'\\]"):
        converter.convert(path, tmp_path / "out2", custom_classes={CLASS: ["offset", "gain", "bias"]})


def test_a_custom_class_may_not_take_a_name_tf_js_registers(tmp_path):
    path = _custom_model(keras, tmp_path / "m.keras")
    with pytest.raises(ConversionError, match=r"Dense.*would replace"):
        converter.convert(path, tmp_path / "out", custom_classes=["Dense"])


def test_a_model_with_a_custom_layer_converts_uncompiled(tmp_path):
    path = tmp_path / "m.keras"
    inp = keras.Input((4,))
    model = keras.Model(inp, scale_class(keras)(name="scale")(keras.layers.Dense(3)(inp)))
    model.compile(optimizer="sgd", loss="mse")
    model.save(path)
    result = converter.convert(path, tmp_path / "out", custom_classes={CLASS: ["gain", "offset"]})
    assert [i.code for i in result.training.issues] == ["js_layer_for_inference"]


def test_the_command_line_takes_custom_classes_with_weight_names(tmp_path):
    path = _custom_model(keras, tmp_path / "m.keras")
    rc = run_cli(path, tmp_path / "out", "--custom_class", f"{CLASS}:gain,offset")
    assert rc.returncode == 0, rc.stderr
    assert f"register your ports as static className = 'tfjsCertifyTest>Scale' (for {CLASS})" in rc.stdout
    check = run_cli(path, "--check", "--custom_class", f"{CLASS}:gain,offset")
    assert check.returncode == 0 and f"custom: 1 layer(s) your JavaScript registers: scale ({CLASS})" in check.stdout


def test_tfjs_camel_cases_class_names_as_the_converter_says():
    """tfjs-layers generic_utils.toCamelCase, on the names a port registers."""
    assert companion.tfjs_class_name("my_layers>Scale") == "myLayers>Scale"
    assert companion.tfjs_class_name("Custom>My__Layer_") == "Custom>MyLayer"
    assert companion.tfjs_class_name("Scale") == "Scale" and companion.tfjs_class_name("_") == "_"
