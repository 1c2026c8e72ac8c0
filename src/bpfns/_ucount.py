"""kernel/ucount.c and the user-namespace tree: who may own namespaces, and how many.

Follows kernel rules §D. Each user namespace has limits ``ucount_max[type]`` (the
``/proc/sys/user/max_*`` sysctls of that namespace); ``inc_ucount(ns, uid, type)`` charges
the ``(ns, uid)`` entry and then every ancestor level's entry, each against **its own**
limit, and fails (the caller returns ENOSPC) if any level is at its limit.

A user namespace is refcounted (``get_user_ns``/``put_user_ns``). bpfns also records
*who* holds each reference, as :class:`bpfns.Namespace` does: ``"cred"`` (a task's
credentials), ``"bpf_ns"`` (a BPF namespace it owns), ``"child"`` (a child user
namespace), ``"file"`` (an fd from ``ioctl(NS_GET_USERNS)``) and ``"ref"`` (a reference
the caller took with :meth:`UserNamespace.create_child` or :meth:`UserNamespace.get`).
:meth:`UserNamespace.put` drops only the caller's own references, so a put that would
underflow a count the kernel still relies on is refused before it happens.
"""

from __future__ import annotations

import enum
import errno
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import ClassVar

import attrs

from ._args import check_instance, check_int
from ._errors import BpfnsError, InvariantViolation
from ._fault import FaultInjector, FaultSite
from ._idr import INT_MAX
from ._trace import Tracer, traced

__all__ = [
    "UcountType",
    "Ucounts",
    "UserNamespace",
    "UserNsRegistry",
    "check_user_namespaces",
    "create_user_ns",
    "get_user_ns",
    "live_user_ns",
    "put_user_ns",
]

#: ``init_user_ns.ucount_max[*] = max_threads / 2`` (kernel/fork.c ``fork_init``). With
#: 24 GiB of RAM, 4 KiB pages and 16 KiB stacks, max_threads is 196608.
DEFAULT_INIT_UCOUNT_MAX = 98304

#: ``create_user_ns`` refuses a parent deeper than this (kernel rules §D).
MAX_USER_NS_PARENT_LEVEL = 32

#: A uid is a C ``uid_t``; ``(uid_t)-1`` means "no uid" and is never valid.
_UID_MAX = 0xFFFFFFFE


class UcountType(enum.IntEnum):
    """The ucount types bpfns models (``enum ucount_type``)."""

    USER_NAMESPACES = 0
    BPF_NAMESPACES = 1  # UCOUNT_BPF_NAMESPACES, added by RFC patch 03
    PID_NAMESPACES = 2

    @property
    def sysctl(self) -> str:
        """The ``/proc/sys/user`` file name of this limit."""
        return f"max_{self.name.lower()}"

    def __repr__(self) -> str:
        return f"UcountType.{self.name}"


def _ucount_type(kind: object) -> UcountType:
    """``kind`` as a :class:`UcountType` (a member, or its int value; never a bool)."""
    if kind.__class__ is UcountType:
        return kind
    value = check_int("kind", kind, 0, len(UcountType) - 1, "enum ucount_type")
    return UcountType(value)


@attrs.define(eq=False)
class Ucounts:
    """``struct ucounts``: the charges of one user in one user namespace."""

    ns: UserNamespace
    uid: int
    counts: list[int] = attrs.field(factory=lambda: [0] * len(UcountType))

    def __repr__(self) -> str:
        return f"<Ucounts ns_level={self.ns.level} uid={self.uid} counts={self.counts}>"


@attrs.define(eq=False)
class UserNsRegistry:
    """What one Kernel's user namespaces share: the ucount table and the live namespaces.

    ``ucounts`` maps ``(id(ns), uid)`` to the :class:`Ucounts` entry (``alloc_ucounts``
    creates it on first use); ``live`` holds every user namespace not yet freed, in
    creation order, ``init_user_ns`` first.
    """

    ucounts: dict[tuple[int, int], Ucounts] = attrs.field(factory=dict)
    live: dict[UserNamespace, None] = attrs.field(factory=dict)
    tracer: Tracer | None = None
    faults: FaultInjector = attrs.field(factory=FaultInjector)

    def _check(self) -> None:
        """Assert the invariants of every live user namespace and of the table."""
        for ns in self.live:
            ns._check()
        for (key, uid), uc in self.ucounts.items():
            assert key == id(uc.ns) and uid == uc.uid
            assert all(c >= 0 for c in uc.counts), f"{uc!r} went below zero"


@attrs.define(eq=False)
class UserNamespace:
    """``struct user_namespace``, reduced to ownership, nesting and ucount limits.

    Create children with :meth:`create_child`; the root is ``Kernel.init_user_ns``,
    which is never freed.

    Attributes:
        level: 0 for ``init_user_ns``, ``parent.level + 1`` otherwise.
        parent: the parent user namespace (pinned by this one), None for init.
        owner: the euid that created it.
        ucounts: the ``max_user_namespaces`` charge this namespace made in its parent
            (None for init).
        ucount_max: this namespace's ``/proc/sys/user/max_*`` limits, by
            :class:`UcountType`.
        registry: what this Kernel's user namespaces share.
    """

    level: int
    parent: UserNamespace | None
    owner: int
    ucounts: Ucounts | None
    ucount_max: list[int]
    registry: UserNsRegistry = attrs.field(repr=False)
    _count: int = attrs.field(default=1, init=False)
    #: Shadow accounting (not in the kernel): who holds the references.
    _holders: Counter[str] = attrs.field(factory=Counter, init=False)
    _trace_kind: ClassVar[str] = "userns"

    def __attrs_post_init__(self) -> None:
        self.registry.live[self] = None

    @property
    def _tracer(self) -> Tracer | None:
        return self.registry.tracer

    @property
    def refcount(self) -> int:
        """``ns->ns.count``: held by creds, BPF namespaces, child user namespaces and you."""
        return self._count

    @property
    def alive(self) -> bool:
        """Whether the namespace still has references (``init_user_ns`` always has)."""
        return self._count > 0

    @property
    def holders(self) -> dict[str, int]:
        """Who holds the references, e.g. ``{"cred": 2, "ref": 1}`` (nonzero only)."""
        return {k: v for k, v in self._holders.items() if v}

    def _require_alive(self, what: str) -> None:
        if not self._count:
            raise ValueError(
                f"{what}: {self!r} was freed (its last reference was put); "
                "use a user namespace you still hold"
            )

    @traced
    def get(self) -> UserNamespace:
        """``get_user_ns``: take a reference and return ``self``; drop it with :meth:`put`.

        Raises:
            ValueError: if the namespace was already freed.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> k.init_user_ns.get().holders
        {'kernel': 1, 'bpf_ns': 1, 'cred': 1, 'ref': 1}
        """
        self._require_alive("get_user_ns")
        get_user_ns(self, "ref")
        return self

    @traced
    def put(self) -> None:
        """``put_user_ns``: drop a reference you took; at zero the namespace is freed.

        ``free_user_ns`` returns the ``max_user_namespaces`` charge and drops the
        reference on the parent, which may free it in turn. ``init_user_ns`` is never
        freed.

        Raises:
            ValueError: if the namespace was already freed, or if you hold no reference
                on it: every remaining one belongs to credentials, BPF namespaces, child
                namespaces or files, and the kernel's count would underflow when those
                are released.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> child = k.init_user_ns.create_child(owner=1000)
        >>> child.put(); child.alive
        False
        """
        self._require_alive("put_user_ns")
        if not self._holders["ref"]:
            raise ValueError(
                f"put_user_ns: you hold no reference on {self!r} (its holders are "
                f"{self.holders}); put only references you took with create_child() or get()"
            )
        put_user_ns(self, "ref")

    def __repr__(self) -> str:
        return f"<UserNamespace level={self.level} owner={self.owner}>"

    def ancestors(self) -> Iterator[UserNamespace]:
        """This namespace, then its parent, up to ``init_user_ns``."""
        ns: UserNamespace | None = self
        while ns is not None:
            yield ns
            ns = ns.parent

    def contains(self, other: UserNamespace) -> bool:
        """``in_userns(self, other)``: whether ``other`` is ``self`` or a descendant.

        Raises:
            TypeError: if ``other`` is not a UserNamespace.
            ValueError: if ``other`` belongs to another Kernel or was freed.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> child = k.init_user_ns.create_child(owner=1000)
        >>> k.init_user_ns.contains(child), child.contains(k.init_user_ns)
        (True, False)
        """
        live_user_ns(other, "other", self)
        return any(ns is self for ns in other.ancestors())

    def get_max(self, kind: UcountType) -> int:
        """Read ``/proc/sys/user/max_<type>`` of this namespace.

        Raises:
            TypeError, ValueError: if ``kind`` is not a :class:`UcountType`.

        >>> from bpfns import Kernel, UcountType
        >>> Kernel(ucount_max=9).init_user_ns.get_max(UcountType.BPF_NAMESPACES)
        9
        """
        return self.ucount_max[_ucount_type(kind)]

    @traced
    def set_max(self, kind: UcountType, value: int) -> None:
        """Write ``/proc/sys/user/max_<type>`` of this namespace (``proc_doulongvec_minmax``).

        Permission (CAP_SYS_RESOURCE in this namespace) is checked by the task layer.

        Raises:
            BpfnsError: EINVAL if ``value`` is outside ``[0, INT_MAX]``.
            TypeError, ValueError: if ``kind`` is not a :class:`UcountType`, ``value``
                not an int, or the namespace was freed.

        >>> from bpfns import Kernel, UcountType
        >>> k = Kernel()
        >>> k.init_user_ns.set_max(UcountType.BPF_NAMESPACES, 2)
        >>> k.init_user_ns.get_max(UcountType.BPF_NAMESPACES)
        2
        """
        kind = _ucount_type(kind)
        number = check_int("value", value, -(2**63), 2**63 - 1, "long")
        self._require_alive("set_max")
        if not 0 <= number <= INT_MAX:
            raise BpfnsError(errno.EINVAL, f"{kind.sysctl}={number} is outside [0, {INT_MAX}]")
        self.ucount_max[kind] = number

    def count(self, kind: UcountType, uid: int) -> int:
        """How many ``kind`` objects ``uid`` has charged in this namespace.

        Raises:
            TypeError, ValueError: for a bad ``kind`` or ``uid``.

        >>> from bpfns import Kernel, UcountType
        >>> k = Kernel()
        >>> _ = k.init_ns.create_child(euid=7)
        >>> k.init_user_ns.count(UcountType.BPF_NAMESPACES, 7)
        1
        """
        kind = _ucount_type(kind)
        uid = check_int("uid", uid, 0, _UID_MAX, "uid_t")
        uc = self.registry.ucounts.get((id(self), uid))
        return 0 if uc is None else uc.counts[kind]

    @traced
    def create_child(self, owner: int = 0) -> UserNamespace:
        """``create_user_ns``: a user namespace owned by ``owner`` (an euid).

        The caller holds the only reference; drop it with :meth:`put`. Charges
        ``UCOUNT_USER_NAMESPACES`` to ``(self, owner)`` and every ancestor. The
        child's limits all start at INT_MAX (kernel rules §D).

        Raises:
            BpfnsError: ENOSPC if ``self`` is deeper than level 32 or a
                ``max_user_namespaces`` limit is reached; ENOMEM when an injected
                allocation fails. Nothing changes.
            TypeError, ValueError: if ``owner`` is not a uid in ``[0, 2**32 - 2]``, or
                this namespace was freed.

        >>> from bpfns import Kernel
        >>> Kernel().init_user_ns.create_child(owner=1000).level
        1
        """
        return create_user_ns(self, owner, "ref")

    def _check(self) -> None:
        """Assert this namespace's own invariants."""
        assert self._count == sum(self._holders.values()), "count != holders"
        assert all(v >= 0 for v in self._holders.values())
        assert self._count > 0, "a freed user namespace is still registered"
        assert self in self.registry.live
        if self.parent is None:
            assert self.level == 0 and self._holders["kernel"] == 1
        else:
            assert self.level == self.parent.level + 1 and self.parent.alive
            assert self.ucounts is not None and self.ucounts.ns is self.parent


def live_user_ns(value: object, what: str, of: UserNamespace) -> UserNamespace:
    """``value`` if it is a live user namespace of ``of``'s Kernel (the one such check).

    Raises:
        TypeError: if ``value`` is not a UserNamespace.
        ValueError: if it belongs to another Kernel or was freed; the message names the
            argument ``what``.
    """
    ns = check_instance(what, value, UserNamespace, "a bpfns.UserNamespace")
    if ns.registry is not of.registry:
        raise ValueError(f"{what}: {ns!r} belongs to another Kernel")
    ns._require_alive(what)
    return ns


def get_user_ns(ns: UserNamespace, holder: str) -> None:
    """``get_user_ns`` on behalf of ``holder`` (the kernel's callers name theirs)."""
    ns._count += 1
    ns._holders[holder] += 1


def put_user_ns(ns: UserNamespace, holder: str) -> None:
    """``put_user_ns``: the walk up that frees every namespace whose count reaches zero.

    ``free_user_ns`` returns the namespace's ``max_user_namespaces`` charge and drops
    its reference on the parent.
    """
    it = ns
    while True:
        assert it._holders[holder] > 0, f"a {holder} put of {it!r}, which it does not hold"
        it._holders[holder] -= 1
        it._count -= 1
        if it._count or it.parent is None:  # init_user_ns is never freed
            return
        assert it.ucounts is not None
        dec_ucount(it.ucounts, UcountType.USER_NAMESPACES)
        del it.registry.live[it]
        it, holder = it.parent, "child"


def create_user_ns(parent: UserNamespace, owner: object, holder: str) -> UserNamespace:
    """``create_user_ns(parent, owner)``; the first reference belongs to ``holder``.

    Checks everything before it charges anything: the owner uid, the parent alive, the
    depth (ENOSPC), then the ucount (ENOSPC, nothing charged).
    """
    uid = check_int("owner", owner, 0, _UID_MAX, "uid_t")
    parent._require_alive("create_user_ns")
    if parent.level > MAX_USER_NS_PARENT_LEVEL:
        raise BpfnsError(
            errno.ENOSPC, f"user namespace level {parent.level + 1} exceeds the maximum 33"
        )
    uc = inc_ucount(parent, uid, UcountType.USER_NAMESPACES)
    if uc is None:
        raise BpfnsError(
            errno.ENOSPC,
            "max_user_namespaces reached; raise the limit or free a user namespace",
        )
    try:
        parent.registry.faults.inject(FaultSite.USER_NS)  # kmem_cache_zalloc
    except BpfnsError:
        dec_ucount(uc, UcountType.USER_NAMESPACES)
        raise
    get_user_ns(parent, "child")  # the child pins its parent
    child = UserNamespace(
        level=parent.level + 1,
        parent=parent,
        owner=uid,
        ucounts=uc,
        ucount_max=[INT_MAX] * len(UcountType),
        registry=parent.registry,
    )
    child._holders[holder] = 1
    if parent.registry.tracer is not None:
        parent.registry.tracer.ref(child)
    return child


def new_init_user_ns(
    ucount_max: int, tracer: Tracer | None = None, faults: FaultInjector | None = None
) -> UserNamespace:
    """A fresh ``init_user_ns`` with its own registry (one per Kernel).

    Its first reference is the kernel's own (``"kernel"``): it is never freed.
    ``faults`` is the Kernel's fault injector (``create_user_ns`` allocates).
    """
    init = UserNamespace(
        level=0,
        parent=None,
        owner=0,
        ucounts=None,
        ucount_max=[ucount_max] * len(UcountType),
        registry=UserNsRegistry(tracer=tracer, faults=faults or FaultInjector()),
    )
    init._holders["kernel"] = 1
    return init


def _entry(ns: UserNamespace, uid: int) -> Ucounts:
    """``alloc_ucounts``: find or create the ``(ns, uid)`` entry."""
    key = (id(ns), uid)
    table = ns.registry.ucounts
    uc = table.get(key)
    if uc is None:
        uc = table[key] = Ucounts(ns, uid)
    return uc


def inc_ucount(ns: UserNamespace, uid: int, kind: UcountType) -> Ucounts | None:
    """``inc_ucount``: charge every level from ``(ns, uid)`` up, or nothing and None."""
    uc = _entry(ns, uid)
    charged: list[Ucounts] = []
    it: Ucounts | None = uc
    while it is not None:
        if it.counts[kind] >= it.ns.ucount_max[kind]:
            for done in charged:
                done.counts[kind] -= 1
            return None
        it.counts[kind] += 1
        charged.append(it)
        it = it.ns.ucounts
    return uc


def dec_ucount(uc: Ucounts, kind: UcountType) -> None:
    """``dec_ucount``: undo one :func:`inc_ucount` charge at every level."""
    it: Ucounts | None = uc
    while it is not None:
        assert it.counts[kind] > 0, "dec_ucount below zero"
        it.counts[kind] -= 1
        it = it.ns.ucounts


def all_ucounts(init: UserNamespace) -> list[Ucounts]:
    """Every ucount entry of the Kernel that owns ``init``."""
    return list(init.registry.ucounts.values())


def check_user_namespaces(
    registry: UserNsRegistry,
    *,
    cred: Iterable[UserNamespace],
    bpf_ns: Iterable[UserNamespace],
    file: Iterable[UserNamespace],
) -> None:
    """Every user namespace's references equal the holders found in the world.

    ``cred``, ``bpf_ns`` and ``file`` name the user namespace of each live task's
    credentials, of each BPF namespace not yet freed and of each open ``NS_GET_USERNS``
    file; child user namespaces are found in ``registry``. Also checks that the
    ``max_user_namespaces`` charges are exactly those of the live user namespaces.

    Raises:
        InvariantViolation: naming the first broken invariant.
    """
    want: dict[UserNamespace, Counter[str]] = {u: Counter() for u in registry.live}
    found = {"cred": cred, "bpf_ns": bpf_ns, "file": file}
    found["child"] = [u.parent for u in registry.live if u.parent is not None]
    for holder, namespaces in found.items():
        for u in namespaces:
            if u not in want:
                raise InvariantViolation(
                    "user namespaces live while referenced", f"a {holder} holds freed {u!r}"
                )
            want[u][holder] += 1
    charged: Counter[tuple[int, int]] = Counter()
    for u, holders in want.items():
        got = {k: u._holders[k] for k in found}
        if got != {k: holders[k] for k in found}:
            raise InvariantViolation(
                "user namespace refcounts equal their holders",
                f"{u!r}: counted {got}, found {dict(holders)}",
            )
        it = u.ucounts
        while it is not None:
            charged[(id(it.ns), it.uid)] += 1
            it = it.ns.ucounts
    for key, uc in registry.ucounts.items():
        n = uc.counts[UcountType.USER_NAMESPACES]
        if n != charged[key]:
            raise InvariantViolation(
                "ucounts equal live user namespaces",
                f"user ns level {uc.ns.level} uid {uc.uid}: {n} max_user_namespaces "
                f"charged, {charged[key]} user namespaces",
            )
