"""What one complete HTTP request is answered with: dispatch, the REST API, the metrics page, error bodies.

Dispatch is TF Serving's (``http_server.cc`` + libevent): the Prometheus path first (exact path match), then
anything under ``/v1/`` to the REST API, and libevent's bare ``404 Not Found`` page for every other path.
libevent refuses TRACE and CONNECT with 405; every other method reaches the API, which answers
``Malformed request`` (400) for a method/URL pair it does not serve. A ``ServingError`` is answered with its
HTTP status and ``{"error": ...}``; any other exception is a server bug: logged with its traceback and
answered 500 with its message. ``steps`` is the request as steps (``serving.rest.calls``): the connection runs
it on the event loop and only its ``Blocking`` steps (the backend call, the metrics page) may go to a worker.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from serving.errors import ServingError
from serving.monitoring import MonitoringSettings
from serving.rest import body as wire
from serving.rest import jsonfmt, prometheus, routes
from serving.rest.api import RestApi
from serving.rest.calls import Blocking, Steps, run_inline

log = logging.getLogger("serving.rest")

_POSTED = (routes.PREDICT, routes.CLASSIFY, routes.REGRESS)
API, METRICS, NOT_FOUND, NOT_ALLOWED = "api", "metrics", "not-found", "not-allowed"


def libevent_error_page(code: int, reason: str) -> bytes:
    """The HTML ``evhttp_send_error`` writes (what TF Serving answers outside its handlers)."""
    return (
        f"<HTML><HEAD>\n<TITLE>{code} {reason}</TITLE>\n</HEAD><BODY>\n<H1>{reason}</H1>\n</BODY></HTML>\n"
    ).encode("ascii")


@dataclass(frozen=True)
class Request:
    """A complete request off the wire. ``headers`` has lower-case names (the last value of a repeated one);
    ``received`` is the event loop's time when the request was complete (where its deadline counts from)."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""
    received: float = 0.0


@dataclass(frozen=True)
class Reply:
    """Status, body and content type; ``close`` asks for ``Connection: close`` and closing afterwards."""

    status: int
    payload: bytes
    content_type: str = jsonfmt.JSON_CONTENT_TYPE
    close: bool = False
    linger: bool = field(default=False)  # swallow the rest of an oversized upload before closing


def error_reply(exc: ServingError, *, close: bool = False, linger: bool = False) -> Reply:
    return Reply(exc.http_status, jsonfmt.error_body(exc.message), close=close, linger=linger)


def bug_reply(exc: BaseException) -> Reply:
    return Reply(500, jsonfmt.error_body(str(exc) or type(exc).__name__), close=True)


NOT_FOUND_REPLY = Reply(404, libevent_error_page(404, "Not Found"), "text/html")
NOT_ALLOWED_REPLY = Reply(405, libevent_error_page(405, "Method Not Allowed"), "text/html")


class Handler:
    """Answers requests for one ``RestApi`` and the Prometheus settings; thread-safe (no per-request state)."""

    def __init__(self, api: RestApi, monitoring: MonitoringSettings | None, max_body_bytes: int) -> None:
        self.api = api
        self.monitoring = monitoring
        self.max_body_bytes = max_body_bytes
        self._metrics_path = prometheus.metrics_path(monitoring)

    def classify(self, method: str, target: str) -> str:
        """Which part of the server answers: ``API``, ``METRICS``, ``NOT_FOUND`` or ``NOT_ALLOWED`` (cheap)."""
        if method in ("TRACE", "CONNECT"):
            return NOT_ALLOWED
        target = routes.path_and_query(target)
        if self._metrics_path is not None and urlsplit(target).path == self._metrics_path:
            return METRICS
        return API if routes.is_api_path(target) else NOT_FOUND

    def serve(self, request: Request) -> Reply:
        """The reply to an API or metrics request, every step run on this thread; never raises."""
        return run_inline(self.steps(request))

    def steps(self, request: Request) -> Steps[Reply]:
        """``serve`` as steps; the generator never raises (a bug becomes a 500 reply)."""
        target = routes.path_and_query(request.target)
        try:
            if self.classify(request.method, target) == METRICS:
                return (yield Blocking(lambda: self._metrics(target)))
            return (yield from self._api(request, target))
        except Exception as exc:  # a server bug: log it, answer 500, never take the server down
            log.exception("REST %s %s failed", request.method, target)
            return bug_reply(exc)

    def _api(self, request: Request, target: str) -> Steps[Reply]:
        try:
            route = routes.parse_route(request.method, target)
            # Only POST bodies carry a request (TF Serving ignores a GET's body, gzip or not).
            body = b""
            if route.kind in _POSTED:
                body = wire.decode_content(request.body, request.headers, self.max_body_bytes)
            return Reply(200, (yield from self.api.steps(route, body)))
        except ServingError as exc:
            log.debug("REST %s %s -> %d %s", request.method, target, exc.http_status, exc.message)
            return error_reply(exc)

    def _metrics(self, target: str) -> Reply:
        try:
            return Reply(200, prometheus.page(target, self.monitoring).encode("utf-8"), prometheus.CONTENT_TYPE)
        except ServingError as exc:
            return Reply(exc.http_status, exc.message.encode("utf-8"), prometheus.CONTENT_TYPE)
