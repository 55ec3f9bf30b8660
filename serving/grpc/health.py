"""The standard ``grpc.health.v1.Health`` service, as tensorflow_model_server offers it.

TF Serving (``model_servers/server.cc``) enables gRPC's default health service only with
``--enable_grpc_healthcheck_service`` and then marks three service names SERVING: ``""`` (the whole server),
``"ModelService"`` and ``"PredictionService"`` (its short names, not the fully qualified ones). It does that
once its initial models are loaded, because its gRPC port only opens then; here the port opens after the
loads too, and ``mark_serving`` is called once the server is ready. ``drain`` (SIGTERM) turns every name
NOT_SERVING for good, so a Kubernetes ``grpc:`` probe or a load balancer stops sending traffic while the
in-flight requests finish. Any other service name is NOT_FOUND, as in gRPC's C++ implementation.

grpcio-health-checking's servicer does the protocol (Check, Watch streams, List); this module only decides
what it says.
"""
from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

# The names TF Serving's Server::BuildAndStart sets; "" is gRPC's overall server status.
SERVICE_NAMES: tuple[str, ...] = ("", "ModelService", "PredictionService")


class HealthReporter:
    """Owns the health servicer of one gRPC server: NOT_SERVING until ``mark_serving``, again on ``drain``."""

    def __init__(self) -> None:
        self.servicer = health.HealthServicer()
        for name in SERVICE_NAMES:
            self.servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def add_to(self, server: grpc.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    def mark_serving(self) -> None:
        """The initial models are loaded and every port is open (ignored once draining)."""
        for name in SERVICE_NAMES:
            self.servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    def drain(self) -> None:
        """NOT_SERVING for every name from now on (Watch streams are told at once)."""
        self.servicer.enter_graceful_shutdown()
