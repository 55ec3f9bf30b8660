"""TF Serving's HTTP/REST API (``--rest_api_port``) over the ``DataPlane``: URLs, JSON, errors, status codes.

Public API: ``RestServer(dataplane, host, port, *, timeout_ms, monitoring, max_body_bytes, num_threads, reuse_port)`` with ``start()``,
``port`` and ``stop()``. Everything else in this package is private.
"""
from serving.rest.server import DEFAULT_MAX_BODY_BYTES, RestServer

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RestServer"]
