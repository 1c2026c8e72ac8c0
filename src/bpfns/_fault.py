"""Fault injection: make a chosen allocation fail with ENOMEM, as /proc/self/fail-nth does.

Every allocation the simulated kernel makes passes through
:meth:`FaultInjector.should_fail` with its :class:`FaultSite`. Arming the injector with
:meth:`FaultInjector.fail_nth` makes the n-th such allocation from now fail (optionally
counting only some sites); that turns every ENOMEM path of rfc.md 2.2 and 2.3 into a
reachable, testable branch.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from typing import ClassVar

import attrs

from ._trace import FaultInjected, Tracer, traced

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
    _rng: random.Random | None = attrs.field(default=None, init=False)
    _probability: float = attrs.field(default=0.0, init=False)
    injected: list[FaultSite] = attrs.field(factory=list, init=False)
    _tracer: Tracer | None = attrs.field(default=None, init=False, repr=False)
    _trace_kind: ClassVar[str] = "faults"

    @staticmethod
    def _site_set(sites: Iterable[FaultSite] | None) -> frozenset[FaultSite] | None:
        chosen = None if sites is None else frozenset(sites)
        if chosen is not None and not all(isinstance(s, FaultSite) for s in chosen):
            raise TypeError("sites must be FaultSite members, e.g. FaultSite.INUM")
        return chosen

    @traced
    def fail_nth(self, n: int, sites: Iterable[FaultSite] | None = None) -> None:
        """Fail the ``n``-th allocation from now (1 = the next), once.

        With ``sites``, only allocations at those sites are counted and can fail.

        Raises:
            ValueError: if ``n < 1``.
            TypeError: if ``sites`` holds something other than :class:`FaultSite`.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"fail_nth(n={n!r}): n counts allocations from 1 (the next one)")
        chosen = self._site_set(sites)
        self.armed, self._countdown, self._sites, self._rng = True, n, chosen, None

    @traced
    def fail_randomly(
        self, probability: float, sites: Iterable[FaultSite] | None = None, seed: int = 0
    ) -> None:
        """Fail each allocation (at ``sites``, or anywhere) with ``probability``.

        The choices come from a ``random.Random(seed)`` owned by this injector, so a
        run is reproducible. Stays armed until :meth:`disarm`.

        Raises:
            ValueError: if ``probability`` is not within ``[0, 1]``.
            TypeError: if ``sites`` holds something other than :class:`FaultSite`.

        >>> f = FaultInjector()
        >>> f.fail_randomly(0.5, seed=1)
        >>> [f.should_fail(FaultSite.INUM) for _ in range(6)]
        [True, False, False, True, True, True]
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability={probability!r} must be within [0, 1]")
        chosen = self._site_set(sites)
        self.armed, self._sites, self._probability = True, chosen, probability
        self._rng = random.Random(seed)

    @traced
    def disarm(self) -> None:
        """Cancel :meth:`fail_nth` or :meth:`fail_randomly`."""
        self.armed = False
        self._rng = None

    def should_fail(self, site: FaultSite) -> bool:
        """Called by every allocation; true if this one must fail with ENOMEM.

        Hot paths may skip the call while :attr:`armed` is false: it would return False.
        To sweep a scenario, arm ``fail_nth(n)`` for n = 1, 2, ... until a run ends with
        nothing injected.
        """
        if not self.armed or (self._sites is not None and site not in self._sites):
            return False
        if self._rng is not None:
            if self._rng.random() >= self._probability:
                return False
        else:
            self._countdown -= 1
            if self._countdown:
                return False
            self.armed = False
        self.injected.append(site)
        if self._tracer is not None:
            self._tracer.emit(FaultInjected(self._tracer.step, site.name))
        return True
