"""TF Serving's own REST assertions (tensorflow_model_server_test.py) against ``python -m serving``.

One server process for the module, serving TF Serving's fixtures the way its test suite does: the TF1
half_plus_two as ``default`` (its metadata fixture names it so), half_plus_three, the two-version model with
``stable``/``canary`` labels, the TF2 half_plus_two, ``--rest_api_timeout_in_ms=5000`` and the Prometheus
endpoint of ``monitoring_config.txt``.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.messages import Example
from tests.conftest import free_port
from tests.rest.conftest import RestClient, write_model_config
from tests.support.server import ServerProcess, start_server

pytestmark = pytest.mark.xdist_group("rest_tfserving")
TWO = "saved_model_half_plus_two_2_versions"


@pytest.fixture(scope="module")
def server(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = write_model_config(tmp_path_factory.mktemp("rest") / "models.config", [
        {"name": "default", "base_path": testdata / "saved_model_half_plus_two_cpu"},
        {"name": "half_plus_three", "base_path": testdata / "saved_model_half_plus_three"},
        {"name": TWO, "base_path": testdata / TWO, "policy": "all", "labels": {"stable": 123, "canary": 124}},
        {"name": "half_plus_two_tf2", "base_path": testdata / "saved_model_half_plus_two_tf2_cpu"},
    ])
    args = ["--port", str(free_port()), "--rest_api_port", str(free_port()), "--model_config_file", str(config),
            "--rest_api_timeout_in_ms=5000", "--monitoring_config_file", str(testdata / "monitoring_config.txt"),
            "--allow_version_labels_for_unavailable_models"]  # as in TF Serving, labels in the first config need it
    with start_server(args, ready_timeout=180) as proc:  # generous: TF imports are slow on a loaded CI box
        yield proc


@pytest.fixture(scope="module")
def rest(server: ServerProcess) -> Iterator[RestClient]:
    client = RestClient(server.rest_url)
    yield client
    client.close()


def _example(x: float) -> bytes:
    example = Example()
    example.features.feature["x"].float_list.value.append(x)
    return example.SerializeToString()


# ---------------------------------------------------------------- predict (testPredictREST, testPredictColumnarREST)
def test_predict_row_format(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]})
    assert (reply.status, reply.json()) == (200, {"predictions": [3.0, 3.5, 4.0]})
    assert reply.headers["Content-Type"] == "application/json"


def test_predict_columnar_format(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]})
    assert (reply.status, reply.json()) == (200, {"outputs": [3.0, 3.5, 4.0]})


def test_predict_batched_rows_match_the_signature_shape(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", {"instances": [[1.0], [2.0], [5.0]]})
    assert reply.json() == {"predictions": [[2.5], [3.0], [4.5]]}
    reply = rest.post("/v1/models/default:predict", {"signature_name": "serving_default", "inputs": {"x": [[1.0]]}})
    assert reply.json() == {"outputs": [[2.5]]}


def test_predict_nan_and_infinity_in_and_out(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", b'{"instances": [[NaN], [Infinity], [-Infinity]]}')
    assert reply.status == 200, reply.body
    assert b"NaN" in reply.body and b"-Infinity" in reply.body
    out = [row[0] for row in reply.json()["predictions"]]
    assert math.isnan(out[0]) and out[1] == math.inf and out[2] == -math.inf


@pytest.mark.parametrize("body,expected", [
    # issue 12 item 4: 0.5 * 0.2f + 2 is the float32 2.0999999046...; TF Serving writes "2.1", not its double.
    (b'{"instances":[0.2]}', b'{"predictions":[2.1]}'),
    (b'{"instances":[[0.2],[0.3],[0.7],[1.0]]}', b'{"predictions":[[2.1],[2.15],[2.35],[2.5]]}'),
    (b'{"inputs":[[0.2],[0.3]]}', b'{"outputs":[[2.1],[2.15]]}'),
    (b'{"inputs":{"x":[[0.2]]}}', b'{"outputs":[[2.1]]}'),
    # %g does not read back to the same float32: TF Serving falls back to %.9g (not the shortest text 2.0617282).
    (b'{"instances":[0.1234567]}', b'{"predictions":[2.06172824]}'),
    (b'{"instances":[[NaN],[Infinity],[-Infinity],[0.2]]}', b'{"predictions":[[NaN],[Infinity],[-Infinity],[2.1]]}'),
    (b'{"inputs":[NaN, 0.2]}', b'{"outputs":[NaN,2.1]}'),
])
def test_predict_writes_float32_as_tf_serving(rest: RestClient, body: bytes, expected: bytes) -> None:
    """json_tensor.cc WriteDecimal<float>: %g when it reads back to the same float32, else %.9g; NaN/Infinity."""
    reply = rest.post("/v1/models/default:predict", body)
    assert (reply.status, reply.body) == (200, expected)


def test_predict_b64_string_input(rest: RestClient) -> None:
    # A tf.Example string input sent as {"b64": ...} through :predict on the classify signature.
    instances = [{"b64": base64.b64encode(_example(2.0)).decode()}, {"b64": base64.b64encode(_example(4.0)).decode()}]
    reply = rest.post("/v1/models/default:predict", {"signature_name": "classify_x_to_y", "instances": instances})
    assert (reply.status, reply.json()) == (200, {"predictions": [[3.0], [4.0]]}), reply.body


def test_predict_gzip_request_body(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", {"instances": [[2.0]]}, gzipped=True)
    assert (reply.status, reply.json()) == (200, {"predictions": [[3.0]]})


def test_second_model_from_the_config(rest: RestClient) -> None:
    reply = rest.post("/v1/models/half_plus_three:predict", {"instances": [[1.0], [2.0]]})
    assert reply.json() == {"predictions": [[3.5], [4.0]]}


def test_tf2_model_predict(rest: RestClient) -> None:
    reply = rest.post("/v1/models/half_plus_two_tf2:predict", {"instances": [2.0]})
    assert (reply.status, reply.json()) == (200, {"predictions": [3.0]}), reply.body


# ---------------------------------------------------------------- classify / regress (testClassifyREST, testRegressREST)
def test_classify(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]})
    assert (reply.status, reply.json()) == (200, {"results": [[["", 3.0]]]}), reply.body


def test_regress(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]})
    assert (reply.status, reply.json()) == (200, {"results": [3.0]}), reply.body


def test_regress_example_of_api_rest_md(rest: RestClient) -> None:
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    reply = rest.post("/v1/models/half_plus_three:regress", body)
    assert (reply.status, reply.json()) == (200, {"results": [3.5, 4.0]}), reply.body


def test_regress_with_context_prints_float32_short(rest: RestClient) -> None:
    body = {"signature_name": "tensorflow/serving/regress", "context": {"unused": "a"}, "examples": [{"x": 0.1}]}
    reply = rest.post("/v1/models/half_plus_three:regress", body)
    assert reply.body.replace(b" ", b"").replace(b"\n", b"") == b'{"results":[3.05]}'  # not 3.049999952316284


# ---------------------------------------------------------------- status and metadata (testGetStatusREST, ...MetadataREST)
def test_status(rest: RestClient) -> None:
    reply = rest.get("/v1/models/default")
    assert reply.status == 200
    assert reply.json() == {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_status_by_version_and_label(rest: RestClient) -> None:
    both = rest.get(f"/v1/models/{TWO}").json()["model_version_status"]
    assert sorted(s["version"] for s in both) == ["123", "124"]
    assert [s["version"] for s in rest.get(f"/v1/models/{TWO}/versions/124").json()["model_version_status"]] \
        == ["124"]
    # get_model_status_impl.cc reads only a version number: a label (known or not) answers every version.
    for label in ("stable", "canary", "no_such_label"):
        reply = rest.get(f"/v1/models/{TWO}/labels/{label}")
        assert reply.status == 200, label
        assert reply.json()["model_version_status"] == rest.get(f"/v1/models/{TWO}").json()["model_version_status"]


def test_metadata_equals_tf_serving_fixture(rest: RestClient, testdata: Path) -> None:
    reply = rest.get("/v1/models/default/metadata")
    assert reply.status == 200
    assert reply.json() == json.loads((testdata / "half_plus_two_model_metadata.json").read_text())


def test_metadata_two_versions_fixture_by_version_and_label(rest: RestClient, testdata: Path) -> None:
    expected = json.loads((testdata / f"{TWO}_metadata.json").read_text())
    assert rest.get(f"/v1/models/{TWO}/versions/123/metadata").json() == expected
    assert rest.get(f"/v1/models/{TWO}/labels/stable/metadata").json() == expected
    canary = rest.get(f"/v1/models/{TWO}/labels/canary/metadata").json()
    assert canary["model_spec"]["version"] == "124"
    assert canary["metadata"] == expected["metadata"]


def _without_defaults(tree: object) -> object:
    if isinstance(tree, dict):
        return {k: _without_defaults(v) for k, v in tree.items() if k != "defaults"}
    return tree


def test_metadata_tf2_fixture(rest: RestClient, testdata: Path) -> None:
    # The recorded fixture predates SignatureDef.defaults (it even prints "defaults" for one signature and not
    # for another), while the saved_model.pb we serve carries defaults; everything else must be equal.
    expected = json.loads((testdata / "saved_model_half_plus_two_tf2_2_versions_metadata.json").read_text())
    got = rest.get("/v1/models/half_plus_two_tf2/metadata").json()
    assert got["model_spec"] == {"name": "half_plus_two_tf2", "signature_name": "", "version": "123"}
    assert _without_defaults(got["metadata"]) == _without_defaults(expected["metadata"])


# ---------------------------------------------------------------- errors
def test_unknown_model_is_404_with_tf_serving_message(rest: RestClient) -> None:
    reply = rest.post("/v1/models/half:predict", {"instances": [1.0, 5.0]})
    assert (reply.status, reply.json()) == (404, {"error": "Servable not found for request: Latest(half)"})
    assert reply.headers["Content-Type"] == "application/json"
    assert rest.get("/v1/models/half").status == 404


def test_unknown_version_is_404(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default/versions/7:predict", {"instances": [[1.0]]})
    assert reply.status == 404
    assert reply.json() == {"error": "Servable not found for request: Specific(default, 7)"}


def test_bad_json_is_400_with_parse_error(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", b'{"instances": [1.0,')
    assert reply.status == 400
    assert reply.json()["error"].startswith("JSON Parse error")
    reply = rest.post("/v1/models/default:predict", b"")
    assert reply.json() == {"error": "JSON Parse error: The document is empty"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
        ({"instances": []}, "JSON Value: {\"instances\":[]} No values in 'instances' array"),
        ([1, 2], "JSON Value: [1,2] Is not object"),
        ({"signature_name": 5, "instances": [1.0]},
         "JSON Value: {\"signature_name\":5,\"instances\":[1.0]} not formatted correctly. "
         "'signature_name' key must be a string value."),
    ],
)
def test_malformed_predict_bodies_get_tf_serving_messages(rest: RestClient, body: object, error: str) -> None:
    reply = rest.post("/v1/models/default:predict", body)
    assert (reply.status, reply.json()) == (400, {"error": error})


def test_wrong_dtype_is_400(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", {"instances": [["a"]]})
    assert reply.status == 400
    assert "is not of expected type: DT_FLOAT" in reply.json()["error"]


def test_unknown_signature_is_400(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", {"signature_name": "nope", "instances": [[1.0]]})
    assert reply.status == 400
    assert "nope" in reply.json()["error"]


def test_classify_without_examples_is_400(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:classify", {"signature_name": "classify_x_to_y"})
    assert reply.status == 400
    assert "'examples' is expected and was not found" in reply.json()["error"]


def test_wrong_method_is_tf_serving_malformed_request(rest: RestClient) -> None:
    for method, path in [("GET", "/v1/models/default:predict"), ("PUT", "/v1/models/default"),
                         ("POST", "/v1/models/default/metadata")]:
        reply = rest.request(method, path)
        assert (reply.status, reply.json()) == (400, {"error": f"Malformed request: {method} {path}"})


def test_non_numeric_or_huge_version(rest: RestClient) -> None:
    assert rest.get("/v1/models/default/versions/abc").json() == {
        "error": "Malformed request: GET /v1/models/default/versions/abc"}
    reply = rest.get("/v1/models/default/versions/99999999999999999999")
    assert (reply.status, reply.json()) == (400, {"error": "Failed to convert version: 99999999999999999999 to numeric."})


def test_paths_outside_v1_are_bare_404(rest: RestClient) -> None:
    reply = rest.get("/v2/models/default")
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "text/html"
    assert b"<TITLE>404 Not Found</TITLE>" in reply.body


def test_garbage_gzip_is_400(rest: RestClient) -> None:
    reply = rest.post("/v1/models/default:predict", b"definitely not gzip", headers={"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert "gzip" in reply.json()["error"]


# ---------------------------------------------------------------- monitoring (testPrometheusEndpoint)
def test_prometheus_endpoint(rest: RestClient) -> None:
    rest.post("/v1/models/default:predict", {"instances": [[1.0]]})
    reply = rest.get("/monitoring/prometheus/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain"
    assert "# TYPE" in reply.body.decode()
    assert ':tensorflow:serving:request_count{model_name="default",status="OK"}' in reply.body.decode()
    wrong = rest.get("/monitoring/prometheus/metrics?x=1")
    assert wrong.status == 400
    assert wrong.body == (b"Unexpected path: /monitoring/prometheus/metrics?x=1. "
                          b"Should be /monitoring/prometheus/metrics")
