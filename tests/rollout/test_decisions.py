"""The shadow-load decisions on known figures: what fails a canary and which figure the report shows."""
from __future__ import annotations

import math

from serving.admin.rollout import shadow_checks
from serving.admin.rollout_shadow import LabelFigures, ShadowResult


def _result(canary_ms: list[float], stable_ms: list[float], errors: int = 0, wrong: int = 0) -> ShadowResult:
    def figures(ms: list[float], errors: int = 0, wrong: int = 0) -> LabelFigures:
        return LabelFigures(requests=len(ms), errors=errors, wrong=wrong, latencies_ms=list(ms))

    return ShadowResult(1.0, {"grpc": {"canary": figures(canary_ms, errors, wrong), "stable": figures(stable_ms)},
                              "rest": {"canary": figures(stable_ms), "stable": figures(stable_ms)}})


def test_a_slower_canary_fails_on_the_worst_protocol_with_its_ratio():
    errors, latency = shadow_checks(_result([10.0] * 95 + [40.0] * 5, [10.0] * 100), 0.0, 1.5)
    assert errors.passed and not latency.passed
    assert latency.details["protocol"] == "grpc" and latency.details["p99_ratio"] == 4.0
    assert "grpc p99 canary" in latency.figure and "(max x1.5)" in latency.figure


def test_wrong_answers_count_as_failures_and_the_rate_is_compared_with_the_limit():
    errors, _ = shadow_checks(_result([1.0] * 100, [1.0] * 100, wrong=1), 0.0, 1.5)
    assert not errors.passed and "canary 1/200 failed or wrong (0.50%, max 0.00%)" in errors.figure
    errors, _ = shadow_checks(_result([1.0] * 100, [1.0] * 100, errors=1), 0.01, 1.5)
    assert errors.passed


def test_no_canary_answer_at_all_is_a_failure_not_a_pass():
    result = ShadowResult(1.0, {"grpc": {"canary": LabelFigures(), "stable": LabelFigures()}})
    errors, latency = shadow_checks(result, 1.0, 1.5)
    assert not errors.passed and not latency.passed and math.isinf(latency.details["p99_ratio"])
