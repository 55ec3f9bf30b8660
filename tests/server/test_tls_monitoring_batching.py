"""``--ssl_config_file`` (TLS on gRPC), ``--monitoring_config_file`` (Prometheus on the REST port) and
``--enable_batching --batching_parameters_file`` (TF Serving's testPredictBatching), on one server."""
from __future__ import annotations

import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.conftest import free_port
from tests.support.certs import make_pki
from tests.support.server import start_server

from .rpc import RPC_TIMEOUT, predict_request

pytestmark = pytest.mark.xdist_group("server-tls")


@pytest.fixture(scope="module")
def tls(testdata, tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    pki = make_pki()
    ssl_config = root / "ssl.config"
    ssl_config.write_text(pki.ssl_config_text(client_verify=False))
    args = [f"--port={free_port()}", f"--rest_api_port={free_port()}", "--model_name=default",
            f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}", f"--ssl_config_file={ssl_config}",
            f"--monitoring_config_file={testdata / 'monitoring_config.txt'}",
            "--enable_batching", f"--batching_parameters_file={testdata / 'batching_config.txt'}"]
    server = start_server(args, ready_timeout=120, tls_root_cert=pki.ca.cert_pem)
    yield server, pki.ca.cert_pem.decode()
    assert server.stop() == 0  # SIGTERM is a graceful, successful shutdown
    assert "Shutting down" in server.log()


def test_grpc_over_tls_with_batching(tls):
    server, cert = tls
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.encode())
    with grpc.secure_channel(server.grpc_target, credentials) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for output_filter in [("y",), ()]:
            result = stub.Predict(predict_request("default", [2.0], output_filter=output_filter), timeout=RPC_TIMEOUT)
            assert list(result.outputs["y"].float_val) == [3.0]
            assert result.model_spec.version.value == 123


def test_plaintext_client_is_refused_by_tls_server(tls):
    server, _ = tls
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(predict_request("default", [2.0]), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_prometheus_metrics_count_requests(tls):
    server, cert = tls
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.encode())
    with grpc.secure_channel(server.grpc_target, credentials) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(3):
            stub.Predict(predict_request("default", [2.0]), timeout=RPC_TIMEOUT)
        with pytest.raises(grpc.RpcError):
            stub.Predict(predict_request("default", [2.0], version=9), timeout=RPC_TIMEOUT)
    page = urllib.request.urlopen(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10).read().decode()
    counts = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
              if line.startswith(":tensorflow:serving:request_count{")}
    assert counts[':tensorflow:serving:request_count{model_name="default",status="OK"}'] >= 3
    assert counts[':tensorflow:serving:request_count{model_name="default",status="NOT_FOUND"}'] >= 1
    assert ':tensorflow:serving:request_latency_bucket{model_name="default",API="Predict",entrypoint="GRPC"' in page
