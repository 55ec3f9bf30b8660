"""``--num_workers=2``: two real server processes on one gRPC and one REST port, kept consistent.

A real supervisor and two real workers on loopback, serving two versions of a tiny ONNX model (y = x + 1 and
y = x + 2: the answer names the version, and ONNX Runtime loads in milliseconds). Every check opens new
connections, so the kernel's SO_REUSEPORT spreading reaches both workers; the per-worker request counter in
the aggregated metrics proves both answered. The module's last test stops the server with SIGTERM.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request

import pytest
from tensorflow_serving.apis import model_management_pb2

from tests.conftest import free_port
from tests.reliability.models import write_onnx_affine
from tests.support.server import start_server

pytestmark = pytest.mark.xdist_group("server-workers")
CONNECTIONS = 40
BASE = "base"  # the model's base path, under the module's tmp dir


def _config(root, labels: dict[str, int] | None = None) -> str:
    label_text = "".join(f' version_labels {{ key: "{k}" value: {v} }}' for k, v in (labels or {}).items())
    return (f'model_config_list {{ config {{ name: "m" base_path: "{root / BASE}" model_platform: "onnxruntime" '
            f'model_version_policy {{ all {{}} }}{label_text} }} }}')


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    write_onnx_affine(tmp / BASE / "1", 1.0, 1.0)
    write_onnx_affine(tmp / BASE / "2", 1.0, 2.0)
    return tmp


@pytest.fixture(scope="module")
def workers(root):
    tmp = root
    (tmp / "models.config").write_text(_config(tmp))
    (tmp / "monitoring.config").write_text('prometheus_config { enable: true path: "/metrics" }')
    server = start_server([
        f"--port={free_port()}", f"--rest_api_port={free_port()}", "--num_workers=2",
        f"--model_config_file={tmp / 'models.config'}", f"--monitoring_config_file={tmp / 'monitoring.config'}",
        "--file_system_poll_wait_seconds=1",
    ], ready_timeout=120)
    with server:
        server.wait_until(lambda: "(2 workers)" in server.log(), 120, "serving on every worker")
        yield server


def _worker_pids(server) -> dict[int, int]:
    """Worker index -> pid of its latest start (from the supervisor's log)."""
    return {int(i): int(p) for i, p in re.findall(r"Started worker (\d+) \(pid (\d+)\)", server.log())}


def _predict(server, label: str | None = None) -> dict:
    where = f"/labels/{label}" if label else ""
    request = urllib.request.Request(f"{server.rest_url}/v1/models/m{where}:predict",
                                     data=json.dumps({"instances": [[1.0], [2.0]]}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:  # a new connection every call
        return json.loads(reply.read())


def _scrape(server) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.rest_url}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def _reload(server, config_text: str):
    from google.protobuf import text_format

    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text, request.config)
    with server.channel() as channel:
        from tensorflow_serving.apis import model_service_pb2_grpc

        return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=120)


def _status_on_new_connection(server, label: str) -> int:
    """The version ``label`` resolves to on a new connection (GetModelMetadata resolves labels; GetModelStatus,
    like TF Serving's, ignores them and lists every version)."""
    from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "m"
    request.model_spec.version_label = label
    with server.channel() as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=30)
    return reply.model_spec.version.value


def test_both_workers_answer_and_metrics_are_the_sum_over_them(workers):
    before = _scrape(workers)
    ok_key = ':tensorflow:serving:request_count{model_name="m",status="OK"}'
    for _ in range(CONNECTIONS):
        assert _predict(workers)["predictions"] == [[3.0], [4.0]]  # the latest version: y = x + 2
    after = _scrape(workers)
    assert after[ok_key] - before.get(ok_key, 0) == CONNECTIONS  # every worker's requests, whoever scrapes
    per_worker = {w: after.get(f':serving:worker_request_count{{worker="{w}"}}', 0) for w in ("0", "1")}
    assert all(count > 0 for count in per_worker.values()), per_worker
    latency = ':tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"}'
    assert after[latency] - before.get(latency, 0) == CONNECTIONS
    loads = [v for k, v in after.items() if k.startswith(":tensorflow:cc:saved_model:load_attempt_count{")
             and 'status="success"' in k]
    assert sum(loads) == 4  # two versions on each of two workers, counted once each


def test_a_reload_is_applied_by_every_worker_before_it_answers(workers, root):
    reply = _reload(workers, _config(root, {"stable": 1}))
    assert reply.status.error_code == 0
    assert {_status_on_new_connection(workers, "stable") for _ in range(CONNECTIONS)} == {1}
    reply = _reload(workers, _config(root, {"stable": 2}))
    assert reply.status.error_code == 0
    # Right after the answer, every connection (whichever worker gets it) sees the moved label.
    assert {_status_on_new_connection(workers, "stable") for _ in range(CONNECTIONS)} == {2}
    assert {_predict(workers, "stable")["predictions"][0][0] for _ in range(CONNECTIONS)} == {3.0}


def test_a_refused_reload_reports_the_workers_error(workers, root):
    import grpc

    with pytest.raises(grpc.RpcError) as info:
        _reload(workers, _config(root, {"stable": 999}))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 999 of model m" in info.value.details()


def test_a_new_version_on_disk_reaches_every_worker(workers, root):
    write_onnx_affine(root / BASE / "3", 1.0, 3.0)
    workers.wait_until(lambda: workers.log().count("Successfully loaded servable version {name: m version: 3}") == 2,
                       60, "version 3 on both workers")
    assert {_predict(workers)["predictions"][0][0] for _ in range(CONNECTIONS)} == {4.0}


def test_a_dead_worker_is_restarted_with_the_current_config(workers, root):
    _reload(workers, _config(root, {"stable": 1}))
    old = _worker_pids(workers)[0]
    os.kill(old, signal.SIGKILL)
    workers.wait_until(lambda: _worker_pids(workers)[0] != old, 30, "restarting worker 0")
    new = _worker_pids(workers)[0]
    workers.wait_until(lambda: f"Worker 0 (pid {new}) is serving" in workers.log(), 120, "serving again")
    assert f"Worker 0 (pid {old}) exited with status -9; restarting it in " in workers.log()
    # The restarted worker started from the config applied through the API, not from the file.
    assert {_status_on_new_connection(workers, "stable") for _ in range(CONNECTIONS)} == {1}
    assert {_predict(workers)["predictions"][0][0] for _ in range(CONNECTIONS)} == {4.0}  # and version 3


def test_sigterm_drains_and_stops_every_worker(workers):
    server = workers  # the module's last test: the fixture's own stop() is then a no-op
    pids = list(_worker_pids(server).values())
    assert len(pids) == 2
    assert server.stop(grace=60) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    log = server.log()
    assert "Shutting down 2 workers" in log and log.count("] Shutting down\n") == 2  # each worker drained
    assert "Traceback" not in log


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
