"""Process wiring for ``python -m serving``: config -> manager -> DataPlane -> gRPC + REST, and shutdown.

Start-up follows tensorflow_model_server: load the initial models first (a model whose versions all fail to
load fails start-up), then open the gRPC port, then the REST port, logging TF Serving's readiness lines
``Running gRPC ModelServer at HOST:PORT ...`` and ``Exporting HTTP/REST API at:HOST:PORT ...``. SIGTERM/SIGINT
stop accepting, let in-flight requests finish, and unload every version.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from .cli import ServerOptions, UsageError, parse_args, wants_version
from .dataplane import DataPlane
from .errors import ServingError
from .manager import ModelManager
from .model_config import ConfigError, ModelServerConfig, load_config_file, single_model_config
from .monitoring import Metrics, MonitoringSettings
from .poller import Poller
from .quiet import import_tensorflow_quietly
from .registry import Registry
from .unix_socket import claim  # standard library only (serving.grpc would import TensorFlow)
from .workers import CONTROL_ENV, Supervisor, startup_configs

log = logging.getLogger("serving")
VERSION = "2.21.0-local"


class StartupError(RuntimeError):
    """The server cannot start (bad config file, models that did not load, port taken...)."""


def _config_source(opts: ServerOptions) -> tuple[ModelServerConfig, Callable[[], ModelServerConfig] | None]:
    if opts.model_config_file:
        return load_config_file(opts.model_config_file), (lambda: load_config_file(opts.model_config_file))
    return single_model_config(opts.model_name, opts.model_base_path), None


def _side_configs(opts: ServerOptions):
    """Batching wrapper, monitoring settings and SSL config from their files (serving.configfiles)."""
    from . import configfiles

    for flag in ("batching_parameters_file", "monitoring_config_file", "ssl_config_file"):
        path = getattr(opts, flag)
        if path and not os.path.isfile(path):
            raise StartupError(f"--{flag}: file not found: {path}")
    try:
        ssl = configfiles.load_ssl_config(opts.ssl_config_file) if opts.ssl_config_file else None
        monitoring = configfiles.load_monitoring_config(opts.monitoring_config_file) \
            if opts.monitoring_config_file else None
        batching = configfiles.load_batching_parameters(opts.batching_parameters_file) \
            if opts.batching_parameters_file else None
    except configfiles.ConfigFileError as exc:
        raise StartupError(str(exc)) from exc
    return ssl, monitoring, batching


def _check_socket_path(path: str) -> None:
    """A taken ``--grpc_socket_path`` fails start-up before minutes of model loading, not after."""
    if not path:
        return
    try:
        claim(path)
    except OSError as exc:
        raise StartupError(str(exc)) from exc


def _batching_wrapper(opts: ServerOptions, params, metrics: Metrics):
    """The hook for ``--enable_batching``: ``serving.batching.make_backend_wrapper`` wraps each loaded backend,
    work-conserving (with the ``Arrivals`` the DataPlane counts) unless ``--batching_strict_timeout``."""
    if not opts.enable_batching:
        return None
    from .batching import Arrivals, make_backend_wrapper

    return make_backend_wrapper(params, metrics, None if opts.batching_strict_timeout else Arrivals())


def grpc_threads(opts: ServerOptions, params) -> int:
    """gRPC handler threads: ``--grpc_max_threads``, else TF Serving's 4 x cores, plus, with batching, room for
    the requests that fill the batches.

    A synchronous gRPC handler holds its thread while its request waits in a batch, so with 4 x cores threads
    at most 4 x cores requests can ever be merged. With ``--enable_batching`` the default adds one batch per
    batch thread and one being filled (capped: threads are cheap while waiting, not free).
    """
    from .backends.base import usable_cores

    if opts.grpc_max_threads:
        return opts.grpc_max_threads
    base = 4 * usable_cores()
    if not opts.enable_batching:
        return base
    from .batching import default_parameters

    params = params or default_parameters()
    return base + min(512, params.max_batch_size * (params.num_batch_threads + 1))


class ModelServer:
    """The whole server in one object (tests and tools may run it in-process)."""

    def __init__(self, options: ServerOptions) -> None:
        from .workers import WorkerLink

        self.options = options
        self.link = WorkerLink.from_env()  # set in a --num_workers worker process
        self.metrics = Metrics()
        self.registry = Registry()
        self.grpc = None
        self.rest = None
        self.manager: ModelManager | None = None
        self.poller: Poller | None = None
        self.dataplane: DataPlane | None = None

    def start(self) -> None:
        opts = self.options
        try:
            config, reloader = _config_source(opts)
        except ConfigError as exc:
            raise StartupError(str(exc)) from exc
        ssl, monitoring, batching = _side_configs(opts)
        # One UNIX socket cannot be shared like a port: with --num_workers, worker 0 serves it.
        self._socket_path = opts.grpc_socket_path if self.link is None or self.link.index == 0 else ""
        _check_socket_path(self._socket_path)
        # TensorFlow comes in with the first import of tensorflow_serving.apis (the gRPC adapter) or a TF model:
        # import it here, once, with its CPU-only start-up noise filtered (after the checks that need no TF).
        import_tensorflow_quietly()
        opts = replace(opts, backend_wrapper=opts.backend_wrapper or _batching_wrapper(opts, batching, self.metrics))
        self._grpc_threads = grpc_threads(opts, batching)
        then = None
        if self.link is not None:  # a worker: start from the config every worker runs now
            joined = self.link.join()
            if joined is not None:
                config, then = startup_configs(joined)
        self.manager = ModelManager(opts, self.registry, metrics=self.metrics)
        self.dataplane = DataPlane(self.registry, self.manager, self.metrics,
                                   arrivals=getattr(opts.backend_wrapper, "arrivals", None))
        try:
            self.manager.reload_config(config, first=True)
            if then is not None:
                self.manager.reload_config(then)
        except ServingError as exc:
            raise StartupError(f"Failed to start server. Error: {exc.code.name}: {exc.message}") from exc
        # Everything allocated so far (TensorFlow's and ONNX Runtime's module state, the loaded models: ~400k
        # objects) lives for the whole process: move it out of the cyclic GC's generations, or every gen-2
        # collection triggered while a request body is decoded into lists and floats walks all of it again
        # (measured: orjson.loads of a 154 kB body 17 ms -> 2 ms). See docs/perf/rest.md.
        gc.freeze()
        self._start_grpc(ssl)
        self._start_rest(monitoring)
        if self.link is not None:  # the supervisor runs the polls and every reload, on every worker at once
            self.dataplane.reloader = self.link.reload
            self.link.serve(self.manager.reload_config, self.manager.sync, lambda: os.kill(os.getpid(), signal.SIGTERM))
        else:
            self.poller = Poller(self.manager, fs_every=opts.file_system_poll_wait_seconds,
                                 config_every=opts.model_config_file_poll_wait_seconds, config_loader=reloader)
            self.poller.start()
        self.dataplane.set_ready()
        self.grpc.mark_serving()

    def _start_grpc(self, ssl) -> None:
        from .grpc import GrpcServer

        opts = self.options
        # Workers share the port (SO_REUSEPORT); the kernel spreads new connections over them.
        self.grpc = GrpcServer(self.dataplane, opts.host, opts.port, max_threads=self._grpc_threads,
                               ssl_config=ssl, channel_arguments=opts.grpc_channel_arguments,
                               socket_path=self._socket_path,
                               health_check=opts.enable_grpc_healthcheck_service,
                               reuse_port=self.link is not None)
        try:
            port = self.grpc.start()
        except (OSError, ValueError) as exc:
            raise StartupError(str(exc)) from exc
        log.info("Running gRPC ModelServer at %s:%d ...", opts.host, port)
        if self._socket_path:
            log.info("Running gRPC ModelServer at UNIX socket %s ...", self._socket_path)

    def _start_rest(self, monitoring) -> None:
        opts = self.options
        settings = None
        if monitoring is not None and monitoring.prometheus_config.enable:
            settings = MonitoringSettings(monitoring.prometheus_config.path, self.metrics)
        if not opts.rest_api_port:
            if settings is not None:
                log.warning("--monitoring_config_file: Prometheus metrics need the REST port (--rest_api_port)")
            return
        from .rest import RestServer

        timeout = opts.rest_api_timeout_in_ms if opts.rest_api_timeout_in_ms > 0 else None
        self.rest = RestServer(self.dataplane, opts.host, opts.rest_api_port, timeout_ms=timeout, monitoring=settings,
                               max_body_bytes=opts.rest_api_max_body_bytes, num_threads=opts.rest_api_num_threads,
                               reuse_port=self.link is not None)
        try:
            self.rest.start()
        except OSError as exc:
            raise StartupError(f"Could not bind the REST server to {opts.host}:{opts.rest_api_port}: {exc}") from exc
        log.info("Exporting HTTP/REST API at:%s:%d ...", opts.host, self.rest.port)

    def stop(self, grace: float = 10.0) -> None:
        """Graceful: health NOT_SERVING, refuse new work, finish in-flight requests, unload every version."""
        if self.grpc is not None:
            self.grpc.drain()
        if self.dataplane is not None:
            self.dataplane.begin_shutdown()
        if self.rest is not None:
            self.rest.stop(grace)
        if self.grpc is not None:
            self.grpc.stop(grace)
        if self.poller is not None:
            self.poller.stop()
        if self.manager is not None:
            self.manager.stop()
        if self.link is not None:
            self.link.close()


def _configure_logging() -> None:
    from .monitoring import WORKER_ENV

    worker = os.environ.get(WORKER_ENV)
    logging.basicConfig(
        level=os.environ.get("SERVING_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname).1s %(name)s" + (f" worker-{worker}" if worker else "") + "] %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m serving``; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_version(argv):
        print(f"TensorFlow ModelServer: {VERSION}")
        return 0
    _configure_logging()
    try:
        options = parse_args(argv)
    except UsageError as exc:
        print(f"python -m serving: error: {exc}\n(run python -m serving --help for the flags)", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if options.num_workers > 1 and not os.environ.get(CONTROL_ENV):
        return _supervise(argv, options, stop)
    server = ModelServer(options)
    try:
        server.start()
    except StartupError as exc:
        log.error("%s", exc)
        server.stop(grace=0)
        return 1
    # Wake up regularly: with TF and gRPC threads around, the kernel may deliver SIGTERM to another thread, and
    # Python runs its handler only when the main thread next executes bytecode (a bare wait() could sleep on).
    while not stop.wait(0.2):
        pass
    log.info("Shutting down")
    server.stop()
    return 0


def _supervise(argv: list[str], options: ServerOptions, stop: threading.Event) -> int:
    """``--num_workers=N`` (N > 1): this process supervises N worker processes (``serving.workers``)."""
    try:
        config, reloader = _config_source(options)
        _side_configs(options)  # the same start-up errors as one process, before any worker starts
    except (ConfigError, StartupError) as exc:
        log.error("%s", exc)
        return 1
    return Supervisor(argv, options, config, reloader).run(stop)
