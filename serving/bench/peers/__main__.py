"""``python -m serving.bench.peers`` (``make bench-peers``): our server next to KServe, MLServer and the
Python floors, same model files, same ORT options, same load generators, one run in interleaved rounds.
Writes ``peers.md``, ``peers.csv``, ``peers.png`` and the issue 11 goal section of ``README.md`` under --out."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from ..__main__ import _levels
from .run import ALL_SERVERS, GRPC_LOADGENS, PeerBench, PeerSettings
from .workloads import ALL as ALL_WORKLOADS

QUICK = {"levels": "1,16", "rounds": 2, "duration": 1, "warmup": 0, "epochs": 2}


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        unknown = sorted(set(names) - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(allowed)}")
        return [n for n in allowed if n in names]
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m serving.bench.peers", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help="where peers.md/csv/png go and whose README.md gets the goal section "
                        "(default docs/perf; build/bench-peers/quick with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: levels 1,16, 2 rounds of 1 s points, no warm-up, 2 training epochs")
    p.add_argument("--levels", type=_levels, default=None, help="concurrency levels (default 1,16,32)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds, ≥ 2 for ratios (default 2)")
    p.add_argument("--duration", type=int, default=None, help="seconds per measured point (whole seconds; default 2)")
    p.add_argument("--warmup", type=int, default=None, help="seconds of one unmeasured pass per server, workload and protocol before round 1 (default 2)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs of the digits MLP (default 15)")
    p.add_argument("--workloads", type=_names(ALL_WORKLOADS), default=list(ALL_WORKLOADS),
                   help=f"comma-separated subset of {','.join(ALL_WORKLOADS)}")
    p.add_argument("--servers", type=_names(ALL_SERVERS), default=None,
                   help=f"comma-separated subset of {','.join(ALL_SERVERS)} (default all; ours-2w only when "
                        "`python -m serving` has --num_workers)")
    p.add_argument("--ours-args", default="", metavar="'FLAGS'",
                   help="more flags for every `python -m serving` started, e.g. '--tensorflow_intra_op_parallelism=2'")
    p.add_argument("--grpc-loadgen", choices=GRPC_LOADGENS, default="h2load",
                   help="gRPC load generator: h2load (C, nghttp2; default; falls back to grpc.aio with a warning "
                        "when it is not installed) or grpc.aio (the Python loop of serving.bench.loadgen, in this "
                        "process)")
    p.add_argument("--work", type=Path, default=Path("build/bench-peers"), help="scratch dir (rebuilt)")
    p.add_argument("--report-only", type=Path, metavar="CSV", help="rebuild the docs from a saved peers.csv")
    return p


def _settings(args: argparse.Namespace) -> PeerSettings:
    from .servers import server_flags

    quick = QUICK if args.quick else {}

    def pick(name: str, default):
        value = getattr(args, name)
        return value if value is not None else quick.get(name, default)

    servers = args.servers or list(ALL_SERVERS)
    if "ours-2w" in servers and "--num_workers" not in server_flags():
        print("note: `python -m serving --help` has no --num_workers: skipping ours-2w (goal 4 not measured)",
              flush=True)
        servers = [s for s in servers if s != "ours-2w"]
    levels = pick("levels", "1,16,32")
    return PeerSettings(args.work.resolve(), args.workloads, _levels(levels) if isinstance(levels, str) else levels,
                        pick("rounds", 2), pick("duration", 2), pick("warmup", 2), pick("epochs", 15), servers,
                        shlex.split(args.ours_args), grpc_loadgen=args.grpc_loadgen)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or Path("build/bench-peers-quick" if args.quick else "docs/perf")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from .. import machine
    from . import plot, report
    from .goals import evaluate
    from .results import read_csv, write_csv

    start = time.perf_counter()
    info = machine.describe()
    if args.report_only:
        rows, settings_text, before, after = read_csv(args.report_only), "Rebuilt from a saved CSV.", "n/a", "n/a"
    else:
        settings = _settings(args)
        if settings.rounds < 1 or settings.duration < 1 or settings.warmup < 0 or settings.epochs < 1:
            print("error: --rounds, --duration and --epochs must be >= 1, --warmup >= 0", file=sys.stderr)
            return 2
        print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
        before = machine.load_average()
        bench = PeerBench(settings)
        try:
            rows = bench.run()
        except Exception as exc:  # noqa: BLE001 - a failed server or tool: one clear line, logs kept
            from .h2load import H2loadError
            from .servers import StartError
            from .wrk import WrkError

            if isinstance(exc, (StartError, WrkError, H2loadError)):
                print(f"error: {exc}", file=sys.stderr)
                return 1
            raise
        after = machine.load_average()
        settings_text = (f"Settings: workloads {', '.join(settings.workloads)}; concurrency {settings.levels}; "
                         f"{settings.rounds} interleaved rounds of {settings.duration} s points, after one "
                         f"{settings.warmup} s warm-up pass per server, workload and protocol.")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / report.CSV_NAME)
    goals = evaluate(rows)
    plot.plot(rows, out / report.PNG_NAME, f"make bench-peers - {info['CPU']}")
    page = report.write(out, rows, goals, info, settings_text, before, after, time.perf_counter() - start)
    print("\ngoals (issue 11):")
    for goal in goals:
        print(f"  [{goal.verdict.replace('*', '')}] {goal.goal}: {goal.measured}")
    print(f"\nwrote {page}, {out / report.CSV_NAME}, {out / report.PNG_NAME} and the goal section of "
          f"{out / 'README.md'} in {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
