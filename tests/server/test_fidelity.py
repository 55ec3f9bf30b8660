"""TF Serving fidelity (issue 12) and operations (issue 13) against a real ``python -m serving``.

Each test is the behaviour of tensorflow_model_server's own code on TF Serving's fixtures: the bad config
message of ``testBadModelConfig``, ``testPredictUDS`` over ``--grpc_socket_path``, ``get_model_status_impl.cc``
ignoring a version label, ``Tensor::AsProtoField`` for scalar outputs, the standard gRPC health service behind
``--enable_grpc_healthcheck_service``, and the server's log lines (warmup, config reload, no TF noise).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.conftest import free_port
from tests.support.server import launch_server, start_server

from .rpc import RPC_TIMEOUT, predict_request, status_request

pytestmark = pytest.mark.xdist_group("server-fidelity")
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def short_socket_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A socket path under the 107-byte sun_path limit (pytest's tmp paths can be longer)."""
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"srv-{os.getpid()}-{free_port()}"
    directory.mkdir()
    return directory / "grpc.sock"


@pytest.fixture(scope="module")
def labelled(testdata, tmp_path_factory):
    """half_plus_two with two versions and label stable -> 123; the default model without labels; the counter
    model; gRPC also on a UNIX socket; health service on; REST on."""
    config = tmp_path_factory.mktemp("fidelity") / "models.config"
    two = testdata / "saved_model_half_plus_two_2_versions"
    config.write_text(
        f'model_config_list {{\n'
        f'  config {{ name: "two" base_path: "{two}" model_platform: "tensorflow"\n'
        f'           model_version_policy {{ all {{}} }} version_labels {{ key: "stable" value: 123 }} }}\n'
        f'  config {{ name: "half_plus_two" base_path: "{testdata / "saved_model_half_plus_two_cpu"}" '
        f'model_platform: "tensorflow" }}\n'
        f'  config {{ name: "counter" base_path: "{testdata / "saved_model_counter"}" model_platform: "tensorflow" }}\n'
        f'}}\n')
    sock = short_socket_path(tmp_path_factory)
    args = [f"--port={free_port()}", f"--rest_api_port={free_port()}", f"--model_config_file={config}",
            f"--grpc_socket_path={sock}", "--enable_grpc_healthcheck_service=true",
            "--allow_version_labels_for_unavailable_models=true", "--file_system_poll_wait_seconds=0"]
    with start_server(args, ready_timeout=120) as server:
        yield server, sock
    assert not sock.exists(), "the socket file must be removed on shutdown"
    sock.parent.rmdir()


def rest_get(server, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.rest_url}{path}", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------- 1. bad config file (testBadModelConfig)
def test_bad_model_config_leads_with_tf_serving_wording(testdata):
    path = testdata / "bad_model_config.txt"
    server = launch_server([f"--port={free_port()}", f"--model_config_file={path}"])
    assert server.wait_exit(120) == 1
    log = server.log()
    assert ('Error parsing text-format tensorflow.serving.ModelServerConfig: 1:1: Message type '
            f'"tensorflow.serving.ModelServerConfig" has no field named "improperly". Invalid protobuf file: '
            f"'{path}'") in log
    assert "Traceback" not in log


def test_every_text_proto_flag_file_uses_the_same_wording(testdata, tmp_path):
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: lots }\n")
    server = launch_server([f"--port={free_port()}", f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}",
                            "--enable_batching", f"--batching_parameters_file={batching}"])
    assert server.wait_exit(120) == 1
    log = server.log()
    assert ("Error parsing text-format tensorflow.serving.BatchingParameters: 1:25: 'max_batch_size { value: lots }"
            f"': Couldn't parse integer: lots. Invalid protobuf file: '{batching}'") in log
    assert "Traceback" not in log


# ---------------------------------------------------------------- 2. --grpc_socket_path (testPredictUDS)
def test_predict_over_the_unix_socket(labelled):
    server, sock = labelled
    assert f"Running gRPC ModelServer at UNIX socket {sock} ..." in server.log()
    with grpc.insecure_channel(f"unix:{sock}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = stub.Predict(predict_request("half_plus_two", [2.0]), timeout=RPC_TIMEOUT)
    assert list(result.outputs["y"].float_val) == [3.0]
    assert (result.model_spec.name, result.model_spec.version.value) == ("half_plus_two", 123)


def _serve_forever(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    return listener


@pytest.mark.parametrize("taken_by", ["live socket", "regular file"])
def test_a_taken_socket_path_is_a_clear_error(testdata, tmp_path_factory, taken_by):
    sock = short_socket_path(tmp_path_factory)
    listener = _serve_forever(sock) if taken_by == "live socket" else None
    if listener is None:
        sock.write_text("not a socket")
    try:
        server = launch_server([f"--port={free_port()}", f"--grpc_socket_path={sock}",
                                f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}"])
        assert server.wait_exit(120) == 1
        expected = {"live socket": "another process is already serving on this socket",
                    "regular file": "the path exists and is not a socket"}[taken_by]
        assert f"--grpc_socket_path={sock}: {expected}" in server.log()
        assert "Traceback" not in server.log()
        assert "Loading servable" not in server.log()  # refused before any model load
        assert sock.exists()  # never deleted from under its owner
    finally:
        if listener is not None:
            listener.close()
        sock.unlink()
        sock.parent.rmdir()


@pytest.fixture(scope="module")
def plain(testdata, tmp_path_factory):
    """half_plus_two as ``default``, health service off, started over a stale socket file (a killed server
    leaves its socket behind; gRPC, and so TF Serving, binds over it)."""
    sock = short_socket_path(tmp_path_factory)
    _serve_forever(sock).close()  # the file stays, nobody listens
    args = [f"--port={free_port()}", f"--grpc_socket_path={sock}", "--file_system_poll_wait_seconds=0",
            f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}"]
    with start_server(args, ready_timeout=120) as server:
        yield server, sock
    assert not sock.exists()
    sock.parent.rmdir()


def test_a_stale_socket_file_is_replaced(plain):
    server, sock = plain
    with grpc.insecure_channel(f"unix:{sock}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert list(stub.Predict(predict_request("default", [4.0]), timeout=RPC_TIMEOUT).outputs["y"].float_val) \
            == [4.0]
    assert "Removing stale socket file" in server.log()


# ---------------------------------------------------------------- 3. status with a label (get_model_status_impl.cc)
@pytest.mark.parametrize(("model", "label"), [("half_plus_two", "stable"), ("two", "stable"), ("two", "nope")])
def test_status_with_a_label_answers_every_version(labelled, model, label):
    server, _ = labelled
    status, body = rest_get(server, f"/v1/models/{model}/labels/{label}")
    assert status == 200
    assert body == rest_get(server, f"/v1/models/{model}")[1]
    expected = {"half_plus_two": ["123"], "two": ["124", "123"]}[model]
    assert [s["version"] for s in body["model_version_status"]] == expected
    by_label = server.model_stub().GetModelStatus(status_request(model, label=label), timeout=RPC_TIMEOUT)
    plain = server.model_stub().GetModelStatus(status_request(model), timeout=RPC_TIMEOUT)
    assert by_label.SerializeToString() == plain.SerializeToString()
    assert [s.version for s in by_label.model_version_status] == [int(v) for v in expected]


def test_status_of_an_unknown_model_with_a_label_is_not_found(labelled):
    server, _ = labelled
    status, body = rest_get(server, "/v1/models/nope/labels/stable")
    assert (status, body) == (404, {"error": "Could not find any versions of model nope"})


# ---------------------------------------------------------------- 4. scalar outputs over gRPC (AsProtoField)
def test_scalar_output_has_an_empty_tensor_shape(labelled):
    import tensorflow as tf

    server, _ = labelled
    result = server.prediction_stub().Predict(_no_input_request("counter", "get_counter"), timeout=RPC_TIMEOUT)
    output = result.outputs["output"]
    assert output.HasField("tensor_shape") and list(output.tensor_shape.dim) == []
    # TF's own proto of a float32 scalar (make_tensor_proto writes one element as AsProtoField does)
    assert output.SerializeToString() == tf.make_tensor_proto(np.float32(0.0)).SerializeToString()


def _no_input_request(model: str, signature: str):
    request = predict_request(model, [0.0], signature=signature)
    request.inputs.clear()
    return request


@pytest.mark.parametrize("value", [np.float16(1.5), np.float32(-2.25), np.float64(0.1), np.int8(-3), np.uint16(65535),
                                   np.int64(-(2 ** 40)), np.bool_(True), b"bytes\x00x",
                                   "text", np.complex64(1 - 2j), np.uint32(7), np.uint64(9)],
                         ids=lambda v: np.asarray(v).dtype.name + "-" + str(v))
def test_scalars_of_every_dtype_match_tensorflow(value):
    """For one element, TF's make_tensor_proto fills the typed field exactly as Tensor::AsProtoField does."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from serving.grpc.convert import ndarray_to_proto_field

    ours = ndarray_to_proto_field(np.asarray(value), predict_pb2.PredictResponse().outputs["o"])
    assert ours.HasField("tensor_shape")
    assert ours.SerializeToString() == tf.make_tensor_proto(value).SerializeToString()
    one = ndarray_to_proto_field(np.asarray([value]), predict_pb2.PredictResponse().outputs["o"])
    assert one.SerializeToString() == tf.make_tensor_proto(np.asarray([value])).SerializeToString()


# ---------------------------------------------------------------- 6. gRPC health (--enable_grpc_healthcheck_service)
def _health(channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


@pytest.mark.parametrize("service", ["", "ModelService", "PredictionService"])
def test_health_is_serving_under_tf_serving_names(labelled, service):
    server, sock = labelled
    for target in (server.channel(), grpc.insecure_channel(f"unix:{sock}")):
        with target as channel:
            reply = _health(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT)
        assert reply.status == SERVING


def test_health_of_an_unknown_service_is_not_found(labelled):
    server, _ = labelled
    with server.channel() as channel, pytest.raises(grpc.RpcError) as info:
        _health(channel).Check(health_pb2.HealthCheckRequest(service="tensorflow.serving.Nope"), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_service_is_off_without_the_flag(plain):
    server, _ = plain
    with server.channel() as channel, pytest.raises(grpc.RpcError) as info:
        _health(channel).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_health_turns_not_serving_while_draining(testdata):
    """A Watch stream sees SERVING, then NOT_SERVING as soon as SIGTERM starts the drain."""
    args = [f"--port={free_port()}", "--file_system_poll_wait_seconds=0", "--enable_grpc_healthcheck_service",
            f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}"]
    server = start_server(args, ready_timeout=120)
    seen: list[int] = []
    try:
        with server.channel() as channel:
            stream = _health(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
            first = next(stream)
            seen.append(first.status)
            done = threading.Event()

            def drain_watch() -> None:
                try:
                    for update in stream:
                        seen.append(update.status)
                except grpc.RpcError:
                    pass  # the server closes the stream when it stops
                done.set()

            threading.Thread(target=drain_watch, daemon=True).start()
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while NOT_SERVING not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
            stream.cancel()
            done.wait(10)
        assert server.process.wait(60) == 0
    finally:
        server.stop()
    assert seen[:2] == [SERVING, NOT_SERVING]


# ---------------------------------------------------------------- 7. log lines
def _write_warmup(version_dir: Path, count: int) -> Path:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            log = prediction_log_pb2.PredictionLog()
            log.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray([float(i)], np.float32)))
            writer.write(log.SerializeToString())
    return path


def test_log_lines_for_warmup_and_config_reload(testdata, tmp_path):
    two = tmp_path / "two"
    shutil.copytree(testdata / "saved_model_half_plus_two_2_versions", two)
    warmup = _write_warmup(two / "00000124", 3)
    config = tmp_path / "models.config"

    def write(labels: str, extra: str = "") -> None:
        config.write_text(f'model_config_list {{ config {{ name: "two" base_path: "{two}" model_platform: "tensorflow" '
                          f'model_version_policy {{ all {{}} }} {labels} }} {extra} }}')

    write("")
    args = [f"--port={free_port()}", f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1",
            "--file_system_poll_wait_seconds=0"]
    with start_server(args, ready_timeout=120) as server:
        log = server.log()
        assert (f"Finished reading warmup data for model at {warmup}. Number of warmup records read: 3. "
                "Elapsed time (microseconds): ") in log
        assert f"No warmup data file found at {two / '00000123' / 'assets.extra' / 'tf_serving_warmup_requests'}" in log
        assert f"Model config change: models added: two (base_path {two})" in log
        write('version_labels { key: "stable" value: 123 }',
              f'config {{ name: "three" base_path: "{testdata / "saved_model_half_plus_three"}" '
              'model_platform: "tensorflow" }')
        server.wait_until(lambda: "Reloaded the model config file" in server.log(), 60, "reloaded")
        log = server.log()
        assert f'Model config change: models added: three (base_path {testdata / "saved_model_half_plus_three"})' in log
        assert "Model config change: model two: labels stable -> 123 (new)" in log
        write('version_labels { key: "stable" value: 124 }')
        server.wait_until(lambda: server.log().count("Reloaded the model config file") == 2, 60, "reloaded twice")
        log = server.log()
        assert "Model config change: models removed: three" in log
        assert "Model config change: model two: labels stable 123 -> 124" in log
        server.wait_until(lambda: "Unloaded servable version {name: three version: 123}" in server.log(), 60,
                          "three unloaded")


def test_no_tensorflow_noise_on_a_cpu_only_server(plain):
    server, _ = plain
    log = server.log()
    for noise in ("cuInit", "Could not find cuda drivers", "absl::InitializeLog", "oneDNN custom operations",
                  "This TensorFlow binary is optimized", "is deprecated"):
        assert noise not in log, noise
    assert "Successfully loaded servable version {name: default version: 123}" in log


def test_the_noise_filter_keeps_real_errors():
    """Only the known CPU-only lines are dropped; any other line (C++ or Python) is written back in order."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from serving.quiet import filtered_stderr\n"
        "with filtered_stderr():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "    os.write(2, b'E0000 00:00:1.2 10 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: '\n"
        "             b'Failed call to cuInit: UNKNOWN ERROR (303)\\n')\n"
        "    os.write(2, b'E0000 00:00:1.3 10 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: '\n"
        "             b'CUDA_ERROR_SYSTEM_DRIVER_MISMATCH\\n')\n"
        "    print('a real python error', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "E0000 00:00:1.3 10 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        "a real python error",
        "after",
    ]


def test_config_change_lines_name_every_kind_of_change():
    from serving.config_changes import describe
    from serving.model_config import parse_config_text

    old = parse_config_text('model_config_list { config { name: "a" base_path: "/a" model_platform: "tensorflow" '
                            'version_labels { key: "stable" value: 1 } version_labels { key: "old" value: 1 } } '
                            'config { name: "gone" base_path: "/g" model_platform: "tensorflow" } }')
    new = parse_config_text('model_config_list { config { name: "a" base_path: "/a2" model_platform: "tensorflow" '
                            'model_version_policy { specific { versions: 1 versions: 2 } } '
                            'version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 2 } } '
                            'config { name: "b" base_path: "/b" model_platform: "onnxruntime" '
                            'version_labels { key: "stable" value: 3 } } }')
    assert describe(old, new) == [
        "Model config change: models added: b (base_path /b)",
        "Model config change: models removed: gone",
        "Model config change: model a: base_path /a -> /a2; version policy latest { num_versions: 1 } (default) -> "
        "specific { versions: 1 versions: 2 }; labels canary -> 2 (new), old 1 -> (removed), stable 1 -> 2",
        "Model config change: model b: labels stable -> 3 (new)",
    ]
    assert describe(new, new) == []
