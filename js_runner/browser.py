"""Finding (and on Debian, installing) the Chromium that runs TF.js.

`python -m js_runner.browser ensure` prints the browser's path, installing
Debian's `chromium` package first when none is found and we are root.
"""

import os
import shutil
import subprocess
import sys

from js_runner.install import Missing

# Flags for every launch. Playwright adds `--headless` itself. `--enable-unsafe-webgpu` exposes WebGPU in
# headless Chromium on Linux (SwiftShader's fallback adapter here); without it requestAdapter() returns null.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

HOW_TO_GET_ONE = (
    "no Chromium found: run `tfjs-certify setup` (as root on Debian it installs the chromium package), "
    "or `python -m playwright install chromium`, or set CHROMIUM_PATH to a Chromium/Chrome executable"
)


def _is_executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _playwright_chromium():
    """The path of the Chromium Playwright installed, or None."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:
        return None
    return path if _is_executable(path) else None


def find_chromium():
    """The path of a usable Chromium; raises `Missing` (a FileNotFoundError) when there is none.

    Order: $CHROMIUM_PATH, Playwright's own Chromium, /usr/bin/chromium,
    then `chromium-browser` or `google-chrome` on PATH.
    """
    env_path = os.environ.get("CHROMIUM_PATH")
    if env_path:
        if _is_executable(env_path):
            return env_path
        raise Missing(f"CHROMIUM_PATH={env_path} is not an executable file: point it at Chromium, or unset it")
    path = _playwright_chromium()
    if path:
        return path
    if _is_executable("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    for name in ("chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Missing(HOW_TO_GET_ONE)


def _can_apt_install():
    return os.path.exists("/etc/debian_version") and hasattr(os, "geteuid") and os.geteuid() == 0


# Another install on the machine (unattended-upgrades, a parallel job) holds dpkg's locks for a while:
# wait for it rather than fail. apt's own timeout covers the dpkg frontend lock; the retries cover the
# lists and cache locks, which it does not wait for.
LOCK_WAIT_S = 600
LOCK_MESSAGES = ("Could not get lock", "Unable to acquire the dpkg frontend lock", "Unable to lock")


def apt_get(cmd: list[str], env: dict, *, wait_s: float = LOCK_WAIT_S, pause_s: float = 5.0) -> int:
    """Run an apt-get command, waiting up to `wait_s` for dpkg/apt locks held by another process."""
    import time

    cmd = [cmd[0], "-o", f"DPkg::Lock::Timeout={int(wait_s)}", *cmd[1:]]
    deadline = time.monotonic() + wait_s
    while True:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stderr.write(proc.stdout)
        locked = any(m in proc.stdout for m in LOCK_MESSAGES)
        if proc.returncode == 0 or not locked or time.monotonic() >= deadline:
            return proc.returncode
        print(f"{cmd[0]}: another package manager holds the lock; waiting", file=sys.stderr)
        time.sleep(pause_s)


def ensure():
    """Return a Chromium path, installing Debian's package when possible; raises `Missing` otherwise."""
    try:
        return find_chromium()
    except Missing:
        if os.environ.get("CHROMIUM_PATH") or not _can_apt_install():
            raise
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        if apt_get(cmd, env) != 0:
            raise Missing(f"`{' '.join(cmd)}` failed; {HOW_TO_GET_ONE}")
    return find_chromium()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv not in (["ensure"], ["find"]):
        sys.exit("usage: python -m js_runner.browser {ensure|find}")
    try:
        print(ensure() if argv == ["ensure"] else find_chromium())
    except Missing as e:
        sys.exit(str(e))


if __name__ == "__main__":
    main()
