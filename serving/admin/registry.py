"""Registry operations over exported versions: promote, rollback, prune.

Each runs under the models-dir lock, changes `.labels.json` and/or the version directories, then rewrites
the model's entry in `models.config` atomically, so a server polling the config picks the change up
without a restart. Deletion is two-step: rename the version to a non-numeric `.trash-*` name (atomic; a
poller stops seeing it at once, never half of it), then remove the tree.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.admin import layout
from serving.admin.errors import AdminError
from serving.admin.fsutil import fsync_dir, models_dir_lock
from serving.admin.labels import STABLE, check_label, load_labels, save_labels
from serving.admin.modelsconfig import CONFIG_FILE, served_versions, update_model_entry

TRASH_PREFIX = ".trash-"

__all__ = ["PromoteResult", "PruneResult", "promote", "prune", "rollback", "stable_version"]


def _check_promotable(info: layout.VersionInfo, force: bool) -> None:
    meta = info.metadata
    if meta is None:
        if not force:
            raise AdminError(f"version {info.version} has no {layout.METADATA_FILE} (not exported by "
                             "`python -m export`), so its parity is unknown; pass --force to promote it anyway")
        return
    if meta.get("version") is not None and meta["version"] != info.version:
        raise AdminError(f"{info.path / layout.METADATA_FILE} describes version {meta['version']}, "
                         f"not {info.version}: the directory was copied or renamed; re-export it")
    if info.parity_passed is False and not force:
        raise AdminError(f"version {info.version} failed its parity check (see `versions`); "
                         "pass --force to promote it anyway")


@dataclass(frozen=True)
class PromoteResult:
    """What `promote` did. `staged`: the version was only added to the policy; the label did not move yet."""

    label: str
    version: int
    previous: int | None
    staged: bool


def promote(models_dir: Path, name: str, version: int, label: str, force: bool = False,
            wait_until_loaded: Callable[[str, int], None] | None = None) -> PromoteResult:
    """Point `label` of model `name` at `version` and rewrite models.config.

    Refuses a version that does not exist, whose metadata is missing, or that failed parity, unless
    `force`. TF Serving only moves a label to a version it has loaded, so a version that the current
    models.config does not serve is first *staged* (added to the policy, label unchanged). Then either
    `wait_until_loaded(name, version)` returns (it should block until the server reports the version
    AVAILABLE, raising on timeout) and the label moves in a second write, or, without a waiter, the
    result says `staged` and running the same promote again once the version is loaded moves the label.
    The models-dir lock is held while waiting, so no other admin command interleaves with the two writes.
    """
    check_label(label)
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        info = next((v for v in layout.list_versions(mdir) if v.version == version), None)
        if info is None:
            have = ", ".join(str(v) for v, _ in layout.version_dirs(mdir)) or "none"
            raise AdminError(f"model {name!r} has no version {version} (versions: {have})")
        _check_promotable(info, force)
        served = served_versions(models_dir, name)
        # A server reading an existing models.config refuses a label on a version it has not loaded, also
        # for a model the config does not list yet: stage first. Without a config no server reads it.
        needs_staging = (models_dir / CONFIG_FILE).exists() and (served is None or version not in served)
        if needs_staging:
            update_model_entry(models_dir, name, extra=[version])
            if wait_until_loaded is None:
                previous = load_labels(mdir).labels.get(label)
                return PromoteResult(label, version, previous, staged=True)
            wait_until_loaded(name, version)
        state = load_labels(mdir)
        previous = state.assign(label, version)
        save_labels(mdir, state)
        update_model_entry(models_dir, name)
    return PromoteResult(label, version, previous, staged=False)


def rollback(models_dir: Path, name: str) -> tuple[int, int]:
    """Move `stable` of `name` back to the previous stable version that still exists. Returns (from, to)."""
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        state = load_labels(mdir)
        existing = {v for v, _ in layout.version_dirs(mdir)}
        moved = state.rollback_stable(existing)
        save_labels(mdir, state)
        update_model_entry(models_dir, name)
    return moved


@dataclass(frozen=True)
class PruneResult:
    """What `prune` did (or, with `dry_run`, would do): versions deleted, the bytes they held, and older
    versions kept because a label points at them."""

    deleted: tuple[int, ...]
    kept_labelled: tuple[int, ...]
    freed_bytes: int = 0
    dry_run: bool = False


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove_version(path: Path) -> None:
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")
    os.rename(path, trash)  # atomic: the version vanishes from a poller's view in one step
    fsync_dir(path.parent)
    shutil.rmtree(trash)


def _clear_stale_trash(mdir: Path) -> None:
    """Finish deletions a crashed earlier prune left behind (already invisible to servers)."""
    for leftover in mdir.glob(f"{TRASH_PREFIX}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def prune(models_dir: Path, name: str, keep: int, dry_run: bool = False) -> PruneResult:
    """Delete all but the newest `keep` versions of `name`, never a labelled one; rewrite models.config.
    `dry_run`: change nothing, report what would go."""
    if keep < 1:
        raise AdminError(f"--keep must be at least 1 (the newest version is always kept), got {keep}")
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        labelled = set(load_labels(mdir).labels.values())
        versions = layout.version_dirs(mdir)
        older = versions[:-keep] if len(versions) > keep else []
        doomed = [(v, p) for v, p in older if v not in labelled]
        freed = sum(_tree_bytes(p) for _, p in doomed)
        if not dry_run:
            # Unlabelled older versions are never in the policy (labelled + newest), so no server holds them.
            for _version, path in doomed:
                _remove_version(path)
            _clear_stale_trash(mdir)
            update_model_entry(models_dir, name)
    return PruneResult(deleted=tuple(v for v, _ in doomed),
                       kept_labelled=tuple(v for v, _ in older if v in labelled), freed_bytes=freed,
                       dry_run=dry_run)


def stable_version(models_dir: Path, name: str) -> int | None:
    """The version `stable` points at (None without one); read-only, for scripts and tests."""
    return load_labels(layout.model_dir(models_dir, name)).labels.get(STABLE)
