"""Reading a JSON Lines trace back, and replaying it on a fresh Kernel.

A trace written by :meth:`bpfns.Trace.to_jsonl` holds the calls that built a world (the
:class:`~bpfns.Enter` events) and everything the kernel did during each (ids per level
with their cursors, namespaces created and freed, RCU callbacks, faults, reports).
:func:`replay` builds a new traced Kernel from the header, makes the same calls in the
same order and checks that the kernel does the same things: the same ids at every
level, the same results and the same errors. The simulation is deterministic, so a
trace of bpfns replays exactly; a difference means the trace was edited or was written
by a bpfns that behaves differently.

A trace is data, never code: every line is checked against the event classes of
:mod:`bpfns._trace` (kind, field names, field types) before anything runs, a call may
only name a method marked as traced, and its arguments may only be JSON values,
references to objects the replay itself created, or members of the enums below. Every
error names the line (:class:`TraceError`).

Events outside a call (a sanitizer report raised by a read such as ``ObjId.numbers``
on a freed handle) are checked for format only: replay makes no reads of its own.
"""

from __future__ import annotations

import contextlib
import enum
import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ._behavior import Behavior
from ._bpf_namespace import ObjType
from ._capability import Cap
from ._fault import FaultSite
from ._kernel import Kernel
from ._trace import (
    EVENT_TYPES,
    Enter,
    Event,
    KernelCreated,
    ReplayMismatchError,
    Return,
    Trace,
    TraceError,
    check_structure,
)
from ._ucount import UcountType

__all__ = ["load_trace", "replay", "replay_steps"]

#: The enums a call argument may name.
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls for cls in (ObjType, Cap, FaultSite, UcountType)
}


@attrs.frozen(repr=False)
class _Opaque:
    """Stands in for an argument the trace kept only as its repr (an ``obj`` payload)."""

    text: str

    def __repr__(self) -> str:
        return self.text


# -- loading ---------------------------------------------------------------------------


def _conforms(value: object, tp: Any) -> bool:
    """Whether a JSON value fits the annotation ``tp`` of an event field."""
    origin = typing.get_origin(tp)
    if origin is types.UnionType:
        return any(_conforms(value, arg) for arg in typing.get_args(tp))
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        return isinstance(value, dict) and all(
            _conforms(k, key_tp) and _conforms(v, value_tp) for k, v in value.items()
        )
    if tp is int:  # JSON true is a Python bool, which is an int
        return isinstance(value, int) and not isinstance(value, bool)
    simple: type = {Any: object, list: list}.get(origin or tp, tp)
    return isinstance(value, simple)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _parse_event(source: str, line: int, text: str) -> Event:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TraceError(source, line, f"not JSON ({err.msg}); one event per line") from None
    if not isinstance(data, dict):
        raise TraceError(source, line, "an event must be a JSON object")
    kind = data.pop("kind", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise TraceError(
            source, line, f"unknown event kind {kind!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    fields = {f.name: f.type for f in attrs.fields(attrs.resolve_types(cls))}
    if set(data) != set(fields):
        missing, extra = sorted(set(fields) - set(data)), sorted(set(data) - set(fields))
        raise TraceError(
            source, line, f"{kind} event: missing fields {missing}, unexpected fields {extra}"
        )
    for name, tp in fields.items():
        if not _conforms(data[name], tp):
            raise TraceError(
                source,
                line,
                f"{kind} event: field {name!r} must be {_type_name(tp)}, not {data[name]!r}",
            )
    return cls(**data)


def load_trace(path: str | Path) -> Trace:
    """Read and check a JSON Lines trace written by :meth:`bpfns.Trace.to_jsonl`.

    Nothing runs: each line is checked against its event class (kind, field names and
    types) and the whole file against the trace's structure (header first, calls
    numbered from 1, each call returning).

    Raises:
        TraceError: naming the first bad line.
        OSError: if the file cannot be read.

    >>> import os, tempfile
    >>> from bpfns import Kernel
    >>> k = Kernel(trace=True)
    >>> _ = k.init_ns.create_child(name="c")
    >>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> k.trace.to_jsonl(path)
    >>> load_trace(path).steps
    1
    """
    source = str(path)
    text = Path(path).read_text(encoding="utf-8")
    events = [_parse_event(source, n, line) for n, line in enumerate(text.splitlines(), 1)]
    check_structure(source, events)
    return Trace(events, source=source)


# -- replaying -------------------------------------------------------------------------


def _new_kernel(source: str, header: KernelCreated) -> Kernel:
    known = {f.name for f in attrs.fields(Behavior)}
    if set(header.behavior) != known:
        raise TraceError(source, 1, f"behavior must set exactly the switches {sorted(known)}")
    try:
        return Kernel(
            Behavior(**header.behavior),
            id_end=header.id_end,
            max_level=header.max_level,
            on_bug=header.on_bug,  # type: ignore[arg-type]  # Kernel checks the value
            ucount_max=header.ucount_max,
            trace=True,
        )
    except (TypeError, ValueError) as err:
        raise TraceError(source, 1, f"cannot build the kernel: {err}") from None


def _decode(source: str, line: int, value: Any, objects: dict[str, object]) -> Any:
    """A call argument from JSON; only references, enums, lists and scalars."""
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise TraceError(source, line, "a list argument must be written {'list': [...]}")
        return value
    if set(value) == {"ref"} and isinstance(value["ref"], str):
        if value["ref"] not in objects:
            raise TraceError(source, line, f"unknown reference {value['ref']!r}")
        return objects[value["ref"]]
    if set(value) == {"enum", "name"}:
        cls = _ENUMS.get(value["enum"])
        if cls is None or value["name"] not in cls.__members__:
            raise TraceError(source, line, f"unknown enum member {value}")
        return cls[value["name"]]
    if set(value) == {"list"} and isinstance(value["list"], list):
        return tuple(_decode(source, line, v, objects) for v in value["list"])
    if set(value) == {"opaque"} and isinstance(value["opaque"], str):
        return _Opaque(value["opaque"])
    raise TraceError(source, line, f"cannot decode argument {value!r}")


def _call(source: str, line: int, k: Kernel, enter: Enter) -> None:
    assert k._tracer is not None
    objects = k._tracer.objects
    target = objects.get(enter.target)
    if target is None:
        raise TraceError(source, line, f"unknown call target {enter.target!r}")
    method = getattr(type(target), enter.op, None)
    if not getattr(method, "__bpfns_traced__", False):
        raise TraceError(
            source, line, f"{type(target).__name__}.{enter.op} is not a call a trace may make"
        )
    private = sorted(name for name in enter.kwargs if name.startswith("_"))
    if private:
        raise TraceError(source, line, f"{enter.op}: private arguments {private} are not data")
    args = [_decode(source, line, a, objects) for a in enter.args]
    kwargs = {name: _decode(source, line, v, objects) for name, v in enter.kwargs.items()}
    # An exception is part of what the call did: its Return event records it, and
    # _compare checks that against the trace.
    with contextlib.suppress(Exception):
        getattr(target, enter.op)(*args, **kwargs)


def _compare(source: str, first_line: int, recorded: list[Event], produced: list[Event]) -> None:
    for i, want in enumerate(recorded):
        got = produced[i] if i < len(produced) else None
        if got is None or got.to_json() != want.to_json():
            did = "nothing more" if got is None else json.dumps(got.to_json())
            raise ReplayMismatchError(
                source,
                first_line + i,
                f"the trace records {json.dumps(want.to_json())}, but the replay did {did}",
            )
    if len(produced) > len(recorded):
        extra = json.dumps(produced[len(recorded)].to_json())
        raise ReplayMismatchError(
            source,
            first_line + len(recorded) - 1,
            f"the replay did more than the trace records, next: {extra}",
        )


def _as_trace(source: str | Path | Trace) -> tuple[str, Trace]:
    if isinstance(source, Trace):
        name = source.source or "<trace>"
        check_structure(name, source.events)
        return name, source
    if isinstance(source, str | Path):
        return str(source), load_trace(source)
    raise TypeError(f"replay needs a trace file name or a bpfns.Trace, not {source!r}")


def replay_steps(source: str | Path | Trace) -> Iterator[tuple[Enter | None, Kernel]]:
    """Replay a trace one call at a time: yield ``(call, kernel)`` after each step.

    The first item is ``(None, kernel)``, the freshly built world of step 0; the
    kernel is the same object throughout, so a notebook can draw it at every step.

    Raises:
        TraceError: for a malformed trace, before anything is yielded.
        ReplayMismatchError: at the first step where the replay differs from the trace.
        TypeError: if ``source`` is neither a path nor a :class:`bpfns.Trace`.

    >>> from bpfns import Kernel
    >>> k = Kernel(trace=True)
    >>> child = k.init_ns.create_child(name="c")
    >>> child.put()
    >>> [(call and call.op, len(w.namespaces())) for call, w in replay_steps(k.trace)]
    [(None, 1), ('create_child', 2), ('put', 2)]
    """
    name, trace = _as_trace(source)
    events = trace.events
    header = events[0]
    assert isinstance(header, KernelCreated)
    k = _new_kernel(name, header)
    produced = k.trace.events
    first_call = next((i for i, e in enumerate(events) if isinstance(e, Enter)), len(events))
    _compare(name, 1, events[:first_call], produced)
    yield None, k
    i = first_call
    while i < len(events):
        enter = events[i]
        assert isinstance(enter, Enter)
        end = next(j for j in range(i, len(events)) if isinstance(events[j], Return))
        mark = len(produced)
        _call(name, i + 1, k, enter)
        _compare(name, i + 1, events[i : end + 1], produced[mark:])
        yield enter, k
        # Events between a return and the next call come from reads: format only.
        i = next((j for j in range(end, len(events)) if isinstance(events[j], Enter)), len(events))


def replay(source: str | Path | Trace, *, until: int | None = None) -> Kernel:
    """Rebuild the world a trace describes: the same calls, the same ids.

    ``until=N`` stops after step N (the N-th call; 0 is the new kernel), which shows the
    world as it was then. The returned Kernel traces too.

    Raises:
        TraceError: for a malformed trace (naming the line); nothing is run.
        ReplayMismatchError: if the replay does not do what the trace records.
        ValueError: if ``until`` is negative.
        TypeError: if ``source`` is neither a path nor a :class:`bpfns.Trace`.

    >>> from bpfns import Kernel, ObjType
    >>> k = Kernel(trace=True)
    >>> oid = k.alloc_obj_id(k.init_ns.create_child(), "m", ObjType.MAP)
    >>> again = replay(k.trace)
    >>> again.trace.dumps() == k.trace.dumps()
    True
    >>> [len(ns.idr[ObjType.MAP]) for ns in replay(k.trace, until=1).namespaces()]
    [0, 0]
    """
    if until is not None and (not isinstance(until, int) or until < 0):
        raise ValueError(f"until={until!r} must be a step number >= 0")
    steps = replay_steps(source)
    _, world = next(steps)  # the world of step 0; step 1 has not run yet
    if until != 0:
        for call, _ in steps:
            if until is not None and call is not None and call.step >= until:
                break
    return world
