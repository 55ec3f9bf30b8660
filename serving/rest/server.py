"""``RestServer``: the REST port of ``python -m serving`` (``--rest_api_port``), standard library only.

A ``ThreadingHTTPServer`` (one daemon thread per connection, HTTP/1.1 keep-alive) in front of ``RestApi``.
``stop()`` is graceful: it stops accepting, lets in-flight requests finish (up to ``grace``), then closes
idle keep-alive connections so no thread is left blocked on a socket.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from serving.monitoring import MonitoringSettings
from serving.rest.api import RestApi
from serving.rest.handler import RestRequestHandler

log = logging.getLogger("serving.rest")

DEFAULT_MAX_BODY_BYTES = 256 << 20


class RestHTTPServer(ThreadingHTTPServer):
    """The listening socket plus what handlers share: the API, limits, and in-flight bookkeeping."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], api: RestApi, *, max_body_bytes: int, monitoring: MonitoringSettings | None,
        reuse_port: bool = False,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.allow_reuse_port = reuse_port  # --num_workers: processes share the port (SO_REUSEPORT)
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.monitoring = monitoring
        self.stopping = False
        self._busy = 0
        self._idle = threading.Condition()
        self._connections: set[socket.socket] = set()
        super().__init__(address, RestRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), a reverse-DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints tracebacks to stderr; a client vanishing is routine, anything else is logged."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("REST connection from %s ended: %s", client_address, exc)
        else:
            log.exception("REST connection from %s failed", client_address)

    # -- connection and request bookkeeping (called from handler threads)
    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._idle:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._idle:
            self._connections.discard(request)
        super().shutdown_request(request)

    def request_started(self) -> None:
        with self._idle:
            self._busy += 1

    def request_finished(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        with self._idle:
            return self._busy

    def drain(self, grace: float) -> bool:
        """Wait until no request is in flight (True), or ``grace`` passed (False); then close all connections."""
        self.stopping = True
        with self._idle:
            drained = self._idle.wait_for(lambda: self._busy == 0, timeout=grace)
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections: wake their threads with EOF
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return drained


class RestServer:
    """TF Serving's HTTP/REST API on ``host:port`` for one ``DataPlane``.

    ``timeout_ms`` is ``--rest_api_timeout_in_ms`` (None or <= 0: no deadline); ``monitoring`` the Prometheus
    endpoint's settings from ``--monitoring_config_file`` (None: no endpoint); ``max_body_bytes`` caps a request body,
    before and after gzip decoding (413 above it).
    """

    def __init__(
        self,
        dataplane: Any,
        host: str,
        port: int,
        *,
        timeout_ms: int | None = None,
        monitoring: MonitoringSettings | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        reuse_port: bool = False,
    ) -> None:
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self._dataplane = dataplane
        self._address = (host, port)
        self._timeout_ms = timeout_ms
        self._monitoring = monitoring
        self._max_body_bytes = max_body_bytes
        self._reuse_port = reuse_port
        self._httpd: RestHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0); only valid after ``start()``."""
        if self._httpd is None:
            raise RuntimeError("RestServer.port read before start()")
        return self._httpd.server_address[1]

    @property
    def in_flight(self) -> int:
        """Requests being served right now (0 before ``start()`` and after ``stop()``)."""
        return 0 if self._httpd is None else self._httpd.in_flight

    def start(self) -> None:
        """Bind the port (OSError if taken) and serve on a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("RestServer already started")
        api = RestApi(self._dataplane, self._timeout_ms)
        try:
            self._httpd = RestHTTPServer(
                self._address, api, max_body_bytes=self._max_body_bytes, monitoring=self._monitoring,
                reuse_port=self._reuse_port,
            )
        except BaseException:
            api.close()
            raise
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="rest-accept", daemon=True
        )
        self._thread.start()
        log.debug("REST API listening on %s:%d", self._address[0], self.port)

    def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, finish in-flight requests (up to ``grace`` seconds), close connections. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()  # the accept loop exits
        httpd.server_close()  # the listening socket closes: new connections are refused
        if not httpd.drain(grace):
            log.warning("REST server stopped with requests still running after %.1fs", grace)
        httpd.api.close()
        if self._thread is not None:
            self._thread.join()
