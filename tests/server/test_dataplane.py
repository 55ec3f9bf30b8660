"""DataPlane in-process: resolution, validation messages and error mapping (no server process)."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

from serving import errors
from serving.dataplane import DataPlane
from serving.types import ExamplesRequest, ModelSpec, PredictRequest, StatusRequest

from .test_manager import config_for, make_versions, manager


@pytest.fixture
def dataplane(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, registry = manager()
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }"), first=True)
    mgr.reload_config(config_for(tmp_path, "model_version_policy { all {} }", {"stable": 1}))
    dp = DataPlane(registry, mgr)
    dp.set_ready()
    yield dp
    mgr.stop()


def test_resolve_latest_label_and_signature(dataplane):
    resolved, signature = dataplane.resolve(ModelSpec("m"))
    assert (resolved.name, resolved.version, resolved.signature_name) == ("m", 2, "serving_default")
    assert signature.method_name == "tensorflow/serving/predict"
    assert dataplane.resolve(ModelSpec("m", label="stable"))[0].version == 1
    with pytest.raises(errors.InvalidArgument, match='Serving signature name: "nope" not found in signature def'):
        dataplane.resolve(ModelSpec("m", signature_name="nope"))


def test_predict_validates_and_echoes_resolved_spec(dataplane):
    response = dataplane.predict(PredictRequest(ModelSpec("m", version=1), {}))
    assert response.model.version == 1 and int(response.outputs["version"]) == 1
    with pytest.raises(errors.InvalidArgument, match=r"input size does not match signature: 1!=0 .*Sent extra: \{x\}"):
        dataplane.predict(PredictRequest(ModelSpec("m"), {"x": np.zeros(1, np.float32)}))
    with pytest.raises(errors.FailedPrecondition, match='Serving signature key "nope" not found.'):
        dataplane.predict(PredictRequest(ModelSpec("m", signature_name="nope"), {}))


def test_classify_needs_a_single_input_signature(dataplane):
    with pytest.raises(errors.InvalidArgument, match="Expected one input Tensor"):
        dataplane.classify(ExamplesRequest(ModelSpec("m"), (b"",)))


def test_status_readiness_and_metrics(dataplane):
    with dataplane.request_scope("GRPC", "Predict", "m"):
        dataplane.predict(PredictRequest(ModelSpec("m"), {}))
    with pytest.raises(errors.NotFound), dataplane.request_scope("GRPC", "Predict", "m"):
        dataplane.predict(PredictRequest(ModelSpec("m", version=9), {}))
    dataplane.predict(PredictRequest(ModelSpec("m"), {}))  # no adapter scope: request metrics are the adapter's
    assert dataplane.metrics.request_count("m", "OK") == 1
    assert dataplane.metrics.request_count("m", "NOT_FOUND") == 1
    assert [s.version for s in dataplane.status(StatusRequest(ModelSpec("m"))).versions] == [2, 1]
    # TF Serving's GetModelStatus never resolves a label: every version, known label or not.
    for label in ("stable", "no_such_label"):
        assert [s.version for s in dataplane.status(StatusRequest(ModelSpec("m", label=label))).versions] == [2, 1]
    assert dataplane.ready()
    dataplane.begin_shutdown()
    assert not dataplane.ready()
    with pytest.raises(errors.Unavailable):
        dataplane.predict(PredictRequest(ModelSpec("m"), {}))


@pytest.mark.parametrize("cls", [c for c in vars(errors).values()
                                 if isinstance(c, type) and issubclass(c, errors.ServingError)
                                 and c is not errors.ServingError])
def test_every_error_maps_to_a_specific_grpc_and_http_code(cls):
    error = cls("x")
    assert error.grpc_code.value[0] == int(error.code)
    assert isinstance(error.grpc_code, grpc.StatusCode)
    if cls is not errors.Unknown:
        assert error.grpc_code is not grpc.StatusCode.UNKNOWN
    assert error.http_status in (400, 404, 429, 500, 501, 503, 504)
