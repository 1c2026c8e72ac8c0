"""Fault injection: make a chosen allocation fail with ENOMEM, as /proc/self/fail-nth does.

Every allocation the simulated kernel makes passes through
:meth:`FaultInjector.should_fail` with its :class:`FaultSite`. Arming the injector with
:meth:`FaultInjector.fail_nth` makes the n-th such allocation from now fail (optionally
counting only some sites); that turns every ENOMEM path of rfc.md 2.2 and 2.3 into a
reachable, testable branch.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

__all__ = ["FaultInjector", "FaultSite"]


class FaultSite(enum.Enum):
    """The allocation sites of the simulated kernel (the kernel call that can fail)."""

    def __repr__(self) -> str:
        return f"FaultSite.{self.name}"

    NAMESPACE = "kmem_cache_zalloc(bpf_namespace)"
    KMEM_CACHE = "create_bpf_cachep"
    INUM = "ns_alloc_inum"
    OBJ_ID = "kmem_cache_alloc(obj_id_cachep)"
    IDR_NODE = "idr_alloc_cyclic radix node"


@attrs.define
class FaultInjector:
    """Counts allocations and fails the chosen one.

    >>> f = FaultInjector()
    >>> f.fail_nth(2)
    >>> [f.should_fail(FaultSite.OBJ_ID) for _ in range(3)]
    [False, True, False]
    >>> f.injected
    [FaultSite.OBJ_ID]
    """

    armed: bool = attrs.field(default=False, init=False)
    _countdown: int = attrs.field(default=0, init=False)
    _sites: frozenset[FaultSite] | None = attrs.field(default=None, init=False)
    injected: list[FaultSite] = attrs.field(factory=list, init=False)

    def fail_nth(self, n: int, sites: Iterable[FaultSite] | None = None) -> None:
        """Fail the ``n``-th allocation from now (1 = the next), once.

        With ``sites``, only allocations at those sites are counted and can fail.

        Raises:
            ValueError: if ``n < 1``.
            TypeError: if ``sites`` holds something other than :class:`FaultSite`.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"fail_nth(n={n!r}): n counts allocations from 1 (the next one)")
        chosen = None if sites is None else frozenset(sites)
        if chosen is not None and not all(isinstance(s, FaultSite) for s in chosen):
            raise TypeError("sites must be FaultSite members, e.g. FaultSite.INUM")
        self.armed, self._countdown, self._sites = True, n, chosen

    def disarm(self) -> None:
        """Cancel a pending :meth:`fail_nth`."""
        self.armed = False

    def should_fail(self, site: FaultSite) -> bool:
        """Called by every allocation; true if this one must fail with ENOMEM.

        Hot paths may skip the call while :attr:`armed` is false: it would return False.
        To sweep a scenario, arm ``fail_nth(n)`` for n = 1, 2, ... until a run ends with
        nothing injected.
        """
        if not self.armed or (self._sites is not None and site not in self._sites):
            return False
        self._countdown -= 1
        if self._countdown:
            return False
        self.armed = False
        self.injected.append(site)
        return True
