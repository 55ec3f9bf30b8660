"""What every peer runtime of ``make bench-peers`` shares: the ONNX Runtime session, built with the options
the harness read from our own backend (``serving.backends.onnxruntime.session_options``), and the TF Serving
row-format JSON work (``{"instances": ...}`` in, ``{"predictions": ...}`` out).

This directory holds standalone scripts: they run in the peer venvs (KServe, MLServer), which have neither
TensorFlow nor this project installed, so they import only numpy, onnxruntime and their own server library.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnxruntime as ort


def session_options(options: dict[str, Any]) -> ort.SessionOptions:
    """``ort.SessionOptions`` from the JSON form: ``intra_op_num_threads``, ``inter_op_num_threads``,
    ``execution_mode`` and ``graph_optimization_level`` (enum names) and ``config`` (session config entries)."""
    opts = ort.SessionOptions()
    for key in ("intra_op_num_threads", "inter_op_num_threads"):
        if key in options:
            setattr(opts, key, int(options[key]))
    if "execution_mode" in options:
        opts.execution_mode = getattr(ort.ExecutionMode, options["execution_mode"])
    if "graph_optimization_level" in options:
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, options["graph_optimization_level"])
    for key, value in options.get("config", {}).items():
        opts.add_session_config_entry(key, str(value))
    return opts


def session(path: str, options: dict[str, Any]) -> ort.InferenceSession:
    return ort.InferenceSession(path, sess_options=session_options(options), providers=["CPUExecutionProvider"])


_NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32}


class Model:
    """One ONNX model with a single input, answering batched arrays."""

    def __init__(self, path: str, options: dict[str, Any]) -> None:
        self.session = session(path, options)
        first = self.session.get_inputs()[0]
        self.input_name, self.dtype = first.name, _NUMPY.get(first.type, np.float32)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: np.asarray(x, dtype=self.dtype)})

    def predict_json(self, body: bytes) -> bytes:
        """TF Serving's row format: the same JSON decode + ORT + JSON encode work as a real front end."""
        instances = json.loads(body)["instances"]
        outputs = self.run(np.asarray(instances, dtype=self.dtype))
        if len(outputs) == 1:
            predictions: Any = outputs[0].tolist()
        else:
            cols = [o.tolist() for o in outputs]
            predictions = [dict(zip(self.output_names, row, strict=True)) for row in zip(*cols, strict=True)]
        return json.dumps({"predictions": predictions}).encode()


def parse_models(specs: list[str], options_json: str) -> dict[str, Model]:
    """``NAME=PATH`` items -> loaded models (``--model`` of every runtime script)."""
    options = json.loads(options_json)
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--model is NAME=PATH, got {spec!r}")
        models[name] = Model(path, options)
    return models


def model_from_path(models: dict[str, Model], path: str) -> Model | None:
    """The model a ``/v1/models/NAME:predict`` path names (None: not ours to answer)."""
    prefix, suffix = "/v1/models/", ":predict"
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    return models.get(path[len(prefix):-len(suffix)])


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of a model.onnx (repeatable)")
    parser.add_argument("--ort-options", default="{}", help="JSON: the ORT session options (see session())")
