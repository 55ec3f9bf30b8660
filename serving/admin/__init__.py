"""Deployment tooling over exported versions: `models.config`, labels, promote/rollback/prune, server configs.

CLI: `python -m serving.admin config|promote|rollback|prune|versions|history ...` (the Makefile targets of the
same names). Everything here works on files (no TensorFlow import), under a per-models-dir lock, with atomic
writes, so it is safe to run against a directory a server is polling; the only server calls are `promote`'s
reads of the REST status endpoint (`--server`, `--wait-for`) to wait until a staged version is loaded.
"""
from __future__ import annotations

from serving.admin.errors import AdminError
from serving.admin.labels import CANARY, LABELS_FILE, STABLE, LabelState, load_labels
from serving.admin.modelsconfig import (
    CONFIG_FILE,
    build_models_config,
    read_models_config,
    update_model_entry,
    write_models_config,
)
from serving.admin.probe import version_state, wait_for_version
from serving.admin.registry import PromoteResult, PruneResult, promote, prune, rollback, stable_version
from serving.admin.serverconfigs import write_server_configs
from serving.admin.table import format_table, version_rows

__all__ = [
    "CANARY",
    "CONFIG_FILE",
    "LABELS_FILE",
    "STABLE",
    "AdminError",
    "LabelState",
    "PromoteResult",
    "PruneResult",
    "build_models_config",
    "format_table",
    "load_labels",
    "promote",
    "prune",
    "read_models_config",
    "rollback",
    "stable_version",
    "update_model_entry",
    "version_rows",
    "version_state",
    "wait_for_version",
    "write_models_config",
    "write_server_configs",
]
