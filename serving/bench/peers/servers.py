"""Every server of ``make bench-peers``, started side by side on free loopback ports, each serving all the
workloads' ``model.onnx`` files with the same ONNX Runtime session options as our ORT backend.

* ours: ``python -m serving`` (``serving.process.ServingProcess``), ORT backend, batching off and on, and with
  ``--num_workers=2`` when the server has that flag (read from ``python -m serving --help``).
* KServe (V1 REST), MLServer (V2 REST; adaptive batching off and on as two models in one server): their own
  servers in their own venvs, with the minimal runtimes in ``runtimes/``.
* floors: ``ThreadingHTTPServer``, raw asyncio HTTP, bare sync grpc, each doing only the JSON/proto + ORT work.

Readiness is one successful predict per model (probed, never slept for).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...process import ServingProcess
from ..loadgen import PREDICT
from ..servers import free_port
from ..workload import BATCHING_CONFIG
from .workloads import Workload

LOOPBACK = "127.0.0.1"
RUNTIMES = Path(__file__).resolve().parent / "runtimes"
PEER_VENVS = Path(os.environ.get("PEERS_VENV") or "build/peers-venv")  # make bench-peers PEERS_VENV=
V2_INFER = "/inference.GRPCInferenceService/ModelInfer"
MLSERVER_BATCH = {"max_batch_size": 32, "max_batch_time": 0.001}  # the same as our batching config


def ort_options() -> dict:
    """Our ORT backend's session options (``session_options()`` with its defaults), as the runtimes' JSON."""
    from ...backends.onnxruntime import session_options

    opts = session_options()
    config = {}
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        try:
            value = opts.get_session_config_entry(key)
        except Exception:  # noqa: BLE001 - an entry that was never set
            continue
        if value:
            config[key] = value
    return {"intra_op_num_threads": opts.intra_op_num_threads, "inter_op_num_threads": opts.inter_op_num_threads,
            "execution_mode": opts.execution_mode.name, "graph_optimization_level": opts.graph_optimization_level.name,
            "config": config}


def server_flags() -> set[str]:
    """The ``--flags`` ``python -m serving --help`` lists (to pass ``--num_workers`` only where it exists)."""
    proc = subprocess.run([sys.executable, "-m", "serving", "--help"], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[3])
    return {word.split("=")[0].strip("[],") for word in proc.stdout.split() if word.startswith("--")}


@dataclass
class Launched:
    """One running server: its process, ports, and how each workload is addressed on it."""

    name: str
    process: subprocess.Popen
    log: Path
    rest_port: int | None = None
    grpc_port: int | None = None
    v2: bool = False  # REST speaks the V2 protocol (MLServer)
    model_suffix: str = ""  # MLServer's batched twin of each model
    stop_fn: Callable[[], object] | None = None
    shares_process: bool = False  # a second view of another entry's process (stopped once, by that entry)
    v2_grpc: Callable[[str, Workload], bytes] | None = None  # V2 ModelInferRequest bytes for a model name

    @property
    def grpc_method(self) -> str:
        return V2_INFER if self.v2_grpc else PREDICT

    def grpc_request(self, w: Workload) -> bytes:
        return self.v2_grpc(w.name + self.model_suffix, w) if self.v2_grpc else w.grpc_request()

    def rest_path(self, w: Workload) -> str:
        name = w.name + self.model_suffix
        return f"/v2/models/{name}/infer" if self.v2 else f"/v1/models/{name}:predict"

    def body(self, w: Workload) -> bytes:
        return w.v2_body() if self.v2 else w.v1_body()

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's processes (its workers included)."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.shares_process:
            return
        if self.stop_fn is not None:
            self.stop_fn()
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn(name: str, cmd: list[str], work: Path, cwd: Path = RUNTIMES, env: dict | None = None) -> tuple:
    import os

    log = work / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "PYTHONPATH": str(RUNTIMES), "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def _model_args(workloads: list[Workload]) -> list[str]:
    return [arg for w in workloads for arg in ("--model", f"{w.name}={w.onnx}")]


# ---------------------------------------------------------------------------------------------- ours
def ours(name: str, workloads: list[Workload], work: Path, batching: bool, workers: int,
         extra_args: list[str] | None = None) -> Launched:
    """``python -m serving`` with every workload on the ORT backend; ``extra_args``: more server flags."""
    config = work / f"{name}.models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{w.name}" base_path: "{w.base_path.resolve()}" model_platform: "onnxruntime" }}\n'
        for w in workloads) + "}\n", encoding="utf-8")
    grpc_port, rest_port = free_port(), free_port()
    args = ["--host", LOOPBACK, "--port", str(grpc_port), "--rest_api_port", str(rest_port),
            f"--model_config_file={config}"]
    if batching:
        batching_file = work / "batching.config"
        batching_file.write_text(BATCHING_CONFIG, encoding="utf-8")
        args += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
    if workers > 1:
        args.append(f"--num_workers={workers}")
    server = ServingProcess([*args, *(extra_args or [])])
    log = work / "logs" / f"{name}.log"

    def stop() -> None:  # the launcher logs to a temp file: keep it with the other servers' logs
        server.stop()
        log.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(server.log_path, log)

    return Launched(name, server.process, server.log_path, rest_port, grpc_port, stop_fn=stop)


# ---------------------------------------------------------------------------------------------- peers
def peer_python(peer: str) -> Path:
    return PEER_VENVS / peer / "bin" / "python"


def kserve(workloads: list[Workload], work: Path, options: dict) -> Launched:
    port = free_port()
    proc, log = _spawn("kserve", [str(peer_python("kserve").absolute()), str(RUNTIMES / "kserve_v1.py"),
                                  "--port", str(port), *_model_args(workloads), "--ort-options", json.dumps(options)],
                       work)
    return Launched("kserve", proc, log, rest_port=port)


def mlserver(workloads: list[Workload], work: Path, options: dict) -> list[Launched]:
    """One MLServer (its defaults: ``parallel_workers`` 1) with each model twice: plain and adaptive batching."""
    root = work / "mlserver"
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(json.dumps({
        "http_port": http, "grpc_port": grpc_port, "metrics_port": metrics, "host": LOOPBACK,
        "load_models_at_startup": True}), encoding="utf-8")
    for w in workloads:
        for suffix, batch in (("", {}), ("-batched", MLSERVER_BATCH)):
            folder = root / f"{w.name}{suffix}"
            folder.mkdir(exist_ok=True)
            (folder / "model-settings.json").write_text(json.dumps({
                "name": w.name + suffix, "implementation": "mlserver_runtime.OnnxRuntimeModel",
                "parameters": {"uri": str(w.onnx.resolve()), "extra": {"ort_options": options}}, **batch}),
                encoding="utf-8")
    mlserver_bin = PEER_VENVS / "mlserver" / "bin" / "mlserver"
    proc, log = _spawn("mlserver", [str(mlserver_bin.absolute()), "start", str(root.resolve())], work)
    requests = _V2Requests(root / "requests")
    plain = Launched("mlserver", proc, log, rest_port=http, grpc_port=grpc_port, v2=True, v2_grpc=requests.get)
    batched = Launched("mlserver+batching", proc, log, rest_port=http, grpc_port=grpc_port, v2=True,
                       model_suffix="-batched", shares_process=True, v2_grpc=requests.get)
    return [plain, batched]


class _V2Requests:
    """Serialized V2 ``ModelInferRequest`` per model name, written once by MLServer's own protos (a helper run
    in its venv) and cached: this interpreter has no V2 protos, and the loop sends bytes anyway."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cache: dict[str, bytes] = {}

    def get(self, model: str, w: Workload) -> bytes:
        if model not in self.cache:
            import numpy as np

            self.folder.mkdir(parents=True, exist_ok=True)
            npy, out = self.folder / f"{model}.npy", self.folder / f"{model}.pb"
            np.save(npy, w.x)
            subprocess.run([str(peer_python("mlserver").absolute()), str(RUNTIMES / "v2_grpc_request.py"),
                            "--out", str(out), "--model", model, "--input-name", w.input_name, "--npy", str(npy)],
                           check=True, cwd=RUNTIMES, capture_output=True)
            self.cache[model] = out.read_bytes()
        return self.cache[model]


# ---------------------------------------------------------------------------------------------- floors
def floor(kind: str, workloads: list[Workload], work: Path, options: dict) -> Launched:
    """``threading`` / ``asyncio`` (REST) or ``grpc``, run by this interpreter (it has grpcio and TF's protos)."""
    port = free_port()
    proc, log = _spawn(f"floor-{kind}", [sys.executable, str(RUNTIMES / f"floor_{kind}.py"), "--port", str(port),
                                         *_model_args(workloads), "--ort-options", json.dumps(options)], work)
    if kind == "grpc":
        return Launched("floor-grpc", proc, log, grpc_port=port)
    return Launched(f"floor-{kind}", proc, log, rest_port=port)


# ---------------------------------------------------------------------------------------------- readiness
def _rest_ok(server: Launched, w: Workload) -> bool:
    url = f"http://{LOOPBACK}:{server.rest_port}{server.rest_path(w)}"
    try:
        request = urllib.request.Request(url, server.body(w), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def grpc_check(server: Launched, w: Workload, timeout: float = 30) -> tuple[int, str]:
    """One real grpcio call of the workload: (size of the answer's message, "") when it succeeds, (0, "CODE:
    details") when it fails. h2load cannot read a call's grpc-status, so this is made before every point."""
    import grpc

    with grpc.insecure_channel(f"{LOOPBACK}:{server.grpc_port}", options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]) as channel:
        call = channel.unary_unary(server.grpc_method)  # no (de)serializers: bytes in, bytes out
        try:
            answer = call(server.grpc_request(w), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            return 0, f"{code.name if code else 'error'}: {exc.details() if hasattr(exc, 'details') else exc}"
    return len(answer), ""


def _grpc_ok(server: Launched, w: Workload) -> bool:
    return not grpc_check(server, w)[1]


class StartError(RuntimeError):
    pass


def wait_ready(servers: list[Launched], workloads: list[Workload], timeout: float, say) -> None:
    """Until every server answered a predict for every workload on each of its protocols."""
    pending = {(s.name, w.name) for s in servers for w in workloads}
    deadline = time.monotonic() + timeout
    while pending:
        for s in servers:
            if s.process.poll() is not None:
                tail = s.log.read_text(errors="replace")[-3000:] if s.log.exists() else ""
                raise StartError(f"{s.name} exited with status {s.process.returncode}; its log ({s.log}) ends:\n{tail}")
            for w in workloads:
                if (s.name, w.name) not in pending:
                    continue
                ok = (s.rest_port is None or _rest_ok(s, w)) and (s.grpc_port is None or _grpc_ok(s, w))
                if ok:
                    pending.discard((s.name, w.name))
                    if not any(key[0] == s.name for key in pending):
                        say(f"{s.name} is answering every model")
        if time.monotonic() > deadline:
            raise StartError(f"not ready after {timeout:.0f} s: {sorted(pending)} (logs under {servers[0].log.parent})")
        time.sleep(0.5)  # a probe interval, not a wait for readiness
