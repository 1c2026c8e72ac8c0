"""Tracing: every kernel action of a ``Kernel(trace=True)`` as an event record.

The kernel has tracepoints and ftrace for this; bpfns has one event class per action
(issue 6): a namespace created, destroyed or freed (``create_bpf_namespace``,
``destroy_bpf_namespace``, ``delayed_free_bpfns``), an id allocated or released at a
level (``idr_alloc_cyclic`` / ``idr_remove`` inside ``bpf_alloc_obj_id`` and
``bpf_free_obj_id``, with the cursor before and after), a rollback, an RCU callback run,
a fault injected, a sanitizer report, and every public call entered and returned (with
its errno). Every event carries ``step``: the number of the top-level call it belongs to
(0 for the kernel's construction).

Objects appear in events as *references*: ``"ns3"`` is the fourth namespace the kernel
created (``"ns0"`` is ``init_bpf_ns``), likewise ``"task0"``, ``"oid0"``, ``"userns0"``
and ``"primer0"``. References are assigned in creation order, so a replay that makes
the same calls assigns the same ones; see :func:`bpfns.replay`.

Tracing is off by default: a kernel without it pays one ``is None`` test per call and
per id level, and keeps nothing. With it, memory grows with the number of events.
"""

from __future__ import annotations

import enum
import functools
import json
import os
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import IO, Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

import attrs

from ._behavior import Behavior


class NsView(Protocol):
    """What a trace records of a new namespace (a :class:`bpfns.Namespace` is one)."""

    @property
    def parent(self) -> NsView | None: ...
    @property
    def level(self) -> int: ...
    @property
    def inum(self) -> int: ...
    @property
    def name(self) -> str | None: ...


class KernelView(Protocol):
    """What a trace's header records of its kernel (a :class:`bpfns.Kernel` is one)."""

    @property
    def behavior(self) -> Behavior: ...
    @property
    def id_end(self) -> int: ...
    @property
    def max_level(self) -> int: ...
    @property
    def on_bug(self) -> str: ...
    @property
    def ucount_max(self) -> int: ...
    @property
    def word_size(self) -> int: ...
    @property
    def bpf_preload(self) -> str | None: ...
    @property
    def init_user_ns(self) -> object: ...
    @property
    def init_ns(self) -> NsView: ...


__all__ = [
    "Enter",
    "Event",
    "FaultInjected",
    "IdAlloc",
    "IdFree",
    "KernelCreated",
    "NsCreated",
    "NsDestroyed",
    "NsFreed",
    "RcuCallback",
    "ReplayMismatchError",
    "Return",
    "Rollback",
    "SanitizerReport",
    "TaskCreated",
    "Trace",
    "TraceError",
    "check_structure",
]

TRACE_FORMAT = 2
#: The enums a call argument may name in a trace (what :func:`bpfns.replay` decodes).
REPLAYABLE_ENUMS = ("ObjType", "Cap", "FaultSite", "UcountType")
#: The longest ``{"opaque": repr}`` a trace keeps.
_OPAQUE_MAX = 200


# -- events ---------------------------------------------------------------------------


@attrs.frozen
class Event:
    """The base of every trace event: ``step`` is the top-level call it belongs to."""

    kind: ClassVar[str] = ""
    step: int

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object: ``{"kind": ..., <fields>}``.

        >>> NsDestroyed(4, "ns2").to_json()
        {'kind': 'ns_destroyed', 'step': 4, 'ns': 'ns2'}
        """
        return {"kind": self.kind, **attrs.asdict(self, recurse=False)}


@attrs.frozen
class KernelCreated(Event):
    """The first event of a trace: how the Kernel was constructed (``Kernel(...)``)."""

    kind: ClassVar[str] = "kernel"
    format: int
    behavior: dict[str, bool]
    id_end: int
    max_level: int
    on_bug: str
    ucount_max: int
    word_size: int
    bpf_preload: str | None


@attrs.frozen
class Enter(Event):
    """A public call entered: ``target.op(*args, **kwargs)``, arguments as references."""

    kind: ClassVar[str] = "enter"
    target: str
    op: str
    args: list[Any]
    kwargs: dict[str, Any]


@attrs.frozen
class Return(Event):
    """The call returned ``result``, or raised ``error`` (an exception class name).

    ``errno`` is the error's errno name (``"ENOSPC"``) for a :class:`bpfns.BpfnsError`.
    """

    kind: ClassVar[str] = "return"
    op: str
    result: Any
    error: str | None
    errno: str | None


@attrs.frozen
class NsCreated(Event):
    """``create_bpf_namespace`` succeeded (also ``init_bpf_ns`` at step 0)."""

    kind: ClassVar[str] = "ns_created"
    ns: str
    parent: str | None
    level: int
    inum: int
    name: str | None


@attrs.frozen
class NsDestroyed(Event):
    """``destroy_bpf_namespace``: the last reference was put; the free waits for RCU."""

    kind: ClassVar[str] = "ns_destroyed"
    ns: str


@attrs.frozen
class NsFreed(Event):
    """``delayed_free_bpfns`` ran: the namespace's memory is free."""

    kind: ClassVar[str] = "ns_freed"
    ns: str


@attrs.frozen
class TaskCreated(Event):
    """A task was forked (``copy_process``), with its global pid."""

    kind: ClassVar[str] = "task_created"
    task: str
    pid: int


@attrs.frozen
class IdAlloc(Event):
    """``idr_alloc_cyclic`` at one level of ``bpf_alloc_obj_id`` gave ``nr``."""

    kind: ClassVar[str] = "id_alloc"
    oid: str
    type: str
    level: int
    ns: str
    nr: int
    cursor_before: int
    cursor_after: int


@attrs.frozen
class IdFree(Event):
    """``idr_remove`` of ``nr`` at one level (``bpf_free_obj_id`` or a rollback)."""

    kind: ClassVar[str] = "id_free"
    oid: str
    type: str
    level: int
    ns: str
    nr: int


@attrs.frozen
class Rollback(Event):
    """``bpf_alloc_obj_id`` failed at ``failed_level`` and undoes the deeper levels."""

    kind: ClassVar[str] = "rollback"
    oid: str
    type: str
    failed_level: int
    errno: str


@attrs.frozen
class RcuCallback(Event):
    """A ``call_rcu`` callback ran at the end of a grace period."""

    kind: ClassVar[str] = "rcu_callback"
    what: str


@attrs.frozen
class FaultInjected(Event):
    """The fault injector failed an allocation at ``site`` (a FaultSite name)."""

    kind: ClassVar[str] = "fault_injected"
    site: str


@attrs.frozen
class SanitizerReport(Event):
    """The sanitizer reported a bug (see :class:`bpfns.Report`)."""

    kind: ClassVar[str] = "report"
    defect: str | None
    bug: str
    what: str
    where: str


#: Every event class by its ``kind``: what a JSON Lines trace may contain.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        KernelCreated,
        Enter,
        Return,
        NsCreated,
        NsDestroyed,
        NsFreed,
        TaskCreated,
        IdAlloc,
        IdFree,
        Rollback,
        RcuCallback,
        FaultInjected,
        SanitizerReport,
    )
}


# -- the trace --------------------------------------------------------------------------


class TraceError(ValueError):
    """A trace that cannot be read or replayed; ``line`` is the 1-based line number.

    ``line`` is 0 for what concerns the whole file (not a regular file, say).

    >>> str(TraceError("trace.jsonl", 3, "unknown event kind 'boom'"))
    "trace.jsonl:3: unknown event kind 'boom'"
    >>> str(TraceError("/dev/zero", 0, "not a regular file"))
    '/dev/zero: not a regular file'
    """

    def __init__(self, source: str, line: int, message: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")
        self.source, self.line, self.message = source, line, message


class ReplayMismatchError(TraceError):
    """The replayed kernel did something other than what the trace records."""


def check_structure(source: str, events: list[Event]) -> None:
    """The header comes first; calls are numbered 1, 2, ...; each Enter has its Return.

    Events other than calls come before the first call (the kernel's construction) or
    inside one.

    Raises:
        TraceError: naming the first event (1-based line) that breaks the structure.
    """
    if not events or not isinstance(events[0], KernelCreated):
        raise TraceError(source, 1, "a trace starts with its 'kernel' event")
    if events[0].format != TRACE_FORMAT:
        raise TraceError(
            source,
            1,
            f"trace format {events[0].format} is not {TRACE_FORMAT}, the one bpfns reads",
        )
    step, open_call = 0, None
    for line, event in enumerate(events[1:], start=2):
        if isinstance(event, KernelCreated):
            raise TraceError(source, line, "a second 'kernel' event; one kernel per trace")
        if isinstance(event, Enter):
            if open_call is not None:
                raise TraceError(source, line, f"step {step} ({open_call.op}) never returned")
            step, open_call = step + 1, event
        elif isinstance(event, Return):
            if open_call is None or event.op != open_call.op:
                raise TraceError(source, line, f"return from {event.op!r} without its enter")
            open_call = None
        elif open_call is None and step:
            raise TraceError(
                source,
                line,
                f"a {event.kind!r} event outside any call; every event after the kernel's "
                "construction belongs to the call that caused it",
            )
        if event.step != step:
            raise TraceError(
                source, line, f"step {event.step} out of order; this event belongs to step {step}"
            )
    if open_call is not None:
        raise TraceError(source, len(events), f"step {step} ({open_call.op}) never returned")


#: A trace of more steps than this shows itself in a notebook as the step-through viewer.
VIEW_FROM = 5


@attrs.define(repr=False)
class Trace:
    """The events of one traced Kernel, in order (``Kernel(trace=True).trace``).

    A sequence: ``len``, indexing and iteration give :class:`Event` records.
    :meth:`to_jsonl` writes one JSON object per line; :func:`bpfns.replay` and
    :func:`bpfns.load_trace` read that format back.

    >>> from bpfns import Kernel
    >>> k = Kernel(trace=True)
    >>> ns = k.init_ns.create_child(name="c")
    >>> [e.kind for e in k.trace][-3:]
    ['enter', 'ns_created', 'return']
    """

    events: list[Event] = attrs.field(factory=list)
    #: The file it was read from (:func:`bpfns.load_trace`), named in replay errors.
    source: str | None = attrs.field(default=None, kw_only=True, eq=False)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __getitem__(self, index: int) -> Event:
        return self.events[index]

    @property
    def steps(self) -> int:
        """The number of top-level calls recorded (the last step number)."""
        return self.events[-1].step if self.events else 0

    def calls(self) -> list[Enter]:
        """The :class:`Enter` events: the calls a replay makes, one per step."""
        return [e for e in self.events if isinstance(e, Enter)]

    def dumps(self) -> str:
        """The trace as JSON Lines text (one event per line, ending in a newline)."""
        return "".join(json.dumps(e.to_json(), sort_keys=False) + "\n" for e in self.events)

    def to_jsonl(self, path: str | Path | IO[str]) -> None:
        """Write the trace as JSON Lines to ``path`` (a file name or a text file).

        >>> import io
        >>> from bpfns import Kernel
        >>> out = io.StringIO()
        >>> Kernel(trace=True).trace.to_jsonl(out)
        >>> out.getvalue().splitlines()[0][:30]
        '{"kind": "kernel", "step": 0, '

        Raises:
            TypeError: if ``path`` is neither a file name nor a writable text file.
            OSError: if the file cannot be written.
        """
        if isinstance(path, str | os.PathLike):
            Path(path).write_text(self.dumps(), encoding="utf-8")
        elif callable(getattr(path, "write", None)):
            path.write(self.dumps())
        else:
            raise TypeError(f"path must be a file name or a text file, not {type(path).__name__}")

    def text(self) -> str:
        """One readable line per event, for a terminal or a handout."""
        return "\n".join(_describe(e) for e in self.events)

    def __repr__(self) -> str:
        source = f" from {self.source!r}" if self.source else ""
        return f"<Trace {len(self.events)} events, {self.steps} steps{source}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: :meth:`text`."""
        p.text(repr(self) if cycle else self.text())

    def _repr_html_(self, limit: int = 500) -> str:
        """Notebooks: the step-through viewer, or a table of the first ``limit`` events.

        A trace of more than :data:`VIEW_FROM` steps shows :func:`bpfns.view`; a
        shorter one, or one that does not replay, the table (every value escaped).
        """
        if self.steps > VIEW_FROM:
            from ._viewer import view  # noqa: PLC0415 - the viewer replays: above this layer

            try:
                return view(self)._repr_html_()
            except TraceError:
                pass  # shown as it is: the table below
        rows = []
        for e in self.events[:limit]:
            fields = attrs.asdict(e, recurse=False)
            step = fields.pop("step")
            body = escape(" ".join(f"{k}={v!r}" for k, v in fields.items()))
            rows.append(f"<tr><td>{step}</td><td>{e.kind}</td><td><code>{body}</code></td></tr>")
        more = len(self.events) - limit
        tail = f"<p>... {more} more events; see Trace.text()</p>" if more > 0 else ""
        head = "<tr><th>step</th><th>event</th><th>fields</th></tr>"
        return f'<div class="bpfns-trace"><table>{head}{"".join(rows)}</table>{tail}</div>'


def _describe(e: Event) -> str:
    fields = attrs.asdict(e, recurse=False)
    step = fields.pop("step")
    body = " ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{step:>5} {e.kind:<14} {body}"


# -- recording -------------------------------------------------------------------------

_NOT_SCALAR = object()


def _scalar(value: object) -> Any:
    """``value`` as a JSON scalar or a replayable enum member; ``_NOT_SCALAR`` if neither."""
    if isinstance(value, enum.Enum):
        cls = type(value)
        if cls.__name__ in REPLAYABLE_ENUMS and cls.__module__.startswith("bpfns"):
            return {"enum": cls.__name__, "name": value.name}
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        number = int(value)
        return number if -(2**63) <= number < 2**64 else {"bigint": hex(number)}
    if isinstance(value, float):
        return float(value)
    return str(value) if isinstance(value, str) else _NOT_SCALAR


class _Traceable(Protocol):
    @property
    def _tracer(self) -> Tracer | None: ...


S = TypeVar("S", bound=_Traceable)
P = ParamSpec("P")
R = TypeVar("R")


def traced(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Mark a public method as a traced call: an :class:`Enter`/:class:`Return` pair.

    Only a top-level call is recorded; the calls it makes itself are part of it. A
    replay may call exactly the methods marked so (``__bpfns_traced__``).
    """

    @functools.wraps(fn)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        tracer = self._tracer
        if tracer is None or tracer.depth:
            return fn(self, *args, **kwargs)
        return tracer.call(fn, self, args, kwargs)

    return replayable(wrapper)


def replayable(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark ``fn`` as a call a replay may make, without wrapping it.

    For hot methods that test ``self._tracer`` themselves and hand the call to
    :meth:`Tracer.call` (the wrapper of :func:`traced` costs a frame per call).
    """
    fn.__bpfns_traced__ = True  # type: ignore[attr-defined]
    return fn


@attrs.define
class Tracer:
    """The recording side: assigns references and appends events to :attr:`trace`."""

    trace: Trace = attrs.field(factory=Trace)
    step: int = 0
    depth: int = 0
    _refs: dict[int, str] = attrs.field(factory=dict, repr=False)
    objects: dict[str, object] = attrs.field(factory=dict, repr=False)
    _counts: dict[str, int] = attrs.field(factory=dict, repr=False)

    def emit(self, event: Event) -> None:
        """Append ``event``."""
        self.trace.events.append(event)

    def _check(self) -> None:
        """Assert the tracer's invariants.

        References are one-to-one, no call is open, and the events form a trace that
        :func:`bpfns.replay` accepts.
        """
        assert self.depth == 0, "a traced call never returned"
        assert len(self._refs) == len(self.objects), "references are not one-to-one"
        assert all(id(self.objects[ref]) == key for key, ref in self._refs.items())
        assert self.trace.steps == self.step, f"trace ends at step {self.trace.steps}"
        try:
            check_structure("<trace>", self.trace.events)
        except TraceError as err:
            raise AssertionError(str(err)) from None

    def ref(self, obj: object) -> str:
        """The reference of ``obj`` (``"ns3"``), assigned on first sight.

        ``obj``'s class names its kind in a ``_trace_kind`` class attribute.
        """
        key = id(obj)
        found = self._refs.get(key)
        if found is None:
            kind: str = type(obj)._trace_kind  # type: ignore[attr-defined]
            n = self._counts.get(kind, 0)
            self._counts[kind] = n + 1
            found = self._refs[key] = f"{kind}{n}"
            self.objects[found] = obj  # keeps obj alive, so its id() is never reused
        return found

    def encode(self, value: object, *, arg: bool = False) -> Any:
        """``value`` as JSON, canonically: what a replay passes makes the same call.

        Scalars stay scalars (an ``int`` or ``str`` subclass as its plain value, an int
        beyond 64 bits as ``{"bigint": hex}``), the enums a replay knows are
        ``{"enum", "name"}``, kernel objects are ``{"ref"}``. An argument (``arg``)
        that is a kernel object this tracer never saw belongs to another Kernel:
        ``{"foreign": kind}``, which a replay stands in with an object of another
        Kernel so that the call is refused again. Lists and tuples are ``{"list"}``,
        sets ``{"set"}``; anything else is ``{"opaque": repr}``.
        """
        scalar = _scalar(value)
        if scalar is not _NOT_SCALAR:
            return scalar
        kind = getattr(type(value), "_trace_kind", None)
        if kind is not None:
            if arg and id(value) not in self._refs:
                return {"foreign": kind}
            return {"ref": self.ref(value)}
        if isinstance(value, list | tuple):
            return {"list": [self.encode(v, arg=arg) for v in value]}
        if isinstance(value, set | frozenset):
            return {"set": sorted((self.encode(v, arg=arg) for v in value), key=json.dumps)}
        text = repr(value)
        return {"opaque": text if len(text) <= _OPAQUE_MAX else text[:_OPAQUE_MAX] + "..."}

    def call(
        self, fn: Callable[..., R], target: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """Run ``fn(target, *args, **kwargs)`` as step ``self.step + 1``."""
        self.step += 1
        step, op = self.step, fn.__name__
        self.emit(
            Enter(
                step,
                self.ref(target),
                op,
                [self.encode(a, arg=True) for a in args],
                {k: self.encode(v, arg=True) for k, v in kwargs.items()},
            )
        )
        self.depth += 1
        try:
            result = fn(target, *args, **kwargs)
        except BaseException as exc:
            self.depth -= 1
            code = getattr(exc, "errorcode", None)
            self.emit(Return(step, op, None, type(exc).__name__, code))
            raise
        self.depth -= 1
        self.emit(Return(step, op, self.encode(result), None, None))
        return result

    def kernel_created(self, k: KernelView) -> None:
        """The header event, and the references of the objects every kernel has."""
        self.emit(
            KernelCreated(
                0,
                TRACE_FORMAT,
                attrs.asdict(k.behavior),
                k.id_end,
                k.max_level,
                k.on_bug,
                k.ucount_max,
                k.word_size,
                k.bpf_preload,
            )
        )
        self.ref(k.init_user_ns)
        self.ns_created(k.init_ns)

    def ns_created(self, ns: NsView) -> None:
        """Record ``create_bpf_namespace``'s result."""
        parent = None if ns.parent is None else self.ref(ns.parent)
        self.emit(NsCreated(self.step, self.ref(ns), parent, ns.level, ns.inum, ns.name))
