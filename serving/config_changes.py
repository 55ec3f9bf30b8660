"""What a model config reload changes, in log lines (TF Serving logs its reloads; operators want the diff).

TF Serving's ``ServerCore::ReloadConfig`` logs ``Adding/updating models.``, `` (Re-)adding model: NAME`` per
model and ``Finished reloading config``; it never says what actually changed, which is the question after a
promote or a rollback. ``describe`` answers it from the old and the new ``ModelServerConfig``: models added
and removed, and per kept model a changed base path, platform, version policy or label. Versions that start
or stop serving are logged by the manager as they load and unload (TF Serving's own lines).
"""
from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import text_format

from .model_config import ModelConfig, ModelServerConfig, platform_of


def _models(config: ModelServerConfig) -> dict[str, ModelConfig]:
    return {m.name: m for m in config.model_config_list.config}


def _policy(model: ModelConfig) -> str:
    if not model.HasField("model_version_policy"):
        return "latest { num_versions: 1 } (default)"
    return text_format.MessageToString(model.model_version_policy, as_one_line=True) or "latest { } (default)"


def label_changes(before: Mapping[str, int], after: Mapping[str, int]) -> list[str]:
    """``stable 1 -> 2``, ``canary -> 3 (new)``, ``old 4 -> (removed)``, sorted by label."""
    out = []
    for label in sorted(set(before) | set(after)):
        old, new = before.get(label), after.get(label)
        if old == new:
            continue
        if old is None:
            out.append(f"{label} -> {new} (new)")
        elif new is None:
            out.append(f"{label} {old} -> (removed)")
        else:
            out.append(f"{label} {old} -> {new}")
    return out


def describe(old: ModelServerConfig, new: ModelServerConfig) -> list[str]:
    """One line per change from ``old`` to ``new``; empty when the served models would not change."""
    before, after = _models(old), _models(new)
    lines = []
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    if added:
        lines.append("Model config change: models added: " + ", ".join(
            f"{n} (base_path {after[n].base_path})" for n in added))
    if removed:
        lines.append("Model config change: models removed: " + ", ".join(removed))
    for name in sorted(set(before) & set(after)):
        was, now = before[name], after[name]
        changes = []
        if was.base_path != now.base_path:
            changes.append(f"base_path {was.base_path} -> {now.base_path}")
        if platform_of(was) != platform_of(now):
            changes.append(f"platform {platform_of(was)} -> {platform_of(now)}")
        if _policy(was) != _policy(now):
            changes.append(f"version policy {_policy(was)} -> {_policy(now)}")
        moved = label_changes(dict(was.version_labels), dict(now.version_labels))
        if moved:
            changes.append("labels " + ", ".join(moved))
        if changes:
            lines.append(f"Model config change: model {name}: " + "; ".join(changes))
    for name in added:
        if after[name].version_labels:
            lines.append(f"Model config change: model {name}: labels "
                         + ", ".join(label_changes({}, dict(after[name].version_labels))))
    return lines
