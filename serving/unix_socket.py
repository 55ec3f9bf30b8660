"""``--grpc_socket_path``: the UNIX domain socket tensorflow_model_server also serves gRPC on (``unix:PATH``).

gRPC's core (the same in TF Serving's C++ server and in grpcio) unlinks whatever *socket* file sits at the
path before binding, so a stale socket left by a killed server is simply replaced, as TF Serving does. It
would replace a live one too, silently stealing another server's clients; and a regular file or a missing
directory fails deep inside gRPC with an unclear message. ``claim`` checks first and raises ``OSError``
with a plain sentence for each case; ``release`` removes the socket on shutdown, only if it is still the
one this server bound.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import stat

log = logging.getLogger("serving.grpc")  # it is the gRPC server's socket

# sizeof(sockaddr_un.sun_path) on Linux, including the terminating NUL.
MAX_PATH_BYTES = 107


def claim(path: str) -> str:
    """Check ``path`` can be bound; remove a stale socket file there. Returns the gRPC address ``unix:PATH``."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise OSError(f"--grpc_socket_path={path}: longer than the {MAX_PATH_BYTES} bytes a UNIX socket path "
                      "may have")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OSError(f"--grpc_socket_path={path}: directory {parent} does not exist")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return f"unix:{path}"
    if not stat.S_ISSOCK(mode):
        raise OSError(f"--grpc_socket_path={path}: the path exists and is not a socket (remove it or pick another)")
    if _accepts_connections(path):
        raise OSError(f"--grpc_socket_path={path}: another process is already serving on this socket")
    log.info("Removing stale socket file %s (no process listens on it)", path)
    os.unlink(path)
    return f"unix:{path}"


def _accepts_connections(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise OSError(f"--grpc_socket_path={path}: cannot check the existing socket: {exc.strerror}") from exc
    return True


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the socket at ``path`` right after binding, to recognise it at shutdown."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISSOCK(st.st_mode) else None


def release(path: str, bound: tuple[int, int] | None) -> None:
    """Remove the socket file this server bound (not one another server bound there since)."""
    if bound is None or identity(path) != bound:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
