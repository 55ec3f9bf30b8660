"""Entry point of ``python -m export`` (see ``export.cli``).

TensorFlow's environment is set before anything can import it, and its import-time noise is filtered
while the command line's modules load (some import TensorFlow at module level).
"""
import sys

from serving.quiet import filtered_stderr, quiet_tensorflow_env

quiet_tensorflow_env()
with filtered_stderr():
    from . import onnx_export  # noqa: F401 (the converter's modules may import TensorFlow: load them here)
    from .cli import main

sys.exit(main())
