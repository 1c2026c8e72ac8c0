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
references to objects the replay itself created, stand-ins for objects of another
Kernel, or members of the enums below. Every error names the file and the line
(:class:`TraceError`).

Reading is bounded, so that a hostile file costs little: only regular files are read,
a line may hold at most :data:`MAX_LINE_BYTES` bytes of UTF-8 and nest JSON arrays and
objects at most :data:`MAX_DEPTH` deep, and mismatch messages quote at most
:data:`QUOTE_MAX` characters of an event.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import os
import re
import stat
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from ._args import check_int
from ._behavior import FIXED, Behavior
from ._bpf_namespace import ObjType
from ._capability import Cap
from ._fault import FaultSite
from ._kernel import Kernel
from ._trace import (
    EVENT_TYPES,
    REPLAYABLE_ENUMS,
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

__all__ = ["MAX_DEPTH", "MAX_LINE_BYTES", "QUOTE_MAX", "load_trace", "replay", "replay_steps"]

#: The longest line a trace may have, in bytes (an event bpfns writes is a few hundred).
MAX_LINE_BYTES = 1 << 20
#: How deep a line may nest JSON arrays and objects (bpfns writes at most 4 levels).
MAX_DEPTH = 32
#: How many characters of an event a mismatch message quotes.
QUOTE_MAX = 300

#: The enums a call argument may name.
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls for cls in (ObjType, Cap, FaultSite, UcountType)
}
assert tuple(_ENUMS) == REPLAYABLE_ENUMS
#: A JSON string, or one bracket (for the nesting depth of a line).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


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


def _depth(text: str) -> int:
    """How deeply ``text`` nests JSON arrays and objects (brackets in strings excluded)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _parse_event(source: str, line: int, text: str) -> Event:
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise TraceError(
            source, line, f"JSON nested deeper than {MAX_DEPTH} levels; a trace event is flat"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TraceError(source, line, f"not JSON ({err.msg}); one event per line") from None
    except (ValueError, RecursionError) as err:  # e.g. an int of more than 4300 digits
        raise TraceError(source, line, f"not a JSON value bpfns reads ({err})") from None
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
        TraceError: naming the first bad line, or the file itself if it cannot be
            read or is not a regular file; lines are at most :data:`MAX_LINE_BYTES`
            bytes of UTF-8 and nest at most :data:`MAX_DEPTH` deep.
        TypeError: if ``path`` is not a file name.

    >>> import os, tempfile
    >>> from bpfns import Kernel
    >>> k = Kernel(trace=True)
    >>> _ = k.init_ns.create_child(name="c")
    >>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> k.trace.to_jsonl(path)
    >>> load_trace(path).steps
    1
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file name, not {type(path).__name__}")
    source = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open: a FIFO would block
            raise TraceError(source, 0, "not a regular file; a trace is a file to_jsonl wrote")
        with Path(path).open("rb") as file:
            events = _read_events(source, file)
    except OSError as err:
        raise TraceError(source, 0, f"cannot read it ({err.strerror or err})") from None
    check_structure(source, events)
    return Trace(events, source=source)


def _read_events(source: str, file: typing.BinaryIO) -> list[Event]:
    """Every line of ``file`` as an event, within the limits of a trace."""
    events: list[Event] = []
    for n in itertools.count(1):
        raw = file.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return events
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise TraceError(
                source, n, f"longer than {MAX_LINE_BYTES} bytes; a trace event is one short line"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TraceError(source, n, f"not UTF-8 (byte {err.start} of the line)") from None
        events.append(_parse_event(source, n, text.rstrip("\r\n")))
    raise AssertionError("unreachable")  # itertools.count never ends


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
            word_size=header.word_size,
            bpf_preload=header.bpf_preload,
            trace=True,
        )
    except (TypeError, ValueError) as err:
        raise TraceError(source, 1, f"cannot build the kernel: {err}") from None


@attrs.define
class _Foreign:
    """Objects of another Kernel, standing in for the ``{"foreign": kind}`` arguments."""

    kernel: Kernel | None = None
    made: dict[str, object] = attrs.field(factory=dict)

    def get(self, kind: str) -> object | None:
        """An object of ``kind`` that belongs to another Kernel, or None for no such kind."""
        if kind not in self.made:
            k = self.kernel = self.kernel or Kernel(FIXED)
            makers: dict[str, Any] = {
                "kernel": lambda: k,
                "faults": lambda: k.faults,
                "ns": lambda: k.init_ns,
                "userns": lambda: k.init_user_ns,
                "task": lambda: k.init_task,
                "oid": lambda: k.alloc_obj_id(k.init_ns, "foreign", ObjType.MAP),
                "primer": lambda: k.init_task.link_prime(k.init_task.prog_load()),
            }
            if kind not in makers:
                return None
            self.made[kind] = makers[kind]()
        return self.made[kind]


def _decode(
    source: str, line: int, value: Any, objects: dict[str, object], foreign: _Foreign
) -> Any:
    """A call argument from JSON (see :meth:`bpfns._trace.Tracer.encode`)."""
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise TraceError(source, line, "a list argument must be written {'list': [...]}")
        return value
    tags = set(value)
    tag = "enum" if tags == {"enum", "name"} else next(iter(tags)) if len(tags) == 1 else ""
    decoder = None if tags == {"enum"} else _DECODERS.get(tag)  # an enum needs its name
    if decoder is not None:

        def inner(item: Any) -> Any:
            return _decode(source, line, item, objects, foreign)

        result = decoder(_Args(value, objects, foreign, inner))
        if not isinstance(result, _Refused):
            return result
        raise TraceError(source, line, f"{result.why} in argument {_quote(value)}")
    raise TraceError(source, line, f"cannot decode argument {_quote(value)}")


@attrs.frozen
class _Refused:
    """A decoder's answer for an argument it cannot decode: why."""

    why: str


@attrs.frozen
class _Args:
    """What a decoder of one tagged argument gets."""

    value: dict[str, Any]
    objects: dict[str, object]
    foreign: _Foreign
    decode: Callable[[Any], Any]


def _decode_ref(a: _Args) -> object:
    ref = a.value["ref"]
    found = a.objects.get(ref) if isinstance(ref, str) else None
    return _Refused("unknown reference") if found is None else found


def _decode_enum(a: _Args) -> object:
    cls = _ENUMS.get(a.value["enum"]) if isinstance(a.value["enum"], str) else None
    name = a.value["name"]
    if cls is None or not isinstance(name, str) or name not in cls.__members__:
        return _Refused(f"unknown enum member (enums: {', '.join(_ENUMS)})")
    return cls[name]


def _decode_list(a: _Args) -> object:
    items = a.value.get("list", a.value.get("set"))
    if not isinstance(items, list):
        return _Refused("a list or set argument holds a JSON array")
    decoded = [a.decode(v) for v in items]
    if "list" in a.value:
        return tuple(decoded)
    try:
        return frozenset(decoded)
    except TypeError:  # an unhashable member: not a set bpfns wrote
        return _Refused("a set holds an unhashable value")


def _decode_opaque(a: _Args) -> object:
    text = a.value["opaque"]
    return _Opaque(text) if isinstance(text, str) else _Refused("an opaque value is a string")


def _decode_bigint(a: _Args) -> object:
    text = a.value["bigint"]
    try:
        return int(text, 16) if isinstance(text, str) else _Refused("a bigint is a hex string")
    except ValueError:
        return _Refused("a bigint is a hex string")


def _decode_foreign(a: _Args) -> object:
    kind = a.value["foreign"]
    stand_in = a.foreign.get(kind) if isinstance(kind, str) else None
    return _Refused("unknown foreign kind") if stand_in is None else stand_in


#: How each tagged argument decodes: ``{"ref"}``, ``{"enum", "name"}``, ``{"list"}``, ...
_DECODERS: dict[str, Callable[[_Args], object]] = {
    "ref": _decode_ref,
    "enum": _decode_enum,
    "list": _decode_list,
    "set": _decode_list,
    "opaque": _decode_opaque,
    "bigint": _decode_bigint,
    "foreign": _decode_foreign,
}


def _quote(value: object) -> str:
    """``value`` as JSON, cut to :data:`QUOTE_MAX` characters for a message."""
    text = json.dumps(value) if not isinstance(value, Event) else json.dumps(value.to_json())
    if len(text) <= QUOTE_MAX:
        return text
    return f"{text[:QUOTE_MAX]}... ({len(text) - QUOTE_MAX} more characters)"


def _call(source: str, line: int, k: Kernel, enter: Enter, foreign: _Foreign) -> None:
    assert k.tracer is not None
    objects = k.tracer.objects
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
    args = [_decode(source, line, a, objects, foreign) for a in enter.args]
    kwargs = {name: _decode(source, line, v, objects, foreign) for name, v in enter.kwargs.items()}
    # An exception is part of what the call did: its Return event records it, and
    # _compare checks that against the trace.
    with contextlib.suppress(Exception):
        getattr(target, enter.op)(*args, **kwargs)


def _compare(source: str, first_line: int, recorded: list[Event], produced: list[Event]) -> None:
    for i, want in enumerate(recorded):
        got = produced[i] if i < len(produced) else None
        if got is None or got.to_json() != want.to_json():
            did = "nothing more" if got is None else _quote(got)
            raise ReplayMismatchError(
                source,
                first_line + i,
                f"the trace records {_quote(want)}, but the replay did {did}",
            )
    if len(produced) > len(recorded):
        extra = _quote(produced[len(recorded)])
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
    if isinstance(source, str | os.PathLike):
        return str(source), load_trace(source)
    raise TypeError(f"source must be a trace file name or a bpfns.Trace, not {source!r}"[:200])


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
    foreign = _Foreign()
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
        _call(name, i + 1, k, enter, foreign)
        _compare(name, i + 1, events[i : end + 1], produced[mark:])
        yield enter, k
        i = end + 1  # check_structure: the next event is the next call


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
    if until is not None:
        check_int("until", until, 0, 2**63 - 1, "")
    steps = replay_steps(source)
    _, world = next(steps)  # the world of step 0; step 1 has not run yet
    if until != 0:
        for call, _ in steps:
            if until is not None and call is not None and call.step >= until:
                break
    return world
