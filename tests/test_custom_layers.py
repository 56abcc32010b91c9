"""A user's own custom layer, ported to JavaScript by hand, certified like any other class: real Keras (the user's
module, imported because they opted in), the real converter (the class passed through, its weights named for the
port's addWeight), real Chromium on every backend loading the port before the model. A correct port passes; a port
with a deliberate error fails, and the report names the custom layer as the first to diverge."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

from harness.pipeline import user  # noqa: E402
from harness.pipeline.custom import UserCode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# The user's layer: out = x * gain + offset, gain per feature (trainable), offset a scalar (not trainable).
PYTHON = """
import {keras} as keras


@keras.saving.register_keras_serializable(package="my_layers")
class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.offset = self.add_weight(name="offset", shape=(), initializer="zeros", trainable=False)
        self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.gain + self.offset
"""

# The port: the className is the Keras registered name as TF.js reads it (camel-cased: `my_layers>Scale` becomes
# `myLayers>Scale`); the weights are created under the Python names.
JAVASCRIPT = """
class Scale extends tf.layers.Layer {
  build(inputShape) {
    const features = inputShape[inputShape.length - 1];
    this.gain = this.addWeight('gain', [features], 'float32', tf.initializers.ones());
    this.offset = this.addWeight('offset', [], 'float32', tf.initializers.zeros(), undefined, false);
    this.built = true;
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return %s;
    });
  }

  computeOutputShape(inputShape) {
    return inputShape;
  }

  static get className() {
    return 'myLayers>Scale';
  }
}
tf.serialization.registerClass(Scale);
"""
RIGHT = "tf.add(tf.mul(x, this.gain.read()), this.offset.read())"
WRONG = "tf.mul(x, this.gain.read())"  # forgets the offset


def _model(k, scale_cls):
    inp = k.Input((4,), name="input")
    x = k.layers.Dense(3, name="dense")(inp)
    x = scale_cls(name="scale")(x)
    model = k.Model(inp, k.layers.Dense(2, name="head")(x), name="custom")
    gain, offset = np.array([0.5, -1.5, 2.0], "float32"), np.array(0.75, "float32")
    model.get_layer("scale").set_weights([gain, offset])  # the order Keras lists them: trainable first
    return model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The user's files: a module per Keras flavour, the right and the wrong port, and their saved models."""
    import importlib.util

    d = tmp_path_factory.mktemp("custom")
    files = {"right.js": JAVASCRIPT % RIGHT, "wrong.js": JAVASCRIPT % WRONG, "broken.js": "class {"}
    for name, text in files.items():
        (d / name).write_text(text)
    for flavour, k in (("keras3", "keras"), ("tf_keras", "tf_keras")):
        (d / f"layers_{flavour}.py").write_text(textwrap.dedent(PYTHON.format(keras=k)))
        spec = importlib.util.spec_from_file_location(f"test_layers_{flavour}", d / f"layers_{flavour}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        flavour_keras = keras if flavour == "keras3" else tf_keras
        model = _model(flavour_keras, module.Scale)
        for suffix in (".keras", ".h5") if flavour == "keras3" else (".h5",):
            model.save(d / f"{flavour}{suffix}")
    return d


MODELS = [("keras3", ".keras"), ("keras3", ".h5"), ("tf_keras", ".h5")]


def _certify(session, project, tmp_path, flavour, suffix, script):
    path = project / f"{flavour}{suffix}"
    code = UserCode(project / f"layers_{flavour}.py", (project / script,))
    backends = list(session.backends)
    return user.certify_file(session, path, path.name, backends, None, tmp_path / "work", tmp_path / "artifacts", code)


@pytest.mark.browser
@pytest.mark.parametrize("flavour, suffix", MODELS)
def test_a_correct_port_is_certified_on_every_backend(tfjs_browser, project, tmp_path, flavour, suffix):
    records = _certify(tfjs_browser, project, tmp_path, flavour, suffix, "right.js")
    assert [r.backend for r in records] == list(tfjs_browser.backends)
    for r in records:
        assert r.outcome == "pass" and r.ok, (r.id, r.outcome, r.message)
        assert "Scale" in r.layer_classes
        assert r.max_abs is not None and r.max_abs < 1e-5


@pytest.mark.browser
@pytest.mark.parametrize("flavour, suffix", MODELS)
def test_a_wrong_port_fails_and_the_report_names_the_custom_layer(tfjs_browser, project, tmp_path, flavour, suffix):
    records = _certify(tfjs_browser, project, tmp_path, flavour, suffix, "wrong.js")
    for r in records:
        assert r.outcome == "mismatch" and not r.ok, (r.id, r.outcome, r.message)
        assert r.first_divergence is not None
        assert (r.first_divergence.layer, r.first_divergence.class_name) == ("scale", "Scale")
        assert [(s.layer, s.class_name) for s in r.first_divergence.preceding] == [("dense", "Dense")]


@pytest.mark.browser
def test_a_port_that_does_not_load_fails_at_its_own_stage(tfjs_browser, project, tmp_path):
    records = _certify(tfjs_browser, project, tmp_path, "keras3", ".keras", "broken.js")
    for r in records:
        assert (r.outcome, r.stage) == ("load_error", "script"), (r.id, r.outcome, r.stage, r.message)
        assert "broken.js" in r.message


@pytest.mark.browser
def test_without_the_port_the_custom_class_is_refused(tfjs_browser, project, tmp_path):
    """The user's module is imported above (the class is registered with Keras), but no port is named: the
    converter refuses the class, as for any custom layer."""
    path = project / "keras3.keras"
    records = user.certify_file(tfjs_browser, path, path.name, ["cpu"], None, tmp_path / "w", tmp_path / "a")
    assert records[0].outcome == "rejected"
    assert [(rc.layer, rc.class_name, rc.code) for rc in records[0].reason_codes] == [
        ("scale", "my_layers>Scale", "needs_python_code")
    ]


@pytest.mark.browser
def test_the_command_line_certifies_a_port_and_names_the_diverging_layer(project, tmp_path, capsys):
    """`tfjs-certify certify MODEL --custom-objects my_layers.py --custom-js my_layers.js`, as the README shows (in
    this process: a subprocess would import TensorFlow again)."""
    from harness import cli

    def certify(script):
        argv = ["certify", str(project / "keras3.keras"), "--custom-objects", str(project / "layers_keras3.py")]
        argv += ["--custom-js", str(project / script), "--backend", "cpu", "--out", str(tmp_path / script)]
        return cli.main(argv)

    assert certify("right.js") == 0
    assert certify("wrong.js") == 1
    report = (tmp_path / "wrong.js" / "compat.md").read_text()
    assert "| scale (Scale) (" in report  # the first diverging layer: the port
    err = " ".join(capsys.readouterr().err.split())
    assert "not ok keras3.keras-keras3-keras-cpu: mismatch (first diverging layer: scale (Scale))" in err


def test_the_command_line_refuses_half_of_a_port(project, capsys):
    from harness import cli

    model = str(project / "keras3.keras")
    assert cli.main(["certify", model, "--custom-js", str(project / "right.js")]) == 2
    assert cli.main(["certify", "--custom-objects", str(project / "layers_keras3.py")]) == 2
    assert "--custom-objects" in capsys.readouterr().err
