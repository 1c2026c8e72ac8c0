"""Object ids: ``struct bpf_obj_id`` and its alloc, free and view helpers (RFC patch 06).

Semantics follow rfc.md 2.3 (allocation and release) and 2.4 (views):

* ``bpf_alloc_obj_id(ns, obj, type)`` takes a record from the per-level slab cache (not
  zeroed), then calls ``idr_alloc_cyclic(&tmp->idr[type], obj, 1, INT_MAX)`` for every
  level from ``ns`` up to init, **deepest first**. On failure it rolls back and frees
  the record. As posted, the rollback starts at the failed level (D1).
* ``bpf_free_obj_id(obj_id, type)`` removes the ids deepest first, then frees the record
  through ``numbers[level].ns->obj_id_cachep``. As posted, the record does not pin its
  namespace, so both steps can touch a freed namespace (D2).
* ``bpf_obj_id_nr_ns(obj_id, ns)`` returns ``numbers[ns->level].nr`` without checking
  that the entry belongs to ``ns`` (D6).

What the kernel leaves behind on a failed allocation, and bpfns too: the cyclic cursors
of the levels that succeeded before the failing one stay advanced (the ids they handed
out are "burned"), exactly as ``alloc_pid`` leaves them (kernel.md C.2 step 7).
"""

from __future__ import annotations

import errno
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import attrs

from ._bpf_namespace import Namespace, NsState, ObjType
from ._errors import BpfnsError
from ._fault import FaultSite
from ._sanitizer import BugKind
from ._slab import Slot
from ._trace import IdAlloc, IdFree, Rollback, Tracer, traced

if TYPE_CHECKING:
    from ._kernel import Kernel

__all__ = ["ObjId", "ObjIdEntry"]


class ObjIdEntry(NamedTuple):
    """``struct ubpf_obj_id``: an object's number in one namespace.

    A value, like the project's ``attrs.frozen`` records, but a NamedTuple: one is built
    per level of every allocation, and a tuple builds several times faster.

    Attributes:
        nr: the id in ``ns``.
        ns: the namespace at that level.

    >>> from bpfns import Kernel
    >>> k = Kernel()
    >>> ObjIdEntry(3, k.init_ns) == ObjIdEntry(3, k.init_ns)
    True
    """

    nr: int
    ns: Namespace


@attrs.define(eq=False, repr=False)
class ObjId:
    """A handle on a ``struct bpf_obj_id`` record: one id per level, index 0 = init.

    Returned by :meth:`bpfns.Kernel.alloc_obj_id`. The record's memory belongs to the
    slab: after :meth:`bpfns.Kernel.free_obj_id` it is reused by later allocations, and
    reading it through this handle is a use-after-free that the sanitizer reports.

    Attributes:
        type: the :class:`ObjType` it was allocated for.
        obj: the object stored in the IDRs (the kernel's ``map``/``prog``/``link``).
    """

    _kernel: Kernel
    _slot: Slot
    _gen: int
    type: ObjType
    obj: object
    _trace_kind: ClassVar[str] = "oid"

    @property
    def _tracer(self) -> Tracer | None:
        return self._kernel._tracer

    @property
    def live(self) -> bool:
        """Whether the record is still allocated to this handle."""
        return self._slot.live and self._slot.gen == self._gen

    def _mem(self, what: str) -> Slot:
        if not self.live:
            k = self._kernel
            k._sanitizer.report(
                None,
                BugKind.USE_AFTER_FREE,
                f"{what} read a bpf_obj_id record at {self._slot.addr:#x} after "
                "free_obj_id freed it; do not use an ObjId after freeing it",
                what,
                k._step,
            )
        return self._slot

    @property
    def level(self) -> int:
        """``obj_id->level``: the level of the namespace the object was created in."""
        return self._mem("ObjId.level").level

    @property
    def numbers(self) -> tuple[ObjIdEntry, ...]:
        """``numbers[0..level]``: entry ``i`` is the id in the ancestor at level ``i``."""
        slot = self._mem("ObjId.numbers")
        return tuple(slot.mem[: slot.level + 1])

    @property
    def ns(self) -> Namespace:
        """``numbers[level].ns``: the namespace the object was created in."""
        slot = self._mem("ObjId.ns")
        entry: ObjIdEntry = slot.mem[slot.level]
        return entry.ns

    def nr(self) -> int:
        """``bpf_obj_id_nr``: the level-0 (global) id, what ``map->id`` holds.

        >>> from bpfns import Kernel, ObjType
        >>> k = Kernel()
        >>> k.alloc_obj_id(k.init_ns.create_child(), "map", ObjType.MAP).nr()
        1
        """
        entry: ObjIdEntry = self._mem("bpf_obj_id_nr").mem[0]
        return entry.nr

    @traced
    def nr_ns(self, ns: Namespace) -> int:
        """``bpf_obj_id_nr_ns``: the id as seen from ``ns``, 0 if not visible there.

        As posted (D6), only ``ns.level <= level`` is checked, so a namespace at the
        same level on another branch gets that branch's number; bpfns records a
        semantic D6 report when that happens. With ``d6_nr_ns_unchecked=False`` the
        entry must belong to ``ns``, as in ``pid_nr_ns``.

        Raises:
            TypeError: if ``ns`` is not a :class:`bpfns.Namespace`.
            ValueError: if ``ns`` belongs to another Kernel.

        >>> from bpfns import Kernel, ObjType
        >>> k = Kernel()
        >>> child = k.init_ns.create_child()
        >>> oid = k.alloc_obj_id(child, "map", ObjType.MAP)
        >>> oid.nr_ns(child), oid.nr_ns(k.init_ns), oid.nr_ns(child.create_child())
        (1, 1, 0)
        """
        k = self._kernel
        k._own_ns(ns, "nr_ns")
        slot = self._mem("bpf_obj_id_nr_ns")
        if ns.level > slot.level:
            return 0
        entry: ObjIdEntry = slot.mem[ns.level]
        if entry.ns is ns:
            return entry.nr
        if not k.behavior.d6_nr_ns_unchecked:
            return 0
        k._sanitizer.report(
            "D6",
            BugKind.SEMANTIC,
            f"bpf_obj_id_nr_ns returned {entry.nr}, the id in {entry.ns.label()}, to a "
            f"viewer in {ns.label()} at the same level (no numbers[level].ns == ns check)",
            "bpf_obj_id_nr_ns",
            k._step,
        )
        return entry.nr

    def table(self) -> str:
        """The id at every level as a text table, root first."""
        from ._render import render_obj_id  # noqa: PLC0415 - rendering imports this module

        return render_obj_id(self)

    def _repr_html_(self) -> str:
        """Notebooks: the id at every level as an HTML table."""
        from ._render import obj_id_html  # noqa: PLC0415 - rendering imports this module

        return obj_id_html(self) if self.live else escape(repr(self))

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: the id table."""
        p.text(self.table() if self.live and not cycle else repr(self))

    def __repr__(self) -> str:
        if not self.live:
            return f"<ObjId {self.type.name} freed>"
        slot = self._slot
        ids = ", ".join(f"{e.ns.label()}={e.nr}" for e in slot.mem[: slot.level + 1])
        return f"<ObjId {self.type.name} level={slot.level} [{ids}]>"


# -- alloc and free ---------------------------------------------------------------------


def _ns_memory(k: Kernel, ns: Namespace, access: str, where: str) -> Namespace | None:
    """Report a D2 use-after-free of the dead ``ns``; return whose memory it reaches.

    That is ``ns`` itself while its RCU free is pending (its IDRs are destroyed, so a
    removal finds nothing), the namespace now occupying its memory if it was freed and
    reused, or None if the memory is free (the access then has no effect).
    """
    if ns._state is NsState.DESTROYED:
        state = "destroyed (put_bpfns reached zero; RCU free pending)"
        target: Namespace | None = ns
    else:
        assert ns._slot is not None
        reused = ns._slot.live
        owner = ns._slot.owner if reused else None
        target = owner if isinstance(owner, Namespace) else None
        state = "freed" + (f", memory reused by {target!r}" if target is not None else "")
    k._sanitizer.report(
        "D2",
        BugKind.USE_AFTER_FREE,
        f"{access} on namespace {ns.label()} (inum {ns.inum:#x}), which is {state}: "
        "the id record does not pin its namespace",
        where,
        k._step,
    )
    return target


def _remove_id(k: Kernel, slot: Slot, level: int, type_: ObjType, where: str) -> None:
    """``idr_remove(&numbers[level].ns->idr[type], numbers[level].nr)``, D2 checked."""
    entry: ObjIdEntry = slot.mem[level]
    ns = entry.ns
    tracer = k._tracer
    if tracer is not None:
        oid = tracer.ref(slot.owner)
        tracer.emit(IdFree(tracer.step, oid, type_.name, level, tracer.ref(ns), entry.nr))
    if ns._state is not NsState.ALIVE:
        target = _ns_memory(k, ns, f"idr_remove(idr[{type_.name}], {entry.nr})", where)
        if target is None:
            return
        ns = target
    ns.idr[type_]._remove(entry.nr)


def alloc_obj_id(k: Kernel, ns: Namespace, obj: object, type_: ObjType) -> ObjId:
    """``bpf_alloc_obj_id``; see :meth:`bpfns.Kernel.alloc_obj_id`."""
    faults = k.faults
    if faults.armed and faults.should_fail(FaultSite.OBJ_ID):
        raise BpfnsError(
            errno.ENOMEM, "kmem_cache_alloc(obj_id_cachep) failed (injected allocation failure)"
        )
    cache = ns.obj_id_cachep
    slot = cache.alloc(None)
    handle = ObjId(k, slot, slot.gen, type_, obj)
    slot.owner = handle
    level = slot.level = ns.level
    mem = slot.mem
    tmp: Namespace | None = ns
    i = level
    tracer = k._tracer
    while tmp is not None:
        idr = tmp.idr[type_]
        before = idr._next
        try:
            if faults.armed and faults.should_fail(FaultSite.IDR_NODE):
                raise BpfnsError(
                    errno.ENOMEM,
                    "idr_alloc_cyclic could not allocate a radix node (injected failure)",
                )
            nr = tmp.policy.alloc(idr, handle)
        except BpfnsError as err:
            if tracer is not None:
                oid = tracer.ref(handle)
                tracer.emit(Rollback(tracer.step, oid, type_.name, i, err.errorcode))
            _rollback(k, slot, i, type_)
            ns.policy.after_rollback(ns.idr[type_])
            cache.free(slot)
            raise BpfnsError(
                err.errno or 0,
                f"{ns.policy.caller}: level {i} ({tmp.label()}): {err.strerror}",
            ) from None
        mem[i] = ObjIdEntry(nr, tmp)
        if tracer is not None:
            ev = IdAlloc(
                tracer.step,
                tracer.ref(handle),
                type_.name,
                i,
                tracer.ref(tmp),
                nr,
                before,
                idr._next,
            )
            tracer.emit(ev)
        tmp = tmp.parent
        i -= 1
    if ns.policy.placeholder:  # alloc_pid: publish every level at once
        for entry in mem[: level + 1]:
            entry.ns.idr[type_].replace(handle, entry.nr)
    if not k.behavior.d2_obj_id_unpinned:
        ns._get("obj_id")
    return handle


def _rollback(k: Kernel, slot: Slot, failed: int, type_: ObjType) -> None:
    """The rollback loop of ``bpf_alloc_obj_id`` after a failure at level ``failed``."""
    first = failed + 1
    if k.behavior.d1_rollback_at_failed_level:
        first = failed
        stale = slot.mem[failed]
        if stale is None:
            what = (
                f"numbers[{failed}] was never written (fresh slab object): the C code "
                "dereferences an uninitialised namespace pointer"
            )
        else:
            what = (
                f"numbers[{failed}] still holds a previous record's entry "
                f"(nr={stale.nr}, ns={stale.ns.label()}); the rollback removes that id"
            )
        k._sanitizer.report("D1", BugKind.UNINIT_VALUE, what, "bpf_alloc_obj_id", k._step)
        if stale is None:  # a wild pointer: nothing bpfns can model; skip the access
            first = failed + 1
    for i in range(first, slot.level + 1):
        _remove_id(k, slot, i, type_, "bpf_alloc_obj_id")


def free_obj_id(k: Kernel, handle: ObjId, type_: ObjType) -> None:
    """``bpf_free_obj_id``; see :meth:`bpfns.Kernel.free_obj_id`."""
    slot = handle._slot
    mem = slot.mem
    for i in range(slot.level, -1, -1):
        _remove_id(k, slot, i, type_, "bpf_free_obj_id")
    deepest: Namespace = mem[slot.level].ns
    if deepest._state is not NsState.ALIVE:
        _ns_memory(k, deepest, "read of ns->obj_id_cachep", "bpf_free_obj_id")
    # The per-level caches are never destroyed, so the freed namespace's cache pointer
    # is still the right cache in practice.
    deepest.obj_id_cachep.free(slot)
    if not k.behavior.d2_obj_id_unpinned:
        deepest._put("obj_id")
