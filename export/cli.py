"""``python -m export MODEL --name NAME ...``: the command line of ``make export``."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from serving.quiet import import_tensorflow_quietly

from .compare import DEFAULT_ATOL, DEFAULT_RTOL
from .errors import ExportError, ParityError


def build_parser() -> argparse.ArgumentParser:
    from .onnx_export import DEFAULT_OPSET  # here, not at import: importing export.cli stays TensorFlow-free

    p = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a Keras model as a new numbered TF Serving version with model.onnx, behind a parity gate.",
    )
    p.add_argument("model", help="a .keras or .h5 file, a SavedModel directory, or module:function (path/file.py:function)")
    p.add_argument("--name", required=True, help="model name: the directory under --models-dir")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="base directory (default: models)")
    p.add_argument("--version", type=int, help="publish as this version (refused if it exists or was ever used)")
    p.add_argument("--custom", help="module (.py path or module name) registering custom Keras objects, imported first")
    p.add_argument("--sample", type=Path, help="parity/warmup inputs: .npy (single input) or .npz (one array per input)")
    p.add_argument("--unsafe", action="store_true", help="allow unsafe deserialization (Lambda layers): trusted files only")
    p.add_argument("--force", action="store_true", help="publish even if parity fails (recorded in metadata.json)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, 13..18 (default {DEFAULT_OPSET})")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help=f"parity relative tolerance (default {DEFAULT_RTOL:g})")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"parity absolute tolerance (default {DEFAULT_ATOL:g})")
    onnx = p.add_mutually_exclusive_group()
    onnx.add_argument("--require-onnx", action="store_true",
                      help="fail (publish nothing) when ONNX conversion or ONNX parity fails; default: best-effort")
    onnx.add_argument("--skip-onnx", action="store_true", help="do not convert to ONNX (metadata onnx.status: skipped)")
    p.add_argument("--input-names", metavar="OLD=NEW,...", help="rename signature input keys")
    p.add_argument("--output-names", metavar="OLD=NEW,...", help="rename signature output keys")
    p.add_argument("--allow-signature-change", action="store_true",
                   help="publish even if serving_default is incompatible with the latest version (recorded)")
    p.add_argument("--description", help="free text recorded in metadata.json")
    p.add_argument("--tags", help="comma-separated tags recorded in metadata.json")
    return p


def _interrupt_on_sigterm(signum, frame) -> None:
    """SIGTERM (docker stop, CI timeouts) unwinds like Ctrl-C, so the staging directory is removed."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    import_tensorflow_quietly()  # first: our own modules import TensorFlow, and its start-up noise is filtered here
    from .pipeline import (  # imports TensorFlow: after argument errors are reported
        ExportOptions,
        export_model,
    )

    try:
        options = ExportOptions(
            version=args.version, custom=args.custom, sample=args.sample, unsafe=args.unsafe, force=args.force,
            opset=args.opset, rtol=args.rtol, atol=args.atol, require_onnx=args.require_onnx,
            skip_onnx=args.skip_onnx, input_names=args.input_names or {}, output_names=args.output_names or {},
            allow_signature_change=args.allow_signature_change, description=args.description,
            tags=args.tags or [],
        )
        export_model(args.model, name=args.name, models_dir=args.models_dir, options=options)
    except ParityError as exc:
        print(f"error: {exc}\nnothing was published (FORCE=1 publishes anyway, recorded in metadata.json)", file=sys.stderr)
        return 1
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was published", file=sys.stderr)
        return 130
    return 0
