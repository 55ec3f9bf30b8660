"""HTTP/1.1 on an asyncio connection: httptools parses, the loop answers; only a long backend call leaves it.

One ``HttpConnection`` per TCP connection. httptools (llhttp, Node's parser) does the framing: Content-Length
and chunked bodies, keep-alive, pipelining. This module adds what a public server needs on top and what the
old ``http.server`` stack did: limits on the request line (414), header lines and count (431) and the body
(413, checked on the declared length before a byte is read, and while a chunked body arrives); ``Expect:
100-continue`` answered only when the body fits; an oversized upload swallowed for a while after its 413 so
the client reads the answer instead of a reset; idle keep-alive connections closed after ``IDLE_SECONDS``.
Pipelined requests are answered in order. Each reply (status line, headers and body) is one write.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools

from serving.batching import WouldWait, without_waiting
from serving.rest import body as wire
from serving.rest import handler as h

if TYPE_CHECKING:
    from serving.rest.server import ServerState

log = logging.getLogger("serving.rest")

MAX_LINE = 65536  # request line and any one header line (http.server's limit)
MAX_HEADERS = 100  # http.server's limit
MAX_HEAD_BYTES = 1 << 20  # a request head that never ends
IDLE_SECONDS = 120.0  # an idle keep-alive connection, or a stalled request, is closed after this
_LINGER_BYTES = 64 << 20  # how much of an oversized upload we swallow so the client can read our 413
_LINGER_SECONDS = 2.0  # in total, however slowly the client trickles
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_INLINE_FAILED = object()  # an inline attempt that would have waited for a batch: run it on a worker instead
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; carries the reply that ends the connection."""

    def __init__(self, reply: h.Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _page(status: int, *, linger: bool = False) -> h.Reply:
    return h.Reply(status, h.libevent_error_page(status, _REASONS[status]), "text/html", close=True, linger=linger)


class _Date:
    """The ``Date`` header value, formatted once per second."""

    def __init__(self) -> None:
        self._second, self._value = -1, ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True)
        return self._value


_DATE = _Date()


class HttpConnection(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._queue: collections.deque[tuple[h.Request, bool] | h.Reply] = collections.deque()
        self._runner: asyncio.Task | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing = False  # no more requests are read: the last queued reply closes the connection
        self._linger_left = 0
        self._reset_message()

    # ------------------------------------------------------------------ connection life
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        self._state.connections.add(self)
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._transport = None

    def eof_received(self) -> bool | None:
        if self._linger_left or not (self._queue or self._runner):
            return None  # close now
        self._closing = True  # answer what was asked, then close
        return True

    @property
    def idle(self) -> bool:
        """No request being read, queued or served."""
        return not self._queue and self._runner is None and not self._in_message

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _arm_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._idle_timeout)

    def _idle_timeout(self) -> None:
        if self._runner is None:  # a stalled upload or an idle keep-alive connection
            self.close()
        else:
            self._arm_idle_timer()

    # ------------------------------------------------------------------ reading
    def data_received(self, data: bytes) -> None:
        if self._linger_left:
            self._linger_left -= len(data)
            if self._linger_left <= 0:
                self.close()
            return
        if self._closing:
            return
        self._arm_idle_timer()
        if not self._headers_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
            if not self._headers_done and self._head_bytes > MAX_HEAD_BYTES:
                raise _Refused(_page(431))
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            self._refuse(refused.reply if isinstance(refused, _Refused) else h.bug_reply(exc))
        except _Refused as exc:
            self._refuse(exc.reply)
        except httptools.HttpParserUpgrade:
            self._closing = True  # CONNECT or an Upgrade request: answered (405 / as HTTP), then closed
        except httptools.HttpParserError as exc:
            log.debug("REST: unparsable request: %s", exc)
            self._refuse(_page(400))

    def _refuse(self, reply: h.Reply) -> None:
        self._closing = True
        self._queue.append(reply)
        self._start_runner()

    def _reset_message(self) -> None:
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers_done = False
        self._in_message = False
        self._head_bytes = 0

    # httptools callbacks (raising _Refused stops the parser)
    def on_message_begin(self) -> None:
        self._reset_message()
        self._in_message = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_LINE:
            raise _Refused(_page(414))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS or len(name) + len(value) > MAX_LINE:
            raise _Refused(_page(431))
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        limit = self._state.handler.max_body_bytes
        try:
            length = wire.declared_length(self._headers)
        except wire.BadFraming as exc:
            raise _Refused(h.error_reply(exc, close=True)) from None
        if length is not None and length > limit:
            raise _Refused(h.error_reply(wire.too_large(length, limit), close=True, linger=True))
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self._body_size += len(chunk)
        limit = self._state.handler.max_body_bytes
        if self._body_size > limit:
            raise _Refused(h.error_reply(wire.too_large(self._body_size, limit), close=True, linger=True))
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("ascii", "replace")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = h.Request(method, self._url.decode("latin-1"), self._headers, body,
                            asyncio.get_running_loop().time())
        keep_alive = self._parser.should_keep_alive()
        self._reset_message()
        self._state.request_started()
        self._queue.append((request, keep_alive))
        if len(self._queue) > 8 and self._transport is not None:
            self._transport.pause_reading()  # a client pipelining without reading: stop reading it
        self._start_runner()

    # ------------------------------------------------------------------ answering, in order
    def _start_runner(self) -> None:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._queue and self._transport is not None:
                item = self._queue.popleft()
                if isinstance(item, h.Reply):  # a refusal: the connection's last answer
                    self._queue.clear()
                    self._write(item, "GET", close=True)
                    return
                request, keep_alive = item
                try:
                    reply = await self._serve(request)
                    close = reply.close or not keep_alive or self._state.stopping or (
                        self._closing and not self._queue)
                    self._write(reply, request.method, close=close)
                finally:
                    self._state.request_finished()
                if close:
                    return
                if self._transport is not None and len(self._queue) <= 8:
                    self._transport.resume_reading()
        finally:
            self._runner = None
            for item in self._queue:  # the connection went away with pipelined requests unanswered
                if not isinstance(item, h.Reply):
                    self._state.request_finished()
            self._queue.clear()

    async def _serve(self, request: h.Request) -> h.Reply:
        """Run the request's steps on the loop; each ``Blocking`` step inline when short, else on the pool."""
        state = self._state
        part = state.handler.classify(request.method, request.target)
        if part == h.NOT_ALLOWED:
            return h.NOT_ALLOWED_REPLY
        if part == h.NOT_FOUND:
            return h.NOT_FOUND_REPLY
        steps = state.handler.steps(request)
        deadline_at = state.pool.deadline_at(request.received) if request.method == "POST" else None
        value: object = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                value = _INLINE_FAILED
                if state.inline(step, request):
                    try:
                        with without_waiting():  # a batched call that would wait raises instead of blocking
                            value = step.fn()
                    except WouldWait:
                        pass  # nothing ran: it goes to a worker like any long call
                if value is _INLINE_FAILED:
                    value = await state.pool.run(step.fn, deadline_at=deadline_at)
            except Exception as exc:  # noqa: BLE001 - handed back into the steps, which answer it
                error = exc

    def _write(self, reply: h.Reply, method: str, *, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        head = (
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}\r\n"
            f"Content-Type: {reply.content_type}\r\nDate: {_DATE.now()}\r\n"
            f"Content-Length: {len(reply.payload)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        ).encode("latin-1")
        transport.write(head if method == "HEAD" else head + reply.payload)
        if not close:
            self._arm_idle_timer()
            return
        self._closing = True
        if reply.linger and transport.can_write_eof():
            self._linger(transport)
        else:
            transport.close()

    def _linger(self, transport: asyncio.Transport) -> None:
        """Half-close and swallow what the client is still uploading, so it reads our 413 instead of a reset."""
        self._linger_left = _LINGER_BYTES
        transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.close)
