"""`make demo`: train -> export (+ONNX, parity) -> models.config -> serve -> call over REST and gRPC ->
label it stable -> export a retrained version 2 -> roll it out (canary, live checks, promote) -> stop.

Every step runs the same command a user would type (shown before it runs), so the demo doubles as a
smoke test of the documented workflow. Data: scikit-learn's bundled 8x8 digits (no download).
"""
from __future__ import annotations

import argparse
import json
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np

from serving.process import ServingProcess
from serving.quiet import NOISE, import_tensorflow_quietly

MODEL_NAME = "digits"


def _step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def _run(args: list[str]) -> str:
    print("$ " + " ".join(shlex.quote(a) for a in args), flush=True)
    proc = subprocess.run(args, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    shown = proc.stdout if proc.returncode else "".join(
        line for line in proc.stdout.splitlines(keepends=True) if not NOISE.search(line)
    )
    print(shown, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"demo: step failed (exit {proc.returncode}): {' '.join(args)}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_available(url: str) -> bool:
    """True once the REST status endpoint reports a version of the model AVAILABLE."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return "AVAILABLE" in [v["state"] for v in json.load(resp)["model_version_status"]]
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("build/demo-models"))
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    py = sys.executable
    work = args.work_dir.resolve()
    models = args.models_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    _step("1/6 train the digits MLP on scikit-learn's bundled 8x8 digits")
    import_tensorflow_quietly()
    from export.examples import digits_mlp

    model_path = digits_mlp.train(work / "digits_mlp.keras", epochs=args.epochs)

    _step("2/6 export a new version: SavedModel + model.onnx + warmup records + metadata, behind the parity gate")
    _run([py, "-m", "export", str(model_path), "--name", MODEL_NAME, "--models-dir", str(models)])

    _step("3/6 write models.config")
    _run([py, "-m", "serving.admin", "config", "--models-dir", str(models)])

    _step("4/6 serve it with the local drop-in TensorFlow Serving")
    grpc_port, rest_port = _free_port(), _free_port()
    server_args = [f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                   f"--model_config_file={models / 'models.config'}", "--model_config_file_poll_wait_seconds=1",
                   "--file_system_poll_wait_seconds=1"]
    print("$ " + " ".join(shlex.quote(a) for a in [py, "-m", "serving", *server_args]), flush=True)
    with ServingProcess(server_args) as server:
        server.wait_until(lambda: _model_available(f"{server.rest_url}/v1/models/{MODEL_NAME}"), 120, "serving")
        print(f"server ready: gRPC {server.grpc_target}, REST {server.rest_url} (log: {server.log_path})")

        _step("5/6 call it over REST and gRPC with 3 held-out digits")
        images, labels = digits_mlp.holdout_samples(3)
        sample = work / "sample.npy"
        np.save(sample, images)
        answers = {}
        for protocol, port in (("rest", rest_port), ("grpc", grpc_port)):
            out = _run([py, "-m", "clients", "predict", "--target", f"127.0.0.1:{port}", "--protocol", protocol,
                        "--model", MODEL_NAME, "--input", str(sample)])
            answers[protocol] = _argmax(json.loads(out))
        print(f"\ntrue labels:        {labels.tolist()}")
        for protocol, predicted in answers.items():
            print(f"{protocol:>4} predictions:   {predicted}")
        if answers["rest"] != answers["grpc"]:
            raise SystemExit("demo: REST and gRPC disagree")

        _step("6/6 label version 1 stable, export a retrained version 2, and roll it out through the server")
        rest, spec = f"127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port},127.0.0.1:{rest_port}"
        _run([py, "-m", "serving.admin", "promote", "--models-dir", str(models), "--name", MODEL_NAME,
              "--version", "1", "--label", "stable", "--wait-for", rest])
        retrained = digits_mlp.train(work / "digits_mlp_v2.keras", epochs=args.epochs + 5)
        _run([py, "-m", "export", str(retrained), "--name", MODEL_NAME, "--models-dir", str(models)])
        # A short shadow load, and a p99 bound loose enough for a laptop busy with the demo itself.
        _run([py, "-m", "serving.admin", "rollout", "--models-dir", str(models), "--name", MODEL_NAME,
              "--server", spec, "--canary-s", "2", "--max-p99-ratio", "3"])
    print("\ndemo: done (server stopped)")
    return 0


def _argmax(outputs: dict) -> list[int]:
    """Class ids from the CLI's JSON outputs (one output tensor of per-class probabilities)."""
    (probs,) = outputs.values() if isinstance(outputs, dict) else (outputs,)
    return np.asarray(probs).argmax(axis=-1).tolist()


if __name__ == "__main__":
    raise SystemExit(main())
