"""`python -m serving.admin config|promote|rollback|prune|versions|rollout` (what the Makefile targets call)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serving.admin import layout, modelsconfig, probe, registry, rollout, serverconfigs, table
from serving.admin.errors import AdminError
from serving.configfiles import ConfigFileError


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.admin",
        description="Registry and config tools over exported versions (models.config, labels, prune). "
                    "Every write is atomic, so a server polling the files never sees half of one.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, name_arg: bool = True, name_required: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--models-dir", type=Path, default=Path("models"), help="the exported models (default: models)")
        if name_arg:
            p.add_argument("--name", required=name_required,
                           help="model name (a directory under --models-dir)" + ("" if name_required else
                                                                                 "; default: every model"))
        return p

    p = add("config", "write models.config (+ batching.config, monitoring.config; ssl.config if asked)", False)
    p.add_argument("--prefix", help="base_path prefix the server sees, e.g. /models (default: absolute local path)")
    p.add_argument("--ssl-cert", help="PEM certificate file: write ssl.config with its contents")
    p.add_argument("--ssl-key", help="PEM private key file for ssl.config")
    p.add_argument("--ssl-ca", help="PEM CA certificate file for ssl.config (client certificates)")
    p.add_argument("--ssl-client-verify", action="store_true", help="require client certificates (needs --ssl-ca)")

    p = add("promote", "point LABEL of NAME at VERSION and rewrite models.config")
    p.add_argument("--version", required=True, type=_non_negative_int, help="the version number to label")
    p.add_argument("--label", required=True, help="stable or canary (any TF Serving label name works)")
    p.add_argument("--force", action="store_true", help="promote even without metadata or with failed parity")
    p.add_argument("--wait-for", metavar="HOST:PORT",
                   help="REST address of the running server: stage a version it does not serve yet, wait "
                        "until it is AVAILABLE, then move the label (one command instead of two)")
    p.add_argument("--server", metavar="HOST:PORT",
                   help="REST address of a server that may be running (make promote passes localhost:REST_PORT): "
                        "if it answers and serves NAME from this models.config, wait there as with --wait-for; "
                        "otherwise only stage")
    p.add_argument("--wait-timeout", type=float, default=120.0, help="seconds to wait for the version to load")

    add("rollback", "move the stable label of NAME back to the previous stable version")

    p = add("prune", "delete all but the newest KEEP versions of NAME (never a labelled one)")
    p.add_argument("--keep", required=True, type=_non_negative_int, help="how many of the newest versions to keep")
    p.add_argument("--dry-run", action="store_true", help="delete nothing; print what would be deleted")

    add("versions", "table of the versions of NAME (or of every model): created, labels, parity, ONNX, sizes, "
                    "tags, description", name_required=False)
    add("history", "the label moves of NAME kept in .labels.json: when, what, who")

    p = add("rollout", "canary VERSION of NAME, verify it through the live server (parity samples over gRPC "
                       "and REST, shadow load vs stable), then promote it to stable or roll back on its own")
    rollout.add_arguments(p)
    return parser


def run(args: argparse.Namespace) -> str:
    """Execute one parsed command; returns what to print."""
    models_dir: Path = args.models_dir
    if args.command == "config":
        done = [(modelsconfig.write_models_config(models_dir, args.prefix), "wrote")]
        done += serverconfigs.write_server_configs(models_dir, args.ssl_cert, args.ssl_key, args.ssl_ca,
                                                   args.ssl_client_verify)
        return "\n".join(f"{action:5} {path}" for path, action in done)
    if args.command == "promote":
        return _promote(args)
    if args.command == "rollback":
        old, new = registry.rollback(models_dir, args.name)
        return f"{args.name}: stable {old} -> {new}; updated {models_dir / modelsconfig.CONFIG_FILE}"
    if args.command == "prune":
        result = registry.prune(models_dir, args.name, args.keep, dry_run=args.dry_run)
        verb = "would delete" if result.dry_run else "deleted"
        deleted = ", ".join(map(str, result.deleted)) or "nothing"
        freed = f" ({table.human_bytes(result.freed_bytes)})" if result.deleted else ""
        kept = f"; kept labelled {', '.join(map(str, result.kept_labelled))}" if result.kept_labelled else ""
        rerun = "; run again without DRY_RUN=1 (--dry-run) to delete" if result.dry_run and result.deleted else ""
        return f"{args.name}: {verb} {deleted}{freed}{kept}{rerun}"
    if args.command == "versions":
        if args.name:
            return table.format_table(table.version_rows(models_dir, args.name))
        rows = table.all_version_rows(models_dir)
        return table.format_table(rows) if rows else f"no exported models under {models_dir}"
    if args.command == "history":
        rows = table.history_rows(models_dir, args.name)
        if not rows:
            return f"{args.name}: no label moves yet (promote one with `make promote`)"
        return table.format_table(rows, table.HISTORY_COLUMNS)
    raise AssertionError(f"unhandled command {args.command}")


def _promote(args: argparse.Namespace) -> str:
    """promote: in one step when a server that serves the model is given (--wait-for) or found (--server)."""
    models_dir: Path = args.models_dir
    target = args.wait_for
    if target is None and args.server:
        configured = modelsconfig.served_versions(models_dir, args.name)
        on_disk = {v for v, _ in layout.version_dirs(layout.model_dir(models_dir, args.name))}
        target = args.server if probe.serves_model(args.server, args.name, configured, on_disk=on_disk) else None
    waiter = None
    if target:
        def waiter(name: str, version: int) -> None:
            print(f"{name}: version {version} staged; waiting for {target} to load it "
                  f"(up to {args.wait_timeout:.0f} s)", flush=True)
            probe.wait_for_version(target, name, version, timeout=args.wait_timeout)
    res = registry.promote(models_dir, args.name, args.version, args.label, force=args.force,
                           wait_until_loaded=waiter)
    config = models_dir / modelsconfig.CONFIG_FILE
    if res.staged:
        now = f"{args.label} still -> {res.previous}" if res.previous is not None else f"{args.label} is not set yet"
        why = (f"no server serving {args.name} answered at {args.server}" if args.server
               else "no server to wait for was given")
        return (f"{args.name}: version {res.version} staged in {config}; {now}. TF Serving only labels a loaded "
                f"version and {why}: once the server reports it AVAILABLE, run the same promote again (or pass "
                f"WAIT_FOR=HOST:PORT / --wait-for to wait for it)")
    was = f" (was {res.previous})" if res.previous is not None else ""
    return f"{args.name}: {args.label} -> {res.version}{was}; updated {config}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "rollout":
        return rollout.main(args)  # prints its own progress and report; exit status says how it ended
    try:
        print(run(args))
    except (AdminError, ConfigFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
