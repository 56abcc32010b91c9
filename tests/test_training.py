"""Training configurations: what the converter carries (and refuses), optimizer state in TF.js's layout,
the command line, a wrong hyper-parameter caught in real Chromium, and the README's JavaScript example."""

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

from converter import convert  # noqa: E402
from converter.training import _Refuse, translate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SINGLE = {
    "class_name": "Functional",
    "config": {
        "layers": [{"class_name": "Dense", "config": {"name": "out", "units": 3}}],
        "output_layers": [["out", 0, 0]],
    },
}
TWO = {
    "class_name": "Functional",
    "config": {
        "layers": [
            {"class_name": "Dense", "config": {"name": "cls", "units": 3}},
            {"class_name": "Dense", "config": {"name": "reg", "units": 1}},
        ],
        "output_layers": [["cls", 0, 0], ["reg", 0, 0]],
    },
}
SGD = {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.0}}


def _config(**kw):
    return {"loss": "mse", "metrics": [], "optimizer": SGD, **kw}


@pytest.mark.parametrize(
    "change, code, argument",
    [
        (
            {"loss": {"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.1}}},
            "ignored_argument",
            "label_smoothing",
        ),
        (
            {"loss": {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}},
            "ignored_argument",
            "from_logits",
        ),
        ({"loss": "huber"}, "unknown_loss", "loss"),
        ({"loss": "my_own_loss"}, "needs_python_code", "loss"),
        (
            {
                "loss": {
                    "module": "__main__",
                    "class_name": "function",
                    "config": "my_loss",
                    "registered_name": "function",
                }
            },
            "needs_python_code",
            None,
        ),
        ({"loss": "hinge"}, "computes_differently", "loss"),
        ({"loss_weights": [0.5]}, "unsupported_value", "loss_weights"),
        ({"weighted_metrics": ["mae"]}, "unsupported_value", "weighted_metrics"),
        ({"metrics": ["precision"]}, "computes_differently", "metrics"),
        ({"metrics": ["top_k_categorical_accuracy"]}, "unknown_metric", "metrics"),
        ({"metrics": ["sparse_categorical_accuracy"]}, "unknown_metric", "metrics"),
        ({"optimizer": {"class_name": "Nadam", "config": {"learning_rate": 0.1}}}, "unknown_optimizer", "optimizer"),
        (
            {"optimizer": {"class_name": "Custom>AdamW", "config": {"learning_rate": 0.1}}},
            "unknown_optimizer",
            "optimizer",
        ),
        (
            {"optimizer": {"class_name": "Adadelta", "config": {"learning_rate": 1.0}}},
            "computes_differently",
            "optimizer",
        ),
        (
            {"optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 0.1, "centered": True}}},
            "computes_differently",
            "centered",
        ),
        (
            {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.1, "amsgrad": True}}},
            "ignored_argument",
            "amsgrad",
        ),
        (
            {"optimizer": {"class_name": "Adagrad", "config": {"learning_rate": 0.1, "epsilon": 1e-3}}},
            "ignored_argument",
            "epsilon",
        ),
        (
            {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "clipnorm": 1.0}}},
            "ignored_argument",
            "clipnorm",
        ),
        (
            {
                "optimizer": {
                    "class_name": "SGD",
                    "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {}}},
                }
            },
            "unsupported_value",
            "learning_rate",
        ),
        (
            {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "weight_decay": 0.01}}},
            "ignored_argument",
            "weight_decay",
        ),
        # metric objects: their arguments change what TF.js's evaluate would report
        (
            {"metrics": [{"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}]},
            "ignored_argument",
            "from_logits",
        ),
        (
            {"metrics": [{"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.2}}]},
            "ignored_argument",
            "label_smoothing",
        ),
        (
            {"metrics": [{"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": 0}}]},
            "ignored_argument",
            "ignore_class",
        ),
        (
            {"metrics": [{"class_name": "MeanSquaredError", "config": {"name": "m", "some_new_key": 1}}]},
            "ignored_argument",
            "some_new_key",
        ),
        # an optimizer key no table knows (one a newer Keras adds) is refused, never dropped
        (
            {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.1, "cautious": True}}},
            "ignored_argument",
            "cautious",
        ),
        (
            {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "beta_1": 0.9}}},
            "ignored_argument",
            "beta_1",
        ),
    ],
)
def test_what_tfjs_cannot_train_as_keras_does_is_refused_with_its_code(change, code, argument):
    with pytest.raises(_Refuse) as e:
        translate(_config(**change), SINGLE)
    assert e.value.code == code and e.value.argument == argument


def test_names_and_optimizers_as_tfjs_resolves_them():
    config, _, _ = translate(
        _config(
            loss="mse",
            metrics=["mean_squared_error", "mae", "accuracy"],
            optimizer={"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}},
        ),
        SINGLE,
    )
    assert config["loss"] == "meanSquaredError" and config["metrics"] == ["mse", "mae", "accuracy"]
    assert config["optimizer_config"] == {
        "class_name": "Momentum",
        "config": {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True},
    }
    assert config["loss_weights"] is None and config["weighted_metrics"] is None
    rms, _, _ = translate(
        _config(optimizer={"class_name": "RMSprop", "config": {"learning_rate": 0.1, "rho": 0.8}}), SINGLE
    )
    assert rms["optimizer_config"]["config"]["decay"] == 0.8  # TF.js names Keras's rho `decay`
    # Keras 3 gives a several-unit sigmoid output with binary cross-entropy categorical accuracy; TF.js would
    # pick binary accuracy from the loss: the converter names the one Keras uses
    bce, _, _ = translate(_config(loss="binary_crossentropy", metrics=["accuracy"]), SINGLE)
    assert bce["metrics"] == ["categoricalAccuracy"]
    # per-output losses and metrics, lists of lists included (Keras 3 writes those)
    two, _, _ = translate(
        _config(
            loss=["sparse_categorical_crossentropy", "mse"],
            metrics=[["accuracy"], ["mae"]],
            loss_weights={"cls": 1.0, "reg": 1.0},
        ),
        TWO,
    )
    assert two["loss"] == {"cls": "sparseCategoricalCrossentropy", "reg": "meanSquaredError"}
    assert two["metrics"] == {"cls": ["accuracy"], "reg": ["mae"]}


def _compiled(k, optimizer):
    k.utils.set_random_seed(0)
    x = k.Input((4,), name="x")
    model = k.Model(x, k.layers.Dense(2, name="out")(k.layers.Dense(3, activation="tanh", name="hidden")(x)))
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    for _ in range(2):
        model.train_on_batch(rng.uniform(-1, 1, (4, 4)).astype("float32"), rng.uniform(-1, 1, (4, 2)).astype("float32"))
    return model


@pytest.mark.parametrize("flavour, suffix", [("keras3", ".keras"), ("keras3", ".h5"), ("tf_keras", ".h5")])
def test_adam_state_is_written_in_the_layout_tfjs_loads(tmp_path, flavour, suffix):
    k = keras if flavour == "keras3" else tf_keras
    model = _compiled(k, k.optimizers.Adam(0.01))
    path = tmp_path / f"m{suffix}"
    model.save(path)
    result = convert(path, tmp_path / "out")
    assert result.training.carried and result.training.state_note is None
    model_json = json.loads((tmp_path / "out" / "model.json").read_text())
    assert model_json["trainingConfig"]["optimizer_config"]["class_name"] == "Adam"
    assert "training_config" not in model_json["modelTopology"]  # where TF.js never looks
    specs = [w for g in model_json["weightsManifest"] for w in g["weights"]]
    assert len(model_json["weightsManifest"]) == 1  # one group: see converter.api._tfjs_safe_order
    state = [w for w in specs if w.get("group") == "optimizer"]
    trainable = ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    assert [w["name"] for w in state] == ["iter"] + [f"{n}/m" for n in trainable] + [f"{n}/v" for n in trainable]
    assert state[0]["dtype"] == "int32"
    data = b"".join((tmp_path / "out" / p).read_bytes() for g in model_json["weightsManifest"] for p in g["paths"])
    values, at = {}, 0
    for w in specs:
        n = int(np.prod(w["shape"])) if w["shape"] else 1
        values[w["name"]] = np.frombuffer(data[at : at + 4 * n], "<i4" if w["dtype"] == "int32" else "<f4")
        at += 4 * n
    assert int(values["iter"][0]) == 2
    opt = model.optimizer
    keras_m = {v.path if hasattr(v, "path") else v.name: np.asarray(v) for v in opt.variables}
    ms = [a for n, a in keras_m.items() if "momentum" in n or "/m/" in n]
    np.testing.assert_array_equal(values["hidden/kernel/m"], ms[0].ravel())


@pytest.mark.parametrize("flavour, suffix", [("keras3", ".keras"), ("keras3", ".h5"), ("tf_keras", ".h5")])
def test_a_compiled_model_never_trained_converts_compiled_without_a_warning(tmp_path, flavour, suffix):
    k = keras if flavour == "keras3" else tf_keras
    x = k.Input((4,), name="x")
    model = k.Model(x, k.layers.Dense(2, name="out")(x))
    model.compile(optimizer=k.optimizers.Adam(0.01), loss="mse")
    path = tmp_path / f"m{suffix}"
    model.save(path)
    r = _run_cli(path, tmp_path / "out")
    assert r.returncode == 0 and r.stderr == "", r.stderr  # no state yet: nothing to warn about
    model_json = json.loads((tmp_path / "out" / "model.json").read_text())
    assert model_json["trainingConfig"]["optimizer_config"]["class_name"] == "Adam"


def test_a_frozen_batch_normalization_leaves_the_model_uncompiled(tmp_path):
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.BatchNormalization(name="bn", trainable=False)(keras.layers.Dense(3)(x)))
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.keras")
    result = convert(tmp_path / "m.keras", tmp_path / "out")
    assert not result.training.carried
    (issue,) = result.training.issues
    assert issue.code == "computes_differently" and "frozen BatchNormalization" in issue.reason and "bn" in issue.reason


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_the_command_line_warns_refuses_on_request_and_checks(tmp_path):
    model = _compiled(keras, keras.optimizers.Nadam(0.01))
    path = tmp_path / "nadam.keras"
    model.save(path)
    r = _run_cli(path, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == (
        f"warning: {path}: training configuration not carried: nadam.keras (training) "
        "optimizer='Nadam': TF.js 4.22 has no Nadam optimizer [unknown_optimizer]"
    )
    assert "trainingConfig" not in json.loads((tmp_path / "out" / "model.json").read_text())
    r = _run_cli(path, tmp_path / "out2", "--require_training")
    assert r.returncode == 3 and "unknown_optimizer" in r.stderr and not (tmp_path / "out2").exists()
    r = _run_cli(path, "--check")
    assert r.returncode == 0 and "training: not carried" in r.stdout and "unknown_optimizer" in r.stdout
    good = tmp_path / "sgd.keras"
    _compiled(keras, keras.optimizers.SGD(0.1, momentum=0.5)).save(good)
    r = _run_cli(good, "--check")
    assert "training: carried: loss meanSquaredError, metrics ['mae'], optimizer Momentum" in r.stdout
    assert "optimizer state carried (5 tensors)" in r.stdout


# --- in real Chromium ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adam_case(tmp_path_factory):
    from harness.pipeline import training
    from harness.pipeline.convert import convert_variant
    from harness.suite import by_name
    from harness.suite.case import Variant

    case = by_name("train[categorical_crossentropy]")  # Adam: learning rate 0.03, beta_1 0.85, beta_2 0.99
    prepared = training.prepare(case, "keras3")
    converted = convert_variant(prepared, "keras", tmp_path_factory.mktemp("adam"))
    return Variant(case, "keras3", "keras"), prepared, converted


@pytest.mark.browser
def test_a_wrong_hyper_parameter_fails(tfjs_browser, adam_case):
    from harness.pipeline import tolerance, training

    variant, prepared, converted = adam_case
    tol = tolerance.for_training("cpu", "Adam")
    assert training.run(tfjs_browser, variant, "cpu", converted, prepared, tol).outcome == "pass"
    path = converted.artifact / "model.json"
    original = path.read_text()
    for key, wrong in (("beta_1", 0.9), ("beta_2", 0.995), ("learning_rate", 0.031)):
        model_json = json.loads(original)
        model_json["trainingConfig"]["optimizer_config"]["config"][key] = wrong
        path.write_text(json.dumps(model_json))
        try:
            result = training.run(tfjs_browser, variant, "cpu", converted, prepared, tol)
        finally:
            path.write_text(original)
        assert result.outcome == "mismatch", (key, result.message)


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"```js\n(.*?)```", text, re.S).group(1)


@pytest.mark.browser
def test_the_readme_retraining_example_runs(tfjs_browser, adam_case):
    """The README's JavaScript, run as written in the page, against a converted compiled model."""
    _, _, converted = adam_case
    code = _readme_example()
    assert "tf.loadLayersModel" in code and "model.fit" in code and "model.evaluate" in code
    url = tfjs_browser._server.register(str(converted.artifact)) + "model.json"
    slot = tfjs_browser._slots["cpu"]
    body = code.replace("'model/model.json'", repr(url))
    result = tfjs_browser._run(
        slot.page.evaluate(f"async () => {{ {body}\n return {{losses, metrics: model.metricsNames}}; }}"), 60
    )
    assert len(result["losses"]) == 3 and all(np.isfinite(result["losses"]))
    assert result["metrics"] == ["loss", "acc", "categoricalCrossentropy"]
