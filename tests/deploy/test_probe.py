"""`promote --server`'s probe against a real HTTP server on loopback that answers TF Serving's status endpoint:
a server still serving the previous version a moment after an export is waited for, a stranger is not."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serving.admin import probe


@contextmanager
def status_server(versions_at: list[tuple[float, list[int]]]) -> Iterator[str]:
    """Answers `GET /v1/models/m` with the versions of the last ``(seconds since start, versions)`` reached."""
    started = time.monotonic()

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            now = time.monotonic() - started
            versions = [v for at, v in versions_at if at <= now][-1]
            body = json.dumps({"model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in versions]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_catching_up_on_a_fresh_export_is_waited_for() -> None:
    with status_server([(0.0, [1]), (0.6, [2])]) as target:
        start = time.monotonic()
        assert probe.serves_model(target, "m", {2}, on_disk={1, 2}, settle=10, interval=0.05)
        assert 0.5 < time.monotonic() - start < 5


def test_a_server_serving_versions_this_directory_lacks_is_not_ours() -> None:
    with status_server([(0.0, [7])]) as target:
        start = time.monotonic()
        assert not probe.serves_model(target, "m", {2}, on_disk={1, 2}, settle=10, interval=0.05)
        assert time.monotonic() - start < 2  # told apart at once, not after the settle time


def test_a_server_that_never_loads_the_configured_version_gives_up_after_settle() -> None:
    with status_server([(0.0, [1])]) as target:
        start = time.monotonic()
        assert not probe.serves_model(target, "m", {2}, on_disk={1, 2}, settle=0.5, interval=0.05)
        assert 0.4 < time.monotonic() - start < 3


def test_no_answer_is_not_serving() -> None:
    assert not probe.serves_model("127.0.0.1:9", "m", {1}, on_disk={1}, timeout=0.5)
