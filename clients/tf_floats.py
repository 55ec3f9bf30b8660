"""float32 values as TF Serving's REST API writes them (``json_tensor.cc`` ``WriteDecimal<float>``), vectorized.

TF Serving prints a float32 with ``absl::StrCat`` (``%g``: 6 significant digits) when that text reads back to the
same float32, else with ``%.9g`` (``max_digits10``), and appends ``.0`` to whole numbers. So float32 0.1 reaches
the client as ``0.1``, not ``0.10000000149011612`` (the float32 widened to double). Note that this is *not*
the shortest round-trip text (numpy's ``repr(np.float32(x))``): float32 0.1234567 is written ``0.123456702``.

``tf_float32_as_double`` returns, for every element, the double a client parses from TF Serving's text; a
shortest-repr double writer (orjson) then prints exactly TF Serving's digits. It is exact and fast: for
``|x|`` in ``[1e-9, 1e6)`` (where model outputs live) the 6- and 9-digit roundings are done in 64-bit-mantissa
``longdouble`` arithmetic where every step is exact; other elements (and platforms whose ``longdouble`` is a
plain double) use the scalar reference ``tf_float32_text``, which is TF Serving's algorithm as written.
"""
from __future__ import annotations

import math
import struct

import numpy as np

_EXACT_LONGDOUBLE = np.finfo(np.longdouble).nmant >= 63  # x86-64 80-bit, aarch64 quad; not macOS arm64
_POW10_LD = np.array([10.0**i for i in range(19)], dtype=np.longdouble)  # 10**i exact in double up to 1e22
_POW10 = np.array([10.0**i for i in range(19)], dtype=np.float64)
_FLOAT32 = struct.Struct("f")
SMALL = 32  # below this many elements a Python loop beats the vectorized path's fixed cost (~20 numpy calls)


def tf_float32_text(value: float) -> str:
    """TF Serving's text for one float32 (``WriteDecimal<float>``), NaN/Infinity included: the reference."""
    v = float(np.float32(value))
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "-Infinity" if v < 0 else "Infinity"
    text = f"{v:g}"
    if np.float32(float(text)) != np.float32(v):
        text = f"{v:.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def tf_float32_scalar(value: float) -> float:
    """The double a client parses from TF Serving's text for one float32 (NaN and infinities unchanged)."""
    v = float(np.float32(value))
    return v if not math.isfinite(v) else float(tf_float32_text(v))


def _small(values: list[float]) -> list[float]:
    """TF Serving's values for a few float32s (each already an exact Python float): %g, else %.9g."""
    out = []
    for v in values:
        if v != v or v == 0 or math.isinf(v):
            out.append(v)
            continue
        d = float(f"{v:g}")
        try:
            same = _FLOAT32.unpack(_FLOAT32.pack(d))[0] == v  # reads back to the same float32?
        except OverflowError:  # %g rounded past the largest float32
            same = False
        out.append(d if same else float(f"{v:.9g}"))
    return out


def tf_float32_as_double(arr: np.ndarray, *, small: int = SMALL) -> np.ndarray:
    """float32 array -> float64 array of the values TF Serving's text denotes (same shape; non-finite kept).

    Arrays of fewer than ``small`` elements take a plain Python loop (cheaper than the vectorized setup)."""
    a = np.asarray(arr, dtype=np.float32)
    flat = np.ascontiguousarray(a).reshape(-1)
    if flat.size < small:
        return np.array(_small(flat.tolist()), dtype=np.float64).reshape(a.shape)
    with np.errstate(invalid="ignore"):  # a signalling NaN widens quietly
        x = flat.astype(np.float64)
    out = x.copy()  # zeros (signed), NaN and infinities are printed as they are
    ax = np.abs(x)
    todo = np.flatnonzero(np.isfinite(x) & (ax != 0))
    if not todo.size:
        return out.reshape(a.shape)
    if _EXACT_LONGDOUBLE:
        fast = _round_in_range(flat, x, ax, todo, out)
        todo = todo[~fast]
    for i in todo.tolist():  # out of the exact range: the scalar reference, one element at a time
        out[i] = tf_float32_scalar(x[i])
    return out.reshape(a.shape)


def _round_in_range(flat: np.ndarray, x: np.ndarray, ax: np.ndarray, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out[idx]`` where ``1e-9 <= |x| < 1e6``; return the mask of ``idx`` handled.

    With ``E = floor(log10|x|)`` and ``k = 5 - E``, ``y = |x| * 10**k`` is exact in a 64-bit mantissa (a 24-bit
    float32 mantissa times ``5**k`` for ``k <= 17``), so ``rint(y)`` is ``%.6g``'s correctly rounded digits.
    They read back to x iff ``|rint(y) - y|`` is inside x's rounding interval scaled by ``10**k`` (also exact;
    ties go to the even mantissa, as strtof rounds). Otherwise ``%.9g``: ``rint(|x| * 10**(k + 3))``.
    """
    a = ax[idx]
    exp10 = np.floor(np.log10(a)).astype(np.int64)
    inside = (exp10 >= -9) & (exp10 <= 5)
    exp10 = np.clip(exp10, -9, 5)
    xl = a.astype(np.longdouble)
    y6 = xl * _POW10_LD[5 - exp10]
    # log10 may be one off next to a power of ten: put y6 in [1e5, 1e6) exactly.
    low, high = y6 < 1e5, y6 >= 1e6
    exp10 = exp10 - low + high
    inside &= (exp10 >= -9) & (exp10 <= 5)
    exp10 = np.clip(exp10, -9, 5)
    k6 = 5 - exp10
    y6 = xl * _POW10_LD[k6]
    q6 = np.rint(y6)
    frac, exp2 = np.frexp(a)  # a = frac * 2**exp2, frac in [0.5, 1): the float32 ulp is 2**(exp2 - 24)
    half_up = np.ldexp(np.ones_like(xl), exp2 - 25) * _POW10_LD[k6]
    half_down = np.where(frac == 0.5, half_up / 2, half_up)  # below a power of two the gap halves
    even = (flat[idx].view(np.uint32) & 1) == 0
    gap = np.abs(q6 - y6)
    bound = np.where(q6 >= y6, half_up, half_down)
    six = (gap < bound) | ((gap == bound) & even)
    k9 = k6 + 3
    q9 = np.rint(xl * _POW10_LD[np.minimum(k9, 18)])
    six_value = q6.astype(np.float64) / _POW10[k6]
    nine_value = q9.astype(np.float64) / _POW10[np.minimum(k9, 18)]
    value = np.where(six, six_value, nine_value)
    ok = inside & (six | (k9 <= 17))
    sel = idx[ok]
    out[sel] = np.copysign(value[ok], x[sel])
    return ok
