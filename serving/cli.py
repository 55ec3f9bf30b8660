"""tensorflow_model_server's command line, parsed into one frozen ``ServerOptions``.

The flag names, defaults and meanings are TF Serving's (``tensorflow_serving/model_servers/main.cc``), so a
command line moves between this server and the real one unchanged. Each flag carries its support status here
(``supported``, ``ignored`` = accepted and logged, ``refused`` = a clear error), which is also what
``docs/tfserving-compat.md`` lists. Parsing happens only when ``parse_args`` is called, never at import.

Syntax as TF Serving's flag parser: ``--flag=value`` or ``--flag value``; booleans accept ``true/false/1/0``
(and a bare ``--flag`` means true). Unknown flags are an error.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

log = logging.getLogger("serving")

SUPPORTED, IGNORED, REFUSED = "supported", "ignored", "refused"


def parse_bool(text: str | bool) -> bool:
    """TF Serving's boolean flag values; anything else is an error (never Python truthiness)."""
    if isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false/1/0, got {text!r}")


@dataclass(frozen=True)
class Flag:
    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    status: str = SUPPORTED


FLAGS: tuple[Flag, ...] = (
    Flag("port", int, 8500, "TCP port for the gRPC API (0: pick a free port)."),
    Flag("rest_api_port", int, 0, "TCP port for the HTTP/REST API; 0 disables REST (TF Serving's default)."),
    Flag("host", str, "127.0.0.1", "Address to bind (not a TF Serving flag; it binds 0.0.0.0)."),
    Flag("rest_api_timeout_in_ms", int, 30000, "Timeout for one REST call, in milliseconds."),
    Flag("rest_api_max_body_bytes", int, 256 << 20,
         "Largest REST request body, before and after gzip decoding; 413 above it (not a TF Serving flag)."),
    Flag("rest_api_num_threads", int, 0, "REST worker threads for decode + model call + encode (0: 4 per core, at least 16)."),
    Flag("model_name", str, "default", "Name of the single model (without --model_config_file)."),
    Flag("model_base_path", str, "", "Base path of the single model (without --model_config_file)."),
    Flag("model_config_file", str, "", "ModelServerConfig text proto; exclusive with --model_base_path."),
    Flag("model_config_file_poll_wait_seconds", int, 0,
         "Re-read --model_config_file every N seconds (0: read once at start-up)."),
    Flag("file_system_poll_wait_seconds", int, 1,
         "Scan base paths for new versions every N seconds (0: scan once at start-up)."),
    Flag("allow_version_labels", parse_bool, True, "Allow version_labels in the config."),
    Flag("allow_version_labels_for_unavailable_models", parse_bool, False,
         "Allow a new label to point at a version that is not AVAILABLE yet."),
    Flag("enable_batching", parse_bool, False, "Batch concurrent requests per model version."),
    Flag("batching_parameters_file", str, "", "BatchingParameters text proto (with --enable_batching)."),
    Flag("batching_strict_timeout", parse_bool, False,
         "Extension (not a TF Serving flag): an open batch always waits for batch_timeout_micros, as TF "
         "Serving's scheduler does. Default: it runs at once when it holds every request of its model in "
         "flight (work-conserving), so a lone client never pays the timeout."),
    Flag("enable_per_model_batching_parameters", parse_bool, False,
         "Read batching_params.pbtxt from each version directory.", IGNORED),
    Flag("monitoring_config_file", str, "", "MonitoringConfig text proto (Prometheus endpoint on REST)."),
    Flag("ssl_config_file", str, "", "SSLConfig text proto: TLS for gRPC."),
    Flag("grpc_max_threads", int, 0, "Max threads serving gRPC calls (0: TF Serving's default of 4 x cores, "
         "plus enough to fill the batches with --enable_batching)."),
    Flag("grpc_channel_arguments", str, "", "Extra gRPC server arguments 'key=value,...'."),
    Flag("grpc_socket_path", str, "", "Also serve gRPC on this UNIX domain socket (clients: unix:PATH); "
         "removed on shutdown."),
    Flag("enable_grpc_healthcheck_service", parse_bool, False,
         "Serve the standard grpc.health.v1.Health service (SERVING once the models are loaded)."),
    Flag("max_num_load_retries", int, 5, "Retries of a failed version load."),
    Flag("load_retry_interval_micros", int, 60_000_000, "Wait between load retries, in microseconds."),
    Flag("num_load_threads", int, 0, "Threads loading versions (loads run one at a time here).", IGNORED),
    Flag("num_unload_threads", int, 0, "Threads unloading versions.", IGNORED),
    Flag("tensorflow_session_parallelism", int, 0, "Sets both intra- and inter-op threads when they are 0."),
    Flag("tensorflow_intra_op_parallelism", int, 0, "TensorFlow intra-op threads (0: TF's default)."),
    Flag("tensorflow_inter_op_parallelism", int, 0, "TensorFlow inter-op threads (0: TF's default)."),
    Flag("tensorflow_session_config_file", str, "", "SessionConfig text proto.", REFUSED),
    Flag("enable_model_warmup", parse_bool, True, "Replay assets.extra/tf_serving_warmup_requests on load."),
    Flag("num_request_iterations_for_warmup", int, 1, "Times each warmup record is replayed."),
    Flag("saved_model_tags", str, "serve", "MetaGraph tags to load (comma separated)."),
    Flag("platform_config_file", str, "", "PlatformConfigMap text proto.", REFUSED),
    Flag("per_process_gpu_memory_fraction", float, 0.0, "GPU memory fraction (CPU-only server).", IGNORED),
    Flag("flush_filesystem_caches", parse_bool, True, "Flush file system caches after loads.", IGNORED),
    Flag("remove_unused_fields_from_bundle_metagraph", parse_bool, True, "Trim the MetaGraph.", IGNORED),
    Flag("enable_signature_method_name_check", parse_bool, False,
         "Classify/Regress require signatures with the classify/regress method_name."),
    Flag("xla_cpu_compilation_enabled", parse_bool, False, "XLA on CPU.", IGNORED),
    Flag("enable_profiler", parse_bool, True, "TensorFlow profiler service.", IGNORED),
    Flag("use_alts_credentials", parse_bool, False, "ALTS credentials for gRPC.", REFUSED),
    Flag("prefer_tflite_model", parse_bool, False, "Serve model.tflite when present.", REFUSED),
    Flag("num_workers", int, 1, "Extension (not a TF Serving flag): N server processes share the gRPC and REST "
         "ports (SO_REUSEPORT), each with its own copy of the models; reloads, labels and metrics stay "
         "consistent across them. 1: one process, as TF Serving."),
)


@dataclass(frozen=True)
class ServerOptions:
    """Every flag's value (TF Serving's names), plus hooks the process wiring fills in (not flags)."""

    port: int = 8500
    rest_api_port: int = 0
    host: str = "127.0.0.1"
    rest_api_timeout_in_ms: int = 30000
    rest_api_max_body_bytes: int = 256 << 20
    rest_api_num_threads: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    allow_version_labels: bool = True
    allow_version_labels_for_unavailable_models: bool = False
    enable_batching: bool = False
    batching_parameters_file: str = ""
    batching_strict_timeout: bool = False
    enable_per_model_batching_parameters: bool = False
    monitoring_config_file: str = ""
    ssl_config_file: str = ""
    grpc_max_threads: int = 0
    grpc_channel_arguments: str = ""
    grpc_socket_path: str = ""
    enable_grpc_healthcheck_service: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    num_load_threads: int = 0
    num_unload_threads: int = 0
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    tensorflow_session_config_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    saved_model_tags: str = "serve"
    platform_config_file: str = ""
    per_process_gpu_memory_fraction: float = 0.0
    flush_filesystem_caches: bool = True
    remove_unused_fields_from_bundle_metagraph: bool = True
    enable_signature_method_name_check: bool = False
    xla_cpu_compilation_enabled: bool = False
    enable_profiler: bool = True
    use_alts_credentials: bool = False
    prefer_tflite_model: bool = False
    num_workers: int = 1
    # Not flags: the batching wrapper (set by the process wiring when --enable_batching) wraps each loaded
    # backend; ``None`` serves the backend as loaded.
    backend_wrapper: Callable[[Any], Any] | None = field(default=None, compare=False)

    @property
    def intra_op_threads(self) -> int:
        return self.tensorflow_intra_op_parallelism or self.tensorflow_session_parallelism

    @property
    def inter_op_threads(self) -> int:
        return self.tensorflow_inter_op_parallelism or self.tensorflow_session_parallelism


class UsageError(ValueError):
    """A command line TF Serving would refuse (the message names the flag)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would sys.exit; let main() decide how to report
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m serving",
        description="Local drop-in TensorFlow Serving (tensorflow_model_server's flags).",
        allow_abbrev=False,
    )
    for flag in FLAGS:
        kwargs: dict[str, Any] = {"type": flag.type, "default": flag.default, "dest": flag.name}
        if flag.type is parse_bool:
            kwargs.update(nargs="?", const=True, metavar="true|false")
        note = {IGNORED: " [accepted and ignored]", REFUSED: " [not supported: refused]"}.get(flag.status, "")
        parser.add_argument(f"--{flag.name}", help=flag.help + note, **kwargs)
    parser.add_argument("--version", action="store_true", help="Print the version and exit.")
    return parser


def _check(opts: ServerOptions) -> None:
    """Cross-flag rules of TF Serving's main.cc, and the refused flags."""
    for flag in FLAGS:
        value = getattr(opts, flag.name)
        if value == flag.default:
            continue
        if flag.status == REFUSED:
            raise UsageError(f"--{flag.name} is not supported by this server (TF Serving only)")
        if flag.status == IGNORED:
            log.warning("--%s=%s is accepted for compatibility and ignored", flag.name, value)
    if opts.model_config_file and opts.model_base_path:
        raise UsageError("--model_config_file and --model_base_path are exclusive: use one of them")
    if not opts.model_config_file and not opts.model_base_path:
        raise UsageError("one of --model_config_file or --model_base_path is required")
    if opts.batching_parameters_file and not opts.enable_batching:
        raise UsageError("--batching_parameters_file needs --enable_batching")
    for name in ("port", "rest_api_port"):
        if not 0 <= getattr(opts, name) <= 65535:
            raise UsageError(f"--{name} must be in 0..65535")
    if opts.num_workers < 1:
        raise UsageError("--num_workers must be at least 1")
    if opts.rest_api_max_body_bytes <= 0:
        raise UsageError("--rest_api_max_body_bytes must be positive")
    if opts.rest_api_port and opts.rest_api_port == opts.port:
        raise UsageError("--rest_api_port must differ from --port")
    if set(opts.saved_model_tags.split(",")) != {"serve"}:
        raise UsageError("--saved_model_tags: only 'serve' is supported")


def parse_args(argv: Sequence[str]) -> ServerOptions:
    """Parse a tensorflow_model_server command line; raises ``UsageError`` with TF Serving-like wording."""
    ns = build_parser().parse_args(list(argv))
    values = {f.name: getattr(ns, f.name) for f in fields(ServerOptions) if hasattr(ns, f.name)}
    opts = ServerOptions(**values)
    _check(opts)
    return opts


def wants_version(argv: Sequence[str]) -> bool:
    return any(a in ("--version", "--version=true", "--version=1") for a in argv)
