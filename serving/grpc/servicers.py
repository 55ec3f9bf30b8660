"""PredictionService and ModelService servicers: wire -> ``serving.types`` -> DataPlane -> wire.

Each RPC is three lines (convert, call, convert) inside ``_call``, the one place where errors become gRPC
statuses: ``ServingError`` with its own code and message, anything else logged as a server bug and answered
INTERNAL with its message.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

import grpc
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from ..dataplane import DataPlane
from ..errors import ServingError, StatusCode
from . import convert

log = logging.getLogger("serving.grpc")
T = TypeVar("T")


def _call(context: grpc.ServicerContext, handler: Callable[[], T], scope=None) -> T:
    """Run ``handler``; ``scope`` (``DataPlane.request_scope``) records TF Serving's request metrics."""
    try:
        with scope if scope is not None else contextlib.nullcontext():
            return handler()
    except ServingError as exc:
        code, message = exc.grpc_code, exc.message
    except Exception as exc:  # a server bug: keep the traceback in the log, tell the client INTERNAL
        log.exception("Unhandled error in gRPC handler")
        code, message = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

    def Predict(self, request, context):  # noqa: N802 - gRPC method names
        return _call(context, lambda: convert.predict_response_to_proto(
            self.dp.predict(convert.predict_request_from_proto(request))),
            self.dp.request_scope("GRPC", "Predict", request.model_spec.name))

    def Classify(self, request, context):  # noqa: N802
        return _call(context, lambda: convert.classify_response_to_proto(
            self.dp.classify(convert.examples_request_from_proto(request))),
            self.dp.request_scope("GRPC", "Classify", request.model_spec.name))

    def Regress(self, request, context):  # noqa: N802
        return _call(context, lambda: convert.regress_response_to_proto(
            self.dp.regress(convert.examples_request_from_proto(request))),
            self.dp.request_scope("GRPC", "Regress", request.model_spec.name))

    def MultiInference(self, request, context):  # noqa: N802
        return _call(context, lambda: convert.multi_inference_response_to_proto(
            self.dp.multi_inference(convert.multi_inference_request_from_proto(request))))

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _call(context, lambda: convert.metadata_response_to_proto(
            self.dp.metadata(convert.metadata_request_from_proto(request))))


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

    def GetModelStatus(self, request, context):  # noqa: N802
        return _call(context, lambda: convert.status_response_to_proto(
            self.dp.status(convert.status_request_from_proto(request))))

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        def reload() -> model_management_pb2.ReloadConfigResponse:
            self.dp.reload_config(request.config)
            response = model_management_pb2.ReloadConfigResponse()
            response.status.error_code = int(StatusCode.OK)
            return response

        return _call(context, reload)


def add_servicers(server: grpc.Server, dataplane: DataPlane) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(dataplane), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(dataplane), server)
