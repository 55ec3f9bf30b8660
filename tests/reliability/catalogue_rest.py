"""The REST bad-input catalogue: malformed requests and the answer TF Serving gives each.

Served models (``conftest.catalogue_config``): ``half_plus_two`` (TF1 fixture, versions 123 and 124, labels
``stable`` -> 123 and ``canary`` -> 124, ``x: float[-1, 1]``), ``tf2`` (TF2 fixture, ``x: float[1]``) and
``onnx`` (ONNX Runtime, ``x: float[N, 1]``). TF Serving does not check a TensorFlow input's shape against the
signature (the session runs any shape its ops accept), so shape errors are exercised on the ONNX model, whose
runtime does check them.

Expected answers follow TF Serving's REST handler (``http_rest_api_handler.cc`` and its test): every error
is ``{"error": "<message>"}`` with the HTTP status of its canonical code (INVALID_ARGUMENT and
FAILED_PRECONDITION 400, NOT_FOUND 404, ...). Paths outside ``/v1/`` are not TF Serving's: libevent answers a
bare 404 there (``json_error=False``). TF Serving ignores ``Content-Type``; a body that is not UTF-8 JSON is a
parse error whatever the header says.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass

P = "/v1/models/half_plus_two"
GOOD = b'{"instances": [[1.0], [2.0], [5.0]]}'


@dataclass(frozen=True)
class RestCase:
    """One request and the answer expected: HTTP status and a substring of the ``error`` message."""

    id: str
    method: str
    path: str
    body: bytes | None = None
    status: int = 400
    error: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    json_error: bool = True


def _deep(depth: int) -> bytes:
    return b'{"instances": ' + b"[" * depth + b"1.0" + b"]" * depth + b"}"


REST_CASES: tuple[RestCase, ...] = (
    # ---- JSON that does not parse
    RestCase("invalid-json", "POST", f"{P}:predict", b"instances = [1, 2]", error="JSON Parse error"),
    RestCase("truncated-json", "POST", f"{P}:predict", b'{"instances": [1.0,', error="JSON Parse error"),
    RestCase("empty-body", "POST", f"{P}:predict", b"", error="JSON Parse error: The document is empty"),
    RestCase("trailing-garbage", "POST", f"{P}:predict", GOOD + b" xyz", error="JSON Parse error"),
    RestCase("not-utf8", "POST", f"{P}:predict", b'{"instances": [[1.0]], "\xff\xfe": 1}', error="JSON Parse error"),
    RestCase("very-deep-nesting", "POST", f"{P}:predict", _deep(100_000)),
    RestCase("deep-nesting-beyond-max-rank", "POST", f"{P}:predict", _deep(500)),
    # ---- wrong top-level shape of the body
    RestCase("top-level-array", "POST", f"{P}:predict", b"[1.0, 2.0]", error="Is not object"),
    RestCase("top-level-string", "POST", f"{P}:predict", b'"instances"', error="Is not object"),
    RestCase("top-level-number", "POST", f"{P}:predict", b"3", error="Is not object"),
    RestCase("top-level-null", "POST", f"{P}:predict", b"null", error="Is not object"),
    RestCase("both-instances-and-inputs", "POST", f"{P}:predict", b'{"instances": [[1.0]], "inputs": [[1.0]]}',
             error="only one of 'inputs' or 'instances'"),
    RestCase("neither-instances-nor-inputs", "POST", f"{P}:predict", b'{"signature_name": "serving_default"}',
             error="Missing 'inputs' or 'instances' key"),
    RestCase("instances-not-a-list", "POST", f"{P}:predict", b'{"instances": 1.0}', error="list/array"),
    RestCase("instances-null", "POST", f"{P}:predict", b'{"instances": null}'),
    RestCase("instances-empty", "POST", f"{P}:predict", b'{"instances": []}', error="No values in 'instances'"),
    RestCase("signature-name-not-string", "POST", f"{P}:predict", b'{"signature_name": 100, "instances": [[1.0]]}',
             error="'signature_name' key must be a string value."),
    # ---- wrong values and dtypes
    RestCase("string-for-float", "POST", f"{P}:predict", b'{"instances": [["x"], ["y"]]}', error="not of expected type"),
    RestCase("bool-for-float", "POST", f"{P}:predict", b'{"instances": [[true], [false]]}', error="not of expected type"),
    RestCase("null-element", "POST", f"{P}:predict", b'{"instances": [[1.0], [null]]}'),
    RestCase("null-columnar", "POST", f"{P}:predict", b'{"inputs": null}'),
    RestCase("object-element", "POST", f"{P}:predict", b'{"instances": [[1.0], {"a": 1}]}'),
    RestCase("b64-for-float", "POST", f"{P}:predict", b'{"instances": [[{"b64": "AAAA"}]]}'),
    RestCase("float32-overflow", "POST", f"{P}:predict", b'{"instances": [[1e39]]}', error="loss of precision"),
    # rapidjson reads an integer beyond 64 bits as a double, and a double that fits a float is a valid DT_FLOAT
    # (json_tensor.cc IsLosslessDecimal): TF Serving answers 200, as do we.
    RestCase("huge-integer", "POST", f"{P}:predict", b'{"instances": [[123456789012345678901234567890]]}',
             status=200),
    RestCase("number-beyond-double", "POST", f"{P}:predict", b'{"instances": [[1e400]]}',
             error="JSON Parse error"),  # rapidjson: "Number too big to be stored in double"
    # ---- ragged / wrong shapes / empty tensors
    RestCase("ragged-instances", "POST", f"{P}:predict", b'{"instances": [[1.0], [1.0, 2.0]]}',
             error="Expecting shape"),
    RestCase("ragged-columnar", "POST", f"{P}:predict", b'{"inputs": [[1.0], [1.0, 2.0]]}'),
    RestCase("ragged-mixed-rank", "POST", f"{P}:predict", b'{"inputs": [[1.0], 2.0]}'),
    RestCase("wrong-shape-onnx", "POST", "/v1/models/onnx:predict", b'{"inputs": [[1.0, 2.0]]}'),
    RestCase("wrong-rank-onnx", "POST", "/v1/models/onnx:predict", b'{"inputs": [[[1.0]]]}'),
    RestCase("empty-tensor-onnx", "POST", "/v1/models/onnx:predict", b'{"inputs": []}'),
    RestCase("wrong-dtype-onnx", "POST", "/v1/models/onnx:predict", b'{"inputs": [["a"]]}',
             error="not of expected type"),
    # ---- unknown names
    RestCase("unknown-input-row", "POST", f"{P}:predict", b'{"instances": [{"z": 1.0}]}',
             error="does not have named input: z"),
    RestCase("unknown-input-columnar", "POST", f"{P}:predict", b'{"inputs": {"z": [1.0]}}',
             error="Missing named input: x"),
    RestCase("unknown-model", "POST", "/v1/models/nope:predict", GOOD, 404, "Servable not found"),
    RestCase("unknown-version", "POST", f"{P}/versions/999:predict", GOOD, 404, "Servable not found"),
    RestCase("unknown-label", "POST", f"{P}/labels/nope:predict", GOOD, 400, "Unrecognized servable version label"),
    RestCase("unknown-signature", "POST", f"{P}:predict", b'{"signature_name": "nope", "instances": [[1.0]]}',
             error='"nope"'),
    RestCase("unknown-verb", "POST", f"{P}:explain", GOOD, error="Malformed request"),
    RestCase("unknown-model-metadata", "GET", "/v1/models/nope/metadata", None, 404, "Servable not found"),
    RestCase("unknown-model-status", "GET", "/v1/models/nope", None, 404),
    RestCase("very-long-model-name", "POST", "/v1/models/" + "m" * 10_000 + ":predict", GOOD, 404),
    # ---- versions in the URL
    RestCase("non-numeric-version", "POST", f"{P}/versions/abc:predict", GOOD, error="Malformed request"),
    RestCase("negative-version", "POST", f"{P}/versions/-1:predict", GOOD, error="Malformed request"),
    RestCase("version-overflows-int64", "POST", f"{P}/versions/18446744073709551615:predict", GOOD,
             error="Failed to convert version"),
    RestCase("version-and-label", "POST", f"{P}/versions/123/labels/stable:predict", GOOD, error="Malformed request"),
    RestCase("missing-model-name", "GET", "/v1/models", None, error="Missing model name"),
    # ---- methods, verbs on the wrong API
    RestCase("put-predict", "PUT", f"{P}:predict", GOOD, error="Malformed request"),
    RestCase("delete-model", "DELETE", P, None, error="Malformed request"),
    RestCase("get-predict", "GET", f"{P}:predict", None, error="Malformed request"),
    RestCase("post-status", "POST", P, GOOD, error="Malformed request"),
    RestCase("post-metadata", "POST", f"{P}/metadata", GOOD, error="Malformed request"),
    RestCase("classify-on-predict-signature", "POST", f"{P}:classify", b'{"examples": [{"x": 1.0}]}'),
    RestCase("regress-without-examples", "POST", f"{P}:regress", b'{"signature_name": "regress_x_to_y", "instances": [[1.0]]}',
             error="'examples'"),
    RestCase("classify-bad-base64", "POST", f"{P}:classify",
             b'{"signature_name": "classify_x_to_y", "examples": [{"x": {"b64": "!!not base64!!"}}]}',
             error="base64"),
    RestCase("outside-v1", "GET", "/v2/models/half_plus_two", None, 404, json_error=False),
    # ---- content encodings and types
    RestCase("garbage-gzip", "POST", f"{P}:predict", b"this is not gzip", headers=(("Content-Encoding", "gzip"),)),
    RestCase("gzip-of-invalid-json", "POST", f"{P}:predict", gzip.compress(b"{not json"),
             headers=(("Content-Encoding", "gzip"),)),
    RestCase("latin1-content-type", "POST", f"{P}:predict", b'{"instances": [["caf\xe9"]]}',
             headers=(("Content-Type", "text/plain; charset=latin-1"),), error="JSON Parse error"),
)

# Requests TF Serving accepts although they look odd; the catalogue checks they keep working.
REST_ACCEPTED: tuple[RestCase, ...] = (
    RestCase("form-content-type-is-ignored", "POST", f"{P}:predict", GOOD, 200,
             headers=(("Content-Type", "application/x-www-form-urlencoded"),)),
    RestCase("valid-gzip-body", "POST", f"{P}:predict", gzip.compress(GOOD), 200,
             headers=(("Content-Encoding", "gzip"),)),
    RestCase("integers-for-float", "POST", f"{P}:predict", b'{"instances": [[1], [2], [5]]}', 200),
)
