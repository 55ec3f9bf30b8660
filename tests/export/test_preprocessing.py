"""Models users bring to TF Serving: raw-text / lookup / uint8 / mixed-precision inputs export end to end.

Each is exported from a ``.keras`` file with generated samples, published (SavedModel always; ONNX when
the converter covers the graph, else ``onnx.status = failed`` with a one-line reason) and proven by parity
Keras ~ SavedModel through the TF1 session loader. The generated samples must come from what the model
knows: vocabulary words for TextVectorization/StringLookup, vocabulary ids for IntegerLookup, 0..255 for
uint8 images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.errors import SignatureError
from export.parity import PARITY_INPUTS, load_arrays

from . import models as M
from .conftest import assert_published, run_backends, run_export

BEST_EFFORT = ("ok", "failed")  # ONNX of preprocessing graphs: whatever the converter covers today

# builder, expected signature inputs, expected outputs
CASES = {
    "text_flat": (M.text_classifier, {"text": "string"}, ["probs"]),
    "text_column": (M.text_classifier_column, {"text": "string"}, ["probs"]),
    "string_lookup": (M.string_lookup, {"color": "string"}, ["scores"]),
    "integer_lookup_norm": (M.integer_lookup_normalization, {"store_id": "int64", "amount": "float32"}, ["spend"]),
    "uint8_image": (M.uint8_image, {"image": "uint8"}, ["probs"]),
    "mixed_float16": (M.mixed_float16, {"features": "float32"}, ["logits"]),
}


def _words(values: np.ndarray) -> set[str]:
    return {w for v in values.ravel() for w in v.decode().split()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exports_with_samples_from_what_the_model_knows(case: str, tmp_path: Path, models_dir: Path) -> None:
    build, inputs, outputs = CASES[case]
    source = tmp_path / f"{case}.keras"
    M.seeded(build).save(source)
    result, printed = run_export(source, models_dir, case)
    meta = assert_published(models_dir, case, 1, inputs, outputs, onnx_status=BEST_EFFORT)
    assert "Traceback" not in printed and result.report.passed
    if meta["onnx"]["status"] == "failed":
        assert "WARNING: no model.onnx" in printed and meta["onnx"]["reason"] in printed
    sample = load_arrays(result.path / PARITY_INPUTS)
    if case.startswith("text"):
        assert sample["text"].dtype.kind == "S" and sample["text"].shape[1:] == (() if case == "text_flat" else (1,))
        words = _words(sample["text"])
        assert len(words & set(M.WORDS)) >= 8  # sentences of vocabulary words, not noise
    elif case == "string_lookup":
        assert {"red", "green", "blue", "cyan"} <= {v.decode() for v in sample["color"].ravel()}
    elif case == "integer_lookup_norm":
        ids = set(sample["store_id"].ravel().tolist())
        assert {3, 7, 11, 19, 42} & ids and ids <= {3, 7, 11, 19, 42, 43}  # the vocabulary (+1 OOV id)
    elif case == "uint8_image":
        assert sample["image"].dtype == np.uint8 and sample["image"].max() > 200 and sample["image"].min() < 50
    # the served SavedModel answers a batch size never used at export
    fresh = {k: v[:3] for k, v in sample.items()}
    tf_out, ort_out = run_backends(result.path, fresh)
    assert all(tf_out[o].shape[0] == 3 for o in outputs)
    if ort_out is not None:
        for o in outputs:
            np.testing.assert_allclose(ort_out[o], tf_out[o], rtol=1e-4, atol=1e-4)


def test_saved_model_source_with_string_input_honours_sample(tmp_path: Path, models_dir: Path) -> None:
    """A SavedModel dir as MODEL= has no vocabulary to draw from: SAMPLE= is used; without it, a clear error."""
    source = tmp_path / "text.keras"
    M.seeded(M.text_classifier).save(source)
    first, _ = run_export(source, models_dir, "text", skip_onnx=True)
    assert first.metadata["onnx"] == {"status": "skipped", "reason": "SKIP_ONNX=1"}
    with pytest.raises(SignatureError, match="pass SAMPLE=file.npz"):
        run_export(first.path, models_dir, "again")
    assert not (models_dir / "again").exists()  # a failed first export leaves nothing, not even .lock
    sample = tmp_path / "text.npz"
    np.savez(sample, text=np.array(["the cat sat", "a good movie", "bad plot far away"]))
    second, printed = run_export(first.path, models_dir, "text", sample=sample, skip_onnx=True)
    assert second.version == 2 and second.report.samples == 3 and "Traceback" not in printed
    kept = load_arrays(second.path / PARITY_INPUTS)["text"]
    assert kept.tolist() == [b"the cat sat", b"a good movie", b"bad plot far away"]
    assert second.metadata["source"]["kind"] == "saved_model"


def test_string_model_served_over_rest_and_grpc_equals_keras(tmp_path: Path, models_dir: Path) -> None:
    """Raw text in, over both protocols, from the published version: REST instances and gRPC DT_STRING."""
    import json
    import urllib.request

    import keras
    from tensorflow_serving.apis import predict_pb2

    from clients.codecs import ndarray_to_tensor_proto, tensor_proto_to_ndarray
    from tests.conftest import free_port
    from tests.support.server import start_server

    source = tmp_path / "text.keras"
    M.seeded(M.text_classifier).save(source)
    run_export(source, models_dir, "text")
    model = keras.saving.load_model(source)
    texts = ["the cat sat on a mat", "a bad movie plot", "never seen words here"]
    column = model.inputs[0].shape[1:] == (1,)
    x = np.array([[t] for t in texts] if column else texts)
    want = keras.ops.convert_to_numpy(model(x))

    grpc_port, rest_port = free_port(), free_port()
    args = [f"--port={grpc_port}", f"--rest_api_port={rest_port}", "--model_name=text",
            f"--model_base_path={models_dir / 'text'}"]
    with start_server(args, ready_timeout=120) as server:
        server.wait_until(lambda: _available(f"{server.rest_url}/v1/models/text"), 120, "model available")
        body = json.dumps({"instances": x.tolist()}).encode()
        request = urllib.request.Request(f"{server.rest_url}/v1/models/text:predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            rest = np.asarray(json.load(resp)["predictions"], dtype=np.float32)
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "text"
        ndarray_to_tensor_proto(np.char.encode(x, "utf-8"), req.inputs["text"])
        assert req.inputs["text"].dtype == 7  # DT_STRING
        reply = server.prediction_stub().Predict(req, timeout=30)
        grpc_out = tensor_proto_to_ndarray(reply.outputs["probs"])
    np.testing.assert_allclose(rest, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grpc_out, want, rtol=1e-5, atol=1e-6)


def _available(url: str) -> bool:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return "AVAILABLE" in [v["state"] for v in json.load(resp)["model_version_status"]]
    except OSError:
        return False
