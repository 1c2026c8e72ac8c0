"""Credentials and capabilities: ``struct cred`` and ``cap_capable`` (security/commoncap.c).

The spec (semantics §2.2, §2.5; kernel rules §C.9, §D) states which checks the RFC makes; how a
capability check walks user namespaces is the kernel's ``cap_capable``:

* a task has its effective capabilities in its own user namespace (``cred->user_ns``);
* it has every capability in a user namespace it owns (created with its euid) that is a
  child of its own, and in all of that namespace's descendants;
* it has none in any other namespace, in particular none in an ancestor.

``capable(cap)`` is ``ns_capable(&init_user_ns, cap)``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from ._ucount import UserNamespace

__all__ = ["Cap", "Cred", "cap_capable"]


class Cap(enum.IntEnum):
    """The capabilities bpfns checks (include/uapi/linux/capability.h numbers)."""

    CAP_NET_ADMIN = 12
    CAP_SYS_ADMIN = 21
    CAP_SYS_RESOURCE = 24
    CAP_PERFMON = 38
    CAP_BPF = 39

    def __repr__(self) -> str:
        return f"Cap.{self.name}"


#: Every capability bpfns knows: what root, or the owner of a new user namespace, has.
ALL_CAPS: frozenset[Cap] = frozenset(Cap)


@attrs.frozen
class Cred:
    """``struct cred``, reduced: effective uid, user namespace, effective capabilities.

    Credentials are immutable; a task changes them by installing a new ``Cred``
    (``commit_creds``), as :meth:`bpfns.Task.drop_capabilities` and
    :meth:`bpfns.Task.setuid` do.
    """

    euid: int
    user_ns: UserNamespace
    caps: frozenset[Cap] = ALL_CAPS

    def without(self, caps: Iterable[Cap]) -> Cred:
        """A copy with ``caps`` removed from the effective set.

        Raises:
            TypeError: if ``caps`` is not an iterable of :class:`Cap` members.

        >>> from bpfns import Kernel
        >>> Cred(0, Kernel().init_user_ns).without([Cap.CAP_BPF]).caps == ALL_CAPS - {Cap.CAP_BPF}
        True
        """
        if isinstance(caps, str | bytes | Cap) or not hasattr(caps, "__iter__"):
            raise TypeError(f"caps must be an iterable of Cap members, not {type(caps).__name__}")
        chosen = tuple(caps)
        if not all(cap.__class__ is Cap for cap in chosen):
            raise TypeError(f"caps must be Cap members (e.g. Cap.CAP_BPF), not {chosen!r}")
        return attrs.evolve(self, caps=self.caps - frozenset(chosen))


def cap_capable(cred: Cred, ns: UserNamespace, cap: Cap) -> bool:
    """``cap_capable``: whether ``cred`` has ``cap`` in user namespace ``ns``.

    >>> from bpfns import Kernel
    >>> k = Kernel()
    >>> root = Cred(0, k.init_user_ns)
    >>> child = k.init_user_ns.create_child(owner=1000)
    >>> user = Cred(1000, k.init_user_ns, frozenset())
    >>> cap_capable(root, child, Cap.CAP_SYS_ADMIN), cap_capable(user, child, Cap.CAP_SYS_ADMIN)
    (True, True)
    >>> cap_capable(user, k.init_user_ns, Cap.CAP_SYS_ADMIN)
    False
    """
    target = ns
    while True:
        if target is cred.user_ns:
            return cap in cred.caps
        if target.level <= cred.user_ns.level:
            return False
        if target.parent is cred.user_ns and target.owner == cred.euid:
            return True
        assert target.parent is not None  # its level is above cred.user_ns's, so above 0
        target = target.parent
