"""TF Serving's metric families on the Prometheus endpoint, after real traffic on a real server.

One server (half_plus_two with a warmup file, batching on) takes gRPC and REST predicts, a classify, a
regress, a failed request and a burst of concurrent requests; the scrape must then hold each family under
TF Serving's name and labels (``servables/tensorflow/util.cc``, ``batching_session.cc``, TensorFlow's SavedModel
loader), with counts a wrong label or a double count would break.
"""
from __future__ import annotations

import json
import shutil
import threading
import urllib.request

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.conftest import free_port
from tests.support.server import start_server

from .rpc import RPC_TIMEOUT, classify_request, predict_request, regress_request

pytestmark = pytest.mark.xdist_group("server-metrics")
BURST = 16


@pytest.fixture(scope="module")
def scraped(testdata, tmp_path_factory):
    """The parsed scrape after the traffic, and the version directory (a label of the load families)."""
    from export.savedmodel import write_warmup

    root = tmp_path_factory.mktemp("metrics")
    version = root / "m" / "1"
    shutil.copytree(testdata / "saved_model_half_plus_two_cpu" / "00000123", version)
    write_warmup(version, "m", {"x": np.array([[1.0], [2.0], [3.0]], np.float32)})
    (root / "batching.config").write_text("max_batch_size { value: 64 } batch_timeout_micros { value: 20000 } "
                                          "num_batch_threads { value: 1 } max_enqueued_batches { value: 100 }")
    args = [f"--port={free_port()}", f"--rest_api_port={free_port()}", "--model_name=m",
            f"--model_base_path={root / 'm'}", f"--monitoring_config_file={testdata / 'monitoring_config.txt'}",
            "--enable_batching", f"--batching_parameters_file={root / 'batching.config'}"]
    with start_server(args, ready_timeout=120) as server, server.channel() as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(3):
            stub.Predict(predict_request("m", [[2.0]]), timeout=RPC_TIMEOUT)
        with pytest.raises(grpc.RpcError):
            stub.Predict(predict_request("m", [[2.0]], version=9), timeout=RPC_TIMEOUT)
        stub.Classify(classify_request("m", "classify_x_to_y", [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}]),
                      timeout=RPC_TIMEOUT)
        stub.Regress(regress_request("m", "regress_x_to_y", [{"x": 1.0}, {"x": 2.0}]), timeout=RPC_TIMEOUT)
        for _ in range(2):
            body = json.dumps({"instances": [[1.0]]}).encode()
            request = urllib.request.Request(f"{server.rest_url}/v1/models/m:predict", data=body, method="POST")
            urllib.request.urlopen(request, timeout=30).read()
        threads = [threading.Thread(target=stub.Predict, args=(predict_request("m", [[1.0]]),),
                                    kwargs={"timeout": RPC_TIMEOUT}) for _ in range(BURST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        page = urllib.request.urlopen(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).read().decode()
    samples = {}
    for line in page.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return page, samples, str(version)


def test_request_count_and_latency_per_entrypoint(scraped):
    page, samples, _ = scraped
    grpc_predicts = 3 + BURST
    assert samples[':tensorflow:serving:request_count{model_name="m",status="OK"}'] == grpc_predicts + 1 + 1 + 2  # + classify, regress, REST
    assert samples[':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"}'] == 1
    latency = ":tensorflow:serving:request_latency_count"
    assert samples[f'{latency}{{model_name="m",API="Predict",entrypoint="GRPC"}}'] == grpc_predicts  # OK only
    assert samples[f'{latency}{{model_name="m",API="Classify",entrypoint="GRPC"}}'] == 1
    assert samples[f'{latency}{{model_name="m",API="Regress",entrypoint="GRPC"}}'] == 1
    assert samples[f'{latency}{{model_name="m",API="predict",entrypoint="REST"}}'] == 2
    assert "# TYPE :tensorflow:serving:request_count counter" in page
    assert ':tensorflow:serving:request_latency_bucket{model_name="m",API="Predict",entrypoint="GRPC",le="10"}' in page
    assert "_created" not in page and "request_count_total" not in page


def test_runtime_latency_and_example_counts(scraped):
    _, samples, _ = scraped
    runtime = ":tensorflow:serving:runtime_latency_count"
    assert samples[f'{runtime}{{model_name="m",API="Predict",runtime="TF1"}}'] == 3 + BURST + 2
    assert samples[f'{runtime}{{model_name="m",API="Classify",runtime="TF1"}}'] == 1
    assert samples[':tensorflow:serving:request_example_count_total{model="m"}'] == 3 + 2
    assert samples[':tensorflow:serving:request_example_counts_count{model="m"}'] == 2
    assert samples[':tensorflow:serving:request_example_counts_bucket{model="m",le="2"}'] == 1  # the regress


def test_load_and_warmup_families(scraped):
    _, samples, version = scraped
    assert samples[f':tensorflow:cc:saved_model:load_attempt_count{{model_path="{version}",status="success"}}'] == 1
    assert samples[f':tensorflow:cc:saved_model:load_latency{{model_path="{version}"}}'] > 0
    assert samples[f':tensorflow:serving:model_warmup_latency_count{{model_path="{version}",status="OK"}}'] == 1


def test_batching_families(scraped):
    _, samples, _ = scraped
    # Every successful predict went through the batcher (warmup runs before the batching wrapper exists).
    queued = samples[':tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="batch_threads"}']
    assert queued == 3 + BURST + 2
    runs = samples[":tensorflow:serving:batching_session:wrapped_run_count"]
    assert runs == samples[":tensorflow:serving:batching_session:processed_batch_size_count"]
    assert samples[":tensorflow:serving:batching_session:input_batch_size_sum"] == queued
    assert runs < queued  # the concurrent burst was merged into fewer runs
