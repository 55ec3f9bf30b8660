"""TF Serving's metric families, kept with ``prometheus_client`` and exposed in TF Serving's text format.

Names, labels and buckets are TF Serving's (``servables/tensorflow/util.cc``, ``saved_model_warmup_util.cc``,
``batching/batching_session.cc``, ``batching/batching_util.h``; TensorFlow's ``cc/saved_model/loader.cc``), with
``PrometheusExporter``'s renaming of ``/`` to ``:``, so dashboards built against the real server read ours:

========================================================  =====================================  ==========
family                                                    labels                                 kind
========================================================  =====================================  ==========
``:tensorflow:serving:request_count``                     model_name, status                     counter
``:tensorflow:serving:request_latency`` (us, OK only)     model_name, API, entrypoint (GRPC/REST) histogram
``:tensorflow:serving:runtime_latency`` (us)              model_name, API, runtime               histogram
``:tensorflow:serving:request_example_counts``            model                                  histogram
``:tensorflow:serving:request_example_count_total``       model                                  counter
``:tensorflow:cc:saved_model:load_attempt_count``         model_path, status (success/fail)      counter
``:tensorflow:cc:saved_model:load_latency`` (us)          model_path                             counter
``:tensorflow:serving:model_warmup_latency`` (us)         model_path, status                     histogram
``:tensorflow:serving:batching_session:queuing_latency``  thread_pool_name                       histogram
``:tensorflow:serving:batching_session:processed_batch_size``  -                                 histogram
``:tensorflow:serving:batching_session:input_batch_size``      -                                 histogram
``:tensorflow:serving:batching_session:padding_size``     execution_batch_size                   histogram
``:tensorflow:serving:batching_session:wrapped_run_count``     -                                 counter
========================================================  =====================================  ==========

One extension, for the multi-process mode (``--num_workers``): ``:serving:worker_request_count{worker}``
counts the requests each worker process answered, so an operator (and the tests) can see the kernel's
SO_REUSEPORT spreading connections.

Storage and aggregation are ``prometheus_client``'s. With worker processes the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker starts; every worker then writes its values to memory-mapped
files there and any worker's scrape sums all of them (``MultiProcessCollector``), so the endpoint shows the
whole server whichever process the kernel hands the connection to. The text is written the way TF Serving's
``PrometheusExporter`` writes it, which ``prometheus_client.generate_latest`` cannot: counters under their own
name (no ``_total`` suffix), labels in declared order, no ``_created`` series or HELP lines, integral values
without ``.0`` and bucket bounds as TF Serving prints them (``le="18"``); ``exposition`` does only that
formatting over ``prometheus_client``'s collected samples.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_ENV = "SERVING_WORKER_INDEX"
_MAX_CACHED_CHILDREN = 4096


class _RequestTimer:
    """``Metrics.request``'s context manager: a class, not a generator (it wraps every request)."""

    __slots__ = ("_metrics", "_model", "_api", "_entrypoint", "_start")

    def __init__(self, metrics: Metrics, model: str, api: str, entrypoint: str) -> None:
        self._metrics, self._model, self._api, self._entrypoint = metrics, model, api, entrypoint

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> None:
        from .errors import ServingError

        if kind is None:
            status = "OK"
        elif isinstance(exc, ServingError):
            status = exc.code.name
        elif isinstance(exc, Exception):
            status = "INTERNAL"
        else:  # GeneratorExit, KeyboardInterrupt: not an answer
            status = "CANCELLED"
        self._metrics.observe(self._model, self._api, self._entrypoint, status,
                              (time.perf_counter() - self._start) * 1e6)


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """TensorFlow's ``monitoring::Buckets::Exponential`` (the +Inf bucket is implicit here)."""
    return tuple(scale * growth**i for i in range(count))


# TF Serving's latency buckets: 10us * 1.8^i, 33 buckets (~20 minutes).
LATENCY_BUCKETS_US = exponential_buckets(10, 1.8, 33)
EXAMPLE_COUNT_BUCKETS = exponential_buckets(1, 2, 15)
QUEUING_BUCKETS_US = exponential_buckets(100, 1.2, 52)
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)


def _number(value: float) -> str:
    """A sample value: integral values without a fraction (TF Serving's int64 counts), others as repr."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**63 else repr(float(value))


def _bound(text: str) -> str:
    """A bucket bound as absl::StrCat prints a double (6 significant digits: ``18``, ``32.4``, ``1.45558e+09``)."""
    return text if text in ("+Inf", "-Inf", "NaN") else f"{float(text):.6g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(source, layout: dict[str, tuple[str, ...]] | None = None,
               counter_names: dict[str, str] | None = None) -> str:
    """``PrometheusExporter``'s text for every family ``source.collect()`` yields (a prometheus_client registry
    or collector): ``# TYPE`` lines, counters under their own name, no ``_created``. ``layout`` (family name ->
    label names) fixes the order of families and labels, which the multi-process collector does not keep;
    ``counter_names`` gives back a counter's full name where it ends in ``_total`` (prometheus_client strips it)."""
    layout, counter_names = layout or {}, counter_names or {}
    order = {name: i for i, name in enumerate(layout)}
    lines: list[str] = []
    for family in sorted(source.collect(), key=lambda f: (order.get(f.name, len(order)), f.name)):
        names = layout.get(family.name, ())
        kind = {"unknown": "untyped", "info": "gauge"}.get(family.type, family.type)
        shown = counter_names.get(family.name, family.name)
        lines.append(f"# TYPE {shown} {kind}")
        for sample in family.samples:
            name = sample.name
            if name.endswith("_created"):
                continue
            if family.type == "counter" and name == family.name + "_total":
                name = shown
            keys = [k for k in names if k in sample.labels] + [k for k in sample.labels if k not in names]
            labels = ",".join(f'{k}="{_escape(_bound(sample.labels[k]) if k == "le" else str(sample.labels[k]))}"'
                              for k in keys)
            lines.append(f"{name}{{{labels}}} {_number(sample.value)}" if labels else f"{name} {_number(sample.value)}")
    return "\n".join(lines) + "\n"


def multiprocess_dir() -> str | None:
    """The directory shared by worker processes, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Every metric family of one server process (thread-safe: ``prometheus_client`` locks per value)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._worker = os.environ.get(WORKER_ENV, "")
        self._request_count = Counter(":tensorflow:serving:request_count", "The total number of requests.",
                                      ["model_name", "status"], registry=reg)
        self._request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=LATENCY_BUCKETS_US, registry=reg)
        self._runtime_latency = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"], buckets=LATENCY_BUCKETS_US, registry=reg)
        self._example_counts = Histogram(
            ":tensorflow:serving:request_example_counts", "The number of tensorflow.Examples per request.",
            ["model"], buckets=EXAMPLE_COUNT_BUCKETS, registry=reg)
        self._example_total = Counter(":tensorflow:serving:request_example_count_total",
                                      "The total number of tensorflow.Examples.", ["model"], registry=reg)
        self._load_attempts = Counter(":tensorflow:cc:saved_model:load_attempt_count",
                                      "The number of times a SavedModel was successfully loaded.",
                                      ["model_path", "status"], registry=reg)
        self._load_latency = Counter(":tensorflow:cc:saved_model:load_latency",
                                     "Latency in microseconds for SavedModels that were successfully loaded.",
                                     ["model_path"], registry=reg)
        self._warmup_latency = Histogram(
            ":tensorflow:serving:model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ["model_path", "status"], buckets=LATENCY_BUCKETS_US, registry=reg)
        self._queuing_latency = Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"], buckets=QUEUING_BUCKETS_US, registry=reg)
        self._processed_batch = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing.", buckets=BATCH_SIZE_BUCKETS, registry=reg)
        self._input_batch = Histogram(
            ":tensorflow:serving:batching_session:input_batch_size",
            "Tracks the batch size distribution on the inputs.", buckets=BATCH_SIZE_BUCKETS, registry=reg)
        self._padding = Histogram(
            ":tensorflow:serving:batching_session:padding_size", "Tracks the padding size distribution on batches.",
            ["execution_batch_size"], buckets=BATCH_SIZE_BUCKETS, registry=reg)
        self._wrapped_runs = Counter(":tensorflow:serving:batching_session:wrapped_run_count",
                                     "Total count of run calls on the wrapped session", registry=reg)
        self._worker_requests = Counter(":serving:worker_request_count",
                                        "Requests answered by each worker process (--num_workers).",
                                        ["worker"], registry=reg)
        self._children: dict[tuple, Any] = {}
        self._layout = {m._name: tuple(m._labelnames) for m in (
            self._request_count, self._request_latency, self._runtime_latency, self._example_counts,
            self._example_total, self._load_attempts, self._load_latency, self._warmup_latency,
            self._queuing_latency, self._processed_batch, self._input_batch, self._padding, self._wrapped_runs,
            self._worker_requests)}

    # ------------------------------------------------------------------ requests
    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: prometheus_client validates and locks on every ``labels``
        call (~3 µs each, three per request on the hot path); a child, once made, never changes."""
        key = (metric._name, values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*values)
            if len(self._children) < _MAX_CACHED_CHILDREN:  # request labels come from clients: stay bounded
                self._children[key] = child
        return child

    def observe(self, model: str, api: str, entrypoint: str, status: str, latency_us: float) -> None:
        """One request, as TF Serving's front ends record it: counted with its status; latency only when OK."""
        self._child(self._request_count, model, status).inc()
        if status == "OK":
            self._child(self._request_latency, model, api, entrypoint).observe(latency_us)
        if self._worker:
            self._child(self._worker_requests, self._worker).inc()

    def request(self, model: str, api: str, entrypoint: str) -> _RequestTimer:
        """Time and count the block as one request; a ``ServingError`` leaving it gives the status."""
        return _RequestTimer(self, model, api, entrypoint)

    def runtime(self, model: str, api: str, runtime: str, latency_us: float) -> None:
        self._child(self._runtime_latency, model, api, runtime).observe(latency_us)

    def examples(self, model: str, count: int) -> None:
        """``RecordRequestExampleCount``: tf.Examples in one classify/regress/multi-inference request."""
        self._example_counts.labels(model).observe(count)
        self._example_total.labels(model).inc(count)

    # ------------------------------------------------------------------ loads
    def load(self, model_path: str, ok: bool, latency_us: float) -> None:
        self._load_attempts.labels(model_path, "success" if ok else "fail").inc()
        if ok:
            self._load_latency.labels(model_path).inc(latency_us)

    def warmup(self, model_path: str, status: str, latency_us: float) -> None:
        self._warmup_latency.labels(model_path, status).observe(latency_us)

    # ------------------------------------------------------------------ batching
    def batch_queued(self, thread_pool_name: str, latency_us: float) -> None:
        self._child(self._queuing_latency, thread_pool_name).observe(latency_us)

    def batch_processed(self, input_size: int, processed_size: int) -> None:
        """One merged run: ``input_size`` real rows padded to ``processed_size``."""
        self._input_batch.observe(input_size)
        self._processed_batch.observe(processed_size)
        self._child(self._padding, str(processed_size)).observe(processed_size - input_size)
        self._wrapped_runs.inc()

    # ------------------------------------------------------------------ reading
    def request_count(self, model: str, status: str = "OK") -> int:
        """This process's count (tests); the exposition is the aggregate."""
        return int(self._request_count.labels(model, status)._value.get())

    def render(self) -> str:
        """The Prometheus text exposition (0.0.4) of this process, or of every worker in multi-process mode."""
        if multiprocess_dir() is not None:
            from prometheus_client import multiprocess

            source = CollectorRegistry(auto_describe=True)
            multiprocess.MultiProcessCollector(source)
        else:
            source = self.registry
        return exposition(source, self._layout, {":tensorflow:serving:request_example_count":
                                                 ":tensorflow:serving:request_example_count_total"})


@dataclass(frozen=True)
class MonitoringSettings:
    """What the REST server needs to expose metrics: the URL path and the registry to render."""

    path: str
    metrics: Metrics

    def render(self) -> str:
        return self.metrics.render()
