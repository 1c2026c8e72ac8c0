"""Simulated CPUs: the kernel's preemption points, spinlocks and RCU readers (SMP).

A sequential :class:`bpfns.Kernel` runs one call at a time and has no CPUs
(``k.smp is None``): every hook below is one ``is None`` test at a place that is not on
the id fast paths, and nothing else. :func:`bpfns.concurrency.explore` gives a kernel
simulated CPUs (:meth:`bpfns._context.KernelContext.smp_init`); then the kernel code
calls the :class:`Smp` it was given at the places where the C code can be preempted or
must wait, and the scheduler behind it decides which CPU runs next. The kernel layers
depend only on this protocol, not on the scheduler (:mod:`bpfns.concurrency`).

The hooks, and the C they stand for:

* :meth:`Smp.preempt`: a point where another CPU may run (between two accesses to shared
  state: a syscall's entry, a refcount operation, an fd install);
* :meth:`Smp.spin_lock` / :meth:`Smp.spin_unlock`: ``spin_lock_bh`` / ``spin_unlock_bh``
  (and the irqsave forms) of a named lock; a CPU that wants a lock another CPU holds
  cannot run until it is released;
* :meth:`Smp.rcu_read_lock` / :meth:`Smp.rcu_read_unlock`: a read-side critical section;
* :meth:`Smp.synchronize_rcu`: wait until every read-side section that began before the
  call has ended (``call_rcu`` callbacks run only after that, see :mod:`bpfns._rcu`).

The locks are named by strings: ``"bpf_idr_lock[MAP]"`` is the RFC's per-type IDR lock
(one lock for the IDRs of that type in every namespace; see the concurrency page of
the docs), ``"task_lock(3)"`` the ``alloc_lock`` of the task with pid 3.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

__all__ = ["Smp"]


class Smp(Protocol):
    """The simulated CPUs a kernel's code reports its preemption points to.

    ``preempt(what)``: a preemption point before ``what``. ``spin_lock(lock, what)``: a
    preemption point, then wait until ``lock`` is free and take it.
    ``spin_unlock(lock, what)``: release it, then a preemption point.
    ``rcu_read_lock()`` / ``rcu_read_unlock()``: a read-side section on this CPU.
    ``synchronize_rcu()``: wait until every read-side section open now has ended.
    ``note(what)``: record ``what`` in the running CPU's lane (a free, a report), with
    no preemption.
    """

    def preempt(self, what: str) -> None: ...
    def spin_lock(self, lock: Hashable, what: str) -> None: ...
    def spin_unlock(self, lock: Hashable, what: str) -> None: ...
    def rcu_read_lock(self) -> None: ...
    def rcu_read_unlock(self) -> None: ...
    def synchronize_rcu(self) -> None: ...
    def note(self, what: str) -> None: ...
