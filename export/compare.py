"""Compare named outputs of several runtimes against a reference: names, then dtype and shape, then values.

Every failure is collected (never the first only) so one run tells the whole story; the caller decides
whether to raise ``ParityError``. Tolerances are data carried in the report, not constants in the code.
No TensorFlow here: the report is also read back from ``metadata.json``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-5


@dataclass(frozen=True)
class ParityRow:
    """One (runtime pair, output) comparison that got as far as values."""

    pair: str
    output: str
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    passed: bool
    shape: list[int]
    dtype: str


@dataclass(frozen=True)
class ParityFailure:
    """Why one (pair, output) failed: kind is missing|unexpected|dtype|shape|values."""

    pair: str
    output: str
    kind: str
    detail: str

    def describe(self) -> str:
        return f"{self.pair} {self.output}: {self.kind} ({self.detail})"


@dataclass
class ParityReport:
    """All rows and failures of one parity run; ``passed`` iff there are no failures."""

    rtol: float
    atol: float
    samples: int
    runtimes: list[str]
    rows: list[ParityRow] = field(default_factory=list)
    failures: list[ParityFailure] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    # output -> how much the reference varies across the sample rows (see ``output_variation``)
    variation: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def constant_outputs(self) -> list[str]:
        """Outputs that (nearly) do not vary across samples: a parity pass on them proves little."""
        limit = VARIATION_FACTOR * (self.atol + self.rtol)
        return [k for k, v in self.variation.items() if v <= limit]

    def warnings(self) -> list[str]:
        const = self.constant_outputs
        if not const:
            return []
        return [f"outputs {const} are (nearly) constant across the {self.samples} samples (variation <= "
                f"{VARIATION_FACTOR:g}x the tolerance): this parity check proves little; pass SAMPLE= with real "
                "inputs (a .npy/.npz of actual data)"]

    def to_json(self) -> dict:
        return {
            "passed": self.passed, "rtol": self.rtol, "atol": self.atol, "samples": self.samples,
            "runtimes": list(self.runtimes), "rows": [_finite(asdict(r)) for r in self.rows],
            "failures": [asdict(f) for f in self.failures], "batch_sizes": list(self.batch_sizes),
            "variation": _finite(dict(self.variation)), "constant_outputs": self.constant_outputs,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ParityReport:
        return cls(
            rtol=data["rtol"], atol=data["atol"], samples=data["samples"], runtimes=list(data["runtimes"]),
            rows=[ParityRow(**r) for r in data["rows"]], failures=[ParityFailure(**f) for f in data["failures"]],
            batch_sizes=list(data.get("batch_sizes", [])),
            variation={k: (float("inf") if v is None else v) for k, v in (data.get("variation") or {}).items()},
        )


# An output whose spread across samples is within this many tolerances cannot tell a broken runtime apart.
VARIATION_FACTOR = 10.0


def output_variation(values: np.ndarray) -> float:
    """How much one output differs across the sample rows (axis 0), relative to its magnitude.

    Numbers: the largest (max - min) over rows of any element, divided by max(1, max |value|) so that it
    compares with ``atol + rtol``. Strings: 0 when every row is identical, 1 otherwise. One row: 0.
    """
    arr = np.asarray(values)
    if arr.ndim == 0 or arr.shape[0] < 2 or arr.size == 0:
        return 0.0
    if arr.dtype.kind not in "fciub":
        flat = arr.reshape(arr.shape[0], -1)
        return 0.0 if all(np.array_equal(flat[0], row) for row in flat[1:]) else 1.0
    r = arr.astype(np.float64)
    finite = np.where(np.isfinite(r), r, 0.0)
    spread = float(np.max(finite.max(axis=0) - finite.min(axis=0)))
    return spread / max(1.0, float(np.max(np.abs(finite))))


def _finite(row: dict) -> dict:
    """JSON has no NaN/Infinity: non-finite differences are stored as null."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def _dtype_name(a: np.ndarray) -> str:
    return "string" if a.dtype.kind in "SUO" else a.dtype.name


def compare_outputs(
    pair: str, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], rtol: float, atol: float
) -> tuple[list[ParityRow], list[ParityFailure]]:
    """Compare one runtime's outputs with the reference's, output by output."""
    rows: list[ParityRow] = []
    failures = [ParityFailure(pair, k, "missing", "output not produced") for k in reference if k not in candidate]
    failures += [ParityFailure(pair, k, "unexpected", "output not in reference") for k in candidate if k not in reference]
    for name in (k for k in reference if k in candidate):
        ref, got = np.asarray(reference[name]), np.asarray(candidate[name])
        if _dtype_name(ref) != _dtype_name(got):
            failures.append(ParityFailure(pair, name, "dtype", f"{_dtype_name(got)} != reference {_dtype_name(ref)}"))
            continue
        if ref.shape != got.shape:
            failures.append(ParityFailure(pair, name, "shape", f"{list(got.shape)} != reference {list(ref.shape)}"))
            continue
        max_abs, max_rel, within = _within(ref, got, rtol, atol)
        rows.append(ParityRow(pair, name, max_abs, max_rel, atol, rtol, within, list(ref.shape), _dtype_name(ref)))
        if not within:
            failures.append(ParityFailure(
                pair, name, "values", f"max abs {max_abs:.3g}, max rel {max_rel:.3g} > atol {atol:g} + rtol {rtol:g}*|ref|"
            ))
    return rows, failures


def _within(ref: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> tuple[float, float, bool]:
    """(max abs, max rel, ok) with numpy.isclose semantics: |got - ref| <= atol + rtol*|ref|, NaN only where
    the reference has NaN. Non-numeric outputs (strings) must be exactly equal."""
    if ref.size == 0:
        return 0.0, 0.0, True
    if ref.dtype.kind not in "fciub":
        equal = bool(np.array_equal(ref, got))
        return (0.0, 0.0, True) if equal else (float("inf"), float("inf"), False)
    r, g = ref.astype(np.float64), got.astype(np.float64)
    both_nan = np.isnan(r) & np.isnan(g)
    diff = np.where(both_nan, 0.0, np.abs(r - g))  # NaN where exactly one side is NaN
    rel = np.where(diff == 0, 0.0, diff / np.maximum(np.abs(r), np.finfo(np.float64).tiny))
    within = bool(np.all(np.isclose(g, r, rtol=rtol, atol=atol, equal_nan=True)))
    return float(np.max(diff)), float(np.max(rel)), within


def format_table(report: ParityReport) -> str:
    """The report as a fixed-width terminal table, one line per (pair, output), failures listed after."""
    head = ("pair", "output", "max abs", "max rel", "tol (atol/rtol)", "ok")
    lines = [(r.pair, r.output, f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", f"{r.atol:g}/{r.rtol:g}", "yes" if r.passed else "NO")
             for r in report.rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*line) for line in lines]
    out += [f"FAILED {f.describe()}" for f in report.failures]
    verdict = "passed" if report.passed else f"FAILED ({len(report.failures)} failure(s))"
    sizes = f" (batch sizes {', '.join(map(str, report.batch_sizes))})" if report.batch_sizes else ""
    out.append(f"parity {verdict}: {report.samples} sample(s){sizes}, runtimes {', '.join(report.runtimes)}")
    if report.variation:
        out.append("output variation across samples: " + ", ".join(f"{k} {v:.2e}" for k, v in report.variation.items()))
    out += [f"WARNING: {w}" for w in report.warnings()]
    return "\n".join(out)
