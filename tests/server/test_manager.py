"""Version manager, policies, labels and the registry, in-process with a tiny directory-backed backend.

The backend here is a real ``Backend`` subclass whose "model" is the version directory itself (a file named
``corrupt`` makes it fail to load); the manager, registry and policies under test are the production ones.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from serving.backends import Backend, LoadError, SignatureInfo
from serving.cli import ServerOptions
from serving.errors import FailedPrecondition, InvalidArgument, NotFound
from serving.manager import ModelManager
from serving.model_config import parse_config_text
from serving.registry import Registry
from serving.types import ModelSpec
from serving.versions import aspired_versions, list_versions, parse_version


class DirBackend(Backend):
    platform = "tensorflow"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.unloaded = threading.Event()

    @classmethod
    def load(cls, version_dir: Path, **_) -> DirBackend:
        if (version_dir / "corrupt").exists():
            raise LoadError(f"corrupt version at {version_dir}")
        return cls(version_dir)

    @property
    def signatures(self):
        return {"serving_default": SignatureInfo("serving_default", "tensorflow/serving/predict")}

    def predict(self, signature, inputs, output_filter=None):
        return {"version": np.array(int(self.path.name))}

    def unload(self) -> None:
        self.unloaded.set()


def make_versions(base: Path, *names: str, corrupt: bool = False) -> None:
    for name in names:
        (base / name).mkdir(parents=True, exist_ok=True)
        if corrupt:
            (base / name / "corrupt").write_text("x")


def config_for(base: Path, policy: str = "", labels: dict[str, int] | None = None):
    label_text = "".join(f'version_labels {{ key: "{k}" value: {v} }} ' for k, v in (labels or {}).items())
    return parse_config_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" '
        f"{policy} {label_text} }} }}"
    )


def manager(**options) -> tuple[ModelManager, Registry]:
    registry = Registry()
    opts = ServerOptions(model_base_path="/unused", max_num_load_retries=0, **options)
    return ModelManager(opts, registry, loader=lambda platform, path: DirBackend.load(path)), registry


def served(registry: Registry) -> list[int]:
    snap = registry.model("m")
    return sorted(snap.versions) if snap else []


def states(mgr: ModelManager) -> dict[int, str]:
    return {s.version: s.state for s in mgr.version_states("m")}


def test_version_directory_names():
    assert parse_version("00000123") == 123
    assert parse_version("0") == 0
    for bad in ("-1", "1.0", "v1", "", "１２", "tmp"):
        assert parse_version(bad) is None


def test_only_numeric_directories_are_versions(tmp_path):
    make_versions(tmp_path, "1", "0002", "tmp", ".staging")
    (tmp_path / "3").write_text("a file, not a version")
    assert sorted(list_versions(tmp_path)) == [1, 2]


def test_symlinked_versions_must_stay_under_the_base_path(tmp_path):
    base, outside = tmp_path / "base", tmp_path / "outside"
    make_versions(base, "1")
    make_versions(outside, "9")
    (base / "2").symlink_to(base / "1")  # inside: served
    (base / "3").symlink_to(outside / "9")  # escapes the base path: ignored
    assert sorted(list_versions(base)) == [1, 2]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("", {5}), ("model_version_policy { latest { num_versions: 2 } }", {4, 5}),
     ("model_version_policy { all {} }", {1, 4, 5}),
     ("model_version_policy { specific { versions: 1 versions: 9 } }", {1})],
)
def test_policies(tmp_path, policy, expected):
    make_versions(tmp_path, "1", "4", "5")
    model = config_for(tmp_path, policy).model_config_list.config[0]
    assert aspired_versions(list_versions(tmp_path), model.model_version_policy) == expected


def test_new_version_loads_before_old_unloads_and_failed_version_keeps_old(tmp_path):
    make_versions(tmp_path, "1")
    mgr, registry = manager()
    mgr.reload_config(config_for(tmp_path), first=True)
    old = registry.model("m").versions[1]
    assert served(registry) == [1]

    make_versions(tmp_path, "2")
    mgr.sync()
    assert served(registry) == [2]
    assert old.backend.unloaded.wait(5)
    assert states(mgr) == {2: "AVAILABLE", 1: "END"}

    make_versions(tmp_path, "3", corrupt=True)
    mgr.sync()
    assert served(registry) == [2]  # the failed newer version never serves; 2 keeps serving
    status = mgr.version_states("m", 3)[0]
    assert (status.state, status.error_code) == ("END", "UNKNOWN")
    assert "corrupt version" in status.error_message

    mgr.sync()  # a failed version is not retried while its directory stays
    assert mgr.version_states("m", 3)[0].state == "END"


def test_deleted_version_directory_unloads(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, registry = manager()
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }"), first=True)
    assert served(registry) == [1, 2]
    (tmp_path / "2").rmdir()
    mgr.sync()
    assert served(registry) == [1]


def test_in_flight_request_delays_unload(tmp_path):
    make_versions(tmp_path, "1")
    mgr, registry = manager()
    mgr.reload_config(config_for(tmp_path), first=True)
    lease = registry.acquire(ModelSpec("m"))
    make_versions(tmp_path, "2")
    mgr.sync()
    assert served(registry) == [2]
    assert not lease.backend.unloaded.wait(0.2)  # still in use
    assert mgr.version_states("m", 1)[0].state == "UNLOADING"
    lease.release()
    assert lease.backend.unloaded.wait(5)


def test_resolution_errors(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, registry = manager()
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }"), first=True)
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"stable": 1}))
    assert registry.resolve_version(ModelSpec("m")) == 2
    assert registry.resolve_version(ModelSpec("m", label="stable")) == 1
    with pytest.raises(NotFound, match=r"Servable not found for request: Specific\(m, 7\)"):
        registry.resolve_version(ModelSpec("m", version=7))
    with pytest.raises(NotFound, match=r"Latest\(nope\)"):
        registry.resolve_version(ModelSpec("nope"))
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: canary"):
        registry.resolve_version(ModelSpec("m", label="canary"))


def test_label_rules(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, registry = manager()
    # On the first config nothing is loaded yet: any label is refused without the flag (TF Serving's rule).
    with pytest.raises(FailedPrecondition, match="not currently available for inference"):
        mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"stable": 1}), first=True)
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }"), first=True)
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"stable": 1, "canary": 2}))
    assert registry.resolve_version(ModelSpec("m", label="canary")) == 2
    # A label on a version that is not loaded is refused, and the old config (and labels) keep running.
    with pytest.raises(FailedPrecondition):
        mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"stable": 1, "canary": 3}))
    assert registry.resolve_version(ModelSpec("m", label="canary")) == 2


def test_labels_for_unavailable_models_flag(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, registry = manager(allow_version_labels_for_unavailable_models=True)
    # First assignment may point anywhere ...
    mgr.reload_config(config_for(tmp_path, "model_version_policy { specific { versions: 1 } }", {"canary": 2}),
                      first=True)
    with pytest.raises(NotFound):
        registry.resolve_version(ModelSpec("m", label="canary"))
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"canary": 2}))
    assert registry.resolve_version(ModelSpec("m", label="canary")) == 2
    # ... but an existing label may not move to an unavailable version.
    with pytest.raises(FailedPrecondition):
        mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"canary": 9}))


def test_model_removed_from_config_is_unloaded(tmp_path):
    make_versions(tmp_path, "1")
    mgr, registry = manager()
    mgr.reload_config(config_for(tmp_path), first=True)
    backend = registry.model("m").versions[1].backend
    mgr.reload_config(parse_config_text("model_config_list {}"))
    assert registry.model("m") is None
    assert backend.unloaded.wait(5)


def test_status_errors(tmp_path):
    make_versions(tmp_path, "1")
    mgr, _ = manager()
    mgr.reload_config(config_for(tmp_path), first=True)
    with pytest.raises(NotFound, match="Could not find any versions of model x"):
        mgr.version_states("x")
    with pytest.raises(NotFound, match="Could not find version 5 of model m"):
        mgr.version_states("m", 5)


def test_config_file_poller_applies_changes_and_survives_bad_files(tmp_path, caplog):
    from serving.model_config import load_config_file
    from serving.poller import Poller

    base = tmp_path / "m"
    make_versions(base, "1", "2")
    path = tmp_path / "models.config"
    policy = "model_version_policy { all {} }"
    path.write_text(str(config_for(base, policy)))
    mgr, registry = manager(model_config_file_poll_wait_seconds=1, file_system_poll_wait_seconds=1)
    mgr.reload_config(load_config_file(path), first=True)
    poller = Poller(mgr, fs_every=1, config_every=1, config_loader=lambda: load_config_file(path))
    poller.start()
    try:
        path.write_text("this is { not a config")  # a broken edit is logged and skipped, not fatal
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "Not reloading the model config" not in caplog.text:
            time.sleep(0.05)
        assert "Invalid protobuf file" in caplog.text
        assert registry.resolve_version(ModelSpec("m")) == 2  # still serving the old config
        path.write_text(str(config_for(base, policy, {"canary": 2})))
        while time.monotonic() < deadline and "canary" not in registry.model("m").labels:
            time.sleep(0.05)
        assert registry.resolve_version(ModelSpec("m", label="canary")) == 2
        make_versions(base, "3")  # and the file-system poll keeps running next to it
        while time.monotonic() < deadline and 3 not in registry.model("m").versions:
            time.sleep(0.05)
        assert sorted(registry.model("m").versions) == [1, 2, 3]
    finally:
        poller.stop()
        mgr.stop()
    assert registry.model("m").versions == {}


def test_metrics_render_prometheus_text():
    from serving.monitoring import Metrics

    metrics = Metrics()
    metrics.observe("m", "predict", "REST", "OK", 15.0)
    metrics.observe("m", "predict", "REST", "NOT_FOUND", 1e9)
    text = metrics.render()
    assert "# TYPE :tensorflow:serving:request_count counter\n" in text  # TF Serving's name: no _total
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 1\n' in text
    assert ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1\n' in text
    assert ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",le="18"} 1' \
        in text
    # Latency is recorded for successful requests only, as TF Serving's front ends do.
    assert ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",le="+Inf"} 1' \
        in text
    assert "_created" not in text
    assert metrics.request_count("m", "NOT_FOUND") == 1
