"""The ``make bench-peers`` harness's pieces on known inputs: wrk's result line (parsed, and produced by a real
wrk run against the real asyncio floor), the per-round goal verdicts, the CSV round trip, and the pages and
README sections it writes. The peer venvs are never installed here: that is the benchmark's job."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict

import numpy as np
import pytest

from serving.bench import docsections, howto
from serving.bench.peers import goals, report, wrk
from serving.bench.peers.results import PeerRow, cells, read_csv, write_csv
from serving.bench.peers.servers import RUNTIMES
from tests.conftest import free_port

from .conftest import write_onnx

SAMPLE = """\
Running 1s test @ http://127.0.0.1:1234/v1/models/m:predict
  1 threads and 2 connections
  6100 requests in 1.00s, 1.00MB read
WRK_RESULT {"requests":6100,"duration_us":1000500,"bytes":1048576,"connect":1,"read":0,"write":0,"status":100,\
"timeout":2,"p50_us":290,"p90_us":410,"p99_us":900,"mean_us":310.1,"max_us":2000}
Requests/sec:   6096.95
"""


def test_wrk_result_line_is_parsed_with_every_error_class_counted():
    res = wrk.parse(SAMPLE, cpu_s=0.25)
    assert (res.requests, res.errors, res.status_errors) == (6100, 103, 100)
    assert (res.p50_us, res.p90_us, res.p99_us, res.mean_us) == (290.0, 410.0, 900.0, 310.1)
    assert res.seconds == pytest.approx(1.0005)
    assert res.throughput == pytest.approx(6000 / 1.0005)  # non-2xx answers are errors, not throughput
    assert res.cpu_s == 0.25


def test_wrk_output_without_the_result_line_is_an_error():
    with pytest.raises(wrk.WrkError, match="WRK_RESULT"):
        wrk.parse("Running 1s test @ http://x\n  0 requests in 1.00s\n")


def test_lua_script_posts_the_body_file_and_prints_the_marker(tmp_path):
    script = wrk.lua_script(tmp_path / "body.json")
    assert f'io.open("{tmp_path / "body.json"}", "rb")' in script
    assert 'wrk.method = "POST"' in script and "latency:percentile(99)" in script and wrk.MARKER in script


@pytest.fixture(scope="module")
def asyncio_floor(tmp_path_factory):
    """The real asyncio floor runtime serving y = 2x (a tiny ONNX graph) on a free port."""
    def build(helper, tp):
        x = helper.make_tensor_value_info("x", tp.FLOAT, ["batch", 2])
        y = helper.make_tensor_value_info("y", tp.FLOAT, ["batch", 2])
        return helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double", [x], [y])

    model = write_onnx(tmp_path_factory.mktemp("floor") / "1", build) / "model.onnx"
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(RUNTIMES / "floor_asyncio.py"), "--port", str(port),
                             "--model", f"double={model}", "--ort-options", json.dumps({"intra_op_num_threads": 1})],
                            cwd=RUNTIMES, env={"PYTHONPATH": str(RUNTIMES), "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}/v1/models/double:predict"
    deadline = time.monotonic() + 180  # a busy CI box: ORT import and session creation
    while True:
        try:
            request = urllib.request.Request(url, b'{"instances": [[1.0, 2.5]]}', {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                assert json.loads(response.read()) == {"predictions": [[2.0, 5.0]]}
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "asyncio floor did not start"
            time.sleep(0.2)  # probe interval
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_a_real_wrk_run_is_measured_and_failures_are_counted(tmp_path, asyncio_floor):
    body = tmp_path / "body.json"
    body.write_text('{"instances": [[1.0, 2.0], [3.0, 4.0]]}')
    script = tmp_path / "post.lua"
    script.write_text(wrk.lua_script(body))
    ok = wrk.run(f"http://127.0.0.1:{asyncio_floor}/v1/models/double:predict", script, 2, 1)
    assert ok.requests >= 5 and ok.errors == 0 and ok.throughput >= 5  # slow on a busy box, never failing
    assert 0 < ok.p50_us <= ok.p90_us <= ok.p99_us and ok.cpu_s > 0
    missing = wrk.run(f"http://127.0.0.1:{asyncio_floor}/v1/models/nope:predict", script, 1, 1)
    assert missing.requests > 0 and missing.status_errors == missing.requests and missing.throughput == 0


def row(rnd: int, workload: str, protocol: str, server: str, c: int, rps: float, p50_ms: float = 1.0,
        p99_ms: float = 5.0, errors: int = 0) -> PeerRow:
    return PeerRow(rnd, workload, protocol, server, c, rps, p50_ms * 1e3, p50_ms * 1.5e3, p99_ms * 1e3,
                   p50_ms * 1.1e3, int(rps * 2), errors, 2.0, 0.1, 0.9)


def run_rows() -> list[PeerRow]:
    rows = []
    for rnd, ours_rest_p50 in ((1, 0.5), (2, 0.7)):  # round 2 misses goal 2 REST: mixed
        rows += [
            row(rnd, "mobilenet", "rest", "ours", 16, 60), row(rnd, "mobilenet", "rest", "ours+batching", 16, 80),
            row(rnd, "mobilenet", "rest", "mlserver", 16, 40), row(rnd, "mobilenet", "rest", "mlserver+batching", 16, 50),
            row(rnd, "mobilenet", "rest", "floor-threading", 16, 70),
            row(rnd, "mobilenet", "grpc", "ours", 16, 90), row(rnd, "mobilenet", "grpc", "floor-grpc", 100, 100),
            row(rnd, "digits", "rest", "ours", 1, 2000, p50_ms=ours_rest_p50),
            row(rnd, "digits", "rest", "floor-asyncio", 1, 5000, p50_ms=0.3),
            row(rnd, "digits", "grpc", "ours", 1, 1500, p50_ms=0.6), row(rnd, "digits", "grpc", "floor-grpc", 1, 1600, p50_ms=0.55),
            row(rnd, "digits", "rest", "ours+batching", 1, 1900), row(rnd, "digits", "grpc", "ours+batching", 1, 1500),
            row(rnd, "mlp2048", "rest", "ours", 32, 100, p99_ms=400), row(rnd, "mlp2048", "rest", "ours+batching", 32, 250, p99_ms=200),
            row(rnd, "mlp2048", "grpc", "ours", 32, 100, p99_ms=400), row(rnd, "mlp2048", "grpc", "ours+batching", 32, 150, p99_ms=300),
            row(rnd, "mobilenet", "grpc", "ours", 1, 80, p50_ms=12.0),
            row(rnd, "mobilenet", "in-process", "ort-default", 1, 100, p50_ms=10.0),
        ]
    return rows


def test_goals_are_judged_per_round_from_the_rows():
    (rest_big, grpc_big, small_rest, small_grpc, pays_rest, pays_grpc, harmless, cores, large,
     regressions) = goals.evaluate(run_rows())
    assert rest_big.verdict == "met"  # ours+batching (our best) 80 = 1.6× mlserver+batching's 50, 1.14× the floor
    assert "ours+batching 80.0 req/s = 1.60× mlserver+batching, 1.14× ThreadingHTTPServer" in rest_big.measured
    assert grpc_big.verdict == "not measured"  # the gRPC floor was measured at another level only
    assert small_rest.verdict == "**mixed** (1/2 rounds)"
    assert small_rest.measured == "r1: p50 0.50 ms vs 0.30 ms = 1.67×; r2: p50 0.70 ms vs 0.30 ms = 2.33×"
    assert small_grpc.verdict == "met"  # 0.6 / 0.55 = 1.09×
    assert (pays_rest.verdict, pays_grpc.verdict) == ("met", "**missed**")  # 2.5× with a lower p99; 1.5×
    assert harmless.verdict == "met" and harmless.measured.startswith("r1: worst 0.95× (rest c1)")
    assert cores.verdict == "not measured"  # no ours-2w rows: the server had no --num_workers
    assert large.verdict == "met" and "p50 12.00 ms vs in-process ORT (default threads) 10.00 ms = 1.20×" in large.measured
    assert regressions.verdict == "not measured"


def test_a_cell_where_no_request_completed_misses_instead_of_vanishing():
    rows = [row(1, "digits", "rest", "ours", 1, 0.0, p50_ms=0.0), row(1, "digits", "rest", "floor-asyncio", 1, 900),
            row(1, "mobilenet", "rest", "ours", 16, 0.0), row(1, "mobilenet", "rest", "mlserver", 16, 20),
            row(1, "mobilenet", "rest", "floor-threading", 16, 10)]
    rows[0] = PeerRow(**{**asdict(rows[0]), "requests": 0})
    rest_small = goals.small_requests(rows)[0]
    assert rest_small.verdict == "**missed**" and "no request completed in 2 s" in rest_small.measured
    big = goals.big_requests(rows, "rest")
    assert big.verdict == "**missed**" and "0.00× mlserver" in big.measured


def test_digits_batching_slower_than_ten_percent_is_missed():
    rows = [row(1, "digits", "rest", "ours", 16, 1000), row(1, "digits", "rest", "ours+batching", 16, 850),
            row(1, "digits", "grpc", "ours", 16, 1000), row(1, "digits", "grpc", "ours+batching", 16, 990)]
    goal = goals.batching_harmless(rows)
    assert goal.verdict == "**missed**" and goal.measured == "r1: worst 0.85× (rest c16)"


def test_csv_round_trip_and_round_medians(tmp_path):
    rows = run_rows()
    back = read_csv(write_csv(rows, tmp_path / "peers.csv"))
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):  # floats are written to 3 decimals
        for name, value in asdict(want).items():
            assert getattr(got, name) == (pytest.approx(value, abs=1e-3) if isinstance(value, float) else value)
    cell = next(c for c in cells(rows) if (c.workload, c.protocol, c.server) == ("digits", "rest", "ours"))
    assert cell.rounds == 2 and cell.p50_us == pytest.approx(600.0) and cell.throughput == 2000


def test_sections_are_replaced_in_place_and_inserted_before_an_anchor():
    text = "# T\n\nintro\n\n## A\n\na1\n\n## B\n\nb1\n"
    once = docsections.upsert(text, "## New", "## New\n\nnew", before="## B")
    assert once == "# T\n\nintro\n\n## A\n\na1\n\n## New\n\nnew\n\n## B\n\nb1\n"
    twice = docsections.upsert(once, "## New", "## New\n\nnewer", before="## B")
    assert twice.count("## New") == 1 and "newer" in twice and "\nnew\n" not in twice and "b1" in twice
    assert docsections.extract(twice, "## A") == "## A\n\na1\n"
    assert docsections.extract(twice, "## Missing") is None


def test_pages_and_the_readme_goal_section(tmp_path):
    (tmp_path / "README.md").write_text("# Performance\n\n## Machine\n\nm\n\n## Goals (issue 6)\n\ng6\n")
    rows = run_rows()
    machine = {"CPU": "test cpu", "cores": "2"}
    page = report.write(tmp_path, rows, goals.evaluate(rows), machine, "Settings: test.", "0.50", "3.00", 90)
    text = page.read_text()
    assert "| CPU | test cpu |" in text and "peers.png" in text and "## MobileNetV2 96×96" in text
    assert "| rest | ours | 1 | 2000.0 (2000–2000) | 0.60 |" in text  # median p50 of 0.5 and 0.7 ms
    assert "**mixed** (1/2 rounds)" in text and "load average 0.50 before and 3.00 after" in text
    readme = (tmp_path / "README.md").read_text()
    assert readme.index(report.GOALS_HEADING) < readme.index("## Goals (issue 6)") and "g6" in readme
    report.write(tmp_path, rows, goals.evaluate(rows), machine, "Settings: test.", "0.50", "0.60", 90)
    assert (tmp_path / "README.md").read_text().count(report.GOALS_HEADING) == 1


def test_make_bench_keeps_the_peer_goal_section_and_writes_the_howto(tmp_path):
    from serving.bench.loadgen import Plan
    from serving.bench.report import write_readme
    from serving.bench.run import Outcome, Settings

    (tmp_path / "README.md").write_text(f"# old\n\n{report.GOALS_HEADING}\n\npeer table\n\n## Goals (issue 6)\n\nold\n")
    write_readme(tmp_path, Settings([1], Plan(), tmp_path, 1), Outcome(), [], {"CPU": "c"}, 60)
    text = (tmp_path / "README.md").read_text()
    assert "peer table" in text and text.count(report.GOALS_HEADING) == 1 and "\nold\n" not in text
    assert howto.HEADING in text and text.index(howto.HEADING) < text.index("## Machine")
    assert "make bench-peers" in text and "--report-only" in text


def test_the_runtime_options_are_the_backend_session_options():
    """What the peers get is what our backend builds (no copy of its numbers in the harness)."""
    from serving.backends.onnxruntime import session_options
    from serving.bench.peers.runtimes.ortsession import session_options as rebuild
    from serving.bench.peers.servers import ort_options

    ours, got = session_options(), ort_options()
    again = rebuild(got)
    assert (again.intra_op_num_threads, again.inter_op_num_threads) == (ours.intra_op_num_threads,
                                                                        ours.inter_op_num_threads)
    assert again.execution_mode == ours.execution_mode
    assert again.graph_optimization_level == ours.graph_optimization_level
    for key, value in got["config"].items():
        assert again.get_session_config_entry(key) == ours.get_session_config_entry(key) == value


def test_request_bodies_carry_the_same_numbers_in_v1_v2_and_grpc(tmp_path):
    from clients.codecs import tensor_proto_to_ndarray
    from clients.messages import PredictRequest
    from serving.bench.peers.workloads import Workload, _request_tensor

    w = Workload("mobilenet", tmp_path / "m" / "1" / "model.onnx", "image", _request_tensor("mobilenet"))
    v1, v2 = json.loads(w.v1_body()), json.loads(w.v2_body())
    assert 100_000 < len(w.v1_body()) < 160_000  # a large request, as in the issue (~130–150 kB)
    assert np.array_equal(np.asarray(v1["instances"], dtype=np.float32), w.x)
    assert v2["inputs"][0]["shape"] == [1, 96, 96, 3] and v2["inputs"][0]["datatype"] == "FP32"
    assert np.array_equal(np.asarray(v2["inputs"][0]["data"], dtype=np.float32).reshape(w.x.shape), w.x)
    request = PredictRequest.FromString(w.grpc_request())
    assert request.model_spec.name == "mobilenet"
    assert np.array_equal(tensor_proto_to_ndarray(request.inputs["image"]), w.x)
