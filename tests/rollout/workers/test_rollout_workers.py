"""A rollout against `--num_workers=2`: the supervisor applies each models.config change on both workers, so
`stable` never fails on either one while the canary is loaded, verified, promoted, and rolled back."""
from __future__ import annotations

import json

import pytest

from serving.admin import labels as admin_labels

from ..conftest import ANSWERS, GROUP, StableTraffic, assert_no_failed_request, run_rollout, wait_for

pytestmark = [pytest.mark.xdist_group(GROUP), pytest.mark.slow]


def test_rollout_on_two_workers_promotes_with_zero_failed_stable_requests(fleet, make_model):
    name = make_model([2])
    load = StableTraffic(fleet, name).start()
    proc = run_rollout(fleet, name, "--max-p99-ratio", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_for(lambda: any(a[2] == ANSWERS[2] for a in list(load.answers)), 10, "stable clients see version 2")
    answers = load.stop()
    assert_no_failed_request(answers, {ANSWERS[1], ANSWERS[2]})
    report = json.loads((fleet.models / name / ".rollout-report.json").read_text())
    assert report["result"] == "promoted" and report["version"] == 2
    assert admin_labels.load_labels(fleet.models / name).labels == {"stable": 2}
    # Both workers answered during the rollout (new connections spread over them by SO_REUSEPORT).
    assert "Worker 0 (pid" in fleet.server.log() and "Worker 1 (pid" in fleet.server.log()
