"""REST client for TF Serving's ``/v1/models/...`` API over persistent ``http.client`` connections.

JSON loses dtypes (every float comes back as a double, strings as text), so by default outputs are cast back
to the signature's dtypes from the model's metadata (fetched once per model and cached): a REST answer then
compares equal to the gRPC one. ``output_filter`` is applied on the client (REST has no such field).
"""
from __future__ import annotations

import gzip
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
from google.protobuf import json_format

from . import messages as pb
from . import rest_codec
from ._http import ConnectionPool
from .base import ModelRef, ServingClient
from .codecs import CodecError
from .errors import InvalidInputError, ProtocolError, error_for_http
from .examples import Features, to_json_example
from .results import (
    ClassifyResult,
    ModelMetadata,
    Signature,
    VersionStatus,
    signatures_from_proto,
    status_from_proto,
)
from .retry import RetryPolicy


def _split_target(target: str) -> tuple[str, int]:
    parts = urlsplit(target if "://" in target else f"http://{target}")
    if parts.scheme != "http" or not parts.hostname or parts.port is None or parts.path not in ("", "/"):
        raise ValueError(f"REST target is host:port or http://host:port, got {target!r}")
    return parts.hostname, parts.port


class RestClient(ServingClient):
    """``RestClient("localhost:8501")``. ``gzip=True`` compresses request bodies of ``gzip_min_bytes`` or
    more (``Content-Encoding: gzip``); ``fmt`` picks the request layout ("columnar" ``inputs`` or "row"
    ``instances``); ``typed_outputs=False`` keeps JSON's own types (float64/int64/str)."""

    protocol = "rest"

    def __init__(self, target: str, *, timeout: float = 10.0, retry: RetryPolicy | None = None,
                 metadata_ttl: float = 60.0, validate: bool = True, gzip: bool = False, gzip_min_bytes: int = 1024,
                 fmt: str = "columnar", typed_outputs: bool = True, pool_size: int = 4) -> None:
        super().__init__(timeout=timeout, retry=retry, metadata_ttl=metadata_ttl, validate=validate)
        if fmt not in ("columnar", "row"):
            raise ValueError(f"fmt is 'columnar' or 'row', got {fmt!r}")
        host, port = _split_target(target)
        self.target = f"{host}:{port}"
        self.gzip, self.gzip_min_bytes, self.fmt, self.typed_outputs = gzip, gzip_min_bytes, fmt, typed_outputs
        self._pool = ConnectionPool(host, port, size=pool_size)

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------ HTTP
    @staticmethod
    def _path(ref: ModelRef, suffix: str = "") -> str:
        path = f"/v1/models/{quote(ref.name, safe='')}"
        if ref.version is not None:
            path += f"/versions/{int(ref.version)}"
        elif ref.label is not None:
            path += f"/labels/{quote(ref.label, safe='')}"
        return path + suffix

    def _call(self, method: str, path: str, body: Any, timeout: float) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = rest_codec.dumps(body)
            headers["Content-Type"] = "application/json"
            if self.gzip and len(data) >= self.gzip_min_bytes:
                data = gzip.compress(data, compresslevel=1)
                headers["Content-Encoding"] = "gzip"
        if self.gzip:
            headers["Accept-Encoding"] = "gzip"
        response = self._pool.request(method, path, data, headers, timeout)
        raw = response.body
        if response.headers.get("content-encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        try:
            answer = rest_codec.loads(raw) if raw else None
        except CodecError:
            answer = None
        if response.status != 200:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise error_for_http(response.status, str(message) if message else raw.decode("utf-8", "replace")
                                 or f"HTTP {response.status}")
        if answer is None:
            raise ProtocolError(f"{method} {path}: answer is not JSON: {raw[:200]!r}")
        return answer

    # ------------------------------------------------------------ API
    def _call_predict(self, ref, inputs, output_filter, timeout) -> dict[str, np.ndarray]:
        body = rest_codec.encode_predict_request(inputs, ref.signature_name, self.fmt)
        answer = self._call("POST", self._path(ref, ":predict"), body, timeout)
        try:
            raw = rest_codec.split_predict_response(answer)
        except CodecError as exc:
            raise ProtocolError(str(exc)) from None
        sig = None
        if self.typed_outputs or not isinstance(raw, dict):
            sig = self.signature(model=ref.name, version=ref.version, label=ref.label,
                                 signature_name=ref.signature_name, timeout=timeout)
        if not isinstance(raw, dict):
            if sig is None or len(sig.outputs) != 1:
                raise ProtocolError("an unnamed REST answer for a signature without exactly one output")
            raw = {next(iter(sig.outputs)): raw}
        if output_filter:
            missing = sorted(set(output_filter) - set(raw))
            if missing:
                raise InvalidInputError(f"output tensor alias not found in signature: {', '.join(missing)}")
            raw = {k: raw[k] for k in output_filter}
        try:
            return {k: rest_codec.json_to_output(v, self._dtype(sig, k)) for k, v in raw.items()}
        except CodecError as exc:
            raise ProtocolError(str(exc)) from None

    def _dtype(self, sig: Signature | None, name: str) -> np.dtype | None:
        if not self.typed_outputs or sig is None or name not in sig.outputs:
            return None
        return sig.outputs[name].numpy_dtype

    def _examples_body(self, ref: ModelRef, examples: list[Features], context: Features | None) -> dict:
        body: dict[str, Any] = {"examples": [to_json_example(e) for e in examples]}
        if context is not None:
            body["context"] = to_json_example(context)
        if ref.signature_name:
            body["signature_name"] = ref.signature_name
        return body

    def _call_classify(self, ref, examples, context, timeout) -> ClassifyResult:
        answer = self._call("POST", self._path(ref, ":classify"), self._examples_body(ref, examples, context), timeout)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ProtocolError(f"classify answer has no 'results' list: {str(answer)[:200]}")
        try:
            return ClassifyResult.from_rows(results)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None

    def _call_regress(self, ref, examples, context, timeout) -> np.ndarray:
        answer = self._call("POST", self._path(ref, ":regress"), self._examples_body(ref, examples, context), timeout)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ProtocolError(f"regress answer has no 'results' list: {str(answer)[:200]}")
        return np.asarray(results, dtype=np.float32)

    def _call_metadata(self, ref, timeout) -> ModelMetadata:
        answer = self._call("GET", self._path(ref, "/metadata"), None, timeout)
        try:
            raw_map = answer["metadata"]["signature_def"]
            sigmap = json_format.ParseDict(raw_map, pb.SignatureDefMap(), ignore_unknown_fields=True)
            version = int(answer["model_spec"]["version"])
        except (KeyError, TypeError, ValueError, json_format.ParseError) as exc:
            raise ProtocolError(f"unexpected metadata answer ({exc!r}): {str(answer)[:200]}") from None
        return ModelMetadata(name=answer["model_spec"].get("name", ref.name), version=version,
                             signatures=signatures_from_proto(sigmap))

    def _call_status(self, ref, timeout) -> list[VersionStatus]:
        answer = self._call("GET", self._path(ref), None, timeout)
        try:
            response = json_format.ParseDict(answer, pb.GetModelStatusResponse(), ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise ProtocolError(f"unexpected status answer ({exc}): {str(answer)[:200]}") from None
        return status_from_proto(response)




__all__ = ["RestClient"]
