"""`python -m serving.admin rollout` against the real local server, with clients calling `stable` all along.

Each test runs the command as a user does (a subprocess), then checks the labels, models.config, the
server's own view (label resolution, version states), the records, and that not one `stable` request
failed over gRPC or REST while the rollout promoted, rolled back, was killed or was refused.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest

from clients import GrpcClient
from serving.admin import labels as admin_labels
from serving.admin import modelsconfig
from serving.admin.rollout_state import LOCK_FILE, STATE_FILE, served_now
from tests.conftest import REPO

from .conftest import (
    ANSWERS,
    GROUP,
    PY,
    StableTraffic,
    assert_no_failed_request,
    env,
    finish,
    run_rollout,
    start_rollout,
    wait_for,
)

pytestmark = [pytest.mark.xdist_group(GROUP), pytest.mark.slow]


def _labels(fleet, name: str) -> dict[str, int]:
    return admin_labels.load_labels(fleet.models / name).labels


def _server_label(fleet, name: str, label: str) -> int | None:
    with GrpcClient(fleet.server.grpc_target, timeout=5) as client:
        return client.metadata(model=name, label=label).version


def _states(fleet, name: str) -> dict[int, str]:
    with GrpcClient(fleet.server.grpc_target, timeout=5) as client:
        return {s.version: s.state for s in client.status(model=name)}


def _report(fleet, name: str) -> dict:
    return json.loads((fleet.models / name / ".rollout-report.json").read_text())


def _rollouts(fleet, name: str, version: int) -> list[dict]:
    return json.loads((fleet.models / name / str(version) / "metadata.json").read_text()).get("rollouts", [])


def _assert_rolled_back(fleet, name: str, version: int, failed_check: str, result: str = "rolled back") -> dict:
    report = _report(fleet, name)
    assert report["result"] == result and report["failed_check"] == failed_check, report
    assert _labels(fleet, name) == {"stable": 1}
    versions, labels = served_now(fleet.models, name)
    assert version not in versions and labels == {"stable": 1}, (versions, labels)
    assert _server_label(fleet, name, "stable") == 1
    wait_for(lambda: _states(fleet, name).get(version) == "END", 30, f"version {version} unloaded")
    assert not (fleet.models / name / STATE_FILE).exists()
    (record,) = _rollouts(fleet, name, version)
    assert record["result"] == result and record["failed_check"] == failed_check
    return report


def test_rollout_promotes_with_zero_failed_stable_requests_and_rollback_undoes_it(fleet, make_model):
    name = make_model([2])
    load = StableTraffic(fleet, name).start()
    proc = run_rollout(fleet, name, "--max-p99-ratio", "4")  # the machine is shared: p99 of two tiny models is noisy
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in ("[1/7] preflight", "[4/7] verify canary", "[5/7] shadow load", "[6/7] promote", "[7/7] record"):
        assert step in proc.stdout
    wait_for(lambda: any(a[2] == ANSWERS[2] for a in list(load.answers)), 10, "stable clients see version 2")
    back = subprocess.run([PY, "-m", "serving.admin", "rollback", "--models-dir", str(fleet.models), "--name", name],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert back.returncode == 0, back.stderr
    wait_for(lambda: _server_label(fleet, name, "stable") == 1, 30, "rollback applied by the server")
    answers = load.stop()
    assert_no_failed_request(answers, {ANSWERS[1], ANSWERS[2]})
    # Within each client: 1's answer, then 2's, then 1's again after the rollback; never interleaved.
    for who in {a[0] for a in answers}:
        seq = [a[2] for a in answers if a[0] == who]
        changes = [i for i in range(1, len(seq)) if seq[i] != seq[i - 1]]
        assert len(changes) <= 2, f"{who} flapped between versions: {changes}"

    report = _report(fleet, name)
    assert report["result"] == "promoted" and report["version"] == 2 and report["previous_stable"] == 1
    names = [c["name"] for c in report["checks"]]
    assert names == ["preflight", "load", "label canary", "verify canary", "shadow errors", "shadow latency",
                     "promote"]
    shadow = next(c for c in report["checks"] if c["name"] == "shadow errors")["details"]["figures"]
    for proto in ("grpc", "rest"):
        assert shadow[proto]["canary"]["requests"] > 5 and shadow[proto]["canary"]["errors"] == 0
    (record,) = _rollouts(fleet, name, 2)
    assert record["result"] == "promoted" and record["by"] and record["started"] <= record["finished"]
    assert [c["name"] for c in record["checks"]] == names
    events = admin_labels.load_labels(fleet.models / name).events
    assert [e for e in events if e["action"] == "rollout-report"][-1]["result"] == "promoted"
    assert _labels(fleet, name) == {"stable": 1}  # after the rollback
    assert "1 stays loaded for rollback" in proc.stdout


def _wrong_weights_view(golden):
    """The server's copy: version 1 as exported, version 2 = version 1's files (same signature, other
    weights), while the models dir the rollout reads holds the real, parity-proven version 2."""
    def write(view):
        for v in (1, 2):
            shutil.copytree(golden / "1", view / str(v))
    return write


def test_wrong_outputs_are_caught_by_live_verification_and_rolled_back(fleet, make_model, golden):
    name = make_model([2], server_view=_wrong_weights_view(golden))
    load = StableTraffic(fleet, name).start()
    proc = run_rollout(fleet, name)
    answers = load.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = _assert_rolled_back(fleet, name, 2, "verify canary")
    verify = next(c for c in report["checks"] if c["name"] == "verify canary")
    assert verify["passed"] is False and "max |diff|" in verify["figure"] and "values" in verify["figure"]
    assert [c["name"] for c in report["checks"]][0] == "preflight" and report["checks"][0]["passed"]
    assert "failed check: verify canary" in proc.stdout
    assert_no_failed_request(answers, {ANSWERS[1]})


def test_slow_version_fails_the_shadow_latency_check_and_rolls_back(fleet, make_model):
    name = make_model([3])
    load = StableTraffic(fleet, name).start()
    proc = run_rollout(fleet, name, "--max-p99-ratio", "2", canary_s=2)
    answers = load.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = _assert_rolled_back(fleet, name, 3, "shadow latency")
    latency = next(c for c in report["checks"] if c["name"] == "shadow latency")
    assert latency["details"]["p99_ratio"] > 4 and "p99 canary" in latency["figure"]
    assert_no_failed_request(answers, {ANSWERS[1]})


def test_incompatible_signature_is_refused_with_the_diff_and_nothing_changes(fleet, make_model):
    name = make_model([4])
    config = (fleet.models / modelsconfig.CONFIG_FILE).read_text()
    proc = run_rollout(fleet, name)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "input 'x': shape [None, 1] -> [None, 2]" in proc.stdout
    assert "refused by preflight: signature" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert (fleet.models / modelsconfig.CONFIG_FILE).read_text() == config
    assert _labels(fleet, name) == {"stable": 1} and _rollouts(fleet, name, 4) == []


@pytest.mark.parametrize("step", ["load", "canary"])
def test_sigkill_between_steps_leaves_a_served_config_and_a_rerun_cleans_up(fleet, make_model, step):
    name = make_model([2])
    load = StableTraffic(fleet, name).start()
    held = start_rollout(fleet, name, hold=step)
    assert _states(fleet, name)[2] == "AVAILABLE"
    if step == "canary":
        assert _server_label(fleet, name, "canary") == 2
    held.kill()  # SIGKILL: no handler runs
    held.wait(30)
    assert (fleet.models / name / STATE_FILE).exists()
    # The config it left is valid and applied: stable unchanged on disk and on the server.
    modelsconfig.read_models_config(fleet.models / modelsconfig.CONFIG_FILE)
    assert _labels(fleet, name)["stable"] == 1 and _server_label(fleet, name, "stable") == 1
    assert "Failed to reload" not in fleet.server.log() and "not currently available" not in fleet.server.log()

    rerun = run_rollout(fleet, name, "--max-p99-ratio", "4")
    answers = load.stop()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "cleaned up an interrupted rollout of version 2" in rerun.stdout
    assert _labels(fleet, name) == {"stable": 2} and _server_label(fleet, name, "stable") == 2
    assert not (fleet.models / name / STATE_FILE).exists()
    assert_no_failed_request(answers, {ANSWERS[1], ANSWERS[2]})


def test_sigkill_after_promotion_is_resumed_by_the_rerun(fleet, make_model):
    name = make_model([2])
    held = start_rollout(fleet, name, "--max-p99-ratio", "4", hold="promote")
    held.kill()
    held.wait(30)
    assert _labels(fleet, name)["stable"] == 2 and _rollouts(fleet, name, 2) == []
    rerun = run_rollout(fleet, name)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resumed" in rerun.stdout
    (record,) = _rollouts(fleet, name, 2)
    assert record["result"] == "promoted" and any("resumed" in n for n in record["notes"])


def test_second_rollout_is_refused_by_the_lock_and_sigterm_rolls_the_first_back(fleet, make_model):
    name = make_model([2])
    load = StableTraffic(fleet, name).start()
    first = start_rollout(fleet, name, hold="load")
    second = run_rollout(fleet, name)
    assert second.returncode == 2
    assert f"another rollout of {name!r} is in progress (version 2" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    rc, out = finish(first, signal.SIGTERM)
    answers = load.stop()
    assert rc == 130, out
    assert "interrupted" in out and "rolling back" in out
    _assert_rolled_back(fleet, name, 2, "interrupted", result="interrupted")
    assert (fleet.models / name / LOCK_FILE).exists()  # the lock file stays; the lock itself is released
    assert_no_failed_request(answers, {ANSWERS[1]})
