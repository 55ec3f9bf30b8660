"""ONNX is best-effort: a graph the converter cannot handle still publishes its proven SavedModel, with
``onnx.status = failed`` and a one-line reason, a warning, a clear ORT load error and a ``failed`` ONNX
column in ``make versions``; ``REQUIRE_ONNX=1`` makes the failure fatal and publishes nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from export.errors import OnnxConversionError
from export.metadata import read_metadata

from .conftest import assert_published, run_export

SOURCE = "tests.export.models:unconvertible"  # tf.math.igamma: no ONNX counterpart


def test_failed_conversion_still_publishes_the_saved_model(models_dir: Path) -> None:
    from serving.admin.table import version_rows
    from serving.backends.base import LoadError
    from serving.backends.onnxruntime import OnnxRuntimeBackend

    result, printed = run_export(SOURCE, models_dir, "igamma", description="incomplete gamma demo",
                                 tags="demo, onnx-gap")
    meta = assert_published(models_dir, "igamma", 1, {"x": "float32"}, ["p"], onnx_status="failed")
    reason = meta["onnx"]["reason"]
    assert "Igamma" in reason, reason
    assert "WARNING: no model.onnx" in printed and "FAILED:" in printed and "Traceback" not in printed
    assert "REQUIRE_ONNX=1" in printed
    with pytest.raises(LoadError, match="ONNX conversion failed at export") as info:
        OnnxRuntimeBackend.load(result.path)
    assert info.value.code == "NOT_FOUND"
    (row,) = version_rows(models_dir, "igamma")
    assert row["onnx"] == "failed" and "onnx:" in row["notes"]
    # provenance: DESCRIPTION=, TAGS=, the user and the git commit of the working tree
    prov = read_metadata(result.path)["provenance"]
    assert (prov["description"], prov["tags"]) == ("incomplete gamma demo", ["demo", "onnx-gap"])
    assert meta["description"] == "incomplete gamma demo" and meta["tags"] == ["demo", "onnx-gap"]
    assert prov["user"] and len(prov["git"]["commit"]) == 40 and isinstance(prov["git"]["dirty"], bool)


def test_require_onnx_publishes_nothing(models_dir: Path) -> None:
    with pytest.raises(OnnxConversionError, match="REQUIRE_ONNX=1: nothing was published") as info:
        run_export(SOURCE, models_dir, "igamma", require_onnx=True)
    assert "\n" not in str(info.value)
    assert not (models_dir / "igamma").exists()  # a failed first export leaves no directory, no .lock
