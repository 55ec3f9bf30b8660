"""The model zoo: models users bring to TF Serving, each exported by the real exporter and served for real.

For every model: ``export_model`` publishes version 1 (files, metadata, warmup, parity: ``assert_published``);
the ONNX state is the one stated per case (``ok`` where the converter must cover the graph); then one live
``python -m serving`` answers REST and gRPC predicts on the published version, through the TensorFlow backend and,
where ``model.onnx`` exists, the ONNX Runtime backend, and both protocols agree with Keras on the same rows.

All cases carry the ``zoo`` marker (``make test-zoo``) except the FAST subset, which runs in ``make test``.
One server serves the whole session: each case adds its models to the server's ``models.config`` and waits
until the server has loaded them (config polling), so the suite pays one server start, not one per model.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from export.parity import PARITY_INPUTS, load_arrays

from . import models as M
from . import zoo_models as Z
from .conftest import assert_published, run_export

pytestmark = pytest.mark.xdist_group("zoo")

ROWS = 3  # rows of the parity sample sent to the live server


@dataclass(frozen=True)
class Case:
    build: Callable
    inputs: dict[str, str]
    outputs: list[str]
    onnx: str | tuple[str, ...] = "ok"
    fast: bool = False
    atol: float = 1e-5
    rtol: float = 1e-4
    export: dict = field(default_factory=dict)  # extra export_model options


APP = {"image": "float32"}
CASES: dict[str, Case] = {
    # keras.applications families (weights=None, small inputs)
    "mobilenet_v2": Case(Z.mobilenet_v2, APP, ["probs"]),
    "mobilenet_v3_small": Case(Z.mobilenet_v3_small, APP, ["probs"]),
    "efficientnet_b0": Case(Z.efficientnet_b0, APP, ["probs"]),
    "densenet121": Case(Z.densenet121, APP, ["probs"]),
    "convnext_tiny": Case(Z.convnext_tiny, APP, ["probs"]),
    "resnet50": Case(Z.resnet50, APP, ["probs"]),
    # Keras 3 idioms the converter must cover
    "gelu_transformer": Case(Z.gelu_transformer, {"tokens": "int32"}, ["logits"]),
    "argmax_dict": Case(Z.argmax_dict, {"features": "float32"}, ["label", "probs"], fast=True),
    # preprocessing layers, strings, dtypes
    "text_flat": Case(M.text_classifier, {"text": "string"}, ["probs"], fast=True),
    "text_column": Case(M.text_classifier_column, {"text": "string"}, ["probs"]),
    "string_lookup": Case(M.string_lookup, {"color": "string"}, ["scores"]),
    "integer_lookup_norm": Case(M.integer_lookup_normalization, {"store_id": "int64", "amount": "float32"},
                                ["spend"], fast=True),
    "uint8_image": Case(M.uint8_image, {"image": "uint8"}, ["probs"]),
    # float16 compute: ONNX Runtime's fp16 kernels round differently from TensorFlow's (~1e-3), so the export
    # states the tolerance a user of mixed precision passes (RTOL=/ATOL=)
    "mixed_float16": Case(M.mixed_float16, {"features": "float32"}, ["logits"], atol=2e-3, rtol=1e-2,
                          export={"atol": 2e-3, "rtol": 1e-2}),
}


def _params() -> list:
    return [pytest.param(name, marks=() if case.fast else pytest.mark.zoo, id=name)
            for name, case in CASES.items()]


class ZooServer:
    """One ``python -m serving`` whose ``models.config`` grows as cases publish their models."""

    def __init__(self, root: Path) -> None:
        self.models_dir = root / "models"
        self.models_dir.mkdir(parents=True)
        self.config = root / "models.config"
        self.entries: list[tuple[str, Path, str]] = []
        self._write()
        self.server = None

    def _write(self) -> None:
        body = "".join(
            f'  config {{ name: "{name}" base_path: "{path}" model_platform: "{platform}" }}\n'
            for name, path, platform in self.entries)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text("model_config_list {\n" + body + "}\n")
        tmp.replace(self.config)

    def add(self, name: str, platform: str) -> str:
        served = name if platform == "tensorflow" else f"{name}-onnx"
        self.entries.append((served, self.models_dir / name, platform))
        self._write()
        self.server.wait_until(lambda: _available(f"{self.server.rest_url}/v1/models/{served}"), 180,
                               f"{served} available")
        return served


@pytest.fixture(scope="session")
def zoo_server(tmp_path_factory) -> Iterator[ZooServer]:
    from tests.conftest import free_port
    from tests.support.server import start_server

    zoo = ZooServer(tmp_path_factory.mktemp("zoo"))
    args = [f"--port={free_port()}", f"--rest_api_port={free_port()}", f"--model_config_file={zoo.config}",
            "--model_config_file_poll_wait_seconds=1", "--file_system_poll_wait_seconds=1"]
    with start_server(args, ready_timeout=180) as server:
        zoo.server = server
        yield zoo


def _available(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return "AVAILABLE" in [v["state"] for v in json.load(resp)["model_version_status"]]
    except (OSError, ValueError, KeyError):
        return False


def _keras_outputs(model, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """Keras' answer on the same rows, keyed like the signature (strings fed as str, as Keras takes them)."""
    import keras

    feed = {k: (v.astype(str) if v.dtype.kind == "S" else v) for k, v in inputs.items()}
    got = model(feed if len(feed) > 1 else next(iter(feed.values())))
    if not isinstance(got, dict):
        got = {outputs[0]: got}
    return {k: keras.ops.convert_to_numpy(got[k]) for k in outputs}


def _rest_predict(server, name: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """Row format, as TF Serving clients send it: plain values for one input, one object per row for several."""
    def plain(v: np.ndarray):
        return np.char.decode(v, "utf-8").tolist() if v.dtype.kind == "S" else v.tolist()
    if len(inputs) == 1:
        instances = plain(next(iter(inputs.values())))
    else:
        cols = {k: plain(v) for k, v in inputs.items()}
        instances = [{k: cols[k][i] for k in cols} for i in range(len(next(iter(cols.values()))))]
    body = json.dumps({"instances": instances}).encode()
    request = urllib.request.Request(f"{server.rest_url}/v1/models/{name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        predictions = json.load(resp)["predictions"]
    if len(outputs) == 1:
        return {outputs[0]: np.asarray(predictions)}
    return {o: np.asarray([row[o] for row in predictions]) for o in outputs}


def _grpc_predict(server, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from tensorflow_serving.apis import predict_pb2

    from clients.codecs import ndarray_to_tensor_proto, tensor_proto_to_ndarray

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in inputs.items():
        ndarray_to_tensor_proto(value, request.inputs[key])
    reply = server.prediction_stub().Predict(request, timeout=60)
    return {k: tensor_proto_to_ndarray(v) for k, v in reply.outputs.items()}


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], case: Case, where: str) -> None:
    assert set(got) == set(want), where
    for key, expected in want.items():
        actual = np.asarray(got[key])
        assert actual.shape == expected.shape, (where, key, actual.shape, expected.shape)
        if expected.dtype.kind in "iub":
            np.testing.assert_array_equal(actual, expected, err_msg=f"{where} {key}")
        else:
            np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=case.rtol,
                                       atol=case.atol, err_msg=f"{where} {key}")


@pytest.mark.parametrize("name", _params())
def test_zoo_model_exports_and_serves_like_keras(name: str, tmp_path: Path, zoo_server: ZooServer) -> None:
    import keras

    case = CASES[name]
    source = tmp_path / f"{name}.keras"
    case.build().save(source)
    started = time.monotonic()
    result, printed = run_export(source, zoo_server.models_dir, name, **case.export)
    took = time.monotonic() - started
    meta = assert_published(zoo_server.models_dir, name, 1, case.inputs, case.outputs, onnx_status=case.onnx)
    assert "Traceback" not in printed and "ERROR:tf2onnx" not in printed, printed
    assert result.report.passed, printed
    if meta["onnx"]["status"] == "failed":  # the one-line reason names what the converter did not cover
        assert meta["onnx"]["reason"] in printed
    print(f"{name}: exported in {took:.1f}s, onnx {meta['onnx']['status']}")

    sample = {k: v[:ROWS] for k, v in load_arrays(result.path / PARITY_INPUTS).items()}
    want = _keras_outputs(keras.saving.load_model(source), sample, case.outputs)
    platforms = ["tensorflow"] + (["onnxruntime"] if meta["onnx"]["status"] == "ok" else [])
    for platform in platforms:
        served = zoo_server.add(name, platform)
        _assert_close(_rest_predict(zoo_server.server, served, sample, case.outputs), want, case, f"REST {served}")
        _assert_close(_grpc_predict(zoo_server.server, served, sample), want, case, f"gRPC {served}")


def test_zoo_covers_the_issue() -> None:
    """At least 14 models; five application families; the four the converter must cover are required ok."""
    assert len(CASES) >= 14
    apps = [n for n, c in CASES.items() if c.inputs == APP]
    assert len(apps) >= 5
    for must in ("convnext_tiny", "gelu_transformer", "argmax_dict", "integer_lookup_norm"):
        assert CASES[must].onnx == "ok"
    assert 3 <= sum(c.fast for c in CASES.values()) <= 4
