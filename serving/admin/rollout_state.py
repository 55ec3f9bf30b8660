"""The rollout's durable side: its lock, its state file, and every change it makes to labels and models.config.

- `<model>/.rollout.lock`: an exclusive, non-blocking `flock` per model. A second rollout of the same model
  is refused at once (the first one's details come from the state file); the kernel drops the lock when
  its holder dies, even by SIGKILL, so a killed rollout never blocks the next one.
- `<model>/.rollout.json`: what was there before (labels, stable history) and the step reached, written
  atomically *before* each step that changes the server's view. A rerun after a kill reads it: before the
  promotion it puts the labels back and unloads the canary (cleanup); after it, it finishes the record (resume).

Each file write is atomic and taken under the models-dir lock shared with promote/rollback/prune, and every
intermediate `models.config` keeps `stable` on a version that is loaded, so a server polling the files
accepts each of them and clients calling `stable` never see a failure.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serving.admin import layout
from serving.admin.errors import AdminError
from serving.admin.fsutil import atomic_write_text, models_dir_lock
from serving.admin.labels import CANARY, STABLE, LabelState, load_labels, save_labels
from serving.admin.modelsconfig import CONFIG_FILE, read_models_config, render, update_model_entry

__all__ = ["LOCK_FILE", "STATE_FILE", "RolloutBusy", "RolloutState", "add_canary", "clear_state", "load_state",
           "promote_stable", "record_rollout", "restore_labels", "rollout_lock", "save_state", "served_now",
           "stage_version"]

LOCK_FILE = ".rollout.lock"
STATE_FILE = ".rollout.json"
# Steps, in order. Up to CANARY the server's view of `stable` is untouched; PROMOTING/PROMOTED changed it.
STAGING, CANARY_STEP, VERIFYING, PROMOTING, PROMOTED = "staging", "canary", "verifying", "promoting", "promoted"


class RolloutBusy(AdminError):
    """Another rollout of the same model holds the lock."""


@dataclass
class RolloutState:
    """The `.rollout.json` record: the version, who runs it, the step reached and what to restore."""

    version: int
    by: str
    pid: int
    started: str
    step: str
    labels_before: dict[str, int]
    stable_history_before: list[int]
    report: dict[str, Any] = field(default_factory=dict)


def save_state(mdir: Path, state: RolloutState) -> None:
    atomic_write_text(mdir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")


def load_state(mdir: Path) -> RolloutState | None:
    """The state a previous (killed) rollout left, or None; a corrupt file is an error naming it."""
    path = mdir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return RolloutState(**raw)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as err:
        raise AdminError(f"{path}: unreadable rollout state ({err}); check the labels with `make versions` "
                         "and delete the file") from err


def clear_state(mdir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(mdir / STATE_FILE)


@contextlib.contextmanager
def rollout_lock(mdir: Path, name: str) -> Iterator[None]:
    """Hold the model's rollout lock for the whole rollout; `RolloutBusy` at once if another holds it."""
    with open(mdir / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                other = load_state(mdir)
            except AdminError:
                other = None
            who = (f" (version {other.version}, step {other.step}, started {other.started} by {other.by}, "
                   f"pid {other.pid})") if other else ""
            raise RolloutBusy(f"another rollout of {name!r} is in progress{who}; wait for it to finish "
                              "(one rollout per model at a time)") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _keep(state: RolloutState) -> list[int]:
    """Versions to keep loaded while the rollout runs: the canary and every version labelled before it
    started (a label restored at the end must point at a loaded version, or TF Serving refuses the config)."""
    return sorted({state.version, *state.labels_before.values()})


def stage_version(models_dir: Path, name: str, state: RolloutState) -> None:
    """Add the version to the model's `specific` policy (labels unchanged): the server starts loading it."""
    with models_dir_lock(models_dir):
        update_model_entry(models_dir, name, extra=_keep(state))


def add_canary(models_dir: Path, name: str, state: RolloutState) -> None:
    """Label the (loaded) version `canary`; TF Serving refuses a label on a version it has not loaded."""
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        labels = load_labels(mdir)
        labels.assign(CANARY, state.version, action="rollout-canary")
        save_labels(mdir, labels)
        update_model_entry(models_dir, name, extra=_keep(state))


def promote_stable(models_dir: Path, name: str, state: RolloutState) -> None:
    """Move `stable` to the canary; the previous stable stays loaded as the rollback target.

    `canary` goes back to what it was before the rollout (dropped if that was nothing or this version).
    """
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        labels = load_labels(mdir)
        labels.assign(STABLE, state.version, action="rollout")
        before = state.labels_before.get(CANARY)
        if before is None or before == state.version:
            labels.labels.pop(CANARY, None)
        else:
            labels.labels[CANARY] = before
        save_labels(mdir, labels)
        update_model_entry(models_dir, name)


def restore_labels(models_dir: Path, name: str, state: RolloutState) -> None:
    """Put `stable` and `canary` back as they were and take the rolled-out version out of the policy.

    The canary version is unloaded even when it is the newest (which the config writer otherwise keeps
    loaded): it failed a check, so no server should hold it. A later `promote`/`config` may load it again
    by number (never labelled).
    """
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        labels = load_labels(mdir)
        for label in (STABLE, CANARY):
            if label in state.labels_before:
                labels.labels[label] = state.labels_before[label]
            else:
                labels.labels.pop(label, None)
        labels.stable_history = list(state.stable_history_before)
        save_labels(mdir, labels)
        path = update_model_entry(models_dir, name)
        if state.version in labels.labels.values():
            return
        cfg = read_models_config(path)
        entry = next(c for c in cfg.model_config_list.config if c.name == name)
        served = entry.model_version_policy.specific.versions
        if state.version in served and len(served) > 1:
            kept = [v for v in served if v != state.version]
            del served[:]
            served.extend(kept)
            atomic_write_text(path, render(cfg))


def record_rollout(models_dir: Path, name: str, version: int, summary: dict[str, Any]) -> None:
    """Append the rollout to the label history (`rollout-report` event) and to the version's `metadata.json`
    `rollouts` list (additive; written atomically, so a reader never sees half a record)."""
    with models_dir_lock(models_dir):
        mdir = layout.model_dir(models_dir, name)
        labels: LabelState = load_labels(mdir)
        labels.events.append({"at": summary.get("finished") or summary.get("started"), "action": "rollout-report",
                              "label": STABLE, "version": version, "previous": summary.get("previous_stable"),
                              "by": summary.get("by"), "result": summary.get("result"),
                              "failed_check": summary.get("failed_check"), "checks": summary.get("checks", [])})
        save_labels(mdir, labels)
        vdir = dict(layout.version_dirs(mdir)).get(version)
        meta = layout.read_metadata(vdir) if vdir is not None else None
        if meta is None:
            return
        meta.setdefault("rollouts", []).append(summary)
        atomic_write_text(vdir / layout.METADATA_FILE, json.dumps(meta, indent=2) + "\n")


def served_now(models_dir: Path, name: str) -> tuple[list[int], dict[str, int]]:
    """(versions in the `specific` policy, labels) of `name` in models.config, for reports and tests."""
    entry = next((c for c in read_models_config(models_dir / CONFIG_FILE).model_config_list.config
                  if c.name == name), None)
    if entry is None:
        return [], {}
    return list(entry.model_version_policy.specific.versions), dict(entry.version_labels)
