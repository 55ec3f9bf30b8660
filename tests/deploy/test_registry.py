"""promote / rollback / prune / versions / history over version directories with export metadata, and the
one-step promote against a real local server."""
from __future__ import annotations

import getpass
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.admin import load_labels, registry
from tests.conftest import TESTDATA, free_port
from tests.deploy.conftest import Server, admin, fake_metadata, make_versions, wait_available


def policy(models_dir, name: str) -> tuple[str, list[int], dict[str, int]]:
    cfg = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((models_dir / "models.config").read_text(), cfg)
    entry = next(c for c in cfg.model_config_list.config if c.name == name)
    pol = entry.model_version_policy
    return pol.WhichOneof("policy_choice"), list(pol.specific.versions), dict(entry.version_labels)


def cells(header: str, row: str) -> dict[str, str]:
    """A table row by column (columns start where their header word starts)."""
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    ends = [*starts[1:], None]
    return {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, ends, strict=True)}


def promote(models_dir, version: int, label: str, *extra: str) -> tuple[int, str, str]:
    """One promote; a version the current models.config does not serve gets staged (two-step, as TF
    Serving needs), and here, with no server to wait for, the second run moves the label."""
    argv = ("promote", "--models-dir", str(models_dir), "--name", "m", "--version", str(version), "--label", label,
            *extra)
    rc, out, err = admin(*argv)
    if rc == 0 and "staged" in out:
        rc, out, err = admin(*argv)
        assert "staged" not in out, out
    return rc, out, err


def test_promote_refuses_missing_failed_and_unproven_versions(tmp_path):
    make_versions(tmp_path, "m", [1, 2, 3], failed=(2,), without_metadata=(3,))
    rc, _, err = promote(tmp_path, 9, "stable")
    assert rc == 2 and "no version 9" in err and "1, 2, 3" in err
    rc, _, err = promote(tmp_path, 2, "stable")
    assert rc == 2 and "failed its parity check" in err
    rc, _, err = promote(tmp_path, 3, "stable")
    assert rc == 2 and "no metadata.json" in err
    rc, _, err = promote(tmp_path, 1, "9lives")
    assert rc == 2 and "invalid label" in err
    rc, _, err = admin("promote", "--models-dir", str(tmp_path), "--name", "../m", "--version", "1", "--label", "x")
    assert rc == 2 and "invalid model name" in err
    assert load_labels(tmp_path / "m").labels == {}
    assert not (tmp_path / "models.config").exists()  # nothing written by a refused promote
    assert promote(tmp_path, 2, "stable", "--force")[0] == 0
    assert load_labels(tmp_path / "m").labels == {"stable": 2}


def test_promote_refuses_metadata_of_another_version(tmp_path):
    mdir = make_versions(tmp_path, "m", [1, 2])
    (mdir / "2" / "metadata.json").write_text((mdir / "1" / "metadata.json").read_text())  # copied dir
    rc, _, err = promote(tmp_path, 2, "stable")
    assert rc == 2 and "describes version 1" in err


def test_promote_then_rollback_walks_back_through_stables(tmp_path):
    make_versions(tmp_path, "m", [1, 2, 3])
    for v in (1, 2, 3):
        assert promote(tmp_path, v, "stable")[0] == 0
    # the rollback target (previous stable) stays loaded, so rollback is a move between loaded versions
    assert policy(tmp_path, "m") == ("specific", [2, 3], {"stable": 3})
    rc, out, _ = admin("rollback", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 0 and "stable 3 -> 2" in out
    assert policy(tmp_path, "m") == ("specific", [1, 2, 3], {"stable": 2})
    assert admin("rollback", "--models-dir", str(tmp_path), "--name", "m")[1].startswith("m: stable 2 -> 1")
    rc, _, err = admin("rollback", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 2 and "no earlier stable version" in err
    events = json.loads((tmp_path / "m" / ".labels.json").read_text())["events"]
    assert [(e["action"], e["version"], e["previous"]) for e in events] == [
        ("promote", 1, None), ("promote", 2, 1), ("promote", 3, 2), ("rollback", 2, 3), ("rollback", 1, 2)]


def test_rollback_skips_a_deleted_previous_stable(tmp_path):
    mdir = make_versions(tmp_path, "m", [1, 2, 3])
    for v in (1, 2, 3):
        promote(tmp_path, v, "stable")
    (mdir / "2").rename(mdir / ".gone-2")
    assert registry.rollback(tmp_path, "m") == (3, 1)


def test_rollback_without_stable(tmp_path):
    make_versions(tmp_path, "m", [1])
    rc, _, err = admin("rollback", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 2 and "no 'stable' label" in err


def test_promote_of_an_unserved_version_is_staged_first(tmp_path):
    """TF Serving only labels loaded versions: an unserved version is added to the policy first."""
    make_versions(tmp_path, "m", [1, 2, 3])
    admin("config", "--models-dir", str(tmp_path))  # latest: serves 3 only
    argv = ("promote", "--models-dir", str(tmp_path), "--name", "m", "--version", "1", "--label", "stable")
    rc, out, _ = admin(*argv)
    assert rc == 0 and "staged" in out
    assert load_labels(tmp_path / "m").labels == {}  # label not moved yet
    assert policy(tmp_path, "m") == ("specific", [1, 3], {})  # 1 loads next to the served 3
    rc, out, _ = admin(*argv)  # once loaded, the same command moves the label
    assert rc == 0 and "stable -> 1" in out
    assert policy(tmp_path, "m") == ("specific", [1, 3], {"stable": 1})
    # a version already served moves at once
    rc, out, _ = admin("promote", "--models-dir", str(tmp_path), "--name", "m", "--version", "3", "--label", "canary")
    assert "canary -> 3" in out and policy(tmp_path, "m") == ("specific", [1, 3], {"canary": 3, "stable": 1})


def test_promote_of_a_model_missing_from_the_config_is_staged_first(tmp_path):
    """A model the existing models.config does not list yet is added unlabelled first: a server reading the
    file would refuse the whole config if a label pointed at a version it has not loaded."""
    make_versions(tmp_path, "other", [1])
    admin("config", "--models-dir", str(tmp_path))  # lists only "other"
    make_versions(tmp_path, "m", [1, 2])
    argv = ("promote", "--models-dir", str(tmp_path), "--name", "m", "--version", "2", "--label", "stable")
    rc, out, _ = admin(*argv)
    assert rc == 0 and "staged" in out, out
    assert policy(tmp_path, "m")[2] == {} and 2 in policy(tmp_path, "m")[1]
    rc, out, _ = admin(*argv)
    assert rc == 0 and "stable -> 2" in out and policy(tmp_path, "m")[2] == {"stable": 2}


def test_prune_keeps_newest_and_labelled(tmp_path):
    mdir = make_versions(tmp_path, "m", [1, 2, 3, 4, 5])
    promote(tmp_path, 2, "stable")
    rc, out, _ = admin("prune", "--models-dir", str(tmp_path), "--name", "m", "--keep", "2")
    assert rc == 0 and "deleted 1, 3" in out and "kept labelled 2" in out
    assert sorted(p.name for p in mdir.iterdir() if p.name.isdigit()) == ["2", "4", "5"]
    assert not list(mdir.glob(".trash-*"))
    assert (mdir / ".staging-abc123").is_dir() and (mdir / ".registry.json").is_file()  # not ours: untouched
    assert policy(tmp_path, "m") == ("specific", [2, 5], {"stable": 2})
    rc, _, err = admin("prune", "--models-dir", str(tmp_path), "--name", "m", "--keep", "0")
    assert rc == 2 and "at least 1" in err


def test_prune_finishes_a_crashed_prune(tmp_path):
    mdir = make_versions(tmp_path, "m", [1, 2])
    (mdir / ".trash-1-deadbeef" / "variables").mkdir(parents=True)
    assert registry.prune(tmp_path, "m", 5).deleted == ()
    assert not (mdir / ".trash-1-deadbeef").exists()


def test_versions_table(tmp_path):
    make_versions(tmp_path, "m", [1, 2, 3], failed=(2,), without_metadata=(3,))
    promote(tmp_path, 1, "stable")
    promote(tmp_path, 1, "canary")
    rc, out, _ = admin("versions", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 0
    header, *rows = out.strip().splitlines()
    assert header.split() == ["VERSION", "CREATED", "LABELS", "PARITY", "ONNX", "TOTAL", "SAVED_MODEL", "ONNX_SIZE",
                              "NOTES"]  # no TAGS/DESCRIPTION: no version has them
    assert [r.split()[0] for r in rows] == ["3", "2", "1"]  # newest first
    row = {r.split()[0]: r for r in rows}
    assert "canary,stable" in row["1"] and "pass (rtol=1e-05, atol=1e-05)" in row["1"]
    assert "2.0 KiB" in row["1"] and "1.0 KiB" in row["1"] and "512 B" in row["1"]
    assert "FAIL" in row["2"] and "forced" in row["2"]
    assert "unknown" in row["3"] and "no metadata.json" in row["3"]
    rc, _, err = admin("versions", "--models-dir", str(tmp_path), "--name", "nope")
    assert rc == 2 and "not found" in err


def test_versions_table_shows_description_tags_and_onnx_status(tmp_path):
    mdir = make_versions(tmp_path, "m", [1, 2, 3])
    for v, extra in ((2, {"onnx": {"status": "failed", "error": "tf2onnx: unsupported op"}, "tags": ["nightly"]}),
                     (3, {"onnx": {"status": "ok"}, "description": "retrained on\nMay data " + "x" * 80,
                          "tags": ["prod", "v3"]})):
        (mdir / str(v) / "metadata.json").write_text(json.dumps(fake_metadata("m", v, **extra)))
    rc, out, _ = admin("versions", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 0
    header, *rows = out.strip().splitlines()
    assert header.split()[-3:] == ["NOTES", "TAGS", "DESCRIPTION"]
    row = {r.split()[0]: cells(header, r) for r in rows}
    # 1: exported before the status existed, when every published version had a model.onnx: it reads as ok
    assert [row[v]["ONNX"] for v in "321"] == ["ok", "failed", "ok"]
    assert [row[v]["TAGS"] for v in "321"] == ["prod,v3", "nightly", "-"]
    assert row["3"]["DESCRIPTION"] == "retrained on May data " + "x" * 35 + "..."  # one line, cut at 60
    assert row["2"]["DESCRIPTION"] == "-"


def test_versions_without_name_lists_every_model(tmp_path):
    make_versions(tmp_path, "b", [1, 2])
    make_versions(tmp_path, "a", [1])
    (tmp_path / "empty").mkdir()  # no versions: not a model
    rc, out, _ = admin("versions", "--models-dir", str(tmp_path))
    assert rc == 0
    header, *rows = out.strip().splitlines()
    assert header.split()[:2] == ["MODEL", "VERSION"]
    assert [r.split()[:2] for r in rows] == [["a", "1"], ["b", "2"], ["b", "1"]]
    rc, out, _ = admin("versions", "--models-dir", str(tmp_path / "empty"))
    assert rc == 0 and "no exported models" in out
    rc, _, err = admin("versions", "--models-dir", str(tmp_path / "missing"))
    assert rc == 2 and "does not exist" in err


def test_history_shows_label_moves_with_who_and_when(tmp_path):
    make_versions(tmp_path, "m", [1, 2])
    rc, out, _ = admin("history", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 0 and "no label moves yet" in out
    for v in (1, 2):
        promote(tmp_path, v, "stable")
    admin("rollback", "--models-dir", str(tmp_path), "--name", "m")
    rc, out, _ = admin("history", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 0
    header, *rows = out.strip().splitlines()
    assert header.split() == ["AT", "ACTION", "LABEL", "VERSION", "PREVIOUS", "BY", "DETAILS"]
    assert [r.split()[1:6] for r in rows] == [["promote", "stable", "1", "-", getpass.getuser()],
                                              ["promote", "stable", "2", "1", getpass.getuser()],
                                              ["rollback", "stable", "1", "2", getpass.getuser()]]
    assert all(r.split()[0].endswith("Z") for r in rows)
    # events written before "by" was recorded, or by other tools, still show
    doc = json.loads((tmp_path / "m" / ".labels.json").read_text())
    doc["events"].append({"at": "2026-01-01T00:00:00Z", "action": "rollout-report", "version": 2, "result": "ok"})
    (tmp_path / "m" / ".labels.json").write_text(json.dumps(doc))
    last = admin("history", "--models-dir", str(tmp_path), "--name", "m")[1].strip().splitlines()[-1].split()
    assert last == ["2026-01-01T00:00:00Z", "rollout-report", "-", "2", "-", "-", "result=ok"]


def test_prune_dry_run_deletes_nothing_and_says_what(tmp_path):
    mdir = make_versions(tmp_path, "m", [1, 2, 3, 4])
    (mdir / "1" / "blob").write_bytes(b"x" * 3000)
    promote(tmp_path, 2, "stable")
    config_before = (tmp_path / "models.config").read_text()
    rc, out, _ = admin("prune", "--models-dir", str(tmp_path), "--name", "m", "--keep", "1", "--dry-run")
    assert rc == 0 and out.startswith("m: would delete 1, 3 (") and "kept labelled 2" in out, out
    assert "KiB" in out and "without DRY_RUN=1" in out
    assert sorted(p.name for p in mdir.iterdir() if p.name.isdigit()) == ["1", "2", "3", "4"]
    assert (tmp_path / "models.config").read_text() == config_before
    rc, out, _ = admin("prune", "--models-dir", str(tmp_path), "--name", "m", "--keep", "1")
    assert rc == 0 and out.startswith("m: deleted 1, 3 (")
    assert sorted(p.name for p in mdir.iterdir() if p.name.isdigit()) == ["2", "4"]


def test_staged_message_never_prints_none(tmp_path):
    make_versions(tmp_path, "m", [1, 2, 3])
    admin("config", "--models-dir", str(tmp_path))
    port = free_port()  # nothing listens there
    rc, out, _ = admin("promote", "--models-dir", str(tmp_path), "--name", "m", "--version", "1", "--label",
                       "stable", "--server", f"127.0.0.1:{port}")
    assert rc == 0 and "staged" in out and "None" not in out, out
    assert "stable is not set yet" in out and f"no server serving m answered at 127.0.0.1:{port}" in out


@pytest.mark.slow
def test_promote_in_one_step_when_a_server_serves_the_model(tmp_path):
    """`make promote` passes --server localhost:REST_PORT: a version the server does not load yet is staged,
    loaded by the polling server, then labelled, in one command."""
    models = tmp_path / "models"
    shutil.copytree(TESTDATA / "saved_model_half_plus_two_2_versions", models / "hp2")
    for v in (123, 124):  # the fixture's directories are 00000123 and 00000124
        (models / "hp2" / f"{v:08d}" / "metadata.json").write_text(json.dumps(fake_metadata("hp2", v)))
    assert admin("config", "--models-dir", str(models))[0] == 0  # latest only: serves 124
    rest = free_port()
    with Server(["--port", str(free_port()), "--rest_api_port", str(rest), "--model_config_file",
                 str(models / "models.config"), "--model_config_file_poll_wait_seconds=1",
                 "--file_system_poll_wait_seconds=1"]) as server:
        wait_available(server, "hp2", 124, timeout=120)
        rc, out, err = admin("promote", "--models-dir", str(models), "--name", "hp2", "--version", "123",
                             "--label", "stable", "--server", server.rest, "--wait-timeout", "90")
        assert rc == 0, err
        assert "waiting for" in out and "stable -> 123; updated" in out and "staged in" not in out, out
        assert policy(models, "hp2") == ("specific", [123, 124], {"stable": 123})
        # a server that does not serve the model is not waited on
        make_versions(models, "other", [1, 2])
        admin("config", "--models-dir", str(models))
        rc, out, _ = admin("promote", "--models-dir", str(models), "--name", "other", "--version", "1",
                           "--label", "stable", "--server", server.rest)
        assert rc == 0 and "staged" in out and "no server serving other answered" in out


def test_corrupt_metadata_and_labels_are_named(tmp_path):
    mdir = make_versions(tmp_path, "m", [1])
    (mdir / "1" / "metadata.json").write_text("{not json")
    rc, _, err = admin("versions", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 2 and str(mdir / "1" / "metadata.json") in err
    (mdir / "1" / "metadata.json").unlink()
    (mdir / ".labels.json").write_text('{"labels": {"stable": "one"}}')
    rc, _, err = admin("versions", "--models-dir", str(tmp_path), "--name", "m")
    assert rc == 2 and ".labels.json" in err and "'one'" in err


def test_concurrent_promotes_do_not_lose_updates(tmp_path):
    make_versions(tmp_path, "m", list(range(1, 9)))
    labels = [f"l{i}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda label: registry.promote(tmp_path, "m", 8, label), labels))
    assert all(not r.staged for r in results)  # .result() re-raised any failure
    assert load_labels(tmp_path / "m").labels == dict.fromkeys(labels, 8)
    assert policy(tmp_path, "m")[2] == dict.fromkeys(labels, 8)


def test_public_api_names_exist():
    import serving.admin
    import serving.configfiles

    for module in (serving.admin, serving.configfiles):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)
    assert {"promote", "rollback", "prune", "write_models_config", "write_server_configs"} <= set(serving.admin.__all__)
