"""gRPC client for TF Serving's PredictionService and ModelService, with no TensorFlow and no generated stubs.

Each RPC is ``channel.unary_unary("/tensorflow.serving.PredictionService/Predict", ...)`` over the private
message classes (``clients.messages``). Predict requests and responses go through ``clients.wire`` so big
tensors are copied once on the way out and not at all on the way in.
"""
from __future__ import annotations

import grpc
import numpy as np
from google.protobuf import text_format

from . import codecs, wire
from . import messages as pb
from .base import ModelRef, ServingClient
from .errors import ProtocolError, ServingClientError, error_for_code
from .examples import Features, to_example
from .results import (
    ClassifyResult,
    ModelMetadata,
    VersionStatus,
    code_name,
    signatures_from_proto,
    status_from_proto,
)
from .retry import RetryPolicy
from .tls import TlsConfig

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def _identity(data: bytes) -> bytes:
    return data


def _serialize(message) -> bytes:
    return message.SerializeToString()


def _translate(exc: grpc.RpcError) -> ServingClientError:
    """The one place gRPC errors become the clients' named exceptions (with the server's message)."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return error_for_code(code.name if code is not None else "UNKNOWN", details or str(exc))


class GrpcClient(ServingClient):
    """``GrpcClient("localhost:8500")``; TLS with ``tls=TlsConfig(ca_file=..., cert_file=..., key_file=...)``.

    ``max_message_bytes`` caps both sent and received messages (TF Serving's own default is 4 MiB for
    responses on many clients; ours is 256 MiB so big tensors work out of the box).
    """

    protocol = "grpc"

    def __init__(self, target: str, *, tls: TlsConfig | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, timeout: float = 10.0,
                 retry: RetryPolicy | None = None, metadata_ttl: float = 60.0, validate: bool = True,
                 channel_options: tuple[tuple[str, object], ...] = ()) -> None:
        super().__init__(timeout=timeout, retry=retry, metadata_ttl=metadata_ttl, validate=validate)
        if not target or target.startswith(("http://", "https://")):
            raise ValueError(f"gRPC target is host:port, got {target!r}")
        self.target = target
        self._stubs: dict[str, object] = {}
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes), *channel_options]
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            root, key, chain = tls.read()
            credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key,
                                                       certificate_chain=chain)
            self._channel = grpc.secure_channel(target, credentials, options=options)

    def close(self) -> None:
        self._channel.close()

    def _method(self, path: str, response_cls: type | None):
        """One multi-callable per RPC path (``response_cls`` None: raw bytes both ways, for ``clients.wire``)."""
        stub = self._stubs.get(path)
        if stub is None:
            deserialize = _identity if response_cls is None else response_cls.FromString
            serialize = _identity if response_cls is None else _serialize
            stub = self._stubs[path] = self._channel.unary_unary(
                path, request_serializer=serialize, response_deserializer=deserialize)
        return stub

    def _rpc(self, path: str, request, response_cls: type | None, timeout: float):
        try:
            return self._method(path, response_cls)(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise _translate(exc) from None

    @staticmethod
    def _spec(ref: ModelRef, target) -> None:
        target.name = ref.name
        if ref.version is not None:
            target.version.value = ref.version
        elif ref.label is not None:
            target.version_label = ref.label
        if ref.signature_name:
            target.signature_name = ref.signature_name

    # ------------------------------------------------------------ PredictionService
    def _call_predict(self, ref, inputs, output_filter, timeout) -> dict[str, np.ndarray]:
        named = self._input_names(ref, inputs, timeout)
        head = pb.PredictRequest()
        self._spec(ref, head.model_spec)
        head.output_filter.extend(output_filter)
        request = wire.predict_request_to_bytes(head.SerializeToString(), named)  # CodecError: a ValueError
        raw = self._rpc(pb.PREDICTION_SERVICE + "Predict", request, None, timeout)
        try:
            outputs, _spec = wire.predict_response_from_bytes(raw)
        except codecs.CodecError as exc:
            raise ProtocolError(f"cannot decode the PredictResponse: {exc}") from None
        return outputs

    def _examples_input(self, request, examples: list[Features], context: Features | None) -> None:
        if context is None:
            request.input.example_list.examples.extend(to_example(e, pb.Example) for e in examples)
        else:
            target = request.input.example_list_with_context
            target.examples.extend(to_example(e, pb.Example) for e in examples)
            target.context.CopyFrom(to_example(context, pb.Example))

    def _call_classify(self, ref, examples, context, timeout) -> ClassifyResult:
        request = pb.ClassificationRequest()
        self._spec(ref, request.model_spec)
        self._examples_input(request, examples, context)
        response = self._rpc(pb.PREDICTION_SERVICE + "Classify", request, pb.ClassificationResponse, timeout)
        rows = ([(c.label, c.score) for c in row.classes] for row in response.result.classifications)
        try:
            return ClassifyResult.from_rows(rows)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None

    def _call_regress(self, ref, examples, context, timeout) -> np.ndarray:
        request = pb.RegressionRequest()
        self._spec(ref, request.model_spec)
        self._examples_input(request, examples, context)
        response = self._rpc(pb.PREDICTION_SERVICE + "Regress", request, pb.RegressionResponse, timeout)
        return np.array([r.value for r in response.result.regressions], dtype=np.float32)

    def _call_metadata(self, ref, timeout) -> ModelMetadata:
        request = pb.GetModelMetadataRequest()
        self._spec(ref, request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._rpc(pb.PREDICTION_SERVICE + "GetModelMetadata", request,
                             pb.GetModelMetadataResponse, timeout)
        sigmap = pb.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(sigmap):
            raise ProtocolError("GetModelMetadata answer has no signature_def metadata")
        return ModelMetadata(name=response.model_spec.name, version=int(response.model_spec.version.value),
                             signatures=signatures_from_proto(sigmap))

    # ------------------------------------------------------------ ModelService
    def _call_status(self, ref, timeout) -> list[VersionStatus]:
        request = pb.GetModelStatusRequest()
        self._spec(ref, request.model_spec)
        response = self._rpc(pb.MODEL_SERVICE + "GetModelStatus", request, pb.GetModelStatusResponse, timeout)
        return status_from_proto(response)

    def reload_config(self, config, *, timeout: float | None = None) -> None:
        """Replace the server's model config (``ModelService/HandleReloadConfigRequest``). ``config`` is a
        ``ModelServerConfig`` message (ours or tensorflow-serving-api's) or its text format."""
        if isinstance(config, (str, bytes)):
            text = config.decode("utf-8") if isinstance(config, bytes) else config
            try:
                config = text_format.Parse(text, pb.ModelServerConfig())
            except text_format.ParseError as exc:
                raise ValueError(f"invalid ModelServerConfig text: {exc}") from None
        elif not isinstance(config, pb.ModelServerConfig):
            config = pb.ModelServerConfig.FromString(config.SerializeToString())
        request = pb.ReloadConfigRequest()
        request.config.CopyFrom(config)

        def attempt(t: float) -> None:
            response = self._rpc(pb.MODEL_SERVICE + "HandleReloadConfigRequest", request,
                                 pb.ReloadConfigResponse, t)
            if response.status.error_code:
                raise error_for_code(code_name(int(response.status.error_code)), response.status.error_message)

        self._run(attempt, timeout)


__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "GrpcClient"]
