"""``docs/perf/peers.md`` (tables, plot, machine and noise) and the issue 11 goal section of
``docs/perf/README.md``, both written from one run's rows (nothing in them is typed by hand)."""
from __future__ import annotations

import datetime as dt
import os
import statistics
from pathlib import Path

from ..docsections import BENCH_GOALS, PEER_GOALS, upsert
from ..report import _table
from .goals import PeerGoal
from .h2load import CONNECTION_CAP
from .results import Cell, PeerRow, cells

PAGE = "peers.md"
CSV_NAME = "peers.csv"
PNG_NAME = "peers.png"
GOALS_HEADING = PEER_GOALS
WORKLOAD_TITLES = {"digits": "digits MLP (64 → 64 → 10), batch 1",
                   "mobilenet": "MobileNetV2 96×96, batch 1 (V1 JSON body ~150 kB)",
                   "mlp2048": "784 → 2048 → 2048 → 10 MLP, batch 1"}
SERVER_NOTES = {
    "ours": "`python -m serving`, ORT backend, batching off",
    "ours+batching": "the same with `--enable_batching` (max_batch_size 32, batch_timeout_micros 1000, 2 threads)",
    "ours-2w": "the same as ours with `--num_workers=2` (only when the server has the flag)",
    "kserve": "KServe 0.21 `ModelServer`, a V1 `kserve.Model` (TF Serving's REST API), 1 worker",
    "mlserver": "MLServer 1.7.1, a custom `MLModel` runtime, V2 REST and V2 gRPC (`ModelInfer`, fp32_contents), "
                "its defaults (parallel_workers 1)",
    "mlserver+batching": "the same model with adaptive batching (max_batch_size 32, max_batch_time 1 ms)",
    "floor-threading": "floor: `http.server.ThreadingHTTPServer` doing json.loads + ORT + json.dumps",
    "floor-asyncio": "floor: a raw asyncio HTTP/1.1 loop doing the same work",
    "floor-grpc": "floor: a bare sync grpcio server, PredictionService/Predict, tensor_content in and out",
    "ort-default": "in-process `InferenceSession` with ORT's default options (goal 5's reference)",
    "ort-ours": "in-process `InferenceSession` with our backend's options",
}


LOADGENS = {
    "wrk": "`wrk` (C; one thread, one keep-alive connection per client, closed loop)",
    "h2load": ("`h2load` (nghttp2's C HTTP/2 load generator; one thread, one connection per client up to "
               f"{CONNECTION_CAP}, closed loop, the framed request posted to `/<service>/<method>`). h2load sees "
               "HTTP only, so its errors are HTTP-level (non-2xx, reset or timed-out streams) plus answers that "
               "carried no gRPC message; one grpcio call checks every server before each gRPC point"),
    "grpc.aio": ("the Python `grpc.aio` closed loop of `serving.bench.loadgen`, in the harness process (h2load was "
                 "not used: on a small machine this loop takes CPU the servers need)"),
}


def load_text(rows: list[PeerRow], brief: bool = False) -> str:
    """Which load generator drove each protocol in these rows, and how much CPU it took (from the rows);
    ``brief``: names only, no description."""
    parts = []
    for protocol, label in (("rest", "HTTP"), ("grpc", "gRPC")):
        mine = [r for r in rows if r.protocol == protocol]
        if not mine:
            continue
        for name in sorted({r.loadgen for r in mine}):
            used = [r.loadgen_cpu for r in mine if r.loadgen == name]
            what = (f"`{name}`" if brief else LOADGENS.get(name, f"`{name}`")) if name else \
                "not recorded (a CSV written before the column)"
            parts.append(f"{label} load: {what}; its CPU {statistics.median(used):.2f} cores median, "
                         f"{max(used):.2f} at most over {len(used)} points.")
    return " ".join(parts)


def _ms(us: float) -> str:
    return f"{us / 1e3:.2f}"


def _cell_line(c: Cell) -> list[str]:
    spread = (f" ({c.throughput_min:.0f}–{c.throughput_max:.0f})" if c.rounds > 1 and c.throughput_max > 0 else "")
    return [c.protocol, c.server, str(c.concurrency), f"{c.throughput:.1f}{spread}", _ms(c.p50_us), _ms(c.p90_us),
            _ms(c.p99_us), str(c.errors), f"{c.server_cpu:.2f}", f"{c.loadgen_cpu:.2f}"]


def goals_section(goals: list[PeerGoal], when: str | None, machine: dict[str, str], noise: list[str],
                  load: str = "") -> str:
    """The README section; ``when`` None: the table of a checkout where no reference run was recorded yet."""
    intro = ("No reference run is recorded in this checkout yet: `make bench-peers` fills this table (and "
             f"[{PAGE}]({PAGE})) from its run." if when is None else
             f"Written by `make bench-peers` on {when} ({machine.get('CPU', '?')}, {machine.get('cores', '?')}). "
             f"Each ratio is from one round (both sides measured seconds apart); every round is shown. Details, "
             f"tables and the plot: [{PAGE}]({PAGE}).{' ' + load if load else ''}")
    lines = [GOALS_HEADING, "", intro, "",
             *_table(["goal", "measured (per round)", "verdict"], [[g.goal, g.measured, g.verdict] for g in goals]),
             "", *noise]
    return "\n".join(lines)


def noise_lines(rows: list[PeerRow], load_before: str, load_after: str) -> list[str]:
    cores = len(os.sched_getaffinity(0))
    loads = [float(v.split(",")[0]) for v in (load_before, load_after) if v and v != "n/a"]
    errors = sum(r.errors for r in rows)
    text = (f"**Noise.** 1-minute load average {load_before or 'n/a'} before and {load_after or 'n/a'} after, on "
            f"{cores} usable cores; the load generator runs on the same cores as the servers (its CPU is in "
            f"the tables). {errors} failed requests in the run.")
    if loads and max(loads) > cores:
        text += (" The machine was busier than its cores: other processes competed with the servers, so ratios near a "
                 "threshold are not reliable from this run; rerun `make bench-peers` on an otherwise idle machine.")
    return [text, ""]


def write(out: Path, rows: list[PeerRow], goals: list[PeerGoal], machine: dict[str, str], settings_text: str,
          load_before: str, load_after: str, wall_s: float) -> Path:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    noise = noise_lines(rows, load_before, load_after)
    lines = ["# Peers: our server next to KServe, MLServer and the Python floors", "",
             f"Written by `make bench-peers` (`python -m serving.bench.peers`) on {when}, in {wall_s / 60:.1f} minutes. "
             "Every number comes from that one run; rerun it to refresh this page, "
             f"[`{CSV_NAME}`]({CSV_NAME}) and the plot. {settings_text}", "",
             "Every server serves the same `model.onnx` files (exported once by `python -m export`) with the same "
             f"ONNX Runtime session options as our ORT backend. {load_text(rows)} "
             "req/s counts successful answers; latencies in ms; CPU in cores (CPU seconds / wall seconds) for the "
             "server (all its processes) and the load generator. Each cell: the median of the rounds, with the "
             "range of req/s over the rounds in brackets.", "",
             "## Servers", "", *_table(["name", "what runs"], [[k, v] for k, v in SERVER_NOTES.items()]), "",
             "## Machine", "", *_table(["", ""], [[k, v] for k, v in machine.items()]),
             f"| load average (1/5/15 min) before / after | {load_before} / {load_after} |", "", *noise,
             "## Goals", "", *_table(["goal", "measured (per round)", "verdict"],
                                     [[g.goal, g.measured, g.verdict] for g in goals]), "",
             f"![throughput and p99 per workload]({PNG_NAME})", ""]
    all_cells = cells(rows)
    for workload, title in WORKLOAD_TITLES.items():
        mine = [c for c in all_cells if c.workload == workload]
        if not mine:
            continue
        mine.sort(key=lambda c: (c.protocol != "rest", c.concurrency, -c.throughput))
        lines += [f"## {title}", "", *_table(["protocol", "server", "concurrency", "req/s", "p50 ms", "p90 ms",
                                             "p99 ms", "errors", "server CPU", "loadgen CPU"],
                                            [_cell_line(c) for c in mine]), ""]
    path = out / PAGE
    path.write_text("\n".join(lines), encoding="utf-8")
    readme = out / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Performance\n"
    readme.write_text(upsert(text, GOALS_HEADING, goals_section(goals, when, machine, noise, load_text(rows, True)),
                             before=BENCH_GOALS), encoding="utf-8")
    return path
