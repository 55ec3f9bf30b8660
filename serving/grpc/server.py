"""The gRPC server: TF Serving's services on ``host:port``, optionally TLS, messages up to 2 GiB as TF Serving.

TF Serving sets max send/receive message size to INT_MAX; so do we (-1 = unlimited in grpcio). Extra server
arguments come from ``--grpc_channel_arguments`` ("key=value,key=value", integers where they parse).
With ``--grpc_socket_path`` the same services (and credentials) are also served on that UNIX domain socket
(``serving.unix_socket``); with ``--enable_grpc_healthcheck_service`` the standard health service is
added (``serving.grpc.health``).
"""
from __future__ import annotations

import logging
import os
from concurrent import futures

import grpc

from .. import unix_socket
from ..dataplane import DataPlane
from .health import HealthReporter
from .servicers import add_servicers

log = logging.getLogger("serving.grpc")


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """``--grpc_channel_arguments``: comma separated key=value pairs (TF Serving's syntax)."""
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        pairs.append((key.strip(), int(value) if value.strip().lstrip("-").isdigit() else value.strip()))
    return pairs


class GrpcServer:
    """Owns the grpc.Server; ``start()`` binds (port 0 picks a free one) and serves on grpc's own threads."""

    def __init__(self, dataplane: DataPlane, host: str, port: int, *, max_threads: int = 0,
                 ssl_config=None, channel_arguments: str = "", socket_path: str = "",
                 health_check: bool = False, reuse_port: bool = False) -> None:
        self.dataplane = dataplane
        self.socket_path = socket_path
        self.health = HealthReporter() if health_check else None
        self._socket_id: tuple[int, int] | None = None
        self.host = host
        self.requested_port = port
        self.max_threads = max_threads or 4 * (os.cpu_count() or 1)
        self.ssl_config = ssl_config
        self.options = [
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", int(reuse_port)),  # --num_workers: processes share the port
            *parse_channel_arguments(channel_arguments),
        ]
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> int:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.max_threads, thread_name_prefix="grpc"),
                             options=self.options)
        add_servicers(server, self.dataplane)
        if self.health is not None:
            self.health.add_to(server)
        address = f"{self.host}:{self.requested_port}"
        self.port = self._bind_or_raise(server, address)
        if self.socket_path:
            self._bind_or_raise(server, unix_socket.claim(self.socket_path))
        server.start()
        self._server = server
        if self.socket_path:
            self._socket_id = unix_socket.identity(self.socket_path)
        return self.port

    def _bind_or_raise(self, server: grpc.Server, address: str) -> int:
        try:
            bound = self._bind(server, address)
        except RuntimeError as exc:  # grpcio raises RuntimeError when the address cannot be bound
            raise OSError(f"Could not bind the gRPC server to {address}: {exc}") from exc
        if not bound:
            raise OSError(f"Could not bind the gRPC server to {address}")
        return bound

    def mark_serving(self) -> None:
        """Health: SERVING (the server is ready); no-op without the health service."""
        if self.health is not None:
            self.health.mark_serving()

    def drain(self) -> None:
        """Health: NOT_SERVING from now on, while the port still answers (before ``stop``)."""
        if self.health is not None:
            self.health.drain()

    def _bind(self, server: grpc.Server, address: str) -> int:
        if self.ssl_config is not None:
            cfg = self.ssl_config
            credentials = grpc.ssl_server_credentials(
                [(cfg.server_key.encode(), cfg.server_cert.encode())],
                root_certificates=cfg.custom_ca.encode() if cfg.custom_ca else None,
                require_client_auth=bool(cfg.client_verify),
            )
            return server.add_secure_port(address, credentials)
        return server.add_insecure_port(address)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls; in-flight calls get ``grace`` seconds to finish."""
        self.drain()
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self.socket_path:
            unix_socket.release(self.socket_path, self._socket_id)
            self._socket_id = None
