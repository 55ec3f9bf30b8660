"""``python -m serving.bench --out docs/perf`` (``make bench``): run the benchmark and write its report.

``python -m serving.bench --target HOST:PORT --protocol grpc|rest --model NAME --input x.npy|x.npz``
(``make perf``): perf_analyzer for any model on any TF Serving-compatible server (see ``target``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .target import DEFAULT_METRICS_PATH

DEFAULT_LEVELS = "1,4,16,32,64"
TARGET_LEVELS = "1,8,32"


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be >= 1")
    return levels


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m serving.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help="where the report, CSV and PNG go (default docs/perf; build/perf with --target)")
    p.add_argument("--levels", "--concurrency", dest="levels", type=_levels, default=None,
                   help=f"closed-loop concurrency levels (default {DEFAULT_LEVELS}; 32 is needed for the batching "
                        f"goal; with --target: {TARGET_LEVELS})")
    p.add_argument("--duration", type=float, default=2.0, help="measurement window, seconds (default 2)")
    p.add_argument("--warmup", type=float, default=0.5, help="warm-up before each level, seconds (default 0.5)")
    p.add_argument("--trials", type=int, default=3,
                   help="most windows per level: stop early when two in a row agree (default 3)")
    p.add_argument("--stability", type=float, default=0.15,
                   help="two windows agree when throughput and p50 differ by at most this fraction (default 0.15)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs of the digits MLP (default 15)")
    p.add_argument("--work", type=Path, default=Path("build/bench"), help="scratch dir for the model (rebuilt)")
    t = p.add_argument_group("target mode (perf_analyzer for any model on a running server; public APIs only)")
    t.add_argument("--target", metavar="HOST:PORT", help="measure this server instead of running the benchmark")
    t.add_argument("--protocol", choices=("grpc", "rest"), default="grpc", help="API to call (default grpc)")
    t.add_argument("--model", help="model name")
    spec = t.add_mutually_exclusive_group()
    spec.add_argument("--version", type=int, help="model version (default: latest)")
    spec.add_argument("--label", help="version label, e.g. stable")
    t.add_argument("--signature-name", default="", help="signature (default serving_default)")
    t.add_argument("--input", type=Path, help=".npy (one input) or .npz (one array per input name)")
    t.add_argument("--batch-size", type=int, help="send this many rows per request (input rows are cycled)")
    t.add_argument("--metrics-url", default=None,
                   help="Prometheus page for the server-side breakdown (default with --protocol rest: "
                        f"http://HOST:PORT{DEFAULT_METRICS_PATH}; 'none' to skip)")
    return p


def _target_main(args: argparse.Namespace) -> int:
    from . import plot
    from .loadgen import Plan
    from .target import (
        CSV_NAME,
        PNG_NAME,
        Target,
        TargetError,
        check_reachable,
        load_inputs,
        measure,
        parse_target,
        resolve_inputs,
        write_csv,
    )

    try:
        if not args.model or args.input is None:
            raise TargetError("--target needs --model and --input")
        if args.batch_size is not None and args.batch_size < 1:
            raise TargetError("--batch-size must be >= 1")
        host, port = parse_target(args.target)
        metrics_url = args.metrics_url
        if metrics_url is None and args.protocol == "rest":
            metrics_url = f"http://{host}:{port}{DEFAULT_METRICS_PATH}"
        target = Target(host, port, args.protocol, args.model, args.version, args.label, args.signature_name,
                        None if metrics_url in (None, "none") else metrics_url)
        inputs = resolve_inputs(target, load_inputs(args.input, args.batch_size))
        check_reachable(target, inputs)
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shapes = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in inputs.items())
    print(f"*** Measurement Settings ***\n  target {target.address} ({target.protocol}), model {target.model}"
          f"{f' version {target.version}' if target.version is not None else ''}"
          f"{f' label {target.label}' if target.label else ''}; inputs {shapes}\n"
          f"  closed loop, concurrency {args.levels}; per level {args.warmup:g} s warm-up, then {args.duration:g} s "
          f"windows until two agree within {args.stability:.0%} (at most {args.trials})\n"
          f"  server-side breakdown: {target.metrics_url or 'off (no metrics URL)'}", flush=True)
    plan = Plan(args.warmup, args.duration, args.trials, args.stability)
    levels = measure(target, inputs, args.levels, plan,
                     lambda level: print("\n".join(level.lines()), flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(levels, args.out / CSV_NAME)
    png = plot.plot([lv.row for lv in levels], args.out / PNG_NAME,
                    f"{target.model} over {target.protocol} at {target.address}, batch {levels[0].batch_size}")
    if not any(lv.server for lv in levels):
        print("(no server-side breakdown: the server exposes no TF Serving latency metrics at "
              f"{target.metrics_url or 'any URL'}; pass --metrics-url)")
    print(f"wrote {csv_path}, {png}")
    return 1 if any(lv.row.errors for lv in levels) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.levels is None:
        args.levels = _levels(TARGET_LEVELS if args.target else DEFAULT_LEVELS)
    if args.out is None:
        args.out = Path("build/perf" if args.target else "docs/perf")
    if args.duration <= 0 or args.warmup < 0 or args.epochs < 1 or args.trials < 1 or args.stability <= 0:
        print("error: --duration and --stability must be > 0, --warmup >= 0, --epochs and --trials >= 1",
              file=sys.stderr)
        return 2
    if args.target:
        return _target_main(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from . import machine, plot, report
    from .goals import evaluate
    from .loadgen import Plan
    from .results import write_csv
    from .run import Bench, Settings

    start = time.perf_counter()
    plan = Plan(args.warmup, args.duration, args.trials, args.stability)
    settings = Settings(args.levels, plan, args.work.resolve(), args.epochs)
    info = machine.describe()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    outcome = Bench(settings).run()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(report.sorted_rows(outcome.rows), args.out / report.CSV_NAME)
    plot.plot(outcome.rows, args.out / report.PNG_NAME, f"digits MLP, batch 1, closed loop - {info['CPU']}")
    goals = evaluate(outcome.rows, outcome.codec_rows)
    readme = report.write_readme(args.out, settings, outcome, goals, info, time.perf_counter() - start)
    print("\ngoals:")
    for goal in goals:
        print(f"  [{report._verdict(goal)}] {goal.goal}: {goal.measured}")
    print(f"\nwrote {readme}, {args.out / report.CSV_NAME}, {args.out / report.PNG_NAME} "
          f"in {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
