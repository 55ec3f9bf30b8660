"""gRPC wire format <-> ``serving.types``: pairs of ``*_from_proto`` / ``*_to_proto`` and nothing else.

Request tensors are decoded by ``clients.codecs`` (the project's one TensorProto decoder: tensor_content or
typed fields); a malformed tensor is the client's fault and becomes INVALID_ARGUMENT here, at the gRPC boundary.
Response tensors are written the way TF Serving writes them by default (``Tensor::AsProtoField``: the typed
``*_val`` fields, not ``tensor_content``), so clients that read ``outputs['y'].float_val`` keep working.
"""
from __future__ import annotations

import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from clients.codecs import CodecError, dtype_to_enum, tensor_proto_to_ndarray

from ..backends.base import CLASSIFY_METHOD, REGRESS_METHOD
from ..errors import InvalidArgument, StatusCode
from ..types import (
    ClassifyResponse,
    ExamplesRequest,
    InferenceTask,
    MetadataRequest,
    MetadataResponse,
    ModelSpec,
    MultiInferenceRequest,
    MultiInferenceResponse,
    PredictRequest,
    PredictResponse,
    RegressResponse,
    ResolvedSpec,
    StatusRequest,
    StatusResponse,
)

# tensorflow_serving.apis.ModelVersionStatus.State
STATE_ENUM = {"UNKNOWN": 0, "START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}
METHODS = {CLASSIFY_METHOD: "classify", REGRESS_METHOD: "regress"}


# numpy kind/dtype -> the TensorProto field TF's AsProtoField fills.
_FIELD = {
    "float32": "float_val", "float64": "double_val", "int32": "int_val", "int16": "int_val", "int8": "int_val",
    "uint8": "int_val", "uint16": "int_val", "int64": "int64_val", "bool": "bool_val", "uint32": "uint32_val",
    "uint64": "uint64_val", "complex64": "scomplex_val", "complex128": "dcomplex_val",
}


_STRING, _HALF, _COMPLEX, _PLAIN = range(4)
_PLANS: dict[np.dtype, tuple[int, int, str]] = {}  # dtype -> (DataType enum, how, field): dtype.name is slow


def _plan(dtype: np.dtype) -> tuple[int, int, str]:
    plan = _PLANS.get(dtype)
    if plan is None:
        enum = dtype_to_enum(dtype)
        if dtype.kind in ("O", "S", "U"):
            plan = (enum, _STRING, "string_val")
        elif dtype.name in ("float16", "bfloat16"):
            plan = (enum, _HALF, "half_val")
        elif dtype.kind == "c":
            plan = (enum, _COMPLEX, _FIELD[dtype.name])
        else:
            plan = (enum, _PLAIN, _FIELD[dtype.name])
        if len(_PLANS) < 256:  # dtypes are few; structured or odd-byte-order ones are not worth keeping
            _PLANS[dtype] = plan
    return plan


def ndarray_to_proto_field(array: np.ndarray, out):
    """Fill the TensorProto ``out`` from ``array`` using typed fields (TF's AsProtoField); returns ``out``.

    As ``Tensor::AsProtoField``, ``tensor_shape`` is always present, also for a scalar (an empty
    TensorShapeProto: ``HasField("tensor_shape")`` is true and it has no dims); half and bfloat16 go to
    ``half_val`` as their 16 bits, strings to ``string_val`` as bytes, bool to ``bool_val``.
    """
    arr = np.asarray(array)
    enum, how, field = _plan(arr.dtype)
    out.Clear()
    out.dtype = enum
    out.tensor_shape.SetInParent()
    dims = out.tensor_shape.dim
    for size in arr.shape:
        dims.add().size = size
    flat = arr.reshape(-1)
    if how == _PLAIN:
        getattr(out, field).extend(flat.tolist())
    elif how == _STRING:
        out.string_val.extend(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in flat.tolist())
    elif how == _HALF:
        out.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(out, field).extend(flat.view(flat.real.dtype).tolist())
    return out


# ------------------------------------------------------------------ model spec
def request_spec(request) -> ModelSpec:
    """The ModelSpec of a request message, which TF Serving requires (``Missing ModelSpec``)."""
    if not request.HasField("model_spec"):
        raise InvalidArgument("Missing ModelSpec")
    return model_spec_from_proto(request.model_spec)


def model_spec_from_proto(spec: model_pb2.ModelSpec) -> ModelSpec:
    choice = spec.WhichOneof("version_choice")
    return ModelSpec(
        name=spec.name,
        version=spec.version.value if choice == "version" else None,
        label=spec.version_label if choice == "version_label" else None,
        signature_name=spec.signature_name,
    )


def model_spec_to_proto(resolved: ResolvedSpec, out: model_pb2.ModelSpec) -> model_pb2.ModelSpec:
    out.name = resolved.name
    out.version.value = resolved.version
    out.signature_name = resolved.signature_name
    return out


# ------------------------------------------------------------------ predict
def predict_request_from_proto(req: predict_pb2.PredictRequest) -> PredictRequest:
    spec = request_spec(req)
    inputs = {}
    for alias, tensor in req.inputs.items():
        try:
            inputs[alias] = tensor_proto_to_ndarray(tensor)
        except CodecError as exc:
            raise InvalidArgument(f"Invalid tensor for input '{alias}': {exc}") from exc
    return PredictRequest(spec, inputs, tuple(req.output_filter))


def predict_response_to_proto(resp: PredictResponse) -> predict_pb2.PredictResponse:
    out = predict_pb2.PredictResponse()
    model_spec_to_proto(resp.model, out.model_spec)
    for alias, array in resp.outputs.items():
        ndarray_to_proto_field(array, out.outputs[alias])
    return out


# ------------------------------------------------------------------ classify / regress
def examples_from_input(inp: input_pb2.Input) -> tuple[bytes, ...]:
    """Serialized tf.Example per example; with a context, context + example bytes (proto merge semantics:
    the example's features override the context's, exactly as TF Serving concatenates them)."""
    kind = inp.WhichOneof("kind")
    if kind == "example_list":
        return tuple(e.SerializeToString() for e in inp.example_list.examples)
    if kind == "example_list_with_context":
        context = inp.example_list_with_context.context.SerializeToString()
        return tuple(context + e.SerializeToString() for e in inp.example_list_with_context.examples)
    raise InvalidArgument("Input is empty.")


def examples_request_from_proto(req) -> ExamplesRequest:
    """ClassificationRequest / RegressionRequest -> ExamplesRequest."""
    return ExamplesRequest(request_spec(req), examples_from_input(req.input))


def classification_result_to_proto(resp: ClassifyResponse, out: classification_pb2.ClassificationResult) -> None:
    batch = resp.classes.shape[0] if resp.classes is not None else resp.scores.shape[0]
    width = resp.classes.shape[1] if resp.classes is not None else resp.scores.shape[1]
    for i in range(batch):
        row = out.classifications.add()
        for j in range(width):
            cls = row.classes.add()
            if resp.classes is not None:
                cls.label = _text(resp.classes[i, j])
            if resp.scores is not None:
                cls.score = float(resp.scores[i, j])


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classify_response_to_proto(resp: ClassifyResponse) -> classification_pb2.ClassificationResponse:
    out = classification_pb2.ClassificationResponse()
    model_spec_to_proto(resp.model, out.model_spec)
    classification_result_to_proto(resp, out.result)
    return out


def regress_response_to_proto(resp: RegressResponse) -> regression_pb2.RegressionResponse:
    out = regression_pb2.RegressionResponse()
    model_spec_to_proto(resp.model, out.model_spec)
    for value in resp.values.tolist():
        out.result.regressions.add().value = value
    return out


def multi_inference_request_from_proto(req: inference_pb2.MultiInferenceRequest) -> MultiInferenceRequest:
    tasks = []
    for task in req.tasks:
        method = METHODS.get(task.method_name)
        if method is None:
            raise InvalidArgument(f"Unsupported signature method_name: {task.method_name}")
        tasks.append(InferenceTask(request_spec(task), method))
    return MultiInferenceRequest(tuple(tasks), examples_from_input(req.input))


def multi_inference_response_to_proto(resp: MultiInferenceResponse) -> inference_pb2.MultiInferenceResponse:
    out = inference_pb2.MultiInferenceResponse()
    for result in resp.results:
        item = out.results.add()
        model_spec_to_proto(result.model, item.model_spec)
        if isinstance(result, ClassifyResponse):
            classification_result_to_proto(result, item.classification_result)
        else:
            for value in result.values.tolist():
                item.regression_result.regressions.add().value = value
    return out


# ------------------------------------------------------------------ metadata / status
def metadata_request_from_proto(req: get_model_metadata_pb2.GetModelMetadataRequest) -> MetadataRequest:
    return MetadataRequest(request_spec(req), tuple(req.metadata_field))


def metadata_response_to_proto(resp: MetadataResponse) -> get_model_metadata_pb2.GetModelMetadataResponse:
    out = get_model_metadata_pb2.GetModelMetadataResponse()
    out.model_spec.name = resp.model.name
    out.model_spec.version.value = resp.model.version
    out.metadata["signature_def"].Pack(resp.signature_def_map)
    return out


def status_request_from_proto(req: get_model_status_pb2.GetModelStatusRequest) -> StatusRequest:
    return StatusRequest(request_spec(req))


def status_response_to_proto(resp: StatusResponse) -> get_model_status_pb2.GetModelStatusResponse:
    out = get_model_status_pb2.GetModelStatusResponse()
    for status in resp.versions:
        item = out.model_version_status.add()
        item.version = status.version
        item.state = STATE_ENUM[status.state]
        item.status.error_code = int(StatusCode[status.error_code])
        item.status.error_message = status.error_message
    return out
