"""The HTTP load generator of ``make bench-peers``: ``wrk`` (C, epoll, one thread), closed loop with one
keep-alive connection per client, every request the same POST body.

A Lua script loads the body from a file and, in wrk's ``done`` hook, prints one machine-readable line
(``WRK_RESULT {json}``) with the counts, the error classes and the latency percentiles in microseconds;
``parse`` reads it back. The load generator's own CPU (user + system seconds of the wrk process) comes from
the kernel's accounting of the reaped child, so it is reported next to what it measured.
"""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "WRK_RESULT "
LUA = """\
-- written by serving.bench.peers.wrk: POST the body file, print one JSON result line at the end
wrk.method = "POST"
wrk.headers["Content-Type"] = "%(content_type)s"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    requests: int  # completed (any status)
    seconds: float
    errors: int  # connect + read + write + timeout + non-2xx/3xx status
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    cpu_s: float = 0.0  # wrk's own user + system CPU seconds

    @property
    def throughput(self) -> float:
        """Successful requests per second (a non-2xx answer is an error, not throughput)."""
        return max(self.requests - self.status_errors, 0) / self.seconds if self.seconds else 0.0

    status_errors: int = 0


def lua_script(body_file: Path, content_type: str = "application/json") -> str:
    return LUA % {"body": str(body_file).replace("\\", "\\\\").replace('"', '\\"'), "content_type": content_type,
                  "marker": MARKER}


def parse(stdout: str, cpu_s: float = 0.0) -> WrkResult:
    """The ``WRK_RESULT`` line of a wrk run's output."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            d = json.loads(line[len(MARKER):])
            errors = d["connect"] + d["read"] + d["write"] + d["timeout"] + d["status"]
            return WrkResult(d["requests"], d["duration_us"] / 1e6, errors, float(d["p50_us"]), float(d["p90_us"]),
                             float(d["p99_us"]), float(d["mean_us"]), cpu_s, status_errors=d["status"])
    raise WrkError(f"wrk printed no {MARKER.strip()} line:\n{stdout[-2000:]}")


def binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk; `make bench-peers` tries it)")
    return path


def run(url: str, script: Path, connections: int, seconds: int, timeout_s: int = 30) -> WrkResult:
    """One closed-loop wrk run: ``connections`` keep-alive clients for ``seconds`` (wrk counts whole seconds)."""
    cmd = [binary(), "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode} after {time.monotonic() - started:.1f} s: {proc.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse(proc.stdout, cpu)
