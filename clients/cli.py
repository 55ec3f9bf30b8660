"""``python -m clients``: call a TF Serving (or the local drop-in) server from the shell, no TensorFlow needed.

    python -m clients predict  --target localhost:8500 --protocol grpc --model NAME --input x.npy
    python -m clients status   --target localhost:8501 --protocol rest --model NAME
    python -m clients metadata --target localhost:8500 --model NAME --version 3

Outputs print as JSON (or go to ``--output`` .npy/.npz/.json). Errors print one line on stderr; exit status:
2 bad arguments or input file, 3 server unreachable/unavailable, 4 model/version/label not found,
5 deadline exceeded, 1 any other server error.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import ServingClient
from .errors import DeadlineExceededError, ModelNotFoundError, ServerUnavailableError, ServingClientError
from .tls import TlsConfig

EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_DEADLINE, EXIT_SERVER = 2, 3, 4, 5, 1


class InputFileError(ValueError):
    """An --input/--output file that cannot be read or written as asked."""


# ---------------------------------------------------------------- files
def load_inputs(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """.npy -> one array; .npz -> named arrays; .json -> a list (one array), ``{name: list}``, or a REST body
    (``{"inputs": ...}`` or ``{"instances": [...]}``)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if not z.files:
                    raise InputFileError(f"{path}: the .npz file holds no arrays")
                return {k: z[k] for k in z.files}
        if suffix == ".json":
            return _json_inputs(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputFileError):
            raise
        raise InputFileError(f"cannot read input {path}: {exc}") from None
    raise InputFileError(f"input must be .npy, .npz or .json, got {path.name!r}")


def _json_inputs(doc: Any, path: Path) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(doc, dict) and "inputs" in doc:
        doc = doc["inputs"]
    elif isinstance(doc, dict) and "instances" in doc:
        rows = doc["instances"]
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            doc = {k: [r.get(k) for r in rows] for k in rows[0]}
        else:
            doc = rows
    if isinstance(doc, dict):
        if not doc:
            raise InputFileError(f"{path}: no inputs in the JSON object")
        return {str(k): _json_array(v, path, f"input {str(k)!r}") for k, v in doc.items()}
    if isinstance(doc, list | int | float | bool | str):
        return _json_array(doc, path, "the input")
    raise InputFileError(f"{path}: JSON input must be a list, an object of named lists, or a REST predict body")


def _json_array(value: Any, path: Path, what: str) -> np.ndarray:
    """A JSON value as an array (its dtype is fixed later from the signature), or one clear line."""
    try:
        arr = np.asarray(value)
    except ValueError:  # numpy: "inhomogeneous shape after N dimensions"
        raise InputFileError(f"{path}: {what} is not a rectangular array (rows of different lengths or "
                             "mixed nesting)") from None
    if arr.dtype == object and not all(isinstance(v, str | bytes) for v in arr.flat):
        raise InputFileError(f"{path}: {what} mixes numbers, strings, null or objects; give one type per input")
    return arr


def to_jsonable(value: Any) -> Any:
    """Arrays/bytes as JSON: UTF-8 text when it decodes, ``{"b64": ...}`` otherwise."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OS":
            return to_jsonable(value.tolist())
        if value.dtype.kind == "c":
            return to_jsonable(np.stack([value.real, value.imag], axis=-1))
        return value.astype(np.float64).tolist() if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def write_outputs(path: Path, outputs: dict[str, np.ndarray]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if len(outputs) != 1:
            raise InputFileError(f"{len(outputs)} outputs ({', '.join(outputs)}) do not fit one .npy; use .npz")
        np.save(path, next(iter(outputs.values())), allow_pickle=True)
    elif suffix == ".npz":
        np.savez(path, **outputs)
    elif suffix == ".json":
        path.write_text(json.dumps(to_jsonable(outputs)) + "\n", encoding="utf-8")
    else:
        raise InputFileError(f"output must be .npy, .npz or .json, got {path.name!r}")


# ---------------------------------------------------------------- commands
def _client(args) -> ServingClient:
    if args.protocol == "grpc":
        from .grpc_client import GrpcClient

        tls = None
        if args.tls or args.ca or args.cert or args.key or args.server_name:
            tls = TlsConfig(ca_file=args.ca, cert_file=args.cert, key_file=args.key, server_name=args.server_name)
        return GrpcClient(args.target, tls=tls, timeout=args.timeout)
    if args.ca or args.cert or args.key or args.server_name or args.tls:
        raise InputFileError("TLS options apply to --protocol grpc only")
    from .rest_client import RestClient

    return RestClient(args.target, timeout=args.timeout, gzip=args.gzip)


def _predict(client: ServingClient, args) -> None:
    # The client checks names, dtypes and shapes against the model's signature and casts (JSON has no
    # dtypes; a float64 .npy for a float32 model is cast too), naming the input and what it expects.
    outputs = client.predict(load_inputs(args.input), model=args.model, version=args.version, label=args.label,
                             signature_name=args.signature, output_filter=args.output_filter or None)
    if args.output:
        write_outputs(args.output, outputs)
        print(f"wrote {', '.join(outputs)} to {args.output}")
    else:
        print(json.dumps(to_jsonable(outputs)))


def _examples(args) -> list[dict]:
    try:
        doc = json.loads(args.input.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"cannot read examples {args.input}: {exc}") from None
    examples = doc.get("examples") if isinstance(doc, dict) else doc
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        raise InputFileError(f"{args.input}: expected a JSON list of feature objects (or {{\"examples\": [...]}})")
    return examples


def _run(args) -> int:
    with _client(args) as client:
        if args.command == "predict":
            _predict(client, args)
        elif args.command in ("classify", "regress"):
            method = client.classify if args.command == "classify" else client.regress
            result = method(_examples(args), model=args.model, version=args.version, label=args.label,
                            signature_name=args.signature)
            print(json.dumps(to_jsonable(dataclasses.asdict(result) if args.command == "classify" else result)))
        elif args.command == "status":
            statuses = client.status(model=args.model, version=args.version, label=args.label)
            print(json.dumps([dataclasses.asdict(s) for s in statuses]))
        else:
            meta = client.metadata(model=args.model, version=args.version, label=args.label)
            print(json.dumps(dataclasses.asdict(meta)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clients", description="Call a TF Serving server (gRPC or REST); no TensorFlow needed.",
        epilog="exit status: 0 ok, 1 server error, 2 bad arguments or input file, 3 server unreachable, "
               "4 model/version/label not found, 5 deadline exceeded")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("predict", "run a signature on arrays from --input"),
                        ("classify", "classify examples (JSON list of feature objects)"),
                        ("regress", "regress examples (JSON list of feature objects)"),
                        ("status", "version states of a model"), ("metadata", "signatures of a model")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--target", required=True, help="HOST:PORT (gRPC port or REST port, per --protocol)")
        p.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
        p.add_argument("--model", required=True)
        pick = p.add_mutually_exclusive_group()
        pick.add_argument("--version", type=int)
        pick.add_argument("--label")
        p.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole call (default 10)")
        p.add_argument("--tls", action="store_true", help="gRPC over TLS with the system's root certificates")
        p.add_argument("--ca", help="PEM CA bundle to verify the server (gRPC TLS)")
        p.add_argument("--cert", help="PEM client certificate (mutual TLS)")
        p.add_argument("--key", help="PEM client key (mutual TLS)")
        p.add_argument("--server-name", help="expected name in the server certificate")
        p.add_argument("--gzip", action="store_true", help="gzip REST request bodies")
        if name in ("predict", "classify", "regress"):
            p.add_argument("--signature", default="", help="signature key (default serving_default)")
            p.add_argument("--input", required=True, type=Path,
                           help=".npy, .npz or .json" if name == "predict" else "JSON examples")
        if name == "predict":
            p.add_argument("--output", type=Path, help="write outputs to .npy (one output), .npz or .json")
            p.add_argument("--output-filter", action="append", help="only this output (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (InputFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ServerUnavailableError as exc:
        print(f"error: cannot reach the {args.protocol} server at {args.target}: {exc.message}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ModelNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except DeadlineExceededError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DEADLINE
    except ServingClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVER
    except ValueError as exc:  # bad arguments caught by the client before sending (e.g. an unsupported dtype)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
