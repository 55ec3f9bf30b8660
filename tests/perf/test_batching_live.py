"""Work-conserving batching through the live server: a lone client never pays ``batch_timeout_micros`` (REST
and gRPC), ``--batching_strict_timeout=true`` restores TF Serving's wait, and concurrent clients still merge."""
from __future__ import annotations

import json
import shutil
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import free_port
from tests.support.server import start_server

pytestmark = pytest.mark.xdist_group("perf-digits")

TIMEOUT_S = 0.4
BATCHING = f"""
max_batch_size {{ value: 32 }}
batch_timeout_micros {{ value: {int(TIMEOUT_S * 1e6)} }}
num_batch_threads {{ value: 1 }}
max_enqueued_batches {{ value: 64 }}
"""


def serve(digits_models, tmp_path_factory, *extra: str):
    base = tmp_path_factory.mktemp("batching-live")
    shutil.copytree(digits_models / "digits", base / "digits")
    config = base / "models.config"
    config.write_text('model_config_list { config { name: "digits" base_path: "%s" '
                      'model_platform: "onnxruntime" } }\n' % (base / "digits"))
    (base / "batching.config").write_text(BATCHING)
    # with warmup, each of the 8 records of a strict server would wait the timeout: off, to start fast
    return start_server(["--port", str(free_port()), "--rest_api_port", str(free_port()),
                         f"--model_config_file={config}", "--enable_model_warmup=false", "--enable_batching",
                         f"--batching_parameters_file={base / 'batching.config'}",
                         "--monitoring_config_file=" + str(_monitoring(base)), *extra])


def _monitoring(base):
    path = base / "monitoring.config"
    path.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
    return path


@pytest.fixture(scope="module")
def conserving(digits_models, tmp_path_factory):
    with serve(digits_models, tmp_path_factory) as proc:
        yield proc


@pytest.fixture(scope="module")
def strict(digits_models, tmp_path_factory):
    with serve(digits_models, tmp_path_factory, "--batching_strict_timeout=true") as proc:
        yield proc


def rest_seconds(server, x: np.ndarray) -> float:
    body = json.dumps({"instances": x.tolist()}).encode()
    request = urllib.request.Request(server.rest_url + "/v1/models/digits:predict", body,
                                     {"Content-Type": "application/json"})
    start = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert len(json.loads(response.read())["predictions"]) == x.shape[0]
    return time.monotonic() - start


def grpc_seconds(server, x: np.ndarray) -> float:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(x))
    start = time.monotonic()
    response = server.prediction_stub().Predict(request, timeout=10)
    assert tf.make_ndarray(response.outputs["probs"]).shape == (x.shape[0], 10)
    return time.monotonic() - start


X = np.random.default_rng(0).random((1, 64), dtype=np.float32)


def test_a_lone_client_never_waits_for_the_batch_timeout(conserving):
    rest = sorted(rest_seconds(conserving, X) for _ in range(6))
    grpc = sorted(grpc_seconds(conserving, X) for _ in range(6))
    assert rest[3] < TIMEOUT_S / 2 and grpc[3] < TIMEOUT_S / 2, (rest, grpc)


def test_strict_timeout_waits_as_tf_serving_does(strict):
    assert rest_seconds(strict, X) >= TIMEOUT_S * 0.9
    assert grpc_seconds(strict, X) >= TIMEOUT_S * 0.9


def test_concurrent_clients_are_still_merged(conserving):
    def metric(name: str) -> float:
        with urllib.request.urlopen(conserving.rest_url + "/monitoring/prometheus/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "_count"))

    runs_before = metric(":tensorflow:serving:batching_session:processed_batch_size")
    with ThreadPoolExecutor(16) as pool:
        seconds = list(pool.map(lambda _: rest_seconds(conserving, X), range(160)))
    runs = metric(":tensorflow:serving:batching_session:processed_batch_size") - runs_before
    assert 0 < runs < 160, f"{runs:.0f} runs for 160 requests: none were merged"
    assert sorted(seconds)[len(seconds) // 2] < TIMEOUT_S, "concurrent requests waited for the timeout"
