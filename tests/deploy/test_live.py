"""Real exported versions served by the local server with exactly the compose and Deployment command lines
(paths and ports mapped to this machine), their health checks and probes run against it, and label
changes picked up by the running server without a restart.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving.admin import registry
from tests.conftest import free_port
from tests.deploy import manifests as mf
from tests.deploy.conftest import EXPORT_GROUP, TINY, Server, admin, running, wait_available

pytestmark = pytest.mark.xdist_group(EXPORT_GROUP)


def rest_json(server: Server, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{server.rest}{path}", data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def predict(server: Server, path: str, xs: list[float]) -> list[float]:
    out = rest_json(server, f"/v1/models/{TINY}{path}:predict", {"instances": [[x] for x in xs]})
    return [row[0] for row in out["predictions"]]


def label_version(server: Server, label: str) -> int | None:
    """The version ``label`` serves, from the metadata answer's model_spec (status ignores labels, as TF
    Serving's GetModelStatus does)."""
    try:
        meta = rest_json(server, f"/v1/models/{TINY}/labels/{label}/metadata")
    except urllib.error.HTTPError:
        return None
    return int(meta["model_spec"]["version"])


def states(server: Server) -> dict[str, str]:
    return {s["version"]: s["state"] for s in rest_json(server, f"/v1/models/{TINY}")["model_version_status"]}


def eventually(check, timeout: float = 60.0, what: str = "") -> None:
    """Probe `check()` until it is truthy (the servers poll their config every few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"not within {timeout} s: {what}")


def models_copy(golden: Path, root: Path) -> Path:
    """A models dir as `make config PREFIX=/models` leaves it, with /models mapped to `root/models`."""
    models = root / "models"
    shutil.copytree(golden, models)
    rc, _, err = admin("config", "--models-dir", str(models), "--prefix", str(models))
    assert rc == 0, err
    return models


@pytest.fixture(scope="module")
def servers(golden_exports: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two servers started together: compose's `tfserving` command and the Deployment's args."""
    compose_root, deploy_root = tmp_path_factory.mktemp("compose"), tmp_path_factory.mktemp("deployment")
    compose_models, deploy_models = models_copy(golden_exports, compose_root), models_copy(golden_exports, deploy_root)
    compose_cmd = mf.map_to_host(mf.compose()["services"]["tfserving"]["command"], compose_models,
                                 free_port(), free_port())
    deploy_cmd = mf.map_to_host(mf.k8s_object("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"],
                                deploy_models, free_port(), free_port())
    with running(compose_cmd) as compose_srv, \
            running(deploy_cmd) as deploy_srv:
        wait_available(compose_srv, TINY, 2)
        wait_available(deploy_srv, TINY, 2)
        yield {"compose": (compose_srv, compose_models), "deployment": (deploy_srv, deploy_models)}


def run_check(cmd: list[str], server: Server, model: str) -> int:
    """Run a container health check / probe command here, its port 8501 mapped to the server's."""
    cmd = [part.replace("127.0.0.1:8501", server.rest).replace("127.0.0.1/8501", f"127.0.0.1/{server.rest_port}")
           for part in cmd]
    env = dict(os.environ, MODEL_NAME=model)
    return subprocess.run(cmd, env=env, capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("which", ["compose", "deployment"])
def test_command_line_serves_the_newest_version(servers, which):
    server, _ = servers[which]
    assert states(server) == {"2": "AVAILABLE"}  # latest policy: the newest version only
    assert predict(server, "", [1.0, 2.0]) == [2.0, 5.0]  # version 2: 3x - 1
    # --monitoring_config_file was honoured: Prometheus text on the configured path
    with urllib.request.urlopen(f"http://{server.rest}/monitoring/prometheus/metrics", timeout=10) as resp:
        assert b":tensorflow:serving:request_count" in resp.read()


def test_compose_healthchecks_pass_against_the_server(servers):
    server, _ = servers["compose"]
    services = mf.compose()["services"]
    for svc in ("tfserving", "local"):
        test = [p.replace("$$", "$") for p in services[svc]["healthcheck"]["test"][1:]]
        assert run_check(test, server, TINY) == 0, svc
        assert run_check(test, server, "no_such_model") != 0, svc  # the check really looks at the model


def grpc_probe(probe: dict, server: Server) -> int:
    """What the kubelet's native grpc probe does: grpc.health.v1.Health/Check(service) on the probe's port
    (mapped to the server's); returns the HealthCheckResponse status."""
    assert probe["port"] == 8500
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = health_pb2.HealthCheckRequest(service=probe.get("service", ""))
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status


def test_deployment_probes_pass_against_the_server(servers):
    server, _ = servers["deployment"]
    c = mf.k8s_object("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert grpc_probe(c["readinessProbe"]["grpc"], server) == health_pb2.HealthCheckResponse.SERVING
    with urllib.request.urlopen(f"http://{server.rest}{c['startupProbe']['httpGet']['path'].replace('digits', TINY)}",
                                timeout=10) as resp:
        assert resp.status == 200
    with socket.create_connection(("127.0.0.1", server.grpc_port), timeout=5):
        pass  # livenessProbe: tcpSocket on the gRPC port


def test_compose_server_serves_grpc_health_too(servers):
    server, _ = servers["compose"]
    assert grpc_probe({"port": 8500}, server) == health_pb2.HealthCheckResponse.SERVING


def test_versions_table_of_real_exports(servers):
    _, models = servers["deployment"]
    rc, out, _ = admin("versions", "--models-dir", str(models), "--name", TINY)
    assert rc == 0
    rows = out.strip().splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["2", "1"]
    meta = json.loads((models / TINY / "2" / "metadata.json").read_text())
    assert meta["created"] in rows[0] and "pass (rtol=" in rows[0]
    assert f"{meta['sizes']['onnx_bytes']} B" in rows[0]


def test_label_changes_reach_the_running_server_without_restart(servers):
    server, models = servers["compose"]
    pid = server.process.pid
    # 1. stable -> 2 (already served: one write)
    assert registry.promote(models, TINY, 2, "stable").staged is False
    eventually(lambda: label_version(server, "stable") == 2, what="stable -> 2")
    # 2. stable -> 1: not served yet, so staged, loaded, then labelled (promote --wait-for)
    rc, out, err = admin("promote", "--models-dir", str(models), "--name", TINY, "--version", "1",
                         "--label", "stable", "--wait-for", server.rest, "--wait-timeout", "60")
    assert rc == 0 and "stable -> 1 (was 2)" in out, err
    eventually(lambda: label_version(server, "stable") == 1, what="stable -> 1")
    assert predict(server, "/labels/stable", [1.0]) == [3.0]  # version 1: 2x + 1
    assert predict(server, "/versions/2", [1.0]) == [2.0]  # the rollback target stays loaded
    # 3. rollback: stable -> 2 again
    rc, out, _ = admin("rollback", "--models-dir", str(models), "--name", TINY)
    assert rc == 0 and "stable 1 -> 2" in out
    eventually(lambda: label_version(server, "stable") == 2, what="rollback to 2")
    assert predict(server, "/labels/stable", [1.0]) == [2.0]
    # 4. prune: version 1 is neither labelled nor newest: deleted from disk and unloaded
    rc, out, _ = admin("prune", "--models-dir", str(models), "--name", TINY, "--keep", "1")
    assert rc == 0 and "deleted 1" in out
    assert not (models / TINY / "1").exists()
    eventually(lambda: states(server).get("1") in (None, "END"), what="version 1 unloaded")
    assert predict(server, "/labels/stable", [2.0]) == [5.0]
    assert server.process.poll() is None and server.process.pid == pid  # the same process throughout
