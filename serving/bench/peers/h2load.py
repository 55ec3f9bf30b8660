"""The gRPC load generator of ``make bench-peers``: ``h2load`` (nghttp2's C HTTP/2 load generator, one
thread), closed loop, every call the same unary request.

A gRPC unary call is an HTTP/2 POST to ``/<service>/<method>`` with ``content-type: application/grpc`` and
``te: trailers`` whose body is one length-prefixed message (``frame``: a 0 byte for "not compressed", the
length as 4 bytes big-endian, the serialized request). h2load posts that file on ``connections`` HTTP/2
connections with ``streams`` calls in flight on each (one connection per client up to ``CONNECTION_CAP``,
as wrk opens one connection per client), for ``-D`` seconds.

h2load prints only min/max/mean, so every call's latency comes from its ``--log-file`` (one tab-separated
row per finished stream: start time in µs since the epoch, HTTP status or -1 for a failed stream, µs until
the end of the response); ``parse_log`` reads it and ``parse`` adds the counts of h2load's summary.

h2load sees HTTP only: a gRPC call that fails is an HTTP 200 whose ``grpc-status`` is in the trailers, which
h2load does not read. So errors here are HTTP-level (non-2xx, reset or timed-out streams), the harness makes
one real grpcio call before every point (``servers.grpc_check``), and ``parse`` compares the response bytes
h2load received with ``succeeded`` × the size of that call's answer: a failed gRPC call carries no message,
so when a tenth or more of the answers' bytes are missing, the missing answers are counted as errors.

The load generator's own CPU (user + system seconds of the h2load process) comes from the kernel's
accounting of the reaped child, as for wrk.
"""
from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONNECTION_CAP = 64  # up to this many clients, one HTTP/2 connection each (streams per connection beyond it)
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
MISSING_BYTES_TOLERANCE = 0.1  # answers may differ a little in size; a failed call's answer has no message at all

_REQUESTS = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", re.M)
_FINISHED = re.compile(r"^finished in \S+, ([\d.]+) req/s", re.M)
_TRAFFIC = re.compile(r"^traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?\((\d+)\) data", re.M)


class H2loadError(RuntimeError):
    """h2load is missing, failed, or printed no summary."""


def frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message: uncompressed flag 0, 4-byte big-endian length, the bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def split(clients: int, cap: int = CONNECTION_CAP) -> tuple[int, int]:
    """(connections, streams per connection) for ``clients`` calls in flight: one connection per client up to
    ``cap``; beyond it the fewest streams per connection whose product is exactly ``clients``."""
    if clients < 1:
        raise ValueError(f"clients must be >= 1, got {clients}")
    streams = -(-clients // cap)
    while clients % streams:
        streams += 1
    return clients // streams, streams


@dataclass(frozen=True)
class LogStats:
    """The rows of one ``--log-file``: per-call durations (µs) of the answered calls, and the counts."""

    durations_us: np.ndarray  # every stream that got an answer (any HTTP status), as wrk's percentiles do
    ok: int  # 2xx answers
    bad_status: int  # answers with another status
    failed: int  # status -1: the stream failed (reset, connection lost) without an answer


def parse_log(text: str) -> LogStats:
    """``--log-file`` rows (``start_us\\tstatus\\tduration_us``, maybe more columns later)."""
    durations, ok, bad, failed = [], 0, 0, 0
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) < 3 or not cols[0].strip():
            continue
        status, duration = int(cols[1]), int(cols[2])
        if status < 0:
            failed += 1
            continue
        durations.append(duration)
        if 200 <= status < 300:
            ok += 1
        else:
            bad += 1
    return LogStats(np.asarray(durations, dtype=np.float64), ok, bad, failed)


@dataclass(frozen=True)
class H2Result:
    requests: int  # calls answered (any status) in the measured window
    seconds: float
    errors: int  # non-2xx + failed/timed-out streams + answers missing from the data bytes (see module doc)
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    cpu_s: float = 0.0  # h2load's own user + system CPU seconds
    succeeded: int = 0  # 2xx answers (h2load's "succeeded"), less the answers with no message
    started: int = 0  # calls started in the window (the ones still in flight at its end are dropped)
    note: str = ""  # why a point looks wrong (no call answered, answers without a message)

    @property
    def throughput(self) -> float:
        """Successful calls per second."""
        return self.succeeded / self.seconds if self.seconds else 0.0


def parse(stdout: str, log_text: str, seconds: float, cpu_s: float = 0.0,
          answer_bytes: int | None = None) -> H2Result:
    """h2load's summary plus its log file. ``seconds``: the ``-D`` window (used when h2load's req/s cannot give
    the measured one); ``answer_bytes``: the size of one answer's gRPC frame, to find answers with no message."""
    counts = _REQUESTS.search(stdout)
    if counts is None:
        raise H2loadError(f"h2load printed no 'requests:' summary:\n{stdout[-2000:]}")
    _total, started, done, succeeded, failed, errored, timeout = (int(v) for v in counts.groups())
    rate = _FINISHED.search(stdout)
    reqps = float(rate.group(1)) if rate else 0.0
    measured = done / reqps if reqps > 0 and done else seconds  # h2load's req/s is done / main duration
    log = parse_log(log_text)
    notes = []
    ok = min(succeeded, log.ok) if log_text.strip() else succeeded
    if done and not log.durations_us.size and not log.failed:
        raise H2loadError(f"h2load finished {done} calls but its --log-file has no rows")
    # each is a lower bound on the failed calls (h2load's "failed" already holds the others): no double count
    errors = max(failed, done - succeeded, errored, timeout, log.bad_status + log.failed)
    traffic = _TRAFFIC.search(stdout)
    if answer_bytes and traffic and ok:
        data = int(traffic.group(3))
        if data < (1 - MISSING_BYTES_TOLERANCE) * ok * answer_bytes:
            missing = ok - data // answer_bytes
            notes.append(f"{missing} of {ok} HTTP 200 answers carried no gRPC message ({data} data bytes, "
                         f"{answer_bytes} per answer): failed gRPC calls")
            errors += missing
            ok -= missing
    if not done:
        notes.append(f"h2load finished no call in {seconds:g} s ({started} started): connection refused, or no "
                     "HTTP/2 answer")
    lat = log.durations_us
    p50, p90, p99 = (float(v) for v in np.percentile(lat, [50, 90, 99])) if lat.size else (float("nan"),) * 3
    return H2Result(done, measured, errors, p50, p90, p99, float(lat.mean()) if lat.size else float("nan"), cpu_s,
                    ok, started, "; ".join(notes))


def binary() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise H2loadError("h2load is not installed (Debian/Ubuntu: apt-get install -y nghttp2-client; "
                          "`make bench-peers` tries it)")
    return path


def available() -> bool:
    return shutil.which("h2load") is not None


def command(url: str, data_file: Path, clients: int, seconds: float, log_file: Path, warmup_s: float = 0.0,
            timeout_s: int = 30, requests: int | None = None) -> list[str]:
    """The h2load command line: ``-n requests`` instead of ``-D seconds`` when ``requests`` is given."""
    connections, streams = split(clients)
    cmd = [binary(), "-t1", f"-c{connections}", f"-m{streams}", "-d", str(data_file),
           *(arg for header in GRPC_HEADERS for arg in ("-H", header)), f"-N{timeout_s}s", f"--log-file={log_file}"]
    if requests is not None:
        cmd.append(f"-n{requests}")
    else:
        cmd += ["-D", f"{int(seconds * 1000)}ms"]
        if warmup_s:
            cmd.append(f"--warm-up-time={int(warmup_s * 1000)}ms")
    return [*cmd, url]


def run(url: str, data_file: Path, clients: int, seconds: float, warmup_s: float = 0.0, timeout_s: int = 30,
        answer_bytes: int | None = None, requests: int | None = None) -> H2Result:
    """One closed-loop h2load run: ``clients`` calls in flight for ``seconds`` (after ``warmup_s`` unmeasured),
    or exactly ``requests`` calls. ``data_file`` holds the framed request (``frame``)."""
    log_file = data_file.with_name(f"{data_file.name}.h2load.log")
    log_file.unlink(missing_ok=True)  # h2load appends to it
    cmd = command(url, data_file, clients, seconds, log_file, warmup_s, timeout_s, requests)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    limit = (seconds + warmup_s if requests is None else 0) + timeout_s + 60
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as exc:
        raise H2loadError(f"h2load did not finish in {limit:.0f} s: {' '.join(cmd)}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise H2loadError(f"h2load exited {proc.returncode} after {time.monotonic() - started:.1f} s: "
                          f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
    return parse(proc.stdout, log_text, seconds if requests is None else time.monotonic() - started, cpu,
                 answer_bytes)
