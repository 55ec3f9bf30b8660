"""Floor: a bare synchronous grpcio server with TF Serving's ``PredictionService/Predict`` (the
tensorflow-serving-api protos), a thread pool of 4 x cores (our ``--grpc_max_threads`` default), tensor bytes
in and out through ``tensor_content``, ORT in between. What gRPC + protobuf + ORT cost with no server around
them."""
from __future__ import annotations

import argparse
import os
from concurrent import futures

import grpc
import numpy as np
from ortsession import add_arguments, parse_models
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

_DTYPES = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64, types_pb2.DT_INT64: np.int64,
           types_pb2.DT_INT32: np.int32}
_ENUMS = {np.dtype(v): k for k, v in _DTYPES.items()}


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    dtype = _DTYPES[proto.dtype]
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = proto.float_val or proto.double_val or proto.int64_val or proto.int_val
    return np.asarray(values, dtype=dtype).reshape(shape)


def to_proto(arr: np.ndarray, proto: tensor_pb2.TensorProto) -> None:
    arr = np.ascontiguousarray(arr)
    proto.dtype = _ENUMS[arr.dtype]
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in arr.shape]))
    proto.tensor_content = arr.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    models = parse_models(args.model, args.ort_options)

    def predict(request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        model = models.get(request.model_spec.name)
        if model is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no model {request.model_spec.name!r}")
        x = to_array(next(iter(request.inputs.values())))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in zip(model.output_names, model.run(x), strict=True):
            to_proto(value, response.outputs[name])
        return response

    handler = grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
        "Predict": grpc.unary_unary_rpc_method_handler(
            predict, request_deserializer=predict_pb2.PredictRequest.FromString,
            response_serializer=predict_pb2.PredictResponse.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4 * (os.cpu_count() or 1)),
                         options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
