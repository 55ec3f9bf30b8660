"""Readers and validators for tensorflow_model_server's batching, monitoring and SSL config files.

The files are text protos of TF Serving's own messages (`BatchingParameters`, `MonitoringConfig`,
`SSLConfig`), parsed with exact copies of those messages (`serving.protos`, a private descriptor pool),
so an unknown or misspelt field is refused exactly as the real server refuses it. On top of the parse,
each loader checks the values the real server would reject at start-up (or silently misbehave on) and
resolves omitted fields to TF Serving's defaults. The result is a frozen dataclass whose field names are
TF Serving's. Every error is a `ConfigFileError` naming the file and, where there is one, the field.

No TensorFlow import: the server, the batching wrapper and the admin CLI all call these.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import message, text_format

from serving.protos import message_class

# TF Serving's defaults for omitted BatchingParameters (BasicBatchScheduler / SharedBatchScheduler options).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10
DEFAULT_THREAD_POOL_NAME = "batch_threads"
# PrometheusExporter::kPrometheusPath, used when `path` is empty.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

__all__ = [
    "BatchingParameters",
    "ConfigFileError",
    "MonitoringConfig",
    "PrometheusConfig",
    "SSLConfig",
    "batching_parameters_from_text",
    "invalid_protobuf_file",
    "load_batching_parameters",
    "load_monitoring_config",
    "load_ssl_config",
    "monitoring_config_from_text",
    "parse_text_into",
    "parse_text_proto",
    "ssl_config_from_text",
    "text_format_error",
]


class ConfigFileError(ValueError):
    """A config file that cannot be read, does not parse, or holds a value TF Serving would refuse."""

    def __init__(self, path: str | os.PathLike[str], problem: str, field: str | None = None, *,
                 parse_error: str = "") -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"field '{field}' " if field else ""
        if parse_error:
            super().__init__(invalid_protobuf_file(parse_error, self.path))
        else:
            super().__init__(f"{self.path}: {where}{problem}")


@dataclass(frozen=True)
class BatchingParameters:
    """`tensorflow.serving.BatchingParameters` with TF Serving's defaults filled in for omitted fields."""

    max_batch_size: int
    batch_timeout_micros: int
    max_enqueued_batches: int
    num_batch_threads: int
    thread_pool_name: str
    enable_large_batch_splitting: bool
    max_execution_batch_size: int
    allowed_batch_sizes: tuple[int, ...]
    pad_variable_length_inputs: bool


@dataclass(frozen=True)
class PrometheusConfig:
    """`tensorflow.serving.PrometheusConfig`; `path` is TF Serving's default when the file leaves it empty."""

    enable: bool
    path: str


@dataclass(frozen=True)
class MonitoringConfig:
    """`tensorflow.serving.MonitoringConfig`."""

    prometheus_config: PrometheusConfig


@dataclass(frozen=True)
class SSLConfig:
    """`tensorflow.serving.SSLConfig`: PEM *contents* (not paths), as TF Serving expects them."""

    server_key: str
    server_cert: str
    custom_ca: str
    client_verify: bool

    def __repr__(self) -> str:  # never print a private key into a log
        return (f"SSLConfig(server_key=<{len(self.server_key)} chars>, server_cert=<{len(self.server_cert)} chars>, "
                f"custom_ca=<{len(self.custom_ca)} chars>, client_verify={self.client_verify})")


def _read(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigFileError(path, f"cannot be read: {err}") from err


def text_format_error(full_name: str, err: text_format.ParseError) -> str:
    """protobuf's C++ wording for a text proto that does not parse, as TF Serving's stderr shows it:
    ``Error parsing text-format tensorflow.serving.X: LINE:COL: detail`` (TF Serving's own tests grep for it)."""
    detail = str(err)
    line, column = err.GetLine(), err.GetColumn()
    if line is not None and column is not None:
        detail = detail.removeprefix(f"{line}:{column} : ")
        return f"Error parsing text-format {full_name}: {line}:{column}: {detail}"
    return f"Error parsing text-format {full_name}: {detail}"


def invalid_protobuf_file(parse_error: str, path: str | os.PathLike[str]) -> str:
    """TF Serving's order: protobuf's parse error first, then ``ParseProtoTextFile``'s
    ``Invalid protobuf file: 'PATH'`` (one message here, two log lines there)."""
    return f"{parse_error.rstrip('.')}. Invalid protobuf file: '{path}'"


def parse_text_into(text: str, msg: message.Message) -> None:
    """``text_format.Parse`` with TF Serving's error wording (a ``ValueError`` carrying ``text_format_error``)."""
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as err:
        raise ValueError(text_format_error(msg.DESCRIPTOR.full_name, err)) from err


def parse_text_proto(text: str, full_name: str, source: str | os.PathLike[str]) -> message.Message:
    """Parse `text` as TF Serving's message `full_name`; errors lead with protobuf's wording, then name
    `source` (the file it came from) as TF Serving's ``ParseProtoTextFile`` does."""
    msg = message_class(full_name)()
    try:
        parse_text_into(text, msg)
    except ValueError as err:
        raise ConfigFileError(source, "does not parse", parse_error=str(err)) from err
    return msg


def _wrapped(msg: message.Message, name: str, default):
    return getattr(msg, name).value if msg.HasField(name) else default


def load_batching_parameters(path: str | os.PathLike[str]) -> BatchingParameters:
    """Read `--batching_parameters_file`, apply TF Serving's defaults, and check what TF Serving checks."""
    return batching_parameters_from_text(_read(path), path)


def batching_parameters_from_text(text: str, path: str | os.PathLike[str] = "<text>") -> BatchingParameters:
    """`load_batching_parameters` for text in hand (`path` only names it in errors)."""
    msg = parse_text_proto(text, "tensorflow.serving.BatchingParameters", path)
    max_batch_size = _wrapped(msg, "max_batch_size", DEFAULT_MAX_BATCH_SIZE)
    splitting = _wrapped(msg, "enable_large_batch_splitting", False)
    params = BatchingParameters(
        max_batch_size=max_batch_size,
        batch_timeout_micros=_wrapped(msg, "batch_timeout_micros", DEFAULT_BATCH_TIMEOUT_MICROS),
        max_enqueued_batches=_wrapped(msg, "max_enqueued_batches", DEFAULT_MAX_ENQUEUED_BATCHES),
        num_batch_threads=_wrapped(msg, "num_batch_threads", os.cpu_count() or 1),
        thread_pool_name=_wrapped(msg, "thread_pool_name", DEFAULT_THREAD_POOL_NAME),
        enable_large_batch_splitting=splitting,
        max_execution_batch_size=_wrapped(msg, "max_execution_batch_size", max_batch_size) if splitting
        else max_batch_size,
        allowed_batch_sizes=tuple(msg.allowed_batch_sizes),
        pad_variable_length_inputs=msg.pad_variable_length_inputs,
    )
    _check_batching(path, params)
    return params


def _check_batching(path: str | os.PathLike[str], p: BatchingParameters) -> None:
    for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads", "max_execution_batch_size"):
        if getattr(p, name) < 1:
            raise ConfigFileError(path, f"must be >= 1, got {getattr(p, name)}", name)
    if p.batch_timeout_micros < 0:
        raise ConfigFileError(path, f"must be >= 0, got {p.batch_timeout_micros}", "batch_timeout_micros")
    if not p.thread_pool_name:
        raise ConfigFileError(path, "must not be empty", "thread_pool_name")
    if p.max_execution_batch_size > p.max_batch_size:
        raise ConfigFileError(path, f"must be <= max_batch_size ({p.max_batch_size}), "
                              f"got {p.max_execution_batch_size}", "max_execution_batch_size")
    sizes = p.allowed_batch_sizes
    if not sizes:
        return
    if sizes[0] < 1 or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ConfigFileError(path, f"entries must be positive and strictly increasing, got {list(sizes)}",
                              "allowed_batch_sizes")
    # TF Serving: the final entry must equal the largest batch actually executed.
    limit, limit_name = ((p.max_execution_batch_size, "max_execution_batch_size")
                         if p.enable_large_batch_splitting else (p.max_batch_size, "max_batch_size"))
    if sizes[-1] != limit:
        raise ConfigFileError(path, f"final entry must equal {limit_name} ({limit}), got {sizes[-1]}",
                              "allowed_batch_sizes")


def load_monitoring_config(path: str | os.PathLike[str]) -> MonitoringConfig:
    """Read `--monitoring_config_file`; an empty path means TF Serving's `/monitoring/prometheus/metrics`."""
    return monitoring_config_from_text(_read(path), path)


def monitoring_config_from_text(text: str, path: str | os.PathLike[str] = "<text>") -> MonitoringConfig:
    """`load_monitoring_config` for text in hand (`path` only names it in errors)."""
    msg = parse_text_proto(text, "tensorflow.serving.MonitoringConfig", path)
    prom = msg.prometheus_config
    metrics_path = prom.path or DEFAULT_PROMETHEUS_PATH
    if not metrics_path.startswith("/"):
        raise ConfigFileError(path, f"must start with '/', got {metrics_path!r}", "prometheus_config.path")
    if any(c.isspace() or c in "?#" for c in metrics_path):
        raise ConfigFileError(path, f"must be a plain URL path, got {metrics_path!r}", "prometheus_config.path")
    return MonitoringConfig(PrometheusConfig(enable=prom.enable, path=metrics_path))


def _check_pem(path: str | os.PathLike[str], field: str, text: str, kind: str) -> None:
    begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
    if begin not in text or end not in text or text.index(begin) > text.index(end):
        raise ConfigFileError(path, f"must hold PEM contents with {begin} ... {end} "
                              "(the file's contents, not a path to it)", field)


def load_ssl_config(path: str | os.PathLike[str]) -> SSLConfig:
    """Read `--ssl_config_file`: PEM key and certificate (required), optional CA; client_verify needs the CA."""
    return ssl_config_from_text(_read(path), path)


def ssl_config_from_text(text: str, path: str | os.PathLike[str] = "<text>") -> SSLConfig:
    """`load_ssl_config` for text in hand (`path` only names it in errors)."""
    msg = parse_text_proto(text, "tensorflow.serving.SSLConfig", path)
    cfg = SSLConfig(server_key=msg.server_key, server_cert=msg.server_cert, custom_ca=msg.custom_ca,
                    client_verify=msg.client_verify)
    if not cfg.server_key.strip():
        raise ConfigFileError(path, "is required (PEM private key contents)", "server_key")
    if not cfg.server_cert.strip():
        raise ConfigFileError(path, "is required (PEM certificate contents)", "server_cert")
    key_kind = next((k for k in ("RSA PRIVATE KEY", "EC PRIVATE KEY") if f"-----BEGIN {k}-----" in cfg.server_key),
                    "PRIVATE KEY")
    _check_pem(path, "server_key", cfg.server_key, key_kind)
    _check_pem(path, "server_cert", cfg.server_cert, "CERTIFICATE")
    if cfg.custom_ca:
        _check_pem(path, "custom_ca", cfg.custom_ca, "CERTIFICATE")
    elif cfg.client_verify:
        raise ConfigFileError(path, "client_verify: true needs custom_ca (the CA that signs client certificates)",
                              "custom_ca")
    return cfg
