"""`make demo` end to end (train -> export -> config -> serve -> REST + gRPC -> roll out version 2 -> stop), as a
newcomer runs it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.xdist_group("demo")
def test_demo_trains_exports_serves_and_answers_over_both_protocols(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "export.examples.demo", "--models-dir", str(tmp_path / "models"),
         "--work-dir", str(tmp_path / "work"), "--epochs", "5"],
        cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:]
    assert "parity passed" in out
    assert (tmp_path / "models" / "digits" / "1" / "model.onnx").is_file()
    assert (tmp_path / "models" / "models.config").is_file()
    truth = re.search(r"true labels:\s+(\[.*\])", out).group(1)
    rest = re.search(r"rest predictions:\s+(\[.*\])", out).group(1)
    grpc = re.search(r"grpc predictions:\s+(\[.*\])", out).group(1)
    assert rest == grpc
    assert len(json.loads(truth)) == len(json.loads(rest)) == 3
    # the ending: version 2 rolled out through the live server, with its report
    assert "CHECK" in out and "verify canary   PASS" in out and "digits: stable 1 -> 2" in out, out[-4000:]
    report = json.loads((tmp_path / "models" / "digits" / ".rollout-report.json").read_text())
    assert report["result"] == "promoted" and report["version"] == 2
    assert "demo: done (server stopped)" in out
