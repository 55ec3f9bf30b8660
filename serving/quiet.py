"""Keep TensorFlow's start-up noise off a CPU-only terminal, without hiding real errors.

Importing TensorFlow on a machine without a GPU prints, before any of our code runs: absl's "All log
messages before absl::InitializeLog() ..." warning, ``cudart_stub.cc`` "Could not find cuda drivers", the
CPU feature guard and oneDNN notices, and at the first device query an ``E`` line "failed call to cuInit:
... UNKNOWN ERROR (303)". None of it is actionable, and the E-line looks like a failure.

``quiet_tensorflow_env()`` sets what environment variables can (they must be set before TensorFlow is
imported): C++ log level 2 (warnings and info off, errors still on), oneDNN notice off, and no CUDA device
probing when the machine has no NVIDIA driver. A value the user already set is never overridden.

The pre-``InitializeLog`` lines and the cuInit E-line ignore those variables, so
``import_tensorflow_quietly()`` also filters the process's stderr (file descriptor 2) while TensorFlow is
imported and its devices are first listed: lines matching ``NOISE`` are dropped, every other line is
passed through unchanged. The filter is removed before the function returns, so a later crash's output is
never held in a pipe. Standard library only: the server and the exporter call it before importing TF.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NOISE", "filtered_stderr", "import_tensorflow_quietly", "quiet_tensorflow_env"]

# Known, non-actionable start-up lines of TensorFlow on a machine without a usable GPU. Precise on purpose:
# another cuInit error code (a driver mismatch) or any other E-line still shows.
NOISE = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"cuda_(platform|executor|driver)\.cc:\d+\] failed call to cuInit: .*(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE)",
    r"\] Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory for plugin cu\w+ when one "
    r"has already been registered",
    r"\] computation placer already registered",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$",
    r"\] oneDNN custom operations are on\.",
]))


def _has_nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def quiet_tensorflow_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set TensorFlow's logging/oneDNN/CUDA variables (only those not already set); returns what was set."""
    env = os.environ if environ is None else environ
    wanted = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "GRPC_VERBOSITY": "ERROR"}
    if not _has_nvidia_driver():
        wanted["CUDA_VISIBLE_DEVICES"] = ""
    applied = {}
    for key, value in wanted.items():
        if key not in env or (key == "TF_CPP_MIN_LOG_LEVEL" and env[key] == ""):
            env[key] = value
            applied[key] = value
    return applied


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Drop lines matching ``noise`` from everything written to fd 2 (C++ included) inside the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    read_fd, write_fd = os.pipe()

    def pump() -> None:
        with os.fdopen(read_fd, "rb", closefd=True) as src:
            for line in src:
                if not noise.search(line.decode("utf-8", "replace")):
                    os.write(saved, line)

    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains and stops
        thread.join(timeout=5)
        os.close(saved)


def import_tensorflow_quietly():
    """``quiet_tensorflow_env()``, then import TensorFlow and list its devices with the noise filtered out.

    Also useful when TensorFlow is already imported: the cuInit probe runs at the first device listing.
    """
    quiet_tensorflow_env()
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the cuInit probe happens here, inside the filter
    return tf
