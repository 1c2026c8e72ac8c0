"""Fault injection: make a chosen allocation fail with ENOMEM, as /proc/self/fail-nth does.

Every allocation the simulated kernel makes passes through
:meth:`FaultInjector.should_fail` with its :class:`FaultSite`. Arming the injector with
:meth:`FaultInjector.fail_nth` makes the n-th such allocation from now fail (optionally
counting only some sites); that turns every ENOMEM path of semantics §2.2 and §2.3 into a
reachable, testable branch.
"""

from __future__ import annotations

import enum
import errno
import random
from collections.abc import Iterable
from typing import ClassVar

import attrs

from ._args import check_int
from ._errors import BpfnsError
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
    #: ``dup_task_struct`` in ``copy_process`` (clone).
    TASK = "dup_task_struct"
    #: ``create_user_ns``'s ``kmem_cache_zalloc(user_ns_cachep)`` (CLONE_NEWUSER).
    USER_NS = "kmem_cache_zalloc(user_ns_cachep)"
    #: ``dup_fd``: a copy of the file table (clone without CLONE_FILES, unshare).
    FILES = "dup_fd"
    #: ``create_nsproxy`` in ``create_new_namespaces`` (a new namespace).
    NSPROXY = "create_nsproxy"
    #: The object itself: ``map->ops->map_alloc``, ``bpf_prog_alloc``, the link's kzalloc.
    BPF_OBJECT = "bpf object allocation"
    #: ``alloc_file`` / ``anon_inode_getfile``: the ``struct file`` behind a new fd.
    FILE = "anon_inode_getfile"


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

    armed: bool = attrs.field(default=False, init=False, repr=False)
    _countdown: int = attrs.field(default=0, init=False, repr=False)
    _sites: frozenset[FaultSite] | None = attrs.field(default=None, init=False, repr=False)
    _rng: random.Random | None = attrs.field(default=None, init=False, repr=False)
    _probability: float = attrs.field(default=0.0, init=False, repr=False)
    injected: list[FaultSite] = attrs.field(factory=list, init=False, repr=False)
    #: the kernel's tracer: an event for every injected failure (None: no tracing)
    tracer: Tracer | None = attrs.field(default=None, init=False, repr=False)
    _trace_kind: ClassVar[str] = "faults"

    @property
    def _tracer(self) -> Tracer | None:
        return self.tracer

    def __repr__(self) -> str:
        """``FaultInjector()`` when idle; otherwise what is armed and what was injected."""
        if not self.armed and not self.injected:
            return "FaultInjector()"
        if not self.armed:
            how = "disarmed"
        elif self._rng is not None:
            how = f"fail_randomly({self._probability!r})"
        else:
            how = f"fail_nth({self._countdown})"
        sites = "" if self._sites is None else f" sites={sorted(s.name for s in self._sites)}"
        return f"<FaultInjector {how}{sites} injected={self.injected!r}>"

    @staticmethod
    def _site_set(sites: Iterable[FaultSite] | None) -> frozenset[FaultSite] | None:
        if sites is None:
            return None
        if isinstance(sites, str | bytes | FaultSite) or not hasattr(sites, "__iter__"):
            raise TypeError(
                f"sites must be an iterable of FaultSite members, not {type(sites).__name__}"
            )
        chosen = tuple(sites)
        if not all(isinstance(s, FaultSite) for s in chosen):
            raise TypeError("sites must be FaultSite members, e.g. [FaultSite.INUM]")
        return frozenset(chosen)

    @traced
    def fail_nth(self, n: int, sites: Iterable[FaultSite] | None = None) -> None:
        """Fail the ``n``-th allocation from now (1 = the next), once.

        With ``sites``, only allocations at those sites are counted and can fail.

        Raises:
            ValueError: if ``n < 1``.
            TypeError: if ``n`` is not an int (a bool is not) or ``sites`` holds
                something other than :class:`FaultSite`. A refused call leaves the
                injector as it was.
        """
        count = check_int("n", n, -(2**63), 2**63 - 1, "")
        if count < 1:
            raise ValueError(f"fail_nth(n={count}): n counts allocations from 1 (the next one)")
        chosen = self._site_set(sites)
        self.armed, self._countdown, self._sites, self._rng = True, count, chosen, None

    @traced
    def fail_randomly(
        self, probability: float, sites: Iterable[FaultSite] | None = None, seed: int = 0
    ) -> None:
        """Fail each allocation (at ``sites``, or anywhere) with ``probability``.

        The choices come from a ``random.Random(seed)`` owned by this injector, so a
        run is reproducible. Stays armed until :meth:`disarm`.

        Raises:
            ValueError: if ``probability`` is not within ``[0, 1]``.
            TypeError: if ``probability`` is not a number, ``seed`` not an int, or
                ``sites`` holds something other than :class:`FaultSite`. A refused
                call leaves the injector as it was.

        >>> f = FaultInjector()
        >>> f.fail_randomly(0.5, seed=1)
        >>> [f.should_fail(FaultSite.INUM) for _ in range(6)]
        [True, False, False, True, True, True]
        """
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise TypeError(f"probability must be a float, not {type(probability).__name__}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability={probability!r} must be within [0, 1]")
        number = check_int("seed", seed, -(2**63), 2**63 - 1, "")
        chosen = self._site_set(sites)
        self.armed, self._sites, self._probability = True, chosen, float(probability)
        self._rng = random.Random(number)

    @traced
    def disarm(self) -> None:
        """Cancel :meth:`fail_nth` or :meth:`fail_randomly`."""
        self.armed = False
        self._rng = None

    def inject(self, site: FaultSite) -> None:
        """An allocation at ``site``: raise ENOMEM if it is the one chosen to fail.

        Raises:
            BpfnsError: ENOMEM, naming the kernel allocation, when it must fail.

        >>> f = FaultInjector()
        >>> f.fail_nth(1)
        >>> f.inject(FaultSite.TASK)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        bpfns.BpfnsError: [ENOMEM: ...] dup_task_struct failed (injected ...)
        """
        if site.__class__ is not FaultSite:
            raise TypeError(f"site must be a FaultSite member, not {site!r}")
        if self.armed and self.should_fail(site):
            raise BpfnsError(errno.ENOMEM, f"{site.value} failed (injected allocation failure)")

    def should_fail(self, site: FaultSite) -> bool:
        """Called by every allocation; true if this one must fail with ENOMEM.

        Hot paths may skip the call while :attr:`armed` is false: it would return False.
        To sweep a scenario, arm ``fail_nth(n)`` for n = 1, 2, ... until a run ends with
        nothing injected.
        """
        if site.__class__ is not FaultSite:
            raise TypeError(f"site must be a FaultSite member, not {site!r}")
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
        if self.tracer is not None:
            self.tracer.emit(FaultInjected(self.tracer.step, site.name))
        return True
