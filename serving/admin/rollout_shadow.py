"""The shadow load: the same requests to `canary` and `stable`, side by side, over gRPC and REST.

TF Serving has no traffic splitting, so the canary gets no user traffic; instead one worker sends each
request to both labels back to back, over gRPC then REST, alternating which label goes first (so neither
side always meets a warm cache or a busy server), for `seconds`. One request in flight at a time: the
rollout's own canary calls never queue in front of its stable calls (the server's thread pools are shared),
so the two sides are measured under the same conditions, those of the live traffic. Per label and protocol it counts requests, errors (any failed
call, timeouts included) and wrong answers (canary answers outside the recorded tolerance), and keeps every
latency for p50/p99. The decision (error rate, p99 ratio) is the caller's.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from clients.base import ServingClient

__all__ = ["LabelFigures", "ShadowResult", "run_shadow"]


@dataclass
class LabelFigures:
    """One label over one protocol."""

    requests: int = 0
    errors: int = 0
    wrong: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def to_json(self) -> dict[str, float | int | str]:
        return {"requests": self.requests, "errors": self.errors, "wrong": self.wrong,
                "p50_ms": round(self.percentile(50), 3), "p99_ms": round(self.percentile(99), 3),
                "first_error": self.first_error}


@dataclass
class ShadowResult:
    """{protocol: {label: figures}} and how long the load ran."""

    seconds: float
    figures: dict[str, dict[str, LabelFigures]]

    def total(self, label: str) -> LabelFigures:
        out = LabelFigures()
        for per_label in self.figures.values():
            f = per_label[label]
            out.requests += f.requests
            out.errors += f.errors
            out.wrong += f.wrong
            out.latencies_ms += f.latencies_ms
            out.first_error = out.first_error or f.first_error
        return out


def _close(got: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], rtol: float, atol: float) -> bool:
    if set(got) != set(reference):
        return False
    for key, ref in reference.items():
        value = np.asarray(got[key])
        if value.shape != ref.shape or not np.allclose(value, ref, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


def _call(client: ServingClient, name: str, label: str, inputs: dict[str, np.ndarray], timeout: float,
          figures: LabelFigures) -> Mapping[str, np.ndarray] | None:
    start = time.perf_counter()
    try:
        got = client.predict(inputs, model=name, label=label, timeout=timeout)
    except Exception as err:  # ServingClientError, or anything else: the load reports, never dies
        figures.errors += 1
        figures.first_error = figures.first_error or f"{type(err).__name__}: {err}"
        got = None
    figures.latencies_ms.append((time.perf_counter() - start) * 1000.0)
    figures.requests += 1
    return got


def _worker(clients: Mapping[str, ServingClient], name: str, labels: tuple[str, str],
            inputs: dict[str, np.ndarray], reference: Mapping[str, np.ndarray], rtol: float, atol: float,
            timeout: float, stop: threading.Event, out: dict[str, dict[str, LabelFigures]]) -> None:
    canary = labels[0]
    turn = 0
    while not stop.is_set():
        for i, (protocol, client) in enumerate(clients.items()):
            order = labels if (turn + i) % 2 == 0 else labels[::-1]
            for label in order:
                figures = out[protocol][label]
                got = _call(client, name, label, inputs, timeout, figures)
                if got is not None and label == canary and not _close(got, reference, rtol, atol):
                    figures.wrong += 1
                    figures.first_error = figures.first_error or "canary answer outside the recorded tolerance"
        turn += 1


def run_shadow(clients: Mapping[str, ServingClient], name: str, inputs: Mapping[str, np.ndarray],
               reference: Mapping[str, np.ndarray], *, seconds: float, rtol: float, atol: float,
               timeout: float, canary: str = "canary", stable: str = "stable") -> ShadowResult:
    """Run the shadow load for `seconds` (a signal in the calling thread stops it early and re-raises)."""
    stop = threading.Event()
    figures = {p: {canary: LabelFigures(), stable: LabelFigures()} for p in clients}
    worker = threading.Thread(target=_worker, name="shadow", daemon=True,
                              args=(clients, name, (canary, stable), dict(inputs), reference, rtol, atol, timeout,
                                    stop, figures))
    start = time.monotonic()
    worker.start()
    try:
        while time.monotonic() - start < seconds and worker.is_alive():
            time.sleep(min(0.1, max(0.0, seconds - (time.monotonic() - start))))
    finally:
        stop.set()
        worker.join(2 * timeout + 1.0)  # at most one call per label is in flight
    return ShadowResult(time.monotonic() - start, figures)
