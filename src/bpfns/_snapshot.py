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

from typing import Any

import attrs

__all__ = ["FAILED_CALL_LEAVES", "LeftBehind", "Leftover", "Snapshot", "left_behind_by"]


@attrs.frozen
class LeftBehind:
    """One row of "What a failed call leaves behind": what the kernel itself leaves.

    Attributes:
        name: a short name for the row.
        fields: the :class:`Snapshot` fields it may change.
        why: what stays, and why the kernel leaves it.
        calls: the calls that can leave it, by name.
    """

    name: str
    fields: tuple[str, ...]
    why: str
    calls: tuple[str, ...]


_CREATE = ("alloc_obj_id", "map_create", "prog_load", "link_prime", "link_create")

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
        bpfns._errors.BpfnsError: [ENOSPC: ...
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
