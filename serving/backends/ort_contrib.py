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
    """Register the custom-op library in ``session_options`` when ``model_path`` declares the contrib domain.

    Reading the opset imports is enough (the exporter keeps the import only when a node uses the domain) and
    needs no protobuf parse of the weights. Returns whether it registered.
    """
    if not available() or CONTRIB_DOMAIN not in _declared_domains(Path(model_path)):
        return False
    session_options.register_custom_ops_library(library_path())
    return True


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


def _declared_domains(path: Path) -> set[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {o.domain for o in model.opset_import}
