"""The client contract of a version: may a new version replace the last one without breaking its callers?

A TF Serving client sends the ``serving_default`` input keys with a dtype and a shape, and reads output keys.
A new version of the same name breaks it when an input key appears or disappears (TF Serving refuses
unknown and missing inputs), when a dtype changes, when a dimension the client had to honour changes or a
free dimension becomes fixed, when an output it reads disappears or changes dtype, or when a model with one
output gains more (REST row format then answers objects instead of bare values). Widening a fixed
dimension to ``None`` and adding outputs to a multi-output model are compatible.

Used by the exporter (refuse an incompatible new version unless ``ALLOW_SIGNATURE_CHANGE=1``) and by the
rollout preflight (refuse a canary incompatible with ``stable``). Works on the ``signature`` record of
``metadata.json`` (``{"inputs": [{"name", "dtype", "shape"}], "outputs": [...]}``); standard library only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SignatureChange", "signature_diff", "format_diff"]


@dataclass(frozen=True)
class SignatureChange:
    """One incompatibility: which side (``input``/``output``), the key, and what changed from old to new."""

    side: str
    key: str
    what: str
    old: object
    new: object

    def __str__(self) -> str:
        return f"{self.side} {self.key!r}: {self.what} {_fmt(self.old)} -> {_fmt(self.new)}"


def _fmt(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join("None" if d is None or d == -1 else str(d) for d in value) + "]"
    return "absent" if value is None else str(value)


def _by_name(tensors: Sequence[Mapping]) -> dict[str, Mapping]:
    return {t["name"]: t for t in tensors}


def _norm_shape(shape: Sequence | None) -> list | None:
    return None if shape is None else [None if d is None or d == -1 else int(d) for d in shape]


def _shape_breaks(old: list | None, new: list | None) -> bool:
    """True when a request valid for ``old`` may be refused by ``new`` (or an output's form changed)."""
    if old is None or new is None:
        return old is not None and new is not None
    if len(old) != len(new):
        return True
    return any(n is not None and o != n for o, n in zip(old, new, strict=True))


def _compare(side: str, old: Mapping[str, Mapping], new: Mapping[str, Mapping], *,
             extra_allowed: bool) -> list[SignatureChange]:
    out: list[SignatureChange] = []
    for key in sorted(set(old) - set(new)):
        out.append(SignatureChange(side, key, "removed", old[key]["dtype"], None))
    if not extra_allowed:
        for key in sorted(set(new) - set(old)):
            out.append(SignatureChange(side, key, "added", None, new[key]["dtype"]))
    for key in sorted(set(old) & set(new)):
        o, n = old[key], new[key]
        if o["dtype"] != n["dtype"]:
            out.append(SignatureChange(side, key, "dtype", o["dtype"], n["dtype"]))
        os_, ns = _norm_shape(o.get("shape")), _norm_shape(n.get("shape"))
        if _shape_breaks(os_, ns):
            out.append(SignatureChange(side, key, "shape", os_, ns))
    return out


def signature_diff(old: Mapping, new: Mapping) -> list[SignatureChange]:
    """Every change from ``old`` to ``new`` (``metadata.json`` ``signature`` records) that breaks a client.

    Empty means compatible. Inputs must keep exactly the same keys; outputs may only grow when there were
    already several (a single-output model answers bare values in REST row format, several answer objects).
    """
    old_in, new_in = _by_name(old.get("inputs", [])), _by_name(new.get("inputs", []))
    old_out, new_out = _by_name(old.get("outputs", [])), _by_name(new.get("outputs", []))
    changes = _compare("input", old_in, new_in, extra_allowed=False)
    changes += _compare("output", old_out, new_out, extra_allowed=len(old_out) > 1)
    return changes


def format_diff(changes: Sequence[SignatureChange], old_label: str = "old", new_label: str = "new") -> str:
    """The diff as indented lines, for an error message."""
    head = f"serving_default signature of {new_label} is incompatible with {old_label}:"
    return "\n".join([head, *(f"  - {c}" for c in changes)])
