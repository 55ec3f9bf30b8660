"""The REST API proper: one ``Route`` and its body in, one HTTP status and JSON body out.

Translation only (MLServer's rule): JSON -> ``serving.types`` requests -> the ``DataPlane`` -> JSON. Request
handling follows ``http_rest_api_handler.cc`` step by step so errors come out in TF Serving's order: parse the
JSON, read ``signature_name``, resolve the servable and signature, decode the tensors, run, encode.
``CodecError`` (bad JSON or tensors) becomes INVALID_ARGUMENT here, in this one place. Each call is written
as steps (``serving.rest.calls``): the backend call is the one ``Blocking`` step, so the HTTP layer decides
where it runs while everything around it stays on the event loop.
"""
from __future__ import annotations

from typing import Any

from clients import rest_codec
from clients.codecs import CodecError
from clients.messages import Example  # tf.Example from the clients' private pool: no TF import
from serving.errors import InvalidArgument, NotFound
from serving.rest import fast_tensors, jsonfmt, routes
from serving.rest.calls import Blocking, Steps, run_inline
from serving.types import (
    ExamplesRequest,
    MetadataRequest,
    ModelSpec,
    PredictRequest,
    StatusRequest,
)

_show = rest_codec.show_json


def _signature_name(body: Any) -> str:
    """``ParseJson`` + ``FillSignature``: the body must be an object whose ``signature_name`` is a string."""
    if not isinstance(body, dict):
        raise InvalidArgument(f"JSON Value: {_show(body)} Is not object")
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise InvalidArgument(
            f"JSON Value: {_show(body)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


class RestApi:
    """Serves parsed REST calls against one ``DataPlane``; thread-safe (holds no per-request state)."""

    def __init__(self, dataplane: Any) -> None:
        self._dataplane = dataplane

    def handle(self, route: routes.Route, body: bytes) -> bytes:
        """The JSON answer to ``route`` (HTTP 200), or a ``ServingError`` carrying TF Serving's status."""
        return run_inline(self.steps(route, body))

    def steps(self, route: routes.Route, body: bytes) -> Steps[bytes]:
        """``handle`` as steps (``serving.rest.calls``): the backend call is yielded as a ``Blocking`` step."""
        api = route.kind if route.kind in (routes.PREDICT, routes.CLASSIFY, routes.REGRESS) else ""
        with self._dataplane.request_scope("REST", api, route.model_name):  # TF Serving's request metrics
            try:
                return (yield from self._dispatch(route, body))
            except CodecError as exc:
                raise InvalidArgument(str(exc)) from exc

    def _dispatch(self, route: routes.Route, body: bytes) -> Steps[bytes]:
        spec = ModelSpec(route.model_name, route.version, route.label)
        if route.kind == routes.STATUS:
            return jsonfmt.encode(jsonfmt.status_json(self._dataplane.status(StatusRequest(spec))), indent=1)
        if route.kind == routes.METADATA:
            response = self._dataplane.metadata(MetadataRequest(spec))
            return jsonfmt.encode(jsonfmt.metadata_json(response), indent=1)
        if route.kind == routes.PREDICT:
            return (yield from self._predict(spec, body))
        if route.kind in (routes.CLASSIFY, routes.REGRESS):
            return (yield from self._classify_or_regress(route.kind, spec, body))
        raise RuntimeError(f"unroutable REST call {route!r}")  # a bug: parse_route never builds one

    def _predict(self, spec: ModelSpec, raw: bytes) -> Steps[bytes]:
        fast = fast_tensors.parse(raw)  # None: the body needs the general decoder (TF Serving's every rule)
        body: Any = None
        try:
            if fast is None:
                body = rest_codec.loads(raw)
            signature = fast.signature_name if fast is not None else _signature_name(body)
            requested = ModelSpec(spec.name, spec.version, spec.label, signature)
            for attempt in range(2):
                resolved, info = self._dataplane.resolve(requested)
                dtypes = {name: tensor.dtype for name, tensor in info.inputs.items()}
                decoded = fast.tensors(dtypes) if fast is not None else None
                if fast is not None:
                    fast.close()
                if decoded is None:
                    if body is None:
                        body = rest_codec.loads(raw)
                    decoded = rest_codec.decode_predict_request(body, dtypes)
                inputs, fmt = decoded
                # Pin the version resolve() chose: the tensors were decoded for its signature.
                request = PredictRequest(
                    ModelSpec(resolved.name, resolved.version, None, resolved.signature_name), inputs)
                try:
                    response = yield Blocking(lambda request=request: self._dataplane.predict(request), resolved.name)
                    break
                except NotFound:
                    # A hot reload retired the pinned version between resolve and predict: resolve again, once,
                    # unless the client asked for that exact version.
                    if attempt or requested.version is not None:
                        raise
                    fast = None  # its document is closed: decode again from the parsed body
        finally:
            if fast is not None:
                fast.close()
        return rest_codec.dumps_response(rest_codec.encode_predict_response(response.outputs, fmt))

    def _classify_or_regress(self, kind: str, spec: ModelSpec, raw: bytes) -> Steps[bytes]:
        body = rest_codec.loads(raw)
        signature = _signature_name(body)
        examples = rest_codec.decode_examples(body, Example)
        request = ExamplesRequest(ModelSpec(spec.name, spec.version, spec.label, signature), tuple(examples))
        if kind == routes.CLASSIFY:
            response = yield Blocking(lambda: self._dataplane.classify(request), spec.name)
            return jsonfmt.encode(jsonfmt.classify_json(response))
        response = yield Blocking(lambda: self._dataplane.regress(request), spec.name)
        return jsonfmt.encode(jsonfmt.regress_json(response))
