"""Inputs are checked against the served signature before sending: a wrong name, dtype or shape gets one
``InvalidInputError`` naming the input and what it expects (library and CLI, both protocols, real server);
numbers that fit are cast, and what TF Serving itself accepts still goes through."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clients import GrpcClient, InvalidInputError, RestClient, cli
from tests.clients.conftest import LIVE_GROUP

pytestmark = pytest.mark.xdist_group(LIVE_GROUP)


@pytest.fixture(params=["grpc", "rest"])
def client(request, live):
    cls, target = (GrpcClient, live.grpc_target) if request.param == "grpc" else (RestClient, live.rest_target)
    with cls(target) as c:
        yield c


def test_strings_for_a_float_input(client):
    with pytest.raises(InvalidInputError) as err:
        client.predict({"x": np.array([["a"], ["b"]])}, model="half_plus_two")
    msg = err.value.message
    assert "input 'x' expects DT_FLOAT with shape [-1, 1]" in msg and "strings ('a', 'b')" in msg, msg


def test_wrong_fixed_dimension_names_the_expected_shape(client):
    with pytest.raises(InvalidInputError) as err:
        client.predict({"a": np.ones((2, 4), np.float32), "b": np.array([1, 2]), "s": np.array([b"p", b"q"])},
                       model="dtypes", signature_name="multi")
    assert err.value.message == ("input 'a' expects DT_FLOAT with shape [-1, 3] (-1: any size); "
                                 "got float32 with shape [2, 4]")


def test_wrong_rank(client):
    with pytest.raises(InvalidInputError, match=r"input 'b' expects DT_INT64 with shape \[-1\] .*shape \[2, 2\]"):
        client.predict({"a": np.ones((2, 3), np.float32), "b": np.ones((2, 2), np.int64), "s": np.array([b"p", b"q"])},
                       model="dtypes")


def test_unknown_and_missing_inputs_list_the_signature(client):
    with pytest.raises(InvalidInputError, match=r"has no input 'z'; its inputs are \{a: DT_FLOAT \[-1, 3\], "
                                                r"b: DT_INT64 \[-1\], s: DT_STRING \[-1\]\}"):
        client.predict({"z": np.ones(2)}, model="dtypes")
    with pytest.raises(InvalidInputError, match=r"missing input 's' of signature 'serving_default'"):
        client.predict({"a": np.ones((1, 3), np.float32), "b": np.array([1])}, model="dtypes")


def test_numbers_for_a_string_input_and_values_that_do_not_fit(client):
    with pytest.raises(InvalidInputError, match=r"input 'x' expects DT_FLOAT .*got bool .*do not fit DT_FLOAT"):
        client.predict(np.array([[True]]), model="half_plus_two")
    with pytest.raises(InvalidInputError, match=r"input 's' expects DT_STRING .*numbers for a string input"):
        client.predict({"a": np.ones((1, 3), np.float32), "b": np.array([1]), "s": np.array([7])}, model="dtypes")
    with pytest.raises(InvalidInputError, match=r"input 'b' expects DT_INT64 .*float64 .*do not fit DT_INT64"):
        client.predict({"a": np.ones((1, 3), np.float32), "b": np.array([1.5]), "s": np.array([b"q"])},
                       model="dtypes")
    with pytest.raises(InvalidInputError, match=r"input 'x' expects DT_UINT8 .*int64 .*do not fit DT_UINT8"):
        client.predict(np.array([300]), model="dtypes", signature_name="uint8")


def test_numbers_that_fit_are_cast_and_served(client):
    """float64 -> float32, whole floats -> int64, int -> float: what a .npy or JSON file usually holds."""
    out = client.predict({"a": np.ones((1, 3)), "b": np.array([2.0]), "s": np.array(["q"])}, model="dtypes",
                         output_filter=["total", "twice_b"])
    assert out["total"].dtype == np.float32 and out["total"].tolist() == [[3.0, 3.0, 3.0]]
    assert out["twice_b"].dtype == np.int64 and out["twice_b"].tolist() == [4]
    assert client.predict(np.array([[1], [2]]), model="half_plus_two")["y"].tolist() == [[2.5], [3.0]]


def test_what_tf_serving_accepts_still_goes(client):
    """TF Serving's own example sends shape [3] to the [-1, 1] half_plus_two signature: trailing unit
    dimensions apart, the server decides (and answers)."""
    assert client.predict(np.array([1.0, 2.0, 5.0]), model="half_plus_two")["y"].ravel().tolist() == [2.5, 3.0, 4.5]


def test_validate_false_lets_the_server_answer(live):
    with GrpcClient(live.grpc_target, validate=False) as c, pytest.raises(InvalidInputError) as err:
        c.predict({"x": np.array([[1.0]], np.float64)}, model="half_plus_two")
    assert "input 'x' expects" not in err.value.message  # the server's own wording


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_cli_json_string_for_a_float_input(capsys, tmp_path, live, protocol):
    (tmp_path / "x.json").write_text(json.dumps({"instances": [["one"], ["two"]]}))
    target = live.grpc_target if protocol == "grpc" else live.rest_target
    code = cli.main(["predict", "--target", target, "--protocol", protocol, "--model", "half_plus_two",
                     "--input", str(tmp_path / "x.json")])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_SERVER and out == ""
    assert err.strip() == ("error: INVALID_ARGUMENT: input 'x' expects DT_FLOAT with shape [-1, 1] (-1: any size); "
                           "got strings ('one', 'two') for a numeric input"), err
    assert "Traceback" not in err and "could not convert" not in err


def test_cli_ragged_json_is_one_line(capsys, tmp_path, live):
    (tmp_path / "x.json").write_text(json.dumps({"inputs": {"x": [[1.0], [2.0, 3.0]]}}))
    code = cli.main(["predict", "--target", live.grpc_target, "--model", "half_plus_two",
                     "--input", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert err.strip() == f"error: {tmp_path / 'x.json'}: input 'x' is not a rectangular array (rows of different " \
                          "lengths or mixed nesting)"
