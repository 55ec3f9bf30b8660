"""The version manager: makes the served state follow the config and the version directories on disk.

One reconcile pass (``sync``) runs at a time, on the poller thread (``serving.poller``) or on the thread of a
config reload; requests never wait for it (they read the registry's snapshot). Per model it lists the version directories, applies the
version policy, loads aspired versions that are not loaded yet (publishing each one as soon as it is
AVAILABLE), then retires versions no longer aspired. Retiring waits for an aspired version to be AVAILABLE
(TF Serving's availability-preserving policy), so a newer version that fails to load never takes the model
down: it ends in state END with its error, and the older version keeps serving.

Version states are reported as TF Serving's ServableStateMonitor reports them: START, LOADING, AVAILABLE,
UNLOADING, END (END with an error code for a failed load).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import config_changes
from .backends import Backend, LoadError, load_backend
from .backends.warmup import WARMUP_FILE
from .cli import ServerOptions
from .errors import FailedPrecondition, NotFound, Unknown
from .model_config import ModelConfig, ModelServerConfig, platform_of, validate, validate_transition
from .monitoring import Metrics
from .registry import ModelSnapshot, Registry, ServableVersion
from .types import VersionStatus
from .versions import aspired_versions, list_versions

log = logging.getLogger("serving.manager")

Loader = Callable[[str, Path], Backend]


class ModelManager:
    """Owns the desired config, the per-version states, the label map and the poller thread."""

    def __init__(self, options: ServerOptions, registry: Registry, loader: Loader | None = None,
                 metrics: Metrics | None = None) -> None:
        self.options = options
        self.registry = registry
        self.metrics = metrics or Metrics()
        self._loader = loader or self._load_backend
        self._sync_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._config = ModelServerConfig()
        self._labels: dict[str, dict[str, int]] = {}
        self._states: dict[str, dict[int, VersionStatus]] = {}
        self._failed: dict[str, dict[int, Path]] = {}  # versions whose load failed (not retried while on disk)
        self._stop = threading.Event()
        self._unloading: list[threading.Thread] = []

    # ----------------------------------------------------------------- config
    @property
    def config(self) -> ModelServerConfig:
        return self._config

    def reload_config(self, config: ModelServerConfig, *, first: bool = False) -> None:
        """Make ``config`` the full desired state: TF Serving's ``ServerCore::ReloadConfig``.

        Validates, checks the labels against the versions available *now*, then loads/unloads and waits for
        the models new in this config to have an AVAILABLE version. Any failure before the loads leaves the
        old config running; raises ``ServingError``.
        """
        validate(config)
        with self._sync_lock:
            validate_transition(self._config, config)
            labels = self._check_labels(config)
            old_names = {m.name for m in self._config.model_config_list.config}
            for line in config_changes.describe(self._config, config):
                log.info("%s", line)
            self._config = config
            self._labels = labels
            self._publish_labels()
            self._sync_all()
            new_names = [m.name for m in config.model_config_list.config if first or m.name not in old_names]
            self._await_available(new_names)
            log.info("Finished reloading config")

    def _check_labels(self, config: ModelServerConfig) -> dict[str, dict[str, int]]:
        """``ServerCore::UpdateModelVersionLabelMap``: labels may only point at AVAILABLE versions, except
        that with ``--allow_version_labels_for_unavailable_models`` a new label (or one keeping its version)
        may point at any version."""
        labels: dict[str, dict[str, int]] = {}
        for model in config.model_config_list.config:
            states = self._states.get(model.name, {})
            for label, version in sorted(model.version_labels.items()):
                current = self._labels.get(model.name, {}).get(label)
                allow_unavailable = self.options.allow_version_labels_for_unavailable_models and (
                    current is None or current == version
                )
                state = states.get(version)
                if not allow_unavailable and (state is None or state.state != "AVAILABLE"):
                    raise FailedPrecondition(
                        f"Request to assign label to version {version} of model {model.name}, "
                        "which is not currently available for inference"
                    )
                labels.setdefault(model.name, {})[label] = version
        if labels and not self.options.allow_version_labels:
            raise FailedPrecondition("Model version labels are not currently allowed by the server.")
        return labels

    def _await_available(self, names: list[str]) -> None:
        """``WaitUntilModelsAvailable`` after our synchronous loads: each model needs an AVAILABLE version."""
        problems = []
        for name in names:
            states = self._states.get(name, {})
            if any(s.state == "AVAILABLE" for s in states.values()):
                continue
            failed = [s for s in states.values() if s.state == "END" and s.error_code != "OK"]
            if failed:  # a model with no version directories is only warned about (TF Serving waits forever)
                detail = "".join(f" due to error: {s.error_code}: {s.error_message}" for s in failed[:1])
                problems.append(f"{{name: {name} version: {failed[0].version}{detail}}}, ")
        if problems:
            raise Unknown(f"{len(problems)} model(s) did not become available: {{{''.join(problems)}}}")

    # ------------------------------------------------------------------ sync
    def sync(self) -> None:
        """One reconcile pass over every model of the current config (the poller calls this)."""
        with self._sync_lock:
            self._sync_all()

    def _sync_all(self) -> None:
        wanted = {m.name: m for m in self._config.model_config_list.config}
        for name in [n for n in self.registry.snapshot() if n not in wanted]:
            self._retire(name, set(self.registry.snapshot()[name].versions))
            self._failed.pop(name, None)
        for model in wanted.values():
            if self._stop.is_set():
                return
            self._sync_model(model)
        self._publish_labels()

    def _sync_model(self, model: ModelConfig) -> None:
        try:
            on_disk = list_versions(model.base_path)
        except OSError as exc:
            log.error("Cannot list base path %s of model %s: %s (keeping its current versions)",
                      model.base_path, model.name, exc.strerror or exc)
            return
        if not on_disk:
            log.warning("No versions of servable %s found under base path %s. Did you forget to name your "
                        "leaf directory as a number (eg. '/1/')?", model.name, model.base_path)
        aspired = aspired_versions(on_disk, model.model_version_policy)
        failed = self._failed.setdefault(model.name, {})
        for version in [v for v, path in failed.items() if on_disk.get(v) != path]:
            del failed[version]  # the directory went away (or moved): a later copy may be loaded again
        loaded = set(self._loaded(model.name))
        for version in sorted(aspired - loaded - set(failed), reverse=True):
            if self._stop.is_set():
                return
            self._load(model, version, on_disk[version])
        loaded = set(self._loaded(model.name))
        unaspired = loaded - aspired
        # Availability preserving: retire only once an aspired version serves, or when nothing is aspired
        # any more (directories deleted); while every aspired version failed, the old ones keep serving.
        if unaspired and (loaded & aspired or not aspired):
            self._retire(model.name, unaspired)

    def _loaded(self, name: str) -> dict[int, ServableVersion]:
        snap = self.registry.model(name)
        return dict(snap.versions) if snap else {}

    # ------------------------------------------------------------ load/unload
    def _load_backend(self, platform: str, path: Path) -> Backend:
        opts = self.options
        backend = load_backend(platform, path, intra_op_threads=opts.intra_op_threads,
                               inter_op_threads=opts.inter_op_threads, num_workers=opts.num_workers)
        if opts.enable_model_warmup:
            self._warm_up(backend, path)
        if opts.backend_wrapper is not None:
            backend = opts.backend_wrapper(backend)
        return backend

    def _warm_up(self, backend: Backend, path: Path) -> None:
        """Replay the warmup records ``--num_request_iterations_for_warmup`` times, logging TF Serving's line
        and timing it as TF Serving's ``model_warmup_latency`` (only when there is a warmup file)."""
        warmup_path = path / WARMUP_FILE
        if not warmup_path.is_file():
            log.info("No warmup data file found at %s", warmup_path)
            return
        start, status, records = time.perf_counter(), "OK", 0
        try:
            for _ in range(max(1, self.options.num_request_iterations_for_warmup)):
                records = backend.warmup()
        except LoadError as exc:
            status = exc.code
            raise
        finally:
            self.metrics.warmup(str(path), status, (time.perf_counter() - start) * 1e6)
        log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d. "
                 "Elapsed time (microseconds): %d.", warmup_path, records, (time.perf_counter() - start) * 1e6)

    def _load(self, model: ModelConfig, version: int, path: Path) -> None:
        name = model.name
        self._set_state(name, version, "START")
        self._set_state(name, version, "LOADING")
        log.info("Loading servable version {name: %s version: %d} from %s", name, version, path)
        attempts = 1 + max(0, self.options.max_num_load_retries)
        error: tuple[str, str] = ("UNKNOWN", "")
        for attempt in range(attempts):
            start = time.perf_counter()
            try:
                backend = self._loader(platform_of(model), path)
            except LoadError as exc:
                error = (exc.code, str(exc))
            except Exception as exc:  # a load must never kill the manager; the traceback goes to the log
                log.exception("Unexpected error loading %s version %d", name, version)
                error = ("UNKNOWN", f"{type(exc).__name__}: {exc}")
            else:
                self.metrics.load(str(path), True, (time.perf_counter() - start) * 1e6)
                self._publish_version(name, ServableVersion(name, version, backend))
                self._set_state(name, version, "AVAILABLE")
                log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
                return
            self.metrics.load(str(path), False, (time.perf_counter() - start) * 1e6)
            log.error("Loading servable {name: %s version: %d} failed (attempt %d of %d): %s",
                      name, version, attempt + 1, attempts, error[1])
            if attempt + 1 < attempts and self._stop.wait(self.options.load_retry_interval_micros / 1e6):
                break
        self._failed.setdefault(name, {})[version] = path
        self._set_state(name, version, "END", *error)

    def _publish_version(self, name: str, version: ServableVersion) -> None:
        models = dict(self.registry.snapshot())
        current = models.get(name, ModelSnapshot())
        models[name] = ModelSnapshot({**current.versions, version.version: version}, current.labels)
        self.registry.publish(models)

    def _retire(self, name: str, versions: set[int]) -> None:
        models = dict(self.registry.snapshot())
        current = models.get(name)
        if current is None:
            return
        kept = {v: s for v, s in current.versions.items() if v not in versions}
        if kept or name in {m.name for m in self._config.model_config_list.config}:
            models[name] = ModelSnapshot(kept, current.labels)
        else:
            del models[name]
        self.registry.publish(models)
        for version in versions:
            self._set_state(name, version, "UNLOADING")
            self._unloading.append(current.versions[version].retire(self._finish_unload))
        self._unloading = [t for t in self._unloading if t.is_alive()]

    def _finish_unload(self, servable: ServableVersion) -> None:
        try:
            servable.backend.unload()
        finally:
            self._set_state(servable.name, servable.version, "END")
            log.info("Unloaded servable version {name: %s version: %d}", servable.name, servable.version)

    def _publish_labels(self) -> None:
        models = dict(self.registry.snapshot())
        for name in {m.name for m in self._config.model_config_list.config}:
            current = models.get(name, ModelSnapshot())
            labels = self._labels.get(name, {})
            if dict(current.labels) != labels:
                models[name] = ModelSnapshot(current.versions, dict(labels))
        self.registry.publish(models)

    # ---------------------------------------------------------------- status
    def _set_state(self, name: str, version: int, state: str, code: str = "OK", message: str = "") -> None:
        with self._state_lock:
            self._states.setdefault(name, {})[version] = VersionStatus(version, state, code, message)

    def version_states(self, name: str, version: int | None = None) -> tuple[VersionStatus, ...]:
        """``GetModelStatus``: every known version of ``name`` (newest first), or just ``version``."""
        with self._state_lock:
            states = dict(self._states.get(name, {}))
        if not states:
            raise NotFound(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in states:
                raise NotFound(f"Could not find version {version} of model {name}")
            return (states[version],)
        return tuple(states[v] for v in sorted(states, reverse=True))

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Unload every version (after its in-flight requests, up to ``drain_timeout`` s); stop the poller first."""
        self._stop.set()
        with self._sync_lock:
            for name, snap in self.registry.snapshot().items():
                self._retire(name, set(snap.versions))
            # Wait for the unloads: a runtime torn down by interpreter exit (daemon threads) may abort.
            for thread in self._unloading:
                thread.join(timeout=drain_timeout)
