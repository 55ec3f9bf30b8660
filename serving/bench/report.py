"""``docs/perf/README.md``, written from one run's numbers (nothing in it is typed by hand)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from . import howto
from .docsections import BENCH_GOALS, PEER_GOALS, extract, upsert
from .goals import Goal
from .results import Row, find
from .run import Outcome, Settings

CSV_NAME = "results.csv"
PNG_NAME = "latency_throughput.png"


def _verdict(goal: Goal) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[goal.met]


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return out + ["| " + " | ".join(line) + " |" for line in lines]


def _results_table(rows: list[Row]) -> list[str]:
    lines = [[r.transport, r.backend, "on" if r.batching else "off", str(r.concurrency), f"{r.throughput:.0f}",
              f"{r.p50_us:.0f}", f"{r.p90_us:.0f}", f"{r.p99_us:.0f}", str(r.errors),
              f"{r.windows}" + ("" if r.stable else " (not stable)")] for r in rows]
    return _table(["transport", "backend", "batching", "concurrency", "infer/s", "p50 µs", "p90 µs", "p99 µs",
                   "errors", "windows"], lines)


def _explain(goals: list[Goal], rows: list[Row]) -> list[str]:
    """Why each missed goal was missed, in terms of the measured rows (the numbers are this run's)."""
    notes = []
    grpc1, local1 = find(rows, "grpc", "onnxruntime", False, 1), find(rows, "in-process", "onnxruntime", False, 1)
    if grpc1 and local1 and goals[0].met is False:
        notes.append(
            f"- **gRPC overhead.** In-process ONNX Runtime answers in {local1.p50_us:.0f} µs (p50); over gRPC the "
            f"same call takes {grpc1.p50_us:.0f} µs. Almost all of the difference is the Python request path on "
            "both ends of the loopback, on the same 2 cores: grpcio's synchronous server hands each call to a "
            "worker thread, the data plane decodes and validates the TensorProto and encodes the answer, and "
            "the benchmark's own Python asyncio gRPC client is inside the measured loop. A C++ front end (what "
            "TF Serving is) and a C++ load generator (perf_analyzer) are what it takes to get under 0.3 ms.")
    for backend in ("onnxruntime", "tensorflow"):
        on, off = find(rows, "grpc", backend, True, 32), find(rows, "grpc", backend, False, 32)
        local = find(rows, "in-process", backend, False, 1)
        if not (on and off and local and off.throughput) or (on.throughput >= 2 * off.throughput
                                                             and on.p99_us < 10_000):
            continue
        cost = 1e6 / off.throughput
        ratio = on.throughput / off.throughput
        text = (f"- **Batching, {backend}.** Measured {ratio:.2f}× at concurrency 32 (p99 {on.p99_us / 1e3:.0f} ms). ")
        if ratio < 2:
            text += (f"Without batching the server completes {off.throughput:.0f} infer/s: {cost:.0f} µs of (shared) "
                     f"CPU per request, of which the model call is about {local.p50_us:.0f} µs (in-process p50). "
                     "Batching merges model calls only; the per-request protocol work (gRPC/HTTP, protobuf or JSON, "
                     "Python threads) stays, and gRPC's worker pool (`--grpc_max_threads`, 4 × cores by default) "
                     "lets only that many requests reach the batcher at once. So it cannot double throughput when "
                     "the model is a small share of each request; it pays off when the model call dominates. ")
        if on.p99_us >= 10_000:
            text += ("In a closed loop, mean latency = concurrency / throughput (Little's law): p99 under 10 ms at "
                     f"concurrency 32 needs more than 3,200 infer/s, {3200 / on.throughput:.1f}× what this server "
                     "reached with batching.")
        notes.append(text.rstrip())
    rest1, grpc1 = find(rows, "rest", "onnxruntime", False, 1), find(rows, "grpc", "onnxruntime", False, 1)
    if rest1 and grpc1 and rest1.p50_us > 1.5 * grpc1.p50_us:
        notes.append(f"- **REST vs gRPC.** REST p50 {rest1.p50_us:.0f} µs vs gRPC {grpc1.p50_us:.0f} µs: JSON "
                     "parsing and the thread-per-connection HTTP server cost more than protobuf over HTTP/2.")
    for goal in goals:
        if goal.met is False and goal.goal.startswith("client encoding") and "message" in goal.goal:
            notes.append(
                "- **Encoding at message level.** `tf.make_tensor_proto` also copies a float32 array into "
                "`tensor_content` with one `tobytes()`, so filling a TensorProto *message* cannot be 10× faster; "
                "the gain is in skipping the message (`clients.wire` writes the serialized bytes around the "
                "array's buffer), which is what the clients send. See the wire row.")
    return notes


_ORDER = {"in-process": 0, "grpc": 1, "rest": 2}


def sorted_rows(rows: list[Row]) -> list[Row]:
    """Table order: in-process, gRPC, REST; then backend, batching, concurrency (the log keeps run order)."""
    return sorted(rows, key=lambda r: (_ORDER.get(r.transport, 9), r.backend, r.batching, r.concurrency))


def _noise(outcome: Outcome) -> list[str]:
    """A warning when the run was disturbed: levels that never settled, or a machine busier than its cores."""
    unstable = [r for r in outcome.rows if not r.stable]
    cores = len(os.sched_getaffinity(0))
    loads = [float(v.split(",")[0]) for v in (outcome.load_before, outcome.load_after) if v and v != "n/a"]
    busy = bool(loads) and max(loads) > cores
    if not unstable and not busy:
        return []
    text = (f"**Noise.** {len(unstable)} of {len(outcome.rows)} levels did not settle (two consecutive windows "
            "within the tolerance) in the allowed windows")
    if loads:
        text += (f"; the 1-minute load average was {loads[0]:.1f} before and {loads[-1]:.1f} after the run on "
                 f"{cores} usable cores, so other processes were competing for the CPU")
    text += (". Batching off/on are measured back to back at every level (both servers run side by side), "
             "but absolute numbers and ratios near a threshold are not reliable in such a run: rerun "
             "`make bench` on an otherwise idle machine for reference numbers.")
    return [text, ""]


def write_readme(out: Path, settings: Settings, outcome: Outcome, goals: list[Goal], machine: dict[str, str],
                 wall_s: float) -> Path:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance", "",
        f"Written by `make bench` (`python -m serving.bench --out docs/perf`) on {when}, in {wall_s / 60:.1f} minutes. "
        "Every number below comes from that one run; rerun it to refresh this page, the CSV and the plot.", "",
        "Model: the digits MLP (`export.examples.digits_mlp`, 64 → 64 → 10, softmax), trained for "
        f"{settings.epochs} epochs and exported by `python -m export` (SavedModel + `model.onnx`). Requests are batch 1 "
        "(one 8×8 digit). Closed loop: each of *concurrency* clients sends its next request when its last answer "
        f"arrives. Per level, as perf_analyzer does: {settings.plan.warmup:g} s warm-up, then {settings.plan.duration:g} s "
        f"windows until two in a row agree within {settings.plan.tolerance:.0%} (throughput and p50) or "
        f"{settings.plan.trials} windows were taken; the last window is reported (only requests that finish in it "
        "count; a level that never settled is marked). The load generator (asyncio, `grpc.aio` / raw HTTP/1.1 keep-alive) runs on the "
        "same machine as the server and targets 127.0.0.1. How the ONNX Runtime backend and batching work, and the "
        "benchmark's options: [onnxruntime-and-batching.md](onnxruntime-and-batching.md).", "",
        "## Machine", "",
        *_table(["", ""], [[k, v] for k, v in machine.items()]),
        f"| load average (1/5/15 min) before / after | {outcome.load_before} / {outcome.load_after} |", "",
        "The CPU is shared with whatever else runs on the machine; the load average shows how busy it was.", "",
        BENCH_GOALS, "",
        *_table(["goal", "measured", "verdict"], [[g.goal, g.measured, _verdict(g)] for g in goals]), "",
        *_noise(outcome),
    ]
    notes = _explain(goals, outcome.rows)
    if notes:
        lines += ["### Why the missed goals are missed", "", *notes, ""]
    lines += ["## Cold start and memory", "",
              *_table(["backend", "spawn → first answer", "RSS, 1 version", "RSS, 3 versions", "per loaded version"],
                      [[s.backend, f"{s.cold_start_s:.1f} s", f"{s.rss_one_version / 2**20:.0f} MiB",
                        "n/a" if s.rss_three_versions is None else f"{s.rss_three_versions / 2**20:.0f} MiB",
                        "n/a" if s.per_version_bytes is None else f"{s.per_version_bytes / 2**20:.1f} MiB"]
                       for s in outcome.servers]), "",
              "Cold start: `python -m serving` spawned → first successful REST predict (interpreter start, imports, "
              "model load, warmup replay). Memory: RSS of the idle server right after its first answer; per version = "
              "(RSS with versions 1–3 loaded − RSS with one) / 2.", "",
              "## Client tensor encoding (`clients.bench_codecs`, 1M float32)", "",
              *_table(["level", "op", "ours median ms", "TF median ms", "TF / ours"],
                      [[r["level"], r["op"], f"{r['ours_median_ms']:.3f}", f"{r['tf_median_ms']:.3f}",
                        f"{r['ratio']:.1f}×"] for r in outcome.codec_rows]), "",
              "## Results", "", f"![throughput and latency against concurrency]({PNG_NAME})", "",
              f"Raw numbers: [`{CSV_NAME}`]({CSV_NAME}).", "", *_results_table(sorted_rows(outcome.rows)), "",
              "## perf_analyzer-style log", "", "```", *outcome.log, "```", ""]
    path = out / "README.md"
    text = upsert("\n".join(lines), howto.HEADING, howto.SECTION, before="## Machine")
    peers = extract(path.read_text(encoding="utf-8"), PEER_GOALS) if path.exists() else None
    if peers:  # make bench-peers' section survives a make bench run (and the other way round)
        text = upsert(text, PEER_GOALS, peers, before=BENCH_GOALS)
    path.write_text(text, encoding="utf-8")
    return path
