"""Client mechanics against real sockets: retries on 503/UNAVAILABLE only, deadlines, keep-alive reuse,
gzip bodies, thread safety, and the error mapping. The HTTP peer is a real ``http.server`` on loopback whose
answers the test scripts (the client under test is not mocked). The scripted peers have no metadata endpoint,
so the clients here run with ``validate=False`` (input checks: tests/clients/test_validation.py)."""
from __future__ import annotations

import gzip
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest

import clients
from clients import errors
from clients.grpc_client import GrpcClient
from clients.rest_client import RestClient
from clients.retry import RetryPolicy, call_with_retries
from tests.conftest import free_port

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


class ScriptedServer:
    """Answers each POST with the next (status, body, delay) of ``script`` (the last one repeats)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                outer.requests.append({"path": self.path, "peer": self.client_address[1], "body": raw,
                                       "encoding": self.headers.get("Content-Encoding")})
                status, body, delay = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                time.sleep(delay)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up first (the deadline test)

            do_POST = do_GET = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


OK = (200, {"outputs": {"y": [[1.0, 2.0]]}}, 0)
UNAVAILABLE = (503, {"error": "Server is shutting down"}, 0)


def test_rest_retries_503_then_succeeds():
    with ScriptedServer([UNAVAILABLE, UNAVAILABLE, OK]) as server, \
            RestClient(server.target, validate=False, retry=FAST, typed_outputs=False) as client:
        out = client.predict({"x": np.ones((1, 2), np.float32)}, model="m")
    assert out["y"].tolist() == [[1.0, 2.0]]
    assert len(server.requests) == 3
    assert json.loads(server.requests[0]["body"]) == {"inputs": {"x": [[1.0, 1.0]]}}
    assert server.requests[0]["path"] == "/v1/models/m:predict"


def test_rest_retries_are_bounded_and_carry_the_servers_message():
    with ScriptedServer([UNAVAILABLE]) as server, \
            RestClient(server.target, validate=False, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01)) as client:
        with pytest.raises(errors.ServerUnavailableError, match="Server is shutting down") as info:
            client.predict({"x": np.ones(1)}, model="m")
    assert len(server.requests) == 2
    assert info.value.code == "UNAVAILABLE" and info.value.http_status == 503


@pytest.mark.parametrize("status,cls,code", [
    (400, errors.InvalidInputError, "INVALID_ARGUMENT"), (404, errors.ModelNotFoundError, "NOT_FOUND"),
    (429, errors.ResourceExhaustedError, "RESOURCE_EXHAUSTED"), (500, errors.ServingClientError, "INTERNAL"),
    (504, errors.DeadlineExceededError, "DEADLINE_EXCEEDED"),
])
def test_rest_other_errors_are_not_retried(status, cls, code):
    with ScriptedServer([(status, {"error": "the server said no"}, 0), OK]) as server, \
            RestClient(server.target, validate=False, retry=FAST) as client:
        with pytest.raises(cls, match="the server said no") as info:
            client.predict({"x": np.ones(1)}, model="m", version=3)
    assert len(server.requests) == 1 and server.requests[0]["path"] == "/v1/models/m/versions/3:predict"
    assert info.value.code == code and info.value.http_status == status


def test_rest_deadline_covers_the_whole_call():
    with ScriptedServer([(200, {"outputs": [1.0]}, 1.0)]) as server, RestClient(server.target, validate=False) as client:
        start = time.monotonic()
        with pytest.raises(errors.DeadlineExceededError):
            client.predict({"x": np.ones(1)}, model="m", timeout=0.2)
        assert time.monotonic() - start < 0.9


def test_rest_keep_alive_reuses_one_connection_and_is_thread_safe():
    with ScriptedServer([OK]) as server, RestClient(server.target, validate=False, typed_outputs=False, pool_size=4) as client:
        for _ in range(5):
            client.predict({"x": np.ones(2)}, model="m")
        assert len({r["peer"] for r in server.requests[:5]}) == 1  # one TCP connection for sequential calls

        def call(i):
            return client.predict({"x": np.full(2, i)}, model="m", label="stable")["y"].tolist()

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, range(64)))
    assert results == [[[1.0, 2.0]]] * 64
    assert len(server.requests) == 69
    assert len({r["peer"] for r in server.requests}) <= 8 + 1
    assert server.requests[-1]["path"] == "/v1/models/m/labels/stable:predict"


def test_rest_gzip_compresses_large_bodies_only():
    with ScriptedServer([OK]) as server, \
            RestClient(server.target, validate=False, gzip=True, gzip_min_bytes=100, typed_outputs=False) as client:
        client.predict({"x": np.zeros(1000)}, model="m")
        client.predict({"x": np.zeros(1)}, model="m")
    assert [r["encoding"] for r in server.requests] == ["gzip", None]
    assert json.loads(server.requests[0]["body"])["inputs"]["x"] == [0.0] * 1000


def test_rest_output_filter_is_applied_by_the_client():
    answer = (200, {"outputs": {"a": [1], "b": [2]}}, 0)
    with ScriptedServer([answer]) as server, RestClient(server.target, validate=False, typed_outputs=False) as client:
        assert list(client.predict({"x": np.ones(1)}, model="m", output_filter=["b"])) == ["b"]
        with pytest.raises(errors.InvalidInputError, match="zz"):
            client.predict({"x": np.ones(1)}, model="m", output_filter=["zz"])


@pytest.mark.parametrize("make", [lambda t: GrpcClient(t, retry=FAST), lambda t: RestClient(t, retry=FAST)])
def test_connection_refused_is_server_unavailable_after_bounded_retries(make):
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with make(target) as client, pytest.raises(errors.ServerUnavailableError) as info:
        client.status(model="m", timeout=5)
    assert time.monotonic() - start < 4
    assert info.value.code == "UNAVAILABLE"


def test_grpc_deadline_is_deadline_exceeded():
    server = grpc.server(ThreadPoolExecutor(2))

    def slow(request, context):
        time.sleep(1.0)
        return b""

    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "tensorflow.serving.ModelService", {"GetModelStatus": grpc.unary_unary_rpc_method_handler(slow)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with GrpcClient(f"127.0.0.1:{port}") as client, pytest.raises(errors.DeadlineExceededError):
            client.status(model="m", timeout=0.2)
    finally:
        server.stop(0)


def test_retry_policy_backoff_grows_and_is_capped():
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=0.3, multiplier=2, jitter=0)
    assert [policy.backoff(i) for i in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]
    calls = []

    def attempt(left):
        calls.append(left)
        raise errors.InvalidInputError("bad")

    with pytest.raises(errors.InvalidInputError):
        call_with_retries(attempt, 1.0, policy)
    assert len(calls) == 1
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_every_named_error_maps_to_a_specific_status():
    for name in errors.HTTP_STATUS:
        err = errors.error_for_code(name, "m")
        assert err.code == name and err.message == "m" and isinstance(err, errors.ServingClientError)
    for cls in (errors.InvalidInputError, errors.ModelNotFoundError, errors.ServerUnavailableError,
                errors.DeadlineExceededError, errors.ResourceExhaustedError, errors.PermissionDeniedError):
        err = cls("x")
        assert err.code not in ("UNKNOWN", "INTERNAL") and err.http_status != 500
        assert errors.error_for_code(err.code, "x").__class__ is cls
    for status in (400, 404, 429, 503, 504):
        assert errors.error_for_http(status, "x").http_status == status
    assert {c.name for c in grpc.StatusCode} >= set(errors.HTTP_STATUS)


def test_public_names_are_complete_and_resolve():
    for name in clients.__all__:
        assert getattr(clients, name) is not None
    assert set(clients.__all__) >= {"GrpcClient", "RestClient", "ServingClient", "TlsConfig", "RetryPolicy",
                                    "ServingClientError", "ModelNotFoundError", "InvalidInputError",
                                    "ServerUnavailableError", "DeadlineExceededError", "ResourceExhaustedError"}
    assert issubclass(clients.GrpcClient, clients.ServingClient)
    assert issubclass(clients.RestClient, clients.ServingClient)


def test_arguments_are_checked_before_sending():
    client = RestClient("127.0.0.1:1")
    with pytest.raises(ValueError, match="version or a label"):
        client.predict(np.ones(1), model="m", version=1, label="x")
    with pytest.raises(ValueError, match="model name"):
        client.status(model="")
    with pytest.raises(ValueError, match="host:port"):
        RestClient("localhost")
    with pytest.raises(ValueError, match="host:port"):
        GrpcClient("http://localhost:8500")


def test_feature_dicts_become_examples_and_rest_json():
    from clients.examples import to_example, to_json_example
    from clients.messages import Example

    features = {"i": 3, "b": True, "f": [0.5, 1.5], "s": "é", "raw": b"\xff", "arr": np.array([1, 2])}
    example = to_example(features, Example)
    feature = example.features.feature
    assert list(feature["i"].int64_list.value) == [3] and list(feature["b"].int64_list.value) == [1]
    assert list(feature["f"].float_list.value) == [0.5, 1.5] and list(feature["arr"].int64_list.value) == [1, 2]
    assert list(feature["s"].bytes_list.value) == ["é".encode()] and list(feature["raw"].bytes_list.value) == [b"\xff"]
    assert to_json_example(features) == {"i": 3, "b": 1, "f": [0.5, 1.5], "s": {"b64": "w6k="},
                                         "raw": {"b64": "/w=="}, "arr": [1, 2]}
    with pytest.raises(ValueError, match="mixes value kinds"):
        to_example({"x": [1, "a"]}, Example)
    with pytest.raises(ValueError, match="no values"):
        to_json_example({"x": []})
