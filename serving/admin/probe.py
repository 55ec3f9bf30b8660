"""Probe a running server's REST status endpoint (TF Serving's `GET /v1/models/<name>[/versions/<v>]`).

Used by `promote --wait-for HOST:PORT` to move a label only once the server reports the version
AVAILABLE (TF Serving refuses a label on a version it has not loaded). Standard library only.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request

from serving.admin.errors import AdminError

__all__ = ["serves_model", "version_state", "wait_for_version"]


def version_state(rest_target: str, name: str, version: int | None = None, timeout: float = 5.0) -> dict[int, str]:
    """{version: state} from the status endpoint; {} while the server is not answering or knows no version."""
    url = f"http://{rest_target}/v1/models/{name}" + (f"/versions/{version}" if version is not None else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, json.JSONDecodeError):
        return {}  # not up yet, 404 while the version is unknown, or a reply cut short: all "not yet"
    statuses = body.get("model_version_status", []) if isinstance(body, dict) else []
    return {int(s["version"]): s.get("state", "") for s in statuses if "version" in s}


def serves_model(rest_target: str, name: str, configured: set[int] | None, timeout: float = 2.0, *,
                 on_disk: set[int] | None = None, settle: float = 10.0, interval: float = 0.25) -> bool:
    """Whether the server at `rest_target` answers and serves `name` from this models.config: it reports at
    least one version that the config lists (`configured`; None: any). False for no answer, for a server
    without that model, and for one serving another directory's versions, so `promote` never waits on a
    server that will not load what it stages.

    A server that reports only versions this model directory holds (`on_disk`) but none the config lists yet
    is this one catching up (a version exported a moment ago, before its next file-system poll): it is given
    up to `settle` seconds to load it rather than being taken for a stranger."""
    deadline = time.monotonic() + settle
    while True:
        states = version_state(rest_target, name, timeout=timeout)
        if not states:
            return False
        if configured is None or set(states) & configured:
            return True
        if on_disk is None or not set(states) <= on_disk or time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_for_version(rest_target: str, name: str, version: int, timeout: float = 120.0,
                     interval: float = 0.25) -> None:
    """Block until `rest_target` reports `name` version `version` AVAILABLE; AdminError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: dict[int, str] = {}
    while time.monotonic() < deadline:
        last = version_state(rest_target, name, version)
        if last.get(version) == "AVAILABLE":
            return
        time.sleep(interval)
    raise AdminError(f"{rest_target}: {name} version {version} not AVAILABLE after {timeout:.0f} s "
                     f"(last status: {last or 'no answer'}); the label was not moved")
