"""A parity pass must prove something: outputs that do not vary across the samples are flagged, with the
fix (SAMPLE= real data); a trained model's outputs vary and nothing is flagged."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from export.compare import ParityReport, output_variation
from export.metadata import read_metadata

from .conftest import run_export


def test_output_variation() -> None:
    assert output_variation(np.full((8, 10), 0.1, "float32")) == 0.0
    assert output_variation(np.array([[0.0, 1.0], [0.5, 0.5]])) == 0.5
    assert output_variation(np.array([[100.0], [101.0]])) == 1 / 101  # relative to the magnitude
    assert output_variation(np.ones((1, 4))) == 0.0  # a single row cannot vary
    assert output_variation(np.array([b"a", b"a"])) == 0.0 and output_variation(np.array([b"a", b"b"])) == 1.0
    report = ParityReport(rtol=1e-5, atol=1e-5, samples=8, runtimes=["keras"], variation={"y": 1e-5, "z": 0.3})
    assert report.constant_outputs == ["y"] and "SAMPLE=" in report.warnings()[0]
    assert ParityReport.from_json(report.to_json()).variation == report.variation


def test_constant_outputs_warn_and_trained_model_does_not(tmp_path: Path, models_dir: Path) -> None:
    from export.examples import digits_mlp

    degenerate, printed = run_export("tests.export.models:constant_output", models_dir, "const")
    assert degenerate.report.passed and degenerate.report.constant_outputs == ["y"]
    assert "WARNING: outputs ['y'] are (nearly) constant" in printed and "pass SAMPLE=" in printed
    meta = read_metadata(degenerate.path)
    assert meta["parity"]["constant_outputs"] == ["y"] and meta["parity"]["variation"]["y"] == 0.0

    trained = digits_mlp.train(tmp_path / "digits.keras", epochs=3)
    result, printed = run_export(trained, models_dir, "digits")
    assert result.report.constant_outputs == [] and "(nearly) constant" not in printed
    assert min(result.report.variation.values()) > 0.05
