"""Environment that keeps TensorFlow's C++ start-up chatter out of our output (standard library only).

Must run before TensorFlow is imported: TF reads these variables once, at import. Only values the user did not
set are filled in, so ``TF_CPP_MIN_LOG_LEVEL=0`` still shows everything when debugging.
"""
from __future__ import annotations

import os

# TF_CPP_MIN_LOG_LEVEL=2: TF's INFO and WARNING lines off (oneDNN notice, CPU feature banner); ERRORs stay.
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def quiet_tensorflow_env() -> None:
    """Fill in ``QUIET_ENV`` in ``os.environ`` where unset (call before ``import tensorflow``)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
