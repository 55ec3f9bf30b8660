"""The REST server's one hop off the event loop, and ``--rest_api_timeout_in_ms``.

Everything a request costs in Python (JSON decode, the model call, JSON encode) runs in one call on a worker
of this pool, so the event loop only parses HTTP and writes replies; there is no second hand-off.

TF Serving passes the timeout to ``Session::Run``, which gives up with DEADLINE_EXCEEDED ("Timed out waiting
for notification", HTTP 504). Python cannot interrupt a running TF or ONNX Runtime call, so the loop stops
waiting at the deadline and answers 504; the worker finishes (its result dropped) in the background. A call
still queued when its deadline passes is cancelled, never run. The deadline counts from the moment the
request is complete on the wire, so time spent queued for a worker counts too.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from serving.errors import DeadlineExceeded

T = TypeVar("T")
A = TypeVar("A")

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

    async def run(self, fn: Callable[[A], T], arg: A, *, deadline: bool = True) -> T:
        """``fn(arg)`` on a worker; ``DeadlineExceeded`` when ``deadline`` and the timeout pass first."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn, arg)
        if not deadline or self.timeout_s is None:
            return await future
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            future.cancel()  # also cancels the worker's call if it is still queued

        timer = loop.call_later(self.timeout_s, expire)  # lighter than asyncio.wait_for, on every request
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
