"""tfjs-certify as a user gets it: the package built from this checkout (sdist, then the wheel built from it),
installed into a fresh venv in a temporary folder outside the repository, with nothing of the checkout on the
path. Before `tfjs-certify setup` a certification says in one line what is missing and what to run; after it,
the command line certifies a model on cpu, wasm and webgl, and the user's own pytest run certifies models
through the `tfjs_certify` plugin (an entry point of the installed package). Real Keras, Chromium and TF.js.

The venv is made with uv, from its cache by hard links (seconds once the cache is warm; the first run on a
machine downloads tensorflow and the rest once). Under pytest-xdist the workers share one venv.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "converter", "harness", "js_runner")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _run(cmd, *, cwd, env, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{' '.join(done.args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _user_env(venv: Path, xdg: Path) -> dict:
    """A user's shell with the venv activated: nothing of this checkout, nor of its caches, on any path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFJS_CERTIFY_", "PYTEST_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python caches bytecode: TensorFlow compiles once, not per run
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), XDG_CACHE_HOME=str(xdg))
    return env


def _build_and_install(base: Path) -> dict:
    uv = [sys.executable, "-m", "uv"]
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("node_modules", "__pycache__", "*.egg-info", ".cache")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    _ok(_run([*uv, "build", "--quiet", "--out-dir", base / "dist", src], cwd=base, env=os.environ))
    (wheel,) = (base / "dist").glob("tfjs_certify-*.whl")
    venv = base / "venv"
    _ok(_run([*uv, "venv", "--quiet", "--python", sys.executable, venv], cwd=base, env=os.environ))
    install = [
        *uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        venv / "bin" / "python",
        f"{wheel}[harness]",
        "pytest>=8,<9",
    ]
    _ok(_run(install, cwd=base, env=os.environ))
    return {"venv": str(venv), "xdg": str(base / "xdg")}


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> dict:
    """The venv with the wheel installed, and `tfjs-certify setup` run in it: once per run, shared by workers."""
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared  # the run's folder, not a worker's
    base = shared / "installed"
    with open(shared / "installed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = base / "installed.json"
        if not done.is_file():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            info = _build_and_install(base)
            info["before_setup"] = _before_setup(info, base)
            env = _user_env(Path(info["venv"]), Path(info["xdg"]))
            setup = _ok(_run(["tfjs-certify", "setup"], cwd=base, env=env))
            info["setup"] = setup.stdout
            done.write_text(json.dumps(info))
        return json.loads(done.read_text())


def _before_setup(info: dict, base: Path) -> dict:
    """The report of a user who certifies before `tfjs-certify setup`."""
    project = base / "early"
    project.mkdir()
    _save_model(project / "good.keras")
    env = _user_env(Path(info["venv"]), Path(info["xdg"]))
    done = _run(["tfjs-certify", "certify", "good.keras"], cwd=project, env=env)
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def _save_model(path: Path, units: int = 4) -> None:
    import keras

    x = keras.Input((6,), name="features")
    h = keras.layers.Dense(units, activation="relu", name="hidden")(x)
    keras.Model(x, keras.layers.Dense(3, activation="softmax", name="probs")(h), name="classifier").save(path)


def test_before_setup_one_line_names_what_is_missing_and_the_command(installed):
    before = installed["before_setup"]
    assert before["returncode"] == 2, before
    lines = before["stderr"].strip().splitlines()
    assert len(lines) == 1, before["stderr"]
    assert lines[0].startswith("tfjs-certify certify: error: TF.js 4.22.0 is not installed")
    assert lines[0].endswith("run `tfjs-certify setup`")
    assert "TypeError" not in before["stderr"] + before["stdout"] and "Traceback" not in before["stderr"]
    xdg = installed["xdg"]
    assert f"TF.js 4.22.0: installed in {xdg}/tfjs-certify/tfjs-4.22.0-" in installed["setup"]
    for backend in ("cpu", "wasm", "webgl"):
        assert f"  {backend}: ok (TF.js 4.22.0)" in installed["setup"]


def test_the_installed_command_certifies_a_model_outside_the_repository(installed, tmp_path):
    venv = Path(installed["venv"])
    env = _user_env(venv, Path(installed["xdg"]))
    where = _ok(
        _run(
            ["python", "-c", "import harness, js_runner; print(harness.__file__, js_runner.__file__)"],
            cwd=tmp_path,
            env=env,
        )
    )
    assert all(p.startswith(str(venv)) for p in where.stdout.split()), where.stdout
    _save_model(tmp_path / "good.keras")
    done = _ok(_run(["tfjs-certify", "certify", "good.keras"], cwd=tmp_path, env=env))
    report = json.loads((tmp_path / "reports" / "compat.json").read_text())
    outcomes = {r["backend"]: (r["outcome"], r["ok"]) for r in report["records"]}
    assert outcomes == {b: ("pass", True) for b in ("cpu", "wasm", "webgl")}, done.stderr[-3000:]
    assert report["environment"]["tfjs"] == "4.22.0"
    assert all(r["id"].startswith("good.keras-keras3-keras-") for r in report["records"])


def _readme_example() -> str:
    """The pytest example of the README, as a user would copy it."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```python\n# tests/test_models.py\n", 1)[1].split("```", 1)[0]
    return "# tests/test_models.py\n" + block


FAILING_TEST = """
import keras


def test_a_gru_in_tfjs(tfjs_certify):
    x = keras.Input((3, 2))
    result = tfjs_certify(keras.Model(x, keras.layers.GRU(4)(x), name="gru"), backends="cpu")
    assert result.ok, result.summary
"""


def test_a_users_own_pytest_certifies_through_the_plugin(installed, tmp_path):
    """A project of the user's, without a conftest, runs the README's example: its tests certify its models with
    the `tfjs_certify` fixture the installed package's entry point provides. The first run writes a baseline of
    the project's choosing, the next is gated on it, and a model TF.js cannot run fails its test with the
    reason."""
    import numpy as np

    env = _user_env(Path(installed["venv"]), Path(installed["xdg"]))
    (tmp_path / "models").mkdir()
    (tmp_path / "tests").mkdir()
    _save_model(tmp_path / "models" / "classifier.keras")
    np.savez(tmp_path / "models" / "sample.npz", features=np.linspace(-2, 2, 18, dtype="float32").reshape(3, 6))
    (tmp_path / "tests" / "test_models.py").write_text(_readme_example())
    assert not list(tmp_path.rglob("conftest.py"))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")

    first = _ok(
        _run(["pytest", "-q", "--tfjs-baseline", "tfjs-baseline.json", "--tfjs-update-baseline"], cwd=tmp_path, env=env)
    )
    assert "2 passed" in first.stdout
    report = json.loads((tmp_path / "tfjs-reports" / "compat.json").read_text())
    got = {r["id"]: (r["outcome"], r["ok"]) for r in report["records"]}
    assert got == {
        "models/classifier.keras-keras3-keras-cpu": ("pass", True),
        "models/classifier.keras-keras3-keras-wasm": ("pass", True),
        "tiny-keras3-keras-cpu": ("pass", True),
        "tiny-keras3-keras-wasm": ("pass", True),
        "tiny-keras3-keras-webgl": ("pass", True),
    }
    assert report["run"]["partial"] is False
    assert (tmp_path / "tfjs-baseline.json").is_file() and (tmp_path / "tfjs-reports" / "compat.html").is_file()
    assert not (tmp_path / "costs.json").exists()  # the suite's shard costs are no business of a project

    (tmp_path / "tests" / "test_gru.py").write_text(textwrap.dedent(FAILING_TEST))
    second = _run(["pytest", "-q", "--tfjs-baseline", "tfjs-baseline.json"], cwd=tmp_path, env=env)
    assert second.returncode == 1, second.stdout[-3000:]
    assert "2 passed" in second.stdout and "1 failed" in second.stdout
    assert "FAILED tests/test_gru.py::test_a_gru_in_tfjs" in second.stdout
    assert "gru-keras3-keras-cpu: rejected" in second.stdout  # the summary is the assertion's message
    assert "reset_after" in second.stdout
    assert "Baseline comparison (subset)" not in second.stdout and "Baseline comparison" in second.stdout
    report = json.loads((tmp_path / "tfjs-reports" / "compat.json").read_text())
    assert {r["id"]: r["outcome"] for r in report["records"]}["gru-keras3-keras-cpu"] == "rejected"
