"""``RestServer``: the REST port of ``python -m serving`` (``--rest_api_port``) on an asyncio event loop.

The loop (uvloop when installed) runs on one thread: accepting, parsing (httptools), the request's JSON decode
and encode, writing replies. The backend call goes to a worker of a ``CallPool`` whose size is
``--rest_api_num_threads`` (0: ``deadline.default_threads()``), unless the DataPlane knows that model's calls
to be short and the body is small: then it runs inline too (``serving.rest.calls``). ``reuse_port``
sets SO_REUSEPORT so several server processes can share one port (the kernel spreads connections).
``stop()`` is graceful: it stops accepting, closes idle keep-alive connections, lets in-flight requests finish
(up to ``grace``, each answered with ``Connection: close``), then closes every connection.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from serving.monitoring import MonitoringSettings
from serving.rest.api import RestApi
from serving.rest.calls import Blocking
from serving.rest.deadline import CallPool, default_threads
from serving.rest.handler import Handler, Request
from serving.rest.protocol import HttpConnection

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a pinned dependency; the stdlib loop works, only slower
    uvloop = None

log = logging.getLogger("serving.rest")

DEFAULT_MAX_BODY_BYTES = 256 << 20
INLINE_BODY_BYTES = 64 << 10  # a larger body may mean a larger call than the model's average: always the pool
_INLINE_MIN_TIMEOUT_S = 0.01  # with a shorter --rest_api_timeout_in_ms every call goes where it can time out
_BACKLOG = 1024
_SETTLE_SECONDS = 0.05


class ServerState:
    """What every connection shares: the handler, the worker pool, the open connections, in-flight count."""

    def __init__(self, handler: Handler, pool: CallPool, short_call: Callable[[str], bool] | None = None) -> None:
        self.handler = handler
        self.pool = pool
        self._short_call = short_call if pool.timeout_s is None or pool.timeout_s >= _INLINE_MIN_TIMEOUT_S else None
        self.connections: set[HttpConnection] = set()
        self.stopping = False
        self._busy = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def request_started(self) -> None:
        self._busy += 1
        self.idle.clear()

    def request_finished(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self.idle.set()

    @property
    def in_flight(self) -> int:
        return self._busy

    def inline(self, step: Blocking, request: Request) -> bool:
        """Whether ``step`` runs on the loop: a call of a model the DataPlane knows to be short
        (``DataPlane.short_call``), for a small body. Anything else may block: it goes to the pool."""
        return (step.model is not None and self._short_call is not None
                and len(request.body) <= INLINE_BODY_BYTES and self._short_call(step.model))


def _listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError("SO_REUSEPORT is not available on this platform")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class RestServer:
    """TF Serving's HTTP/REST API on ``host:port`` for one ``DataPlane``.

    ``timeout_ms`` is ``--rest_api_timeout_in_ms`` (None or <= 0: no deadline); ``monitoring`` the Prometheus
    endpoint's settings from ``--monitoring_config_file`` (None: no endpoint); ``max_body_bytes`` caps a request
    body, before and after gzip decoding (413 above it); ``num_threads`` is ``--rest_api_num_threads`` (0: the
    default); ``reuse_port`` binds with SO_REUSEPORT.
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
        num_threads: int = 0,
        reuse_port: bool = False,
    ) -> None:
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {num_threads}")
        self._dataplane = dataplane
        self._address = (host, port)
        self._timeout_s = timeout_ms / 1000.0 if timeout_ms and timeout_ms > 0 else None
        self._monitoring = monitoring
        self._max_body_bytes = max_body_bytes
        self._threads = num_threads or default_threads()
        self._reuse_port = reuse_port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._state: ServerState | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0); only valid after ``start()``."""
        if self._port is None:
            raise RuntimeError("RestServer.port read before start()")
        return self._port

    @property
    def in_flight(self) -> int:
        """Requests being served right now (0 before ``start()`` and after ``stop()``)."""
        return 0 if self._state is None else self._state.in_flight

    def start(self) -> None:
        """Bind the port (OSError if taken) and serve on a daemon thread running the event loop."""
        if self._loop is not None:
            raise RuntimeError("RestServer already started")
        sock = _listening_socket(*self._address, self._reuse_port)
        self._port = sock.getsockname()[1]
        pool = CallPool(self._threads, self._timeout_s)
        handler = Handler(RestApi(self._dataplane), self._monitoring, self._max_body_bytes)
        loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._state = ServerState(handler, pool, getattr(self._dataplane, "short_call", None))
                self._server = loop.run_until_complete(
                    loop.create_server(lambda: HttpConnection(self._state), sock=sock))
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=serve, name="rest-loop", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._loop = self._thread = None
            pool.close()
            sock.close()
            raise failure[0]
        log.debug("REST API listening on %s:%d (%d worker threads)", self._address[0], self._port, self._threads)

    def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, finish in-flight requests (up to ``grace`` seconds), close connections. Idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._drain(grace), loop)
        try:
            drained = future.result(timeout=grace + 5)
        except FutureTimeout:
            drained = False
        if not drained:
            log.warning("REST server stopped with requests still running after %.1fs", grace)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        assert self._state is not None
        self._state.pool.close()

    async def _drain(self, grace: float) -> bool:
        state = self._state
        assert state is not None and self._server is not None
        state.stopping = True  # from now on every reply carries Connection: close
        # Let the loop accept connections already queued in the backlog and read requests already in socket
        # buffers, so a request the client has sent is served rather than reset.
        await asyncio.sleep(_SETTLE_SECONDS)
        self._server.close()  # the listening socket closes: new connections are refused
        await asyncio.sleep(_SETTLE_SECONDS)
        for conn in list(state.connections):
            if conn.idle:  # an idle keep-alive connection: nothing to answer
                conn.close()
        try:
            await asyncio.wait_for(state.idle.wait(), grace)
            drained = True
        except TimeoutError:
            drained = False
        for conn in list(state.connections):
            conn.close()
        await asyncio.sleep(0)  # let the transports run their close callbacks
        return drained
