"""The one small base class every serving backend implements.

Life cycle (driven by the version manager, never by a protocol adapter):
``Backend.load(version_dir)`` builds a ready instance (or raises ``LoadError``), ``warmup()`` replays the
version's warmup records, ``predict`` / ``classify`` / ``regress`` serve concurrently from many threads, and
``unload()`` releases the runtime once no request holds the instance any more.

The export parity gate uses the same backends, so "the SavedModel loaded the way TF Serving loads it" is the
very code the local server serves with.
"""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, which taskset and cgroup cpusets narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_share(num_workers: int = 1) -> int:
    """Intra-op threads one worker process gets by default: its share of the cores (at least one).

    With N worker processes each runtime gets cores // N threads, so N concurrent large requests fill the
    machine without oversubscribing it (see docs/perf/workers.md). Batch threads are not counted: with
    spinning off, two batches on the same pool measured no worse than dividing it (docs/perf/workers.md).
    """
    return max(1, usable_cores() // max(1, num_workers))


class CallMeter:
    """Moving average of a runtime's calls in CPU time of the calling thread (µs), sampled.

    What decides whether a call is short enough to run on a protocol's own thread (``DataPlane.short_call``).
    CPU time, not wall time: under load a call's wall time includes waiting for the GIL, and a short model
    measured long on a worker would never be run inline again. Sampled (the first call, then every
    ``every``-th): the thread CPU clock is a system call, measurably dear on a loaded virtual machine.
    """

    __slots__ = ("us", "_calls", "_every")

    def __init__(self, every: int = 8) -> None:
        self.us: float | None = None
        self._calls = 0
        self._every = every

    def start(self) -> float | None:
        self._calls += 1
        return time.thread_time() if self.us is None or self._calls % self._every == 0 else None

    def stop(self, started: float | None) -> None:
        if started is not None:
            us = (time.thread_time() - started) * 1e6
            self.us = us if self.us is None else self.us + 0.2 * (us - self.us)


@dataclass(frozen=True)
class TensorInfo:
    """One named tensor of a signature: its key, dtype (numpy name, 'string' for bytes) and shape (None = unknown)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}


@dataclass(frozen=True)
class SignatureInfo:
    """A serving signature, runtime-neutral: what metadata, validation and parity need to know."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorInfo] = field(default_factory=dict)
    outputs: Mapping[str, TensorInfo] = field(default_factory=dict)


class LoadError(Exception):
    """A version directory could not be loaded by this backend (the message says why).

    ``code`` is the canonical status name reported for the failed version (TF Serving reports, e.g.,
    NOT_FOUND for a directory without a SavedModel and UNKNOWN for most other load failures).
    """

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code


class Backend(ABC):
    """A loaded model version. Subclasses must be safe to call from many threads at once."""

    platform: str = ""

    @classmethod
    @abstractmethod
    def load(cls, version_dir: Path, **options) -> Backend:
        """Load ``version_dir`` and return a ready backend, or raise ``LoadError``."""

    @property
    @abstractmethod
    def signatures(self) -> Mapping[str, SignatureInfo]:
        """Signature name -> description."""

    @abstractmethod
    def predict(
        self, signature: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on named inputs; returns the (filtered) named outputs."""

    def classify(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        """Run a classify signature on serialized tf.Example protos ('classes' and/or 'scores')."""
        raise NotImplementedError(f"{self.platform} backend does not support classify")

    def regress(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        """Run a regress signature on serialized tf.Example protos ('outputs')."""
        raise NotImplementedError(f"{self.platform} backend does not support regress")

    def warmup(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests`` if present; returns the number of records run."""
        return 0

    def unload(self) -> None:  # noqa: B027 - optional hook: runtimes with nothing to release keep the default
        """Release the runtime. Called once, after the last in-flight request finished."""
