"""Capture tf2onnx's log records during one conversion and summarize them as one line.

tf2onnx reports an unconvertible graph through ``logging`` (one ERROR per node, a Counter of op types, a
traceback per failed handler) and then returns a model that fails ``onnx.checker``. The records are held here
instead of reaching the console, and ``reason`` turns them into the single line the exporter shows and records
in ``metadata.json``: the unsupported op types with their counts, then the first handler failure.
"""
from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from contextlib import contextmanager

LOGGER = "tf2onnx"
_UNSUPPORTED = "Tensorflow op [%s: %s] is not supported"
_FAILED = "Failed to convert node %r (fct=%r)\n%r"
MAX_DETAIL = 300


class Tf2OnnxLog(logging.Handler):
    """Collects the records of one conversion; knows which op types could not be converted."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.unsupported: collections.Counter[str] = collections.Counter()
        self.failed: list[tuple[str, str]] = []  # (node name, first line of the handler's exception)
        self.other: list[str] = []
        self.node_ops: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _UNSUPPORTED and len(record.args or ()) == 2:
            self.unsupported[str(record.args[1])] += 1
        elif record.msg == _FAILED and record.args:
            detail = record.exc_info[1] if record.exc_info and record.exc_info[1] else ""
            self.failed.append((str(record.args[0]), _first_line(str(detail))))
        elif record.levelno >= logging.ERROR and not str(record.msg).startswith("Unsupported ops"):
            self.other.append(_first_line(record.getMessage()))

    def reason(self, opset: int, exc: BaseException | None = None) -> str:
        """One line: what tf2onnx could not convert and why (the unsupported ops first)."""
        parts = []
        if self.unsupported:
            ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(self.unsupported.items()))
            parts.append(f"unsupported TensorFlow ops: {ops}")
        if self.failed:
            node, detail = self.failed[0]
            op = self.node_ops.get(node, "?")
            more = f" (+{len(self.failed) - 1} more nodes)" if len(self.failed) > 1 else ""
            parts.append(f"{op} node {node!r} failed: {_strip_make_sure(detail)}{more}")
        if not parts and exc is not None:
            parts.append(f"{type(exc).__name__}: {_strip_make_sure(_first_line(str(exc)) or self._other())}")
        elif not parts:
            parts.append(self._other() or "tf2onnx reported no reason")
        return f"ONNX conversion failed (tf2onnx, opset {opset}): " + "; ".join(parts)

    def _other(self) -> str:
        return self.other[0] if self.other else ""


def _first_line(text: str) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL - 3] + "..."


def _strip_make_sure(text: str) -> str:
    return text.removeprefix("make_sure failure: ")


@contextmanager
def captured_tf2onnx_log() -> Iterator[Tf2OnnxLog]:
    """Route tf2onnx's loggers into a fresh ``Tf2OnnxLog`` (nothing printed), restoring them afterwards."""
    logger = logging.getLogger(LOGGER)
    handler = Tf2OnnxLog()
    saved = logger.level, logger.propagate, list(logger.handlers)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        logger.handlers[:] = saved[2]
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
