"""What is being served right now: an immutable snapshot of loaded versions and labels, swapped under a lock.

Requests resolve a ``ModelSpec`` against the current snapshot and take a lease on the version (a reference
count) in the same critical section, so the version manager can retire a version at any time: it leaves the
snapshot at once, and its backend is unloaded only after the last in-flight request released it.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .backends import Backend
from .errors import InvalidArgument, servable_not_found
from .types import ModelSpec

log = logging.getLogger("serving.registry")


class ServableVersion:
    """One loaded model version and the count of requests using it."""

    def __init__(self, name: str, version: int, backend: Backend) -> None:
        self.name = name
        self.version = version
        self.backend = backend
        self._lock = threading.Lock()
        self._inflight = 0
        self._retired = False
        self._drained = threading.Event()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._retired:
                return False
            self._inflight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._retired and self._inflight == 0:
                self._drained.set()

    def retire(self, on_drained: Callable[[ServableVersion], None]) -> threading.Thread:
        """Refuse new leases; call ``on_drained`` (on a helper thread) once in-flight requests finished."""
        with self._lock:
            self._retired = True
            if self._inflight == 0:
                self._drained.set()

        def wait_then_finish() -> None:
            self._drained.wait()
            on_drained(self)

        thread = threading.Thread(target=wait_then_finish, name=f"unload-{self.name}-{self.version}", daemon=True)
        thread.start()
        return thread

    @property
    def inflight(self) -> int:
        return self._inflight


@dataclass(frozen=True)
class ModelSnapshot:
    """One model's servable versions and its label map, as of one publish."""

    versions: Mapping[int, ServableVersion] = field(default_factory=dict)
    labels: Mapping[str, int] = field(default_factory=dict)

    def latest(self) -> ServableVersion | None:
        return self.versions[max(self.versions)] if self.versions else None


class Registry:
    """The served state. Readers never block on loads: they only take a short lock to resolve + lease."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: Mapping[str, ModelSnapshot] = MappingProxyType({})

    def snapshot(self) -> Mapping[str, ModelSnapshot]:
        return self._models

    def publish(self, models: Mapping[str, ModelSnapshot]) -> None:
        """Swap in a new state (the manager builds it from the previous one)."""
        with self._lock:
            self._models = MappingProxyType(dict(models))

    def model(self, name: str) -> ModelSnapshot | None:
        return self._models.get(name)

    def resolve_version(self, spec: ModelSpec) -> int:
        """The concrete version ``spec`` addresses now, with TF Serving's errors (no lease taken)."""
        return self._find(self._models, spec).version

    @staticmethod
    def _find(models: Mapping[str, ModelSnapshot], spec: ModelSpec) -> ServableVersion:
        if spec.version is not None and spec.label is not None:
            raise InvalidArgument("A model spec may set a version or a version label, not both")
        model = models.get(spec.name)
        version = spec.version
        if spec.label is not None:
            if model is None or spec.label not in model.labels:
                raise InvalidArgument(f"Unrecognized servable version label: {spec.label}")
            version = model.labels[spec.label]
        if model is None:
            raise servable_not_found(spec.name, version)
        if version is None:
            found = model.latest()
        else:
            found = model.versions.get(version)
        if found is None:
            raise servable_not_found(spec.name, version)
        return found

    def acquire(self, spec: ModelSpec) -> ServableVersion:
        """Resolve ``spec`` and lease the version; the caller must ``release()`` it."""
        with self._lock:
            found = self._find(self._models, spec)
            if not found.try_acquire():  # retired between publish and now: cannot happen under the lock
                raise servable_not_found(spec.name, spec.version, spec.label)
            return found

    def lease(self, spec: ModelSpec) -> _Lease:
        """``with registry.lease(spec) as version:`` -- the version cannot unload inside the block."""
        return _Lease(self, spec)


class _Lease:
    """``Registry.lease``'s context manager (a class: it wraps every request, twice)."""

    __slots__ = ("_registry", "_spec", "_version")

    def __init__(self, registry: Registry, spec: ModelSpec) -> None:
        self._registry, self._spec = registry, spec

    def __enter__(self) -> ServableVersion:
        self._version = self._registry.acquire(self._spec)
        return self._version

    def __exit__(self, *exc: object) -> None:
        self._version.release()
