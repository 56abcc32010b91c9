"""TF.js 4.22 for the runner page: where it is found, how `tfjs-certify setup` installs it.

TF.js comes from npm, pinned and integrity-checked: `npm ci` installs exactly what `package-lock.json` (shipped
in this package) lists and checks every tarball against its sha512 hash. It is looked for, in this order:

1. `$TFJS_CERTIFY_TFJS_DIR`, when set: there only (a folder holding `node_modules/`);
2. `js_runner/node_modules` beside this module: what `make` installs in a clone of the repository;
3. the user cache: `$XDG_CACHE_HOME/tfjs-certify/tfjs-<version>-<lock digest>` (`~/.cache/...` by default),
   which `tfjs-certify setup` fills once.

When none holds it, `Missing` says so in one line, with the command that fixes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_DIR = "TFJS_CERTIFY_TFJS_DIR"
SETUP = "tfjs-certify setup"
# What runner.html loads, and the wasm binaries the wasm backend fetches: an install without them is broken.
NEEDED = (
    "@tensorflow/tfjs/dist/tf.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
    "@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js",
)
MARK = ".tfjs-certify-setup"  # written by `install`: only a folder holding it is ever replaced
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", "--prefer-offline"]


class Missing(FileNotFoundError):
    """Something js_runner needs outside Python (TF.js, npm, a Chromium) is missing: one line saying what,
    and the command that fixes it."""


def pinned() -> dict[str, str]:
    """{npm package: version} as package.json pins them."""
    return dict(json.loads((PACKAGE_DIR / "package.json").read_text())["dependencies"])


def version() -> str:
    return pinned()["@tensorflow/tfjs"]


def _lock_digest() -> str:
    return hashlib.sha256((PACKAGE_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfjs-certify"


def install_dir() -> Path:
    """Where `tfjs-certify setup` installs TF.js: `$TFJS_CERTIFY_TFJS_DIR`, else the user cache."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit).expanduser().resolve()
    return cache_root() / f"tfjs-{version()}-{_lock_digest()}"


def problem(node_modules: Path) -> str | None:
    """Why `node_modules` is not a usable install of the pinned TF.js (None: it is)."""
    if not node_modules.is_dir():
        return "not installed"
    for package, wanted in pinned().items():
        try:
            found = json.loads((node_modules / package / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return f"{package} is missing"
        if found != wanted:
            return f"{package} is {found}, not {wanted}"
    absent = [f for f in NEEDED if not (node_modules / f).is_file()]
    return f"{absent[0]} is missing" if absent else None


def candidates() -> list[Path]:
    """The node_modules folders looked in, in order."""
    if os.environ.get(ENV_DIR):
        return [install_dir() / "node_modules"]
    return [PACKAGE_DIR / "node_modules", install_dir() / "node_modules"]


def find() -> Path:
    """The node_modules folder holding the pinned TF.js; raises `Missing` naming where it looked."""
    looked = []
    for path in candidates():
        why = problem(path)
        if why is None:
            return path
        looked.append(f"{path} ({why})")
    raise Missing(f"TF.js {version()} is not installed (looked in {'; '.join(looked)}): run `{SETUP}`")


@contextlib.contextmanager
def _locked(path: Path):
    """One installer at a time per folder (two runs set up at once, or pytest-xdist workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def install(say=print) -> Path:
    """Install the pinned TF.js with `npm ci` into `install_dir()` (once; an existing good install is kept).

    npm installs into a fresh folder beside the target, which replaces the target only once it is complete,
    so an interrupted install never leaves a half-written TF.js behind. Returns the node_modules folder."""
    target = install_dir()
    with _locked(target):
        if problem(target / "node_modules") is None:
            return target / "node_modules"
        if target.is_dir() and any(target.iterdir()) and not (target / MARK).is_file():
            raise Missing(
                f"{target} is not empty and holds no TF.js installed by `{SETUP}`: empty it, or set {ENV_DIR}"
            )
        npm = shutil.which("npm")
        if npm is None:
            raise Missing(
                f"npm not found: TF.js {version()} installs with npm; install Node.js and npm (Debian: "
                f"`apt-get install npm`), then run `{SETUP}`"
            )
        say(f"installing TF.js {version()} with npm ci (checked against package-lock.json) into {target} ...")
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(PACKAGE_DIR / name, staging / name)
            done = subprocess.run([npm, *NPM_CI[1:]], cwd=staging, capture_output=True, text=True)
            if done.returncode != 0:
                detail = " ".join((done.stderr or done.stdout).split())[-400:]
                raise Missing(f"`npm ci` failed in {staging} ({detail}); fix the cause, then run `{SETUP}`")
            why = problem(staging / "node_modules")
            if why is not None:
                raise Missing(f"`npm ci` left an incomplete TF.js in {staging} ({why}); run `{SETUP}` again")
            (staging / MARK).write_text(f"TF.js {version()}, npm ci of package-lock.json {_lock_digest()}\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"
