"""Object ids: ``struct bpf_obj_id`` and its alloc, free and view helpers (RFC patch 06).

The rules are semantics §2.3 (allocation and release) and §2.4 (views):

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
out are "burned"), exactly as ``alloc_pid`` leaves them (kernel rules §C.2 step 7).

**Fast paths.** Both walks run once per level of every object created or freed, so they
come in two forms with one meaning. The general form is the C code line by line: the
policy's allocation at each level, fault-injection sites, trace events, D1, D2. When no
tracer, no fault injector and no placeholder policy are involved, the arguments are the
common ones, and (for the free) the record is intact and its namespace alive, the fast
form does the same work with the radix tree's own fast operations: at each level it
takes the cursor's slot in the IDR's armed leaf
(:func:`bpfns._radix_tree.take_cursor_walk`), and falls back to that level's policy
only when the slot is taken or not armed; the free is
:func:`bpfns._radix_tree.remove_walk`. One identity test recognises the common case: a
namespace's ``fast_owner`` is its kernel while it is alive, uses the
object-id policy and its kernel does not trace. Every level of a live namespace's chain
is alive (a namespace pins its parent), which is why the free needs one D2 test, not
one per level. :meth:`bpfns.Kernel.alloc_obj_id` and :meth:`bpfns.Kernel.free_obj_id`
*are* :func:`alloc_obj_id` and :func:`free_obj_id`, so that a public call is one Python
call (issue 7's benchmark, ``benchmarks/run.py``, measures it against a bare dict loop).

The record (:class:`IdRecord`) keeps ``numbers[]`` as two arrays, deepest level first:
the ids, and the namespaces. After a successful allocation the namespace array *is* the
namespace's own ancestor chain (a shared tuple), which is how the free recognises an
intact record in O(1); ``mem[level]`` views them as ``ObjIdEntry`` values, the way the
sanitizer, the invariant checks and the D1 rollback read them.
"""

from __future__ import annotations

import errno
import inspect
from collections.abc import Callable
from html import escape
from typing import Any, ClassVar, NoReturn

import attrs

from ._bpf_namespace import (
    IdRecord,
    Namespace,
    NsContext,
    NsState,
    ObjIdEntry,
    ObjType,
    get_bpfns,
    live_namespace,
    memory_reused_by,
    obj_type,
    put_bpfns,
    refresh_fast_paths,
)
from ._errors import BpfnsError
from ._fault import FaultSite
from ._idr import idr_remove
from ._radix_tree import remove_walk, take_cursor_walk
from ._sanitizer import BugKind
from ._trace import IdAlloc, IdFree, Rollback, Tracer, replayable, traced

__all__ = [
    "IDR_LOCK",
    "IdRecord",
    "KernelObjId",
    "ObjId",
    "ObjIdEntry",
    "alloc_obj_id",
    "bpf_obj_id_nr",
    "free_obj_id",
    "publication_deferred",
    "publish_obj_id",
    "record_of",
    "stale_nr_ns",
]

_ALIVE = NsState.ALIVE
_new = object.__new__
#: The per-type IDR lock (``bpf_idr_lock[type]`` since patch 12): one lock for the IDRs
#: of that type in every namespace. Its name is the lock's identity on simulated CPUs.
IDR_LOCK: dict[ObjType, str] = {t: f"bpf_idr_lock[{t.name}]" for t in ObjType}


@attrs.define(eq=False, repr=False)
class ObjId:
    """A handle on a ``struct bpf_obj_id`` record: one id per level, index 0 = init.

    Returned by :meth:`bpfns.Kernel.alloc_obj_id`. The record's memory belongs to the
    slab: after :meth:`bpfns.Kernel.free_obj_id` it is reused by later allocations, so
    reading it through this handle is an error of the caller (ValueError; the sanitizer
    reports only the kernel's own accesses).

    Attributes:
        type: the :class:`ObjType` it was allocated for.
        obj: the object stored in the IDRs (the kernel's ``map``/``prog``/``link``).
    """

    _slot: IdRecord
    type: ObjType
    obj: object
    _trace_kind: ClassVar[str] = "oid"

    @property
    def _kernel(self) -> NsContext:
        return self._slot.kernel

    @property
    def _tracer(self) -> Tracer | None:
        return self._slot.kernel.tracer

    @property
    def live(self) -> bool:
        """Whether the record is still allocated to this handle."""
        return self._slot.owner is self

    def _mem(self, what: str) -> IdRecord:
        """The record, for a read through this handle; a freed one is refused."""
        if not self.live:
            raise ValueError(
                f"{what}: this {self.type.name} ObjId was freed (its record at "
                f"{self._slot.addr:#x} now belongs to the slab); use the ObjId of a live "
                "object"
            )
        return self._slot

    @property
    def level(self) -> int:
        """``obj_id->level``: the level of the namespace the object was created in."""
        return self._mem("ObjId.level").level

    @property
    def numbers(self) -> tuple[ObjIdEntry, ...]:
        """``numbers[0..level]``: entry ``i`` is the id in the ancestor at level ``i``."""
        return tuple(self._mem("ObjId.numbers").entries())  # type: ignore[arg-type]

    @property
    def ns(self) -> Namespace:
        """``numbers[level].ns``: the namespace the object was created in."""
        ns: Namespace = self._mem("ObjId.ns").nss[0]  # type: ignore[assignment]
        return ns

    def nr(self) -> int:
        """``bpf_obj_id_nr``: the level-0 (global) id, what ``map->id`` holds.

        >>> from bpfns import Kernel, ObjType
        >>> k = Kernel()
        >>> k.alloc_obj_id(k.init_ns.create_child(), "map", ObjType.MAP).nr()
        1
        """
        nr: int = self._mem("bpf_obj_id_nr").nrs[-1]  # type: ignore[assignment]
        return nr

    @traced
    def nr_ns(self, ns: Namespace) -> int:
        """``bpf_obj_id_nr_ns``: the id as seen from ``ns``, 0 if not visible there.

        As posted (D6), only ``ns.level <= level`` is checked, so a namespace at the
        same level on another branch gets that branch's number; bpfns records a
        semantic D6 report when that happens. With ``d6_nr_ns_unchecked=False`` the
        entry must belong to ``ns``, as in ``pid_nr_ns``.

        Raises:
            TypeError: if ``ns`` is not a :class:`bpfns.Namespace`.
            ValueError: if ``ns`` belongs to another Kernel, or this ObjId was freed.

        >>> from bpfns import Kernel, ObjType
        >>> k = Kernel()
        >>> child = k.init_ns.create_child()
        >>> oid = k.alloc_obj_id(child, "map", ObjType.MAP)
        >>> oid.nr_ns(child), oid.nr_ns(k.init_ns), oid.nr_ns(child.create_child())
        (1, 1, 0)
        """
        k = self._kernel
        live_namespace(ns, "ns", k)
        slot = self._mem("bpf_obj_id_nr_ns")
        if ns.level > slot.level:
            return 0
        i = slot.level - ns.level
        nr: int = slot.nrs[i]  # type: ignore[assignment]
        owner: Namespace = slot.nss[i]  # type: ignore[assignment]
        if owner is ns:
            return nr
        if not k.behavior.d6_nr_ns_unchecked:
            return 0
        k.sanitizer.report(
            "D6",
            BugKind.SEMANTIC,
            f"bpf_obj_id_nr_ns returned {nr}, the id in {owner.label()}, to a "
            f"viewer in {ns.label()} at the same level (no numbers[level].ns == ns check)",
            "bpf_obj_id_nr_ns",
            k.step,
        )
        return nr

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
        entries: list[ObjIdEntry] = slot.entries()  # type: ignore[assignment]
        ids = ", ".join(f"{e.ns.label()}={e.nr}" for e in entries)
        return f"<ObjId {self.type.name} level={slot.level} [{ids}]>"


@attrs.define(eq=False, repr=False)
class KernelObjId(ObjId):
    """The id record of a map, program or link made by a ``bpf()`` command.

    The kernel frees it when the object's last reference goes; the public
    :meth:`bpfns.Kernel.free_obj_id` refuses it (ValueError), so that a test cannot
    free an object's ids behind the object's back.
    """


#: The handle classes of a record: a caller's, and a bpf() command's.
_HANDLE: type[ObjId] = ObjId
_KERNEL_HANDLE: type[ObjId] = KernelObjId


def bpf_obj_id_nr(obj_id: ObjId) -> int:
    """:meth:`ObjId.nr` of a handle the caller knows is live (its own, just allocated)."""
    nr: int = obj_id._slot.nrs[-1]  # type: ignore[assignment]
    return nr


def stale_nr_ns(obj_id: ObjId, ns: Namespace) -> int:
    """What ``bpf_obj_id_nr_ns`` reads through a pointer to a *freed* record (D5).

    The slab does not clear a freed record, so it still holds its last user's
    ``numbers[]``: the freed object's own, or those of whoever reuses the memory now.
    The D6 switch applies as in :meth:`ObjId.nr_ns`; nothing is reported here (the
    caller reports the use-after-free).
    """
    slot = obj_id._slot
    if ns.level > slot.level:
        return 0
    i = slot.level - ns.level
    nr, owner = slot.nrs[i], slot.nss[i]
    if nr is None or (owner is not ns and not ns.kernel.behavior.d6_nr_ns_unchecked):
        return 0
    return nr


def record_of(obj_id: ObjId) -> IdRecord:
    """The record (slab memory) ``obj_id`` points at, live or not: what the checks read."""
    return obj_id._slot


# -- alloc and free ---------------------------------------------------------------------


def _ns_memory(k: NsContext, ns: Namespace, access: str, where: str) -> Namespace | None:
    """The memory an access to the dead ``ns`` reaches; a D2 use-after-free once freed.

    While its RCU free is pending (DESTROYED) the memory is still the namespace's and
    valid: its IDRs are destroyed, so a removal finds nothing, and KASAN has nothing to
    report. Once ``delayed_free_bpfns`` ran, the access is a use-after-free (reported);
    it reaches the namespace now occupying that memory if it was reused, or nothing
    (None: the access then has no effect).
    """
    if ns.state is NsState.DESTROYED:
        return ns
    target = memory_reused_by(ns)
    state = "freed" + (f", memory reused by {target!r}" if target is not None else "")
    k.sanitizer.report(
        "D2",
        BugKind.USE_AFTER_FREE,
        f"{access} on namespace {ns.label()}{'' if ns.name is None else f' (bpf:[{ns.inum}])'}"
        f", which is {state}: "
        "the id record does not pin its namespace",
        where,
        k.step,
    )
    return target


def _alloc_careful(k: NsContext, ns: object, obj: object, type: object, nested: bool) -> ObjId:
    """``alloc_obj_id`` off its fast path: recorded if traced, checked, then line by line."""
    if not nested:
        tracer = k.tracer
        if tracer is not None and not tracer.depth:
            handle: ObjId = tracer.call(alloc_obj_id, k, (ns, obj, type), {})
            return handle
        ns = live_namespace(ns, "ns", k)
        type = obj_type(type)
        if obj is None:
            raise ValueError("alloc_obj_id: obj must not be None (a NULL entry is invisible)")
        k.step += 1
    cls = KernelObjId if nested else ObjId
    return _alloc_obj_id(k, ns, obj, type, cls)  # type: ignore[arg-type]


def _free_careful(k: NsContext, obj_id: object, type: object, nested: bool) -> None:
    """``free_obj_id`` off its fast path: recorded if traced, checked, then line by line."""
    if not nested:
        tracer = k.tracer
        if tracer is not None and not tracer.depth:
            tracer.call(free_obj_id, k, (obj_id, type), {})
            return
        type = _free_args(k, obj_id, type)
        k.step += 1
    _free_obj_id(k, obj_id._slot, type)  # type: ignore[attr-defined,arg-type]


def _free_args(k: NsContext, obj_id: object, type: object) -> ObjType:
    """The argument checks of ``free_obj_id``; the type as an :class:`ObjType`."""
    if not isinstance(obj_id, ObjId):
        raise TypeError(f"free_obj_id: expected a bpfns.ObjId, got {obj_id.__class__.__name__}")
    if obj_id._kernel is not k:
        raise ValueError("free_obj_id: this ObjId belongs to another Kernel")
    type_ = obj_type(type)
    if not obj_id.live:
        raise ValueError("free_obj_id: double free; this ObjId was already freed")
    if type_ is not obj_id.type:
        raise ValueError(f"free_obj_id: the ObjId was allocated as {obj_id.type!r}, not {type_!r}")
    if isinstance(obj_id, KernelObjId):
        raise ValueError(
            f"free_obj_id: this ObjId is the id record of {obj_id.obj!r}, which the kernel "
            "frees when its last reference goes; close its fds (and unpin it) instead"
        )
    return type_


def _remove_id(k: NsContext, slot: IdRecord, level: int, type_: ObjType, where: str) -> None:
    """``idr_remove(&numbers[level].ns->idr[type], numbers[level].nr)``, D2 checked."""
    i = slot.level - level
    nr: int = slot.nrs[i]  # type: ignore[assignment]
    ns: Namespace = slot.nss[i]  # type: ignore[assignment]
    tracer = k.tracer
    if tracer is not None:
        oid = tracer.ref(slot.owner)
        tracer.emit(IdFree(tracer.step, oid, type_.name, level, tracer.ref(ns), nr))
    if ns.state is not _ALIVE:
        target = _ns_memory(k, ns, f"idr_remove(idr[{type_.name}], {nr})", where)
        if target is None:
            return
        ns = target
    smp = k.smp
    if smp is None:
        idr_remove(ns.idr[type_], nr)
        return
    lock = IDR_LOCK[type_]
    smp.spin_lock(lock, f"spin_lock_irqsave({lock}) to remove level {level}")
    idr_remove(ns.idr[type_], nr)
    smp.spin_unlock(lock, f"spin_unlock_irqrestore({lock}): level {level} removed")


@replayable
def alloc_obj_id(
    k: NsContext, ns: Namespace, obj: object, type: ObjType, *, _nested: bool = False
) -> ObjId:
    """``bpf_alloc_obj_id``: give ``obj`` an id in ``ns`` and in every ancestor.

    Each level gets ``idr_alloc_cyclic(&idr[type], obj, 1, id_end)``, deepest first
    (semantics §2.3). The IDRs store the returned :class:`ObjId`, whose ``obj`` is
    ``obj``: the pair stands for the kernel's object and its ``obj_id`` field.

    Raises:
        BpfnsError: ENOSPC if some level has no free id, ENOMEM if an injected
            allocation fails. The ids taken at deeper levels are removed again, but
            their cursors stay advanced, as in the kernel. In RFC behaviour the
            rollback first reads the failed level's uninitialised entry (D1, even
            for a failure at level 0): the
            sanitizer reports it and, by default, raises
            :class:`bpfns.UninitializedRead` instead.
        TypeError, ValueError: for a bad ``type``, ``obj=None``, or a namespace of
            another Kernel or no longer alive.

    >>> from bpfns import FIXED, Kernel
    >>> k = Kernel(FIXED, id_end=3)
    >>> ids = [k.alloc_obj_id(k.init_ns, n, ObjType.PROG).nr() for n in "ab"]
    >>> ids
    [1, 2]
    >>> k.alloc_obj_id(k.init_ns, "c", ObjType.PROG)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bpfns.BpfnsError: [ENOSPC: No space left on device] bpf_alloc_obj_id: ...
    """
    # This is Kernel.alloc_obj_id itself (``k`` is its ``self``), so that a public call
    # is one Python call. ``_nested=True`` is for the kernel's own callers (the bpf()
    # commands): the call is part of theirs, so it is neither recorded nor counted as a
    # step, and its arguments are trusted; help() and the reference do not show it.
    # The common case is recognised with one test per condition (the namespace's
    # _fast_owner is this kernel: alive, object-id policy, no tracer)
    # and runs the fast form of the walk (module docstring): every level takes its
    # cursor's slot in the armed leaf, or asks its policy when that slot is taken or not
    # armed. Everything else (tracing, bad arguments, fault injection, a placeholder
    # policy) takes _alloc_careful: the checks in order, then the line-by-line walk.
    try:
        if ns.fast_owner is not k or type.__class__ is not ObjType or obj is None:
            return _alloc_careful(k, ns, obj, type, _nested)
    except AttributeError:  # not a Namespace
        return _alloc_careful(k, ns, obj, type, _nested)
    if k.faults.armed:
        return _alloc_careful(k, ns, obj, type, _nested)
    if _nested:  # the record of a bpf() command's object
        cls = _KERNEL_HANDLE
    else:
        k.step += 1
        cls = _HANDLE
    freelist = ns.id_freelist  # kmem_cache_alloc, inline (see KmemCache.freelist)
    slot = freelist.pop() if freelist else ns.obj_id_cachep.alloc(None)
    handle = _new(cls)  # ObjId(slot, type, obj), without the __init__ frame
    handle._slot = slot
    handle.type = type
    handle.obj = obj
    slot.owner = handle
    nrs = slot.nrs  # numbers[level - j].nr, written in place as the C loop does
    walk = ns.id_walks[type]  # deepest first
    j = take_cursor_walk(walk, handle, nrs, 0)
    while j >= 0:  # level j's cursor slot is taken or not armed: its policy decides
        tmp = ns.path[j]
        try:
            nrs[j] = tmp.policy.alloc(tmp.idr[type], handle)
        except BpfnsError as err:
            if not isinstance(slot.nss, list):
                slot.nss = list(slot.nss)
            slot.nss[:j] = ns.path[:j]  # what the C loop wrote before it failed
            _fail(k, ns, slot, type, tmp, err)
        j = take_cursor_walk(walk, handle, nrs, j + 1)
    slot.nss = ns.path
    if not k.behavior.d2_obj_id_unpinned:
        get_bpfns(ns, "obj_id")
    return handle


def _alloc_obj_id(
    k: NsContext, ns: Namespace, obj: object, type_: ObjType, cls: type[ObjId]
) -> ObjId:
    """``bpf_alloc_obj_id`` line by line: fault sites, trace events, locks, placeholders.

    Each level is allocated under its own acquisition of the type's IDR lock, as
    posted (the concurrency page of the docs): on simulated CPUs another CPU can run
    between two levels. As posted (D7) the
    object is stored at once, so it is findable at the deeper levels while a higher one
    can still fail; fixed, every level holds a NULL placeholder until
    :func:`publish_obj_id` stores the object at all of them.
    """
    faults = k.faults
    if faults.armed and faults.should_fail(FaultSite.OBJ_ID):
        raise BpfnsError(
            errno.ENOMEM, "kmem_cache_alloc(obj_id_cachep) failed (injected allocation failure)"
        )
    slot = _take_record(k, ns)
    handle = cls(slot, type_, obj)
    slot.owner = handle
    level = ns.level
    nrs = slot.nrs
    if not isinstance(slot.nss, list):
        slot.nss = list(slot.nss)
    nss = slot.nss
    tmp: Namespace | None = ns
    i = level
    tracer = k.tracer
    smp = k.smp
    lock = IDR_LOCK[type_]
    deferred = ns.policy.placeholder or not k.behavior.d7_publication_not_atomic
    stored = None if deferred else handle
    while tmp is not None:
        idr = tmp.idr[type_]
        before = idr.cursor
        if smp is not None:
            smp.spin_lock(lock, f"spin_lock_bh({lock}) for level {i}")
        try:
            if faults.armed and faults.should_fail(FaultSite.IDR_NODE):
                raise BpfnsError(
                    errno.ENOMEM,
                    "idr_alloc_cyclic could not allocate a radix node (injected failure)",
                )
            nr = tmp.policy.alloc(idr, stored)
        except BpfnsError as err:
            if smp is not None:
                smp.spin_unlock(lock, f"spin_unlock_bh({lock}): level {i} failed")
            _fail(k, ns, slot, type_, tmp, err)
        nrs[level - i] = nr
        nss[level - i] = tmp
        if smp is not None:
            smp.spin_unlock(lock, f"spin_unlock_bh({lock}): level {i} = {nr}")
        if tracer is not None:
            ev = IdAlloc(
                tracer.step,
                tracer.ref(handle),
                type_.name,
                i,
                tracer.ref(tmp),
                nr,
                before,
                idr.cursor,
            )
            tracer.emit(ev)
        tmp = tmp.parent
        i -= 1
    slot.nss = ns.path  # the same namespaces: the record is intact (see free_obj_id)
    if not ns.policy.adding:  # alloc_pid: the innermost namespace's init has exited
        _refuse(k, ns, slot, type_)
    if deferred and not (cls is _KERNEL_HANDLE and publication_deferred(k)):
        publish_obj_id(k, handle)
    if not k.behavior.d2_obj_id_unpinned:
        get_bpfns(ns, "obj_id")
    return handle


def _take_record(k: NsContext, ns: Namespace) -> IdRecord:
    """``kmem_cache_alloc(ns->obj_id_cachep)``: a record, fitted if it was a stray."""
    cache = ns.obj_id_cachep
    strays = bool(cache.strays)
    slot = cache.alloc(None)
    if strays:
        _fit_stray(k, ns, slot)
    return slot


def _fit_stray(k: NsContext, ns: Namespace, slot: IdRecord) -> None:
    """A record from a cache that held strays: if it is one, it is the wrong size (D2).

    A record of a shallower level has fewer ``numbers[]`` than ``ns`` needs: writing
    the deeper entries runs past its end (slab-out-of-bounds, reported). A deeper
    level's record is larger and merely wastes memory. Either way the record is this
    cache's from now on: bpfns resizes it to the level (the bytes past a short record
    belong to its neighbour), and the cache's namespaces get their fast paths back once
    it holds no stray.
    """
    if slot.level != ns.level:
        if slot.level < ns.level:
            k.sanitizer.report(
                "D2",
                BugKind.OUT_OF_BOUNDS,
                f"bpf_alloc_obj_id writes numbers[{slot.level + 1}..{ns.level}] past the "
                f"end of a level-{slot.level} record (at {slot.addr:#x}) that "
                f"bpf_free_obj_id freed into cache {ns.obj_id_cachep.name} through a "
                "namespace pointer whose memory another level's namespace had reused",
                "bpf_alloc_obj_id",
                k.step,
            )
        size = ns.level + 1
        slot.nrs = (slot.nrs + [None] * size)[:size]
        slot.nss = (list(slot.nss) + [None] * size)[:size]
        slot.level = ns.level
    if not ns.obj_id_cachep.strays:
        refresh_fast_paths(k, ns.obj_id_cachep)


def publication_deferred(k: NsContext) -> bool:
    """Whether a ``bpf()`` command publishes its object's ids itself (D7 fixed, on CPUs).

    Fixed, the command writes the object's ``id`` and ``obj_id`` first and then calls
    :func:`publish_obj_id`, so that no lookup finds a half-made object. A sequential
    kernel cannot tell the two orders apart, and publishes inside the allocation.
    """
    return k.smp is not None and not k.behavior.d7_publication_not_atomic


def publish_obj_id(k: NsContext, obj_id: ObjId) -> None:
    """``idr_replace`` of the NULL placeholders at every level, under the lock once.

    What ``alloc_pid`` does once every level succeeded (``spin_lock_irq(&pidmap_lock)``
    around the loop). Publishes the record's own handle.
    """
    slot = obj_id._slot
    smp = k.smp
    lock = IDR_LOCK[obj_id.type]
    if smp is not None:
        smp.spin_lock(lock, f"spin_lock_bh({lock}): publish every level")
    for nr, level_ns in zip(slot.nrs, slot.nss, strict=True):
        level_ns.idr[obj_id.type].replace(obj_id, nr)  # type: ignore[union-attr,arg-type]
    if smp is not None:
        smp.spin_unlock(lock, f"spin_unlock_bh({lock}): published")


def _fail(
    k: NsContext, ns: Namespace, slot: IdRecord, type_: ObjType, at: Namespace, err: BpfnsError
) -> NoReturn:
    """The error path of ``bpf_alloc_obj_id`` after level ``at.level`` failed with ``err``."""
    failed = at.level
    tracer = k.tracer
    if tracer is not None:
        oid = tracer.ref(slot.owner)
        tracer.emit(Rollback(tracer.step, oid, type_.name, failed, err.errorcode))
    _rollback(k, slot, failed, type_)
    ns.policy.after_rollback(ns.idr[type_])
    ns.obj_id_cachep.free(slot)
    raise BpfnsError(
        err.errno or 0,
        f"{ns.policy.caller}: level {failed} ({at.label()}): {err.strerror}",
    ) from None


def _refuse(k: NsContext, ns: Namespace, slot: IdRecord, type_: ObjType) -> NoReturn:
    """``alloc_pid`` after every level: PIDNS_ADDING is clear, so ENOMEM (kernel/pid.c).

    Only the innermost namespace is checked. Every level's number is removed again
    (``while (++i <= ns->level)`` from -1), the cursors stay advanced, and the cursor
    reset of a namespace that never published a pid does not apply.
    """
    for level in range(slot.level + 1):
        _remove_id(k, slot, level, type_, ns.policy.caller)
    ns.obj_id_cachep.free(slot)
    raise BpfnsError(
        errno.ENOMEM,
        f"{ns.policy.caller}: {ns.label()} takes no new pids: its init has exited "
        "(PIDNS_ADDING is clear); fork in a live namespace instead",
    )


def _rollback(k: NsContext, slot: IdRecord, failed: int, type_: ObjType) -> None:
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
        k.sanitizer.report("D1", BugKind.UNINIT_VALUE, what, "bpf_alloc_obj_id", k.step)
        if stale is None:  # a wild pointer: nothing bpfns can model; skip the access
            first = failed + 1
    for i in range(first, slot.level + 1):
        _remove_id(k, slot, i, type_, "bpf_alloc_obj_id")


@replayable
def free_obj_id(k: NsContext, obj_id: ObjId, type: ObjType, *, _nested: bool = False) -> None:
    """``bpf_free_obj_id``: remove every id of ``obj_id``, deepest first, and free it.

    In RFC behaviour the record does not pin its namespace (D2): if that namespace
    died first, the removal and the free touch freed memory; the sanitizer reports
    it and, by default, raises :class:`bpfns.UseAfterFree`. In FIXED behaviour the
    record pinned its namespace, and this drops that reference.

    Raises:
        TypeError: if ``obj_id`` is not an ObjId or ``type`` not an ObjType.
        ValueError: if ``obj_id`` was already freed (a double free), belongs to
            another Kernel, or was allocated for another type.

    >>> from bpfns import Kernel
    >>> k = Kernel()
    >>> oid = k.alloc_obj_id(k.init_ns, "m", ObjType.MAP)
    >>> k.free_obj_id(oid, ObjType.MAP)
    >>> k.init_ns.idr[ObjType.MAP].is_empty()
    True
    """
    # This is Kernel.free_obj_id itself (see alloc_obj_id, also for ``_nested``). The
    # fast form runs when the
    # record is intact (its namespaces are the deepest one's path), that namespace is a
    # fast one of this kernel (so alive, and so is every level), and the handle is live
    # and of this type: a level whose id lies in the armed leaf frees its slot in place
    # (storing FREE in a free slot is the no-op idr_remove of a free id is).
    try:
        slot = obj_id._slot
        nss = slot.nss
        deepest: Namespace = nss[0]  # type: ignore[assignment]
        if (
            deepest.fast_owner is not k
            or nss is not deepest.path
            or slot.owner is not obj_id
            or type is not obj_id.type
        ):
            return _free_careful(k, obj_id, type, _nested)
    except AttributeError:  # not an ObjId, or a record never written
        return _free_careful(k, obj_id, type, _nested)
    if not _nested:
        if obj_id.__class__ is not ObjId:  # a KernelObjId: refused by the careful path
            return _free_careful(k, obj_id, type, _nested)
        k.step += 1
    remove_walk(deepest.id_walks[type], slot.nrs)
    slot.owner = None  # kmem_cache_free, inline (see KmemCache.freelist)
    deepest.id_freelist.append(slot)
    if not k.behavior.d2_obj_id_unpinned:
        put_bpfns(deepest, "obj_id")
    return None


def _free_obj_id(k: NsContext, slot: IdRecord, type: ObjType) -> None:
    """``bpf_free_obj_id`` line by line: trace events, D2 checks at every level."""
    deepest: Namespace = slot.nss[0]  # type: ignore[assignment]
    for i in range(slot.level, -1, -1):
        _remove_id(k, slot, i, type, "bpf_free_obj_id")
    cache = deepest.obj_id_cachep
    if deepest.state is not _ALIVE:
        memory = _ns_memory(k, deepest, "read of ns->obj_id_cachep", "bpf_free_obj_id")
        if memory is not None:  # the pointer as that memory holds it now
            cache = memory.obj_id_cachep
    if cache.size == slot.level + 1:
        cache.free(slot)
    else:  # reused by a namespace of another level: its cache, the wrong one
        cache.free_stray(slot)
        refresh_fast_paths(k, cache)
    if not k.behavior.d2_obj_id_unpinned:
        put_bpfns(deepest, "obj_id")


def _hide_private_parameters(fn: Callable[..., object]) -> None:
    """Show ``fn`` without its ``_``-prefixed parameters in ``help()`` and the reference.

    The kernel's own callers pass them (``_nested``); a user never does, and the
    function stays one Python call on the hot path (no wrapper).
    """
    sig = inspect.signature(fn)
    public = [p for p in sig.parameters.values() if not p.name.startswith("_")]
    fn.__signature__ = sig.replace(parameters=public)  # type: ignore[attr-defined]


_hide_private_parameters(alloc_obj_id)
_hide_private_parameters(free_obj_id)
