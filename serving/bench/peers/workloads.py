"""The three workloads of ``make bench-peers``: each model exported once by our exporter, and each request
serialized once per protocol (TF Serving V1 JSON, KServe/MLServer V2 JSON, gRPC ``PredictRequest``).

* ``digits``: the trained digits MLP (64 → 64 → 10), batch 1: a small request, where the front end is all.
* ``mobilenet``: MobileNetV2 96×96, batch 1: a ~150 kB JSON body (V1 row format), where decoding and compute both count.
* ``mlp2048``: the 784 → 2048 → 2048 → 10 MLP, batch 1: the model call dominates, so batching must pay.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..workload import prepare_model

SOURCES = {"mobilenet": "serving.bench.peers.models:mobilenet_v2_96", "mlp2048": "serving.bench.peers.models:mlp_2048"}
SHAPES = {"digits": (1, 64), "mobilenet": (1, 96, 96, 3), "mlp2048": (1, 784)}
ALL = ("digits", "mobilenet", "mlp2048")


@dataclass(frozen=True)
class Workload:
    name: str  # also the model name on every server
    onnx: Path  # <models>/<name>/1/model.onnx
    input_name: str
    values: np.ndarray  # the request's numbers (float64 with two decimals: what the JSON bodies carry)

    @property
    def x(self) -> np.ndarray:
        """The request tensor, float32 (what the gRPC request carries and what each server computes on)."""
        return self.values.astype(np.float32)

    @property
    def base_path(self) -> Path:
        return self.onnx.parent.parent

    def v1_body(self) -> bytes:
        """TF Serving's row format, as a client library writes it (compact separators)."""
        return json.dumps({"instances": self.values.tolist()}, separators=(",", ":")).encode()

    def v2_body(self) -> bytes:
        """The V2 (KServe / MLServer) inference request with the same numbers."""
        return json.dumps({"inputs": [{"name": self.input_name, "shape": list(self.x.shape), "datatype": "FP32",
                                       "data": self.values.reshape(-1).tolist()}]}, separators=(",", ":")).encode()

    def grpc_request(self) -> bytes:
        from clients.codecs import ndarray_to_tensor_proto
        from clients.messages import PredictRequest

        request = PredictRequest()
        request.model_spec.name = self.name
        ndarray_to_tensor_proto(self.x, request.inputs[self.input_name])
        return request.SerializeToString()


def _request_tensor(name: str) -> np.ndarray:
    """Two decimals, as float64 so JSON writes ``0.42`` and not float32's ``0.41999998688697815``: a
    realistic body (a 96×96×3 image is ~150 kB in the V1 row format), and the same numbers in every protocol."""
    return np.round(np.random.default_rng(0).random(SHAPES[name]), 2)


def _onnx_input(onnx: Path) -> str:
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).get_inputs()[0].name


def prepare(work: Path, names: list[str], epochs: int, say) -> list[Workload]:
    """Export the chosen workloads under ``work/models`` (rebuilt every run, so numbers match the code)."""
    from export import export_model

    say(f"training and exporting the digits MLP ({epochs} epochs)")
    digits = prepare_model(work, epochs)  # wipes ``work`` first
    models = digits.models_dir
    onnx = {"digits": digits.version_dir / "model.onnx"}
    for name in names:
        if name in SOURCES:
            say(f"exporting {name} ({SOURCES[name]}) with python -m export's pipeline (parity-gated)")
            result = export_model(SOURCES[name], name=name, models_dir=models, stream=io.StringIO())
            onnx[name] = Path(result.path) / "model.onnx"
    return [Workload(n, onnx[n], _onnx_input(onnx[n]), _request_tensor(n)) for n in names]
