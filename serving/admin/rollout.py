"""`python -m serving.admin rollout`: canary, verify through the live server, promote, or roll back on its own.

Steps (each one a progress line and a `Check` in the report):

1. preflight       files only: the version exists, passed its export parity, its files are the ones proven,
                   and its signature keeps the `stable` contract (`export.contract`)
2. load            add it to the `specific` policy (stable stays loaded); wait until AVAILABLE
3. label canary    `canary` -> version; wait until both protocols resolve the label to it
4. verify          the recorded parity samples by label `canary` over gRPC and REST, within the export tolerance
5. shadow load     the same requests to `canary` and `stable` for CANARY_S s: canary error rate and p99 ratio
6. promote         `stable` -> version (the previous stable stays loaded for `rollback`); wait until applied
7. record          the report into `.labels.json` events and the version's `metadata.json` `rollouts`

On a failed check, SIGINT or SIGTERM, the labels go back to what they were, the canary is unloaded, the
report names the failed check and its figure, and the exit status is non-zero. A SIGKILL leaves the state
file; the next run cleans up (before the promotion) or finishes the record (after it). TF Serving cannot
split traffic, so the canary only ever sees the rollout's own requests; labels do the switching.
"""
from __future__ import annotations

import argparse
import contextlib
import getpass
import math
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from export.metadata import utc_now
from serving.admin import layout
from serving.admin import rollout_state as st
from serving.admin.errors import AdminError
from serving.admin.labels import CANARY, STABLE, load_labels
from serving.admin.rollout_live import LiveError, LiveServer
from serving.admin.rollout_preflight import Candidate, PreflightError, preflight
from serving.admin.rollout_report import (
    INTERRUPTED,
    PROMOTED,
    REFUSED,
    ROLLED_BACK,
    Check,
    Progress,
    RolloutReport,
    format_report,
)
from serving.admin.rollout_shadow import ShadowResult, run_shadow

__all__ = ["RolloutOptions", "add_arguments", "main", "rollout"]

STEPS = 7
EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 1, 2, 130
HOLD_ENV = "ROLLOUT_TEST_HOLD_AFTER"  # test hook: stop (sleep) after the named step, so a test can kill -9 there


@dataclass(frozen=True)
class RolloutOptions:
    """Everything one rollout needs (the CLI flags)."""

    models_dir: Path
    name: str
    server: str
    version: int | None = None
    canary_s: float = 30.0
    max_p99_ratio: float = 1.5
    max_error_rate: float = 0.0
    load_timeout: float = 300.0
    call_timeout: float = 10.0
    report_json: Path | None = None


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived during the rollout."""


class CheckFailed(Exception):
    def __init__(self, check: Check) -> None:
        super().__init__(check.figure)
        self.check = check


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread (so the rollback runs) while the rollout runs."""
    def handler(signum: int, _frame) -> None:
        raise Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """While labels are being put back, a second Ctrl-C must not leave them half restored."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return os.environ.get("ROLLOUT_BY") or f"{user}@{socket.gethostname()}"


def _hold(step: str, progress: Progress) -> None:
    if os.environ.get(HOLD_ENV) == step:
        progress.say(f"holding after {step!r} ({HOLD_ENV})")
        signal.pause()


def _fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f} ms"


def shadow_checks(result: ShadowResult, max_error_rate: float, max_p99_ratio: float) -> list[Check]:
    """The two shadow-load decisions: canary error rate (failed calls + wrong answers), then p99 ratio."""
    details = {p: {label: f.to_json() for label, f in per.items()} for p, per in result.figures.items()}
    canary, stable = result.total(CANARY), result.total(STABLE)
    bad = canary.errors + canary.wrong
    rate = bad / canary.requests if canary.requests else 1.0
    first = f"; first: {canary.first_error}" if canary.first_error else ""
    errors = Check("shadow errors", canary.requests > 0 and rate <= max_error_rate,
                   f"canary {bad}/{canary.requests} failed or wrong ({rate:.2%}, max {max_error_rate:.2%}), "
                   f"stable {stable.errors}/{stable.requests} failed{first}", details={"figures": details})
    worst = None
    for protocol, per in result.figures.items():
        c99, s99 = per[CANARY].percentile(99), per[STABLE].percentile(99)
        ratio = c99 / s99 if s99 > 0 and not math.isnan(c99) else math.inf
        if worst is None or ratio > worst[1]:
            worst = (protocol, ratio, c99, s99, per[CANARY].percentile(50), per[STABLE].percentile(50))
    protocol, ratio, c99, s99, c50, s50 = worst or ("-", math.inf, math.nan, math.nan, math.nan, math.nan)
    latency = Check("shadow latency", ratio <= max_p99_ratio,
                    f"{protocol} p99 canary {_fmt_ms(c99)} / stable {_fmt_ms(s99)} = x{ratio:.2f} "
                    f"(max x{max_p99_ratio:g}); p50 {_fmt_ms(c50)} / {_fmt_ms(s50)}",
                    details={"p99_ratio": ratio, "protocol": protocol})
    return [errors, latency]


class _Rollout:
    """One run: the steps above, with the report filled in as they go."""

    def __init__(self, opts: RolloutOptions, stream: TextIO) -> None:
        self.opts = opts
        self.mdir = layout.model_dir(opts.models_dir, opts.name)
        self.progress = Progress(STEPS, stream)
        self.state: st.RolloutState | None = None
        self.live: LiveServer | None = None
        self.report = RolloutReport(opts.name, opts.version, None, opts.server, _who(), utc_now())

    # ------------------------------------------------------------ helpers
    def _add(self, check: Check) -> Check:
        self.report.checks.append(check)
        if not check.passed:
            raise CheckFailed(check)
        return check

    def _step(self, label: str, run) -> Check:
        """Run one step: `run()` returns a Check (or raises LiveError, which becomes a failed one)."""
        self.progress.begin(label)
        try:
            check = run()
        except LiveError as err:
            check = Check(label, False, str(err))
        except BaseException:
            self.progress.end(text="interrupted")
            raise
        seconds = self.progress.end(check)
        check = Check(check.name, check.passed, check.figure, round(seconds, 3), check.details)
        return self._add(check)

    def _set_step(self, step: str) -> None:
        assert self.state is not None
        self.state.step = step
        st.save_state(self.mdir, self.state)

    # ------------------------------------------------------------ leftovers of a killed run
    def recover(self) -> bool:
        """Handle a previous run's state file. Returns True when that run was this one and is now finished."""
        left = st.load_state(self.mdir)
        if left is None:
            return False
        if left.step == st.PROMOTED:
            promoted = {"name": "promote", "passed": True,
                        "figure": f"stable -> {left.version} (applied before the rollout was killed)"}
            summary = dict(left.report, result=PROMOTED, finished=utc_now(),
                           checks=[*left.report.get("checks", []), promoted],
                           notes=[*left.report.get("notes", []), "record finished by a later run (resumed)"])
            st.record_rollout(self.opts.models_dir, self.opts.name, left.version, summary)
            st.clear_state(self.mdir)
            self.progress.say(f"resumed: the rollout of version {left.version} (by {left.by}, {left.started}) "
                              "had promoted it before it was killed; its record is now complete")
            if self.opts.version in (None, left.version) and load_labels(self.mdir).labels.get(STABLE) == left.version:
                self.report = RolloutReport(**{k: v for k, v in summary.items() if k != "checks"},
                                            checks=[Check(**c) for c in summary["checks"]])
                return True
            return False
        with _signals_ignored():
            st.restore_labels(self.opts.models_dir, self.opts.name, left)
        note = (f"cleaned up an interrupted rollout of version {left.version} (by {left.by}, {left.started}, "
                f"stopped at step {left.step!r}): labels restored, canary unloaded")
        self.report.notes.append(note)
        self.progress.say(note)
        return False

    # ------------------------------------------------------------ the steps
    def _preflight(self) -> Candidate:
        self.progress.begin("preflight: version, export parity, files, signature vs stable")
        labels = load_labels(self.mdir)
        try:
            candidate, figures = preflight(self.opts.models_dir, self.opts.name, self.opts.version, labels)
        except PreflightError as err:
            check = Check(f"preflight: {err.check}", False, str(err))
            self.progress.end(check)
            self.report.checks.append(check)
            raise
        check = Check("preflight", True, figures[0])
        self.progress.end(check)
        self.report.checks.append(check)
        self.report.version, self.report.previous_stable = candidate.version, candidate.stable
        return candidate

    def run(self) -> RolloutReport:
        opts = self.opts
        if self.recover():
            return self.report
        cand = self._preflight()
        labels = load_labels(self.mdir)
        self.state = st.RolloutState(cand.version, self.report.by, os.getpid(), self.report.started, st.STAGING,
                                     dict(labels.labels), list(labels.stable_history))
        self.live = LiveServer(opts.server, opts.call_timeout)
        live, name, v = self.live, opts.name, cand.version
        try:
            st.save_state(self.mdir, self.state)

            def load() -> Check:
                st.stage_version(opts.models_dir, name, self.state)
                secs = live.wait_available(name, v, opts.load_timeout)
                return Check("load", True, f"version {v} AVAILABLE after {secs:.1f} s; stable {cand.stable} loaded")

            self._step(f"load version {v} next to stable {cand.stable}", load)
            _hold("load", self.progress)

            def label() -> Check:
                self._set_step(st.CANARY_STEP)
                st.add_canary(opts.models_dir, name, self.state)
                secs = live.wait_label(name, CANARY, v, opts.load_timeout)
                return Check("label canary", True, f"canary -> {v} on gRPC and REST after {secs:.1f} s")

            self._step(f"label version {v} canary", label)
            _hold("canary", self.progress)

            def verify() -> Check:
                self._set_step(st.VERIFYING)
                results = live.verify(name, CANARY, cand.inputs, cand.reference, cand.rtol, cand.atol)
                failures = [f"{r.protocol}: {f}" for r in results for f in r.failures]
                worst = max(r.max_abs for r in results)
                rows = next(iter(cand.inputs.values())).shape[0]
                figure = (f"{rows} recorded samples over {' and '.join(r.protocol for r in results)}: max |diff| "
                          f"{worst:.3g} (rtol {cand.rtol:g}, atol {cand.atol:g})")
                if failures:
                    figure += "; " + "; ".join(failures[:3])
                return Check("verify canary", not failures, figure,
                             details={r.protocol: {"max_abs": r.max_abs, "max_rel": r.max_rel,
                                                   "failures": list(r.failures)} for r in results})

            self._step("verify canary through the server (recorded parity samples)", verify)

            shadow_checks_holder: list[Check] = []

            def shadow() -> Check:
                result = run_shadow(live.shadow_clients, name, cand.inputs, cand.reference, seconds=opts.canary_s,
                                    rtol=cand.rtol, atol=cand.atol, timeout=opts.call_timeout)
                errors, latency = shadow_checks(result, opts.max_error_rate, opts.max_p99_ratio)
                shadow_checks_holder.append(latency)
                return errors

            self._step(f"shadow load canary vs stable for {opts.canary_s:g} s", shadow)
            latency = shadow_checks_holder[0]
            self.progress.say(f"      {'ok' if latency.passed else 'FAILED'}: {latency.figure}")
            self._add(latency)
            _hold("shadow", self.progress)

            def promote() -> Check:
                self._set_step(st.PROMOTING)
                st.promote_stable(opts.models_dir, name, self.state)
                secs = live.wait_label(name, STABLE, v, opts.load_timeout)
                self.state.report = self.report.summary()
                self._set_step(st.PROMOTED)
                return Check("promote", True, f"stable {cand.stable} -> {v} on gRPC and REST after {secs:.1f} s; "
                                              f"{cand.stable} stays loaded for rollback")

            self._step(f"promote version {v} to stable", promote)
            _hold("promote", self.progress)
        except CheckFailed as failed:
            self._roll_back(ROLLED_BACK, failed.check.name)
            return self.report
        except (Interrupted, KeyboardInterrupt) as sig:
            name_ = str(sig) or "SIGINT"
            self.report.checks.append(Check("interrupted", False, f"{name_} received; rolled back"))
            self._roll_back(INTERRUPTED, "interrupted")
            return self.report
        finally:
            live.close()
        self.report.result, self.report.finished = PROMOTED, utc_now()
        self.progress.begin("record the rollout (label history, metadata.json)")
        st.record_rollout(opts.models_dir, name, v, self.report.summary())
        st.clear_state(self.mdir)
        self.progress.end(text="done")
        return self.report

    def _roll_back(self, result: str, failed: str) -> None:
        assert self.state is not None and self.live is not None
        with _signals_ignored():
            self.progress.say(f"rolling back: labels back to {self.state.labels_before}, unloading version "
                              f"{self.state.version}")
            st.restore_labels(self.opts.models_dir, self.opts.name, self.state)
            stable_before = self.state.labels_before.get(STABLE)
            if stable_before is not None:
                with contextlib.suppress(LiveError):
                    self.live.wait_label(self.opts.name, STABLE, stable_before, self.opts.load_timeout)
            unloaded = self.live.wait_unloaded(self.opts.name, self.state.version, min(60.0, self.opts.load_timeout))
            self.report.notes.append(f"version {self.state.version} "
                                     + ("unloaded" if unloaded else "still unloading when the rollout ended"))
            self.report.result, self.report.failed_check, self.report.finished = result, failed, utc_now()
            st.record_rollout(self.opts.models_dir, self.opts.name, self.state.version, self.report.summary())
            st.clear_state(self.mdir)


def rollout(opts: RolloutOptions, stream: TextIO | None = None) -> RolloutReport:
    """Run one rollout under the model's rollout lock; returns its report (also written as JSON)."""
    stream = stream or sys.stdout
    mdir = layout.model_dir(opts.models_dir, opts.name)
    with st.rollout_lock(mdir, opts.name), _signals_raise():
        run = _Rollout(opts, stream)
        try:
            report = run.run()
        except PreflightError as err:
            report = run.report
            report.result, report.failed_check, report.finished = REFUSED, f"preflight: {err.check}", utc_now()
        except (Interrupted, KeyboardInterrupt) as sig:  # before anything was changed
            report = run.report
            report.checks.append(Check("interrupted", False, f"{str(sig) or 'SIGINT'} received before any change"))
            report.result, report.failed_check, report.finished = INTERRUPTED, "interrupted", utc_now()
    path = opts.report_json or (mdir / ".rollout-report.json")
    report.write_json(path)
    print("\n" + format_report(report), file=stream)
    print(f"report: {path}", file=stream, flush=True)
    return report


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `rollout` subcommand's flags (besides --models-dir and --name)."""
    p.add_argument("--server", required=True, metavar="HOST:GRPC,HOST:REST",
                   help="the server (ours or TF Serving) that polls this models.config")
    p.add_argument("--version", type=int, help="the version to roll out (default: the newest)")
    p.add_argument("--canary-s", type=_positive, default=30.0, help="seconds of shadow load (default 30)")
    p.add_argument("--max-p99-ratio", type=_positive, default=1.5,
                   help="fail when canary p99 > this x stable p99 on either protocol (default 1.5)")
    p.add_argument("--max-error-rate", type=_fraction, default=0.0,
                   help="fail when more than this fraction of canary calls fail or answer wrong (default 0)")
    p.add_argument("--load-timeout", type=_positive, default=300.0,
                   help="seconds to wait for a load or a label change to be applied (default 300)")
    p.add_argument("--call-timeout", type=_positive, default=10.0, help="timeout of every server call (default 10)")
    p.add_argument("--report-json", type=Path, help="where to write the JSON report "
                   "(default <models-dir>/<name>/.rollout-report.json)")


def main(args: argparse.Namespace) -> int:
    """Run `rollout` from parsed CLI args; the exit status: 0 promoted, 1 rolled back, 2 refused, 130 interrupted."""
    opts = RolloutOptions(args.models_dir, args.name, args.server, args.version, args.canary_s, args.max_p99_ratio,
                          args.max_error_rate, args.load_timeout, args.call_timeout, args.report_json)
    try:
        LiveServer(opts.server).close()  # a malformed --server is refused before anything else
        report = rollout(opts)
    except (AdminError, LiveError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    if report.succeeded:
        return 0
    if report.result == REFUSED:
        return EXIT_REFUSED
    return EXIT_INTERRUPTED if report.result == INTERRUPTED else EXIT_FAILED
