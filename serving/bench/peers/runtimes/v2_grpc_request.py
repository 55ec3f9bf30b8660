"""Write serialized V2 ``ModelInferRequest`` messages (MLServer's own protos, so run in the MLServer venv) for
the harness's gRPC closed loop: ``--out FILE --model NAME --input-name X --npy TENSOR.npy``, the tensor as
``fp32_contents`` (what a V2 client such as tritonclient sends without the raw-bytes extension)."""
from __future__ import annotations

import argparse

import numpy as np
from mlserver.grpc import dataplane_pb2 as pb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input-name", required=True)
    parser.add_argument("--npy", required=True)
    args = parser.parse_args()
    x = np.load(args.npy).astype(np.float32)
    request = pb.ModelInferRequest(model_name=args.model)
    tensor = request.inputs.add(name=args.input_name, datatype="FP32", shape=list(x.shape))
    tensor.contents.fp32_contents.extend(x.reshape(-1).tolist())
    with open(args.out, "wb") as f:
        f.write(request.SerializeToString())


if __name__ == "__main__":
    main()
