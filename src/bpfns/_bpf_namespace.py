"""kernel/bpf/bpf_namespace.c: the BPF namespace object and its lifetime (RFC patch 03).

The rules are semantics §2.1 (data structures) and §2.2 (creation and lifetime):

* ``create_bpf_namespace(user_ns, parent)`` checks, in this order: the owner user
  namespace is within the parent's (EINVAL), ``level <= MAX_BPF_NS_LEVEL`` (ENOSPC), the
  ``max_bpf_namespaces`` ucount (ENOSPC), then allocates the namespace (ENOMEM), the
  per-level ``bpf_obj_id`` cache (ENOMEM) and the inode number (ENOMEM/ENOSPC), undoing
  each earlier step on failure in reverse order.
* ``put_bpfns`` walks up: every namespace whose count drops to zero is destroyed
  (inode number freed, three ``idr_destroy``, ``call_rcu`` of the final free) and its
  reference on the parent is dropped in turn. ``init_bpf_ns`` is never counted.
* The final free (an RCU callback, run by :meth:`bpfns.Kernel.synchronize_rcu`) drops
  the ucount charge and the user-namespace reference and returns the memory to the slab.
"""

from __future__ import annotations

import enum
import errno
import functools
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, NamedTuple, overload

import attrs

from ._args import U32_MAX, check_instance, check_int, check_ns_name
from ._context import MAX_BPF_NS_LEVEL, KernelContext
from ._errors import BpfnsError
from ._fault import FaultSite
from ._idr import Ida, Idr, idr_tree
from ._policy import ObjIdPolicy, PidPolicy
from ._radix_tree import IdBitmap
from ._sanitizer import BugKind
from ._slab import KmemCache, Slot
from ._smp import Smp
from ._trace import NsDestroyed, NsFreed, Tracer, traced
from ._ucount import (
    Ucounts,
    UcountType,
    UserNamespace,
    dec_ucount,
    get_user_ns,
    inc_ucount,
    live_user_ns,
    new_init_user_ns,
    put_user_ns,
)

__all__ = [
    "CLONE_NEWBPF",
    "MAX_BPF_NS_LEVEL",
    "PROC_BPF_INIT_INO",
    "PROC_DYNAMIC_FIRST",
    "IdRecord",
    "Namespace",
    "NsContext",
    "NsState",
    "Nsproxy",
    "ObjIdEntry",
    "ObjType",
    "copy_bpfns",
    "get_bpfns",
    "live_namespace",
    "obj_type",
    "put_bpfns",
    "refresh_fast_paths",
]

#: RFC patch 01: the clone3 flag, above bit 31 (semantics §1, D14).
CLONE_NEWBPF = 0x400000000
#: ``PROC_BPF_INIT_INO`` as the RFC posted it. Upstream later gave 0xEFFFFFF9 to the
#: initial *network* namespace (kernel rules §E.2); bpfns keeps the RFC's value because it
#: simulates the RFC, and never hands it out dynamically.
PROC_BPF_INIT_INO = 0xEFFFFFF9
#: ``PROC_DYNAMIC_FIRST``: dynamic inode numbers are ``0xF0000000 + lowest free`` (E.3).
PROC_DYNAMIC_FIRST = 0xF0000000


class ObjType(enum.IntEnum):
    """The object types with an IDR in every namespace (``MAP_OBJ_ID`` ... ``LINK_OBJ_ID``).

    BTF has no slot (semantics §2.1).
    """

    MAP = 0
    PROG = 1
    LINK = 2

    def __repr__(self) -> str:
        return f"ObjType.{self.name}"


class NsState(enum.Enum):
    """Where a namespace is in its life."""

    def __repr__(self) -> str:
        return f"NsState.{self.name}"

    ALIVE = "alive"
    #: The count reached zero: inode number freed, IDRs destroyed, RCU free pending.
    DESTROYED = "destroyed"
    #: ``delayed_free_bpfns`` ran: the memory is back in the slab (and may be reused).
    FREED = "freed"


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


class IdRecord:
    """The memory of one ``struct bpf_obj_id``: a slab object of a per-level cache.

    ``numbers[]`` is kept as two arrays indexed deepest level first (index ``level - i``
    holds level ``i``): ``nrs``, the ids, and ``nss``, the namespaces. A slab object that
    was never written holds None in both. ``mem`` is the kernel's view,
    ``numbers[0..level]`` as :class:`ObjIdEntry` values (None where never written).

    Attributes:
        kernel: the kernel context whose cache the record belongs to.
        addr: as for every slab object (:class:`bpfns._slab.Slot`).
        owner: the :class:`ObjId` the record is allocated to, None while it is free;
            a handle is live exactly when it is its record's owner.
        level: ``obj_id->level`` (the level of the cache it belongs to).
    """

    __slots__ = ("addr", "kernel", "level", "nrs", "nss", "owner")

    def __init__(self, kernel: NsContext, addr: int, size: int) -> None:
        self.kernel = kernel
        self.addr = addr
        self.level = size - 1
        self.owner: object = None
        self.nrs: list[int | None] = [None] * size
        self.nss: Sequence[Namespace | None] = [None] * size

    @property
    def live(self) -> bool:
        """Whether the record is allocated."""
        return self.owner is not None

    def claim(self, owner: object) -> None:
        """Allocated to ``owner`` (None until its handle exists)."""
        self.owner = owner

    def release(self) -> None:
        """Free: no owner."""
        self.owner = None

    def zero(self) -> None:
        """Clear ``numbers[]`` (``kmem_cache_zalloc``; the RFC does not use it)."""
        self.nrs = [None] * len(self.nrs)
        self.nss = [None] * len(self.nrs)

    @property
    def mem(self) -> _Numbers:
        """``numbers[]`` as a writable sequence of :class:`ObjIdEntry`, level 0 first."""
        return _Numbers(self)

    def entries(self) -> list[ObjIdEntry | None]:
        """``numbers[0..level]``, root first (None where never written)."""
        return [
            None if ns is None else ObjIdEntry(nr, ns)  # type: ignore[arg-type]
            for nr, ns in zip(reversed(self.nrs), reversed(self.nss), strict=True)
        ]

    def __repr__(self) -> str:
        return f"<IdRecord {self.addr:#x} live={self.live}>"

    def _check(self) -> None:
        """Assert the record's own invariants: its arrays cover levels 0..level.

        A live record with an owner written by ``bpf_alloc_obj_id`` names a namespace at
        every level, deepest first, each the parent of the one before.
        """
        assert len(self.nrs) == len(self.nss) == self.level + 1, "numbers[] has the wrong size"
        if self.live and self.nss[0] is not None and self.nss is self.nss[0].path:
            levels = [ns.level for ns in self.nss if ns is not None]
            assert levels == list(range(self.level, -1, -1)), f"levels {levels}"
            assert all(isinstance(nr, int) and nr > 0 for nr in self.nrs), "an id is not > 0"


class _Numbers:
    """``numbers[]`` of an :class:`IdRecord`: ``mem[level]`` reads or writes one entry."""

    __slots__ = ("_rec",)

    def __init__(self, rec: IdRecord) -> None:
        self._rec = rec

    def __len__(self) -> int:
        return len(self._rec.nrs)

    def __iter__(self) -> Iterator[ObjIdEntry | None]:
        return iter(self._rec.entries())

    @overload
    def __getitem__(self, level: int) -> ObjIdEntry | None: ...
    @overload
    def __getitem__(self, level: slice) -> list[ObjIdEntry | None]: ...
    def __getitem__(self, level: int | slice) -> ObjIdEntry | list[ObjIdEntry | None] | None:
        if isinstance(level, slice):
            return self._rec.entries()[level]
        i = self._index(level)
        ns = self._rec.nss[i]
        return None if ns is None else ObjIdEntry(self._rec.nrs[i], ns)  # type: ignore[arg-type]

    def __setitem__(self, level: int, entry: ObjIdEntry | None) -> None:
        rec = self._rec
        i = self._index(level)
        if not isinstance(rec.nss, list):  # the namespace's shared chain: copy on write
            rec.nss = list(rec.nss)
        rec.nrs[i], rec.nss[i] = (None, None) if entry is None else entry

    def _index(self, level: int) -> int:
        top = len(self._rec.nrs) - 1
        if not 0 <= level <= top:
            raise IndexError(f"numbers[{level}]: the record has levels 0..{top}")
        return top - level


@attrs.define(eq=False, repr=False)
class NsContext(KernelContext):
    """The kernel context with the namespace layer's state (see :mod:`bpfns._context`).

    Attributes:
        init_user_ns: the initial user namespace.
        init_ns: ``init_bpf_ns``.
        live_namespaces: every namespace but init not yet freed, in creation order (a
            dict: the order is deterministic).
        ns_cache: the ``bpf_namespace`` slab cache.
        obj_id_caches: the per-level ``bpf_obj_id`` caches, by level.
        inum_ida: the nsfs inode numbers (``ns_alloc_inum``), offset by
            ``PROC_DYNAMIC_FIRST``.
    """

    #: The ucount a new namespace is charged to (pid namespaces use their own).
    ns_ucount: ClassVar[UcountType] = UcountType.BPF_NAMESPACES
    #: ``init_bpf_ns.ns.count``: the patch never initialises it (a static zero), and
    #: ``get_bpfns``/``put_bpfns`` skip init, so it reads 0 forever.
    init_ns_count: ClassVar[int] = 0
    #: The initial namespace's fixed inode number.
    init_ns_inum: ClassVar[int] = PROC_BPF_INIT_INO
    #: The name of level ``L``'s record cache (``create_bpf_cachep``; D4 at level 0).
    cache_name: ClassVar[str] = "bpf_{}"
    init_user_ns: UserNamespace = attrs.field(init=False)
    init_ns: Namespace = attrs.field(init=False)
    live_namespaces: dict[Namespace, None] = attrs.field(init=False, factory=dict)
    ns_cache: KmemCache[Slot] = attrs.field(init=False)
    obj_id_caches: dict[int, KmemCache[IdRecord]] = attrs.field(init=False, factory=dict)
    inum_ida: Ida = attrs.field(init=False, factory=Ida)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.init_user_ns = new_init_user_ns(self.ucount_max, self.tracer, self.faults)
        self.ns_cache = KmemCache("bpf_namespace", 0, self._alloc_addr)
        get_user_ns(self.init_user_ns, "bpf_ns")
        self.init_ns = Namespace(
            kernel=self,
            level=0,
            parent=None,
            user_ns=self.init_user_ns,
            inum=self.init_ns_inum,
            obj_id_cachep=self._new_obj_id_cache(0),
            policy=self._new_policy(),
            name=None,
            count=self.init_ns_count,
        )
        tracer = self.tracer
        if tracer is not None:  # the trace's header, before the first task exists
            tracer.ref(self)
            tracer.ref(self.faults)
            tracer.kernel_created(self)

    def smp_init(self, smp: Smp) -> None:
        """:meth:`bpfns._context.KernelContext.smp_init`, and no namespace keeps its fast path."""
        super().smp_init(smp)
        self.init_ns.fast_owner = None
        for ns in self.live_namespaces:
            ns.fast_owner = None

    def _new_policy(self) -> ObjIdPolicy | PidPolicy:
        """The allocation policy of a new namespace: ids ``[1, id_end)``."""
        return ObjIdPolicy(self.id_end)

    def _new_obj_id_cache(self, level: int) -> KmemCache[IdRecord]:
        # D4: level 0 uses a second "pid" cache, as posted (semantics §2.1); harmless here.
        name = "pid" if level == 0 else self.cache_name.format(level + 1)
        cache = KmemCache(name, level + 1, self._alloc_addr, functools.partial(IdRecord, self))
        self.obj_id_caches[level] = cache
        return cache

    def _obj_id_cache(self, level: int) -> KmemCache[IdRecord]:
        """``create_bpf_cachep(level)``: the shared per-level cache, created on first use.

        Raises:
            BpfnsError: ENOMEM when an injected allocation fails (KMEM_CACHE site).
        """
        cache = self.obj_id_caches.get(level)
        if cache is not None:
            return cache
        if self.faults.armed and self.faults.should_fail(FaultSite.KMEM_CACHE):
            raise BpfnsError(errno.ENOMEM, "create_bpf_cachep failed (injected failure)")
        return self._new_obj_id_cache(level)

    def caches(self) -> list[KmemCache[Any]]:
        """Every slab cache of the namespace layer: ``bpf_namespace``, then by level."""
        return [self.ns_cache, *self.obj_id_caches.values()]


def obj_type(value: object) -> ObjType:
    """``value`` as an :class:`ObjType`: the one check of a ``type`` argument.

    Raises:
        TypeError: if ``value`` is not an int (a bool is not).
        ValueError: if it is no ObjType's value.

    >>> obj_type(1)
    ObjType.PROG
    """
    if value.__class__ is ObjType:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"type must be a bpfns.ObjType, not {type(value).__name__}")
    try:
        return ObjType(int(value))
    except ValueError:
        names = ", ".join(f"{t.name}={t.value}" for t in ObjType)
        raise ValueError(f"type={int(value)} is not an ObjType ({names})") from None


@attrs.define(eq=False)
class Nsproxy:
    """``struct nsproxy`` (kernel/nsproxy.c), reduced to the BPF namespace (semantics §2.1).

    Attributes:
        bpf_ns: the BPF namespace of the tasks that share this nsproxy.
        count: how many tasks share it.
        freed: ``free_nsproxy`` ran: the memory went back at once, with no RCU grace
            period, so a reader that still holds the pointer reads freed memory (D11).
    """

    bpf_ns: Namespace
    count: int = 1
    freed: bool = False


def _enomem(what: str) -> BpfnsError:
    return BpfnsError(errno.ENOMEM, f"{what} failed (injected allocation failure)")


@attrs.define(eq=False, repr=False)
class Namespace:
    """A ``struct bpf_namespace``: one IDR per :class:`ObjType`, a level and a parent.

    Create one with :meth:`create_child` or :meth:`bpfns.Kernel.copy_bpfns`; the root is
    :attr:`bpfns.Kernel.init_ns`. ``ns.idr[ObjType.MAP]`` is the namespace's map IDR.

    Attributes:
        level: 0 for ``init_bpf_ns``, ``parent.level + 1`` otherwise.
        parent: the parent namespace (pinned by this one), None for init.
        user_ns: the owning user namespace.
        inum: the nsfs inode number (``/proc/<pid>/ns/bpf`` reads ``bpf:[inum]``).
        idr: the three IDRs, indexed by :class:`ObjType`.
        name: an optional label for pictures and teaching; the kernel has none.
    """

    kernel: NsContext
    level: int
    parent: Namespace | None
    user_ns: UserNamespace
    inum: int
    obj_id_cachep: KmemCache[IdRecord]
    policy: ObjIdPolicy | PidPolicy
    name: str | None = None
    #: One IDR per ObjType, built for the policy (``idr_init`` in create_bpf_namespace).
    idr: tuple[Idr, ...] = attrs.field(init=False)
    _count: int = 1
    _state: NsState = NsState.ALIVE
    _ucounts: Ucounts | None = None
    _slot: Slot | None = None
    #: Shadow accounting (not in the kernel): who holds the references.
    _holders: Counter[str] = attrs.field(factory=Counter)
    # Package-internal, read by the id walks of bpfns._obj_id (not part of the API):
    #: This namespace and its ancestors, deepest first (the walk of bpf_alloc_obj_id);
    #: ``()`` once destroyed, so that an id record naming this path knows it is alive.
    path: tuple[Namespace, ...] = attrs.field(init=False, repr=False)
    #: Per ObjType, ``(i, tree)`` for the radix tree of ``path[i]``'s IDR: the walk
    #: that :func:`bpfns._radix_tree.take_cursor_walk` and ``remove_walk`` run.
    id_walks: tuple[tuple[tuple[int, IdBitmap], ...], ...] = attrs.field(init=False, repr=False)
    #: The kernel, while the id fast paths apply here (alive, object-id policy, kernel
    #: neither tracing nor explored on simulated CPUs); None otherwise. One identity
    #: test checks all of it.
    fast_owner: NsContext | None = attrs.field(init=False, repr=False)
    #: ``obj_id_cachep``'s free list (bpf_alloc_obj_id takes records from it inline).
    id_freelist: list[IdRecord] = attrs.field(init=False, repr=False)
    _trace_kind: ClassVar[str] = "ns"

    def __attrs_post_init__(self) -> None:
        parent = self.parent
        self.idr = tuple(Idr(arm_limit=self.policy.arm_limit) for _ in ObjType)
        self.path = (self,) if parent is None else (self, *parent.path)
        self.id_walks = _walks(self.path)
        self.fast_owner = self.kernel if self._fast() else None
        self.id_freelist = self.obj_id_cachep.freelist

    def _fast(self) -> bool:
        """Whether the id fast paths may apply: object-id policy, no tracer, no CPUs.

        Nor while its record cache holds a stray record of another level (D2, see
        :func:`bpfns._obj_id.free_obj_id`): the fast walk assumes every record fits.
        """
        k = self.kernel
        return (
            isinstance(self.policy, ObjIdPolicy)
            and k.tracer is None
            and k.smp is None
            and not self.obj_id_cachep.strays
        )

    @property
    def _tracer(self) -> Tracer | None:
        return self.kernel.tracer

    # -- views ----------------------------------------------------------------------

    @property
    def refcount(self) -> int:
        """``ns.count``; ``init_bpf_ns``'s is never initialised nor touched: it reads 0."""
        return self._count

    @property
    def state(self) -> NsState:
        """:class:`NsState` of this namespace."""
        return self._state

    @property
    def ucounts(self) -> Ucounts | None:
        """The ``max_bpf_namespaces`` charge this namespace holds (None for init)."""
        return self._ucounts

    @property
    def alive(self) -> bool:
        """Whether the namespace still has references."""
        return self._state is NsState.ALIVE

    @property
    def is_init(self) -> bool:
        """Whether this is ``init_bpf_ns``."""
        return self.parent is None

    @property
    def holders(self) -> dict[str, int]:
        """Who holds the references: ``{"ref": n, "child": n, "obj_id": n}`` (nonzero only)."""
        return {k: v for k, v in self._holders.items() if v}

    def ancestors(self) -> Iterator[Namespace]:
        """This namespace, then its parent, and so on up to ``init_bpf_ns``."""
        ns: Namespace | None = self
        while ns is not None:
            yield ns
            ns = ns.parent

    def children(self) -> list[Namespace]:
        """The live child namespaces, in inode-number order. O(number of namespaces)."""
        kids = [ns for ns in self.kernel.live_namespaces if ns.parent is self and ns.alive]
        return sorted(kids, key=lambda ns: ns.inum)

    def tree(self) -> str:
        """This namespace and its descendants as indented text (see ``bpfns demo``)."""
        from ._render import render_tree  # noqa: PLC0415 - rendering imports this module

        return render_tree(self)

    def _repr_html_(self) -> str:
        """Notebooks: the subtree as nested lists, with a plain-text fallback."""
        from ._render import tree_html  # noqa: PLC0415 - rendering imports this module

        return tree_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: the subtree as text."""
        p.text(repr(self) if cycle else self.tree())

    def is_ancestor_of(self, other: Namespace) -> bool:
        """Whether ``self`` is ``other`` or one of its ancestors (it sees ``other``'s objects).

        Raises:
            TypeError: if ``other`` is not a Namespace.
            ValueError: if ``other`` belongs to another Kernel.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> child = k.init_ns.create_child()
        >>> k.init_ns.is_ancestor_of(child), child.is_ancestor_of(k.init_ns)
        (True, False)
        """
        live_namespace(other, "other", self.kernel)
        if other.level < self.level:
            return False
        return next(ns for ns in other.ancestors() if ns.level == self.level) is self

    def label(self) -> str:
        """``name`` if set, else ``init_bpf_ns`` or ``bpf:[inum]``."""
        if self.name is not None:
            return self.name
        return "init_bpf_ns" if self.is_init else f"bpf:[{self.inum}]"

    def __repr__(self) -> str:
        name = f" name={self.name!r}" if self.name is not None else ""
        return (
            f"<Namespace inum={self.inum} level={self.level}{name} "
            f"refcount={self._count} state={self._state.value}>"
        )

    # -- lifetime -------------------------------------------------------------------

    def _require_alive(self, what: str) -> None:
        if self._state is not NsState.ALIVE:
            raise ValueError(
                f"{what}: {self!r} is {self._state.value}; its last reference was put. "
                "Use a namespace you still hold a reference to."
            )

    @traced
    def get(self) -> Namespace:
        """``get_bpfns``: take a reference (a no-op on init) and return ``self``.

        Raises:
            ValueError: if the namespace is no longer alive.

        >>> from bpfns import Kernel
        >>> ns = Kernel().init_ns.create_child()
        >>> ns.get().refcount
        2
        """
        self._require_alive("get_bpfns")
        get_bpfns(self, "ref")
        return self

    @traced
    def put(self) -> None:
        """``put_bpfns``: drop a reference taken by :meth:`get` or by creation.

        When the count reaches zero the namespace is destroyed and the walk continues
        with its parent (semantics §2.2 "Lifetime"); the final frees wait for
        :meth:`bpfns.Kernel.synchronize_rcu`. A put on ``init_bpf_ns`` is a no-op.

        Raises:
            ValueError: if the namespace is no longer alive, or if every remaining
                reference is held by child namespaces or id records (a put you do not
                own would underflow the count in the kernel).

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> ns = k.init_ns.create_child()
        >>> ns.put(); ns.state
        NsState.DESTROYED
        """
        self._require_alive("put_bpfns")
        if self.is_init:
            return
        if not self._holders["ref"]:
            raise ValueError(
                f"put_bpfns: every reference of {self!r} is held by {self.holders}; "
                "put only references you took with create_child(), copy_bpfns() or get()"
            )
        self.kernel.step += 1
        put_bpfns(self, "ref")

    def _destroy(self) -> None:
        """``destroy_bpf_namespace``: free the inum, destroy the IDRs, queue the free."""
        k = self.kernel
        self._state = NsState.DESTROYED
        self.path = ()
        self.fast_owner = None
        if k.tracer is not None:
            k.tracer.emit(NsDestroyed(k.tracer.step, k.tracer.ref(self)))
        k.inum_ida.free(self.inum - PROC_DYNAMIC_FIRST)
        for idr in self.idr:
            idr.destroy()
        k.rcu.call_rcu(self._delayed_free, f"delayed_free_bpfns({self.label()})", owner=self)

    def _delayed_free(self) -> None:
        """``delayed_free_bpfns``: drop the ucount and the user namespace, free the memory."""
        assert self._ucounts is not None and self._slot is not None
        dec_ucount(self._ucounts, self.kernel.ns_ucount)
        put_user_ns(self.user_ns, "bpf_ns")
        self._state = NsState.FREED
        tracer = self.kernel.tracer
        if tracer is not None:
            tracer.emit(NsFreed(tracer.step, tracer.ref(self)))
        self.kernel.ns_cache.free(self._slot)
        del self.kernel.live_namespaces[self]

    @traced
    def create_child(
        self, user_ns: UserNamespace | None = None, *, euid: int = 0, name: str | None = None
    ) -> Namespace:
        """A new child namespace, as ``copy_bpfns(CLONE_NEWBPF, user_ns, self)`` creates it.

        ``user_ns`` defaults to this namespace's owner; ``euid`` is the creating task's
        effective uid, which pays the ``max_bpf_namespaces`` charge. The caller holds the
        returned namespace's only reference; drop it with :meth:`put`.

        Raises:
            BpfnsError: as :meth:`bpfns.Kernel.copy_bpfns`.

        >>> from bpfns import Kernel
        >>> child = Kernel().init_ns.create_child(name="child_a")
        >>> child.level, child.inum
        (1, 4026531840)
        """
        owner = self.user_ns if user_ns is None else user_ns
        return copy_bpfns(self.kernel, CLONE_NEWBPF, owner, self, euid, name)

    def _check(self) -> None:
        """Assert this namespace's own invariants."""
        for idr in self.idr:
            idr._check()
        assert self.fast_owner is (self.kernel if self._fast() and self.alive else None)
        assert self.id_freelist is self.obj_id_cachep.freelist
        path = tuple(self.ancestors())
        assert self.path == (path if self._state is NsState.ALIVE else ())
        assert self.id_walks == _walks(path)
        if self.is_init:
            k = self.kernel
            assert self.level == 0 and self.inum == k.init_ns_inum
            assert self._count == k.init_ns_count, "init's count is static"
            return
        assert self.parent is not None and self.level == self.parent.level + 1
        assert self._count == sum(self._holders.values()), "count != holders"
        assert all(v >= 0 for v in self._holders.values())
        if self._state is NsState.ALIVE:
            assert self._count > 0
        else:
            assert self._count == 0 and all(idr.is_empty() for idr in self.idr)


def get_bpfns(ns: Namespace, holder: str, race: str | None = None) -> bool:
    """``get_bpfns``: one more reference to ``ns``, held by ``holder`` (no-op on init).

    For the kernel's own holders ("child", "nsproxy", "obj_id", "file", ...); the
    public :meth:`Namespace.get` checks that ``ns`` is alive first. Returns True.

    On simulated CPUs a caller that holds no reference (``race``: the defect that lets
    it) can reach a namespace whose count another CPU has just dropped to zero: that
    ``refcount_inc`` is refcount_t's "addition on 0; use-after-free", which the
    sanitizer reports; the count stays saturated, and this returns False.
    """
    if not ns.is_init:
        smp = ns.kernel.smp
        if smp is not None:
            smp.preempt(f"get_bpfns({ns.label()})")
            if ns._state is not NsState.ALIVE:
                k = ns.kernel
                k.sanitizer.report(
                    race,
                    BugKind.USE_AFTER_FREE,
                    f"refcount_t: addition on 0; use-after-free: get_bpfns on "
                    f"{ns.label()}, which is {ns._state.value}",
                    "get_bpfns",
                    k.step,
                )
                return False
        ns._count += 1
        ns._holders[holder] += 1
    return True


def put_bpfns(ns: Namespace, holder: str) -> None:
    """The ``put_bpfns`` loop, starting with a reference of ``ns`` held by ``holder``.

    At zero the namespace is destroyed and its parent's "child" reference is put in
    turn (semantics §2.2 "Lifetime"); init is never put.
    """
    cur: Namespace | None = ns
    smp = ns.kernel.smp
    while cur is not None and not cur.is_init:
        if smp is not None:
            smp.preempt(f"put_bpfns({cur.label()})")
        cur._holders[holder] -= 1
        cur._count -= 1
        if cur._count:
            return
        parent = cur.parent
        cur._destroy()
        cur, holder = parent, "child"


def refresh_fast_paths(k: NsContext, cache: KmemCache[IdRecord]) -> None:
    """Re-decide the fast paths of every live namespace whose records come from ``cache``.

    Called when a stray record joins or leaves ``cache`` (rare: D2 with reused memory).
    O(namespaces).
    """
    for ns in (k.init_ns, *k.live_namespaces):
        if ns.obj_id_cachep is cache and ns.alive:
            ns.fast_owner = k if ns._fast() else None


def memory_reused_by(ns: Namespace) -> Namespace | None:
    """The namespace now in the memory of the freed ``ns`` (a slab reuse), or None."""
    assert ns._slot is not None
    owner = ns._slot.owner if ns._slot.live else None
    return owner if isinstance(owner, Namespace) else None


def live_namespace(value: object, what: str, kernel: object) -> Namespace:
    """``value`` if it is a live Namespace of ``kernel``; the one check of such arguments.

    Raises:
        TypeError: if ``value`` is not a Namespace.
        ValueError: if it belongs to another Kernel or is no longer alive; the message
            names the argument ``what``.
    """
    ns = check_instance(what, value, Namespace, "a bpfns.Namespace")
    if ns.kernel is not kernel:
        raise ValueError(f"{what}: {ns!r} belongs to another Kernel")
    ns._require_alive(what)
    return ns


def _walks(path: tuple[Namespace, ...]) -> tuple[tuple[tuple[int, IdBitmap], ...], ...]:
    """Per ObjType, ``(i, radix tree of path[i]'s IDR)``: what ``Namespace.id_walks`` holds."""
    return tuple(tuple(enumerate(idr_tree(ns.idr[t]) for ns in path)) for t in ObjType)


def copy_bpfns(
    k: NsContext, flags: object, user_ns: object, old_ns: object, euid: object, name: object
) -> Namespace:
    """``copy_bpfns``, its arguments checked first: :meth:`bpfns.Kernel.copy_bpfns`."""
    flags = check_int("flags", flags, 0, 0xFFFFFFFFFFFFFFFF, "u64")
    old = live_namespace(old_ns, "old_ns", k)
    owner = live_user_ns(user_ns, "user_ns", k.init_user_ns)
    uid = check_int("euid", euid, 0, 0xFFFFFFFE, "uid")
    label = check_ns_name("name", name)
    k.step += 1
    if not flags & CLONE_NEWBPF:
        return old.get()
    return create_bpf_namespace(k, owner, old, uid, label)


def create_bpf_namespace(
    k: NsContext,
    user_ns: UserNamespace,
    parent: Namespace,
    euid: int,
    name: str | None,
    holder: str = "ref",
) -> Namespace:
    """``create_bpf_namespace``: the checks and allocations of semantics §2.2, in order.

    The first reference belongs to ``holder`` (the caller, or an nsproxy).
    """
    if not parent.user_ns.contains(user_ns):
        raise BpfnsError(
            errno.EINVAL,
            "the owner user namespace is not the parent namespace's owner or a descendant "
            "of it; create the user namespace under the parent's owner",
        )
    level = parent.level + 1
    if level > k.max_level:
        raise BpfnsError(errno.ENOSPC, f"level {level} exceeds MAX_BPF_NS_LEVEL ({k.max_level})")
    ucounts = inc_ucount(user_ns, euid, k.ns_ucount)
    if ucounts is None:
        raise BpfnsError(
            errno.ENOSPC,
            "max_bpf_namespaces reached in the owner user namespace or an ancestor; "
            "put unused namespaces (and synchronize_rcu) or raise the limit",
        )
    try:
        ns = _alloc_namespace(k, user_ns, parent, level, ucounts, name)
    except BpfnsError:
        dec_ucount(ucounts, k.ns_ucount)
        raise
    ns._holders[holder] = 1
    return ns


def _alloc_namespace(
    k: NsContext,
    user_ns: UserNamespace,
    parent: Namespace,
    level: int,
    ucounts: Ucounts,
    name: str | None,
) -> Namespace:
    """Steps 4-7 of ``create_bpf_namespace``; the caller returns the ucount on error."""
    faults = k.faults
    if faults.armed and faults.should_fail(FaultSite.NAMESPACE):
        raise _enomem("kmem_cache_zalloc(bpf_namespace)")
    slot = k.ns_cache.alloc(None, zero=True)
    try:
        cachep = k._obj_id_cache(level)
        if faults.armed and faults.should_fail(FaultSite.INUM):
            raise _enomem("ns_alloc_inum")
        inum = k.inum_ida.alloc_max(U32_MAX - PROC_DYNAMIC_FIRST) + PROC_DYNAMIC_FIRST
    except BpfnsError:
        k.ns_cache.free(slot)
        raise
    ns = Namespace(
        kernel=k,
        level=level,
        parent=parent,
        user_ns=user_ns,
        inum=inum,
        obj_id_cachep=cachep,
        policy=k._new_policy(),
        name=name,
        ucounts=ucounts,
        slot=slot,
    )
    slot.owner = ns
    get_bpfns(parent, "child")
    get_user_ns(user_ns, "bpf_ns")
    k.live_namespaces[ns] = None
    if k.tracer is not None:
        k.tracer.ns_created(ns)
    return ns
