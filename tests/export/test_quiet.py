"""serving.quiet: TensorFlow's CPU-only start-up noise is dropped, every other stderr line passes through."""
from __future__ import annotations

import subprocess
import sys

from serving.quiet import NOISE, quiet_tensorflow_env

from .conftest import REPO

NOISY = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796160925.570442    6210 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796160934.281854    6210 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796160925.682089    6210 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
]
REAL = "E0000 00:00:1796160934.281854    6210 op_kernel.cc:1830] OP_REQUIRES failed at a real kernel"


def test_noise_pattern_matches_only_the_known_lines() -> None:
    assert all(NOISE.search(line) for line in NOISY)
    assert not NOISE.search(REAL) and not NOISE.search("error: cannot load model.keras")


def test_env_sets_only_what_the_user_did_not() -> None:
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    applied = quiet_tensorflow_env(env)
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "0" and "TF_CPP_MIN_LOG_LEVEL" not in applied
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_filtered_stderr_drops_noise_and_keeps_real_errors() -> None:
    """C-level writes to fd 2 (what TensorFlow's C++ logging does) go through the filter, in order."""
    code = (
        "import os, sys\n"
        "from serving.quiet import filtered_stderr\n"
        "lines = sys.argv[1:]\n"
        "with filtered_stderr():\n"
        "    for line in lines:\n"
        "        os.write(2, (line + '\\n').encode())\n"
        "    print('python-level', file=sys.stderr)\n"
        "os.write(2, b'after the filter\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *NOISY[:3], REAL, *NOISY[3:]], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stderr.splitlines() == [REAL, "python-level", "after the filter"]
