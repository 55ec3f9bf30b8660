"""Preflight refusals, from the files alone (no server is needed, none is touched): each names its check
and its figure, and leaves models.config, the labels and the records exactly as they were."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serving.admin import labels as admin_labels
from serving.admin import modelsconfig
from serving.admin.rollout import RolloutOptions, rollout

from .conftest import GROUP

pytestmark = pytest.mark.xdist_group(GROUP)  # shares the (session) export with the live tests


@pytest.fixture
def models(tmp_path: Path, golden: Path) -> Path:
    models = tmp_path / "models"
    for v in (1, 2):
        shutil.copytree(golden / str(v), models / "tiny" / str(v))
    state = admin_labels.LabelState()
    state.assign("stable", 1)
    admin_labels.save_labels(models / "tiny", state)
    modelsconfig.write_models_config(models)
    return models


def _refused(models: Path, capsys, version: int | None = 2) -> tuple[dict, str]:
    before = {p: p.read_bytes() for p in models.rglob("*") if p.is_file()}
    # Port 9 (discard) on loopback: a preflight refusal must never get as far as calling the server.
    report = rollout(RolloutOptions(models, "tiny", "127.0.0.1:9,127.0.0.1:9", version, canary_s=1))
    out = capsys.readouterr().out
    assert report.result == "refused", out
    ours = {models / "tiny" / ".rollout-report.json", models / "tiny" / ".rollout.lock"}  # the report; the lock
    after = {p: p.read_bytes() for p in models.rglob("*") if p.is_file() and p not in ours}
    assert after == {p: b for p, b in before.items() if p not in ours}, "a refused rollout changed files"
    written = models / "tiny" / ".rollout-report.json"
    assert not (models / "tiny" / ".rollout.json").exists()
    return json.loads(written.read_text()), out


def test_a_changed_file_is_refused_before_the_server_sees_it(models, capsys):
    (models / "tiny" / "2" / "variables" / "variables.index").write_bytes(b"half-synced")
    report, out = _refused(models, capsys)
    assert report["failed_check"] == "preflight: files intact"
    assert "changed variables/variables.index" in out


def test_a_forced_export_is_refused(models, capsys):
    meta_path = models / "tiny" / "2" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["forced"] = True
    meta["parity"]["passed"] = False
    meta["parity"]["failures"] = [{"detail": "max abs diff 0.3 > atol"}]
    meta_path.write_text(json.dumps(meta))
    report, out = _refused(models, capsys)
    assert report["failed_check"] == "preflight: export parity" and "max abs diff 0.3" in out


def test_without_a_stable_label_or_with_a_missing_version_it_is_refused(models, capsys):
    report, out = _refused(models, capsys, version=7)
    assert report["failed_check"] == "preflight: version exists" and "versions: 1, 2" in out
    admin_labels.save_labels(models / "tiny", admin_labels.LabelState())
    report, out = _refused(models, capsys)
    assert report["failed_check"] == "preflight: stable label" and "make promote" in out


def test_the_newest_version_is_the_default_and_the_stable_one_is_refused(models, capsys):
    shutil.rmtree(models / "tiny" / "2")
    report, out = _refused(models, capsys, version=None)
    assert report["version"] is None and "version 1 of 'tiny' is already stable" in out
