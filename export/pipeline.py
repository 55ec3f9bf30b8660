"""``export_model``: source → staged SavedModel + warmup + ONNX → parity gate → atomic publish.

Every artifact is written into a locked ``.staging-*`` directory; only ``versions.publish`` turns it into a
numbered version. Any failure, Ctrl-C or parity refusal removes the staging directory (and kill -9 leaves
one that the next export removes), so a poller never sees a partial or unproven version.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from serving.quiet import import_tensorflow_quietly

from . import onnx_export, samples, savedmodel, versions
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, ParityReport, format_table
from .contract_check import check_signature
from .errors import ConversionError, OnnxConversionError, ParityError
from .loading import LoadedModel, load_source
from .metadata import (
    METADATA_FILE,
    ONNX_FAILED,
    ONNX_OK,
    ONNX_SKIPPED,
    SCHEMA,
    file_hashes,
    package_versions,
    tree_sizes,
    utc_now,
    write_metadata,
)
from .parity import (
    PARITY_INPUTS,
    PARITY_REFERENCE,
    REFERENCE,
    SIGNATURE,
    backend_runtimes,
    load_onnx_backend,
    open_backends,
    quiet_tensorflow,
    run_parity,
    save_arrays,
)
from .progress import Progress, table
from .provenance import parse_tags, provenance
from .signature import ServingModel, parse_renames, serving_model

STEPS = ("loading model", "writing SavedModel + warmup records", "converting to ONNX", "checking parity", "publishing")
# Test hook: the exporter stops (sleeps) at the start of the named step, so a test can kill -9 it there.
HOLD_ENV = "EXPORT_TEST_HOLD_AT"
MAX_REASON = 500


@dataclass
class ExportOptions:
    """Everything ``export_model`` takes besides the source and the name (the CLI flags / Make variables)."""

    version: int | None = None
    custom: str | None = None
    sample: Path | None = None
    unsafe: bool = False
    force: bool = False
    opset: int = onnx_export.DEFAULT_OPSET
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    require_onnx: bool = False
    skip_onnx: bool = False
    input_names: dict[str, str] | str = field(default_factory=dict)  # or "old=new,..." (parsed)
    output_names: dict[str, str] | str = field(default_factory=dict)
    allow_signature_change: bool = False
    description: str | None = None
    tags: list[str] | str = field(default_factory=list)  # or "a,b" (parsed)


@dataclass
class OnnxOutcome:
    """What happened to ``model.onnx``: ok, failed (with a one-line reason) or skipped."""

    status: str
    reason: str | None = None

    def to_json(self, sig=None) -> dict:
        out: dict = {"status": self.status, "reason": self.reason}
        if sig is not None:
            out["inputs"] = [i.to_json() for i in sig.inputs.values()]
            out["outputs"] = [o.to_json() for o in sig.outputs.values()]
        return out


@dataclass
class ExportResult:
    """A published version: its number and directory, its metadata record and the parity report."""

    version: int
    path: Path
    metadata: dict
    report: ParityReport
    warnings: list[str] = field(default_factory=list)


def _hold(step: str, progress: Progress) -> None:
    if os.environ.get(HOLD_ENV) == step:
        progress.say(f"holding at {step!r} ({HOLD_ENV})")
        time.sleep(3600)


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."


def _keras_runtime(sm: ServingModel):
    import keras

    return lambda x: {k: keras.ops.convert_to_numpy(v) for k, v in sm.call(x).items()}


def _record(loaded: LoadedModel, sm: ServingModel, name: str, version: int, opts: ExportOptions,
            report: ParityReport, staging: Path, sig, onnx_sig, onnx: OnnxOutcome, *,
            signature_change: dict | None, origin: dict) -> dict:
    """The ``metadata.json`` content (the registry record of the version)."""
    return {
        "schema": SCHEMA, "name": name, "version": version, "created": utc_now(),
        "source": loaded.source_json(), "packages": package_versions(), "opset": opts.opset,
        "signature": signature_record(sig, sm),
        "onnx": onnx.to_json(onnx_sig),
        "files": file_hashes(staging, exclude=(METADATA_FILE,)),
        "sizes": tree_sizes(staging),
        "parity": report.to_json(), "forced": not report.passed, "unsafe": opts.unsafe, "custom": opts.custom,
        "renames": {"inputs": dict(opts.input_names), "outputs": dict(opts.output_names)},
        "signature_change": signature_change, "allow_signature_change": opts.allow_signature_change,
        "provenance": origin, "description": origin["description"], "tags": origin["tags"],
    }


def signature_record(sig, sm: ServingModel) -> dict:
    """The ``signature`` block: what clients send and read (also what the contract check compares)."""
    return {"name": sig.name, "method_name": sig.method_name,
            "inputs": [sig.inputs[s.name].to_json() for s in sm.inputs],
            "outputs": [sig.outputs[k].to_json() for k in sm.outputs]}


def export_model(source: str, *, name: str, models_dir: Path, stream: TextIO | None = None,
                 options: ExportOptions | None = None, **kwargs) -> ExportResult:
    """Export ``source`` as a new version of ``name`` under ``models_dir``; raises ``ExportError`` subclasses.

    Options come as ``options=ExportOptions(...)`` or as its fields by keyword. With ``force`` a failed parity
    check still publishes (recorded as ``"forced": true``). ONNX is best-effort unless ``require_onnx``.
    A failed export of a name that had never been published leaves no ``<models_dir>/<name>`` behind.
    """
    opts = replace(options or ExportOptions(), **kwargs)
    if isinstance(opts.input_names, str):
        opts.input_names = parse_renames(opts.input_names, "INPUT_NAMES")
    if isinstance(opts.output_names, str):
        opts.output_names = parse_renames(opts.output_names, "OUTPUT_NAMES")
    opts.tags = parse_tags(opts.tags)
    versions.validate_name(name)
    onnx_export.check_opset(opts.opset)
    model_dir = Path(models_dir) / name
    if opts.version is not None:
        versions.check_available(model_dir, opts.version)  # fail before the expensive steps; re-checked under the lock
    origin = provenance(opts.description, opts.tags)
    import_tensorflow_quietly()  # TensorFlow's import-time lines print here (filtered), not inside a progress line

    progress = Progress(len(STEPS), stream)
    fresh = not model_dir.exists()
    staging = versions.create_staging(model_dir)
    try:
        with quiet_tensorflow():
            number, target, meta, report, notes = _build_and_publish(
                staging, source, name=name, opts=opts, origin=origin, progress=progress)
    except BaseException:
        staging.discard()
        if fresh:
            versions.remove_if_unused(model_dir)
        raise
    result = ExportResult(number, target, meta, report, notes)
    progress.say(summary(result))
    return result


def _convert_onnx(staging: Path, sm: ServingModel, opts: ExportOptions) -> OnnxOutcome:
    """Best-effort ONNX: any conversion failure becomes ``failed`` with a one-line reason (fatal only with
    ``require_onnx``). A half-written ``model.onnx`` is removed so nothing can serve it."""
    if opts.skip_onnx:
        return OnnxOutcome(ONNX_SKIPPED, "SKIP_ONNX=1")
    target = staging / onnx_export.ONNX_FILE
    try:
        onnx_export.convert(staging, target, opset=opts.opset,
                            expected_inputs=[s.name for s in sm.inputs], expected_outputs=sm.outputs)
    except (OnnxConversionError, ConversionError) as exc:
        reason = _one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - a converter crash must not cost the user the SavedModel
        reason = _one_line(f"converter error {type(exc).__name__}: {exc}")
    else:
        return OnnxOutcome(ONNX_OK)
    target.unlink(missing_ok=True)
    if opts.require_onnx:
        raise OnnxConversionError(f"{reason} (REQUIRE_ONNX=1: nothing was published)")
    return OnnxOutcome(ONNX_FAILED, reason)


def _drop_onnx(report: ParityReport, staging: Path, opts: ExportOptions) -> tuple[ParityReport, OnnxOutcome]:
    """ONNX Runtime disagreed with Keras but the SavedModel did not: publish without the wrong model.onnx."""
    bad = [f for f in report.failures if f.pair.startswith(f"{REFERENCE}~onnx")]
    reason = _one_line("parity: " + "; ".join(f.describe() for f in bad[:3]))
    if opts.require_onnx:
        raise ParityError(report)
    (staging / onnx_export.ONNX_FILE).unlink(missing_ok=True)
    kept = replace(report, runtimes=[r for r in report.runtimes if r != "onnx"],
                   rows=[r for r in report.rows if not r.pair.startswith(f"{REFERENCE}~onnx")],
                   failures=[f for f in report.failures if f not in bad])
    return kept, OnnxOutcome(ONNX_FAILED, reason)


def _parity(staging: Path, sm: ServingModel, inputs, onnx: OnnxOutcome, opts: ExportOptions):
    """Keras vs the SavedModel (TF1 session loader) and, when converted, ONNX Runtime."""
    from serving.backends.base import LoadError

    with open_backends(staging, onnx=False) as backends:
        if onnx.status == ONNX_OK:
            try:
                backends["onnx"] = load_onnx_backend(staging)
            except LoadError as exc:
                if opts.require_onnx:
                    raise OnnxConversionError(f"model.onnx does not load in ONNX Runtime: {_one_line(str(exc))}") from exc
                (staging / onnx_export.ONNX_FILE).unlink(missing_ok=True)
                onnx = OnnxOutcome(ONNX_FAILED, _one_line(f"ONNX Runtime cannot load model.onnx: {exc}"))
        runtimes = {REFERENCE: _keras_runtime(sm), **backend_runtimes(backends)}
        report, reference = run_parity(inputs, runtimes, rtol=opts.rtol, atol=opts.atol)
        sigs = {k: b.signatures[SIGNATURE] for k, b in backends.items()}
    tf_failed = any(f.pair.startswith(f"{REFERENCE}~saved_model") for f in report.failures)
    if onnx.status == ONNX_OK and report.failures and not tf_failed:
        report, onnx = _drop_onnx(report, staging, opts)
    return report, reference, sigs, onnx


def _build_and_publish(staging: versions.Staging, source: str, *, name: str, opts: ExportOptions, origin: dict,
                       progress: Progress) -> tuple[int, Path, dict, ParityReport, list[str]]:
    """Steps 1-5 inside the staging directory; the caller discards it on any exception."""
    with progress.step(STEPS[0]):
        _hold("load", progress)
        loaded = load_source(source, custom=opts.custom, unsafe=opts.unsafe)

        def make_inputs(specs):
            return samples.load(opts.sample, specs) if opts.sample else samples.generate(specs)

        sm = serving_model(loaded.model, make_inputs, input_names=opts.input_names, output_names=opts.output_names)
        inputs = make_inputs(sm.inputs)
    notes = list(sm.warnings)
    for note in sm.warnings:
        progress.say(f"warning: {note}")
    with progress.step(STEPS[1]):
        _hold("savedmodel", progress)
        savedmodel.write_saved_model(sm, staging.path)
        savedmodel.write_warmup(staging.path, name, inputs)
    with progress.step(STEPS[2]):
        _hold("onnx", progress)
        onnx = _convert_onnx(staging.path, sm, opts)
    if onnx.status == ONNX_FAILED:
        progress.say(f"warning: ONNX conversion failed, publishing the SavedModel without model.onnx: {onnx.reason}")
    with progress.step(STEPS[3]):
        _hold("parity", progress)
        report, reference, sigs, onnx = _parity(staging.path, sm, inputs, onnx, opts)
        save_arrays(staging.path / PARITY_INPUTS, inputs)
        save_arrays(staging.path / PARITY_REFERENCE, reference)
    progress.say(format_table(report))
    notes += report.warnings()
    if onnx.status == ONNX_FAILED:
        notes.append(f"no model.onnx: {onnx.reason} (REQUIRE_ONNX=1 makes this fatal)")
    if not report.passed and not opts.force:
        raise ParityError(report)
    if not report.passed:
        progress.say("FORCE=1: publishing despite the parity failure (recorded in metadata.json)")
    with progress.step(STEPS[4]):
        _hold("publish", progress)
        holder: dict = {}

        def finalize(path: Path, number: int) -> None:
            record = signature_record(sigs["saved_model"], sm)
            change = check_signature(path.parent, record, number, allow_change=opts.allow_signature_change)
            holder["meta"] = _record(loaded, sm, name, number, opts, report, path, sigs["saved_model"],
                                     sigs.get("onnx"), onnx, signature_change=change, origin=origin)
            write_metadata(path, holder["meta"])

        number, target = versions.publish(staging, opts.version, finalize)
    change = holder["meta"]["signature_change"]
    if change:
        notes.append(f"ALLOW_SIGNATURE_CHANGE=1: the signature changed from version {change['from_version']} "
                     f"({'; '.join(change['changes'])})")
    return number, target, holder["meta"], report, notes


def summary(result: ExportResult) -> str:
    meta = result.metadata

    def tensors(items: list[dict]) -> str:
        return ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in items)

    rows = result.report.rows
    worst = max((r.max_abs for r in rows), default=0.0)
    verdict = "passed" if result.report.passed else "FAILED (forced)"
    onnx = meta["onnx"]
    onnx_line = (f"opset {meta['opset']}, {meta['sizes']['onnx_bytes']:,} bytes" if onnx["status"] == ONNX_OK
                 else f"{onnx['status'].upper()}: {onnx['reason']}")
    lines = [
        ("model", f"{meta['name']} version {meta['version']}"),
        ("path", str(result.path)),
        ("source", f"{meta['source']['kind']} {meta['source']['ref']}"),
        ("inputs", tensors(meta["signature"]["inputs"])),
        ("outputs", tensors(meta["signature"]["outputs"])),
        ("onnx", onnx_line),
        ("saved model", f"{meta['sizes']['saved_model_bytes']:,} bytes"),
        ("parity", f"{verdict}: {len(rows)} comparisons, max abs diff {worst:.2e} "
                   f"(rtol {result.report.rtol:g}, atol {result.report.atol:g})"),
    ]
    text = "\n" + table(lines)
    if result.warnings:
        text += "\n" + "\n".join(f"WARNING: {w}" for w in result.warnings)
    return text
