"""onnxruntime-extensions' custom ops (domain ``ai.onnx.contrib``) for models that use them.

The exporter converts string preprocessing (``TextVectorization``'s regex/split, string ``Equal`` ...) to
onnxruntime-extensions' ops; ONNX Runtime runs such a model only once the package's shared library is registered
in the ``SessionOptions``. It is registered only for models that need it, so a plain ONNX Runtime (without the
package) keeps serving every other model, and a model that needs it fails with ORT's own error naming the domain.

The library is first loaded with ``RTLD_DEEPBIND``: it links its own RE2, and in a process that has already
loaded TensorFlow (the server, the exporter's parity step) the dynamic linker would otherwise bind its regex
calls to TensorFlow's RE2, and ``StringRegexReplace`` silently stops matching (measured: punctuation is no longer
stripped). Deep binding makes the library use its own symbols whatever was imported first.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import mmap
import os
from pathlib import Path

CONTRIB_DOMAIN = "ai.onnx.contrib"


def available() -> bool:
    """Whether onnxruntime-extensions is installed."""
    return importlib.util.find_spec("onnxruntime_extensions") is not None


def uses_contrib(model_proto) -> bool:
    """Whether any node of the model (subgraphs included) is an ``ai.onnx.contrib`` op."""
    def nodes(graph):
        for node in graph.node:
            yield node
            for attr in node.attribute:
                if attr.g.node:
                    yield from nodes(attr.g)
                for sub in attr.graphs:
                    yield from nodes(sub)
    return any(n.domain == CONTRIB_DOMAIN for n in nodes(model_proto.graph))


def register_contrib_ops(session_options, model_path: Path) -> bool:
    """Register the custom-op library in ``session_options`` when ``model_path`` may use the contrib domain.

    The file is scanned for the domain's name instead of parsed: a model that uses the domain must name it (in
    its opset imports and nodes), and a false positive only registers a library that goes unused, where parsing
    a 100 MB model just to read its opset imports would cost a second per load. Returns whether it registered.
    """
    if not available() or not _mentions(Path(model_path), CONTRIB_DOMAIN.encode()):
        return False
    session_options.register_custom_ops_library(library_path())
    return True


def _mentions(path: Path, needle: bytes) -> bool:
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(needle) >= 0


@functools.cache
def library_path() -> str:
    """The custom-op library, loaded once with its own symbols first (before ORT or a Python import loads it)."""
    spec = importlib.util.find_spec("onnxruntime_extensions")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("_extensions_pydll*.so")) or sorted(folder.glob("_extensions_pydll*"))
    if not found:  # an unusual build: let the package say where its library is
        from onnxruntime_extensions import get_library_path

        return get_library_path()
    path = str(found[0])
    if hasattr(os, "RTLD_DEEPBIND"):
        ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_DEEPBIND)
    return path
