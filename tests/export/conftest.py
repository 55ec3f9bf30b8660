"""Helpers for the export tests: in-process exports with captured progress, and version-directory checks."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from export.metadata import METADATA_FILE, file_hashes, read_metadata, version_dirs
from export.versions import STAGING_PREFIX, read_ledger

REPO = Path(__file__).resolve().parents[2]


def run_export(source, models_dir: Path, name: str, **kwargs):
    """``export_model`` with its progress captured; returns (result, printed text)."""
    from export.pipeline import export_model

    stream = io.StringIO()
    result = export_model(str(source), name=name, models_dir=models_dir, stream=stream, **kwargs)
    return result, stream.getvalue()


def assert_published(models_dir: Path, name: str, version: int, inputs: dict[str, str], outputs: list[str],
                     onnx_status: str | tuple[str, ...] = "ok") -> dict:
    """Everything the contract promises about ``<models_dir>/<name>/<version>``; returns its metadata.

    ``onnx_status``: the ONNX state(s) accepted; ``failed``/``skipped`` versions must have no ``model.onnx``
    and a reason, and their parity covers the SavedModel only.
    """

    from export.parity import PARITY_INPUTS, PARITY_REFERENCE
    from export.savedmodel import read_warmup

    model_dir = models_dir / name
    vdir = model_dir / str(version)
    assert vdir.is_dir() and (vdir / "saved_model.pb").is_file() and (vdir / "variables").is_dir()
    meta = read_metadata(vdir)
    assert (meta["name"], meta["version"], meta["schema"]) == (name, version, 1)
    assert meta["created"].endswith("Z") and meta["opset"] == 17
    assert set(meta["packages"]) == {"keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "numpy"}
    sig = meta["signature"]
    assert (sig["name"], sig["method_name"]) == ("serving_default", "tensorflow/serving/predict")
    assert {t["name"]: t["dtype"] for t in sig["inputs"]} == inputs
    assert sorted(t["name"] for t in sig["outputs"]) == sorted(outputs)
    assert all(t["shape"][0] is None for t in sig["inputs"] + sig["outputs"])
    status = meta["onnx"]["status"]
    assert status in ((onnx_status,) if isinstance(onnx_status, str) else onnx_status), meta["onnx"]
    runtimes = ["keras", "saved_model", "onnx"] if status == "ok" else ["keras", "saved_model"]
    if status == "ok":
        _assert_onnx(vdir, meta, inputs, outputs)
    else:  # best-effort ONNX: published without model.onnx, the reason recorded in one line
        assert not (vdir / "model.onnx").exists() and "model.onnx" not in meta["files"]
        reason = meta["onnx"]["reason"]
        assert reason and "\n" not in reason and "Traceback" not in reason
    # every file hashed, nothing else; readable by any user (a TF Serving container's uid)
    assert meta["files"] == file_hashes(vdir, exclude=(METADATA_FILE,))
    assert "saved_model.pb" in meta["files"]
    for path in [vdir, *vdir.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    # warmup records: one batch-1 predict request per sample row, keyed by the signature inputs
    logs = read_warmup(vdir)
    assert 1 <= len(logs) <= 1000
    req = logs[0].predict_log.request
    assert (req.model_spec.name, req.model_spec.signature_name) == (name, "serving_default")
    assert set(req.inputs) == set(inputs) and req.inputs[next(iter(inputs))].tensor_shape.dim[0].size == 1
    # parity: passed, every pair x output present, and re-runnable inputs/reference kept
    parity = meta["parity"]
    assert parity["passed"] and not parity["failures"] and parity["runtimes"] == runtimes
    assert parity["batch_sizes"][0] == len(logs) and parity["batch_sizes"][-1] == 1  # two batch sizes
    pairs = [f"keras~{r}{b}" for r in runtimes[1:] for b in ("", "@batch1")]
    assert {(r["pair"], r["output"]) for r in parity["rows"]} == {(p, o) for p in pairs for o in outputs}
    assert set(parity["variation"]) == set(outputs)
    assert all(r["max_abs"] <= r["atol"] + 1e-3 for r in parity["rows"])
    assert (vdir / PARITY_INPUTS).is_file() and (vdir / PARITY_REFERENCE).is_file()
    assert (meta["forced"], meta["unsafe"]) == (False, False)
    # publish left no debris and recorded the number
    assert not list(model_dir.glob(STAGING_PREFIX + "*"))
    assert version in read_ledger(model_dir)["versions_used"]
    return meta


def _assert_onnx(vdir: Path, meta: dict, inputs: dict[str, str], outputs: list[str]) -> None:
    """ONNX: same names as the signature, batch dimension dynamic and named, opset as asked, file hashed."""
    import onnx

    proto = onnx.load(str(vdir / "model.onnx"))
    assert sorted(i.name for i in proto.graph.input) == sorted(inputs)
    assert sorted(o.name for o in proto.graph.output) == sorted(outputs)
    for value in list(proto.graph.input) + list(proto.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) == 17
    assert {t["name"] for t in meta["onnx"]["inputs"]} == set(inputs)
    assert meta["onnx"]["reason"] is None and "model.onnx" in meta["files"]
    assert meta["sizes"]["onnx_bytes"] == (vdir / "model.onnx").stat().st_size > 0


def numbered(models_dir: Path, name: str) -> list[int]:
    return [n for n, _ in version_dirs(models_dir / name)]


def run_backends(vdir: Path, inputs: dict[str, np.ndarray]) -> tuple[dict, dict | None]:
    """Outputs of the SavedModel (TF1 session loader) and ONNX Runtime (None without model.onnx)."""
    from export.parity import open_backends

    with open_backends(vdir, onnx=(vdir / "model.onnx").is_file()) as backends:
        tf_out = backends["saved_model"].predict("serving_default", inputs)
        ort_out = backends["onnx"].predict("serving_default", inputs) if "onnx" in backends else None
    return tf_out, ort_out


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"
