"""One measured point of ``make bench-peers``: a (round, workload, protocol, server, concurrency) cell, with
the load generator's and the server's CPU next to the throughput and latencies. Written to and read from CSV."""
from __future__ import annotations

import csv
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class PeerRow:
    round: int
    workload: str  # digits | mobilenet | mlp2048
    protocol: str  # rest | grpc | in-process
    server: str  # ours, ours+batching, ours-2w, kserve, mlserver, mlserver+batching, floor-*, ort-default
    concurrency: int
    throughput: float  # successful requests per second
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    requests: int
    errors: int
    seconds: float
    loadgen_cpu: float  # load generator CPU, in cores (CPU seconds / wall seconds)
    server_cpu: float  # server CPU, in cores (all its processes)
    first_error: str = ""
    loadgen: str = ""  # wrk | h2load | grpc.aio | in-process ("" in a CSV written before this column)


def write_csv(rows: list[PeerRow], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[x.name for x in fields(PeerRow)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(row).items()})
    return path


def read_csv(path: Path) -> list[PeerRow]:
    """The rows ``write_csv`` wrote (``--report-only`` rebuilds the docs from a saved run; a column added since
    the CSV was written gets its default)."""
    types = {x.name: x.type for x in fields(PeerRow)}
    cast = {"int": int, "float": float, "str": str}
    with path.open(newline="", encoding="utf-8") as f:
        return [PeerRow(**{k: cast[types[k]](v) for k, v in record.items()}) for record in csv.DictReader(f)]


def select(rows: list[PeerRow], workload: str, protocol: str, server: str, concurrency: int) -> dict[int, PeerRow]:
    """The cell's row per round."""
    return {r.round: r for r in rows if (r.workload, r.protocol, r.server, r.concurrency)
            == (workload, protocol, server, concurrency)}


@dataclass(frozen=True)
class Cell:
    """A cell over its rounds: medians, and the throughput's range."""

    workload: str
    protocol: str
    server: str
    concurrency: int
    rounds: int
    throughput: float
    throughput_min: float
    throughput_max: float
    p50_us: float
    p90_us: float
    p99_us: float
    errors: int
    loadgen_cpu: float
    server_cpu: float


def cells(rows: list[PeerRow]) -> list[Cell]:
    """One ``Cell`` per (workload, protocol, server, concurrency), in first-measured order."""
    groups: dict[tuple, list[PeerRow]] = {}
    for r in rows:
        groups.setdefault((r.workload, r.protocol, r.server, r.concurrency), []).append(r)
    med = statistics.median
    return [Cell(*key, len(g), med(r.throughput for r in g), min(r.throughput for r in g),
                 max(r.throughput for r in g), med(r.p50_us for r in g), med(r.p90_us for r in g),
                 med(r.p99_us for r in g), sum(r.errors for r in g), med(r.loadgen_cpu for r in g),
                 med(r.server_cpu for r in g)) for key, g in groups.items()]
