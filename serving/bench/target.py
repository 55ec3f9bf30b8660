"""Target mode (``python -m serving.bench --target HOST:PORT ...``, ``make perf``): perf_analyzer for any model
on any TF Serving-compatible server (ours or a real ``tensorflow_model_server``), through public APIs only.

The request is built once from an ``.npy`` (one input) or ``.npz`` (one array per input name) file: a gRPC
``PredictRequest`` (the clients' TF-free messages) or a REST ``:predict`` body in TF Serving's columnar JSON.
Input names and dtypes come from the model's metadata when the server gives it (one unnamed ``.npy`` array
needs a single-input signature). Each concurrency level is a closed loop (``loadgen``), printed as
perf_analyzer prints it, with the server-side breakdown (``metrics``) when the server exposes TF Serving's
Prometheus families.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import loadgen, metrics
from .results import Row, make_row

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"
CSV_NAME = "perf.csv"
PNG_NAME = "perf.png"


class TargetError(Exception):
    """Bad options or an unusable server answer: printed as one line, exit status 2 (never a traceback)."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    protocol: str  # grpc | rest
    model: str
    version: int | None = None
    label: str | None = None
    signature: str = ""
    metrics_url: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"--target is HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def load_inputs(path: Path, batch_size: int | None) -> np.ndarray | dict[str, np.ndarray]:
    """The arrays of ``path`` (``.npy``: one unnamed input; ``.npz``: by name), resized to ``batch_size`` rows
    along the first axis when given (rows are cycled, as perf_analyzer repeats its input data)."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays: np.ndarray | dict[str, np.ndarray] = {k: data[k] for k in data.files}
            if not arrays:
                raise TargetError(f"{path} holds no arrays")
        elif path.suffix == ".npy":
            arrays = np.load(path, allow_pickle=False)
        else:
            raise TargetError(f"--input must be a .npy or .npz file, got {path}")
    except (OSError, ValueError) as exc:
        raise TargetError(f"cannot read --input {path}: {exc}") from None
    if batch_size is None:
        return arrays
    return {k: _batch(v, batch_size, k) for k, v in arrays.items()} if isinstance(arrays, dict) \
        else _batch(arrays, batch_size, "input")


def _batch(arr: np.ndarray, size: int, name: str) -> np.ndarray:
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise TargetError(f"--batch-size needs a batch dimension, but {name} has shape {list(arr.shape)}")
    return arr[np.arange(size) % arr.shape[0]]


def batch_of(inputs: np.ndarray | dict[str, np.ndarray]) -> int:
    """Inferences per request: the first dimension shared by the inputs (1 for scalars)."""
    first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    return int(first.shape[0]) if first.ndim else 1


def _client(target: Target):
    from clients.grpc_client import GrpcClient
    from clients.rest_client import RestClient

    return (GrpcClient if target.protocol == "grpc" else RestClient)(target.address)


def resolve_inputs(target: Target, inputs: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name and cast the inputs from the model's signature; without metadata, ``.npz`` names are used as is."""
    from clients.errors import ServingClientError

    try:
        client = _client(target)
        try:
            meta = client.metadata(model=target.model, version=target.version, label=target.label)
        finally:
            client.close()
    except (ServingClientError, OSError, ValueError) as exc:
        if isinstance(inputs, dict):
            return inputs
        raise TargetError(f"cannot read {target.model}'s metadata from {target.address} to name the .npy input "
                          f"({exc}); pass an .npz with one array per input name") from None
    key = target.signature or "serving_default"
    if key not in meta.signatures:
        raise TargetError(f"{target.model} has no signature {key!r} (it has {sorted(meta.signatures)})")
    specs = meta.signatures[key].inputs
    if not isinstance(inputs, dict):
        if len(specs) != 1:
            raise TargetError(f"signature {key!r} has inputs {sorted(specs)}: pass an .npz with one array each")
        inputs = {next(iter(specs)): inputs}
    unknown = sorted(set(inputs) - set(specs))
    if unknown:
        raise TargetError(f"signature {key!r} has no input(s) {unknown} (it has {sorted(specs)})")
    return {k: _cast(v, specs[k]) for k, v in inputs.items()}


def _cast(arr: np.ndarray, spec) -> np.ndarray:
    try:
        dtype = spec.numpy_dtype
    except Exception:  # noqa: BLE001 - a dtype numpy lacks: send the array as it is
        return arr
    return arr if dtype.kind == "O" or arr.dtype == dtype else arr.astype(dtype)


def grpc_request(target: Target, inputs: dict[str, np.ndarray]) -> bytes:
    """A serialized ``PredictRequest`` (version or label in the ``ModelSpec``)."""
    from clients.codecs import ndarray_to_tensor_proto
    from clients.messages import PredictRequest

    request = PredictRequest()
    request.model_spec.name = target.model
    if target.version is not None:
        request.model_spec.version.value = target.version
    if target.label is not None:
        request.model_spec.version_label = target.label
    if target.signature:
        request.model_spec.signature_name = target.signature
    for name, arr in inputs.items():
        ndarray_to_tensor_proto(arr, request.inputs[name])
    return request.SerializeToString()


def rest_request(target: Target, inputs: dict[str, np.ndarray]) -> tuple[str, bytes]:
    """``(path, body)`` of the ``:predict`` call in TF Serving's columnar JSON."""
    from clients.rest_codec import encode_predict_request

    path = f"/v1/models/{target.model}"
    if target.version is not None:
        path += f"/versions/{target.version}"
    elif target.label is not None:
        path += f"/labels/{target.label}"
    body = encode_predict_request(inputs, target.signature, fmt="columnar")
    return path + ":predict", json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Level:
    """One measured concurrency level: the client row (throughput in inferences/s) and the server's view."""

    row: Row
    batch_size: int
    server: metrics.Breakdown | None

    @property
    def requests_per_s(self) -> float:
        return self.row.throughput / self.batch_size

    def lines(self) -> list[str]:
        return [self.row.perf_analyzer_line()] + (["  " + self.server.line()] if self.server else [])


CSV_FIELDS = ("protocol", "model", "concurrency", "batch_size", "infer_per_sec", "requests_per_sec", "p50_us",
              "p90_us", "p99_us", "avg_us", "requests", "errors", "windows", "stable", "server_requests",
              "server_request_us", "server_queue_us", "server_compute_us")


def csv_record(level: Level) -> dict[str, object]:
    r, s = level.row, level.server

    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:.1f}"

    return {"protocol": r.transport, "model": r.backend, "concurrency": r.concurrency, "batch_size": level.batch_size,
            "infer_per_sec": fmt(r.throughput), "requests_per_sec": fmt(level.requests_per_s), "p50_us": fmt(r.p50_us),
            "p90_us": fmt(r.p90_us), "p99_us": fmt(r.p99_us), "avg_us": fmt(r.avg_us), "requests": r.requests,
            "errors": r.errors, "windows": r.windows, "stable": r.stable,
            "server_requests": s.requests if s else "", "server_request_us": fmt(s.request_us if s else None),
            "server_queue_us": fmt(s.queue_us if s else None), "server_compute_us": fmt(s.compute_us if s else None)}


def write_csv(levels: list[Level], path: Path) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_record(level) for level in levels)
    return path


def measure(target: Target, inputs: dict[str, np.ndarray], levels: list[int], plan: loadgen.Plan,
            report: Callable[[Level], None] = lambda level: None) -> list[Level]:
    """Every level, closed loop, with a metrics scrape around each; ``report`` sees each level as it ends."""
    batch = batch_of(inputs)
    out: list[Level] = []
    before: list[metrics.Snapshot | None] = [None]

    def on_level(concurrency: int, window: loadgen.Window) -> None:
        after = metrics.scrape(target.metrics_url)
        row = make_row(target.protocol, target.model, False, concurrency, window)
        row = dataclasses.replace(row, throughput=row.throughput * batch)
        level = Level(row, batch, metrics.breakdown(before[0], after, target.model))
        out.append(level)
        report(level)
        if window.errors:
            print(f"  first error: {window.first_error}", flush=True)
        before[0] = metrics.scrape(target.metrics_url)

    for concurrency in levels:  # one sweep per level, so the scrape brackets exactly that level's traffic
        before[0] = metrics.scrape(target.metrics_url)
        if target.protocol == "grpc":
            loadgen.grpc_sweep(target.port, grpc_request(target, inputs), [concurrency], plan, on_level, target.host)
        else:
            path, body = rest_request(target, inputs)
            loadgen.rest_sweep(target.port, path, body, [concurrency], plan, on_level, target.host)
    return out


def check_reachable(target: Target, inputs: dict[str, np.ndarray]) -> None:
    """One predict through the clients before measuring: a wrong model, input or port fails here, clearly."""
    from clients.errors import ServingClientError

    client = _client(target)
    try:
        client.predict(inputs, model=target.model, version=target.version, label=target.label,
                       signature_name=target.signature or "serving_default")
    except (ServingClientError, OSError, ValueError) as exc:
        raise TargetError(f"predict on {target.model} at {target.address} ({target.protocol}) failed: {exc}") from None
    finally:
        client.close()
