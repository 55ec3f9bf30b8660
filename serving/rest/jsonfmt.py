"""The JSON TF Serving's REST API writes: error bodies, model status, metadata, classify and regress results.

Each function mirrors the C++ writer named in its docstring, so clients parse the same values from us as from
``tensorflow_model_server``. Predict bodies are written by ``clients.rest_codec`` (shared with the clients).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from google.protobuf import json_format

from clients.tf_floats import tf_float32_scalar
from serving.errors import InvalidArgument
from serving.types import ClassifyResponse, MetadataResponse, RegressResponse, StatusResponse

JSON_CONTENT_TYPE = "application/json"


def encode(obj: Any, *, indent: int | None = None) -> bytes:
    """JSON bytes with NaN / Infinity / -Infinity unquoted (TF Serving writes them that way)."""
    separators = None if indent is not None else (",", ":")
    text = json.dumps(obj, indent=indent, separators=separators, allow_nan=True, ensure_ascii=False)
    return text.encode("utf-8", "replace")


def error_body(message: str) -> bytes:
    """``MakeJsonFromStatus``: ``{ "error": "<message>" }`` (rapidjson's pretty writer, 4-space indent)."""
    return encode({"error": message}, indent=4)


def tf_float(value: float) -> float:
    """A float32 as TF Serving's ``WriteDecimal<float>`` prints it, returned as the double a client parses
    (``clients.tf_floats``): float32 0.1 reaches the client as 0.1, not 0.10000000149011612. Classification
    scores and regression values are float32 in TF Serving's result protos."""
    return tf_float32_scalar(value)


def status_json(response: StatusResponse) -> dict:
    """``GetModelStatusResponse`` through protobuf's JSON printer (``always_print_primitive_fields``)."""
    return {
        "model_version_status": [
            {
                "version": str(s.version),  # int64 -> JSON string, as protobuf prints it
                "state": s.state,
                "status": {"error_code": s.error_code, "error_message": s.error_message},
            }
            for s in response.versions
        ]
    }


def metadata_json(response: MetadataResponse) -> dict:
    """``ToJsonString(GetModelMetadataResponse)``: model_spec + the SignatureDefMap, proto field names kept.

    TF Serving's metadata call never sets a signature name, so ``model_spec.signature_name`` is always "".
    """
    signature_defs = json_format.MessageToDict(
        response.signature_def_map,  # type: ignore[arg-type]
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
    )
    return {
        "model_spec": {"name": response.model.name, "signature_name": "", "version": str(response.model.version)},
        "metadata": {"signature_def": signature_defs},
    }


def _rows(array: np.ndarray | None, batch: int) -> list:
    if array is None:
        return [None] * batch
    array = np.asarray(array)
    return list(array.reshape(batch, -1)) if array.size else [[] for _ in range(batch)]


def _label(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classify_json(response: ClassifyResponse) -> dict:
    """``MakeJsonFromClassificationResult``: ``{"results": [[[label, score], ...], ...]}``, one list per example.

    A signature without a classes output gives label "" and one without scores gives score 0.0, as the
    ClassificationResult proto defaults print.
    """
    present = response.classes if response.classes is not None else response.scores
    batch = 0 if present is None else int(np.asarray(present).shape[0])
    if batch == 0:
        raise InvalidArgument("Cannot convert empty ClassificationResults to JSON")
    classes, scores = _rows(response.classes, batch), _rows(response.scores, batch)
    results = []
    for labels, values in zip(classes, scores, strict=True):
        width = len(labels) if labels is not None else len(values)
        results.append([
            [_label(labels[k]) if labels is not None else "", tf_float(values[k]) if values is not None else 0.0]
            for k in range(width)
        ])
    return {"results": results}


def regress_json(response: RegressResponse) -> dict:
    """``MakeJsonFromRegressionResult``: ``{"results": [value, ...]}``, one value per example."""
    values = np.asarray(response.values).reshape(-1)
    if values.size == 0:
        raise InvalidArgument("Cannot convert empty RegressionResults to JSON")
    return {"results": [tf_float(v) for v in values]}
