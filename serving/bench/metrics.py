"""The server-side breakdown of a measured level from TF Serving's Prometheus families (perf_analyzer's
"Server:" lines): scrape before and after the level, and the deltas of each histogram's ``_sum``/``_count``
give the mean time per request the server itself spent in each stage.

Families read (TF Serving's names; all in microseconds), each only when the server exposes it:

* ``:tensorflow:serving:request_latency`` (``model_name``, ``API``, ``entrypoint``): the whole request
  inside the server.
* ``:tensorflow:serving:runtime_latency`` (``model_name``, ``API``, ``runtime``): the model call (compute).
* ``:tensorflow:serving:batching_session:queuing_latency`` (``thread_pool_name``): time in the batch queue.
  TF Serving labels it by thread pool, not model, so it is summed over every pool.

A server without a metrics endpoint, or without a family, simply gives no value for it: the breakdown is
optional, as perf_analyzer's is for servers without Triton's statistics extension.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

REQUEST = ":tensorflow:serving:request_latency"
RUNTIME = ":tensorflow:serving:runtime_latency"
QUEUE = ":tensorflow:serving:batching_session:queuing_latency"
FAMILIES = (REQUEST, RUNTIME, QUEUE)
MODEL_LABELLED = (REQUEST, RUNTIME)

# (family, labels) -> (sum, count) of one histogram series
Snapshot = dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]]


def parse(text: str) -> Snapshot:
    """The ``_sum``/``_count`` series of the three families in a Prometheus text page."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in FAMILIES:
            continue
        for sample in family.samples:
            part = {family.name + "_sum": 0, family.name + "_count": 1}.get(sample.name)
            if part is None:
                continue
            key = (family.name, tuple(sorted(sample.labels.items())))
            out.setdefault(key, [0.0, 0.0])[part] = float(sample.value)
    return {k: (v[0], v[1]) for k, v in out.items()}


def scrape(url: str | None, timeout: float = 5.0) -> Snapshot | None:
    """The page at ``url`` parsed, or None when there is no URL or the server does not answer it."""
    if not url:
        return None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse(response.read().decode("utf-8", errors="replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Breakdown:
    """Mean microseconds per request inside the server over one level; None where the family is absent."""

    requests: int
    request_us: float | None
    compute_us: float | None
    queue_us: float | None

    def line(self) -> str:
        """perf_analyzer's server line, with what the metrics gave."""
        parts = [f"Server: inference count {self.requests}"]
        for label, value in (("avg request latency", self.request_us), ("queue", self.queue_us),
                             ("compute", self.compute_us)):
            if value is not None:
                parts.append(f"{label} {value:.0f} usec")
        if None not in (self.request_us, self.compute_us):
            other = self.request_us - self.compute_us - (self.queue_us or 0.0)
            parts.append(f"overhead {max(other, 0.0):.0f} usec")
        return ", ".join(parts)


def _delta(before: Snapshot, after: Snapshot, family: str, model: str | None) -> tuple[float, float] | None:
    total_sum = total_count = 0.0
    seen = False
    for (name, labels), (s, c) in after.items():
        if name != family or (model is not None and family in MODEL_LABELLED and dict(labels).get("model_name") != model):
            continue
        seen = True
        s0, c0 = before.get((name, labels), (0.0, 0.0))
        total_sum, total_count = total_sum + s - s0, total_count + c - c0
    return (total_sum, total_count) if seen else None


def breakdown(before: Snapshot | None, after: Snapshot | None, model: str | None) -> Breakdown | None:
    """What the server spent per request between two scrapes (None without metrics or without requests)."""
    if before is None or after is None:
        return None
    means: dict[str, float | None] = {}
    requests = 0
    for family in FAMILIES:
        delta = _delta(before, after, family, model)
        means[family] = delta[0] / delta[1] if delta and delta[1] > 0 else None
        if family == REQUEST and delta:
            requests = int(delta[1])
    if all(v is None for v in means.values()):
        return None
    return Breakdown(requests, means[REQUEST], means[RUNTIME], means[QUEUE])
