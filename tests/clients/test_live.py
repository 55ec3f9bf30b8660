"""Both clients against the local server: TF Serving's half_plus_two fixtures (y = 0.5x + 2), versions and
labels, classify/regress, metadata/status, errors with the server's messages, and every dtype."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from clients import GrpcClient, RestClient, errors
from tests.clients.conftest import LIVE_GROUP
from tests.clients.models import DTYPES, REST_DTYPES

pytestmark = pytest.mark.xdist_group(LIVE_GROUP)


@pytest.fixture(scope="module")
def grpc_client(live):
    with GrpcClient(live.grpc_target, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def rest_client(live):
    with RestClient(live.rest_target, timeout=30) as client:
        yield client


@pytest.fixture(params=["grpc", "rest"])
def client(request, grpc_client, rest_client):
    return grpc_client if request.param == "grpc" else rest_client


X = np.array([[1.0], [2.0], [5.0]], np.float32)


def test_predict_half_plus_two(client):
    for inputs in (X, {"x": X}):
        out = client.predict(inputs, model="half_plus_two")
        assert list(out) == ["y"]
        assert out["y"].dtype == np.float32 and out["y"].tolist() == [[2.5], [3.0], [4.5]]


@pytest.mark.parametrize("pick,version", [({}, 124), ({"version": 123}, 123), ({"label": "stable"}, 123),
                                          ({"label": "canary"}, 124)])
def test_versions_and_labels(client, pick, version):
    meta = client.metadata(model="hp2_versions", **pick)
    assert meta.version == version
    # classify_x2_to_y3 exists in version 124 only
    assert client.predict(X, model="hp2_versions", **pick)["y"].tolist() == [[2.5], [3.0], [4.5]]


def test_status_lists_every_version(client):
    statuses = client.status(model="hp2_versions")
    assert [(s.version, s.state, s.error_code) for s in statuses] == [(124, "AVAILABLE", "OK"),
                                                                      (123, "AVAILABLE", "OK")]
    assert [s.version for s in client.status(model="hp2_versions", version=123)] == [123]


def test_metadata_and_status_agree_across_protocols(grpc_client, rest_client):
    for model in ("half_plus_two", "hp2_versions", "dtypes"):
        assert grpc_client.metadata(model=model) == rest_client.metadata(model=model)
        assert grpc_client.status(model=model) == rest_client.status(model=model)
    sig = grpc_client.metadata(model="half_plus_two").signatures["serving_default"]
    assert sig.inputs["x"].dtype == "DT_FLOAT" and sig.inputs["x"].shape == (-1, 1)


def test_classify_and_regress(client):
    result = client.classify([{"x": 2.0}, {"x": 4.0}], model="half_plus_two", signature_name="classify_x_to_y")
    assert result.scores.dtype == np.float32 and result.scores.tolist() == [[3.0], [4.0]]
    assert result.classes.shape == (2, 1)
    values = client.regress([{"x": 2.0}], model="half_plus_two", signature_name="regress_x_to_y")
    assert values.dtype == np.float32 and values.tolist() == [3.0]
    with_context = client.regress([{}, {}], context={"x": 6.0}, model="half_plus_two",
                                  signature_name="regress_x_to_y")
    assert with_context.tolist() == [5.0, 5.0]


def test_unknown_model_version_label_and_signature(client):
    with pytest.raises(errors.ModelNotFoundError, match="Servable not found for request: Latest\\(nope\\)"):
        client.predict(X, model="nope")
    with pytest.raises(errors.ModelNotFoundError, match="Specific\\(half_plus_two, 99\\)"):
        client.predict({"x": X}, model="half_plus_two", version=99)
    with pytest.raises(errors.ServingClientError, match="nolabel"):
        client.predict({"x": X}, model="hp2_versions", label="nolabel")
    with pytest.raises(errors.InvalidInputError, match="zz"):
        client.predict({"x": X}, model="half_plus_two", signature_name="zz")


def test_wrong_input_is_invalid_input_with_the_servers_message(client, live):
    """The client's own check (tests/clients/test_validation.py) answers first; without it, the server's."""
    with pytest.raises(errors.InvalidInputError) as info:
        client.predict({"x": np.array([[True]])}, model="half_plus_two")
    assert info.value.http_status == 400 and "input 'x' expects DT_FLOAT" in info.value.message
    unchecked = (GrpcClient(live.grpc_target, validate=False) if client.protocol == "grpc"
                 else RestClient(live.rest_target, validate=False))
    with unchecked, pytest.raises(errors.InvalidInputError) as info:
        unchecked.predict({"x": np.array([[True]])}, model="half_plus_two")
    assert info.value.http_status == 400 and info.value.message and "input 'x' expects" not in info.value.message


def test_multi_input_dict_output_and_output_filter(grpc_client, rest_client):
    inputs = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([10, -20], np.int64),
              "s": np.array([b"ab", "é".encode()], dtype=object)}
    by_grpc = grpc_client.predict(inputs, model="dtypes", signature_name="multi")
    by_rest = rest_client.predict(inputs, model="dtypes", signature_name="multi")
    assert sorted(by_grpc) == sorted(by_rest) == ["raw_bytes", "total", "twice_b", "upper"]
    for name in by_grpc:
        assert by_grpc[name].dtype == by_rest[name].dtype and by_grpc[name].tolist() == by_rest[name].tolist()
    assert by_grpc["total"].tolist() == [[10, 11, 12], [-17, -16, -15]]
    assert by_grpc["twice_b"].dtype == np.int64 and by_grpc["upper"].tolist() == [b"AB", "é".encode()]
    assert by_rest["raw_bytes"].tolist() == [b"ab\xff", "é".encode() + b"\xff"]  # _bytes outputs travel as b64
    for client in (grpc_client, rest_client):
        only = client.predict(inputs, model="dtypes", signature_name="multi", output_filter=["twice_b"])
        assert list(only) == ["twice_b"] and only["twice_b"].tolist() == [20, -40]


def test_rest_gzip_and_row_format(live):
    x = np.linspace(-1, 1, 2000, dtype=np.float32).reshape(-1, 1)
    for kwargs in ({"gzip": True}, {"fmt": "row"}):
        with RestClient(live.rest_target, **kwargs) as client:
            assert np.array_equal(client.predict(x, model="half_plus_two")["y"], x * 0.5 + 2)


def test_reload_config_same_config_keeps_serving(grpc_client, live):
    grpc_client.reload_config(live.config_text, timeout=60)
    assert grpc_client.predict(X, model="half_plus_two")["y"].tolist() == [[2.5], [3.0], [4.5]]
    with pytest.raises(ValueError, match="invalid ModelServerConfig"):
        grpc_client.reload_config("model_config_list { nonsense: 1 }")


def _values(key: str) -> np.ndarray:
    if key == "string":
        return np.array([[b"a", b""], ["é".encode(), b"xyz"]], dtype=object)
    if key == "bfloat16":
        return np.array([[1.5, -2.0], [np.inf, 0.0]], dtype=ml_dtypes.bfloat16)
    dtype = np.dtype(key)
    if dtype.kind == "b":
        return np.array([[True, False], [False, True]])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.array([[info.min, info.max], [0, 1]], dtype=dtype)
    if dtype.kind == "c":
        return np.array([[1 + 2j, -3.5j], [0, 1e30]], dtype=dtype)
    return np.array([[np.finfo(dtype).max, -0.0], [np.inf, 1 / 3]], dtype=dtype)


def _check_identity(client, key: str, x: np.ndarray) -> None:
    x = np.asarray(x)
    y = client.predict(x, model="dtypes", signature_name=key)["y"]
    assert y.shape == x.shape, key
    if key == "string":
        assert y.dtype == object and y.tolist() == x.tolist()
    else:  # same dtype (native byte order) and the same bits
        native = x.astype(x.dtype.newbyteorder("="))
        assert y.dtype == native.dtype and y.tobytes() == native.tobytes(), key


@pytest.mark.parametrize("key", sorted(DTYPES))
def test_every_dtype_round_trips_over_grpc(grpc_client, key):
    x = _values(key)
    _check_identity(grpc_client, key, x)
    if key != "string":
        _check_identity(grpc_client, key, x[0, 0])  # a scalar
        _check_identity(grpc_client, key, x[:0])  # an empty tensor
        if x.dtype.itemsize > 1 and key != "bfloat16":
            _check_identity(grpc_client, key, x.astype(x.dtype.newbyteorder(">")))  # big-endian input


@pytest.mark.parametrize("key", REST_DTYPES)
def test_json_dtypes_round_trip_over_rest(rest_client, key):
    x = _values(key)
    if key.startswith("float"):
        x = x[:, :1] if key == "float32" else x  # keep JSON-exact values
    _check_identity(rest_client, key, x)
    _check_identity(rest_client, key, x[0, 0])  # a scalar


@pytest.mark.parametrize("key", ["float16", "bfloat16", "complex64"])
def test_non_json_dtypes_over_rest_fail_clearly(rest_client, key):
    with pytest.raises((errors.InvalidInputError, ValueError), match="(?i)not supported|cannot carry"):
        rest_client.predict(_values(key), model="dtypes", signature_name=key)


def test_max_message_size_is_enforced_and_configurable(live):
    x = np.zeros((5000, 1), np.float32)  # 20 KB of tensor_content
    with GrpcClient(live.grpc_target, max_message_bytes=4096) as small:
        with pytest.raises(errors.ResourceExhaustedError):
            small.predict({"x": x}, model="half_plus_two")
    with GrpcClient(live.grpc_target, max_message_bytes=1 << 20) as big:
        assert big.predict({"x": x}, model="half_plus_two")["y"].shape == (5000, 1)
