"""KServe's Python ``ModelServer`` with a minimal V1-protocol ``kserve.Model`` (``/v1/models/NAME:predict``,
TF Serving's REST API): KServe parses the JSON body, ``predict`` runs ORT and returns the predictions dict,
KServe encodes it. Runs in the KServe venv (``build/peers-venv/kserve``).

KServe's defaults except two: no gRPC server (the harness drives KServe over REST only) and no per-request
latency log line (our server writes none either; a log line per request would be what is measured).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from ortsession import add_arguments, parse_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported: keep our flags away from its parser
    import kserve

    class OnnxV1Model(kserve.Model):
        def __init__(self, name: str, model) -> None:
            super().__init__(name)
            self.model = model
            self.ready = True

        def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None,
                    response_headers: dict[str, str] | None = None) -> dict[str, Any]:
            outputs = self.model.run(np.asarray(payload["instances"], dtype=self.model.dtype))
            return {"predictions": outputs[0].tolist()}

    models = [OnnxV1Model(name, m) for name, m in parse_models(args.model, args.ort_options).items()]
    kserve.ModelServer(http_port=args.port, workers=1, enable_grpc=False,
                       enable_latency_logging=False).start(models)


if __name__ == "__main__":
    main()
