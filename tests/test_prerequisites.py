"""What a user meets when something outside Python is missing (TF.js, npm, a Chromium): one line saying what,
and the command that fixes it; never a JavaScript TypeError or a traceback. Where TF.js is looked for."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from js_runner import browser, install
from js_runner.server import StaticServer

ROOT = Path(__file__).resolve().parents[1]
SETUP = "run `tfjs-certify setup`"


def _cli(*args, env, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _one_line(done, exit_code=2) -> str:
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "TypeError" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# --- TF.js ----------------------------------------------------------------------------------------------


def test_tfjs_is_looked_for_in_the_checkout_then_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(install.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    digest = install._lock_digest()
    cache = tmp_path / "xdg" / "tfjs-certify" / f"tfjs-4.22.0-{digest}" / "node_modules"
    assert install.candidates() == [install.PACKAGE_DIR / "node_modules", cache]
    monkeypatch.setenv(install.ENV_DIR, str(tmp_path / "mine"))
    assert install.candidates() == [tmp_path / "mine" / "node_modules"]  # set: there only


def test_this_checkout_has_tfjs_where_make_put_it(monkeypatch):
    monkeypatch.delenv(install.ENV_DIR, raising=False)
    assert install.problem(install.PACKAGE_DIR / "node_modules") is None
    assert install.find() == install.PACKAGE_DIR / "node_modules"


def test_a_wrong_or_partial_tfjs_is_not_used(tmp_path):
    nm = tmp_path / "node_modules"
    for package, version in install.pinned().items():
        (nm / package).mkdir(parents=True)
        (nm / package / "package.json").write_text(json.dumps({"version": version}))
    assert install.problem(nm) == f"{install.NEEDED[0]} is missing"
    (nm / "@tensorflow/tfjs/package.json").write_text(json.dumps({"version": "4.21.0"}))
    assert install.problem(nm) == "@tensorflow/tfjs is 4.21.0, not 4.22.0"
    assert install.problem(tmp_path / "nothing") == "not installed"


def test_without_tfjs_the_server_refuses_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(install.ENV_DIR, str(tmp_path / "empty"))
    with pytest.raises(install.Missing) as e:
        StaticServer()
    assert str(e.value) == (
        f"TF.js 4.22.0 is not installed (looked in {tmp_path}/empty/node_modules (not installed)): {SETUP}"
    )


def test_certify_without_tfjs_is_one_line_naming_the_command(tmp_path):
    env = dict(os.environ, **{install.ENV_DIR: str(tmp_path / "empty")})
    line = _one_line(_cli("certify", "-k", "Subtract", "--out", str(tmp_path / "r"), env=env))
    assert line.startswith("tfjs-certify certify: error: TF.js 4.22.0 is not installed") and line.endswith(SETUP)
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_setup_without_npm_is_one_line_naming_the_command(tmp_path):
    bare = tmp_path / "bin"  # a PATH without npm (the interpreter is called by its full path)
    bare.mkdir()
    env = dict(os.environ, PATH=str(bare), **{install.ENV_DIR: str(tmp_path / "tfjs")})
    line = _one_line(_cli("setup", env=env))
    assert line.startswith("tfjs-certify setup: error: npm not found") and line.endswith(SETUP)
    assert "apt-get install npm" in line
    assert not (tmp_path / "tfjs").exists()


def test_setup_never_replaces_a_folder_it_did_not_make(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    monkeypatch.setenv(install.ENV_DIR, str(mine))
    with pytest.raises(install.Missing, match=re.escape("is not empty and holds no TF.js installed by `tfjs-certify")):
        install.install(say=lambda line: None)
    assert (mine / "notes.txt").read_text() == "the user's"


def _plugin_args() -> list[str]:
    """Load the plugin as a project that installed the package would (its entry point), or by name when this
    checkout only is on the path."""
    installed = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "tfjs_certify" in installed else ["-p", "harness.pytest_plugin"]


def test_the_plugin_without_tfjs_fails_the_test_in_one_line(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"never read: the browser is needed first")
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            def test_model(tfjs_certify):
                assert tfjs_certify("model.keras").ok
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{install.ENV_DIR: str(tmp_path / "empty")})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *_plugin_args(), "test_user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout
    assert f"tfjs-certify: TF.js 4.22.0 is not installed (looked in {tmp_path}/empty/node_modules" in done.stdout
    assert SETUP in done.stdout and "TypeError" not in done.stdout and "Traceback" not in done.stdout


# --- Chromium -------------------------------------------------------------------------------------------


def test_no_chromium_anywhere_names_the_command(monkeypatch):
    monkeypatch.delenv("CHROMIUM_PATH", raising=False)
    monkeypatch.setattr(browser, "_playwright_chromium", lambda: None)
    monkeypatch.setattr(browser, "_is_executable", lambda path: False)
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(install.Missing) as e:
        browser.find_chromium()
    assert str(e.value).startswith("no Chromium found: run `tfjs-certify setup`")
    assert "\n" not in str(e.value)


def test_certify_with_a_bad_chromium_path_is_one_line(tmp_path):
    env = dict(os.environ, CHROMIUM_PATH=str(tmp_path / "no-chromium"))
    line = _one_line(_cli("certify", "-k", "Subtract", "--out", str(tmp_path / "r"), env=env))
    assert line == (
        f"tfjs-certify certify: error: CHROMIUM_PATH={tmp_path}/no-chromium is not an executable file: "
        "point it at Chromium, or unset it"
    )
