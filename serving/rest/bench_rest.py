"""Before/after benchmark of the REST path: a git revision's server against the working tree's, side by side.

``python -m serving.rest.bench_rest --before REV [--rounds N] [--seconds S] [--profile DIR]`` exports ``REV``
with ``git archive`` to a temporary directory, starts ``python -m serving`` from there and from this tree on
the same two ONNX models, and drives both with ``wrk`` in interleaved rounds (so load on a shared machine
hits both alike). It prints per workload the median req/s and p50/p99 of the rounds, and new/old ratios.

Workloads: the digits MLP shape (64 -> 64 -> 10, random weights) at batch 1, c1; and a model taking
MobileNetV2's 96x96x3 input (global average pool + a 3 -> 1000 dense layer + softmax: the model is cheap
on purpose, so the figures isolate the REST path) with a 129 kB JSON body, c16. With ``--profile``, py-spy
samples each server during one extra round of each workload and writes collapsed stacks plus a summary of
where the samples fall (``py-spy`` must be installed; it needs ptrace rights).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
_LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = io.open("{body}"):read("*a")\n'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _save(graph, version_dir: Path) -> None:
    from onnx import helper, save

    version_dir.mkdir(parents=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(version_dir / "model.onnx"))


def _dense(name: str, rows: int, cols: int, rng: np.random.Generator):
    from onnx import numpy_helper

    return numpy_helper.from_array((rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32), name)


def build_models(root: Path) -> Path:
    """Both models under ``root`` and a models.config naming them ``mlp`` and ``image``."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    mlp = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["logits"]), helper.make_node("Softmax", ["logits"], ["y"], axis=1)],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        initializer=[_dense("w1", 64, 64, rng), _dense("w2", 64, 10, rng)])
    image = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[1, 2], keepdims=0),
         helper.make_node("MatMul", ["pooled", "w"], ["logits"]), helper.make_node("Softmax", ["logits"], ["y"], axis=1)],
        "image", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 96, 96, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1000])],
        initializer=[_dense("w", 3, 1000, rng)])
    _save(mlp, root / "mlp" / "1")
    _save(image, root / "image" / "1")
    config = root / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{n}" base_path: "{root / n}" model_platform: "onnxruntime" }}\n'
        for n in ("mlp", "image")) + "}\n")
    return config


def bodies(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    mlp = {"instances": rng.integers(0, 17, (1, 64)).astype(float).tolist()}
    image = {"instances": rng.uniform(0, 1, (1, 96, 96, 3)).round(2).tolist()}  # ~130 kB, as in issue 11
    out = {}
    for name, body in (("mlp", mlp), ("image", image)):
        path = root / f"{name}.json"
        path.write_bytes(json.dumps(body, separators=(",", ":")).encode())
        out[name] = path
    return out


def start(tree: Path, config: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(tree), SERVING_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving", f"--port={_free_port()}", f"--rest_api_port={port}",
         f"--model_config_file={config}", "--file_system_poll_wait_seconds=0"],
        cwd=tree, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/image", timeout=2):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server from {tree} exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)
    raise RuntimeError(f"server from {tree} did not come up")


_LAT = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(port: int, model: str, lua: Path, conns: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "30s", "--latency", "-s", str(lua),
         f"http://127.0.0.1:{port}/v1/models/{model}:predict"], capture_output=True, text=True, check=True).stdout
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {f"p{q}": float(v) * scale[u] for q, v, u in _LAT.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), **lat, "errors": float(errors)}


def _py_spy() -> str:
    """py-spy from the running interpreter's environment, else from PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else "py-spy"


def profile(pid: int, port: int, model: str, lua: Path, conns: int, seconds: float, out: Path) -> None:
    spy = subprocess.Popen([_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--duration",
                            str(int(seconds) + 1), "--nonblocking", "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    wrk(port, model, lua, conns, seconds)
    spy.wait(timeout=seconds + 60)


_PHASES = {  # where a sample is, by the frames on its stack (py-spy --format raw: "f1;f2;... count")
    "JSON decode": r"\bloads \(",
    "tensor decode": r"decode_predict_request|json_to_ndarray",
    "model call": r"Session\.run|\bpredict \(serving/backends",
    "JSON encode": r"encode_predict_response|dumps|tf_float32_as_double",
    "thread hand-off": r"Deadline\.call|Future\.result|_chain_future|_call_set_state",
    "HTTP read/write": r"readline|read_body|parse_request|send_header|_reply|_write \(serving|data_received",
}


def summarize(collapsed: Path, top: int = 5) -> str:
    """Share of samples per phase and the busiest leaf frames of a py-spy raw profile."""
    total, phases, leaves = 0, dict.fromkeys(_PHASES, 0), {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        for phase, pattern in _PHASES.items():
            if re.search(pattern, stack):
                phases[phase] += n
        leaf = stack.split(";")[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
    if not total:
        return f"{collapsed.name}: no samples"
    lines = [f"{collapsed.stem}: {total} samples; " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in phases.items())]
    for leaf, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {100 * n / total:4.0f}%  {leaf[:100]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_rest_"))
    old_tree = work / "before"
    old_tree.mkdir()
    archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
    config = build_models(work / "models")
    body = bodies(work)
    luas = {}
    for name, path in body.items():
        luas[name] = work / f"{name}.lua"
        luas[name].write_text(_LUA.format(body=path))
    servers = {}
    try:
        for tag, tree in (("old", old_tree), ("new", ROOT)):
            servers[tag] = start(tree, config, work / f"{tag}.log")
        workloads = (("mlp", 1), ("image", 16))
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _, port in servers.values():  # warm-up
            for model, conns in workloads:
                wrk(port, model, luas[model], conns, 1)
        for _ in range(args.rounds):
            for model, conns in workloads:
                for tag, (_, port) in servers.items():
                    results.setdefault((model, tag), []).append(wrk(port, model, luas[model], conns, args.seconds))
        print(f"{args.rounds} interleaved rounds of {args.seconds:g} s, wrk -t1; medians of the rounds; "
              f"image body {body['image'].stat().st_size} bytes, mlp body {body['mlp'].stat().st_size} bytes")
        print(f"{'workload':14} {'server':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
        for model, conns in workloads:
            med = {}
            for tag in servers:
                rows = results[(model, tag)]
                med[tag] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
                m = med[tag]
                print(f"{model + f' c{conns}':14} {tag:6} {m['rps']:9.1f} {m['p50']:8.2f} {m['p99']:8.2f} "
                      f"{m['errors']:6.0f}")
            print(f"{'':14} {'new/old':6} {med['new']['rps'] / med['old']['rps']:9.2f} "
                  f"{med['new']['p50'] / med['old']['p50']:8.2f} {med['new']['p99'] / med['old']['p99']:8.2f}")
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for model, conns in workloads:
                for tag, (proc, port) in servers.items():
                    time.sleep(10)  # let requests wrk left behind finish, so they do not show in this profile
                    out = args.profile / f"{tag}-{model}.txt"
                    profile(proc.pid, port, model, luas[model], conns, args.seconds, out)
                    if out.exists():
                        print(summarize(out))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
