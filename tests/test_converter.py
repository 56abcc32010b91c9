"""converter: every translation rule, the writer, rejections and bad input, on files real Keras saved.

Models are built once per session by Keras 3 and tf_keras (tests/keras_models.py), with the same
random weights, and saved as Keras 3 `.h5` and `.keras` and tf_keras `.h5` in a temporary directory.
No browser is needed here.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

import keras_models as km  # noqa: E402

import converter  # noqa: E402
from converter import reader  # noqa: E402
from converter.errors import ConversionError, UnsupportedModelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("keras3_h5", "keras3_keras", "keras3_memory", "tf_keras_h5")


class Zoo:
    """Each model of `keras_models.BUILDERS` saved in every format, converted on demand (cached)."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[tuple[str, str], Path] = {}
        self.expected: dict[str, dict[str, np.ndarray]] = {}
        self.keras2_config: dict[str, dict] = {}
        self.models3 = {}
        self._out: dict[tuple[str, str], Path] = {}

    def save(self, name, build):
        k3 = build(keras)
        km.randomize(k3)
        k2 = build(tf_keras)
        km.copy_weights(k3, k2)
        self.models3[name] = k3
        self.expected[name] = km.keras2_weights(k2)
        self.keras2_config[name] = json.loads(k2.to_json())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras 3 warns that .h5 is a legacy format
            k3.save(self.file(name, "keras3_h5"))
            k2.save(self.file(name, "tf_keras_h5"))
        k3.save(self.file(name, "keras3_keras"))

    def file(self, name, fmt) -> Path:
        suffix = ".keras" if fmt == "keras3_keras" else ".h5"
        return self.root / f"{name}-{fmt}{suffix}"

    def out(self, name, fmt="keras3_keras") -> Path:
        """The artifact directory of model `name` saved as `fmt`."""
        key = (name, fmt)
        if key not in self._out:
            out = self.root / "out" / f"{name}-{fmt}"
            if fmt == "keras3_memory":
                converter.save_keras_model(self.models3[name], out)
            else:
                converter.convert(self.file(name, fmt), out)
            self._out[key] = out
        return self._out[key]

    def model_json(self, name, fmt="keras3_keras") -> dict:
        return json.loads((self.out(name, fmt) / "model.json").read_text())

    def config(self, name, fmt="keras3_keras") -> dict:
        return self.model_json(name, fmt)["modelTopology"]["model_config"]


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    zoo = Zoo(tmp_path_factory.mktemp("zoo"))
    for name, build in km.BUILDERS.items():
        zoo.save(name, build)
    return zoo


def layers_of(config) -> dict[str, dict]:
    return {layer["config"]["name"]: layer for layer in config["config"]["layers"]}


def walk(obj):
    """Every dict inside a JSON value."""
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk(v)


def refs(node):
    """[layer, node_index, tensor_index] of each inbound tensor of a Keras 2 node."""
    return [list(r[:3]) for r in node]


def structure(config):
    """What must agree between Keras 3 and tf_keras configs of one model: classes, names, wiring."""
    inner = config["config"]
    layers = []
    for layer in inner["layers"]:
        name = layer["config"]["name"]
        if config["class_name"] == "Sequential" and layer["class_name"] == "InputLayer":
            name = "<unreferenced>"  # Keras 3 and tf_keras generate different names
        entry = (layer["class_name"], name, [refs(n) for n in layer.get("inbound_nodes", [])])
        if layer["class_name"] in ("Sequential", "Functional", "Model"):
            entry += (structure(layer),)
        layers.append(entry)
    return layers, inner.get("input_layers"), inner.get("output_layers")


# --- Translation rules ------------------------------------------------------------------------


def test_batch_shape_becomes_batch_input_shape(zoo):
    config = zoo.config("mlp")
    assert layers_of(config)["x"]["config"]["batch_input_shape"] == [None, 4]
    assert not [d for d in walk(config) if "batch_shape" in d]


def test_dtype_policy_becomes_a_string(zoo):
    raw = json.loads(zipfile.ZipFile(zoo.file("mlp", "keras3_keras")).read("config.json"))
    assert isinstance(layers_of(raw)["d1"]["config"]["dtype"], dict)  # Keras 3 writes a DTypePolicy
    for layer in zoo.config("mlp")["config"]["layers"]:
        assert layer["config"]["dtype"] == "float32"


@pytest.mark.parametrize("fmt", ["keras3_h5", "keras3_keras"])
def test_envelope_keys_are_gone(zoo, fmt):
    text = json.dumps(zoo.model_json("nested", fmt))
    for key in (
        "module",
        "registered_name",
        "build_config",
        "compile_config",
        "shared_object_id",
        "__keras_tensor__",
        "keras_history",
    ):
        assert f'"{key}"' not in text


def test_keras3_nodes_become_keras2_lists(zoo):
    layers = layers_of(zoo.config("mlp"))
    assert layers["d1"]["inbound_nodes"] == [[["x", 0, 0, {}]]]
    assert layers["d2"]["inbound_nodes"] == [[["d1", 0, 0, {}]]]


def test_initial_state_is_appended_to_the_inbound_list(zoo):
    node = layers_of(zoo.config("initial_state"))["lstm"]["inbound_nodes"][0]
    assert refs(node) == [["x", 0, 0], ["h", 0, 0], ["c", 0, 0]]
    assert all("initial_state" not in r[3] for r in node)


@pytest.mark.parametrize("name, dropped", [("embedding_mask", {"NotEqual"}), ("masking", {"NotEqual", "Any"})])
def test_mask_is_dropped_with_its_op_layers(zoo, name, dropped):
    raw = json.loads(zipfile.ZipFile(zoo.file(name, "keras3_keras")).read("config.json"))
    assert dropped <= {layer["class_name"] for layer in raw["config"]["layers"]}
    config = zoo.config(name)
    assert not dropped & {layer["class_name"] for layer in config["config"]["layers"]}
    node = layers_of(config)["lstm"]["inbound_nodes"][0]
    assert len(node) == 1 and "mask" not in node[0][3]
    assert converter.check(zoo.file(name, "keras3_keras")).supported


@pytest.mark.parametrize("fmt", ["keras3_h5", "keras3_keras"])
def test_single_input_and_output_layers_are_nested(zoo, fmt):
    config = zoo.config("mlp", fmt)["config"]
    assert config["input_layers"] == [["x", 0, 0]]
    assert config["output_layers"] == [["d2", 0, 0]]


def test_sequential_prefix_is_stripped_from_h5_weight_names(zoo):
    with h5py.File(zoo.file("sequential", "keras3_h5")) as f:
        raw = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights/d"].attrs["weight_names"]]
    assert raw[0].startswith("seq/d/")
    names = [w["name"] for w in zoo.model_json("sequential", "keras3_h5")["weightsManifest"][0]["weights"]]
    assert names[:2] == ["d/kernel", "d/bias"]


def test_sequential_without_input_gets_one_from_build(zoo):
    layers = zoo.config("sequential_built")["config"]["layers"]
    assert layers[0]["class_name"] == "InputLayer"
    assert layers[0]["config"]["batch_input_shape"] == [None, 4]
    assert [layer["config"]["name"] for layer in layers[1:]] == ["d", "out"]


@pytest.mark.parametrize("fmt", ["keras3_h5", "keras3_keras"])
def test_nested_model_node_index_shifts_like_tf_keras(zoo, fmt):
    ours = zoo.config("nested", fmt)
    theirs = zoo.keras2_config["nested"]
    head = layers_of(ours)["head"]["inbound_nodes"]
    assert refs(head[0]) == [["inner", 1, 0]]
    assert head == [[r[:3] + [r[3]] for r in n] for n in layers_of(theirs)["head"]["inbound_nodes"]]
    assert ours["config"]["output_layers"] == theirs["config"]["output_layers"]


def test_nested_model_as_output_shifts(tmp_path):
    """A nested model that is itself the output: the output reference shifts too."""
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")], name="inner")
    x = keras.Input((3,), name="x")
    keras.Model(x, inner(x), name="outer").save(tmp_path / "m.keras")
    converter.convert(tmp_path / "m.keras", tmp_path / "out")
    config = json.loads((tmp_path / "out/model.json").read_text())["modelTopology"]["model_config"]
    assert config["config"]["output_layers"] == [["inner", 1, 0]]


@pytest.mark.parametrize("fmt", ["keras3_h5", "keras3_keras", "tf_keras_h5"])
def test_bidirectional_inner_forward_prefix_is_removed(zoo, fmt):
    bidi = layers_of(zoo.config("bidirectional", fmt))["bidi"]["config"]
    assert bidi["layer"]["config"]["name"] == "lstm"
    names = [w["name"] for w in zoo.model_json("bidirectional", fmt)["weightsManifest"][0]["weights"]]
    assert "bidi/forward_lstm/lstm_cell/kernel" in names
    assert "bidi/backward_lstm/lstm_cell/kernel" in names


@pytest.mark.parametrize("fmt", FORMATS)
def test_stacked_rnn_cells_are_named_as_tfjs_does(zoo, fmt):
    names = [w["name"] for w in zoo.model_json("stacked", fmt)["weightsManifest"][0]["weights"]]
    assert names == [f"rnn/RNNCell_{i}/{w}" for i in (0, 1) for w in ("kernel", "recurrent_kernel", "bias")]


# --- The same model, every format --------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(km.BUILDERS))
def test_weights_equal_the_models_by_name(zoo, name, fmt):
    got = km.read_artifact(zoo.out(name, fmt))
    expected = zoo.expected[name]
    assert sorted(got) == sorted(expected)
    for weight, value in expected.items():
        assert got[weight].shape == value.shape, weight
        assert got[weight].dtype == np.float32, weight
        assert np.array_equal(got[weight], value), weight


@pytest.mark.parametrize("fmt", ["keras3_h5", "keras3_memory", "tf_keras_h5"])
@pytest.mark.parametrize("name", list(km.BUILDERS))
def test_topology_agrees_across_formats(zoo, name, fmt):
    assert structure(zoo.config(name, fmt)) == structure(zoo.config(name, "keras3_keras"))


@pytest.mark.parametrize("name", list(km.BUILDERS))
def test_topology_agrees_with_tf_keras_own_config(zoo, name):
    assert structure(zoo.config(name)) == structure(zoo.keras2_config[name])


def test_manifest_order_is_the_same_across_formats(zoo):
    def manifest(fmt):
        return [(w["name"], w["shape"]) for w in zoo.model_json("cnn", fmt)["weightsManifest"][0]["weights"]]

    assert manifest("keras3_h5") == manifest("keras3_keras")
    # tf_keras .h5: the official converter's order, layer groups by name (each layer's weights in order).
    assert manifest("tf_keras_h5") == sorted(manifest("keras3_keras"), key=lambda w: w[0].split("/")[0])


# --- Writer ------------------------------------------------------------------------------------


def test_shard_size_is_honoured_and_a_weight_spans_shards(zoo, tmp_path):
    # cnn: conv/kernel is 3*3*3*4 float32 = 432 bytes, so 100-byte shards cut through it.
    result = converter.convert(zoo.file("cnn", "keras3_keras"), tmp_path / "out", shard_size=100)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    total = sum(v.nbytes for v in zoo.expected["cnn"].values())
    n = -(-total // 100)
    assert files == sorted(["model.json"] + [f"group1-shard{k}of{n}.bin" for k in range(1, n + 1)])
    sizes = [(tmp_path / "out" / f"group1-shard{k}of{n}.bin").stat().st_size for k in range(1, n + 1)]
    assert sizes[:-1] == [100] * (n - 1) and 0 < sizes[-1] <= 100
    assert result.weight_bytes == total and result.shards == n
    got = km.read_artifact(tmp_path / "out")
    assert all(np.array_equal(got[k], v) for k, v in zoo.expected["cnn"].items())


def test_shards_are_little_endian_float32(zoo):
    out = zoo.out("mlp")
    entries = json.loads((out / "model.json").read_text())["weightsManifest"][0]
    first = entries["weights"][0]
    assert first["name"] == "d1/kernel" and first["dtype"] == "float32"
    data = (out / entries["paths"][0]).read_bytes()[: 4 * 32]
    assert np.array_equal(np.frombuffer(data, "<f4").reshape(4, 8), zoo.expected["mlp"]["d1/kernel"])


def write_h5(path, layers: dict[str, dict[str, np.ndarray]], model_config: dict):
    """A minimal Keras 2 style .h5 written with h5py: `layers` maps layer -> weight -> value."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(model_config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in layers]
        for layer, weights in layers.items():
            lg = g.create_group(layer)
            lg.attrs["weight_names"] = [f"{layer}/{w}:0".encode() for w in weights]
            for w, value in weights.items():
                lg.create_dataset(f"{layer}/{w}:0", data=value)


def dense_config(units=2, input_dim=3):
    return {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_input_shape": [None, input_dim], "dtype": "float32", "name": "x"},
                },
                {
                    "class_name": "Dense",
                    "config": {
                        "name": "d",
                        "units": units,
                        "use_bias": True,
                        "activation": "linear",
                        "dtype": "float32",
                    },
                },
            ],
        },
    }


@pytest.mark.parametrize(
    "stored, written",
    [(np.float64, np.float32), (np.int64, np.int32), (">f4", np.float32)],
    ids=["float64", "int64", "big-endian"],
)
def test_weights_are_written_in_a_dtype_tfjs_reads(tmp_path, stored, written):
    kernel = (np.arange(6).reshape(3, 2) - 2).astype(stored)
    write_h5(tmp_path / "m.h5", {"d": {"kernel": kernel, "bias": np.ones(2, stored)}}, dense_config())
    converter.convert(tmp_path / "m.h5", tmp_path / "out")
    manifest = json.loads((tmp_path / "out/model.json").read_text())["weightsManifest"][0]
    assert [w["dtype"] for w in manifest["weights"]] == [np.dtype(written).name] * 2
    raw = (tmp_path / "out" / manifest["paths"][0]).read_bytes()
    assert np.array_equal(np.frombuffer(raw[:24], np.dtype(written).newbyteorder("<")).reshape(3, 2), kernel)


QUANT_LEVELS = {"uint8": 255, "uint16": 65535}


@pytest.mark.parametrize("dtype", ["float16", "uint8", "uint16"])
def test_quantization_decodes_within_half_a_step(tmp_path, dtype):
    rng = np.random.default_rng(1)
    kernel = rng.uniform(-3, 5, (3, 2)).astype("float32")
    kernel[0, 0] = 0.0
    bias = np.full(2, 0.7, "float32")  # constant
    write_h5(tmp_path / "m.h5", {"d": {"kernel": kernel, "bias": bias}}, dense_config())
    converter.convert(tmp_path / "m.h5", tmp_path / "out", quantize={dtype: None})
    manifest = json.loads((tmp_path / "out/model.json").read_text())["weightsManifest"][0]["weights"]
    q = {w["name"]: w["quantization"] for w in manifest}
    assert {m["dtype"] for m in q.values()} == {dtype}
    got = km.read_artifact(tmp_path / "out")
    if dtype == "float16":
        assert np.array_equal(got["d/kernel"], kernel.astype(np.float16).astype(np.float32))
    else:
        scale = q["d/kernel"]["scale"]
        assert scale == pytest.approx((kernel.max() - kernel.min()) / QUANT_LEVELS[dtype], rel=1e-6)
        assert np.abs(got["d/kernel"] - kernel).max() <= scale / 2 + 1e-6
        assert q["d/bias"]["scale"] == 1
        assert np.allclose(got["d/bias"], bias)
    assert got["d/kernel"][0, 0] == 0.0


def test_quantize_name_patterns_select_weights(zoo, tmp_path):
    converter.convert(zoo.file("cnn", "keras3_keras"), tmp_path / "out", quantize={"uint8": ["*/kernel"]})
    entries = json.loads((tmp_path / "out/model.json").read_text())["weightsManifest"][0]["weights"]
    quantized = {w["name"] for w in entries if "quantization" in w}
    assert quantized == {"conv/kernel", "out/kernel"}
    got = km.read_artifact(tmp_path / "out")
    assert np.array_equal(got["bn/gamma"], zoo.expected["cnn"]["bn/gamma"])


def test_quantize_flag_on_the_command_line(zoo, tmp_path):
    rc = run_cli(zoo.file("mlp", "tf_keras_h5"), tmp_path / "out", "--quantize_float16", "d1/*")
    assert rc.returncode == 0, rc.stderr
    entries = json.loads((tmp_path / "out/model.json").read_text())["weightsManifest"][0]["weights"]
    assert {w["name"]: w.get("quantization", {}).get("dtype") for w in entries} == {
        "d1/kernel": "float16",
        "d1/bias": "float16",
        "d2/kernel": None,
        "d2/bias": None,
    }


def test_split_weights_by_layer(zoo, tmp_path):
    rc = run_cli(zoo.file("cnn", "keras3_h5"), tmp_path / "out", "--split_weights_by_layer")
    assert rc.returncode == 0, rc.stderr
    manifest = json.loads((tmp_path / "out/model.json").read_text())["weightsManifest"]
    assert [sorted({w["name"].split("/")[0] for w in g["weights"]}) for g in manifest] == [["conv"], ["bn"], ["out"]]
    assert [g["paths"] for g in manifest] == [[f"group{i}-shard1of1.bin"] for i in (1, 2, 3)]
    got = km.read_artifact(tmp_path / "out")
    assert all(np.array_equal(got[k], v) for k, v in zoo.expected["cnn"].items())


def test_split_groups_go_largest_first_by_the_bytes_written(tmp_path):
    """TF.js 4.22 misreads a last shard larger than the others (converter/api.py _tfjs_safe_order): groups are
    ordered by the bytes they take as written, so quantizing the larger layer to uint8 moves it last."""
    x = keras.Input((64,))
    big = keras.layers.Dense(64, name="big")(x)  # 16 KiB of float32, 4 KiB as uint8
    model = keras.Model(x, keras.layers.Dense(40, name="small")(big))  # 10 KiB of float32
    model.save(tmp_path / "m.keras")
    rc = run_cli(tmp_path / "m.keras", tmp_path / "out", "--split_weights_by_layer", "--quantize_uint8", "big/*")
    assert rc.returncode == 0, rc.stderr
    manifest = json.loads((tmp_path / "out/model.json").read_text())["weightsManifest"]
    assert [g["weights"][0]["name"].split("/")[0] for g in manifest] == ["small", "big"]
    sizes = [(tmp_path / "out" / g["paths"][-1]).stat().st_size for g in manifest]
    assert sizes == sorted(sizes, reverse=True)


# --- Rejections --------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="certify_tests")
class Scale(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


REJECTED = {
    "lambda": (lambda x: keras.layers.Lambda(lambda t: t + 1.0, name="lam")(x), "lam", "needs_python_code"),
    "custom-registered": (lambda x: Scale(name="scale")(x), "scale", "needs_python_code"),
    "gru-reset-after": (lambda x: keras.layers.GRU(2, reset_after=True, name="gru")(x), "gru", "needs_companion"),
    "elu-alpha": (lambda x: keras.layers.ELU(alpha=0.5, name="elu")(x), "elu", "unsupported_value"),
    "discretization": (lambda x: keras.layers.Discretization([0.0], name="disc")(x), "disc", "needs_companion"),
    # attention is lowered, except in forms that compute something else: those are refused by name
    "attention-scores": (
        lambda x: keras.layers.Attention(name="att")([x, x], return_attention_scores=True)[0],
        "att",
        "not_lowerable",
    ),
    "multi-head-attention-scores": (
        lambda x: keras.layers.MultiHeadAttention(2, 2, name="mha")(x, x, return_attention_scores=True)[0],
        "mha",
        "not_lowerable",
    ),
}


@pytest.fixture(scope="module")
def rejected_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rejected")
    files = {}
    for key, (make, _, _) in REJECTED.items():
        x = keras.Input((4, 3), name="x")
        files[key] = root / f"{key}.keras"
        keras.Model(x, make(x)).save(files[key])
    x = keras.Input((4, 3), name="x")
    outs = [make(x) for make, _, _ in REJECTED.values()]
    files["all"] = root / "all.keras"
    keras.Model(x, outs).save(files["all"])
    return files


@pytest.mark.parametrize("key", list(REJECTED))
def test_unsupported_layer_is_refused(rejected_files, tmp_path, key):
    _, layer, code = REJECTED[key]
    with pytest.raises(UnsupportedModelError) as e:
        converter.convert(rejected_files[key], tmp_path / "out")
    assert (layer, code) in {(i.layer, i.code) for i in e.value.issues}
    assert str(rejected_files[key]) in str(e.value)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


def test_every_offending_layer_is_listed(rejected_files, tmp_path):
    with pytest.raises(UnsupportedModelError) as e:
        converter.convert(rejected_files["all"], tmp_path / "out")
    found = {(i.layer, i.code) for i in e.value.issues}
    assert {(layer, code) for _, layer, code in REJECTED.values()} <= found
    for _, layer, _ in REJECTED.values():
        assert layer in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_check_exit_codes_and_table(zoo, rejected_files):
    ok = run_cli(zoo.file("cnn", "keras3_keras"), None, "--check")
    assert ok.returncode == 0, ok.stderr
    assert "supported" in ok.stdout
    bad = run_cli(rejected_files["all"], None, "--check")
    assert bad.returncode == 3, bad.stderr
    header = bad.stdout.splitlines()[1].split()
    assert header[:4] == ["layer", "class", "argument", "code"]
    rows = {line.split()[0]: line for line in bad.stdout.splitlines()[2:-1]}
    for _, layer, code in REJECTED.values():
        assert code in rows[layer]


def test_unsupported_on_the_command_line(rejected_files, tmp_path):
    rc = run_cli(rejected_files["gru-reset-after"], tmp_path / "out")
    assert rc.returncode == 3
    assert "gru" in rc.stderr and "Traceback" not in rc.stderr
    assert list(tmp_path.iterdir()) == []


# --- Bad input, on the command line ---------------------------------------------------------------


def run_cli(src, out, *flags):
    args = [str(src)] + ([str(out)] if out is not None else []) + list(flags)
    return subprocess.run(
        [sys.executable, "-m", "converter", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def truncated(tmp_path, zoo):
    data = zoo.file("cnn", "tf_keras_h5").read_bytes()
    (tmp_path / "bad.h5").write_bytes(data[: len(data) // 2])


def not_a_model(tmp_path, zoo):
    (tmp_path / "bad.h5").write_text("hello, not a model\n")


def empty(tmp_path, zoo):
    (tmp_path / "bad.h5").write_bytes(b"")


def weights_only(tmp_path, zoo):
    zoo.models3["mlp"].save_weights(tmp_path / "bad.weights.h5")
    (tmp_path / "bad.weights.h5").rename(tmp_path / "bad.h5")


def weights_only_keras2(tmp_path, zoo):
    model = km.mlp(tf_keras)
    model.save_weights(tmp_path / "bad.h5")


def broken_json(tmp_path, zoo):
    write_h5(tmp_path / "bad.h5", {"d": {"kernel": np.ones((3, 2), "f4")}}, dense_config())
    with h5py.File(tmp_path / "bad.h5", "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": {'


def no_model_in_config(tmp_path, zoo):
    write_h5(tmp_path / "bad.h5", {"d": {"kernel": np.ones((3, 2), "f4")}}, dense_config())
    with h5py.File(tmp_path / "bad.h5", "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Functional"}'  # valid JSON, but no model


def no_layers_in_config(tmp_path, zoo):
    write_h5(tmp_path / "bad.h5", {"d": {"kernel": np.ones((3, 2), "f4")}}, dense_config())
    with h5py.File(tmp_path / "bad.h5", "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": {"name": "s", "layers": []}}'


def keras_config_without_model(tmp_path, zoo):
    _zip(tmp_path, _keras_members(zoo) | {"config.json": b'{"class_name": "Functional"}'})


def wrong_kernel_shape(tmp_path, zoo):
    path = tmp_path / "bad.h5"
    path.write_bytes(zoo.file("mlp", "tf_keras_h5").read_bytes())
    with h5py.File(path, "r+") as f:
        group = f["model_weights/d2/d2"]
        del group["kernel:0"]
        group.create_dataset("kernel:0", data=np.zeros((8, 5), "f4"))  # units is 3


SHAPE_EDITS = {
    "dense-bias-units": ("mlp", "d1/d1/bias:0", (9,)),
    "conv-filters": ("cnn", "conv/conv/kernel:0", (3, 3, 3, 5)),
    "conv-kernel-size": ("cnn", "conv/conv/kernel:0", (2, 3, 3, 4)),
    "batch-norm-params": ("cnn", "bn/bn/gamma:0", (5,)),
    "embedding-dims": ("embedding_mask", "emb/emb/embeddings:0", (11, 4)),
    "lstm-gates": ("lstm", "lstm/lstm/lstm_cell/kernel:0", (3, 12)),
    "gru-bias-reset-after-false": ("gru", "gru/gru/gru_cell/bias:0", (2, 12)),
    "separable-pointwise": ("conv_variety", "sep/sep/pointwise_kernel:0", (1, 1, 6, 5)),
}


def edit_h5(src, dst, dataset, shape):
    """Copy of `src` with `dataset` (under model_weights/) replaced by zeros of `shape`."""
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        group = f["model_weights"]
        del group[dataset]
        group.create_dataset(dataset, data=np.zeros(shape, "f4"))


@pytest.mark.parametrize("key", list(SHAPE_EDITS))
def test_weight_shape_disagreeing_with_config_is_refused(zoo, tmp_path, key):
    name, dataset, shape = SHAPE_EDITS[key]
    edit_h5(zoo.file(name, "tf_keras_h5"), tmp_path / "bad.h5", dataset, shape)
    weight = dataset.split("/", 1)[1][:-2]
    with pytest.raises(ConversionError, match=f"{weight}.*{tuple(shape)}".replace("(", r"\(").replace(")", r"\)")):
        converter.convert(tmp_path / "bad.h5", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_weight_shape_in_keras_file_is_checked(zoo, tmp_path):
    members = _keras_members(zoo)
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as f:
        paths = []
        f.visititems(lambda p, obj: paths.append(p) if isinstance(obj, h5py.Dataset) else None)
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as f:
        kernel = next(p for p in paths if p.endswith("vars/0") and f[p].shape == (8, 3))
        del f[kernel]
        f.create_dataset(kernel, data=np.zeros((8, 4), "f4"))
    members["model.weights.h5"] = buffer.getvalue()
    _zip(tmp_path, members)
    with pytest.raises(ConversionError, match=r"d2/kernel has shape \(8, 4\).*\(\?, 3\)"):
        converter.convert(tmp_path / "bad.keras", tmp_path / "out")


def _zip(tmp_path, members: dict[str, bytes]):
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name), data)


def _keras_members(zoo):
    with zipfile.ZipFile(zoo.file("mlp", "keras3_keras")) as z:
        return {n: z.read(n) for n in z.namelist()}


def zip_dotdot(tmp_path, zoo):
    _zip(tmp_path, _keras_members(zoo) | {"../evil.txt": b"x"})


def zip_absolute(tmp_path, zoo):
    _zip(tmp_path, _keras_members(zoo) | {"/tmp/evil.txt": b"x"})


def zip_missing_weights(tmp_path, zoo):
    members = _keras_members(zoo)
    del members["model.weights.h5"]
    _zip(tmp_path, members)


def keras_missing_weight(tmp_path, zoo):
    members = _keras_members(zoo)
    members["config.json"] = members["config.json"].replace(b'"units": 3', b'"units": 3, "use_bias": true')
    src = zoo.file("cnn", "keras3_keras")
    with zipfile.ZipFile(src) as z:  # the weights of another model
        members["model.weights.h5"] = z.read("model.weights.h5")
    _zip(tmp_path, members)


BAD_INPUT = {
    "truncated-hdf5": (truncated, "bad.h5", "truncated or corrupt"),
    "not-a-model": (not_a_model, "bad.h5", "neither an HDF5"),
    "empty": (empty, "bad.h5", "is empty"),
    "weights-only-keras3": (weights_only, "bad.h5", "weights-only"),
    "weights-only-tf-keras": (weights_only_keras2, "bad.h5", "weights-only"),
    "broken-config-json": (broken_json, "bad.h5", "not valid JSON"),
    "config-without-a-model": (no_model_in_config, "bad.h5", "model_config does not describe a model"),
    "config-without-layers": (no_layers_in_config, "bad.h5", "Sequential model without layers"),
    "keras-config-without-a-model": (keras_config_without_model, "bad.keras", "config.json does not describe a model"),
    "kernel-shape-disagrees": (wrong_kernel_shape, "bad.h5", "d2/kernel"),
    "keras-weights-disagree": (keras_missing_weight, "bad.keras", "config says"),
    "zip-dotdot-member": (zip_dotdot, "bad.keras", "unsafe name"),
    "zip-absolute-member": (zip_absolute, "bad.keras", "unsafe name"),
    "zip-no-weights": (zip_missing_weights, "bad.keras", "missing model.weights.h5"),
}


@pytest.mark.parametrize("key", list(BAD_INPUT))
def test_bad_input_is_one_line_naming_the_file(zoo, tmp_path, key):
    make, file_name, problem = BAD_INPUT[key]
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    make(src_dir, zoo)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = run_cli(src_dir / file_name, tmp_path / "out")
    assert rc.returncode == 1, rc.stderr
    lines = rc.stderr.strip().splitlines()
    assert len(lines) == 1, rc.stderr
    assert str(src_dir / file_name) in lines[0] and problem in lines[0]
    assert "Traceback" not in rc.stderr and rc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no .out.*.tmp


def test_verbose_shows_the_traceback(tmp_path):
    (tmp_path / "bad.h5").write_text("nope")
    rc = run_cli(tmp_path / "bad.h5", tmp_path / "out", "--verbose")
    assert rc.returncode == 1 and "Traceback" in rc.stderr


def test_missing_file_and_usage(tmp_path):
    rc = run_cli(tmp_path / "nope.h5", tmp_path / "out")
    assert rc.returncode == 1 and "does not exist" in rc.stderr and "nope.h5" in rc.stderr
    rc = run_cli(tmp_path / "nope.h5", None)
    assert rc.returncode == 2
    rc = run_cli(tmp_path / "nope.h5", tmp_path / "out", "--no-such-flag")
    assert rc.returncode == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_oversized_zip_member_is_refused(zoo, tmp_path, monkeypatch, member):
    with zipfile.ZipFile(zoo.file("cnn", "keras3_keras")) as z:
        size = z.getinfo(member).file_size
    monkeypatch.setitem(reader.KERAS_ZIP_MEMBERS, member, size - 1)
    with pytest.raises(ConversionError, match=f"zip member {member} is {size} bytes, over the"):
        converter.convert(zoo.file("cnn", "keras3_keras"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_dir_needs_overwrite(zoo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    rc = run_cli(zoo.file("mlp", "keras3_keras"), out)
    assert rc.returncode == 1 and "--overwrite" in rc.stderr and str(out) in rc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    rc = run_cli(zoo.file("mlp", "keras3_keras"), out, "--overwrite")
    assert rc.returncode == 0, rc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["group1-shard1of1.bin", "model.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_output_dir_is_used(zoo, tmp_path):
    (tmp_path / "out").mkdir()
    assert run_cli(zoo.file("mlp", "keras3_keras"), tmp_path / "out").returncode == 0
    assert (tmp_path / "out/model.json").is_file()


# --- Safety ------------------------------------------------------------------------------------


def test_conversion_imports_no_tensorflow_or_keras(zoo, tmp_path):
    code = (
        "import sys, converter.cli; rc = converter.cli.main([sys.argv[1], sys.argv[2]]); "
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')))"
    )
    for fmt in ("keras3_keras", "tf_keras_h5"):
        out = tmp_path / fmt
        rc = subprocess.run(
            [sys.executable, "-c", code, str(zoo.file("cnn", fmt)), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert rc.returncode == 0, rc.stderr
        assert rc.stdout.strip().splitlines()[-1] == "0 []"
        assert (out / "model.json").is_file()


def test_lambda_in_keras_file_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    code = f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]"
    x = keras.Input((3,), name="x")
    keras.Model(x, keras.layers.Lambda(eval(code), name="lam")(x)).save(tmp_path / "lam.keras")
    marker.unlink()  # the model was built by calling the function once
    # And a pickle payload in the function slot, which would create the marker if unpickled.
    with zipfile.ZipFile(tmp_path / "lam.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    payload = base64.b64encode(b"cos\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR.").decode()
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Lambda":
            assert "function" in layer["config"]
            layer["config"]["pickled"] = payload
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "lam2.keras", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    for src in ("lam.keras", "lam2.keras"):
        rc = run_cli(tmp_path / src, tmp_path / "out")
        assert rc.returncode == 3, rc.stderr
        assert "lam" in rc.stderr and "needs_python_code" in rc.stderr
        assert not marker.exists()
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_stacked_cells_renamed_whatever_keras_numbered_them(flavour, tmp_path):
    """A StackedRNNCells built after another one is `stacked_rnn_cells_1` in the file; TF.js still
    wants `RNNCell_<i>`."""
    if flavour == "keras3":
        import keras as k
    else:
        import tf_keras as k
    L = k.layers
    L.StackedRNNCells([L.SimpleRNNCell(2)])  # takes the default name first
    inp = k.Input((3, 2))
    model = k.Model(inp, L.RNN([L.SimpleRNNCell(2, name="c0"), L.SimpleRNNCell(2, name="c1")], name="rnn")(inp))
    path = tmp_path / "m.h5"
    model.save(path)
    converter.convert(path, tmp_path / "out")
    names = [
        w["name"] for w in json.loads((tmp_path / "out" / "model.json").read_text())["weightsManifest"][0]["weights"]
    ]
    assert names == [f"rnn/RNNCell_{i}/{w}" for i in (0, 1) for w in ("kernel", "recurrent_kernel", "bias")]
