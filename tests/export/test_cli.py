"""The command lines end to end: ``python -m export`` with CUSTOM= in a fresh process, ``python -m
export.parity`` re-running the proof, and an export killed with SIGKILL mid-way."""
from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from export.errors import ConversionError
from export.metadata import read_metadata
from export.versions import STAGING_PREFIX, read_ledger

from .conftest import REPO, assert_published, numbered, run_export

# No TF_CPP_MIN_LOG_LEVEL / CUDA_VISIBLE_DEVICES: the exporter must quiet TensorFlow itself (serving.quiet).
ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
ENV["PYTHONUNBUFFERED"] = "1"
pytestmark = pytest.mark.xdist_group("export-cli")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory) -> tuple[Path, Path]:
    """A subclassed model with a registered custom layer, saved from a module only CUSTOM= can import."""
    from export.loading import import_custom

    root = tmp_path_factory.mktemp("custom")
    layers = root / "my_layers.py"
    shutil.copy(REPO / "export" / "examples" / "custom_layer.py", layers)
    module = import_custom(str(layers))
    module.build_model().save(root / "custom.keras")
    return root / "custom.keras", layers


def test_cli_export_with_custom_then_reparity(custom_model, tmp_path: Path, capsys) -> None:
    from export import parity

    model, layers = custom_model
    models = tmp_path / "models"
    refused = _run("export", str(model), "--name", "custom", "--models-dir", str(models))
    assert refused.returncode == 1 and "CUSTOM=" in refused.stderr, refused.stderr[-2000:]
    assert numbered(models, "custom") == []

    done = _run("export", str(model), "--name", "custom", "--models-dir", str(models), "--custom", str(layers))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for step in ("[1/5] loading model ... done", "[3/5] converting to ONNX ... done", "[5/5] publishing ... done"):
        assert step in done.stdout
    assert "keras~onnx" in done.stdout and "custom version 1" in done.stdout
    for noise in ("absl::InitializeLog", "Could not find cuda drivers", "cuInit", "oneDNN", "deprecat"):
        assert noise not in done.stderr + done.stdout, noise  # TensorFlow's CPU-only start-up chatter
    meta = assert_published(models, "custom", 1, {"inputs": "float32"}, ["output_0"])
    assert meta["custom"] == str(layers) and meta["source"]["kind"] == "keras"

    # `make parity` (python -m export.parity), in-process: the recorded reference needs no CUSTOM
    assert parity.main(["--name", "custom", "--models-dir", str(models), "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "keras~saved_model" in printed and "parity passed" in printed
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True
    assert parity.main(["--name", "custom", "--models-dir", str(models), "--version", "7"]) == 1
    assert "version 7 not found" in capsys.readouterr().err


def test_reparity_detects_a_changed_version(tmp_path: Path) -> None:
    """Re-running parity compares against the recorded Keras outputs, so a drifted artifact is caught."""
    from export.parity import PARITY_REFERENCE, load_arrays, reparity, save_arrays

    models = tmp_path / "models"
    result, _ = run_export("tests.export.models:two_outputs", models, "drift")
    assert reparity(models, "drift").passed
    ref = load_arrays(result.path / PARITY_REFERENCE)
    ref["value"] = ref["value"] + 1.0
    save_arrays(result.path / PARITY_REFERENCE, ref)
    report = reparity(models, "drift", 1)
    assert not report.passed
    assert {(f.pair, f.output) for f in report.failures} == {("keras~saved_model", "value"), ("keras~onnx", "value")}
    assert reparity(models, "drift", atol=2.0).passed  # CLI tolerance overrides the recorded one
    (result.path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ConversionError, match="does not load the way the server loads it"):
        reparity(models, "drift")


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """Read the child's stdout until ``needle`` appears (probing, never a fixed sleep)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen, deadline = "", time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"never saw {needle!r}; output so far:\n{seen}")
        if sel.select(timeout=0.5):
            chunk = os.read(proc.stdout.fileno(), 65536).decode()
            seen += chunk
    return seen


def test_kill_9_mid_export_leaves_no_version(tmp_path: Path) -> None:
    """SIGKILL with everything staged (SavedModel, ONNX, parity done), right before the publish step."""
    step = "publish"
    models = tmp_path / "models"
    proc = subprocess.Popen(
        [sys.executable, "-m", "export", "tests.export.models:functional_mlp", "--name", "k", "--models-dir", str(models)],
        cwd=REPO, env={**ENV, "EXPORT_TEST_HOLD_AT": step}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_line(proc, f"holding at {step!r}", timeout=240)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    debris = list((models / "k").glob(STAGING_PREFIX + "*"))
    assert len(debris) == 1 and (debris[0] / "model.onnx").is_file()  # fully staged work, never numbered
    assert numbered(models, "k") == [] and read_ledger(models / "k")["versions_used"] == []
    # the next export cleans the dead exporter's debris and takes number 1
    result, _ = run_export("tests.export.models:functional_mlp", models, "k")
    assert result.version == 1 and not debris[0].exists()
    assert read_metadata(result.path)["parity"]["passed"]
    assert np.load(result.path / "assets.extra" / "parity_inputs.npz")["pixels"].shape == (8, 64)


def test_interrupted_export_removes_its_staging(tmp_path: Path) -> None:
    """Ctrl-C / SIGTERM unwinds: no numbered directory, no staging debris, no model directory at all."""
    models = tmp_path / "models"
    proc = subprocess.Popen(
        [sys.executable, "-m", "export", "tests.export.models:functional_mlp", "--name", "t", "--models-dir", str(models)],
        cwd=REPO, env={**ENV, "EXPORT_TEST_HOLD_AT": "parity"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        _wait_for_line(proc, "holding at 'parity'", timeout=240)
        assert len(list((models / "t").glob(STAGING_PREFIX + "*"))) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 130
        assert "interrupted: nothing was published" in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (models / "t").exists()  # a first export that failed leaves no models/t/, not even .lock


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_damaged_model_file_is_one_clear_line(suffix: str, tmp_path: Path) -> None:
    """Keras says "File not found" for a corrupt .keras and h5py prints a traceback for a bad .h5: one line."""
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(b"this is not a model\n" * 10)
    done = _run("export", str(bad), "--name", "broken", "--models-dir", str(tmp_path / "models"), timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot load {bad}: not a"), done.stderr
    assert ("not a .keras archive" if suffix == ".keras" else "not an HDF5 file") in lines[0]
    assert not (tmp_path / "models" / "broken").exists()  # a failed first export leaves nothing behind
