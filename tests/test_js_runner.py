"""js_runner in real headless Chromium: backends, numbers, errors, timeouts.

Every model here is a TF.js Layers model.json written by hand in the Keras 2
style, with weights written by numpy, so the expected outputs follow by
arithmetic and nothing depends on the converter.
"""

import asyncio
import concurrent.futures
import json
import os
import time

import numpy as np
import pytest

from js_runner import BrowserSession, RunnerError

pytestmark = pytest.mark.browser

BACKENDS = ("cpu", "wasm", "webgl", "webgpu")


# ---- hand-written model.json fixtures ----


def input_layer(name, shape, dtype="float32"):
    return {
        "class_name": "InputLayer",
        "name": name,
        "inbound_nodes": [],
        "config": {"batch_input_shape": [None, *shape], "dtype": dtype, "sparse": False, "name": name},
    }


def dense(name, units, activation="linear", inbound=None):
    layer = {
        "class_name": "Dense",
        "name": name,
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
    }
    if inbound is not None:
        layer["inbound_nodes"] = [[[n, 0, 0, {}] for n in inbound]]
    return layer


def merge(class_name, name, inbound, **config):
    return {
        "class_name": class_name,
        "name": name,
        "config": {"name": name, "trainable": True, "dtype": "float32", **config},
        "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]],
    }


def sequential(layers):
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def functional(layers, inputs, outputs):
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": layers,
            "input_layers": [[n, 0, 0] for n in inputs],
            "output_layers": [[n, 0, 0] for n in outputs],
        },
    }


def write_model(directory, model_config, weights, shard_bytes=4 * 1024 * 1024):
    """Write model.json and its shards; `weights` is a list of (name, array)."""
    os.makedirs(directory, exist_ok=True)
    data = b"".join(
        np.ascontiguousarray(a, dtype="<f4" if a.dtype.kind == "f" else "<i4").tobytes() for _, a in weights
    )
    count = max(1, -(-len(data) // shard_bytes))
    paths = [f"group1-shard{i + 1}of{count}.bin" for i in range(count)]
    for i, path in enumerate(paths):
        with open(os.path.join(directory, path), "wb") as f:
            f.write(data[i * shard_bytes : (i + 1) * shard_bytes])
    manifest = [
        {
            "paths": paths,
            "weights": [
                {"name": n, "shape": list(a.shape), "dtype": "float32" if a.dtype.kind == "f" else "int32"}
                for n, a in weights
            ],
        }
    ]
    model_json = {
        "format": "layers-model",
        "generatedBy": "keras v2.21.0",
        "convertedBy": "tests/test_js_runner.py",
        "modelTopology": {"keras_version": "2.21.0", "backend": "tensorflow", "model_config": model_config},
        "weightsManifest": manifest,
    }
    with open(os.path.join(directory, "model.json"), "w") as f:
        json.dump(model_json, f)
    return str(directory)


KERNEL = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]], dtype=np.float32)
BIAS = np.array([0.5, -1.0], dtype=np.float32)


def dense_model(directory):
    config = sequential([input_layer("x", [3]), dense("dense", 2)])
    return write_model(directory, config, [("dense/kernel", KERNEL), ("dense/bias", BIAS)])


# ---- fixtures ----


@pytest.fixture(scope="module")
def session():
    with BrowserSession(backends=BACKENDS, timeout_s=30.0) as s:
        yield s


# ---- backends ----


def test_every_backend_starts_with_its_facts(session):
    infos = session.backends
    assert set(infos) == set(BACKENDS)
    for name, info in infos.items():
        assert info.available, f"{name}: {info.reason}"
        assert info.reason is None
        assert info.tfjs_version == "4.22.0"
        assert info.float_precision in (16, 32)
    assert infos["webgl"].webgl_renderer
    assert isinstance(infos["webgl"].details["webgl_render_float32"], bool)
    assert isinstance(infos["wasm"].wasm_simd, bool)
    assert isinstance(infos["wasm"].wasm_threads, bool)
    assert infos["cpu"].float_precision == 32
    assert infos["webgpu"].webgpu_adapter  # SwiftShader's fallback adapter here
    assert isinstance(infos["webgpu"].details["webgpu_shader_f16"], bool)


def test_webgpu_without_an_adapter_is_unavailable_with_the_reason(monkeypatch):
    """Without --enable-unsafe-webgpu headless Chromium exposes no adapter: the backend is unavailable, saying
    why, and nothing runs on it (never a silent fallback to another backend)."""
    import js_runner.session as session_module

    flags = [f for f in session_module.CHROMIUM_FLAGS if f != "--enable-unsafe-webgpu"]
    monkeypatch.setattr(session_module, "CHROMIUM_FLAGS", flags)
    with BrowserSession(backends=("webgpu",), timeout_s=30.0) as s:
        info = s.backends["webgpu"]
    assert not info.available
    assert "navigator.gpu" in info.reason or "requestAdapter" in info.reason


def test_unknown_backend_is_a_backend_error(session, tmp_path):
    with pytest.raises(RunnerError) as e:
        session.load(dense_model(tmp_path / "m"), "webgl2")
    assert e.value.stage == "backend"


# ---- numbers ----


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_gives_numbers_known_by_arithmetic(session, tmp_path, backend):
    handle = session.load(dense_model(tmp_path / "dense"), backend)
    assert [s.name for s in handle.inputs] == ["x"]
    assert handle.inputs[0].shape == [None, 3]
    assert handle.outputs[0].shape == [None, 2]
    assert handle.layers == ["x", "dense"]  # TF.js keeps the InputLayer in Sequential.layers
    assert handle.load_ms > 0
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], dtype=np.float64)
    # Row 1: 1*1 + 2*0.5 + 3*-1 + 0.5 = -0.5 and 1*-2 + 2*3 + 3*0.25 - 1 = 3.75.
    # Row 2: 0 - 0.5 - 4 + 0.5 = -4.0 and 0 - 3 + 1 - 1 = -3.0.
    expected = np.array([[-0.5, 3.75], [-4.0, -3.0]], dtype=np.float32)
    (y,) = session.predict(handle, x)
    assert y.dtype == np.float32 and y.shape == (2, 2)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-3)
    (y2,) = session.predict(handle, {"x": x})
    np.testing.assert_array_equal(y, y2)
    timing = session.time_predict(handle, x, k=3)
    assert timing["first_predict_ms"] > 0 and timing["predict_median_ms"] > 0
    session.dispose(handle)


def test_nan_and_inf_cross_the_boundary(session, tmp_path):
    handle = session.load(dense_model(tmp_path / "dense"), "cpu")
    x = np.array([[np.nan, 0, 0], [np.inf, 0, 0], [-np.inf, 0, 0]], dtype=np.float32)
    (y,) = session.predict(handle, x)
    assert np.isnan(y[0]).all()
    assert y[1, 0] == np.inf and y[1, 1] == -np.inf  # kernel row 0 is [1, -2]
    assert y[2, 0] == -np.inf and y[2, 1] == np.inf
    session.dispose(handle)


def two_in_two_out(directory):
    layers = [
        input_layer("a", [2]),
        input_layer("b", [2]),
        merge("Concatenate", "concat", ["a", "b"], axis=-1),
        merge("Add", "add", ["a", "b"]),
        dense("out_sum", 1, inbound=["concat"]),
        dense("out_add", 2, inbound=["add"]),
    ]
    config = functional(layers, ["a", "b"], ["out_sum", "out_add"])
    weights = [
        ("out_sum/kernel", np.ones((4, 1), np.float32)),
        ("out_sum/bias", np.array([10.0], np.float32)),
        ("out_add/kernel", np.array([[2.0, 0.0], [0.0, 3.0]], np.float32)),
        ("out_add/bias", np.array([0.0, 1.0], np.float32)),
    ]
    return write_model(directory, config, weights)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_inputs_two_outputs_and_layer_outputs(session, tmp_path, backend):
    handle = session.load(two_in_two_out(tmp_path / "m"), backend)
    assert [s.name for s in handle.inputs] == ["a", "b"]
    assert [s.name for s in handle.outputs] == ["out_sum", "out_add"]
    a = np.array([[1.0, 2.0]], np.float32)
    b = np.array([[3.0, 4.0]], np.float32)
    out_sum, out_add = session.predict(handle, {"b": b, "a": a})
    np.testing.assert_allclose(out_sum, [[20.0]], atol=1e-3)  # 1+2+3+4+10
    np.testing.assert_allclose(out_add, [[8.0, 19.0]], atol=1e-3)  # (4,6) -> (8, 18+1)
    acts = session.layer_outputs(handle, [a, b], ["concat", "add"])
    np.testing.assert_allclose(acts["concat"][0], [[1, 2, 3, 4]], atol=1e-3)
    np.testing.assert_allclose(acts["add"][0], [[4, 6]], atol=1e-3)
    session.dispose(handle)


def lstm_with_state(directory, bias):
    lstm = {
        "class_name": "LSTM",
        "name": "lstm",
        "inbound_nodes": [[["x", 0, 0, {}]]],
        "config": {
            "name": "lstm",
            "trainable": True,
            "dtype": "float32",
            "units": 2,
            "activation": "tanh",
            "recurrent_activation": "sigmoid",
            "use_bias": True,
            "return_sequences": False,
            "return_state": True,
            "go_backwards": False,
            "stateful": False,
            "unroll": False,
            "kernel_initializer": {"class_name": "Zeros", "config": {}},
            "recurrent_initializer": {"class_name": "Zeros", "config": {}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "unit_forget_bias": True,
            "dropout": 0.0,
            "recurrent_dropout": 0.0,
            "implementation": 2,
        },
    }
    config = functional([input_layer("x", [2, 1]), lstm], ["x"], [])
    config["config"]["output_layers"] = [["lstm", 0, 0], ["lstm", 0, 1], ["lstm", 0, 2]]
    weights = [
        ("lstm/lstm_cell/kernel", np.zeros((1, 8), np.float32)),
        ("lstm/lstm_cell/recurrent_kernel", np.zeros((2, 8), np.float32)),
        ("lstm/lstm_cell/bias", bias),
    ]
    return write_model(directory, config, weights)


def test_a_layer_with_several_outputs_returns_them_all(session, tmp_path):
    # Zero kernels: every step's gates come from the bias alone (Keras order i, f, c, o).
    bi, bf, bc, bo = 1.0, -0.5, 0.5, 2.0
    bias = np.repeat(np.array([bi, bf, bc, bo], np.float32), 2)
    sig = lambda v: 1 / (1 + np.exp(-v))
    i, f, g, o = sig(bi), sig(bf), np.tanh(bc), sig(bo)
    c1 = i * g
    c2 = f * c1 + i * g
    h2 = o * np.tanh(c2)
    handle = session.load(lstm_with_state(tmp_path / "lstm", bias), "cpu")
    assert len(handle.outputs) == 3
    x = np.zeros((1, 2, 1), np.float32)
    acts = session.layer_outputs(handle, x, ["lstm"])
    assert len(acts["lstm"]) == 3
    output, state_h, state_c = acts["lstm"]
    np.testing.assert_allclose(output, [[h2, h2]], atol=1e-5)
    np.testing.assert_allclose(state_h, [[h2, h2]], atol=1e-5)
    np.testing.assert_allclose(state_c, [[c2, c2]], atol=1e-5)
    predicted = session.predict(handle, x)
    for a, b in zip(predicted, acts["lstm"]):
        np.testing.assert_array_equal(a, b)
    session.dispose(handle)


def embedding_model(directory, table):
    emb = {
        "class_name": "Embedding",
        "name": "emb",
        "config": {
            "name": "emb",
            "trainable": True,
            "dtype": "float32",
            "batch_input_shape": [None, 3],
            "input_dim": table.shape[0],
            "output_dim": table.shape[1],
            "embeddings_initializer": {
                "class_name": "RandomUniform",
                "config": {"minval": -0.05, "maxval": 0.05, "seed": None},
            },
            "embeddings_regularizer": None,
            "activity_regularizer": None,
            "embeddings_constraint": None,
            "mask_zero": False,
            "input_length": 3,
        },
    }
    config = sequential([input_layer("ids", [3], dtype="int32"), emb])
    return write_model(directory, config, [("emb/embeddings", table)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_int32_inputs_through_embedding(session, tmp_path, backend):
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    handle = session.load(embedding_model(tmp_path / "emb", table), backend)
    ids = np.array([[0, 5, 2], [1, 1, 4]], dtype=np.int64)
    (y,) = session.predict(handle, ids)
    np.testing.assert_allclose(y, table[ids], atol=1e-3)
    session.dispose(handle)


def test_many_large_shards_load(session, tmp_path):
    # 8 shards of 4 MiB: more than Chromium's 6 connections per host.
    units = 8 * 1024 * 1024 // 64
    kernel = np.zeros((64, units), np.float32)
    kernel[:, 0] = 1.0
    config = sequential([input_layer("x", [64]), dense("big", units)])
    model_dir = write_model(
        tmp_path / "big", config, [("big/kernel", kernel), ("big/bias", np.zeros(units, np.float32))]
    )
    assert len([p for p in os.listdir(model_dir) if p.endswith(".bin")]) > 6
    handle = session.load(model_dir, "cpu", timeout_s=60)
    (y,) = session.predict(handle, np.ones((1, 64), np.float32))
    assert y.shape == (1, units)
    assert y[0, 0] == pytest.approx(64.0) and not y[0, 1:].any()
    session.dispose(handle)


# ---- errors ----


def assert_next_model_loads(session, tmp_path, backend):
    handle = session.load(dense_model(tmp_path / "after"), backend)
    (y,) = session.predict(handle, np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(y, [[-0.5, 3.75]], atol=1e-3)
    session.dispose(handle)


def test_missing_shard_is_a_fetch_error(session, tmp_path):
    model_dir = dense_model(tmp_path / "m")
    os.remove(os.path.join(model_dir, "group1-shard1of1.bin"))
    with pytest.raises(RunnerError) as e:
        session.load(model_dir, "cpu")
    assert e.value.stage == "fetch"
    assert "404" in e.value.message
    assert_next_model_loads(session, tmp_path, "cpu")


def test_missing_model_json_is_a_fetch_error(session, tmp_path):
    with pytest.raises(RunnerError) as e:
        session.load(tmp_path, "cpu")
    assert e.value.stage == "fetch"


def test_weight_without_target_is_a_weights_error(session, tmp_path):
    config = sequential([input_layer("x", [3]), dense("dense", 2)])
    model_dir = write_model(
        tmp_path / "m", config, [("dense/kernel", KERNEL), ("dense/bias", BIAS), ("ghost/kernel", KERNEL)]
    )
    with pytest.raises(RunnerError) as e:
        session.load(model_dir, "wasm")
    assert e.value.stage == "weights"
    assert "ghost/kernel" in e.value.message
    assert_next_model_loads(session, tmp_path, "wasm")


def test_unknown_layer_class_is_a_parse_error(session, tmp_path):
    layer = dense("odd", 2)
    layer["class_name"] = "NoSuchLayer"
    model_dir = write_model(
        tmp_path / "m", sequential([input_layer("x", [3]), layer]), [("odd/kernel", KERNEL), ("odd/bias", BIAS)]
    )
    with pytest.raises(RunnerError) as e:
        session.load(model_dir, "webgl")
    assert e.value.stage == "parse"
    assert "NoSuchLayer" in e.value.message
    assert "\n" not in str(e.value)
    assert_next_model_loads(session, tmp_path, "webgl")


def test_a_model_that_never_finishes_loading_times_out(session, tmp_path):
    # tfjs #7271: an inbound node naming a layer that is never created makes
    # Container.fromConfig re-queue the node forever, in a synchronous loop.
    layers = [input_layer("x", [3]), dense("dense", 2, inbound=["never_created"])]
    model_dir = write_model(
        tmp_path / "m", functional(layers, ["x"], ["dense"]), [("dense/kernel", KERNEL), ("dense/bias", BIAS)]
    )
    started = time.monotonic()
    with pytest.raises(RunnerError) as e:
        session.load(model_dir, "cpu", timeout_s=3)
    assert e.value.stage == "timeout"
    assert time.monotonic() - started < 30
    assert session.backends["cpu"].available
    assert_next_model_loads(session, tmp_path, "cpu")


def test_a_crashed_page_is_a_crash_error_and_is_replaced(session, tmp_path):
    handle = session.load(dense_model(tmp_path / "m"), "wasm")
    slot = session._slots["wasm"]  # reach in only to crash the renderer, via CDP Page.crash

    async def crash():
        cdp = await slot.context.new_cdp_session(slot.page)
        try:
            await asyncio.wait_for(cdp.send("Page.crash"), 2)
        except (asyncio.TimeoutError, Exception):
            pass  # the renderer dies before it can answer

    session._run(crash(), 5)
    with pytest.raises(RunnerError) as e:
        session.predict(handle, np.zeros((1, 3)))
    assert e.value.stage == "crash"
    assert session.backends["wasm"].available
    assert_next_model_loads(session, tmp_path, "wasm")


def test_backends_run_concurrently_from_threads(session, tmp_path):
    handles = [session.load(dense_model(tmp_path / b), b) for b in BACKENDS]
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    with concurrent.futures.ThreadPoolExecutor(len(handles)) as pool:
        results = list(pool.map(lambda h: session.predict(h, x)[0], handles))
    for y in results:
        np.testing.assert_allclose(y, [[-0.5, 3.75]], atol=1e-3)
    for h in handles:
        session.dispose(h)


def test_a_model_lost_to_a_page_reset_says_so(session, tmp_path):
    handle = session.load(dense_model(tmp_path / "kept"), "cpu")
    missing = dense_model(tmp_path / "broken")
    os.remove(os.path.join(missing, "group1-shard1of1.bin"))
    with pytest.raises(RunnerError):
        session.load(missing, "cpu")
    with pytest.raises(RunnerError) as e:
        session.predict(handle, np.zeros((1, 3)))
    assert "load it again" in e.value.message


def test_bad_inputs_are_refused_before_the_browser(session, tmp_path):
    handle = session.load(dense_model(tmp_path / "m"), "cpu")
    with pytest.raises(ValueError):  # wrong rank: refused here
        session.predict(handle, np.zeros((1, 4, 1)))
    with pytest.raises(ValueError):
        session.predict(handle, {"y": np.zeros((1, 3))})
    with pytest.raises(ValueError):
        session.predict(handle, np.array([["a", "b", "c"]]))
    session.dispose(handle)


def test_wrong_dimensions_are_refused_by_tfjs(session, tmp_path):
    """Dimensions are TF.js's to check (CenterCrop leaves a wrong shape on model.inputs): its own
    message comes back as a predict-stage error, and the next model still runs."""
    handle = session.load(dense_model(tmp_path / "m"), "cpu")
    with pytest.raises(RunnerError) as err:
        session.predict(handle, np.zeros((1, 4)))
    assert err.value.stage == "predict" and "shape" in err.value.message
    handle = session.load(dense_model(tmp_path / "m2"), "cpu")
    assert session.predict(handle, np.zeros((1, 3)))[0].shape[0] == 1
