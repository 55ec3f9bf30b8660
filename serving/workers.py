"""``--num_workers=N``: N server processes on one gRPC and one REST port, kept consistent by a supervisor.

Python runs one request's protocol work at a time per process (the GIL), so a second core is only used by a
second process. The parent process becomes a supervisor that serves no requests itself:

* **Ports.** It reserves the ports (binding, never listening, a socket with ``SO_REUSEPORT``; port 0 picks a
  free one) and starts N ``python -m serving`` workers with the same flags and the resolved ports. Each
  worker listens with ``SO_REUSEPORT`` (gRPC's ``grpc.so_reuseport``, the REST server's ``reuse_port``), so
  the kernel spreads new connections over the workers. Each worker has its own model manager and its own
  copy of every model; intra-op threads default to cores // N (``backends.base.cpu_share``).
* **One control channel.** Each worker holds a connection to the supervisor's Unix socket (JSON lines). The
  supervisor owns the clocks TF Serving's poller has: it re-reads ``--model_config_file`` and tells every
  worker to rescan its base paths (``sync``), so no worker polls on its own and all of them see a new version
  in the same pass. A ``HandleReloadConfigRequest`` reaching any worker is forwarded to the supervisor, which
  applies it on every worker and answers only once every worker has acknowledged: when the RPC returns, every
  connection sees the new config and labels. Commands run one at a time, in order, on every worker.
* **Restarts.** A worker that dies is logged and started again; on joining it receives the current config
  (a reload applied through the API survives the restart) before it opens its ports. Its in-flight requests
  are lost with it (the kernel sends new connections to the live workers).
* **Metrics.** ``PROMETHEUS_MULTIPROC_DIR`` points the workers' ``prometheus_client`` at one directory, so
  any worker's scrape shows the sum over all workers (``serving.monitoring``).
* **Shutdown.** SIGTERM/SIGINT to the supervisor is passed to every worker, which drains as a single server
  does (refuse new work, finish in-flight requests, unload); the supervisor exits when they all have.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .model_config import ModelServerConfig
from .monitoring import MULTIPROC_ENV, WORKER_ENV
from .poller import changed_config

log = logging.getLogger("serving.workers")

CONTROL_ENV = "SERVING_CONTROL_SOCKET"
RESTART_DELAY_S = 0.5  # doubled for each start that dies within STABLE_AFTER_S, up to MAX_RESTART_DELAY_S
MAX_RESTART_DELAY_S = 30.0
STABLE_AFTER_S = 10.0
STOP_GRACE_S = 30.0


# ---------------------------------------------------------------------------- wire
def _send(wfile, lock: threading.Lock, message: dict[str, Any]) -> None:
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
    with lock:
        wfile.write(data)
        wfile.flush()


def _receive(rfile) -> dict[str, Any] | None:
    line = rfile.readline()
    return json.loads(line) if line else None


def _config_field(config: ModelServerConfig) -> str:
    return base64.b64encode(config.SerializeToString()).decode("ascii")


def _config_of(text: str) -> ModelServerConfig:
    config = ModelServerConfig()
    config.ParseFromString(base64.b64decode(text))
    return config


def _error_reply(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.ServingError):
        return {"ok": False, "code": exc.code.name, "message": exc.message}
    return {"ok": False, "code": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"}


def error_from_reply(reply: dict[str, Any]) -> errors.ServingError:
    """The ``ServingError`` subclass a worker's reply names (the same code and message as in one process)."""
    code = errors.StatusCode[reply.get("code", "UNKNOWN")]
    for cls in errors.ServingError.__subclasses__():
        if cls.code == code:
            return cls(reply.get("message", ""))
    exc = errors.ServingError(reply.get("message", ""))
    exc.code = code
    return exc


# ---------------------------------------------------------------------------- worker side
def startup_configs(config: ModelServerConfig) -> tuple[ModelServerConfig, ModelServerConfig | None]:
    """How a (re)started worker reaches ``config``: first without its labels (TF Serving refuses a label on a
    version not loaded yet), then, when it has labels, ``config`` itself, before the worker opens its ports."""
    bare = ModelServerConfig()
    bare.CopyFrom(config)
    for model in bare.model_config_list.config:
        model.ClearField("version_labels")
    return (bare, config) if bare != config else (config, None)


class WorkerLink:
    """A worker's end of the control channel (``from_env`` returns None outside ``--num_workers`` mode)."""

    def __init__(self, path: str, index: int) -> None:
        self.index = index
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._rfile = self._sock.makefile("rb")
        self._wfile = self._sock.makefile("wb")
        self._lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._next_id = 0
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls) -> WorkerLink | None:
        path = os.environ.get(CONTROL_ENV)
        return cls(path, int(os.environ.get(WORKER_ENV, "0"))) if path else None

    def join(self) -> ModelServerConfig | None:
        """Register with the supervisor; returns the config to start with when one was applied via the API."""
        _send(self._wfile, self._lock, {"op": "hello", "index": self.index, "pid": os.getpid()})
        welcome = _receive(self._rfile)
        if welcome is None:
            raise ConnectionError("the supervisor closed the control channel")
        return _config_of(welcome["config"]) if welcome.get("config") else None

    def serve(self, apply: Callable[[ModelServerConfig], None], sync: Callable[[], None],
              on_lost: Callable[[], None]) -> None:
        """Tell the supervisor this worker serves, then run its commands (in order) on a daemon thread."""
        self._thread = threading.Thread(target=self._loop, args=(apply, sync, on_lost), name="worker-control",
                                        daemon=True)
        self._thread.start()
        _send(self._wfile, self._lock, {"op": "ready"})

    def _loop(self, apply, sync, on_lost) -> None:
        while True:
            try:
                message = _receive(self._rfile)
            except (OSError, ValueError):
                message = None
            if message is None:
                for future in list(self._pending.values()):
                    future.set_exception(errors.Unavailable("Lost the worker supervisor"))
                on_lost()
                return
            op = message.get("op")
            if op == "reply":
                future = self._pending.pop(message["id"], None)
                if future is not None:
                    future.set_result(message)
                continue
            try:
                if op == "apply":
                    apply(_config_of(message["config"]))
                elif op == "sync":
                    sync()
                reply = {"ok": True}
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the supervisor as a status
                if not isinstance(exc, errors.ServingError):
                    log.exception("Worker %d: control command %s failed", self.index, op)
                reply = _error_reply(exc)
            _send(self._wfile, self._lock, {"op": "ack", "id": message["id"], **reply})

    def reload(self, config: ModelServerConfig) -> None:
        """``HandleReloadConfigRequest`` in a worker: applied by every worker before this returns."""
        future: Future = Future()
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            self._pending[request_id] = future
        _send(self._wfile, self._lock, {"op": "reload", "id": request_id, "config": _config_field(config)})
        reply = future.result()
        if not reply.get("ok"):
            raise error_from_reply(reply)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


# ---------------------------------------------------------------------------- supervisor side
@dataclass(eq=False)
class _Worker:
    index: int
    process: subprocess.Popen
    failures: int = 0  # consecutive starts that died within STABLE_AFTER_S
    started: float = field(default_factory=time.monotonic)
    died: float | None = None
    restart_at: float = 0.0
    conn: socket.socket | None = None
    wfile: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: threading.Event = field(default_factory=threading.Event)
    pending: dict[int, Future] = field(default_factory=dict)

    def fail_pending(self, why: str) -> None:
        for future in list(self.pending.values()):
            if not future.done():
                future.set_result({"ok": False, "code": "UNAVAILABLE", "message": why})
        self.pending.clear()


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (never listen) ``host:port`` with SO_REUSEPORT: holds the port for the workers, picks one for 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    """Starts, watches and commands the workers of ``--num_workers``; ``run`` returns the exit status."""

    def __init__(self, argv: Sequence[str], options, config: ModelServerConfig,
                 config_loader: Callable[[], ModelServerConfig] | None) -> None:
        self.argv = list(argv)
        self.options = options
        self._current = config  # what every worker runs (the file's, or the last one applied via the API)
        self._override: ModelServerConfig | None = None  # set once a reload came through the API
        self._config_loader = config_loader
        self._dir = tempfile.mkdtemp(prefix="serving-workers-")
        self._metrics_dir = os.path.join(self._dir, "metrics")
        os.mkdir(self._metrics_dir)
        self._control_path = os.path.join(self._dir, "control.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self._control_path)
        self._listener.listen(64)
        self._workers: dict[int, _Worker] = {}
        self._by_pid: dict[int, _Worker] = {}
        self._state = threading.Lock()
        self._commands = threading.Lock()  # one broadcast at a time, in order, on every worker
        self._next_id = 0
        self._stopping = threading.Event()
        self._reserved: list[socket.socket] = []
        self.grpc_port = 0
        self.rest_port = 0

    # -- lifecycle
    def run(self, stop: threading.Event) -> int:
        opts = self.options
        try:
            self._reserve_ports()
        except OSError as exc:
            log.error("Could not reserve the server ports: %s", exc)
            self._cleanup()
            return 1
        threading.Thread(target=self._accept_loop, name="supervisor-accept", daemon=True).start()
        for index in range(opts.num_workers):
            self._spawn(index)
        if not self._wait_initial(stop):
            self._stop_workers(grace=0)
            self._cleanup()
            return 1
        log.info("Running gRPC ModelServer at %s:%d ... (%d workers)", opts.host, self.grpc_port, opts.num_workers)
        if self.rest_port:
            log.info("Exporting HTTP/REST API at:%s:%d ... (%d workers)", opts.host, self.rest_port,
                     opts.num_workers)
        self._watch(stop)
        log.info("Shutting down %d workers", len(self._workers))
        self._stop_workers(grace=STOP_GRACE_S)
        self._cleanup()
        return 0

    def _reserve_ports(self) -> None:
        opts = self.options
        grpc_sock = reserve_port(opts.host, opts.port)
        self._reserved.append(grpc_sock)
        self.grpc_port = grpc_sock.getsockname()[1]
        if opts.rest_api_port:
            rest_sock = reserve_port(opts.host, opts.rest_api_port)
            self._reserved.append(rest_sock)
            self.rest_port = rest_sock.getsockname()[1]

    def _spawn(self, index: int, failures: int = 0) -> None:
        env = dict(os.environ)
        env.update({CONTROL_ENV: self._control_path, WORKER_ENV: str(index), MULTIPROC_ENV: self._metrics_dir})
        args = [*self.argv, f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}"]
        process = subprocess.Popen([sys.executable, "-m", "serving", *args], env=env)
        worker = _Worker(index, process, failures)
        with self._state:
            self._workers[index] = worker
            self._by_pid[process.pid] = worker
        log.info("Started worker %d (pid %d)", index, process.pid)

    def _wait_initial(self, stop: threading.Event) -> bool:
        """Every worker loaded the initial models and opened its ports (True), or one failed or we were told
        to stop (False)."""
        while not stop.is_set():
            workers = list(self._workers.values())
            failed = [w for w in workers if w.process.poll() is not None]
            if failed:
                log.error("Worker %d exited with status %s during start-up; stopping", failed[0].index,
                          failed[0].process.returncode)
                return False
            if all(w.ready.is_set() for w in workers):
                return True
            time.sleep(0.05)
        return False

    def _watch(self, stop: threading.Event) -> None:
        """Until told to stop: restart dead workers, run the config and file-system polls on TF Serving's clocks."""
        opts = self.options
        fs_every = max(0, opts.file_system_poll_wait_seconds)
        cfg_every = max(0, opts.model_config_file_poll_wait_seconds) if self._config_loader else 0
        now = time.monotonic()
        next_fs = now + fs_every if fs_every else float("inf")
        next_cfg = now + cfg_every if cfg_every else float("inf")
        while not stop.wait(0.2):
            self._restart_dead()
            now = time.monotonic()
            if now >= next_cfg:
                self._poll_config()
                next_cfg = time.monotonic() + cfg_every
            if now >= next_fs:
                self._broadcast({"op": "sync"}, starting=False)  # a starting worker scans when it loads
                next_fs = time.monotonic() + fs_every

    def _restart_dead(self) -> None:
        """Start a dead worker again; one that keeps dying soon after its start waits longer each time."""
        now = time.monotonic()
        for worker in list(self._workers.values()):
            status = worker.process.poll()
            if status is None or self._stopping.is_set():
                continue
            if worker.died is None:
                worker.died = now
                failures = worker.failures + 1 if now - worker.started < STABLE_AFTER_S else 0
                worker.failures = failures
                delay = min(MAX_RESTART_DELAY_S, RESTART_DELAY_S * 2 ** max(0, failures - 1))
                log.error("Worker %d (pid %d) exited with status %s; restarting it in %.1f s", worker.index,
                          worker.process.pid, status, delay)
                self._forget(worker)
                worker.restart_at = now + delay
            if now >= worker.restart_at:
                self._spawn(worker.index, worker.failures)

    def _forget(self, worker: _Worker) -> None:
        from prometheus_client import multiprocess

        with self._state:
            self._by_pid.pop(worker.process.pid, None)
        worker.fail_pending(f"worker {worker.index} exited")
        multiprocess.mark_process_dead(worker.process.pid, self._metrics_dir)
        if worker.conn is not None:
            worker.conn.close()

    def _stop_workers(self, grace: float) -> None:
        self._stopping.set()
        workers = list(self._workers.values())
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("Worker %d did not stop within %.0f s; killing it", worker.index, grace)
                worker.process.kill()
                worker.process.wait()

    def _cleanup(self) -> None:
        for sock in self._reserved:
            sock.close()
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- control channel
    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_worker, args=(conn,), name="supervisor-worker", daemon=True).start()

    def _serve_worker(self, conn: socket.socket) -> None:
        rfile, wfile = conn.makefile("rb"), conn.makefile("wb")
        try:
            hello = _receive(rfile)
        except (OSError, ValueError):
            hello = None
        with self._state:
            worker = self._by_pid.get(hello["pid"]) if hello else None
        if worker is None:
            conn.close()
            return
        # Joining under the command lock: the worker starts from the config every other worker runs now, and
        # every later command reaches it too.
        with self._commands:
            worker.conn, worker.wfile = conn, wfile
            config = _config_field(self._override) if self._override is not None else None
            _send(wfile, worker.lock, {"op": "welcome", "config": config})
        try:
            while (message := _receive(rfile)) is not None:
                self._on_message(worker, message)
        except (OSError, ValueError):
            pass
        worker.fail_pending(f"worker {worker.index} closed its control channel")

    def _on_message(self, worker: _Worker, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            worker.ready.set()
            log.info("Worker %d (pid %d) is serving", worker.index, worker.process.pid)
        elif op == "ack":
            future = worker.pending.pop(message["id"], None)
            if future is not None:
                future.set_result(message)
        elif op == "reload":  # a forwarded HandleReloadConfigRequest: broadcast off this reader thread
            threading.Thread(target=self._forwarded_reload, args=(worker, message), daemon=True).start()

    def _forwarded_reload(self, worker: _Worker, message: dict[str, Any]) -> None:
        reply = self._apply(_config_of(message["config"]))
        try:
            _send(worker.wfile, worker.lock, {**reply, "op": "reply", "id": message["id"]})
        except OSError:
            log.warning("Worker %d left before its reload was answered", worker.index)

    def _apply(self, config: ModelServerConfig) -> dict[str, Any]:
        """Apply ``config`` on every worker; the reply is OK only when every worker applied it."""
        with self._commands:
            replies = self._broadcast_locked({"op": "apply", "config": _config_field(config)})
            applied = [r for r in replies if r.get("ok")]
            if applied:
                self._current = self._override = config
            if applied and len(applied) < len(replies):
                log.error("Config reload applied by %d of %d workers: %s", len(applied), len(replies),
                          next(r for r in replies if not r.get("ok")).get("message"))
        failed = [r for r in replies if not r.get("ok")]
        if not failed:
            return {"ok": True}
        return {"ok": False, "code": failed[0].get("code", "UNKNOWN"), "message": failed[0].get("message", "")}

    def _poll_config(self) -> None:
        config = changed_config(self._config_loader, self._current)
        if config is None:
            return
        reply = self._apply(config)
        if reply.get("ok"):
            log.info("Reloaded the model config file on every worker")
        else:
            log.error("Model config reload failed (%s): %s", reply.get("code"), reply.get("message"))

    def _broadcast(self, message: dict[str, Any], *, starting: bool = True) -> list[dict[str, Any]]:
        with self._commands:
            return self._broadcast_locked(message, starting=starting)

    def _broadcast_locked(self, message: dict[str, Any], *, starting: bool = True) -> list[dict[str, Any]]:
        """Send ``message`` to every joined worker and wait for every answer. A worker still starting runs it
        once it serves (``starting``), or is skipped."""
        futures = []
        for worker in list(self._workers.values()):
            if worker.wfile is None or worker.process.poll() is not None:
                continue  # not joined yet (it will start from the current config) or gone
            if not starting and not worker.ready.is_set():
                continue
            self._next_id += 1
            future: Future = Future()
            worker.pending[self._next_id] = future
            try:
                _send(worker.wfile, worker.lock, {**message, "id": self._next_id})
            except OSError:
                worker.pending.pop(self._next_id, None)
                continue
            futures.append(future)
        return [f.result() for f in futures]
