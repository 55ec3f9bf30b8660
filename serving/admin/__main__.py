"""`python -m serving.admin config|promote|rollback|prune|versions|rollout` (what the Makefile targets call)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serving.admin import modelsconfig, probe, registry, rollout, serverconfigs, table
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

    def add(name: str, help_text: str, name_arg: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--models-dir", type=Path, default=Path("models"), help="the exported models (default: models)")
        if name_arg:
            p.add_argument("--name", required=True, help="model name (a directory under --models-dir)")
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
    p.add_argument("--wait-timeout", type=float, default=120.0, help="seconds to wait with --wait-for")

    add("rollback", "move the stable label of NAME back to the previous stable version")

    p = add("prune", "delete all but the newest KEEP versions of NAME (never a labelled one)")
    p.add_argument("--keep", required=True, type=_non_negative_int, help="how many of the newest versions to keep")

    add("versions", "table of NAME's versions: created, labels, parity, sizes")

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
        waiter = None
        if args.wait_for:
            def waiter(name: str, version: int) -> None:
                probe.wait_for_version(args.wait_for, name, version, timeout=args.wait_timeout)
        res = registry.promote(models_dir, args.name, args.version, args.label, force=args.force,
                               wait_until_loaded=waiter)
        config = models_dir / modelsconfig.CONFIG_FILE
        if res.staged:
            return (f"{args.name}: version {res.version} staged in {config} (the server loads it first; TF Serving "
                    f"only labels loaded versions). Run the same promote again once it is AVAILABLE, or pass "
                    f"--wait-for HOST:PORT. {args.label} still -> {res.previous}")
        was = f" (was {res.previous})" if res.previous is not None else ""
        return f"{args.name}: {args.label} -> {res.version}{was}; updated {config}"
    if args.command == "rollback":
        old, new = registry.rollback(models_dir, args.name)
        return f"{args.name}: stable {old} -> {new}; updated {models_dir / modelsconfig.CONFIG_FILE}"
    if args.command == "prune":
        result = registry.prune(models_dir, args.name, args.keep)
        deleted = ", ".join(map(str, result.deleted)) or "nothing"
        kept = f"; kept labelled {', '.join(map(str, result.kept_labelled))}" if result.kept_labelled else ""
        return f"{args.name}: deleted {deleted}{kept}"
    if args.command == "versions":
        return table.format_table(table.version_rows(models_dir, args.name))
    raise AssertionError(f"unhandled command {args.command}")


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
