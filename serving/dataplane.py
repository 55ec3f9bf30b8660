"""The one core object both protocol adapters call: resolve, validate, run, answer in ``serving.types``.

Everything between "a request in the internal model" and "a response in the internal model" happens here:
model/version/label resolution with TF Serving's messages, signature lookup and method checks, input
validation, the backend call under a version lease (so hot reload never unloads a version mid-request), the
mapping of backend failures to ``ServingError``, and metrics. Adapters stay pure translators.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .backends.base import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD, CallMeter, SignatureInfo
from .batching import WouldWait
from .errors import FailedPrecondition, Internal, InvalidArgument, ServingError, Unavailable, Unimplemented
from .manager import ModelManager
from .model_config import ModelServerConfig
from .monitoring import Metrics
from .registry import Registry, ServableVersion
from .types import (
    ClassifyResponse,
    ExamplesRequest,
    MetadataRequest,
    MetadataResponse,
    ModelSpec,
    MultiInferenceRequest,
    MultiInferenceResponse,
    PredictRequest,
    PredictResponse,
    RegressResponse,
    ResolvedSpec,
    StatusRequest,
    StatusResponse,
)
from .validation import check_inputs, check_output_filter, classify_outputs, regress_values, runtime_error

if TYPE_CHECKING:
    from .batching import Arrivals

log = logging.getLogger("serving.dataplane")
T = TypeVar("T")

# A backend call whose moving average is below this many microseconds is "short" (``DataPlane.short_call``):
# cheaper to run on the protocol's own thread than the ~50-100 µs of two thread hand-offs it would cost.
SHORT_CALL_US = 150.0

# The adapters' api names whose calls the batcher merges (gRPC Predict, REST :predict).
BATCHED_APIS = frozenset({"Predict", "predict"})

# TF Serving's runtime label of ``:tensorflow:serving:runtime_latency`` per backend platform.
RUNTIME_LABELS = {"tensorflow": "TF1", "onnxruntime": "ONNXRuntime"}


class DataPlane:
    """Serves requests from the registry the ``ModelManager`` keeps up to date."""

    def __init__(self, registry: Registry, manager: ModelManager, metrics: Metrics | None = None,
                 arrivals: Arrivals | None = None) -> None:
        self.registry = registry
        self.manager = manager
        self.metrics = metrics or Metrics()
        # With work-conserving batching: the Predict requests in flight, per model.
        self.arrivals = arrivals
        self._ready = False
        self._shutting_down = False
        # Where HandleReloadConfigRequest goes: this process's manager, or (in a --num_workers worker) the
        # supervisor, which applies it on every worker before answering.
        self.reloader: Callable[[ModelServerConfig], None] | None = None
        self._meters: dict[str, CallMeter] = {}  # per model: its unbatched runtime calls' CPU time

    def short_call(self, model: str) -> bool:
        """Whether ``model``'s backend calls are known to be short (a moving average of their CPU time on the
        calling thread below ``SHORT_CALL_US`` over its successful calls; for a batched model, its runtime's
        calls without the wait for a batch), so a protocol adapter may run them on its own thread instead of
        handing them to a worker. False until a call was measured. A batched call may wait for other requests, which the adapter's thread may be needed to
        decode: an adapter that must not block makes it under ``serving.batching.without_waiting()`` and hands
        it to a worker on ``WouldWait``."""
        meter = self._meters.get(model)
        us = meter.us if meter is not None else None
        return us is not None and us < SHORT_CALL_US

    # ---------------------------------------------------------------- lifecycle
    def set_ready(self, ready: bool = True) -> None:
        self._ready = ready

    def begin_shutdown(self) -> None:
        self._shutting_down = True

    def ready(self) -> bool:
        """True once the initial models are loaded and until shutdown begins."""
        return self._ready and not self._shutting_down

    @contextmanager
    def request_scope(self, entrypoint: str, api: str, model_name: str) -> Iterator[None]:
        """What a protocol adapter wraps one request in: TF Serving's ``request_count`` and, when the block
        succeeds, ``request_latency`` with ``entrypoint`` ("GRPC" or "REST") and the adapter's ``api`` name
        (gRPC: "Predict"/"Classify"/"Regress"; REST: the URL's verb, "" for GETs). As in TF Serving these are
        front-end metrics: the DataPlane's own methods record runtime and example metrics, never requests.

        A Predict request also counts as in flight for the batcher (``arrivals``) while it is served."""
        with self.metrics.request(model_name, api, entrypoint):
            if self.arrivals is not None and api in BATCHED_APIS:
                with self.arrivals.scope(model_name):
                    yield
            else:
                yield

    # ---------------------------------------------------------------- resolution
    def resolve(self, spec: ModelSpec) -> tuple[ResolvedSpec, SignatureInfo]:
        """Resolve name/version/label and the signature ('' -> serving_default), with TF Serving's errors.

        This is TF Serving's ``GetModelSignatureInputsInfo`` step of the REST predict path, so an unknown
        signature is its INVALID_ARGUMENT ``Serving signature name: "x" not found in signature def``
        (Predict itself answers FAILED_PRECONDITION ``Serving signature key "x" not found.``).
        """
        with self.registry.lease(spec) as servable:
            name = spec.signature_name or DEFAULT_SIGNATURE
            if name not in servable.backend.signatures:
                raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
            return self._signature(servable, name)

    @staticmethod
    def _signature(servable: ServableVersion, name: str) -> tuple[ResolvedSpec, SignatureInfo]:
        name = name or DEFAULT_SIGNATURE
        signature = servable.backend.signatures.get(name)
        if signature is None:
            raise FailedPrecondition(f"Serving signature key \"{name}\" not found.")
        return ResolvedSpec(servable.name, servable.version, name), signature

    def _serve(self, spec: ModelSpec, work: Callable[[ServableVersion], T]) -> T:
        """Lease the version and run ``work``; every failure leaves as a ServingError."""
        if self._shutting_down:
            raise Unavailable("Server is shutting down")
        with self.registry.lease(spec) as servable:
            return work(servable)

    # ---------------------------------------------------------------- predict
    def predict(self, req: PredictRequest) -> PredictResponse:
        def work(servable: ServableVersion) -> PredictResponse:
            resolved, signature = self._signature(servable, req.model.signature_name)
            inputs = check_inputs(signature, req.inputs)
            outputs = check_output_filter(signature, req.output_filter)
            values = self._run(servable, "Predict",
                               lambda: servable.backend.predict(resolved.signature_name, inputs, outputs))
            return PredictResponse(resolved, values)

        return self._serve(req.model, work)

    # ---------------------------------------------------------------- classify / regress
    def classify(self, req: ExamplesRequest) -> ClassifyResponse:
        return self._serve(req.model, lambda servable: self._classify(servable, req, count=True))

    def regress(self, req: ExamplesRequest) -> RegressResponse:
        return self._serve(req.model, lambda servable: self._regress(servable, req, count=True))

    def _examples_signature(self, servable: ServableVersion, spec: ModelSpec, method: str, examples) -> tuple:
        resolved, signature = self._signature(servable, spec.signature_name)
        kind = "classification" if method == CLASSIFY_METHOD else "regression"
        # TF Serving checks method names only with --enable_signature_method_name_check (TF2 exports mark
        # every signature tensorflow/serving/predict, and TF Serving still classifies/regresses on them).
        if self.manager.options.enable_signature_method_name_check and signature.method_name != method:
            raise InvalidArgument(
                f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
            )
        if len(signature.inputs) != 1:
            raise InvalidArgument("Expected one input Tensor.")
        if not examples:
            raise InvalidArgument("Input is empty.")
        return resolved, signature

    def _classify(self, servable: ServableVersion, req: ExamplesRequest, count: bool = False) -> ClassifyResponse:
        resolved, signature = self._examples_signature(servable, req.model, CLASSIFY_METHOD, req.examples)
        if count:
            self.metrics.examples(req.model.name, len(req.examples))
        raw = self._run(servable, "Classify",
                        lambda: servable.backend.classify(resolved.signature_name, list(req.examples)))
        classes, scores = classify_outputs(signature, raw, len(req.examples))
        return ClassifyResponse(resolved, classes, scores)

    def _regress(self, servable: ServableVersion, req: ExamplesRequest, count: bool = False) -> RegressResponse:
        resolved, signature = self._examples_signature(servable, req.model, REGRESS_METHOD, req.examples)
        if count:
            self.metrics.examples(req.model.name, len(req.examples))
        raw = self._run(servable, "Regress",
                        lambda: servable.backend.regress(resolved.signature_name, list(req.examples)))
        return RegressResponse(resolved, regress_values(signature, raw, len(req.examples)))

    def multi_inference(self, req: MultiInferenceRequest) -> MultiInferenceResponse:
        """TF Serving's RunMultiInference: every task on the same model and version, distinct signatures."""
        if not req.tasks:
            raise InvalidArgument("Expected at least one task")
        first = req.tasks[0].model
        signatures = set()
        for task in req.tasks:
            if task.model.name != first.name or (task.model.version, task.model.label) != (first.version, first.label):
                raise InvalidArgument("All ModelSpecs in a MultiInferenceRequest must access the same model name")
            name = task.model.signature_name or DEFAULT_SIGNATURE
            if name in signatures:
                raise InvalidArgument("Duplicate evaluation of signature: " + name)
            signatures.add(name)
            if task.method not in ("classify", "regress"):
                raise Unimplemented(f"Unsupported signature method_name: {task.method}")

        def work(servable: ServableVersion) -> MultiInferenceResponse:
            if req.examples:
                self.metrics.examples(first.name, len(req.examples))
            results = []
            for task in req.tasks:
                sub = ExamplesRequest(task.model, req.examples)
                run = self._classify if task.method == "classify" else self._regress
                results.append(run(servable, sub))
            return MultiInferenceResponse(tuple(results))

        return self._serve(first, work)

    # ---------------------------------------------------------------- metadata / status / config
    def metadata(self, req: MetadataRequest) -> MetadataResponse:
        from .signature_defs import signature_def_map

        for field_name in req.metadata_fields:
            if field_name != "signature_def":
                raise InvalidArgument(f"Metadata field {field_name} is not supported")
        if not req.metadata_fields:
            raise InvalidArgument("GetModelMetadataRequest must specify at least one metadata_field")

        def work(servable: ServableVersion) -> MetadataResponse:
            resolved = ResolvedSpec(servable.name, servable.version, "")
            return MetadataResponse(resolved, signature_def_map(servable.backend))

        return self._serve(req.model, work)

    def status(self, req: StatusRequest) -> StatusResponse:
        """``GetModelStatusImpl``: one version when the spec names a version number, otherwise every version.

        A version *label* is not resolved, exactly as TF Serving's ``get_model_status_impl.cc`` (it only reads
        ``model_spec.version``): ``/v1/models/m/labels/any`` answers the status of all versions of ``m``, over
        REST and gRPC alike, whether or not ``m`` has that label.
        """
        spec = req.model
        if not spec.name:
            raise InvalidArgument("Missing ModelSpec")
        return StatusResponse(self.manager.version_states(spec.name, spec.version))

    def reload_config(self, config: ModelServerConfig) -> None:
        """Replace the whole model config (gRPC HandleReloadConfigRequest): answers once it is applied."""
        (self.reloader or self.manager.reload_config)(config)

    # ---------------------------------------------------------------- backend call
    def _run(self, servable: ServableVersion, api: str,
             call: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Run a backend call, timed as ``runtime_latency``; the runtime refusing the request's tensors is
        INVALID_ARGUMENT, anything else INTERNAL."""
        if getattr(servable.backend, "batching", False):
            # the batcher meters its runtime's own calls, without the wait for a batch
            meter, sampled = servable.backend.meter, None
            self._meters[servable.name] = meter
        else:
            meter = self._meters.get(servable.name) or self._meters.setdefault(servable.name, CallMeter())
            sampled = meter.start()
        start = time.perf_counter()
        try:
            values = dict(call())
            elapsed_us = (time.perf_counter() - start) * 1e6
            meter.stop(sampled)
            runtime = RUNTIME_LABELS.get(servable.backend.platform, servable.backend.platform)
            self.metrics.runtime(servable.name, api, runtime, elapsed_us)
            return values
        except (ServingError, WouldWait):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this one boundary, never swallowed
            mapped = runtime_error(exc)
            if mapped is None:
                log.exception("Backend %s failed on %s version %d", servable.backend.platform,
                              servable.name, servable.version)
                raise Internal(f"{type(exc).__name__}: {exc}") from exc
            raise mapped from exc

