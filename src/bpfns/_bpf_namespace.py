"""kernel/bpf/bpf_namespace.c: the BPF namespace object and its lifetime (RFC patch 03).

Semantics follow rfc.md 2.1 (data structures) and 2.2 (creation and lifetime):

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
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ._args import check_instance
from ._errors import BpfnsError
from ._fault import FaultSite
from ._idr import Idr
from ._policy import ObjIdPolicy, PidPolicy
from ._radix_tree import IdBitmap
from ._slab import KmemCache, Slot
from ._trace import NsDestroyed, NsFreed, Tracer, traced
from ._ucount import UserNamespace, dec_ucount, get_user_ns, inc_ucount, put_user_ns

if TYPE_CHECKING:
    from ._kernel import Kernel
    from ._obj_id import IdRecord
    from ._ucount import Ucounts

__all__ = [
    "CLONE_NEWBPF",
    "MAX_BPF_NS_LEVEL",
    "PROC_BPF_INIT_INO",
    "PROC_DYNAMIC_FIRST",
    "Namespace",
    "NsState",
    "ObjType",
]

#: RFC patch 01: the clone3 flag, above bit 31 (rfc.md 1, D14).
CLONE_NEWBPF = 0x400000000
#: ``MAX_BPF_NS_LEVEL``: levels 0..32 are valid (rfc.md 2.2 step 2).
MAX_BPF_NS_LEVEL = 32
#: ``PROC_BPF_INIT_INO`` as the RFC posted it. Upstream later gave 0xEFFFFFF9 to the
#: initial *network* namespace (kernel.md E.2, G); bpfns keeps the RFC's value because it
#: simulates the RFC, and never hands it out dynamically.
PROC_BPF_INIT_INO = 0xEFFFFFF9
#: ``PROC_DYNAMIC_FIRST``: dynamic inode numbers are ``0xF0000000 + lowest free`` (E.3).
PROC_DYNAMIC_FIRST = 0xF0000000
_UINT_MAX = 0xFFFFFFFF


class ObjType(enum.IntEnum):
    """The object types with an IDR in every namespace (``MAP_OBJ_ID`` ... ``LINK_OBJ_ID``).

    BTF has no slot (rfc.md 2.1).
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

    kernel: Kernel
    level: int
    parent: Namespace | None
    user_ns: UserNamespace
    inum: int
    idr: tuple[Idr, Idr, Idr]
    obj_id_cachep: KmemCache[IdRecord]
    policy: ObjIdPolicy | PidPolicy
    name: str | None = None
    _count: int = 1
    _state: NsState = NsState.ALIVE
    _ucounts: Ucounts | None = None
    _slot: Slot | None = None
    #: Shadow accounting (not in the kernel): who holds the references.
    _holders: Counter[str] = attrs.field(factory=Counter)
    #: This namespace and its ancestors, deepest first (the walk of bpf_alloc_obj_id);
    #: ``()`` once destroyed, so that an id record naming this path knows it is alive.
    _path: tuple[Namespace, ...] = attrs.field(init=False)
    #: Per ObjType, ``(i, tree)`` for the radix tree of ``_path[i]``'s IDR (the walk of
    #: the id fast paths, _obj_id.py).
    _trees: tuple[tuple[tuple[int, IdBitmap], ...], ...] = attrs.field(init=False)
    #: The kernel, while the id fast paths apply here (alive, object-id policy, kernel
    #: not tracing); None otherwise. One identity test checks all of it.
    _fast_owner: Kernel | None = attrs.field(init=False)
    #: ``obj_id_cachep``'s free list (bpf_alloc_obj_id takes records from it inline).
    _id_freelist: list[IdRecord] = attrs.field(init=False)
    _trace_kind: ClassVar[str] = "ns"

    def __attrs_post_init__(self) -> None:
        parent = self.parent
        self._path = (self,) if parent is None else (self, *parent._path)
        self._trees = _walks(self._path)
        fast = isinstance(self.policy, ObjIdPolicy) and self.kernel._tracer is None
        self._fast_owner = self.kernel if fast else None
        self._id_freelist = self.obj_id_cachep._freelist
        if isinstance(self.policy, ObjIdPolicy):  # the fast path's ids stay below end
            for idr in self.idr:
                idr._bits._arm_limit = self.policy.end - 1

    @property
    def _tracer(self) -> Tracer | None:
        return self.kernel._tracer

    # -- views ----------------------------------------------------------------------

    @property
    def refcount(self) -> int:
        """``ns.count``; ``init_bpf_ns``'s is never touched and reads 1."""
        return self._count

    @property
    def state(self) -> NsState:
        """:class:`NsState` of this namespace."""
        return self._state

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
        kids = [ns for ns in self.kernel._namespaces if ns.parent is self and ns.alive]
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
            f"<Namespace inum={self.inum:#x} level={self.level}{name} "
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
        self._get("ref")
        return self

    def _get(self, holder: str) -> None:
        if not self.is_init:
            self._count += 1
            self._holders[holder] += 1

    @traced
    def put(self) -> None:
        """``put_bpfns``: drop a reference taken by :meth:`get` or by creation.

        When the count reaches zero the namespace is destroyed and the walk continues
        with its parent (rfc.md 2.2 "Lifetime"); the final frees wait for
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
        self.kernel._step += 1
        self._put("ref")

    def _put(self, holder: str) -> None:
        """The ``put_bpfns`` loop, starting with a reference held by ``holder``."""
        ns: Namespace | None = self
        while ns is not None and not ns.is_init:
            ns._holders[holder] -= 1
            ns._count -= 1
            if ns._count:
                return
            parent = ns.parent
            ns._destroy()
            ns, holder = parent, "child"

    def _destroy(self) -> None:
        """``destroy_bpf_namespace``: free the inum, destroy the IDRs, queue the free."""
        k = self.kernel
        self._state = NsState.DESTROYED
        self._path = ()
        self._fast_owner = None
        if k._tracer is not None:
            k._tracer.emit(NsDestroyed(k._tracer.step, k._tracer.ref(self)))
        k._inum_ida.free(self.inum - PROC_DYNAMIC_FIRST)
        for idr in self.idr:
            idr.destroy()
        k._rcu.call_rcu(self._delayed_free, f"delayed_free_bpfns({self.label()})", owner=self)

    def _delayed_free(self) -> None:
        """``delayed_free_bpfns``: drop the ucount and the user namespace, free the memory."""
        assert self._ucounts is not None and self._slot is not None
        dec_ucount(self._ucounts, self.kernel._ns_ucount)
        put_user_ns(self.user_ns, "bpf_ns")
        self._state = NsState.FREED
        tracer = self.kernel._tracer
        if tracer is not None:
            tracer.emit(NsFreed(tracer.step, tracer.ref(self)))
        self.kernel._ns_cache.free(self._slot)
        del self.kernel._namespaces[self]

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
        k = self.kernel
        return k.copy_bpfns(
            CLONE_NEWBPF, self.user_ns if user_ns is None else user_ns, self, euid=euid, name=name
        )

    def _check(self) -> None:
        """Assert this namespace's own invariants."""
        for idr in self.idr:
            idr._check()
        fast = isinstance(self.policy, ObjIdPolicy) and self.kernel._tracer is None
        assert self._fast_owner is (self.kernel if fast and self.alive else None)
        assert self._id_freelist is self.obj_id_cachep._freelist
        path = tuple(self.ancestors())
        assert self._path == (path if self._state is NsState.ALIVE else ())
        assert self._trees == _walks(path)
        if self.is_init:
            assert self.level == 0 and self.inum == PROC_BPF_INIT_INO
            return
        assert self.parent is not None and self.level == self.parent.level + 1
        assert self._count == sum(self._holders.values()), "count != holders"
        assert all(v >= 0 for v in self._holders.values())
        if self._state is NsState.ALIVE:
            assert self._count > 0
        else:
            assert self._count == 0 and all(idr.is_empty() for idr in self.idr)


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
    """Per ObjType, ``(i, radix tree of path[i]'s IDR)``: what ``Namespace._trees`` holds."""
    return tuple(tuple(enumerate(ns.idr[t]._bits for ns in path)) for t in ObjType)


def create_bpf_namespace(
    k: Kernel,
    user_ns: UserNamespace,
    parent: Namespace,
    euid: int,
    name: str | None,
    holder: str = "ref",
) -> Namespace:
    """``create_bpf_namespace``: the checks and allocations of rfc.md 2.2, in order.

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
    ucounts = inc_ucount(user_ns, euid, k._ns_ucount)
    if ucounts is None:
        raise BpfnsError(
            errno.ENOSPC,
            "max_bpf_namespaces reached in the owner user namespace or an ancestor; "
            "put unused namespaces (and synchronize_rcu) or raise the limit",
        )
    try:
        ns = _alloc_namespace(k, user_ns, parent, level, ucounts, name)
    except BpfnsError:
        dec_ucount(ucounts, k._ns_ucount)
        raise
    ns._holders[holder] = 1
    return ns


def _alloc_namespace(
    k: Kernel,
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
    slot = k._ns_cache.alloc(None, zero=True)
    try:
        cachep = k._obj_id_cache(level)
        if faults.armed and faults.should_fail(FaultSite.INUM):
            raise _enomem("ns_alloc_inum")
        inum = k._inum_ida.alloc_max(_UINT_MAX - PROC_DYNAMIC_FIRST) + PROC_DYNAMIC_FIRST
    except BpfnsError:
        k._ns_cache.free(slot)
        raise
    ns = Namespace(
        kernel=k,
        level=level,
        parent=parent,
        user_ns=user_ns,
        inum=inum,
        idr=(Idr(), Idr(), Idr()),
        obj_id_cachep=cachep,
        policy=k._new_policy(),
        name=name,
        ucounts=ucounts,
        slot=slot,
    )
    slot.owner = ns
    parent._get("child")
    get_user_ns(user_ns, "bpf_ns")
    k._namespaces[ns] = None
    if k._tracer is not None:
        k._tracer.ns_created(ns)
    return ns
