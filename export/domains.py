"""What values each model input accepts, learnt from the layers that consume it.

Generated parity samples must look like real requests or the proof proves little: ids must index every
``Embedding`` table they reach, lookup inputs should mostly hit the vocabulary, text should be made of the
words a ``TextVectorization`` layer knows. This walks the functional graph from each input (through any
layers, into nested functional models) to the first layer that constrains its values:

    Embedding(input_dim)              ints in [0, input_dim)
    CategoryEncoding(num_tokens)      ints in [0, num_tokens)
    IntegerLookup / StringLookup      the vocabulary (plus out-of-vocabulary values when the layer has OOV
                                      buckets); with ``invert=True`` indices in [0, vocabulary_size)
    TextVectorization                 sentences of vocabulary words (single tokens when ``split=None``)
    Hashing                           any value: strings get generic words (ints their dtype range)

Inputs no such layer reaches get no domain: ``samples`` falls back to the dtype's natural range.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

GENERIC_WORDS = tuple("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split())


@dataclass(frozen=True)
class Domain:
    """The values one input accepts: an integer range and/or a vocabulary, and where that came from."""

    low: int | None = None  # inclusive
    high: int | None = None  # exclusive
    vocabulary: tuple = ()
    text: bool = False  # strings are sentences of vocabulary words (TextVectorization with a split)
    oov: bool = False  # values outside the vocabulary are valid (the lookup has OOV buckets)
    source: str = ""

    def merge(self, other: Domain) -> Domain:
        """Both constraints at once (an input feeding two layers must be valid for both)."""
        highs = [h for h in (self.high, other.high) if h is not None]
        lows = [v for v in (self.low, other.low) if v is not None]
        vocab = self.vocabulary or other.vocabulary
        return replace(self, low=max(lows) if lows else None, high=min(highs) if highs else None,
                       vocabulary=vocab, text=self.text or other.text, oov=self.oov if self.vocabulary else other.oov,
                       source=", ".join(s for s in (self.source, other.source) if s))


def _layer_domain(layer) -> Domain | None:
    """The constraint one layer puts on its input, or None when it accepts anything of its dtype."""
    import keras

    label = f"{type(layer).__name__} {layer.name!r}"
    if isinstance(layer, keras.layers.Embedding):
        return Domain(low=0, high=int(layer.input_dim), source=label)
    if isinstance(layer, keras.layers.CategoryEncoding):
        return Domain(low=0, high=int(layer.num_tokens), source=label)
    if isinstance(layer, keras.layers.TextVectorization):
        vocab = tuple(str(w) for w in layer.get_vocabulary(include_special_tokens=False) if str(w))
        split = layer.get_config().get("split")
        return Domain(vocabulary=vocab, text=split is not None, oov=True, source=label)
    if isinstance(layer, keras.layers.Hashing):  # accepts anything: generic tokens exercise every bucket path
        return Domain(vocabulary=GENERIC_WORDS, source=label, text=False)
    if isinstance(layer, keras.layers.StringLookup | keras.layers.IntegerLookup):
        if layer.invert:
            return Domain(low=0, high=int(layer.vocabulary_size()), source=label)
        vocab = tuple(layer.get_vocabulary(include_special_tokens=False))
        if isinstance(layer, keras.layers.IntegerLookup):
            vocab = tuple(int(v) for v in vocab)
        else:
            vocab = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in vocab)
        return Domain(vocabulary=vocab, oov=int(layer.num_oov_indices) > 0, source=label)
    return None


def _consumers(model) -> dict[int, list[tuple[object, object]]]:
    """id(KerasTensor) -> [(layer, node)] for every node of every layer reachable from ``model``."""
    out: dict[int, list[tuple[object, object]]] = {}
    stack, seen = [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for node in getattr(layer, "_inbound_nodes", None) or []:
            for tensor in getattr(node, "input_tensors", None) or []:
                out.setdefault(id(tensor), []).append((layer, node))
        stack.extend(getattr(layer, "layers", None) or [])
    return out


def _walk(start: Iterable[object], consumers: dict[int, list], model) -> Domain | None:
    """Breadth-first from ``start`` tensors to the first constraining layer on every path."""
    import keras

    found: Domain | None = None
    queue, seen = list(start), set()
    while queue:
        tensor = queue.pop(0)
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        for layer, node in consumers.get(id(tensor), []):
            if layer is model:
                continue
            domain = _layer_domain(layer)
            if domain is not None:
                found = domain if found is None else found.merge(domain)
                continue
            if isinstance(layer, keras.Model) and getattr(layer, "inputs", None):
                inner = [layer.inputs[i] for i, t in enumerate(node.input_tensors)
                         if t is tensor and i < len(layer.inputs)]
                queue.extend(inner)  # a nested functional model: continue inside it
            queue.extend(keras.tree.flatten(node.outputs) if hasattr(node, "outputs") else [])
    return found


def input_domains(model, tensors: dict[str, object]) -> dict[str, Domain]:
    """``{input name: Domain}`` for the inputs of a functional model that some layer constrains."""
    consumers = _consumers(model)
    out = {}
    for name, tensor in tensors.items():
        domain = _walk([tensor], consumers, model)
        if domain is not None:
            out[name] = domain
    return out


def embedding_bound(model) -> Domain | None:
    """For graphs that cannot be walked (subclassed models): ids below the smallest Embedding table."""
    import keras

    dims, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, keras.layers.Embedding):
            dims.append(int(layer.input_dim))
        stack.extend(getattr(layer, "layers", None) or [])
        stack.extend(getattr(layer, "_layers", None) or [])
    return Domain(low=0, high=min(dims), source="smallest Embedding") if dims else None
