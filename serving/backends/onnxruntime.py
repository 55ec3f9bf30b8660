"""ONNX Runtime backend: serves ``model.onnx`` from a version directory through the same interface.

A local-server extension (TF Serving itself rejects ``model_platform: "onnxruntime"``): the exporter writes
``model.onnx`` next to the SavedModel, with graph input/output names equal to the ``serving_default``
signature's keys, so the graph is exposed as that one predict signature and clients cannot tell the
backends apart (beyond the parity tolerance).

Threads (docs/perf/workers.md): by default a session gets this process's share of the cores as intra-op
threads (``cpu_share``: all usable cores, divided by ``--num_workers``), so one large request (MobileNetV2)
runs on every core as it would with ORT's own default, and one sequential inter-op thread. Spinning is off:
under concurrency the calling threads already keep the cores busy, and spinning pool threads would burn the
cycles the protocol threads need (ORT's pool is per session, shared by concurrent ``run`` calls, so N
concurrent requests never start N x threads). A small model (the digits MLP) is not slowed: ORT's cost model
runs its tiny kernels inline on the calling thread. ``--tensorflow_intra_op_parallelism`` and
``--tensorflow_inter_op_parallelism`` (or ``--tensorflow_session_parallelism``) override the defaults, as
they do for the TensorFlow backend.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument
from .base import DEFAULT_SIGNATURE, PREDICT_METHOD, Backend, LoadError, SignatureInfo, TensorInfo, cpu_share
from .ort_contrib import register_contrib_ops
from .warmup import WarmupError, read_warmup_requests

ONNX_FILE = "model.onnx"
DEFAULT_INTER_OP_THREADS = 1

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool", "tensor(string)": "string", "tensor(bfloat16)": "bfloat16",
}


def _info(arg) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape) if arg.shape is not None else None
    return TensorInfo(name=arg.name, dtype=_ORT_TYPES.get(arg.type, arg.type), shape=shape)


def session_options(intra_op_threads: int = 0, inter_op_threads: int = 0, num_workers: int = 1):
    """``ort.SessionOptions`` for a server: this process's share of the cores, no spinning, all optimizations.

    0 means "the default": ``cpu_share(num_workers)`` intra-op threads, ``DEFAULT_INTER_OP_THREADS``
    inter-op thread (sequential execution uses only the intra-op pool). More than one inter-op thread
    (``--tensorflow_inter_op_parallelism``) switches to ORT's parallel execution mode, TF's meaning of the flag.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads or cpu_share(num_workers)
    opts.inter_op_num_threads = inter_op_threads or DEFAULT_INTER_OP_THREADS
    # TF's inter-op threads run independent ops in parallel; ORT does that only in parallel execution mode.
    parallel = opts.inter_op_num_threads > 1
    opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    return opts


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` over ``<version>/model.onnx`` (InferenceSession.run is thread-safe)."""

    platform = "onnxruntime"

    def __init__(self, version_dir: Path, session) -> None:
        self.version_dir = Path(version_dir)
        self.session = session
        sig = SignatureInfo(
            name=DEFAULT_SIGNATURE,
            method_name=PREDICT_METHOD,
            inputs={a.name: _info(a) for a in session.get_inputs()},
            outputs={a.name: _info(a) for a in session.get_outputs()},
        )
        self._signatures = {DEFAULT_SIGNATURE: sig}

    @classmethod
    def load(cls, version_dir: Path, *, intra_op_threads: int = 0, inter_op_threads: int = 0,
             num_workers: int = 1, **_) -> OnnxRuntimeBackend:
        """Open ``<version_dir>/model.onnx`` on the CPU provider; ``LoadError(code=NOT_FOUND)`` when missing."""
        import onnxruntime as ort

        path = Path(version_dir) / ONNX_FILE
        if not path.is_file():
            raise LoadError(_missing_onnx_message(Path(version_dir)), code="NOT_FOUND")
        opts = session_options(intra_op_threads, inter_op_threads, num_workers)
        try:
            register_contrib_ops(opts, path)  # onnxruntime-extensions' string ops, only for models that use them
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own pybind exception types for any bad graph
            raise LoadError(f"Failed to load {path}: {type(exc).__name__}: {exc}") from exc
        return cls(version_dir, session)

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        return self._signatures

    def predict(
        self, signature: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        names = list(output_filter) if output_filter else list(self._signatures[DEFAULT_SIGNATURE].outputs)
        values = self.session.run(names, {k: _feed(v) for k, v in inputs.items()})
        return dict(zip(names, values, strict=True))

    def warmup(self) -> int:
        """Replay the version's ``tf_serving_warmup_requests`` (predict records only), as TF Serving does.

        A record that cannot be read or run fails the load (``LoadError``), like TF Serving's warmup.
        """
        try:
            requests = read_warmup_requests(self.version_dir)
        except WarmupError as exc:
            raise LoadError(f"Warmup failed: {exc}") from exc
        for index, req in enumerate(requests):
            signature = req.signature_name or DEFAULT_SIGNATURE
            if signature not in self._signatures:
                raise LoadError(f"Warmup record {index} names signature {signature!r}, which {ONNX_FILE} lacks")
            try:
                self.predict(signature, req.inputs, req.output_filter or None)
            except Exception as exc:  # noqa: BLE001 - any runtime refusal of a warmup record fails the load
                raise LoadError(f"Warmup record {index} failed: {type(exc).__name__}: {exc}") from exc
        return len(requests)

    def unload(self) -> None:
        # Dropping the last reference frees the session; there is no explicit close in ORT's Python API.
        self.session = None


def _missing_onnx_message(version_dir: Path) -> str:
    """Why a version has no ``model.onnx``: the exporter records a failed or skipped conversion in metadata."""
    from export.metadata import onnx_state, read_metadata

    base = f"{ONNX_FILE} not found in version directory: {version_dir}"
    try:
        status, reason = onnx_state(read_metadata(version_dir))
    except (OSError, ValueError):
        return base
    if status in ("failed", "skipped"):
        return (f"{base}: ONNX conversion {status} at export ({reason}); this version can only be served by the "
                "TensorFlow backend (model_platform \"tensorflow\")")
    return base


def _feed(value: np.ndarray) -> np.ndarray:
    """ORT wants string tensors as numpy object arrays of ``str``; everything else passes through.

    ORT 1.32's Python binding reads a fixed-width bytes array (``S``) past each item's end and turns ``bytes``
    objects into their repr (``"b'text'"``), so bytes are decoded as UTF-8 (what ORT stores anyway); bytes that
    are not UTF-8 cannot reach an ONNX string tensor from Python and are refused.
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "S" or (arr.dtype == object and any(isinstance(v, bytes) for v in arr.flat)):
        try:
            return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v, otypes=[object])(arr)
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"string input is not valid UTF-8, which the ONNX Runtime backend needs: {exc}") \
                from exc
    return arr
