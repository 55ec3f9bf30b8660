"""The comparison core of the parity gate: names, then dtype and shape, then values; every failure collected."""
from __future__ import annotations

import json

import numpy as np

from export.compare import ParityReport, compare_outputs, format_table
from export.errors import ParityError
from export.parity import recorded_runtime, run_parity


def test_rows_and_differences() -> None:
    ref = {"y": np.array([[1.0, 2.0], [0.0, -4.0]], np.float32)}
    got = {"y": np.array([[1.0, 2.00001], [1e-7, -4.0]], np.float32)}
    rows, failures = compare_outputs("keras~onnx", ref, got, rtol=1e-5, atol=1e-5)
    assert failures == []
    (row,) = rows
    assert (row.pair, row.output, row.shape, row.dtype, row.passed) == ("keras~onnx", "y", [2, 2], "float32", True)
    assert abs(row.max_abs - 1e-5) < 1e-6 and row.max_rel > 1.0  # 1e-7 vs 0: huge relative, tiny absolute


def test_every_failure_kind_is_collected() -> None:
    ref = {"a": np.zeros((2, 3), np.float32), "b": np.zeros(2, np.float32), "c": np.zeros(2, np.int64),
           "d": np.ones(4, np.float32), "e": np.zeros(1, np.float32)}
    got = {"a": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float64), "c": np.zeros(2, np.int64),
           "d": np.array([1, 1, 1, 1.1], np.float32), "extra": np.zeros(1)}
    rows, failures = compare_outputs("keras~saved_model", ref, got, rtol=1e-5, atol=1e-5)
    kinds = {f.output: f.kind for f in failures}
    assert kinds == {"a": "shape", "b": "dtype", "d": "values", "e": "missing", "extra": "unexpected"}
    assert [r.output for r in rows] == ["c", "d"] and rows[0].passed and not rows[1].passed


def test_nan_must_match_and_strings_compare_exactly() -> None:
    ref = {"x": np.array([np.nan, 1.0]), "s": np.array([b"a", b"b"])}
    rows, failures = compare_outputs("p", ref, {"x": np.array([np.nan, 1.0]), "s": np.array([b"a", b"b"])}, 0, 0)
    assert failures == [] and all(r.passed for r in rows)
    _, failures = compare_outputs("p", ref, {"x": np.array([0.0, 1.0]), "s": np.array([b"a", b"c"])}, 1, 1)
    assert {f.output for f in failures} == {"x", "s"}


def test_run_parity_report_table_and_error() -> None:
    inputs = {"x": np.arange(6, dtype=np.float32).reshape(3, 2)}
    runtimes = {
        "keras": lambda x: {"y": x["x"] * 2},
        "good": lambda x: {"y": x["x"] * 2 + 1e-7},
        "bad": lambda x: {"y": x["x"] * 2 + 0.1},
    }
    report, reference = run_parity(inputs, runtimes, rtol=1e-5, atol=1e-5)
    assert np.array_equal(reference["y"], inputs["x"] * 2)
    assert report.samples == 3 and report.runtimes == ["keras", "good", "bad"]
    assert [(r.pair, r.passed) for r in report.rows] == [  # the whole batch, then its first row alone
        ("keras~good", True), ("keras~bad", False), ("keras~good@batch1", True), ("keras~bad@batch1", False)]
    assert [f.pair for f in report.failures] == ["keras~bad"]  # one failure per runtime and output
    assert report.batch_sizes == [3, 1] and report.variation == {"y": 8 / 10}  # (max - min over rows) / max abs
    table = format_table(report)
    assert "keras~bad" in table and "NO" in table and "FAILED keras~bad y: values" in table
    assert "max abs" in table and "1e-05/1e-05" in table
    data = json.loads(json.dumps(report.to_json()))  # strict JSON round trip (no NaN)
    assert ParityReport.from_json(data).to_json() == report.to_json() and data["passed"] is False
    assert "keras~bad y: values" in str(ParityError(report))


def test_recorded_reference_replays_outputs() -> None:
    outputs = {"y": np.array([1.0, 2.0], np.float32)}
    rt = recorded_runtime(outputs)
    first = rt({"x": np.zeros(2)})
    first["y"][0] = 99  # callers cannot corrupt the record
    assert rt({})["y"][0] == 1.0
