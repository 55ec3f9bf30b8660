"""The small public surface of serving.rest and its helpers that need no model: exports, deadline, metrics path."""
from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

import serving.rest
from serving.errors import DeadlineExceeded
from serving.monitoring import Metrics, MonitoringSettings
from serving.rest import prometheus
from serving.rest.deadline import TIMEOUT_MESSAGE, CallPool


def test_public_names_are_exactly_the_documented_ones() -> None:
    assert sorted(serving.rest.__all__) == ["DEFAULT_MAX_BODY_BYTES", "RestServer"]
    assert all(hasattr(serving.rest, name) for name in serving.rest.__all__)


def test_rest_server_refuses_a_non_positive_body_limit() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        serving.rest.RestServer(None, "127.0.0.1", 0, timeout_ms=None, monitoring=None, max_body_bytes=0)


def test_port_before_start_is_an_error_and_stop_before_start_is_a_no_op() -> None:
    server = serving.rest.RestServer(None, "127.0.0.1", 0, timeout_ms=None, monitoring=None, max_body_bytes=10)
    with pytest.raises(RuntimeError):
        _ = server.port
    server.stop()
    assert server.in_flight == 0


def test_call_pool_gives_up_at_the_timeout_and_cancels_queued_calls() -> None:
    pool = CallPool(1, 0.05)
    release, ran = threading.Event(), []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:  # occupies the only worker
            await pool.run(lambda: release.wait(5), deadline_at=pool.deadline_at(loop.time()))
        assert info.value.message == TIMEOUT_MESSAGE and info.value.http_status == 504
        assert time.monotonic() - start < 1
        with pytest.raises(DeadlineExceeded):  # still queued at its deadline: cancelled, never run
            await pool.run(lambda: ran.append("queued"), deadline_at=pool.deadline_at(loop.time()))
        with pytest.raises(DeadlineExceeded):  # its time was spent before it reached the pool: never run
            await pool.run(lambda: ran.append("late"), deadline_at=pool.deadline_at(loop.time() - 0.06))
        release.set()
        assert await pool.run(lambda: 42, deadline_at=pool.deadline_at(loop.time())) == 42
        assert await pool.run(lambda: release.wait(5) and 1) == 1  # no deadline
        assert ran == []

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool.close()


def test_call_pool_runs_off_the_loop_thread_and_passes_errors_through() -> None:
    pool = CallPool(2, None)

    async def scenario() -> None:
        assert await pool.run(threading.current_thread) is not threading.current_thread()
        request = contextvars.ContextVar("request")
        request.set("r1")
        assert await pool.run(request.get) == "r1"  # the caller's context travels with the call
        with pytest.raises(KeyError):
            await pool.run(lambda: {}["missing"])

    try:
        asyncio.run(scenario())
    finally:
        pool.close()
    with pytest.raises(ValueError, match="threads"):
        CallPool(0, None)


def test_metrics_path_defaults_to_tf_serving_path() -> None:
    metrics = Metrics()
    assert prometheus.metrics_path(None) is None
    assert prometheus.metrics_path(MonitoringSettings("", metrics)) == "/monitoring/prometheus/metrics"
    assert prometheus.metrics_path(MonitoringSettings("/m", metrics)) == "/m"
    assert "# TYPE :tensorflow:serving:request_count counter" in prometheus.page("/m", MonitoringSettings("/m", metrics))
