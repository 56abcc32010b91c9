"""Quantized conversions: the encoding, its bound, float16 overflow, plans applied by the converter, the
planner meeting its budget, and `tfjs-certify plan` in real Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converter import ConversionError, convert
from converter.writer import quantization_for
from harness.pipeline import quantize, quantized
from harness.pipeline.quantize import Encoded

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(3)


def _weights_with_outliers():
    w = RNG.normal(0, 0.05, size=(64, 32)).astype(np.float32)
    w[0, 0] = 40.0  # an outlier stretches the affine range, as a batch-norm variance does
    return w


@pytest.mark.parametrize("dtype", ["float16", "uint16", "uint8"])
def test_every_weight_lands_within_its_step(dtype):
    for w in (
        _weights_with_outliers(),
        RNG.uniform(-3, 3, 1000).astype(np.float32),
        np.zeros(5, np.float32),
        np.full(7, 2.5, np.float32),
    ):
        assert quantize.dequantization_error(w, quantize.dequantized(w, dtype), dtype) <= 1.0


def test_a_weight_moved_by_more_than_a_step_is_caught():
    w = RNG.uniform(-1, 1, 100).astype(np.float32)
    wrong = quantize.dequantized(w, "uint8").copy()
    wrong[5] += 2 * quantize.step(w, "uint8")[5]
    assert quantize.dequantization_error(w, wrong, "uint8") > 1.5
    # and a TF.js decode that drifts from what the manifest encodes is caught by the record's check
    encoded = {"w": Encoded(steps=0.5, min_bound=1e-3)}
    assert quantized.dequantization({"w": 0.0}, encoded)["dequant_steps"] == 0.5
    assert quantized.dequantization({"w": 2e-3}, encoded)["dequant_steps"] == pytest.approx(2.5)
    assert quantized.dequantization({"w": None}, encoded)["dequant_steps"] == float("inf")  # NaN in TF.js
    assert quantized.dequantization({}, encoded)["dequant_steps"] is None  # never checked: not a pass


def test_uint8_error_is_coarse_where_outliers_widen_the_range():
    w = _weights_with_outliers()
    small = np.abs(quantize.dequantized(w, "uint8") - w)[1:].max()
    assert small > 0.05  # a step of 40/255: the 0.05-sized weights are mostly lost
    assert np.abs(quantize.dequantized(w, "float16") - w)[1:].max() < 1e-4


def test_plan_and_patterns_pick_one_dtype_per_weight():
    assert quantization_for("a/kernel", {"uint8": None}) == "uint8"
    assert quantization_for("a/kernel", {"uint8": ["b/*"], "float16": ["a/*"]}) == "float16"
    assert quantization_for("a/kernel", {}, {"a/kernel": "float32"}) is None
    assert quantization_for("a/kernel", {"uint8": None}, {"a/kernel": "uint16"}) == "uint16"
    with pytest.raises(ValueError, match="both"):
        quantization_for("a/kernel", {"uint8": ["a/*"], "float16": ["*/kernel"]})


@pytest.fixture(scope="module")
def big_model(tmp_path_factory):
    """A Keras 3 model whose kernel holds a value float16 cannot represent."""
    import keras

    path = tmp_path_factory.mktemp("q") / "big.keras"
    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Dense(2, name="dense")(x))
    kernel = np.ones((3, 2), np.float32)
    kernel[1, 1] = 1e6
    model.get_layer("dense").set_weights([kernel, np.zeros(2, np.float32)])
    model.save(path)
    return path


def test_float16_overflow_is_an_error_not_an_inf(big_model, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match=r"big\.keras: weight dense/kernel: values up to 1e\+06 overflow float16"):
        convert(big_model, out, quantize={"float16": None})
    assert not out.exists()
    convert(big_model, out, quantize={"uint16": None})  # uint16 holds it
    spec = json.loads((out / "model.json").read_text())["weightsManifest"][0]["weights"][0]
    assert spec["quantization"]["dtype"] == "uint16"


def test_the_converter_applies_a_plan(big_model, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"weights": {"dense/kernel": "uint16", "dense/bias": "float32"}}))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "converter", str(big_model), str(out), "--quantize_plan", str(plan)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    specs = {w["name"]: w for w in json.loads((out / "model.json").read_text())["weightsManifest"][0]["weights"]}
    assert specs["dense/kernel"]["quantization"]["dtype"] == "uint16" and "quantization" not in specs["dense/bias"]
    plan.write_text(json.dumps({"weights": {"dense/nope": "uint8"}}))
    proc = subprocess.run(
        [sys.executable, "-m", "converter", str(big_model), str(tmp_path / "o2"), "--quantize_plan", str(plan)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "dense/nope" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists()


def _small_cnn():
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 3), name="x")
    y = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    model = keras.Model(x, keras.layers.Dense(4, name="head")(y))
    for v in model.weights:
        if "moving_variance" in v.path:
            v.assign(np.linspace(0.5, 30.0, v.shape[0]).astype(np.float32))  # outliers, as trained BNs have
    return model


def test_the_planner_meets_its_budget_below_float16_size():
    from harness.pipeline import reference

    model = _small_cnn()
    xs = [RNG.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)]
    refs = reference.predict(model, xs)
    planner = quantize.Planner(model, xs, refs)
    assert set(planner.variables) == {
        "conv/kernel",
        "conv/bias",
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
        "head/kernel",
        "head/bias",
    }
    all8 = planner.error({n: "uint8" for n in planner.variables})
    budget = all8 / 4
    plan = planner.plan(budget)
    assert plan.keras_max_abs <= budget
    assert plan.weights_bytes <= plan.float16_bytes < plan.float32_bytes
    assert "uint8" in plan.weights.values() and set(plan.weights.values()) - {"uint8"}  # a mix
    loose = planner.plan(all8 * 2)
    assert set(loose.weights.values()) == {"uint8"}
    tight = planner.plan(1e-12)  # nothing but float32 can meet it
    assert tight.keras_max_abs <= 1e-12 and "float32" in tight.weights.values()
    # the model's own weights are untouched by the search
    assert planner.error({}) == 0.0


@pytest.mark.browser
def test_tfjs_certify_plan(tmp_path):
    model = _small_cnn()
    path = tmp_path / "cnn.keras"
    model.save(path)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "plan", str(path), str(out), "--max-error", "0.01", "--backend", "cpu,wasm"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "quantization_plan.json").read_text())
    assert report["certified"] and set(report["tfjs_max_abs"]) == {"cpu", "wasm"}
    assert all(e <= 0.01 for e in report["tfjs_max_abs"].values())
    assert report["weights_bytes"] <= report["float16_bytes"]
    specs = {
        w["name"]: w for g in json.loads((out / "model.json").read_text())["weightsManifest"] for w in g["weights"]
    }
    for name, dtype in report["weights"].items():
        assert specs[name].get("quantization", {}).get("dtype", "float32") == dtype
    again = subprocess.run(
        [sys.executable, "-m", "harness", "plan", str(path), str(out), "--max-error", "0.01"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 2 and "not empty" in again.stderr
