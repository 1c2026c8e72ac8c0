"""kernel/ucount.c and the user-namespace tree: who may own namespaces, and how many.

Follows kernel.md section D. Each user namespace has limits ``ucount_max[type]`` (the
``/proc/sys/user/max_*`` sysctls of that namespace); ``inc_ucount(ns, uid, type)`` charges
the ``(ns, uid)`` entry and then every ancestor level's entry, each against **its own**
limit, and fails (the caller returns ENOSPC) if any level is at its limit.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Iterator
from typing import ClassVar

import attrs

from ._errors import BpfnsError
from ._idr import INT_MAX
from ._trace import Tracer, traced

__all__ = ["UcountType", "Ucounts", "UserNamespace"]

#: ``init_user_ns.ucount_max[*] = max_threads / 2`` (kernel/fork.c ``fork_init``). With
#: 24 GiB of RAM, 4 KiB pages and 16 KiB stacks, max_threads is 196608.
DEFAULT_INIT_UCOUNT_MAX = 98304

#: ``create_user_ns`` refuses a parent deeper than this (kernel.md D).
MAX_USER_NS_PARENT_LEVEL = 32


class UcountType(enum.IntEnum):
    """The ucount types bpfns models (``enum ucount_type``)."""

    USER_NAMESPACES = 0
    BPF_NAMESPACES = 1  # UCOUNT_BPF_NAMESPACES, added by RFC patch 03
    PID_NAMESPACES = 2

    @property
    def sysctl(self) -> str:
        """The ``/proc/sys/user`` file name of this limit."""
        return f"max_{self.name.lower()}"


@attrs.define(eq=False)
class Ucounts:
    """``struct ucounts``: the charges of one user in one user namespace."""

    ns: UserNamespace
    uid: int
    counts: list[int] = attrs.field(factory=lambda: [0] * len(UcountType))

    def __repr__(self) -> str:
        return f"<Ucounts ns_level={self.ns.level} uid={self.uid} counts={self.counts}>"


@attrs.define(eq=False)
class UserNamespace:
    """``struct user_namespace``, reduced to ownership, nesting and ucount limits.

    Create children with :meth:`create_child`; the root is ``Kernel.init_user_ns``.
    """

    level: int
    parent: UserNamespace | None
    owner: int
    ucounts: Ucounts | None  # the charge this namespace made in its parent (None for init)
    ucount_max: list[int]
    _table: dict[tuple[int, int], Ucounts] = attrs.field(repr=False)
    _count: int = 1
    _tracer: Tracer | None = attrs.field(default=None, repr=False, kw_only=True, alias="tracer")
    _trace_kind: ClassVar[str] = "userns"

    @property
    def refcount(self) -> int:
        """``ns->ns.count``: held by creds, BPF namespaces, child user namespaces and you."""
        return self._count

    @property
    def alive(self) -> bool:
        """Whether the namespace still has references (``init_user_ns`` always has)."""
        return self._count > 0

    @traced
    def get(self) -> UserNamespace:
        """``get_user_ns``: take a reference and return ``self``.

        Raises:
            ValueError: if the namespace was already freed.
        """
        if not self._count:
            raise ValueError(f"get_user_ns: {self!r} was freed; use a live user namespace")
        self._count += 1
        return self

    @traced
    def put(self) -> None:
        """``put_user_ns``: drop a reference; at zero the namespace is freed.

        ``free_user_ns`` returns the ``max_user_namespaces`` charge and drops the
        reference on the parent, which may free it in turn. ``init_user_ns`` is never
        freed.

        Raises:
            ValueError: if the namespace was already freed.
        """
        ns: UserNamespace | None = self
        while ns is not None and ns.parent is not None:
            if not ns._count:
                raise ValueError(f"put_user_ns: {ns!r} was already freed")
            ns._count -= 1
            if ns._count:
                return
            assert ns.ucounts is not None
            dec_ucount(ns.ucounts, UcountType.USER_NAMESPACES)
            ns = ns.parent

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

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> child = k.init_user_ns.create_child(owner=1000)
        >>> k.init_user_ns.contains(child), child.contains(k.init_user_ns)
        (True, False)
        """
        return any(ns is self for ns in other.ancestors())

    def get_max(self, kind: UcountType) -> int:
        """Read ``/proc/sys/user/max_<type>`` of this namespace."""
        return self.ucount_max[UcountType(kind)]

    @traced
    def set_max(self, kind: UcountType, value: int) -> None:
        """Write ``/proc/sys/user/max_<type>`` of this namespace (``proc_doulongvec_minmax``).

        Permission (CAP_SYS_RESOURCE in this namespace) is checked by the task layer.

        Raises:
            BpfnsError: EINVAL if ``value`` is outside ``[0, INT_MAX]``.
            TypeError: if ``value`` is not an int.
        """
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"a ucount limit is an int, not {type(value).__name__}")
        if not 0 <= value <= INT_MAX:
            raise BpfnsError(
                errno.EINVAL, f"{UcountType(kind).sysctl}={value} is outside [0, {INT_MAX}]"
            )
        self.ucount_max[UcountType(kind)] = value

    def count(self, kind: UcountType, uid: int) -> int:
        """How many ``type`` objects ``uid`` has charged in this namespace."""
        uc = self._table.get((id(self), uid))
        return 0 if uc is None else uc.counts[kind]

    @traced
    def create_child(self, owner: int = 0) -> UserNamespace:
        """``create_user_ns``: a user namespace owned by ``owner`` (an euid).

        The caller holds the only reference; drop it with :meth:`put`. Charges
        ``UCOUNT_USER_NAMESPACES`` to ``(self, owner)`` and every ancestor. The
        child's limits all start at INT_MAX (kernel.md D).

        Raises:
            BpfnsError: ENOSPC if ``self`` is deeper than level 32 or a
                ``max_user_namespaces`` limit is reached.
            TypeError, ValueError: if ``owner`` is not a uid in ``[0, 2**32 - 2]``.

        >>> from bpfns import Kernel
        >>> Kernel().init_user_ns.create_child(owner=1000).level
        1
        """
        if not isinstance(owner, int) or isinstance(owner, bool):
            raise TypeError(f"owner must be an int uid, not {type(owner).__name__}")
        if not 0 <= owner < 0xFFFFFFFF:
            raise ValueError(f"owner={owner} is not a valid uid (0 .. 4294967294)")
        if not self._count:
            raise ValueError(f"create_user_ns: {self!r} was freed; use a live parent")
        if self.level > MAX_USER_NS_PARENT_LEVEL:
            raise BpfnsError(
                errno.ENOSPC, f"user namespace level {self.level + 1} exceeds the maximum 33"
            )
        uc = inc_ucount(self, owner, UcountType.USER_NAMESPACES)
        if uc is None:
            raise BpfnsError(
                errno.ENOSPC,
                "max_user_namespaces reached; raise the limit or free a user namespace",
            )
        self._count += 1  # the child pins its parent
        child = UserNamespace(
            level=self.level + 1,
            parent=self,
            owner=owner,
            ucounts=uc,
            ucount_max=[INT_MAX] * len(UcountType),
            table=self._table,
            tracer=self._tracer,
        )
        if self._tracer is not None:
            self._tracer.ref(child)
        return child


def new_init_user_ns(ucount_max: int) -> UserNamespace:
    """A fresh ``init_user_ns`` with its own ucount table (one per Kernel)."""
    return UserNamespace(
        level=0,
        parent=None,
        owner=0,
        ucounts=None,
        ucount_max=[ucount_max] * len(UcountType),
        table={},
    )


def _entry(ns: UserNamespace, uid: int) -> Ucounts:
    """``alloc_ucounts``: find or create the ``(ns, uid)`` entry."""
    key = (id(ns), uid)
    uc = ns._table.get(key)
    if uc is None:
        uc = ns._table[key] = Ucounts(ns, uid)
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
    return list(init._table.values())
