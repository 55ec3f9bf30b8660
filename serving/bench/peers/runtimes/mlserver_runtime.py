"""A minimal MLServer custom runtime (V2 protocol) running ``model.onnx`` with ORT: MLServer decodes the V2
request, this runtime turns its one input into an array (``NumpyCodec``), runs the session and encodes the
outputs. Adaptive batching (``max_batch_size``/``max_batch_time`` in ``model-settings.json``) is MLServer's
own. Loaded by ``mlserver start`` in the MLServer venv (``build/peers-venv/mlserver``); the harness writes
``settings.json`` and each model's ``model-settings.json`` (``parameters.uri``: the model file,
``parameters.extra.ort_options``: the ORT options)."""
from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from ortsession import Model


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        params = self.settings.parameters
        self.model = Model(params.uri, (params.extra or {}).get("ort_options", {}))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        outputs = self.model.run(x)
        return InferenceResponse(model_name=self.name, outputs=[
            NumpyCodec.encode_output(name, value) for name, value in zip(self.model.output_names, outputs, strict=True)])
