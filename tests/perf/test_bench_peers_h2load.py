"""``make bench-peers``'s gRPC load generator: the gRPC frame h2load posts, its log file and summary parsed
on known text, and real h2load runs against a real ``python -m serving`` whose Prometheus request counter
must agree with h2load's count of successful calls; the harness's gRPC point (grpcio check, then h2load)
and its ``grpc.aio`` fallback on the same server."""
from __future__ import annotations

import shutil
import time
import urllib.request

import numpy as np
import pytest

from serving.bench.peers import h2load
from tests.conftest import free_port
from tests.support.server import start_server

from .conftest import write_onnx

SUMMARY = """\
starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration.
Application protocol: h2c

finished in 1.00s, 4.00 req/s, 1.26KB/s
requests: 4 total, 6 started, 4 done, 2 succeeded, 2 failed, 1 errored, 0 timeout
status codes: 2 2xx, 0 3xx, 0 4xx, 1 5xx
traffic: 1.26KB (1290) total, 96B (96) headers (space savings 90.00%), 202B (202) data
                     min         max         mean         sd        +/- sd
time for request:      162us     32.08ms       785us       964us    97.42%
"""
LOG = ("1796206122542723\t200\t1000\n"
       "1796206122543453\t200\t3000\n"
       "1796206122543587\t503\t500\n"
       "1796206122543600\t-1\t9000\textra-column\n"
       "\n")


def test_a_grpc_frame_is_flag_zero_then_the_big_endian_length_then_the_message():
    assert h2load.frame(b"") == b"\x00\x00\x00\x00\x00"
    assert h2load.frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    big = bytes(range(256)) * 300  # 76,800 bytes: every length byte matters
    framed = h2load.frame(big)
    assert framed[:5] == b"\x00" + (76_800).to_bytes(4, "big") == b"\x00\x00\x01\x2c\x00" and framed[5:] == big


def test_the_frame_of_a_workload_request_is_what_grpcio_sends(tmp_path):
    from clients.messages import PredictRequest
    from serving.bench.peers.workloads import Workload

    w = Workload("digits", tmp_path / "model.onnx", "x", np.round(np.random.default_rng(0).random((1, 64)), 2))
    framed = h2load.frame(w.grpc_request())
    assert int.from_bytes(framed[1:5], "big") == len(framed) - 5
    assert PredictRequest.FromString(framed[5:]).model_spec.name == "digits"


def test_clients_get_one_connection_each_up_to_the_cap():
    assert h2load.split(1) == (1, 1) and h2load.split(32) == (32, 1) and h2load.split(64) == (64, 1)
    assert h2load.split(128) == (64, 2) and h2load.split(96) == (48, 2) and h2load.split(200) == (50, 4)
    for clients in (1, 7, 16, 32, 65, 100, 128, 256):
        connections, streams = h2load.split(clients)
        assert connections * streams == clients and connections <= h2load.CONNECTION_CAP
    with pytest.raises(ValueError):
        h2load.split(0)


def test_the_command_posts_the_frame_with_grpc_headers_for_a_duration_or_a_count(tmp_path, monkeypatch):
    monkeypatch.setattr(h2load.shutil, "which", lambda name: f"/usr/bin/{name}")
    cmd = h2load.command("http://h:1/s/M", tmp_path / "f", 32, 2, tmp_path / "log", warmup_s=0.5)
    assert cmd[0] == "/usr/bin/h2load" and cmd[-1] == "http://h:1/s/M"
    assert {"-t1", "-c32", "-m1", f"--log-file={tmp_path / 'log'}", "--warm-up-time=500ms"} <= set(cmd)
    assert cmd[cmd.index("-d") + 1] == str(tmp_path / "f") and cmd[cmd.index("-D") + 1] == "2000ms"
    headers = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-H"]
    assert headers == ["content-type: application/grpc", "te: trailers"]
    counted = h2load.command("http://h:1/s/M", tmp_path / "f", 128, 2, tmp_path / "log", requests=500)
    assert "-n500" in counted and "-D" not in counted and {"-c64", "-m2"} <= set(counted)


def test_the_log_file_gives_each_answered_call_its_latency_and_the_failed_streams_apart():
    stats = h2load.parse_log(LOG)
    assert list(stats.durations_us) == [1000.0, 3000.0, 500.0]  # the -1 row has no answer: no latency
    assert (stats.ok, stats.bad_status, stats.failed) == (2, 1, 1)
    assert h2load.parse_log("").durations_us.size == 0


def test_the_summary_and_the_log_make_one_result_with_every_error_counted():
    res = h2load.parse(SUMMARY, LOG, seconds=1.0, cpu_s=0.05, answer_bytes=101)
    assert (res.requests, res.started, res.succeeded, res.errors) == (4, 6, 2, 2)  # 503 + the reset stream
    assert res.seconds == pytest.approx(1.0) and res.throughput == pytest.approx(2.0) and res.cpu_s == 0.05
    lat = np.array([1000.0, 3000.0, 500.0])
    assert (res.p50_us, res.p90_us, res.p99_us) == tuple(float(v) for v in np.percentile(lat, [50, 90, 99]))
    assert res.mean_us == pytest.approx(lat.mean()) and res.note == ""  # 202 data bytes = 2 answers of 101


def test_http_200_answers_without_a_grpc_message_are_errors():
    """A failed gRPC call is a trailers-only HTTP 200: its data bytes are missing from the traffic line."""
    stdout = SUMMARY.replace("2 succeeded, 2 failed, 1 errored", "4 succeeded, 0 failed, 0 errored").replace(
        "(202) data", "(101) data").replace("4 done", "4 done")
    log = "".join(f"179620612254{i}\t200\t100\n" for i in range(4))
    res = h2load.parse(stdout, log, 1.0, answer_bytes=101)
    assert (res.succeeded, res.errors) == (1, 3) and "3 of 4 HTTP 200 answers carried no gRPC message" in res.note
    small_differences = h2load.parse(stdout.replace("(101) data", "(380) data"), log, 1.0, answer_bytes=101)
    assert (small_differences.succeeded, small_differences.errors) == (4, 0)  # 94% of 4 × 101: within tolerance


def test_a_run_that_finished_no_call_is_noted_and_bad_output_is_an_error():
    stdout = ("finished in 1.01s, 0.00 req/s, 0B/s\n"
              "requests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout\n")
    res = h2load.parse(stdout, "", 1.0)
    assert res.requests == 0 and res.throughput == 0 and "finished no call" in res.note and np.isnan(res.p50_us)
    with pytest.raises(h2load.H2loadError, match="summary"):
        h2load.parse("starting benchmark...\n", "", 1.0)
    with pytest.raises(h2load.H2loadError, match="log-file"):
        h2load.parse(SUMMARY, "", 1.0)


# ---------------------------------------------------------------------------------------------- live
needs_h2load = pytest.mark.skipif(shutil.which("h2load") is None,
                                  reason="h2load is not installed (apt-get install -y nghttp2-client)")
OK_COUNT = ':tensorflow:serving:request_count{model_name="double",status="OK"}'


@pytest.fixture(scope="module")
def double_server(tmp_path_factory):
    """``python -m serving`` serving y = 2x (a tiny ONNX graph, ORT backend) with Prometheus on."""
    def build(helper, tp):
        x = helper.make_tensor_value_info("x", tp.FLOAT, ["batch", 2])
        y = helper.make_tensor_value_info("y", tp.FLOAT, ["batch", 2])
        return helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double", [x], [y])

    root = tmp_path_factory.mktemp("h2load-served")
    write_onnx(root / "double" / "1", build)
    (root / "models.config").write_text('model_config_list { config { name: "double" base_path: "%s" '
                                        'model_platform: "onnxruntime" } }\n' % (root / "double"))
    (root / "monitoring.config").write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
    args = ["--host", "127.0.0.1", "--port", str(free_port()), "--rest_api_port", str(free_port()),
            f"--model_config_file={root / 'models.config'}", f"--monitoring_config_file={root / 'monitoring.config'}"]
    with start_server(args, ready_timeout=180) as server:
        server.root = root
        yield server


def _ok_count(server, at_least: int = 0) -> int:
    """The server's count of OK predicts; with ``at_least``, polled (5 s at most) until it gets there: the
    server may count a call just after h2load, which already has the answer, has exited."""
    deadline = time.monotonic() + 5
    while True:
        with urllib.request.urlopen(server.rest_url + "/monitoring/prometheus/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        count = next((int(float(line.split()[-1])) for line in lines if line.startswith(OK_COUNT + " ")), 0)
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.05)  # poll interval


def _workload(server, name: str = "double"):
    from serving.bench.peers.workloads import Workload

    return Workload(name, server.root / "double" / "1" / "model.onnx", "x", np.array([[1.0, 2.5]]))


def _launched(server):
    from serving.bench.peers.servers import Launched

    return Launched("ours", server.process, server.log_path, server.rest_port, server.grpc_port)


@needs_h2load
def test_h2load_successes_are_what_the_server_counted(double_server, tmp_path):
    from serving.bench.loadgen import PREDICT
    from serving.bench.peers.servers import grpc_check

    size, error = grpc_check(_launched(double_server), _workload(double_server))
    assert error == "" and size > 0
    data = tmp_path / "double.grpcframe"
    data.write_bytes(h2load.frame(_workload(double_server).grpc_request()))
    url = f"http://127.0.0.1:{double_server.grpc_port}{PREDICT}"
    before = _ok_count(double_server)
    counted = h2load.run(url, data, 4, 0, answer_bytes=size + 5, requests=200)
    assert (counted.succeeded, counted.errors, counted.requests) == (200, 0, 200)
    assert _ok_count(double_server, before + 200) - before == 200  # every call h2load saw succeed, no other
    assert 0 < counted.p50_us <= counted.p90_us <= counted.p99_us and counted.cpu_s > 0

    before = _ok_count(double_server)
    timed = h2load.run(url, data, 2, 1, answer_bytes=size + 5)
    after = _ok_count(double_server, before + timed.started)
    assert timed.succeeded > 0 and timed.errors == 0 and timed.note == ""
    # the calls in flight when the window closes are answered but dropped by h2load: at most one per stream
    assert timed.succeeded <= after - before <= timed.started <= timed.succeeded + 2


@needs_h2load
def test_failed_grpc_calls_are_errors_although_h2load_sees_http_200(double_server, tmp_path):
    from serving.bench.loadgen import PREDICT
    from serving.bench.peers.servers import grpc_check

    missing = _workload(double_server, "nope")
    size, error = grpc_check(_launched(double_server), missing)
    assert size == 0 and error.startswith("NOT_FOUND")
    data = tmp_path / "nope.grpcframe"
    data.write_bytes(h2load.frame(missing.grpc_request()))
    ok_size = grpc_check(_launched(double_server), _workload(double_server))[0]
    res = h2load.run(f"http://127.0.0.1:{double_server.grpc_port}{PREDICT}", data, 1, 0,
                     answer_bytes=ok_size + 5, requests=20)
    assert res.requests == 20 and res.errors == 20 and res.throughput == 0 and "no gRPC message" in res.note


@needs_h2load
def test_the_harness_grpc_point_uses_h2load_checks_first_and_falls_back_to_grpc_aio(double_server, tmp_path,
                                                                                   monkeypatch):
    from serving.bench.peers.run import PeerBench, PeerSettings

    def bench(loadgen: str) -> PeerBench:
        return PeerBench(PeerSettings(tmp_path, ["digits"], [2], 1, 1, 0, 1, ["ours"], grpc_loadgen=loadgen))

    server, w = _launched(double_server), _workload(double_server)
    row = bench("h2load")._grpc(1, server, w, 2)
    assert (row.loadgen, row.protocol, row.errors, row.first_error) == ("h2load", "grpc", 0, "")
    assert row.throughput > 0 and row.requests > 0 and 0 < row.loadgen_cpu < 1 and row.server_cpu > 0
    assert (tmp_path / "bodies" / "double.v1.grpcframe").read_bytes() == h2load.frame(w.grpc_request())

    failed = bench("h2load")._grpc(1, server, _workload(double_server, "nope"), 2)
    assert (failed.requests, failed.errors, failed.throughput) == (0, 1, 0.0)
    assert failed.first_error.startswith("grpcio call before the point failed, not measured: NOT_FOUND")

    monkeypatch.setattr(h2load.shutil, "which", lambda name: None)
    said: list[str] = []
    fallback = bench("h2load")
    fallback.say = said.append
    fallback._choose_grpc_loadgen()
    assert fallback.grpc_loadgen == "grpc.aio" and any(line.startswith("warning: h2load") for line in said)
    aio = fallback._grpc(1, server, w, 2)
    assert aio.loadgen == "grpc.aio" and aio.throughput > 0 and aio.errors == 0


def test_the_report_names_each_protocols_load_generator_and_its_cpu(tmp_path):
    from serving.bench.peers import report
    from serving.bench.peers.results import PeerRow, read_csv, write_csv

    def row(protocol: str, loadgen: str, cpu: float) -> PeerRow:
        return PeerRow(1, "digits", protocol, "ours", 32, 100.0, 1e3, 2e3, 3e3, 1.1e3, 200, 0, 2.0, cpu, 0.9,
                       loadgen=loadgen)

    rows = [row("rest", "wrk", 0.1), row("grpc", "h2load", 0.05), row("grpc", "h2load", 0.15)]
    text = report.load_text(rows)
    assert "HTTP load: `wrk`" in text and "gRPC load: `h2load` (nghttp2's" in text and "HTTP-level" in text
    assert "its CPU 0.10 cores median, 0.15 at most over 2 points." in text
    assert report.load_text(rows, brief=True).endswith("gRPC load: `h2load`; its CPU 0.10 cores median, 0.15 at "
                                                       "most over 2 points.")
    assert "`grpc.aio` closed loop" in report.load_text([row("grpc", "grpc.aio", 0.9)])

    csv_path = write_csv(rows, tmp_path / "peers.csv")  # a CSV from before the loadgen column still reads
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    old = read_csv(csv_path)
    assert [r.loadgen for r in old] == ["", "", ""] and "not recorded" in report.load_text(old)
