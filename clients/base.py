"""The one client interface both transports implement (``GrpcClient`` and ``RestClient``).

Public methods validate arguments, resolve unnamed inputs/outputs from the model's signature, and run the
transport's ``_call_*`` under one overall deadline with bounded retries (``clients.retry``). Subclasses only
translate to and from their wire format; they never retry or validate themselves.
"""
from __future__ import annotations

import abc
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .examples import Features
from .results import ClassifyResult, ModelMetadata, Signature, VersionStatus
from .retry import RetryPolicy, call_with_retries
from .validate import conform_inputs

DEFAULT_SIGNATURE = "serving_default"
Inputs = np.ndarray | Mapping[str, Any]


@dataclass(frozen=True)
class ModelRef:
    """Which servable a call addresses; ``version`` and ``label`` are mutually exclusive (None: latest)."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a model name is required")
        if self.version is not None and self.label is not None:
            raise ValueError("give a version or a label, not both")
        if self.version is not None and (isinstance(self.version, bool) or int(self.version) < 0):
            raise ValueError(f"version must be a non-negative integer, got {self.version!r}")
        if self.label is not None and not self.label:
            raise ValueError("label must not be empty")


class ServingClient(abc.ABC):
    """TF Serving client: numpy in, numpy out. Use as a context manager or call ``close()``.

    ``timeout`` (seconds) is the default overall deadline of every call, retries included; ``retry`` bounds the
    retries on UNAVAILABLE/503; ``metadata_ttl`` is how long a model's signatures are cached (they are needed
    to name a single unnamed input or output, to check inputs and, for REST, to restore output dtypes).
    ``validate`` checks predict inputs against the cached signature before sending (names, dtype, shape; see
    ``clients.validate``) and casts them to the signature's dtypes; False sends them as given.
    """

    protocol = ""

    def __init__(self, *, timeout: float = 10.0, retry: RetryPolicy | None = None, metadata_ttl: float = 60.0,
                 validate: bool = True) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy()
        self.metadata_ttl = metadata_ttl
        self.validate = validate
        self._meta_cache: dict[tuple, tuple[float, ModelMetadata]] = {}
        self._meta_lock = threading.Lock()

    # ------------------------------------------------------------ public API
    def predict(self, inputs: Inputs, *, model: str, version: int | None = None, label: str | None = None,
                signature_name: str = "", output_filter: Sequence[str] | None = None,
                timeout: float | None = None) -> dict[str, np.ndarray]:
        """Run a signature. ``inputs``: one array (single-input signatures) or ``{name: array}``; returns
        ``{output name: array}`` (only ``output_filter``'s names when given)."""
        ref = ModelRef(model, version, label, signature_name)
        named = self._named_inputs(inputs)
        filt = tuple(output_filter or ())
        return self._run(lambda t: self._call_predict(ref, self._checked_inputs(ref, named, t), filt, t), timeout)

    def classify(self, examples: Sequence[Features], *, model: str, version: int | None = None,
                 label: str | None = None, signature_name: str = "", context: Features | None = None,
                 timeout: float | None = None) -> ClassifyResult:
        """Classify feature dicts (one per example; ``context`` features are shared by all)."""
        ref = ModelRef(model, version, label, signature_name)
        examples = self._check_examples(examples)
        return self._run(lambda t: self._call_classify(ref, examples, context, t), timeout)

    def regress(self, examples: Sequence[Features], *, model: str, version: int | None = None,
                label: str | None = None, signature_name: str = "", context: Features | None = None,
                timeout: float | None = None) -> np.ndarray:
        """Regress feature dicts; returns one float32 value per example."""
        ref = ModelRef(model, version, label, signature_name)
        examples = self._check_examples(examples)
        return self._run(lambda t: self._call_regress(ref, examples, context, t), timeout)

    def metadata(self, *, model: str, version: int | None = None, label: str | None = None,
                 timeout: float | None = None) -> ModelMetadata:
        """The model's signatures and the version that answered (always fetched; see ``signature`` for cached)."""
        ref = ModelRef(model, version, label)
        meta = self._run(lambda t: self._call_metadata(ref, t), timeout)
        with self._meta_lock:
            self._meta_cache[(model, version, label)] = (time.monotonic() + self.metadata_ttl, meta)
        return meta

    def status(self, *, model: str, version: int | None = None, label: str | None = None,
               timeout: float | None = None) -> list[VersionStatus]:
        """The state of every version of ``model`` (or of one version/label), newest first."""
        ref = ModelRef(model, version, label)
        return self._run(lambda t: self._call_status(ref, t), timeout)

    def signature(self, *, model: str, version: int | None = None, label: str | None = None,
                  signature_name: str = "", timeout: float | None = None) -> Signature:
        """One signature of the model, from the metadata cache (fetched when missing or older than the TTL)."""
        key = (model, version, label)
        with self._meta_lock:
            cached = self._meta_cache.get(key)
        meta = cached[1] if cached and cached[0] > time.monotonic() else None
        if meta is None:
            meta = self.metadata(model=model, version=version, label=label, timeout=timeout)
        name = signature_name or DEFAULT_SIGNATURE
        if name not in meta.signatures:
            raise InvalidInputError(f"Serving signature name: \"{name}\" not found in signature def")
        return meta.signatures[name]

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ for subclasses
    def _run(self, attempt, timeout: float | None):
        return call_with_retries(attempt, self.timeout if timeout is None else timeout, self.retry)

    @staticmethod
    def _named_inputs(inputs: Inputs) -> np.ndarray | dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            if not inputs:
                raise ValueError("inputs must not be empty")
            return {str(k): np.asarray(v) for k, v in inputs.items()}
        return np.asarray(inputs)

    @staticmethod
    def _check_examples(examples: Sequence[Features]) -> list[Features]:
        if isinstance(examples, Mapping) or not examples:
            raise ValueError("examples must be a non-empty list of feature dicts")
        return list(examples)

    def _checked_inputs(self, ref: ModelRef, inputs: np.ndarray | dict[str, np.ndarray],
                        timeout: float) -> np.ndarray | dict[str, np.ndarray]:
        """With ``validate``: the inputs named, checked against the signature and cast (InvalidInputError
        names the input and what it expects). The signature comes from the metadata cache."""
        if not self.validate:
            return inputs
        sig = self.signature(model=ref.name, version=ref.version, label=ref.label,
                             signature_name=ref.signature_name, timeout=timeout)
        if not isinstance(inputs, dict):
            if len(sig.inputs) != 1:
                raise InvalidInputError(f"signature has inputs {sorted(sig.inputs)}: pass a dict of arrays")
            inputs = {next(iter(sig.inputs)): inputs}
        return conform_inputs(sig, inputs, ref.signature_name or DEFAULT_SIGNATURE)

    def _input_names(self, ref: ModelRef, inputs: np.ndarray | dict[str, np.ndarray],
                     timeout: float) -> dict[str, np.ndarray]:
        """Name a single unnamed input after the signature's only input."""
        if isinstance(inputs, dict):
            return inputs
        sig = self.signature(model=ref.name, version=ref.version, label=ref.label,
                             signature_name=ref.signature_name, timeout=timeout)
        if len(sig.inputs) != 1:
            raise ValueError(f"signature has inputs {sorted(sig.inputs)}: pass a dict of arrays")
        return {next(iter(sig.inputs)): inputs}

    @abc.abstractmethod
    def _call_predict(self, ref: ModelRef, inputs, output_filter: tuple[str, ...],
                      timeout: float) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _call_classify(self, ref: ModelRef, examples: list[Features], context: Features | None,
                       timeout: float) -> ClassifyResult: ...

    @abc.abstractmethod
    def _call_regress(self, ref: ModelRef, examples: list[Features], context: Features | None,
                      timeout: float) -> np.ndarray: ...

    @abc.abstractmethod
    def _call_metadata(self, ref: ModelRef, timeout: float) -> ModelMetadata: ...

    @abc.abstractmethod
    def _call_status(self, ref: ModelRef, timeout: float) -> list[VersionStatus]: ...


__all__ = ["DEFAULT_SIGNATURE", "Inputs", "ModelRef", "ServingClient"]
