"""The parity gate: run the same inputs through several runtimes and compare each with the reference.

A runtime is a named callable ``{input: ndarray} -> {output: ndarray}``. The export compares Keras
(``training=False``, the reference) with the SavedModel loaded the way TF Serving loads it
(``serving.backends.tensorflow.TensorFlowBackend``: TF1 session loader, tag ``serve``, ``session.run``) and
with ONNX Runtime (``serving.backends.onnxruntime.OnnxRuntimeBackend``). The inputs and Keras' outputs are
kept in the version (``assets.extra/parity_*.npz``) so ``python -m export.parity`` re-runs the proof later,
without the original model, optionally against a live server (``--server host:grpc,host:rest``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .compare import DEFAULT_ATOL, DEFAULT_RTOL, ParityReport, compare_outputs, format_table, output_variation
from .errors import ConversionError, ExportError, ParityError, VersionError
from .metadata import read_metadata, version_dirs

if TYPE_CHECKING:
    from serving.backends.base import Backend

Runtime = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
REFERENCE = "keras"
SIGNATURE = "serving_default"
PARITY_INPUTS = Path("assets.extra") / "parity_inputs.npz"
PARITY_REFERENCE = Path("assets.extra") / "parity_reference.npz"


def run_parity(inputs: dict[str, np.ndarray], runtimes: Mapping[str, Runtime], *, reference: str = REFERENCE,
               rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> tuple[ParityReport, dict[str, np.ndarray]]:
    """Compare every runtime with ``runtimes[reference]`` on ``inputs``; returns the report and the reference outputs.

    The whole batch is compared, then its first row alone (a second batch size: graphs that bake in the
    batch size or mix rows fail there). The report also records how much each reference output varies
    across the rows, so a pass on (nearly) constant outputs is flagged rather than trusted.
    """
    batch = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    sizes = [batch] + ([1] if batch > 1 else [])
    report = ParityReport(rtol=rtol, atol=atol, samples=batch, runtimes=list(runtimes), batch_sizes=sizes)
    ref_out: dict[str, np.ndarray] = {}
    for size in sizes:
        part = {k: v[:size] for k, v in inputs.items()}
        ref = {k: np.asarray(v) for k, v in runtimes[reference](part).items()}
        if size == batch:
            ref_out = ref
        for name, runtime in runtimes.items():
            if name == reference:
                continue
            got = {k: np.asarray(v) for k, v in runtime(dict(part)).items()}
            pair = f"{reference}~{name}" if size == batch else f"{reference}~{name}@batch{size}"
            rows, failures = compare_outputs(pair, ref, got, rtol, atol)
            failed = {(f"{reference}~{name}", f.output) for f in report.failures if f.pair == f"{reference}~{name}"}
            report.rows.extend(rows)
            report.failures.extend(f for f in failures if (f"{reference}~{name}", f.output) not in failed)
    report.variation = {k: output_variation(v) for k, v in ref_out.items()}
    return report, ref_out


def recorded_runtime(outputs: Mapping[str, np.ndarray]) -> Runtime:
    """A runtime that answers with recorded reference outputs (re-running parity without the source model).

    A smaller batch is a prefix of the recorded one (``run_parity`` checks its first rows alone), so the
    answer is the same prefix of the recorded outputs.
    """
    def answer(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = next(iter(inputs.values())).shape[0] if inputs else None
        return {k: np.array(v)[:rows] for k, v in outputs.items()}

    return answer


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Silence TF's Python-side deprecation chatter (the TF1 loader's) while exporting; restored after."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_onnx_backend(version_dir: Path) -> Backend:
    """``model.onnx`` of a version opened by the server's ONNX Runtime backend (``LoadError`` if it cannot be)."""
    from serving.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend.load(Path(version_dir))


@contextlib.contextmanager
def open_backends(version_dir: Path, *, onnx: bool = True) -> Iterator[dict[str, Backend]]:
    """The version loaded by the serving backends: ``saved_model`` (TF1 session loader) and, with ``onnx``,
    ``onnx`` (ONNX Runtime)."""
    from serving.backends.base import LoadError
    from serving.backends.tensorflow import TensorFlowBackend

    backends: dict[str, Backend] = {}
    try:
        try:
            backends["saved_model"] = TensorFlowBackend.load(Path(version_dir))
            if onnx:
                backends["onnx"] = load_onnx_backend(version_dir)
        except LoadError as exc:  # what TF Serving would refuse to load can never pass the gate
            raise ConversionError(f"{version_dir} does not load the way the server loads it: {exc}") from exc
        yield backends
    finally:
        for backend in backends.values():
            backend.unload()


def backend_runtimes(backends: Mapping[str, Backend]) -> dict[str, Runtime]:
    """One runtime per backend, each running the ``serving_default`` signature."""
    return {name: (lambda x, b=b: b.predict(SIGNATURE, x)) for name, b in backends.items()}


def server_runtimes(server: str, model: str, version: int | None) -> dict[str, Runtime]:
    """The live server's runtimes (gRPC + REST), provided by ``clients.parity`` and imported only when asked."""
    try:
        module = importlib.import_module("clients.parity")
    except ModuleNotFoundError as exc:
        raise ExportError(f"--server needs clients.parity (the clients package), which is not available: {exc}") from exc
    return dict(module.server_runtimes(server, model, version))


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _pick_version(model_dir: Path, version: int | None) -> Path:
    found = dict(version_dirs(model_dir))
    if not found:
        raise VersionError(f"no published versions in {model_dir}")
    if version is None:
        return found[max(found)]
    if version not in found:
        raise VersionError(f"version {version} not found in {model_dir} (have {sorted(found)})")
    return found[version]


def reparity(models_dir: Path, name: str, version: int | None = None, *, server: str | None = None,
             rtol: float | None = None, atol: float | None = None) -> ParityReport:
    """Re-run parity on a published version against its recorded Keras reference (and optionally a server)."""
    version_dir = _pick_version(Path(models_dir) / name, version)
    try:
        meta = read_metadata(version_dir)
    except (OSError, ValueError) as exc:
        raise VersionError(f"{version_dir}: unreadable export metadata: {exc}") from exc
    recorded = meta.get("parity") or {}
    rtol = recorded.get("rtol", DEFAULT_RTOL) if rtol is None else rtol
    atol = recorded.get("atol", DEFAULT_ATOL) if atol is None else atol
    inputs = load_arrays(version_dir / PARITY_INPUTS)
    runtimes: dict[str, Runtime] = {REFERENCE: recorded_runtime(load_arrays(version_dir / PARITY_REFERENCE))}
    has_onnx = (meta.get("onnx") or {}).get("status", "ok") == "ok" and (version_dir / "model.onnx").is_file()
    with quiet_tensorflow(), open_backends(version_dir, onnx=has_onnx) as backends:
        runtimes.update(backend_runtimes(backends))
        if server:
            runtimes.update(server_runtimes(server, name, int(meta["version"])))
        report, _ = run_parity(inputs, runtimes, rtol=rtol, atol=atol)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.parity", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="model name (directory under --models-dir)")
    parser.add_argument("--models-dir", default="models", type=Path)
    parser.add_argument("--version", type=int, help="version number (default: the newest)")
    parser.add_argument("--custom", help="module with custom Keras objects (imported first; rarely needed here)")
    parser.add_argument("--server", help="also compare a live server: host:grpcport,host:restport")
    parser.add_argument("--rtol", type=float, help="relative tolerance (default: the one recorded at export)")
    parser.add_argument("--atol", type=float, help="absolute tolerance (default: the one recorded at export)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    try:
        if args.custom:
            from .loading import import_custom

            import_custom(args.custom)
        report = reparity(args.models_dir, args.name, args.version, server=args.server, rtol=args.rtol, atol=args.atol)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if not report.passed:
        print(f"error: {ParityError(report)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
