"""Pictures of a Kernel's state for tests: :class:`Snapshot` and :class:`Leftover`.

:meth:`bpfns.Kernel.snapshot` covers everything a call can change that is refcounted or
owned; comparing a snapshot taken before a failing call with one taken after shows what
the call left behind. A call that fails leaves the world as it was except for what the
kernel itself leaves behind, the rows of :data:`FAILED_CALL_LEAVES`, which the page
"What a failed call leaves behind" of the docs (docs/explanation/fidelity.md) lists.

:meth:`bpfns.Kernel.leftovers` lists, as :class:`Leftover` records, what is still live
beyond the initial state of a Kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._bpf_namespace import Namespace
from ._bpf_object import (
    BpfObject,
    PerfEvent,
    SyscallTask,
)
from ._bpf_uapi import AuditRecord
from ._files import FdTable, File
from ._link import LinkPrimer
from ._obj_id import ObjId
from ._ucount import Ucounts, UcountType, UserNamespace

__all__ = [
    "FAILED_CALL_LEAVES",
    "LeftBehind",
    "Leftover",
    "Snapshot",
    "World",
    "find_leftovers",
    "left_behind_by",
    "take_snapshot",
]


@attrs.frozen
class LeftBehind:
    """One row of "What a failed call leaves behind": what the kernel itself leaves.

    Attributes:
        name: a short name for the row.
        fields: the :class:`Snapshot` fields it may change.
        why: what stays, and why the kernel leaves it.
        calls: the calls that can leave it, by name.

    >>> from bpfns import FAILED_CALL_LEAVES
    >>> [(row.name, row.fields) for row in FAILED_CALL_LEAVES][:2]
    [('burned ids', ('cursors',)), ('per-level id cache', ('caches',))]
    """

    name: str
    fields: tuple[str, ...]
    why: str
    calls: tuple[str, ...]


_CREATE = (
    "alloc_obj_id",
    "map_create",
    "prog_load",
    "link_prime",
    "link_create",
    "raw_tracepoint_open",
    "btf_load",
)

#: Everything a failed call may leave behind; anything else it changed is a bug. The
#: docs table of the same name is this tuple (a test keeps them equal).
FAILED_CALL_LEAVES: tuple[LeftBehind, ...] = (
    LeftBehind(
        "burned ids",
        ("cursors",),
        "The IDR cursors of the levels that got an id before a later step failed stay "
        "advanced: those numbers are skipped until the cursor wraps (alloc_pid does the "
        "same, kernel/pid.c).",
        _CREATE,
    ),
    LeftBehind(
        "per-level id cache",
        ("caches",),
        "A per-level bpf_obj_id slab cache made by create_bpf_cachep stays, empty: the "
        "kernel never destroys those caches.",
        ("copy_bpfns", "create_child", "clone", "unshare"),
    ),
    LeftBehind(
        "audit records",
        ("audit",),
        "A program whose fd could not be installed was loaded and unloaded: its LOAD "
        "and UNLOAD audit records stay.",
        ("prog_load",),
    ),
    LeftBehind(
        "deferred program free",
        ("rcu_pending", "objects"),
        "That program's final free (bpf_prog_free) waits for a grace period: until "
        "synchronize_rcu() it is listed with refcnt 0 and still holds its maps; after "
        "it, the objects are as before the call.",
        ("prog_load",),
    ),
    LeftBehind(
        "setns log line",
        ("dmesg",),
        "bpfns_install logs 'setns not supported for bpf namespace' before it fails.",
        ("setns",),
    ),
)


def left_behind_by(call: str) -> tuple[LeftBehind, ...]:
    """The rows of :data:`FAILED_CALL_LEAVES` that a failed ``call`` may leave.

    >>> [row.name for row in left_behind_by("prog_load")]
    ['burned ids', 'audit records', 'deferred program free']
    """
    return tuple(row for row in FAILED_CALL_LEAVES if call in row.calls)


@attrs.frozen
class Snapshot:
    """A comparable picture of a Kernel's state, for before/after tests.

    Objects are named by what the kernel would show (inode numbers, pids, ids) or, for
    what has no such name, by their position in creation order, so that two kernels
    built by the same calls have equal snapshots. Each field is a tuple of rows:

    * ``namespaces``: ``(inum, level, parent inum, state, refcount, holders, ids)`` for
      ``init_ns`` and every namespace not yet freed, ``ids`` holding each
      :class:`bpfns.ObjType`'s allocated ids; ``cursors``: each one's IDR cursors.
    * ``user_namespaces``: ``(index, level, parent index, owner, refcount, holders)``;
      ``ucounts``: ``(user namespace index, uid, counts)`` for every nonzero charge.
    * ``caches``: the slab caches that exist; ``slabs``: ``(cache, objects allocated)``
      for each one in use; ``rcu_pending``: the queued RCU callbacks; ``inums``: the
      allocated inode numbers (minus 0xF0000000).
    * ``tasks``: ``(pid, tgid, bpf ns inum, user ns index, euid, capabilities, file
      table index)``; ``files``: per file table, ``(index, users, ((fd, what), ...),
      reserved fds)``.
    * ``objects``: ``(index, type, id, refcnt, holders, name)`` per BPF object;
      ``primers``: ``(pid, fd, id)`` per pending link primer; ``pins``: ``(path, object
      index)``.
    * ``dmesg`` and ``audit``: the kernel log and the audit records.
    * ``netdevs``: ``(ifindex, name)`` per network device; ``btf_ids``: the global BTF
      ids (their IDR's cursor is the last row of ``cursors``).

    Compare two with ``==``; :meth:`changed` names the fields that differ.
    """

    namespaces: tuple[Any, ...] = ()
    cursors: tuple[Any, ...] = ()
    user_namespaces: tuple[Any, ...] = ()
    ucounts: tuple[Any, ...] = ()
    caches: tuple[str, ...] = ()
    slabs: tuple[Any, ...] = ()
    rcu_pending: tuple[str, ...] = ()
    inums: tuple[int, ...] = ()
    tasks: tuple[Any, ...] = ()
    files: tuple[Any, ...] = ()
    objects: tuple[Any, ...] = ()
    primers: tuple[Any, ...] = ()
    pins: tuple[Any, ...] = ()
    dmesg: tuple[str, ...] = ()
    audit: tuple[Any, ...] = ()
    netdevs: tuple[Any, ...] = ()
    btf_ids: tuple[int, ...] = ()

    def changed(self, other: Snapshot) -> list[str]:
        """The names of the fields in which ``other`` differs from this snapshot.

        Raises:
            TypeError: if ``other`` is not a Snapshot.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> before = k.snapshot()
        >>> _ = k.init_task.map_create()
        >>> before.changed(k.snapshot())
        ['namespaces', 'cursors', 'slabs', 'files', 'objects']
        """
        if not isinstance(other, Snapshot):
            raise TypeError(f"other must be a Snapshot, not {type(other).__name__}")
        return [
            field.name
            for field in attrs.fields(Snapshot)
            if getattr(self, field.name) != getattr(other, field.name)
        ]

    def unexpected(self, after: Snapshot, call: str) -> list[str]:
        """The fields a failed ``call`` changed beyond what the kernel leaves behind.

        ``self`` was taken before the call, ``after`` after it failed; the allowance is
        :func:`left_behind_by` of ``call``. An empty list means the call was atomic.

        >>> from bpfns import FIXED, Kernel, ObjType
        >>> k = Kernel(FIXED, id_end=2)
        >>> child = k.init_ns.create_child()
        >>> _ = k.alloc_obj_id(k.init_ns, "fills init", ObjType.MAP)
        >>> before = k.snapshot()
        >>> k.alloc_obj_id(child, "no room", ObjType.MAP)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        bpfns.BpfnsError: [ENOSPC: ...
        >>> before.changed(k.snapshot()), before.unexpected(k.snapshot(), "alloc_obj_id")
        (['cursors'], [])
        """
        if not isinstance(after, Snapshot):
            raise TypeError(f"after must be a Snapshot, not {type(after).__name__}")
        if not isinstance(call, str):
            raise TypeError(f"call must be the name of a call (a str), not {type(call).__name__}")
        allowed = {field for row in left_behind_by(call) for field in row.fields}
        return [name for name in self.changed(after) if name not in allowed]

    def without_cursors(self) -> Snapshot:
        """The same snapshot without the IDR cursors (a failed call may advance them)."""
        return attrs.evolve(self, cursors=())


@attrs.frozen
class Leftover:
    """One thing still live beyond a Kernel's initial state (:meth:`bpfns.Kernel.leftovers`).

    Attributes:
        kind: what it is: ``"task"``, ``"fd"``, ``"reserved fd"``, ``"namespace"``,
            ``"user namespace"``, ``"user namespace reference"``, ``"ucount"``,
            ``"bpf object"``, ``"id record"``, ``"pin"``, ``"link primer"`` or
            ``"rcu callback"``.
        what: which one, and who holds it.

    >>> str(Leftover("pin", "/sys/fs/bpf/m -> <BpfMap 'm' id=1 refcnt=1>"))
    "pin: /sys/fs/bpf/m -> <BpfMap 'm' id=1 refcnt=1>"
    """

    kind: str
    what: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


@attrs.frozen
class World:
    """What one Kernel holds, in the order its public views list it.

    The snapshot and the leftovers are built from this alone, so they see exactly what
    the Kernel's public views show.
    """

    init_task: SyscallTask
    tasks: Sequence[SyscallTask]
    namespaces: list[Namespace]
    user_namespaces: list[UserNamespace]
    ucounts: list[Ucounts]
    objects: list[BpfObject]
    primers: list[LinkPrimer]
    pins: list[tuple[str, BpfObject]]
    rcu_pending: tuple[str, ...]
    dmesg: tuple[str, ...]
    audit: tuple[AuditRecord, ...]
    #: What the boot made and the kernel keeps (the built-in preload's objects).
    boot_objects: Sequence[BpfObject] = ()
    #: ``(ifindex, name)`` per network device.
    netdevs: tuple[tuple[int, str], ...] = ()
    #: The global BTF ids, and the ``btf_idr`` cursor.
    btf_ids: tuple[int, ...] = ()
    btf_cursor: int = 0


def take_snapshot(w: World, slabinfo: list[tuple[str, int]], inums: tuple[int, ...]) -> Snapshot:
    """The :class:`Snapshot` of a world: objects named by creation order, not identity."""
    users = {u: i for i, u in enumerate(w.user_namespaces)}
    objects = {o: i for i, o in enumerate(w.objects)}
    tables: dict[int, tuple[int, FdTable]] = {}
    for t in w.tasks:
        if t.files is not None and id(t.files) not in tables:
            tables[id(t.files)] = (len(tables), t.files)
    return Snapshot(
        namespaces=tuple(
            (
                ns.inum,
                ns.level,
                None if ns.parent is None else ns.parent.inum,
                ns.state.value,
                ns.refcount,
                _nonzero(ns.holders),
                tuple(tuple(idr.ids()) for idr in ns.idr),
            )
            for ns in w.namespaces
        ),
        cursors=(
            *((ns.inum, tuple(idr.cursor for idr in ns.idr)) for ns in w.namespaces),
            ("btf_idr", (w.btf_cursor,)),
        ),
        user_namespaces=tuple(
            (
                i,
                u.level,
                None if u.parent is None else users[u.parent],
                u.owner,
                u.refcount,
                _nonzero(u.holders),
            )
            for u, i in users.items()
        ),
        ucounts=tuple(
            sorted(
                (users.get(uc.ns, -1), uc.uid, tuple(uc.counts))
                for uc in w.ucounts
                if any(uc.counts)
            )
        ),
        caches=tuple(name for name, _ in slabinfo),
        slabs=tuple((name, active) for name, active in slabinfo if active),
        rcu_pending=w.rcu_pending,
        inums=inums,
        tasks=tuple(
            (
                t.pid,
                t.tgid,
                t.bpf_ns.inum,
                users.get(t.cred.user_ns, -1),
                t.cred.euid,
                tuple(sorted(t.cred.caps)),
                tables[id(t.files)][0],
            )
            for t in w.tasks
        ),
        files=tuple(
            (
                i,
                table.count,
                tuple((fd, _file_row(f, objects, users)) for fd, f in table.items()),
                tuple(table.reserved()),
            )
            for i, table in tables.values()
        ),
        objects=tuple(
            (i, o.KIND, o.id, o.refcnt, _nonzero(o.holders), o.name) for o, i in objects.items()
        ),
        primers=tuple((p.task.pid, p.fd, p.id) for p in w.primers),
        pins=tuple((path, objects.get(obj, -1)) for path, obj in w.pins),
        dmesg=w.dmesg,
        audit=tuple(attrs.astuple(r) for r in w.audit),
        netdevs=w.netdevs,
        btf_ids=w.btf_ids,
    )


def find_leftovers(w: World, raw_records: list[ObjId]) -> list[Leftover]:
    """What ``w`` holds beyond a fresh Kernel (:meth:`bpfns.Kernel.leftovers`).

    ``raw_records`` are the live id records that no BPF object owns (made with
    ``Kernel.alloc_obj_id``).
    """
    out = [Leftover("task", repr(t)) for t in w.tasks if t is not w.init_task]
    files = w.init_task.files
    if files is not None:  # None once init has exited (teardown): it holds nothing
        for fd, f in files.items():
            out.append(Leftover("fd", f"init_task fd {fd}: {f.kind.value} {f.obj!r}"))
        out += [Leftover("reserved fd", f"init_task fd {fd}") for fd in files.reserved()]
    for ns in w.namespaces[1:]:
        out.append(Leftover("namespace", f"{ns!r} held by {ns.holders}"))
    for u in w.user_namespaces[1:]:
        out.append(Leftover("user namespace", f"{u!r} held by {u.holders}"))
    refs = w.user_namespaces[0].holders.get("ref", 0)
    if refs:
        out.append(Leftover("user namespace reference", f"{refs} on init_user_ns (get())"))
    for uc in w.ucounts:
        where = f"uid {uc.uid} in user ns level {uc.ns.level} (owner {uc.ns.owner})"
        for kind, n in zip(UcountType, uc.counts, strict=True):
            if n:
                out.append(Leftover("ucount", f"{where}: {kind.sysctl}={n}"))
    booted = {id(o) for o in w.boot_objects}
    out += [
        Leftover("bpf object", f"{o!r} held by {o.holders}")
        for o in w.objects
        if id(o) not in booted
    ]
    out += [Leftover("id record", f"{h!r} of {h.obj!r}") for h in raw_records]
    out += [Leftover("pin", f"{path} -> {obj!r}") for path, obj in w.pins]
    out += [Leftover("link primer", repr(p)) for p in w.primers]
    out += [Leftover("rcu callback", what) for what in w.rcu_pending]
    return out


def _nonzero(holders: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """The holders that hold a reference now, sorted (a holder at 0 is none)."""
    return tuple(sorted((k, v) for k, v in holders.items() if v))


def _file_row(file: File, objects: dict[BpfObject, int], users: dict[UserNamespace, int]) -> Any:
    """What an open file refers to, in a Snapshot: a kind and a kernel-independent name."""
    obj = file.obj
    if isinstance(obj, BpfObject):
        target: object = objects.get(obj, -1)
    elif isinstance(obj, Namespace):
        target = obj.inum
    elif isinstance(obj, UserNamespace):
        target = users.get(obj, -1)
    elif isinstance(obj, PerfEvent):
        target = (obj.tracepoint, -1 if obj.prog is None else objects.get(obj.prog, -1))
    else:
        target = obj.pid if obj.alive else -1  # a pidfd's task
    return (file.kind.value, target, file.count)
