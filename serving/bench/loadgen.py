"""Closed-loop load generators: ``concurrency`` workers, each sending its next request when the last returns.

The same shape as perf_analyzer's concurrency mode: each level runs a warm-up, then a measurement window;
only requests that *finish* inside the window count (throughput = completed / window seconds, latencies
from their send times). Requests are serialized once up front (a batch-1 PredictRequest or REST JSON body),
so the client measures the server stack, not its own encoding.

* gRPC: ``grpc.aio`` channels, one per ``CLIENTS_PER_CHANNEL`` workers (HTTP/2 multiplexes the workers of
  a channel), each its own TCP connection (``grpc.use_local_subchannel_pool``), as that many independent
  clients would open: a server with several processes on one port (``--num_workers``) is balanced per
  connection by the kernel, so one channel would load one process only. Raw bytes through ``unary_unary``
  with no (de)serializers. Failed calls are counted, never hidden.
* REST: one keep-alive HTTP/1.1 connection per worker over asyncio streams, as a load generator with a
  connection pool would use. Non-200 answers count as errors.
* in-process: threads calling a Python function (the baselines: ONNX Runtime, the TF signature, Keras).

Every generator stops by itself at the end of its window. ``make bench`` targets 127.0.0.1; the target mode
(``--target HOST:PORT``) points the same generators at any server.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Plan:
    """How each level is measured, perf_analyzer style: a warm-up, then windows of ``duration`` seconds until
    two in a row agree within ``tolerance`` (throughput and p50) or ``trials`` windows were measured; the
    last window is the level's result."""

    warmup: float = 0.5
    duration: float = 2.0
    trials: int = 3
    tolerance: float = 0.15


@dataclass
class Window:
    """One measurement window: latencies (seconds) of requests completed in it, errors, length, stability."""

    latencies: np.ndarray
    errors: int
    seconds: float
    first_error: str = ""
    windows: int = 1  # how many windows were measured for this level
    stable: bool = True  # the last two agreed within the plan's tolerance (always True with one trial)

    @property
    def throughput(self) -> float:
        return self.latencies.size / self.seconds

    def agrees_with(self, other: Window, tolerance: float) -> bool:
        if not self.latencies.size or not other.latencies.size:
            return False
        pairs = ((self.throughput, other.throughput),
                 (float(np.median(self.latencies)), float(np.median(other.latencies))))
        return all(abs(a - b) <= tolerance * max(a, b) for a, b in pairs)


class _Recorder:
    """Every completion's (sent, done, error); windows are cut afterwards by completion time."""

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.done: list[float] = []
        self.failed: list[tuple[float, str]] = []
        self.stop_at = float("inf")

    def record(self, sent: float, done: float, error: str | None) -> None:
        if error is None:
            self.sent.append(sent)
            self.done.append(done)
        else:
            self.failed.append((done, error))

    def window(self, start: float, end: float) -> Window:
        sent, done = np.array(self.sent), np.array(self.done)
        inside = (done >= start) & (done < end)
        errors = [e for t, e in self.failed if start <= t < end]
        return Window(done[inside] - sent[inside], len(errors), end - start, errors[0] if errors else "")


def _next_window(rec: _Recorder, plan: Plan, windows: list[Window], start: float) -> bool:
    """Close the window that began at ``start``; True when the level is done (stable or out of trials)."""
    windows.append(rec.window(start, start + plan.duration))
    stable = len(windows) >= 2 and windows[-1].agrees_with(windows[-2], plan.tolerance)
    done = stable or len(windows) >= plan.trials
    if done:
        windows[-1].windows, windows[-1].stable = len(windows), stable or plan.trials == 1
    return done


async def _closed_loop(call: Callable[[], Awaitable[str | None]], concurrency: int, plan: Plan) -> Window:
    rec = _Recorder()

    async def worker() -> None:
        while (sent := time.perf_counter()) < rec.stop_at:
            error = await call()
            rec.record(sent, time.perf_counter(), error)

    async def monitor() -> Window:
        start, windows = time.perf_counter() + plan.warmup, []
        while True:
            await asyncio.sleep(max(0.0, start + plan.duration - time.perf_counter()))
            if _next_window(rec, plan, windows, start):
                rec.stop_at = time.perf_counter()
                return windows[-1]
            start += plan.duration

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    result = await monitor()
    await asyncio.gather(*workers)
    return result


PREDICT = "/tensorflow.serving.PredictionService/Predict"
CLIENTS_PER_CHANNEL = 4


def grpc_sweep(port: int, request: bytes, levels: list[int], plan: Plan,
               on_level: Callable[[int, Window], None], host: str = LOOPBACK, method: str = PREDICT,
               clients_per_channel: int = CLIENTS_PER_CHANNEL) -> None:
    """Closed-loop gRPC ``method`` (TF Serving's ``Predict`` by default) with the serialized ``request`` at
    each concurrency level, over ``ceil(level / clients_per_channel)`` channels (connections); ``on_level``
    gets each level's window."""
    import grpc

    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
               ("grpc.use_local_subchannel_pool", 1)]

    async def run() -> None:
        for level in levels:
            channels = [grpc.aio.insecure_channel(f"{host}:{port}", options=options)
                        for _ in range(-(-level // max(1, clients_per_channel)))]
            try:
                stubs = [channel.unary_unary(method) for channel in channels]

                async def call(stubs: list = stubs, turn: list[int] = [0]) -> str | None:  # noqa: B006
                    turn[0] += 1
                    try:
                        await stubs[turn[0] % len(stubs)](request, timeout=30)
                    except grpc.aio.AioRpcError as exc:
                        return f"{exc.code().name}: {exc.details()}"
                    return None

                on_level(level, await _closed_loop(call, level, plan))
            finally:
                for channel in channels:
                    await channel.close()

    asyncio.run(run())


class _HttpConnection:
    """One keep-alive HTTP/1.1 connection posting the same body; reconnects if the server closes it."""

    def __init__(self, port: int, path: str, body: bytes, host: str = LOOPBACK) -> None:
        self.host, self.port = host, port
        self.head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.head)
        status_line = await self.reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("server closed the connection")
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split()[1]), body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def rest_sweep(port: int, path: str, body: bytes, levels: list[int], plan: Plan,
               on_level: Callable[[int, Window], None], host: str = LOOPBACK) -> None:
    """Closed-loop REST ``POST path`` at each concurrency level (one connection per worker)."""

    async def run() -> None:
        for level in levels:
            pool = [_HttpConnection(port, path, body, host) for _ in range(level)]
            free = list(pool)

            async def call(free: list[_HttpConnection] = free) -> str | None:
                conn = free.pop()
                try:
                    status, answer = await conn.post()
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                    await conn.close()
                    return f"{type(exc).__name__}: {exc}"
                finally:
                    free.append(conn)
                return None if status == 200 else f"HTTP {status}: {answer[:200]!r}"

            on_level(level, await _closed_loop(call, level, plan))
            for conn in pool:
                await conn.close()

    asyncio.run(run())


def inprocess_sweep(fn: Callable[[], object], levels: list[int], plan: Plan,
                    on_level: Callable[[int, Window], None]) -> None:
    """Closed-loop threads calling ``fn`` (exceptions propagate: a baseline must not fail)."""
    for level in levels:
        rec = _Recorder()
        lock = threading.Lock()
        failures: list[BaseException] = []

        def worker(rec: _Recorder = rec, lock: threading.Lock = lock, failures: list = failures) -> None:
            try:
                while (sent := time.perf_counter()) < rec.stop_at:
                    fn()
                    done = time.perf_counter()
                    with lock:
                        rec.record(sent, done, None)
            except BaseException as exc:  # re-raised in the caller's thread below
                failures.append(exc)
                rec.stop_at = 0.0

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(level)]
        for thread in threads:
            thread.start()
        start, windows = time.perf_counter() + plan.warmup, []
        while not failures:
            time.sleep(max(0.0, start + plan.duration - time.perf_counter()))
            with lock:
                finished = _next_window(rec, plan, windows, start)
            if finished:
                break
            start += plan.duration
        rec.stop_at = 0.0
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        on_level(level, windows[-1])
