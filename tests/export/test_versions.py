"""Version allocation, the ledger and atomic publish, with real processes and real flocks (no TensorFlow)."""
from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from export.errors import VersionError
from export.metadata import METADATA_FILE, read_metadata, version_dirs
from export.versions import (
    LEDGER_FILE,
    LOCK_FILE,
    STAGING_PREFIX,
    check_available,
    clean_stale_staging,
    create_staging,
    model_lock,
    publish,
    read_ledger,
    remove_if_unused,
)


def _write_meta(path: Path, number: int) -> None:
    (path / METADATA_FILE).write_text(json.dumps({"schema": 1, "name": path.parent.name, "version": number}))


def _stage_and_publish(model_dir: str, queue) -> None:
    staging = create_staging(Path(model_dir))
    (staging.path / "saved_model.pb").write_bytes(b"x" * 1000)
    number, _ = publish(staging, None, _write_meta)
    queue.put(number)


def test_first_version_is_1_and_layout(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    staging = create_staging(model_dir)
    assert staging.path.name.startswith(STAGING_PREFIX) and not staging.path.name.isdigit()
    (staging.path / "payload").write_text("ok")
    number, target = publish(staging, None, _write_meta)
    assert (number, target) == (1, model_dir / "1")
    assert (target / "payload").read_text() == "ok" and read_metadata(target)["version"] == 1
    assert json.loads((model_dir / LEDGER_FILE).read_text()) == {"name": "m", "versions_used": [1]}
    assert not list(model_dir.glob(STAGING_PREFIX + "*")) and not list(model_dir.glob(".registry-*"))


def test_next_number_counts_ledger_and_padded_dirs(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    (model_dir / "00000123").mkdir(parents=True)  # TF Serving accepts zero-padded numbers
    (model_dir / "notes").mkdir()
    assert [n for n, _ in version_dirs(model_dir)] == [123]
    assert publish(create_staging(model_dir), None, _write_meta)[0] == 124
    with pytest.raises(VersionError, match="already exists"):
        check_available(model_dir, 123)
    with pytest.raises(VersionError, match="positive"):
        check_available(model_dir, 0)


def test_requested_version_refused_under_the_lock(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    publish(create_staging(model_dir), 5, _write_meta)
    staging = create_staging(model_dir)
    with pytest.raises(VersionError, match="already exists"):
        publish(staging, 5, _write_meta)
    staging.discard()
    assert [n for n, _ in version_dirs(model_dir)] == [5] and read_ledger(model_dir)["versions_used"] == [5]


def test_concurrent_publishes_get_distinct_numbers(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_stage_and_publish, args=(str(model_dir), queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    numbers = sorted(queue.get(timeout=5) for _ in procs)
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert [n for n, _ in version_dirs(model_dir)] == numbers
    assert read_ledger(model_dir)["versions_used"] == numbers
    assert all(read_metadata(p)["version"] == n for n, p in version_dirs(model_dir))


def test_dead_exporters_staging_is_cleaned_live_ones_kept(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    code = ("import sys, os; from pathlib import Path; from export.versions import create_staging; "
            "s = create_staging(Path(sys.argv[1])); (s.path / 'saved_model.pb').write_text('partial'); "
            "print(s.path, flush=True); os._exit(9)")  # dies without cleaning up, like kill -9
    dead = Path(subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True,
                               check=False).stdout.strip())
    assert dead.is_dir() and dead.name.startswith(STAGING_PREFIX)
    live = create_staging(model_dir)  # creating a staging dir cleans the dead one first
    assert not dead.exists() and live.path.is_dir()
    assert clean_stale_staging(model_dir) == []  # our own live staging is locked: never removed
    assert live.path.is_dir()
    live.discard()
    assert not live.path.exists()


def test_corrupt_ledger_is_an_error(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / LEDGER_FILE).write_text('{"name": "m", "versions_used": "1,2"}')
    with pytest.raises(VersionError, match="corrupt ledger"):
        read_ledger(model_dir)


def test_remove_if_unused_only_removes_a_never_published_name(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    create_staging(fresh).discard()
    assert sorted(p.name for p in fresh.iterdir()) == [LOCK_FILE]
    assert remove_if_unused(fresh) and not fresh.exists()

    live = tmp_path / "live"
    sibling = create_staging(live)  # another exporter is still working: keep everything
    assert not remove_if_unused(live) and sibling.path.is_dir()
    sibling.discard()

    used = tmp_path / "used"
    staging = create_staging(used)
    publish(staging, None, _write_meta)
    shutil.rmtree(used / "1")  # pruned, but its number stays used: the ledger must survive
    assert not remove_if_unused(used) and read_ledger(used)["versions_used"] == [1]


def test_lock_waiter_never_holds_a_removed_lock_file(tmp_path: Path) -> None:
    """A waiter blocked on a .lock that the holder unlinks must lock the new file, not the dead inode."""
    model_dir = tmp_path / "m"
    acquired = threading.Event()
    inode: list[int] = []

    def waiter() -> None:
        with model_lock(model_dir):
            inode.append((model_dir / LOCK_FILE).stat().st_ino)
            acquired.set()

    with model_lock(model_dir):
        thread = threading.Thread(target=waiter)
        thread.start()
        assert not acquired.wait(0.3)  # blocked on our flock
        (model_dir / LOCK_FILE).unlink()  # what remove_if_unused does after a failed first export
        model_dir.rmdir()
    thread.join(10)
    assert acquired.is_set() and (model_dir / LOCK_FILE).is_file()
    # without the re-check the waiter would hold the unlinked inode and find no .lock (nor directory) on disk
    assert inode == [(model_dir / LOCK_FILE).stat().st_ino] and model_dir.is_dir()
