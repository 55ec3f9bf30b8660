"""Graceful shutdown on SIGTERM: requests in flight finish with their answer, new requests are refused
cleanly and at once (HTTP 503 / gRPC UNAVAILABLE while draining, then connection refused; never a 500, an
INTERNAL, a hang or a wrong answer), and the process exits 0."""
from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest

from .client import grpc_predict, http_call
from .conftest import serve
from .figures import record
from .load import Answer, LoadGenerator
from .models import install_atomically, write_models_config, write_onnx_affine, write_onnx_slow

pytestmark = pytest.mark.xdist_group("reliability-shutdown")

SLOW_CALL = b'{"instances": [[2.0]]}'


def _refusal_kind(answer: Answer) -> str:
    """How a request sent to a server that is shutting down failed: 'refused' (HTTP 503, gRPC UNAVAILABLE,
    connection refused), 'reset' (the listener closed with the connection still in the kernel's accept queue,
    or gRPC cancelled a call arriving while it stopped: no byte of an answer, nothing was run), or 'unclean'
    (anything else: a 500, INTERNAL, a timeout...)."""
    error = answer.error or ""
    if error.startswith(("HTTP 503", "UNAVAILABLE")) or "ConnectionRefusedError" in error:
        return "refused"
    if any(kind in error for kind in ("ConnectionResetError", "RemoteDisconnected", "BrokenPipeError")) \
            or error.startswith("CANCELLED"):
        return "reset"
    return "unclean"


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    for name, build in (("fast", lambda d: write_onnx_affine(d, 0.5, 2.0)),
                        ("slow", lambda d: write_onnx_slow(d, seconds=1.0))):
        (tmp_path / name).mkdir()
        install_atomically(build, tmp_path / name, 1)
    return write_models_config(tmp_path / "models.config", [
        {"name": n, "base_path": tmp_path / n, "platform": "onnxruntime"} for n in ("fast", "slow")])


def test_sigterm_finishes_in_flight_and_refuses_new_requests_cleanly(config: Path) -> None:
    server = serve("--model_config_file", str(config), "--file_system_poll_wait_seconds", "0")
    try:
        stub = server.prediction_stub()
        load = LoadGenerator(server, "fast", rest_clients=2, grpc_clients=2, max_seconds=60, timeout=10).start()
        assert load.wait_all_clients(3.0, 30)
        with ThreadPoolExecutor(4) as pool:
            rest_inflight = [pool.submit(http_call, server.rest_url, "POST", "/v1/models/slow:predict", SLOW_CALL)
                             for _ in range(2)]
            grpc_inflight = [pool.submit(grpc_predict, stub, "slow", np.array([[2.0]]), timeout=60) for _ in range(2)]
            time.sleep(0.3)  # let the slow calls reach the model (each runs for ~2 s)
            assert not any(f.done() for f in rest_inflight + grpc_inflight), "slow calls finished before SIGTERM"
            sigterm_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            rest_answers = [f.result(timeout=60) for f in rest_inflight]
            grpc_answers = [f.result(timeout=60) for f in grpc_inflight]
        try:
            exit_code = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server still running 30 s after SIGTERM:\n{server.log()[-4000:]}")
        exited_at = time.monotonic()
        time.sleep(0.3)  # requests sent to the closed ports
        answers = load.stop()
        # after the exit both ports are closed: connection refused / UNAVAILABLE at once
        with pytest.raises(ConnectionRefusedError):
            http_call(server.rest_url, "POST", "/v1/models/fast:predict", SLOW_CALL, timeout=5)
        with pytest.raises(grpc.RpcError) as info:
            grpc_predict(stub, "fast", np.array([[2.0]]), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()

    # a request sent just before SIGTERM may reach the server after it: it may be refused too
    after = [a for a in answers if a.received > sigterm_at]
    kinds = [_refusal_kind(a) for a in answers if a.error]
    unclean = [a for a in answers if a.error and _refusal_kind(a) == "unclean"]
    slow = [a for a in answers if a.error and a.received - a.sent > 5.0]
    wrong = [a for a in answers if not a.error and a.value != 3.0]
    record("shutdown", {
        "in_flight_at_sigterm": len(rest_answers) + len(grpc_answers),
        "in_flight_completed": sum(a.status == 200 for a in rest_answers) + len(grpc_answers),
        "requests_answered_after_sigterm": len(after), "served_after_sigterm": sum(not a.error for a in after),
        "refused": kinds.count("refused"), "reset_before_any_answer": kinds.count("reset"),
        "unclean_failures": len(unclean), "failures_slower_than_5s": len(slow),
        "exit_code": exit_code, "seconds_to_exit": round(exited_at - sigterm_at, 2),
    })
    for answer in rest_answers:
        assert answer.status == 200 and answer.json() == {"predictions": [[3.0]]}, answer
    for y, version in grpc_answers:
        assert y.tolist() == [[3.0]] and version == 1
    assert exit_code == 0
    assert not wrong, wrong[:3]
    assert not [a for a in answers if a.error and a.received < sigterm_at], "a request failed before SIGTERM"
    assert not unclean, f"{len(unclean)} unclean failures after SIGTERM, e.g. {unclean[:3]}"
    assert not slow, f"{len(slow)} requests hung before failing, e.g. {slow[:3]}"
    assert any(a.error for a in after), "no request was refused: the load stopped too early to prove anything"

