"""The REST server's one hop off the event loop, and ``--rest_api_timeout_in_ms``.

A request's Python work (JSON decode and encode) runs on the event loop; its backend call runs on a worker
of this pool unless it is known to be short (``serving.rest.calls``), so a call that blocks never stalls
the loop and the runtime can use other cores while the loop decodes the next request.

TF Serving passes the timeout to ``Session::Run``, which gives up with DEADLINE_EXCEEDED ("Timed out waiting
for notification", HTTP 504). Python cannot interrupt a running TF or ONNX Runtime call, so the loop stops
waiting at the deadline and answers 504; the worker finishes (its result dropped) in the background. A call
still queued when its deadline passes is cancelled, never run. The deadline counts from the moment the
request is complete on the wire (``deadline_at``), so decoding and time spent queued for a worker count too.
"""
from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from serving.errors import DeadlineExceeded

T = TypeVar("T")

TIMEOUT_MESSAGE = "Timed out waiting for notification"


def default_threads() -> int:
    """``--rest_api_num_threads=0``: TF Serving's default of 4 workers per core, and at least 16.

    A worker is held for a whole model call, which Python cannot interrupt: with too few, a handful of slow
    calls past their deadline would hold every worker and time out the fast requests queued behind them.
    Threads are started only when requests are waiting, so an idle large pool costs nothing."""
    return max(16, 4 * (os.cpu_count() or 1))


class CallPool:
    """Runs request work on ``threads`` worker threads, with an optional timeout (seconds)."""

    def __init__(self, threads: int, timeout_s: float | None) -> None:
        if threads <= 0:
            raise ValueError(f"threads must be positive, got {threads}")
        self.threads = threads
        self.timeout_s = timeout_s if timeout_s and timeout_s > 0 else None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest-worker")

    def deadline_at(self, received: float) -> float | None:
        """The loop time at which a request complete on the wire at ``received`` times out (None: never)."""
        return None if self.timeout_s is None else received + self.timeout_s

    async def run(self, fn: Callable[[], T], *, deadline_at: float | None = None) -> T:
        """``fn()`` on a worker; ``DeadlineExceeded`` when the loop time passes ``deadline_at`` first."""
        loop = asyncio.get_running_loop()
        if deadline_at is not None and loop.time() >= deadline_at:
            raise DeadlineExceeded(TIMEOUT_MESSAGE)  # spent before it reached a worker: never run
        # In the caller's context (contextvars), as asyncio.to_thread does: request-scoped state set on the loop
        # (the DataPlane's request scope) is seen by the call on the worker.
        future = loop.run_in_executor(self._pool, contextvars.copy_context().run, fn)
        if deadline_at is None:
            return await future
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            future.cancel()  # also cancels the worker's call if it is still queued

        timer = loop.call_at(deadline_at, expire)  # lighter than asyncio.wait_for, on every request
        try:
            return await future
        except asyncio.CancelledError:
            if expired:
                raise DeadlineExceeded(TIMEOUT_MESSAGE) from None
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        """Stop the workers once the calls already running finish; queued calls are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)
