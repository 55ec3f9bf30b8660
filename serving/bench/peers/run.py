"""The ``make bench-peers`` run: export the workloads, start every server side by side, then measure in
interleaved rounds (round → workload → concurrency → server), so every ratio compares cells measured
seconds apart in the same round, and a change in background load cannot pose as a difference between servers.

Load generators: ``wrk`` for REST (``wrk.py``), ``h2load`` for gRPC (``h2load.py``; one grpcio call checks
each server before every gRPC point, since h2load cannot read a call's grpc-status), both C processes whose
CPU is measured apart from the servers'. Without h2load the gRPC points fall back to the Python ``grpc.aio``
loop of ``serving.bench.loadgen`` (with a warning: on a small machine it takes a core from the servers).
"""
from __future__ import annotations

import math
import resource
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .. import loadgen
from . import h2load, servers, wrk
from .results import PeerRow
from .workloads import Workload, prepare

OURS = ("ours", "ours+batching", "ours-2w")
PEERS = ("kserve", "mlserver", "mlserver+batching")
FLOORS = ("floor-threading", "floor-asyncio", "floor-grpc")
ALL_SERVERS = (*OURS, *PEERS, *FLOORS)
GRPC_SERVERS = ("ours", "ours+batching", "ours-2w", "mlserver", "mlserver+batching", "floor-grpc")
REST_SERVERS = tuple(s for s in ALL_SERVERS if s != "floor-grpc")
IN_PROCESS = ("ort-default", "ort-ours")  # MobileNetV2 c1 only: goal 5's reference
GRPC_LOADGENS = ("h2load", "grpc.aio")


@dataclass
class PeerSettings:
    work: Path
    workloads: list[str]
    levels: list[int]
    rounds: int
    duration: int  # seconds per measurement (wrk counts whole seconds)
    warmup: int  # seconds of the one unmeasured warm-up pass per server, workload and protocol (0: none)
    epochs: int
    servers: list[str]
    ours_args: list[str] = field(default_factory=list)  # more `python -m serving` flags for every ours-* server
    start_timeout: float = 600.0
    grpc_loadgen: str = "h2load"  # or "grpc.aio" (serving.bench.loadgen); h2load falls back to it when missing

    def estimate_s(self) -> float:
        rest = sum(s in REST_SERVERS for s in self.servers)
        grpc = sum(s in GRPC_SERVERS for s in self.servers)
        points = len(self.workloads) * (rest + grpc)
        return points * (len(self.levels) * self.rounds * (self.duration + 0.3) + self.warmup)


class PeerBench:
    def __init__(self, settings: PeerSettings) -> None:
        self.s = settings
        self.rows: list[PeerRow] = []
        self.options: dict = {}
        self.notes: list[str] = []
        self._t0 = time.perf_counter()
        self._frames: dict[tuple[str, str], Path] = {}
        self.grpc_loadgen = settings.grpc_loadgen

    def say(self, text: str) -> None:
        print(f"[bench-peers {time.perf_counter() - self._t0:6.0f}s] {text}", flush=True)

    # ------------------------------------------------------------------------------------------ start
    def _start(self, stack: ExitStack, workloads: list[Workload]) -> list[servers.Launched]:
        wanted, work, opts = set(self.s.servers), self.s.work, self.options
        started: list[servers.Launched] = []

        def keep(server: servers.Launched) -> servers.Launched:
            stack.callback(server.stop)
            started.append(server)
            return server

        for name, batching, workers in (("ours", False, 1), ("ours+batching", True, 1), ("ours-2w", False, 2)):
            if name in wanted:
                keep(servers.ours(name, workloads, work, batching, workers, self.s.ours_args))
        if "kserve" in wanted:
            keep(servers.kserve(workloads, work, opts))
        if wanted & {"mlserver", "mlserver+batching"}:
            for view in servers.mlserver(workloads, work, opts):
                if view.name in wanted or not view.shares_process:
                    keep(view)
        for kind in ("threading", "asyncio", "grpc"):
            if f"floor-{kind}" in wanted:
                keep(servers.floor(kind, workloads, work, opts))
        self.say(f"started {', '.join(s.name for s in started)}; waiting for every model to answer")
        servers.wait_ready(started, workloads, self.s.start_timeout, self.say)
        return [s for s in started if s.name in wanted]

    # ------------------------------------------------------------------------------------------ measure
    def _script(self, server: servers.Launched, w: Workload) -> Path:
        kind = "v2" if server.v2 else "v1"
        body, script = self.s.work / "bodies" / f"{w.name}.{kind}.json", self.s.work / "bodies" / f"{w.name}.{kind}.lua"
        if not script.exists():
            body.parent.mkdir(parents=True, exist_ok=True)
            body.write_bytes(server.body(w))
            script.write_text(wrk.lua_script(body.resolve()), encoding="utf-8")
        return script

    def _rest(self, rnd: int, server: servers.Launched, w: Workload, level: int, seconds: int = 0) -> PeerRow:
        url = f"http://{servers.LOOPBACK}:{server.rest_port}{server.rest_path(w)}"
        script = self._script(server, w)
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        res = wrk.run(url, script, level, seconds or self.s.duration)
        server_cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        return PeerRow(rnd, w.name, "rest", server.name, level, res.throughput, res.p50_us, res.p90_us, res.p99_us,
                       res.mean_us, res.requests, res.errors, res.seconds, res.cpu_s / res.seconds, server_cpu,
                       loadgen="wrk")

    def _frame(self, server: servers.Launched, w: Workload) -> Path:
        """The h2load data file: the server's gRPC request for ``w`` as one length-prefixed message."""
        model = w.name + server.model_suffix
        key = (model, server.grpc_method)
        if key not in self._frames:
            kind = "v2" if server.v2_grpc else "v1"
            path = self.s.work / "bodies" / f"{model}.{kind}.grpcframe"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(h2load.frame(server.grpc_request(w)))
            self._frames[key] = path
        return self._frames[key]

    def _grpc(self, rnd: int, server: servers.Launched, w: Workload, level: int, seconds: int = 0) -> PeerRow:
        if self.grpc_loadgen != "h2load":
            return self._grpc_aio(rnd, server, w, level, seconds)
        duration = seconds or self.s.duration
        size, error = servers.grpc_check(server, w)  # h2load sees HTTP only: one real call first
        if error:
            nan = math.nan
            return PeerRow(rnd, w.name, "grpc", server.name, level, 0.0, nan, nan, nan, nan, 0, 1, float(duration),
                           0.0, 0.0, f"grpcio call before the point failed, not measured: {error}"[:200], "h2load")
        url = f"http://{servers.LOOPBACK}:{server.grpc_port}{server.grpc_method}"
        data = self._frame(server, w)
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        res = h2load.run(url, data, level, duration, answer_bytes=len(h2load.frame(b"")) + size)
        server_cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        return PeerRow(rnd, w.name, "grpc", server.name, level, res.throughput, res.p50_us, res.p90_us, res.p99_us,
                       res.mean_us, res.requests, res.errors, res.seconds, res.cpu_s / res.seconds if res.seconds
                       else 0.0, server_cpu, res.note[:200], "h2load")

    def _grpc_aio(self, rnd: int, server: servers.Launched, w: Workload, level: int, seconds: int = 0) -> PeerRow:
        """The Python fallback: the ``grpc.aio`` closed loop in this process (its CPU: this process's)."""
        got: list[loadgen.Window] = []
        plan = loadgen.Plan(warmup=0.0, duration=float(seconds or self.s.duration), trials=1)
        before, cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), server.cpu_seconds(), time.monotonic()
        loadgen.grpc_sweep(server.grpc_port, server.grpc_request(w), [level], plan, lambda _c, win: got.append(win),
                           method=server.grpc_method)
        elapsed, after = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = (server.cpu_seconds() - cpu0) / elapsed
        own = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / elapsed
        return _window_row(rnd, w.name, "grpc", server.name, level, got[0], own, server_cpu, "grpc.aio")

    def _in_process(self, rnd: int, w: Workload) -> list[PeerRow]:
        """Goal 5's reference: the same model in this process, ORT's default threads and our options, c1."""
        import onnxruntime as ort

        from .runtimes.ortsession import session_options

        out = []
        for name, opts in (("ort-default", ort.SessionOptions()), ("ort-ours", session_options(self.options))):
            sess = ort.InferenceSession(str(w.onnx), sess_options=opts, providers=["CPUExecutionProvider"])
            feed = {w.input_name: w.x}
            got: list[loadgen.Window] = []
            plan = loadgen.Plan(warmup=float(self.s.warmup), duration=float(self.s.duration), trials=1)  # new session
            loadgen.inprocess_sweep(lambda s=sess, f=feed: s.run(None, f), [1], plan,
                                    lambda _c, win, g=got: g.append(win))
            out.append(_window_row(rnd, w.name, "in-process", name, 1, got[0], 0.0, 0.0, "in-process"))
        return out

    def _points(self, server: servers.Launched) -> list:
        """The measure functions that apply to ``server`` (REST, gRPC or both)."""
        out = []
        if server.rest_port is not None and server.name in REST_SERVERS:
            out.append(self._rest)
        if server.grpc_port is not None and server.name in GRPC_SERVERS:
            out.append(self._grpc)
        return out

    def _warm(self, started: list[servers.Launched], workloads: list[Workload]) -> None:
        """One unmeasured pass per server, workload and protocol at the highest level before round 1: every
        server is past its first-request costs (lazy init, allocator growth, batch threads) when measured."""
        if not self.s.warmup:
            return
        self.say(f"warm-up: {self.s.warmup} s per server, workload and protocol at concurrency {max(self.s.levels)}")
        for w in workloads:
            for server in started:
                for point in self._points(server):
                    point(0, server, w, max(self.s.levels), self.s.warmup)

    def _record(self, row: PeerRow) -> None:
        self.rows.append(row)
        self.say(f"round {row.round} {row.workload:<9} {row.protocol:<10} c{row.concurrency:<3} {row.server:<18} "
                 f"{row.throughput:8.1f} req/s  p50 {row.p50_us / 1e3:8.2f} ms  p90 {row.p90_us / 1e3:8.2f} ms  "
                 f"p99 {row.p99_us / 1e3:8.2f} ms  errors {row.errors}  cpu: server {row.server_cpu:.2f}, "
                 f"{row.loadgen or 'loadgen'} {row.loadgen_cpu:.2f} cores" + (f"  [{row.first_error}]" if row.first_error else ""))

    def _choose_grpc_loadgen(self) -> None:
        if self.grpc_loadgen == "h2load" and not h2load.available():
            self.grpc_loadgen = "grpc.aio"
            self.say("warning: h2load is not installed (apt-get install -y nghttp2-client): the gRPC points use the "
                     "Python grpc.aio loop, which shares the servers' cores and caps what they can show")
        if any(s in GRPC_SERVERS for s in self.s.servers):
            self.say(f"gRPC load generator: {self.grpc_loadgen}")

    def run(self) -> list[PeerRow]:
        self._choose_grpc_loadgen()
        self.say(f"exporting {', '.join(self.s.workloads)} under {self.s.work}")
        workloads = prepare(self.s.work, self.s.workloads, self.s.epochs, self.say)
        self.options = servers.ort_options()
        self.say(f"ORT session options (ours, for every runtime): {self.options}")
        for w in workloads:
            self.say(f"{w.name}: input {w.input_name} {list(w.x.shape)}; V1 body {len(w.v1_body()) / 1e3:.1f} kB, "
                     f"V2 body {len(w.v2_body()) / 1e3:.1f} kB, gRPC request {len(w.grpc_request()) / 1e3:.1f} kB")
        with ExitStack() as stack:
            started = self._start(stack, workloads)
            self.say(f"measuring: {self.s.rounds} rounds, levels {self.s.levels}, {self.s.duration} s per point; "
                     f"about {self.s.estimate_s() / 60:.1f} min")
            self._warm(started, workloads)
            for rnd in range(1, self.s.rounds + 1):
                for w in workloads:
                    for level in self.s.levels:
                        for server in started:
                            for point in self._points(server):
                                self._record(point(rnd, server, w, level))
                    if w.name == "mobilenet":
                        for row in self._in_process(rnd, w):
                            self._record(row)
        return self.rows


def _window_row(rnd: int, workload: str, protocol: str, server: str, level: int, win: loadgen.Window,
                loadgen_cpu: float, server_cpu: float, generator: str) -> PeerRow:
    import numpy as np

    lat = win.latencies * 1e6
    p50, p90, p99 = (float(v) for v in np.percentile(lat, [50, 90, 99])) if lat.size else (float("nan"),) * 3
    return PeerRow(rnd, workload, protocol, server, level, win.throughput, p50, p90, p99,
                   float(lat.mean()) if lat.size else float("nan"), int(lat.size), win.errors, win.seconds,
                   loadgen_cpu, server_cpu, win.first_error[:200], generator)
