"""RCU, as far as the simulator needs it: deferred callbacks and grace periods.

``call_rcu(head, fn)`` queues ``fn`` to run after a grace period; the simulation has no
concurrent readers, so a grace period ends exactly when :meth:`Rcu.synchronize` (exposed
as :meth:`bpfns.Kernel.synchronize_rcu`) is called. Callbacks queued *by* a callback wait
for the next grace period, as they do in the kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._trace import RcuCallback, Tracer

__all__ = ["Rcu"]


@attrs.define
class Rcu:
    """The pending ``call_rcu`` callbacks of one Kernel.

    >>> rcu = Rcu()
    >>> rcu.call_rcu(lambda: print("freed"), "delayed_free_bpfns")
    >>> rcu.pending
    ('delayed_free_bpfns',)
    >>> rcu.synchronize()
    freed
    1
    """

    _queue: list[tuple[Callable[[], None], str]] = attrs.field(factory=list)
    tracer: Tracer | None = attrs.field(default=None, kw_only=True)

    def call_rcu(self, fn: Callable[[], None], what: str) -> None:
        """``call_rcu``: run ``fn`` after the next grace period."""
        self._queue.append((fn, what))

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the callbacks still waiting for a grace period, oldest first."""
        return tuple(what for _, what in self._queue)

    def synchronize(self) -> int:
        """End a grace period: run every callback queued before this call, in order.

        Returns the number of callbacks run.
        """
        batch, self._queue = self._queue, []
        for fn, what in batch:
            if self.tracer is not None:
                self.tracer.emit(RcuCallback(self.tracer.step, what))
            fn()
        return len(batch)
