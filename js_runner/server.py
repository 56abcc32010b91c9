"""A local static HTTP server for the runner page, TF.js and model artifacts.

It listens on 127.0.0.1 on a free port, in a background thread, and serves
only files inside its roots: the runner page, the node_modules holding TF.js
(`js_runner.install.find`: a clone's `js_runner/node_modules` or the user cache
`tfjs-certify setup` fills), and the model directories the caller registers. Every other path, including
`..`, encoded dot segments, absolute paths and symlinks that lead out of a
root, is refused. Responses carry COOP/COEP headers so the page is
cross-origin isolated (threaded wasm needs SharedArrayBuffer).
"""

import http.server
import mimetypes
import os
import sys
import threading
import urllib.parse

from js_runner import install

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PAGE_DIR = os.path.join(PACKAGE_DIR, "page")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".bin": "application/octet-stream",
    ".map": "application/json",
}

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-store",
}


def _content_type(path):
    ext = os.path.splitext(path)[1].lower()
    return CONTENT_TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _contained(path, root):
    """Whether `path`, once every symlink is resolved, lies inside `root`."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "js_runner"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits for the client's
    # delayed ACK of the headers (~40 ms on Linux) on every request of a kept-alive connection. Measured: loading
    # and disposing of a one-layer model took 105 ms with it and 20 ms without, most of a small record's time.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet: the runner reports errors itself
        pass

    def do_GET(self):
        self._serve(send_body=True)

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_OPTIONS(self):
        self.send_response(204)
        self._common_headers()
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _common_headers(self):
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)

    def _error(self, code, send_body=True):
        body = f"{code}\n".encode()
        self.send_response(code)
        self._common_headers()
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _serve(self, send_body):
        status, path = self.server.resolve(self.path)  # type: ignore[attr-defined]
        if status != 200:
            self._error(status, send_body)
            return
        try:
            f = open(path, "rb")
        except OSError:
            self._error(404, send_body)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self._common_headers()
            self.send_header("Content-Type", _content_type(path))
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if send_body:
                try:
                    _copy(f, self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    pass


def _copy(src, dst, chunk=1 << 20):
    while True:
        data = src.read(chunk)
        if not data:
            return
        dst.write(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.roots = {}  # first URL segment -> real directory path
        self.lock = threading.Lock()

    def handle_error(self, request, client_address):
        # A browser dropping a connection (a page closed mid-load) is routine.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            sys.stderr.write(f"js_runner.server: {type(exc).__name__}: {exc}\n")

    def resolve(self, raw_path):
        """Map a request path to (status, file path); status is 200, 403 or 404."""
        path = urllib.parse.urlsplit(raw_path).path
        if not path.startswith("/"):
            return 403, None
        # Decode repeatedly, so double-encoded dot segments are caught too.
        decoded = path
        for _ in range(3):
            decoded = urllib.parse.unquote(decoded)
        segments = decoded.split("/")[1:]
        if any(s in ("", ".", "..") or "\\" in s or "\0" in s for s in segments[:-1]):
            return 403, None
        if segments[-1] in (".", "..") or "\\" in segments[-1] or "\0" in segments[-1]:
            return 403, None
        if len(segments) < 2 or not segments[-1]:
            return 404, None
        with self.lock:
            root = self.roots.get(segments[0])
        if root is None:
            return 404, None
        candidate = os.path.join(root, *segments[1:])
        if not _contained(candidate, root):
            return 403, None
        if not os.path.isfile(candidate):
            return 404, None
        return 200, candidate


class StaticServer:
    """A background static server; `register(dir)` returns the URL prefix of `dir`.

    Raises `install.Missing` (one line: what to run) when TF.js is not installed, before the page could fail
    on an undefined `tf`."""

    def __init__(self):
        node_modules = install.find()
        self._httpd = _Server()
        self._count = 0
        self._by_dir = {}
        self._mount("page", PAGE_DIR)
        self._mount("node_modules", node_modules)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="js_runner-server", daemon=True)
        self._thread.start()

    @property
    def base_url(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def page_url(self):
        return f"{self.base_url}/page/runner.html"

    @property
    def wasm_url(self):
        """The directory of the wasm binaries, with the trailing slash TF.js needs."""
        return f"{self.base_url}/node_modules/@tensorflow/tfjs-backend-wasm/dist/"

    def _mount(self, segment, directory):
        with self._httpd.lock:
            self._httpd.roots[segment] = os.path.realpath(directory)

    def register(self, directory):
        """Serve `directory`; return its URL prefix, ending in a slash."""
        real = os.path.realpath(directory)
        if not os.path.isdir(real):
            raise NotADirectoryError(f"not a directory: {directory}")
        with self._httpd.lock:
            segment = self._by_dir.get(real)
            if segment is None:
                self._count += 1
                segment = f"m{self._count}"
                self._by_dir[real] = segment
                self._httpd.roots[segment] = real
        return f"{self.base_url}/{segment}/"

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
