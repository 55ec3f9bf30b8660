"""TensorFlow backend: loads a version the way TF Serving does (TF1 session loader, tag ``serve``).

``tf.compat.v1.saved_model.loader.load`` into a private graph and session, then ``session.run`` on the
signature's tensor names. This loads both TF Serving's TF1 fixtures (which ``tf.saved_model.load`` refuses)
and Keras 3 exports, so parity against this backend is parity against what TF Serving computes.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from clients.codecs import tensor_proto_to_ndarray

from .base import DEFAULT_SIGNATURE, Backend, LoadError, SignatureInfo, TensorInfo, cpu_share
from .warmup import iter_prediction_logs


def _tf():
    import tensorflow as tf  # imported lazily: `import serving` must stay cheap

    return tf


def dtype_name(tf_dtype) -> str:
    """Numpy dtype name for a tf.DType ('string' for tf.string, which numpy holds as object/bytes)."""
    tf = _tf()
    dt = tf.as_dtype(tf_dtype)
    return "string" if dt == tf.string else np.dtype(dt.as_numpy_dtype).name


def _tensor_info(key: str, info) -> TensorInfo:
    shape = None if info.tensor_shape.unknown_rank else tuple(
        None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim
    )
    # DT_INVALID (0): TF2's ``__saved_model_init_op`` pseudo-signature has an op, not a tensor, as output.
    dtype = dtype_name(info.dtype) if info.dtype else "invalid"
    return TensorInfo(name=key, dtype=dtype, shape=shape)


class TensorFlowBackend(Backend):
    """A SavedModel version in its own graph + session (thread-safe: Session.run is)."""

    platform = "tensorflow"

    def __init__(self, version_dir: Path, session, meta_graph) -> None:
        self.version_dir = Path(version_dir)
        self.session = session
        self.meta_graph = meta_graph
        self.signature_defs = dict(meta_graph.signature_def)
        self._signatures = {
            name: SignatureInfo(
                name=name,
                method_name=sd.method_name,
                inputs={k: _tensor_info(k, v) for k, v in sd.inputs.items()},
                outputs={k: _tensor_info(k, v) for k, v in sd.outputs.items()},
            )
            for name, sd in self.signature_defs.items()
        }
        self._closed = threading.Event()
        self._callables: dict[tuple, object] = {}
        self._callables_lock = threading.Lock()

    @classmethod
    def load(cls, version_dir: Path, *, intra_op_threads: int = 0, inter_op_threads: int = 0, num_workers: int = 1,
             **_) -> TensorFlowBackend:
        tf = _tf()
        version_dir = Path(version_dir)
        if not (version_dir / "saved_model.pb").is_file() and not (version_dir / "saved_model.pbtxt").is_file():
            raise LoadError(
                f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {version_dir}",
                code="NOT_FOUND",
            )
        graph = tf.Graph()
        if num_workers > 1:  # one process: TF's own default (0 = every core); N processes: a share each
            intra_op_threads = intra_op_threads or cpu_share(num_workers)
            inter_op_threads = inter_op_threads or cpu_share(num_workers)
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra_op_threads, inter_op_parallelism_threads=inter_op_threads
        )
        session = tf.compat.v1.Session(graph=graph, config=config)
        # TF Serving's loader *is* the TF1 one: no deprecation warning for using it.
        from tensorflow.python.util import deprecation

        try:
            with graph.as_default(), deprecation.silence():
                meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
        except Exception as exc:  # any TF failure here means "this version cannot load"
            session.close()
            raise LoadError(f"Failed to load SavedModel at {version_dir}: {type(exc).__name__}: {exc}") from exc
        return cls(version_dir, session, meta_graph)

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        return self._signatures

    def run_signature(
        self, signature: str, feeds: Mapping[str, object], output_keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """``session.run`` of signature ``signature``: input key -> value, returns output key -> ndarray."""
        sd = self.signature_defs[signature]
        keys = tuple(output_keys) if output_keys else tuple(sd.outputs)
        feed_keys = tuple(sorted(feeds))
        run = self._callable(signature, feed_keys, keys)
        values = run(*(feeds[k] for k in feed_keys))
        return dict(zip(keys, values, strict=False))

    def _callable(self, signature: str, feed_keys: tuple[str, ...], fetch_keys: tuple[str, ...]):
        """A cached session callable, fed and fetched by tensor name.

        Unlike ``Session.run`` it does not check feeds against the placeholders' static shapes in Python; like
        TF Serving's C++ ``Session::Run``, the runtime alone decides (the TF1 fixtures declare ``x`` as
        ``[-1, 1]`` yet TF Serving accepts ``[3]``). It is also cheaper per call.
        """
        key = (signature, feed_keys, fetch_keys)
        run = self._callables.get(key)
        if run is None:
            from tensorflow.core.protobuf import config_pb2

            sd = self.signature_defs[signature]
            options = config_pb2.CallableOptions()
            options.feed.extend(sd.inputs[k].name for k in feed_keys)
            options.fetch.extend(sd.outputs[k].name for k in fetch_keys)
            with self._callables_lock:
                run = self._callables.setdefault(key, self.session._make_callable_from_options(options))
        return run

    def predict(
        self, signature: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        return self.run_signature(signature, inputs, output_filter)

    def _examples_feed(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        """A classify/regress signature has one string input: the batch of serialized tf.Example protos."""
        (key,) = self.signature_defs[signature].inputs
        return {key: np.array(list(examples), dtype=object)}

    def classify(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        outputs = [k for k in ("classes", "scores") if k in self.signature_defs[signature].outputs]
        return self.run_signature(signature, self._examples_feed(signature, examples), outputs)

    def regress(self, signature: str, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        return self.run_signature(signature, self._examples_feed(signature, examples), ["outputs"])

    def warmup(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests`` (TFRecord of PredictionLog), as TF Serving does
        before a version becomes AVAILABLE; any failure fails the load."""
        count = 0
        try:
            for log in iter_prediction_logs(self.version_dir):
                self._replay(log)
                count += 1
        except LoadError:
            raise
        except Exception as exc:  # any failure of a warmup record means the version must not serve
            raise LoadError(f"Failed to warm up {self.version_dir}: {type(exc).__name__}: {exc}") from exc
        return count

    def _replay(self, log) -> None:
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            req = log.predict_log.request
            inputs = {k: tensor_proto_to_ndarray(v) for k, v in req.inputs.items()}
            self.predict(req.model_spec.signature_name or DEFAULT_SIGNATURE, inputs, list(req.output_filter))
        elif kind in ("classify_log", "regress_log"):
            req = getattr(log, kind).request
            run = self.classify if kind == "classify_log" else self.regress
            run(req.model_spec.signature_name or DEFAULT_SIGNATURE, _serialized_examples(req.input))
        elif kind == "multi_inference_log":
            req = log.multi_inference_log.request
            for task in req.tasks:
                run = self.classify if task.method_name.endswith("/classify") else self.regress
                run(task.model_spec.signature_name or DEFAULT_SIGNATURE, _serialized_examples(req.input))
        else:
            raise LoadError(f"Unsupported log_type for warmup: {kind}")

    def unload(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self.session.close()


def _serialized_examples(inp) -> list[bytes]:
    if inp.WhichOneof("kind") == "example_list_with_context":
        context = inp.example_list_with_context.context.SerializeToString()
        return [context + e.SerializeToString() for e in inp.example_list_with_context.examples]
    return [e.SerializeToString() for e in inp.example_list.examples]
