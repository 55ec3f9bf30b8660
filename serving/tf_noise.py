"""Import TensorFlow with its CPU-only start-up noise removed and every other line kept.

On a machine without a GPU, a CUDA build of TensorFlow prints, whatever ``TF_CPP_MIN_LOG_LEVEL`` says (they come
before absl logging is initialised, or from XLA's own logger): absl's ``All log messages before
absl::InitializeLog()`` warning, ``Could not find cuda drivers on your machine``, the ``failed call to cuInit:
... UNKNOWN ERROR (303)`` E-line, cuDNN/cuFFT/cuBLAS factory registration errors and the CPU-instructions
banner. None of it is actionable for a CPU server. ``import_tensorflow_quietly`` imports TF and initialises
its devices (where those lines are written) with file descriptor 2 pointed at a temporary file, then writes
back every line that is not one of those, in order: a real error (another CUDA error code, a failed import)
still shows. After that one window stderr is untouched.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator

from .quiet import quiet_tensorflow_env

NOISE = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"cuda_(platform|executor|driver)\.cc:\d+\] failed call to cuInit: .*(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE)",
    r"\] Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory for plugin cu\w+ when one "
    r"has already been registered",
    r"\] computation placer already registered",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$",
    r"\] oneDNN custom operations are on\.",
]))


def is_noise(line: str) -> bool:
    return NOISE.search(line.rstrip("\n")) is not None


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[str], bool] = is_noise) -> Iterator[None]:
    """Capture fd 2 (C++ and Python writes alike) and replay the lines ``drop`` keeps when the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not drop(line)]
            if kept:
                os.write(2, "".join(kept).encode("utf-8"))


def import_tensorflow_quietly() -> None:
    """``import tensorflow`` and list its devices (CUDA initialisation) inside ``filtered_stderr``."""
    if "tensorflow" in sys.modules:
        return
    quiet_tensorflow_env()
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
