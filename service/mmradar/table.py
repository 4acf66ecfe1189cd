"""The base of every configuration table: a frozen msgspec ``Struct`` that checks itself.

A table declares each key once, as an annotated field::

    warmup_seconds: Annotated[float, Meta(ge=0, description="...", extra={"unit": "s"})] = 600.0

msgspec enforces the type and the ``Meta`` bounds when a document is converted
(:mod:`mmradar.config.load`). :class:`Table` adds the checks msgspec has no bound for, read from
the same declaration: floats must be finite, ``extra={"choices": ...}`` restricts the value to a
set, ``extra={"increasing": True}`` makes a list strictly increasing. A table with checks that
need code (a listen address, a URL, an order between two keys) overrides :meth:`Table.check`.
Both raise :class:`FieldError`, which names the key relative to the table; the loader turns it
into a :class:`~mmradar.errors.ConfigError` with the whole key path (or the environment
variable that set the value).

The checks run on every construction, so a table built in code obeys the file's rules too.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["FieldError", "FieldSpec", "Table", "field_specs"]


class FieldError(ValueError):
    """A key of a table holds a value the table refuses.

    Attributes:
        keys: the key (``"symbols[2]"`` for an item) or, for a check between keys, the keys in
            the order they should be blamed: the loader reports the first one the document or
            the environment sets, else the first.
        reason: short lowercase explanation.
        cross: True for a check between keys (it applies to the values in force, after the
            environment overrides, not to the file's values alone).
    """

    def __init__(self, keys: str | Sequence[str], reason: str, *, cross: bool = False) -> None:
        self.keys = (keys,) if isinstance(keys, str) else tuple(keys)
        self.reason = reason
        self.cross = cross
        super().__init__(f"{self.keys[0]}: {reason}")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One declared key of a table, as read from its annotation.

    Attributes:
        name: the key.
        type: the annotated type without ``Annotated`` (e.g. ``float``, ``tuple[int, ...]``).
        item_type: for a tuple, its items' type without ``Annotated``; else None.
        meta: the field's ``msgspec.Meta`` (an empty one when it has none).
        item_meta: the items' ``Meta`` for a tuple (an empty one when none).
        default: the default, or ``msgspec.NODEFAULT`` for a required key.
    """

    name: str
    type: Any
    item_type: Any
    meta: msgspec.Meta
    item_meta: msgspec.Meta
    default: Any

    @property
    def extra(self) -> dict[str, Any]:
        """``Meta(extra=...)``: ``unit``, ``choices``, ``increasing``, ``default_text``."""
        return self.meta.extra or {}

    @property
    def description(self) -> str:
        """The one-line documentation of the key."""
        return self.meta.description or ""


def _unwrap(tp: Any) -> tuple[Any, msgspec.Meta]:
    """Split ``Annotated[T, Meta(...)]`` into ``T`` and the Meta."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *extras = typing.get_args(tp)
        metas = [m for m in extras if isinstance(m, msgspec.Meta)]
        return base, metas[0] if metas else msgspec.Meta()
    return tp, msgspec.Meta()


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def field_specs(cls: type[msgspec.Struct]) -> tuple[FieldSpec, ...]:
    """The declared keys of a table class, in declaration order (cached)."""
    specs = _SPECS.get(cls)
    if specs is None:
        out = []
        for info in msgspec.structs.fields(cls):
            base, meta = _unwrap(info.type)
            item_type: Any = None
            item_meta = msgspec.Meta()
            if typing.get_origin(base) is tuple:
                item_type, item_meta = _unwrap(typing.get_args(base)[0])
            default = info.default
            if default is msgspec.NODEFAULT and info.default_factory is not msgspec.NODEFAULT:
                default = info.default_factory()
            out.append(FieldSpec(info.name, base, item_type, meta, item_meta, default))
        specs = _SPECS[cls] = tuple(out)
    return specs


class Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A configuration table: frozen, unknown keys refused, every key checked on construction."""

    def __post_init__(self) -> None:
        for spec in field_specs(type(self)):
            _check_field(self, spec)
        self.check()

    def check(self) -> None:
        """The table's own checks beyond the per-key ones: raise :class:`FieldError` (with
        ``cross=True`` for a check between keys). None by default."""


def _check_field(table: Table, spec: FieldSpec) -> None:
    value = getattr(table, spec.name)
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(spec.name, f"must be a finite number, got {value}")
    extra = spec.extra
    choices = extra.get("choices")
    if choices is not None:
        if isinstance(value, str):
            key = value.lower() if extra.get("fold_case") else value
            if key not in choices:
                raise FieldError(
                    spec.name, f"expected one of: {', '.join(choices)} (got {value!r})"
                )
            if key != value:
                msgspec.structs.force_setattr(table, spec.name, key)
        elif value not in choices:
            what = extra.get("choices_name", "the allowed values")
            raise FieldError(spec.name, f"must be one of {what} {list(choices)}, got {value}")
    if extra.get("increasing") and isinstance(value, tuple):
        for i in range(1, len(value)):
            if not value[i] > value[i - 1]:
                raise FieldError(
                    f"{spec.name}[{i}]",
                    f"must be strictly increasing, got {value[i]} after {value[i - 1]}",
                )
