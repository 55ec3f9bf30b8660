"""Name and describe what the exported signature takes and returns, and call the model by those names.

Input keys are the model's ``Input`` names (dict keys for dict-input models); subclassed models, which have no
``Input`` layers, get the argument name from their build config (``inputs``) or ``input_<i>``. Output keys are
the model's dict keys, ``output_names`` for functional models, the last layer's name for Sequential ones and
``output_<i>`` otherwise. ``ServingModel.call`` takes and returns those names, so the SavedModel endpoint,
the parity runtime and the sample generator all speak the same keys.

Keys are a contract with clients, so ``INPUT_NAMES=old=new,...`` / ``OUTPUT_NAMES=`` rename them, and keys
Keras derives from build order (``input_layer_12``, ``keras_tensor_5``, ``output_0`` of a multi-output
model) are reported as warnings that name the fix: the same architecture built again gets other numbers.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from .domains import Domain, embedding_bound, input_domains
from .errors import SignatureError

# Keys Keras makes up from build order: they change when the same architecture is built again.
_AUTO_INPUT = re.compile(r"^(keras_tensor|input_layer)(_\d+)?$")
_AUTO_OUTPUT = re.compile(r"^(keras_tensor(_\d+)?|output_\d+)$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")


@dataclass(frozen=True)
class InputSpec:
    """One signature input: key, numpy dtype name (``string`` for tf.string), shape (None = any; dim 0 is
    the batch), and the values it accepts when a layer says so (``Domain``; None = the dtype's range)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]
    domain: Domain | None = None


@dataclass
class ServingModel:
    """The model seen through its serving names: ``call({input: array}) -> {output: array}``.

    ``warnings`` are contract problems worth telling the user (auto-generated keys), each naming its fix.
    """

    trackable: object
    inputs: list[InputSpec]
    outputs: list[str]
    call: Callable[[Mapping[str, object]], dict[str, object]]
    warnings: list[str] = field(default_factory=list)


def is_integer(dtype: str) -> bool:
    return dtype != "string" and np.dtype(dtype).kind in "iu"


def _np_dtype(dtype) -> str:
    import keras

    name = keras.backend.standardize_dtype(dtype)
    return "string" if name == "string" else np.dtype(name).name


def _functional_inputs(model) -> tuple[list[InputSpec], Callable[[Mapping[str, object]], object]]:
    import keras

    struct = model.input if not isinstance(model, keras.Sequential) else model.inputs[0]
    tensors = keras.tree.flatten(struct)
    if isinstance(struct, dict):
        names = sorted(struct)  # keras.tree.flatten orders dict leaves by sorted key
    else:
        names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise SignatureError(f"model inputs have duplicate names {names}; name each keras.Input(name=...)")
    domains = input_domains(model, dict(zip(names, tensors, strict=True)))
    fallback = embedding_bound(model)
    specs = []
    for n, t in zip(names, tensors, strict=True):
        dtype = _np_dtype(t.dtype)
        domain = domains.get(n) or (fallback if is_integer(dtype) else None)
        specs.append(InputSpec(n, dtype, (None, *tuple(t.shape)[1:]), domain))

    def pack(named: Mapping[str, object]) -> object:
        return keras.tree.pack_sequence_as(struct, [named[n] for n in names])

    return specs, pack


def _subclassed_inputs(model) -> tuple[list[InputSpec], Callable[[Mapping[str, object]], object]]:
    config = model.get_build_config() or {}
    dtype = _np_dtype(getattr(model, "input_dtype", None) or "float32")
    domain = embedding_bound(model) if is_integer(dtype) else None
    if "input_shape" in config and config["input_shape"] is not None:
        shape = tuple(config["input_shape"])
        name = "inputs"
        return [InputSpec(name, dtype, (None, *shape[1:]), domain)], lambda named: named[name]
    shapes = config.get("shapes_dict") or {}
    if not shapes:
        raise SignatureError(
            f"{type(model).__name__} has no Input layers and no build shapes: build it (model.build(shape) "
            "or call it once) before returning it"
        )
    names = [k.removesuffix("_shape") for k in shapes]
    specs = [InputSpec(n, dtype, (None, *tuple(s)[1:]), domain) for n, s in zip(names, shapes.values(), strict=True)]
    return specs, lambda named: {n: named[n] for n in names}


def _saved_model_inputs(source) -> tuple[list[InputSpec], Callable[[Mapping[str, object]], object]]:
    _args, kwargs = source.fn.structured_input_signature
    specs = [InputSpec(k, _np_dtype(s.dtype.name), tuple(s.shape.as_list())) for k, s in sorted(kwargs.items())]
    return specs, lambda named: dict(named)


def _as_tensor(value, spec: InputSpec):
    """Signature functions accept only tensors of their exact dtype (numpy float64 would be refused)."""
    import tensorflow as tf

    return tf.convert_to_tensor(value, dtype=tf.string if spec.dtype == "string" else spec.dtype)


def _output_names(model, raw) -> list[str]:
    import keras

    if isinstance(raw, Mapping):
        return list(raw)
    leaves = keras.tree.flatten(raw)
    if isinstance(model, keras.Sequential) and len(leaves) == 1:
        return [model.layers[-1].name]
    names = list(getattr(model, "output_names", None) or [])
    if isinstance(model, keras.Model) and len(names) == len(leaves) and len(set(names)) == len(names):
        return names
    return [f"output_{i}" for i in range(len(leaves))]


def parse_renames(text: str | None, what: str) -> dict[str, str]:
    """``"old=new,old2=new2"`` (``INPUT_NAMES=`` / ``OUTPUT_NAMES=``) as a dict; SignatureError when malformed."""
    pairs: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        old, sep, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise SignatureError(f"{what}: {item!r} is not an old=new pair (e.g. {what}=input_layer_3=image)")
        if not _KEY.match(new):
            raise SignatureError(f"{what}: {new!r} is not a valid signature key (letters, digits, _ . - /)")
        if old in pairs:
            raise SignatureError(f"{what}: {old!r} is renamed twice")
        pairs[old] = new
    return pairs


def _renamed(names: list[str], renames: Mapping[str, str], what: str) -> list[str]:
    unknown = sorted(set(renames) - set(names))
    if unknown:
        raise SignatureError(f"{what}: no such key {unknown} (the model's keys are {names})")
    new = [renames.get(n, n) for n in names]
    if len(set(new)) != len(new):
        raise SignatureError(f"{what}: the renamed keys {new} are not unique")
    return new


def _snake(name: str) -> str:
    """Keras' default layer name for a class (``Dense`` -> ``dense``, ``GlobalAveragePooling2D`` -> ...)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _default_layer_names(model, raw) -> set[str]:
    """Output keys that are Keras' build-order default names of their layers (``dense_7``), not chosen ones."""
    import keras

    if isinstance(raw, Mapping) or not isinstance(model, keras.Model):
        return set()
    out = set()
    for tensor, name in zip(keras.tree.flatten(getattr(model, "outputs", None) or []), _output_names(model, raw),
                            strict=False):
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "operation", None) if history is not None else None
        if layer is not None and re.match(rf"^{re.escape(_snake(type(layer).__name__))}(_\d+)?$", name):
            out.add(name)
    return out


def _auto_key_warnings(inputs: list[str], outputs: list[str], default_named: set[str] = frozenset()) -> list[str]:
    """Keys made from build order change when the model is built again: say so, and how to fix it."""
    notes = []
    auto_in = [n for n in inputs if _AUTO_INPUT.match(n)]
    if auto_in:
        pairs = ",".join(f"{n}=<name>" for n in auto_in)
        notes.append(f"input keys {auto_in} are Keras auto-generated names that change between builds: clients "
                     f"would break on the next version; pass INPUT_NAMES={pairs} (or keras.Input(name=...))")
    auto_out = [n for n in outputs if _AUTO_OUTPUT.match(n) or n in default_named]
    if auto_out and (len(outputs) > 1 or any(not n.startswith("output_") for n in auto_out)):
        pairs = ",".join(f"{n}=<name>" for n in auto_out)
        notes.append(f"output keys {auto_out} are positional or Keras default layer names that change between "
                     f"builds: pass OUTPUT_NAMES={pairs} (or return a dict / name the output layers)")
    return notes


def _probe(invoke: Callable, pack: Callable, sample: Mapping[str, object]):
    import tensorflow as tf

    try:
        return invoke(pack(sample))
    except (ValueError, TypeError, KeyError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SignatureError(f"the model refused the sample inputs: {type(exc).__name__}: {first}") from exc


def serving_model(model, probe: Callable[[list[InputSpec]], dict[str, np.ndarray]], *,
                  input_names: Mapping[str, str] | None = None,
                  output_names: Mapping[str, str] | None = None) -> ServingModel:
    """Describe ``model`` for serving; ``probe(specs)`` makes a small input batch to discover the outputs.

    ``input_names`` / ``output_names`` rename keys (old -> new); ``probe`` is called with the final names.
    """
    import keras

    from .loading import SavedModelSource

    trackable = model
    if isinstance(model, SavedModelSource):
        specs, pack = _saved_model_inputs(model)
        invoke = lambda x: model.fn(**{s.name: _as_tensor(x[s.name], s) for s in specs})  # noqa: E731
        trackable = model.module
    else:
        try:
            model.inputs  # noqa: B018 (raises on subclassed models)
            has_inputs = bool(model.inputs)
        except (AttributeError, ValueError):
            has_inputs = False
        specs, pack = _functional_inputs(model) if has_inputs else _subclassed_inputs(model)
        invoke = lambda x: model(x, training=False)  # noqa: E731
    native_in = [s.name for s in specs]
    public_in = _renamed(native_in, input_names or {}, "INPUT_NAMES")
    public_specs = [replace(s, name=n) for s, n in zip(specs, public_in, strict=True)]
    to_native = dict(zip(public_in, native_in, strict=True))

    def native(named: Mapping[str, object]) -> dict[str, object]:
        return {to_native[k]: v for k, v in named.items()}

    raw = _probe(invoke, pack, native(probe(public_specs)))
    native_out = _output_names(model, raw)
    public_out = _renamed(native_out, output_names or {}, "OUTPUT_NAMES")
    defaults = {p for n, p in zip(native_out, public_out, strict=True)
                if n == p and n in _default_layer_names(model, raw)}

    def call(named: Mapping[str, object]) -> dict[str, object]:
        out = invoke(pack(native(named)))
        if isinstance(out, Mapping):
            return {p: out[n] for n, p in zip(native_out, public_out, strict=True)}
        return dict(zip(public_out, keras.tree.flatten(out), strict=True))

    return ServingModel(trackable=trackable, inputs=public_specs, outputs=public_out, call=call,
                        warnings=_auto_key_warnings(public_in, public_out, defaults))
