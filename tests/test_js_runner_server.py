"""js_runner.server and js_runner.browser without a browser: roots, headers, traversal, lookup."""

import http.client
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from js_runner.browser import find_chromium
from js_runner.server import StaticServer


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, b"", e.headers


def raw_get(base_url, path):
    """GET with the path sent exactly as given, unnormalised."""
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_server_serves_roots_with_isolation_headers(tmp_path):
    (tmp_path / "model.json").write_text("{}")
    with StaticServer() as server:
        prefix = server.register(tmp_path)
        status, body, headers = get(prefix + "model.json")
        assert (status, body) == (200, b"{}")
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        status, _, headers = get(server.wasm_url + "tfjs-backend-wasm-simd.wasm")
        assert status == 200 and headers["Content-Type"] == "application/wasm"
        assert get(server.page_url)[0] == 200


def test_server_sends_without_waiting_for_acks(tmp_path, monkeypatch):
    """Every connection the server accepts has TCP_NODELAY: headers and body are separate writes, and with
    Nagle's algorithm the body of each response waited for the client's delayed ACK (~40 ms a request)."""
    import socket

    from js_runner import server as server_mod

    seen = []
    setup = server_mod._Handler.setup

    def recording_setup(self):
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(server_mod._Handler, "setup", recording_setup)
    (tmp_path / "w.bin").write_bytes(b"x" * 100)
    with StaticServer() as server:
        assert get(server.register(tmp_path) + "w.bin")[1] == b"x" * 100
    assert seen and all(seen), seen


def test_server_refuses_paths_outside_its_roots(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "inside.txt").write_text("ok")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    os.symlink(tmp_path, root / "linkdir")
    with StaticServer() as server:
        prefix = server.register(root)
        segment = prefix.rstrip("/").rsplit("/", 1)[1]
        base = server.base_url
        assert raw_get(base, f"/{segment}/inside.txt") == 200
        attempts = [
            f"/{segment}/../{segment}/inside.txt",
            f"/{segment}/../../etc/passwd",
            f"/{segment}/%2e%2e/secret.txt",
            f"/{segment}/%2E%2E/%2E%2E/etc/passwd",
            f"/{segment}/%252e%252e/secret.txt",
            f"/{segment}/..%2fsecret.txt",
            f"/{segment}//etc/passwd",
            f"/{segment}/%2fetc%2fpasswd",
            "//etc/passwd",
            "/etc/passwd",
            f"/{segment}/link.txt",
            f"/{segment}/linkdir/secret.txt",
            f"/{segment}/..\\secret.txt",
        ]
        for path in attempts:
            assert raw_get(base, path) in (403, 404), path
        assert raw_get(base, "http://example.com/etc/passwd") in (403, 404)


def test_find_chromium_honours_chromium_path(tmp_path, monkeypatch):
    fake = tmp_path / "chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM_PATH", str(fake))
    assert find_chromium() == str(fake)
    monkeypatch.setenv("CHROMIUM_PATH", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CHROMIUM_PATH"):
        find_chromium()


def test_ensure_prints_an_executable_browser():
    out = subprocess.run(
        [sys.executable, "-m", "js_runner.browser", "ensure"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert os.path.isfile(out) and os.access(out, os.X_OK)


def test_ensure_with_a_bad_chromium_path_exits_with_one_line(tmp_path):
    env = dict(os.environ, CHROMIUM_PATH=str(tmp_path / "missing"))
    r = subprocess.run(
        [sys.executable, "-m", "js_runner.browser", "ensure"], capture_output=True, text=True, timeout=60, env=env
    )
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "CHROMIUM_PATH" in r.stderr
