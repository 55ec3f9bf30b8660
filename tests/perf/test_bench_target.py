"""The target mode (``python -m serving.bench --target``, ``make perf``) against a real local server serving
TF Serving's half_plus_two fixture with Prometheus enabled: perf_analyzer lines, CSV, plot, the server-side
breakdown, and clear errors for a wrong model or input. Short windows: this checks the tool, not the speed."""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from serving.bench import metrics
from serving.bench.__main__ import main
from tests.conftest import TESTDATA, free_port
from tests.support.server import start_server

pytestmark = pytest.mark.xdist_group("perf-target")
FAST = ["--duration", "0.5", "--warmup", "0.1", "--trials", "1"]
LINE = re.compile(r"^Concurrency: (\d+), throughput: ([\d.]+) infer/sec, latency p50 (\d+) usec, p90 (\d+) usec, "
                  r"p99 (\d+) usec, avg (\d+) usec$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("target")
    monitoring = work / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    args = ["--port", str(free_port()), "--rest_api_port", str(free_port()), "--model_name", "half_plus_two",
            "--model_base_path", str(TESTDATA / "saved_model_half_plus_two_cpu"),
            f"--monitoring_config_file={monitoring}"]
    with start_server(args, ready_timeout=180) as running:
        yield running


@pytest.fixture
def x_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.array([[1.0], [2.0], [5.0]], dtype=np.float64))  # float64 on purpose: cast to DT_FLOAT
    return path


def read(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_rest_target_prints_perf_analyzer_lines_and_writes_csv_and_plot(server, x_npy, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--target", f"127.0.0.1:{server.rest_port}", "--protocol", "rest", "--model", "half_plus_two",
               "--input", str(x_npy), "--concurrency", "1,2", "--out", str(out), *FAST])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    lines = [m for m in map(LINE.match, printed.splitlines()) if m]
    assert [int(m.group(1)) for m in lines] == [1, 2]
    rows = read(out / "perf.csv")
    assert [(r["protocol"], r["model"], r["concurrency"], r["batch_size"], r["errors"]) for r in rows] == [
        ("rest", "half_plus_two", "1", "3", "0"), ("rest", "half_plus_two", "2", "3", "0")]
    for r in rows:
        assert int(r["requests"]) > 0
        assert float(r["infer_per_sec"]) == pytest.approx(3 * float(r["requests_per_sec"]), rel=1e-3)
        assert 0 < float(r["p50_us"]) <= float(r["p90_us"]) <= float(r["p99_us"])
        # the server saw at least the measured requests (plus the warm-up), and spent less time than the client
        assert int(r["server_requests"]) >= int(r["requests"])
        assert 0 < float(r["server_request_us"]) < float(r["p99_us"])
    assert printed.count("  Server: inference count") == 2
    assert (out / "perf.png").stat().st_size > 10_000


def test_grpc_target_with_a_version_and_a_batch_size(server, x_npy, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--target", f"127.0.0.1:{server.grpc_port}", "--protocol", "grpc", "--model", "half_plus_two",
               "--version", "123", "--input", str(x_npy), "--batch-size", "8", "--concurrency", "2",
               "--metrics-url", f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics",
               "--out", str(out), *FAST])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    (row,) = read(out / "perf.csv")
    assert (row["protocol"], row["batch_size"], row["errors"]) == ("grpc", "8", "0")
    assert float(row["infer_per_sec"]) == pytest.approx(8 * float(row["requests_per_sec"]), rel=1e-3)
    assert row["server_request_us"] != ""
    assert "inputs x float32[8, 1]" in printed  # rows cycled to the batch size, cast to the signature's dtype


@pytest.mark.parametrize("change, message", [
    (["--model", "no_such_model"], "no_such_model"),
    (["--label", "stable"], "stable"),
])
def test_a_model_the_server_cannot_answer_is_one_clear_error(server, x_npy, tmp_path, capsys, change, message):
    argv = ["--target", f"127.0.0.1:{server.grpc_port}", "--protocol", "grpc", "--model", "half_plus_two",
            "--input", str(x_npy), "--out", str(tmp_path), *FAST]
    rc = main(argv + change)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "perf.csv").exists()


def test_an_npz_input_name_the_signature_lacks_is_refused(server, tmp_path, capsys):
    path = tmp_path / "x.npz"
    np.savez(path, wrong=np.ones((2, 1), np.float32))
    rc = main(["--target", f"127.0.0.1:{server.rest_port}", "--protocol", "rest", "--model", "half_plus_two",
               "--input", str(path), *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "no input(s) ['wrong']" in err and "['x']" in err


def test_bad_options_exit_2_without_a_traceback(tmp_path, capsys):
    assert main(["--target", "nohostport", "--model", "m", "--input", str(tmp_path / "x.npy")]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("1")
    assert main(["--target", "127.0.0.1:1", "--model", "m", "--input", str(tmp_path / "x.txt")]) == 2
    assert ".npy or .npz" in capsys.readouterr().err


def test_breakdown_from_tf_serving_families():
    page = """\
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="GRPC",le="+Inf"} 10
:tensorflow:serving:request_latency_sum{model_name="m",API="predict",entrypoint="GRPC"} 5000
:tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="GRPC"} 10
:tensorflow:serving:request_latency_sum{model_name="other",API="predict",entrypoint="GRPC"} 99999
:tensorflow:serving:request_latency_count{model_name="other",API="predict",entrypoint="GRPC"} 1
# TYPE :tensorflow:serving:runtime_latency histogram
:tensorflow:serving:runtime_latency_sum{model_name="m",API="Predict",runtime="TF"} 2000
:tensorflow:serving:runtime_latency_count{model_name="m",API="Predict",runtime="TF"} 10
# TYPE :tensorflow:serving:batching_session:queuing_latency histogram
:tensorflow:serving:batching_session:queuing_latency_sum{thread_pool_name="pool"} 1000
:tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="pool"} 10
"""
    before = metrics.parse(page)
    after = metrics.parse(page.replace("} 5000", "} 15000").replace("} 10\n", "} 20\n")
                          .replace("} 2000", "} 6000").replace("} 1000", "} 3000"))
    got = metrics.breakdown(before, after, "m")
    assert (got.requests, got.request_us, got.compute_us, got.queue_us) == (10, 1000.0, 400.0, 200.0)
    assert got.line() == ("Server: inference count 10, avg request latency 1000 usec, queue 200 usec, "
                          "compute 400 usec, overhead 400 usec")
    only_request = metrics.parse(page.split("# TYPE :tensorflow:serving:runtime_latency")[0])
    partial = metrics.breakdown({}, only_request, "m")
    assert (partial.request_us, partial.compute_us, partial.queue_us) == (500.0, None, None)
    assert metrics.breakdown(None, after, "m") is None and metrics.scrape(None) is None
