"""Sample inputs for the parity gate and the warmup records: loaded from ``--sample`` or generated.

Generated samples are seeded and cover what each input really takes, so that the proof exercises the model:

- inputs a layer constrains (``export.domains``): Embedding/CategoryEncoding ids in ``[0, n)``; lookup
  vocabularies (with some out-of-vocabulary values when the layer has OOV buckets); sentences of a
  ``TextVectorization`` vocabulary;
- otherwise the dtype's range: ``uint8``/``int8`` their full range (0..255 for images), wider integers
  ``[0, DEFAULT_INT_HIGH)`` (they are usually ids), booleans random, floats N(0, 1) clipped to ±3;
- a string input no layer describes (a SavedModel source) cannot be guessed: ``SAMPLE=`` is required.

Unknown non-batch dimensions get ``UNKNOWN_DIM``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .domains import Domain
from .errors import SignatureError
from .signature import InputSpec

DEFAULT_BATCH = 8
UNKNOWN_DIM = 8
DEFAULT_INT_HIGH = 10
SEED = 1234
OOV_FRACTION = 0.15
OOV_WORD = "zzunseenzz"
MAX_WORDS = 8


def _spread(vocab: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` vocabulary entries covering as many distinct ones as possible (every entry when count >= len)."""
    return rng.permutation(np.resize(rng.permutation(vocab), count))


def _strings(domain: Domain | None, spec: InputSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if domain is None or not domain.vocabulary:
        raise SignatureError(
            f"input {spec.name!r} is a string tensor and no TextVectorization/StringLookup layer says which strings "
            "it takes: pass SAMPLE=file.npz with real values (a str array per input)"
        )
    vocab = np.array([str(v) for v in domain.vocabulary], dtype=object)
    count = int(np.prod(shape))
    if domain.text:
        lengths = rng.integers(1, MAX_WORDS + 1, size=count)
        values = [" ".join(rng.choice(vocab, size=n)) for n in lengths]
    else:
        values = list(_spread(vocab, count, rng))
    if domain.oov:
        for i in np.flatnonzero(rng.random(count) < OOV_FRACTION):
            values[i] = OOV_WORD if not domain.text else f"{values[i]} {OOV_WORD}"
    return np.array([v.encode("utf-8") for v in values], dtype=object).astype(np.bytes_).reshape(shape)


def _integers(domain: Domain | None, dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    info = np.iinfo(dtype)
    if domain is not None and domain.vocabulary and all(isinstance(v, int) for v in domain.vocabulary):
        vocab = np.array(domain.vocabulary, dtype=np.int64)
        values = _spread(vocab, int(np.prod(shape)), rng).reshape(shape)
        if domain.oov:
            unseen = int(min(vocab.max() + 1, info.max))
            values = np.where(rng.random(shape) < OOV_FRACTION, unseen, values)
        return values.astype(dtype)
    if domain is not None and domain.high is not None:
        low, high = domain.low or 0, domain.high
    elif info.bits <= 8:
        low, high = int(info.min), int(info.max) + 1  # uint8 images: 0..255
    else:
        low, high = 0, DEFAULT_INT_HIGH
    return rng.integers(max(low, int(info.min)), min(high, int(info.max) + 1), size=shape, dtype=np.int64).astype(dtype)


def generate(specs: Sequence[InputSpec], batch: int = DEFAULT_BATCH, seed: int = SEED) -> dict[str, np.ndarray]:
    """A deterministic batch of ``batch`` rows for every input."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = (batch, *(UNKNOWN_DIM if d is None else d for d in spec.shape[1:]))
        if spec.dtype == "string":
            out[spec.name] = _strings(spec.domain, spec, shape, rng)
            continue
        kind = np.dtype(spec.dtype).kind
        if kind in "iu":
            out[spec.name] = _integers(spec.domain, spec.dtype, shape, rng)
        elif kind == "b":
            out[spec.name] = rng.random(shape) < 0.5
        else:
            out[spec.name] = np.clip(rng.standard_normal(shape), -3, 3).astype(spec.dtype)
    return out


def _fit_strings(spec: InputSpec, value: np.ndarray, source: str) -> np.ndarray:
    if value.dtype.kind == "U":
        return np.char.encode(value, "utf-8")
    if value.dtype.kind == "S":
        return value
    raise SignatureError(f"{source}: input {spec.name!r} is a string input; the sample has dtype {value.dtype} "
                         "(save a str array, e.g. np.array(['some text']))")


def _fit(spec: InputSpec, value: np.ndarray, source: str) -> np.ndarray:
    """Check rank and fixed dims, and cast to the input dtype when the cast is lossless in kind."""
    if value.ndim != len(spec.shape):
        raise SignatureError(f"{source}: input {spec.name!r} has rank {value.ndim}, the model expects {len(spec.shape)} "
                             f"(shape {list(spec.shape)}, dim 0 = batch)")
    for i, (want, got) in enumerate(zip(spec.shape, value.shape, strict=True)):
        if want is not None and want != got:
            raise SignatureError(f"{source}: input {spec.name!r} dim {i} is {got}, the model expects {want}")
    if spec.dtype == "string":
        return _fit_strings(spec, value, source)
    if value.dtype.kind in "SUO":
        raise SignatureError(f"{source}: input {spec.name!r} holds strings, the model expects {spec.dtype}")
    if value.dtype.name == spec.dtype:
        return value
    if not np.can_cast(value.dtype, spec.dtype, casting="same_kind"):
        raise SignatureError(f"{source}: input {spec.name!r} has dtype {value.dtype}, the model expects {spec.dtype}")
    return value.astype(spec.dtype)


def _read(path: Path) -> dict[str, np.ndarray] | np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle, which a sample file must not
        raise SignatureError(f"{path}: cannot read without pickle ({exc}); save strings as a str array, not objects") from exc
    except (OSError, EOFError) as exc:
        raise SignatureError(f"{path}: not a readable {path.suffix} file: {exc}") from exc


def load(path: Path, specs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    """Read ``.npy`` (single-input models) or ``.npz`` (one array per input name) and fit it to ``specs``."""
    path = Path(path)
    if not path.is_file():
        raise SignatureError(f"sample file not found: {path}")
    names = [s.name for s in specs]
    if path.suffix not in (".npy", ".npz"):
        raise SignatureError(f"{path}: SAMPLE must be a .npy or .npz file")
    if path.suffix == ".npy" and len(specs) != 1:
        raise SignatureError(f"{path}: a .npy sample fits single-input models; this one takes {names}: use .npz")
    data = _read(path)
    arrays = {names[0]: data} if isinstance(data, np.ndarray) else data
    if sorted(arrays) != sorted(names):
        raise SignatureError(f"{path}: arrays {sorted(arrays)} do not match the model inputs {sorted(names)}")
    fitted = {s.name: _fit(s, arrays[s.name], str(path)) for s in specs}
    batches = {a.shape[0] for a in fitted.values()}
    if len(batches) != 1 or 0 in batches:
        raise SignatureError(f"{path}: every input needs the same non-zero batch size, got {sorted(batches)}")
    return fitted
