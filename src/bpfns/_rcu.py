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

    def synchronize(self) -> int:
        """End a grace period: run every callback queued before this call, in order.

        Returns the number of callbacks run. If callbacks raise, all of them still run
        and the first exception is raised at the end.
        """
        batch, self._queue = self._queue, []
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
