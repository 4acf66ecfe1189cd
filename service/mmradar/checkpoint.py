"""Checkpoints of a feed's pipeline state: the flight recorder's restore points.

The flight recorder (:mod:`mmradar.flight`) starts every segment of its ring with one, and
``mmradar replay`` restores the one a recording starts with before driving the pipeline
through the frames after it. Pure: no I/O, no clock.

Checkpoint format (record kind ``checkpoint``, format version 2 of :mod:`mmradar.record`): a
pickle (protocol 5) of the pure core's objects. The feed's venue object and the callbacks the
shell wires into the core (the resync observer, the episode sink) are not in it: they are
references resolved to the replaying pipeline's own. Loading it accepts only the classes of the
pure core (:data:`_ALLOWED_MODULES`) and a few builtins, never arbitrary callables. Classes
compiled with mypyc are saved through their ``__mypyc_attrs__`` (native classes do not pickle
by themselves) and restored into blank instances: those classes are marked
``allow_interpreted_subclasses``, the one mypyc setting under which ``cls.__new__(cls)`` does not
run ``__init__`` while calling the class still does. A venue object's own state is not in the
checkpoint: its contract sizes (OKX derivatives) come from the ``contracts`` record every
recording of such a feed carries after its header.

Recordings written before this module was split out of :mod:`mmradar.flight` name the helper
functions there; :class:`_Unpickler` reads those names as this module's.
"""

from __future__ import annotations

import contextvars
import functools
import io
import pickle
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .errors import CheckpointError
from .pipeline import FeedPipeline
from .venues.base import ConnectionPlan, FrameParser, SnapshotSource

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "Restored",
    "restore_checkpoint",
    "take_checkpoint",
]

#: Version of the checkpoint payload (inside a ``checkpoint`` record). 2: the flow state bins
#: signed taker notional (``FlowState.signed_notional_at_tick``).
CHECKPOINT_VERSION: Final = 2
#: Modules whose classes a checkpoint may contain: the pure core only (no I/O in their code).
_ALLOWED_MODULES: Final = (
    "mmradar.book.",
    "mmradar.signals.",
    "mmradar.venues.",
    "mmradar.model",
    "mmradar.pipeline",
    "mmradar.histograms",
    "mmradar.contracts",
    "mmradar.instruments",
    "mmradar.checkpoint",
)
_ALLOWED_BUILTINS: Final = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "object"),
    ("collections", "deque"),
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("copyreg", "_reconstructor"),
    ("array", "array"),
    ("array", "_array_reconstructor"),
    ("decimal", "Decimal"),
}


def _new(cls: Any) -> Any:
    return cls.__new__(cls)


def _set_state(obj: object, state: Mapping[str, Any]) -> None:
    for name, value in state.items():
        object.__setattr__(obj, name, value)  # frozen dataclasses too


_CALLABLES: Final = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)


#: The references of the checkpoint being restored (:func:`_ref` reads them).
_RESTORING: contextvars.ContextVar[Mapping[tuple[str, ...], object]] = contextvars.ContextVar(
    "mmradar_flight_restoring"
)


def _ref(*key: str) -> object:
    """The restoring pipeline's own object for a reference a checkpoint holds (see _refs)."""
    refs = _RESTORING.get()
    try:
        return refs[key]
    except KeyError:
        raise CheckpointError(f"the checkpoint refers to {key!r}, unknown here") from None


class _Pickler(pickle.Pickler):
    """Pickles the pure core: references for the venue and the shell's callbacks, mypyc native
    classes through their attributes (only objects that are not plain data get here)."""

    def __init__(self, file: io.BytesIO, refs: Mapping[int, tuple[str, ...]]) -> None:
        super().__init__(file, protocol=5)
        self._refs = refs

    def reducer_override(self, obj: Any) -> Any:
        ref = self._refs.get(id(obj))
        if ref is not None:
            return (_ref, ref)
        if isinstance(obj, _CALLABLES) and obj not in _OWN:
            raise CheckpointError(f"the pipeline state refers to {obj!r}, which has no checkpoint")
        cls = type(obj)
        attrs = getattr(cls, "__mypyc_attrs__", None)
        if attrs is None or isinstance(obj, type):
            return NotImplemented
        # A mypyc native class: saved as its attributes, restored without __init__.
        state = {a: getattr(obj, a) for a in attrs if a != "__dict__" and hasattr(obj, a)}
        return (_new, (cls,), state, None, None, _set_state)


_OWN: Final = (_ref, _new, _set_state)
_OWN_NAMES: Final = frozenset(f.__name__ for f in _OWN)
#: Where :data:`_OWN` lived before this module was split out (older recordings name it).
_FORMER_MODULE: Final = "mmradar.flight"


class _Unpickler(pickle.Unpickler):
    """Loads only the pure core's classes and a few builtins (never arbitrary callables)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == _FORMER_MODULE and name in _OWN_NAMES:
            module = __name__
        if (module, name) in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module.startswith(_ALLOWED_MODULES):
            obj = super().find_class(module, name)
            if isinstance(obj, type) or obj in _OWN:
                return obj
        raise CheckpointError(f"a checkpoint may not contain {module}.{name}")


def _refs(pipeline: FeedPipeline) -> dict[tuple[str, ...], object]:
    """What a checkpoint refers to instead of containing: the venue and the callbacks the shell
    wires into each instrument (resync observer, episode sink, cross-venue tick)."""
    refs: dict[tuple[str, ...], object] = {("venue",): pipeline.venue}
    for symbol, inst in pipeline.instruments.items():
        refs[("on_resync", symbol)] = inst.sync._on_resync
        refs[("on_episode", symbol)] = inst.engine.on_episode
        refs[("on_tick", symbol)] = inst.engine.on_tick
    return refs


def take_checkpoint(
    pipeline: FeedPipeline,
    connections: Sequence[tuple[ConnectionPlan, FrameParser | None]],
) -> bytes:
    """The state of ``pipeline`` now, as a checkpoint payload.

    Args:
        pipeline: the feed's pipeline.
        connections: every open connection with its frame parser (None: no frame read on it
            yet; the replay makes a fresh one, as live will).

    Raises:
        CheckpointError: some state cannot be saved.
    """
    instruments = {
        s: (inst.book, inst.sync, inst.market, inst.engine, inst.last_depth_recv_ns)
        for s, inst in pipeline.instruments.items()
    }
    state = {
        "version": CHECKPOINT_VERSION,
        "exchange": pipeline.venue.name,
        "instruments": instruments,
        "connections": [
            (plan.name, plan.depth_symbols, plan.trade_symbols, plan.url, parser)
            for plan, parser in connections
        ],
        "carriers": dict(pipeline._carriers),
    }
    refs = {id(obj): key for key, obj in _refs(pipeline).items() if obj is not None}
    out = io.BytesIO()
    try:
        _Pickler(out, refs).dump(state)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{pipeline.venue.name}: cannot checkpoint: {exc!r}") from exc
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Restored:
    """What :func:`restore_checkpoint` put back.

    Attributes:
        connections: ``(name, depth symbols, trade symbols, parser)`` of every connection that
            was open (parser None: make a fresh one).
        awaiting: symbols whose book was waiting for a REST snapshot.
    """

    connections: tuple[tuple[str, tuple[str, ...], tuple[str, ...], FrameParser | None], ...]
    awaiting: frozenset[str]


def restore_checkpoint(pipeline: FeedPipeline, payload: bytes) -> Restored:
    """Put the state of a checkpoint into ``pipeline`` (same exchange, any symbols).

    Instruments of the checkpoint the pipeline does not have are left out; the pipeline's
    own venue and callbacks stay wired in.

    Raises:
        CheckpointError: the payload is not a checkpoint this mmradar can restore.
    """
    token = _RESTORING.set(_refs(pipeline))
    try:
        state = _Unpickler(io.BytesIO(payload)).load()
    except CheckpointError:
        raise
    except Exception as exc:  # any corruption of the payload
        raise CheckpointError(f"unreadable checkpoint: {exc!r}") from exc
    finally:
        _RESTORING.reset(token)
    if type(state) is not dict or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError("not a checkpoint of this version")
    if state.get("exchange") != pipeline.venue.name:
        raise CheckpointError(f"a checkpoint of {state.get('exchange')!r}")
    awaiting: set[str] = set()
    for symbol, (book, sync, market, signals, recv_ns) in state["instruments"].items():
        inst = pipeline.instruments.get(symbol)
        if inst is None:
            continue
        inst.book, inst.sync, inst.market, inst.engine = book, sync, market, signals
        inst.last_depth_recv_ns = recv_ns
        if pipeline.venue.snapshot_source is SnapshotSource.REST and getattr(
            sync, "_awaiting_snapshot", False
        ):
            awaiting.add(symbol)
    pipeline._carriers = {s: p for s, p in state["carriers"].items() if s in pipeline.instruments}
    connections = tuple(
        (str(name), tuple(depth), tuple(trades), parser)
        for name, depth, trades, _url, parser in state["connections"]
    )
    return Restored(connections, frozenset(awaiting))
