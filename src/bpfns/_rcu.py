"""RCU, as far as the simulator needs it: deferred callbacks and grace periods.

``call_rcu(head, fn)`` queues ``fn`` to run after a grace period; the simulation has no
concurrent readers, so a grace period ends exactly when :meth:`Rcu.synchronize` (exposed
as :meth:`bpfns.Kernel.synchronize_rcu`) is called. Callbacks queued *by* a callback wait
for the next grace period, as they do in the kernel.

Every callback of a grace period runs, even when one of them raises (a sanitizer report
in the RFC's behaviour): the kernel's RCU core invokes the whole batch, so a failing
callback never strands the ones queued after it. The first exception is raised once the
batch is done.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._smp import Smp
from ._trace import RcuCallback, Tracer

__all__ = ["Rcu"]


@attrs.define
class Rcu:
    """The pending ``call_rcu`` callbacks of one Kernel.

    Each callback is queued with the object whose ``rcu_head`` it uses, so that the
    invariant checks can tell which objects wait for a grace period.

    >>> rcu = Rcu()
    >>> rcu.call_rcu(lambda: print("freed"), "delayed_free_bpfns", owner="ns")
    >>> rcu.pending, rcu.owners()
    (('delayed_free_bpfns',), ['ns'])
    >>> rcu.synchronize()
    freed
    1
    """

    _queue: list[tuple[Callable[[], None], str, object]] = attrs.field(factory=list)
    tracer: Tracer | None = attrs.field(default=None, kw_only=True)
    smp: Smp | None = attrs.field(default=None, kw_only=True)
    #: Read-side sections open on a sequential kernel (:meth:`read_lock`).
    readers: int = attrs.field(default=0, kw_only=True)

    def call_rcu(self, fn: Callable[[], None], what: str, *, owner: object) -> None:
        """``call_rcu(&owner->rcu, fn)``: run ``fn`` after the next grace period."""
        self._queue.append((fn, what, owner))

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the callbacks still waiting for a grace period, oldest first."""
        return tuple(what for _, what, _ in self._queue)

    def owners(self) -> list[object]:
        """The objects whose callbacks are pending, oldest first."""
        return [owner for _, _, owner in self._queue]

    def _check(self) -> None:
        """Assert the invariants: every pending callback is callable and named."""
        for fn, what, _ in self._queue:
            assert callable(fn) and isinstance(what, str), what

    def read_lock(self) -> None:
        """``rcu_read_lock``: a read-side critical section begins (on this CPU)."""
        if self.smp is not None:
            self.smp.rcu_read_lock()
        else:
            self.readers += 1

    def read_unlock(self) -> None:
        """``rcu_read_unlock``: the innermost read-side critical section ends.

        Raises:
            ValueError: without a matching :meth:`read_lock` (sequential kernel).
        """
        if self.smp is not None:
            self.smp.rcu_read_unlock()
        elif not self.readers:
            raise ValueError("rcu_read_unlock: no read-side section is open; lock first")
        else:
            self.readers -= 1

    def synchronize(self) -> int:
        """End a grace period: run every callback queued before this call, in order.

        On simulated CPUs the grace period first waits until every read-side section
        open at the call has ended. Returns the number of callbacks run. If callbacks
        raise, all of them still run and the first exception is raised at the end.

        Raises:
            ValueError: on a sequential kernel inside a read-side section (the wait
                would never end: the kernel's lockdep reports it).
        """
        if self.readers:
            raise ValueError(
                "synchronize_rcu inside an RCU read-side section never returns; "
                "call rcu_read_unlock first"
            )
        batch, self._queue = self._queue, []
        if self.smp is not None:
            self.smp.synchronize_rcu()
        first: BaseException | None = None
        for fn, what, _ in batch:
            if self.tracer is not None:
                self.tracer.emit(RcuCallback(self.tracer.step, what))
            try:
                fn()
            except Exception as exc:  # the rest of the batch still runs
                first = first or exc
        if first is not None:
            raise first
        return len(batch)
