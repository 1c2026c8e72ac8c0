"""Simulated CPUs on stdlib threads: one worker thread per CPU, exactly one running.

A :class:`CpuPool` owns the worker threads; they are reused for every schedule of an
exploration (a thread is started once, not once per run). A :class:`Scheduler` is one
run: it implements :class:`bpfns._smp.Smp` for one kernel, and at every preemption point
the CPU that reached it asks the scheduler's *strategy* which CPU runs next. Control
changes hands only when the strategy picks another CPU: the running thread releases the
chosen CPU's semaphore and waits on its own, so exactly one thread runs kernel code at
any time and a run is a deterministic function of its choices.

A CPU that wants a spinlock another CPU holds, or waits in ``synchronize_rcu`` for a
read-side section that began before it, is not runnable. When no CPU can run and some
have not finished, the run is a deadlock: the scheduler records it and unwinds every
waiting CPU (each raises an internal ``BaseException`` from its wait, which no kernel
``except Exception`` catches).

Cost: a switch between two threads is about 10 us here (a semaphore each way); a
preemption point that keeps the running CPU costs a Python call and a list append.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Protocol

import attrs

from .._errors import KernelBug

__all__ = [
    "CpuPool",
    "Deadlock",
    "Follow",
    "Lane",
    "Scheduler",
    "SchedulerStalled",
    "Strategy",
    "default_choice",
]

#: How long the main thread waits for a run before it declares the scheduler stalled.
STALL_SECONDS = 60.0


class Deadlock(Exception):  # noqa: N818 - the kernel's word (lockdep, a soft lockup)
    """No simulated CPU can run, and some have not finished.

    A lock or grace-period wait never ends. ``e.waits`` says what each stuck CPU waits
    for.
    """

    def __init__(self, waits: dict[int, str]) -> None:
        stuck = "; ".join(f"CPU {cpu} waits for {what}" for cpu, what in sorted(waits.items()))
        super().__init__(f"deadlock: {stuck}")
        self.waits = waits


class SchedulerStalled(RuntimeError):  # noqa: N818 - a state, like Deadlock
    """A CPU's job blocked on something outside the simulation (a real lock, I/O)."""


class _Abort(BaseException):
    """Unwinds a waiting CPU after a deadlock (not an Exception: kernel code lets it pass)."""


class Strategy(Protocol):
    """Which CPU runs next, at a decision point (two or more CPUs can run).

    ``runnable`` is ascending, ``current`` the CPU that reached the point (None at the
    start, or if it cannot go on), ``point`` the number of preemption points so far.
    """

    def choose(self, runnable: tuple[int, ...], current: int | None, point: int) -> int: ...


def default_choice(runnable: tuple[int, ...], current: int | None) -> int:
    """The non-preemptive choice: the running CPU if it can go on, else the lowest."""
    return current if current is not None else runnable[0]


@attrs.define
class Follow:
    """The strategy of a schedule: its choices in order, then :func:`default_choice`.

    ``mismatch`` is the first decision whose choice could not run there (None if none).
    """

    prefix: tuple[int, ...]
    i: int = 0
    mismatch: int | None = None

    def choose(self, runnable: tuple[int, ...], current: int | None, point: int) -> int:
        """:class:`Strategy`."""
        i, self.i = self.i, self.i + 1
        if i < len(self.prefix):
            if self.prefix[i] in runnable:
                return self.prefix[i]
            if self.mismatch is None:
                self.mismatch = i
        return default_choice(runnable, current)


@attrs.frozen
class Lane:
    """One entry of a run's log: what CPU ``cpu`` did (``cpu`` -1: the sequential parts).

    ``kind`` is ``"point"``, ``"lock"``, ``"unlock"``, ``"wait"``, ``"note"``,
    ``"start"``, ``"done"`` or ``"oops"``; ``held`` the locks the CPU holds afterwards.
    """

    cpu: int
    kind: str
    what: str
    held: tuple[str, ...] = ()


@attrs.define(eq=False)
class _Cpu:
    """One simulated CPU of a pool: its thread, its baton, and its state in a run."""

    index: int
    wake: threading.Semaphore = attrs.field(factory=lambda: threading.Semaphore(0))
    sched: Scheduler | None = None
    job: Callable[[], object] | None = None
    done: bool = True
    wants: Hashable | None = None
    grace: frozenset[tuple[int, int]] | None = None
    rcu_depth: int = 0
    sections: int = 0
    held: list[str] = attrs.field(factory=list)
    current: object = None
    result: object = None
    error: BaseException | None = None


class _Context(Protocol):
    """What the scheduler reads and writes of its kernel: ``current``."""

    current: Any


@attrs.define(eq=False)
class CpuPool:
    """``n`` worker threads, one per simulated CPU, reused by every run.

    Use it as a context manager (the threads are joined at the end), or call
    :meth:`close`.

    >>> with CpuPool(2) as pool:
    ...     len(pool.cpus)
    2
    """

    n: int
    cpus: list[_Cpu] = attrs.field(init=False)
    _threads: list[threading.Thread] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        self.cpus = [_Cpu(i) for i in range(self.n)]
        for cpu in self.cpus:
            thread = threading.Thread(
                target=_worker, args=(cpu,), name=f"bpfns-cpu{cpu.index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop the worker threads.

        Idle threads stop at once. A run cut short (the caller was interrupted, or a job
        stalled) is aborted: its waiting CPUs unwind as after a deadlock. A thread stuck
        outside the simulation is left behind (a daemon) after a second.
        """
        for cpu in self.cpus:
            if cpu.sched is not None:
                cpu.sched.abort()
            cpu.sched = None
        for cpu in self.cpus:  # one wake for a CPU waiting in a run, one for its loop
            cpu.wake.release()
            cpu.wake.release()
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._threads.clear()

    def __enter__(self) -> CpuPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker(cpu: _Cpu) -> None:
    """A CPU's thread: wait for a job, run it under its scheduler, repeat."""
    while True:
        cpu.wake.acquire()
        sched = cpu.sched
        if sched is None:
            return
        sched._run_job(cpu)


@attrs.define(eq=False)
class Scheduler:
    """Runs of jobs on a pool's CPUs: the :class:`bpfns._smp.Smp` of one kernel.

    Attributes:
        strategy: who runs next at a decision point (settable between runs).
        decisions: ``(runnable, current, chosen)`` at every decision point, in order.
        log: the run's :class:`Lane` entries.
        deadlock: the :class:`Deadlock`, if the run ended in one.
        points: how many preemption points the CPUs passed.
    """

    pool: CpuPool
    kernel: _Context
    strategy: Strategy
    decisions: list[tuple[tuple[int, ...], int | None, int]] = attrs.field(factory=list)
    log: list[Lane] = attrs.field(factory=list)
    deadlock: Deadlock | None = None
    points: int = 0
    active: bool = False
    _running: _Cpu | None = None
    _holders: dict[Hashable, _Cpu] = attrs.field(factory=dict)
    _readers: set[tuple[int, int]] = attrs.field(factory=set)
    _aborting: bool = False
    _main: threading.Semaphore = attrs.field(factory=lambda: threading.Semaphore(0))
    _cpus: list[_Cpu] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._cpus = self.pool.cpus

    # -- running a set of jobs ----------------------------------------------------------

    def run(self, jobs: list[Callable[[], object]]) -> list[tuple[object, BaseException | None]]:
        """Run ``jobs[i]`` on CPU ``i`` until every one has returned; their outcomes.

        A run starts with a fresh record (:attr:`decisions`, :attr:`log`); the kernel
        keeps its CPUs between runs, and is sequential outside them. Each outcome is
        ``(result, None)`` or ``(None, exception)``. A deadlock ends the
        run early (see :attr:`deadlock`); the stuck jobs' outcomes are then
        ``(None, None)``.

        Raises:
            ValueError: for more jobs than CPUs, or if the scheduler already ran.
            SchedulerStalled: if a job blocks on something outside the simulation.
        """
        if len(jobs) > len(self._cpus) or self.active:
            raise ValueError(
                f"run: {len(jobs)} jobs for {len(self._cpus)} CPUs, or a run inside a run; "
                "use a pool of at least as many CPUs as jobs, and call run between runs"
            )
        self.decisions, self.log, self.deadlock, self.points = [], [], None, 0
        self._holders, self._readers, self._aborting = {}, set(), False
        cpus = self._cpus[: len(jobs)]
        for cpu, job in zip(cpus, jobs, strict=True):
            cpu.sched, cpu.job, cpu.done = self, job, False
            cpu.wants = cpu.grace = cpu.current = cpu.result = cpu.error = None
            cpu.rcu_depth = cpu.sections = 0
            cpu.held = []
        outer = self.kernel.current
        self.active = True
        first = self._choose(None)
        assert first is not None  # every CPU can start
        self._hand(first)
        if not self._main.acquire(timeout=STALL_SECONDS):
            raise SchedulerStalled(
                f"no simulated CPU reached a preemption point or finished for {STALL_SECONDS} s: "
                "a job blocks on something outside the simulation (a real lock, I/O, input)"
            )
        self.active = False
        self.kernel.current = outer
        return [(cpu.result, cpu.error) for cpu in cpus]

    def _run_job(self, cpu: _Cpu) -> None:
        """On ``cpu``'s thread: run its job, then hand over to the next CPU (or main)."""
        self.log.append(Lane(cpu.index, "start", "job starts"))
        job = cpu.job
        assert job is not None
        try:
            cpu.result = job()
        except _Abort:
            pass
        except BaseException as exc:  # the job's own outcome, a KernelBug included
            cpu.error = exc
            if isinstance(exc, KernelBug):
                self.log.append(Lane(cpu.index, "oops", str(exc), tuple(cpu.held)))
        cpu.done = True
        if cpu.rcu_depth:  # exit_rcu: an exiting task's read-side sections end
            self._readers.discard((cpu.index, cpu.sections))
            cpu.rcu_depth = 0
        self.log.append(Lane(cpu.index, "done", _outcome(cpu), tuple(cpu.held)))
        nxt = self._next_after_done()
        if nxt is None:
            self._main.release()
        else:
            self._hand(nxt)

    def _next_after_done(self) -> _Cpu | None:
        """The CPU to run after one finished: a runnable one, else unwind or end."""
        if not self._aborting:
            nxt = self._choose(None)
            if nxt is not None:
                return nxt
            if all(c.done for c in self._live()):
                return None
            self._start_abort()
        return next((c for c in self._live() if not c.done), None)

    def _live(self) -> list[_Cpu]:
        return [c for c in self._cpus if c.sched is self]

    # -- choosing and switching ---------------------------------------------------------

    def _can_run(self, cpu: _Cpu) -> bool:
        if cpu.done:
            return False
        if cpu.wants is not None and cpu.wants in self._holders:
            return False
        return cpu.grace is None or not (cpu.grace & self._readers)

    def _choose(self, current: _Cpu | None) -> _Cpu | None:
        """The next CPU: the only runnable one, or the strategy's pick; None if none can."""
        runnable = tuple(c.index for c in self._live() if self._can_run(c))
        if not runnable:
            return None
        if len(runnable) == 1:
            return self._cpus[runnable[0]]
        cur = None if current is None or not self._can_run(current) else current.index
        choice = self.strategy.choose(runnable, cur, self.points)
        assert choice in runnable, f"the strategy chose CPU {choice}, not one of {runnable}"
        self.decisions.append((runnable, cur, choice))
        return self._cpus[choice]

    def _hand(self, nxt: _Cpu) -> None:
        """Give the kernel to ``nxt`` (its ``current``) and wake it."""
        self._running = nxt
        self.kernel.current = nxt.current
        nxt.wake.release()

    def _switch(self, cur: _Cpu, nxt: _Cpu) -> None:
        """``cur`` stops here, ``nxt`` runs; returns when ``cur`` is chosen again."""
        cur.current = self.kernel.current
        self._hand(nxt)
        cur.wake.acquire()
        if self._aborting:
            raise _Abort

    def _wait(self, cur: _Cpu, what: str) -> None:
        """``cur`` cannot run (it waits for ``what``): run another, or it is a deadlock."""
        self.log.append(Lane(cur.index, "wait", what, tuple(cur.held)))
        nxt = self._choose(cur)
        if nxt is None:
            self._start_abort()
            raise _Abort
        self._switch(cur, nxt)

    def abort(self) -> None:
        """End the run: every CPU that waits or is woken unwinds (as after a deadlock)."""
        self._aborting = True

    def _start_abort(self) -> None:
        waits = {
            c.index: (
                f"{c.wants} (held by CPU {self._holders[c.wants].index})"
                if c.wants is not None
                else "synchronize_rcu (a reader has not left its read-side section)"
            )
            for c in self._live()
            if not c.done
        }
        self.deadlock = Deadlock(waits)
        self._aborting = True

    def _point(self, what: str, kind: str = "point") -> _Cpu:
        cur = self._running
        assert cur is not None
        self.points += 1
        self.log.append(Lane(cur.index, kind, what, tuple(cur.held)))
        nxt = self._choose(cur)
        assert nxt is not None  # cur itself can run
        if nxt is not cur:
            self._switch(cur, nxt)
        return cur

    # -- the Smp hooks ------------------------------------------------------------------

    def preempt(self, what: str) -> None:
        """:class:`bpfns._smp.Smp`: a preemption point."""
        if self.active:
            self._point(what)

    def spin_lock(self, lock: Hashable, what: str) -> None:
        """:class:`bpfns._smp.Smp`: a point, then wait for ``lock`` and take it."""
        if not self.active:
            return
        cur = self._point(what)
        while lock in self._holders:
            cur.wants = lock
            self._wait(cur, f"{lock} (held by CPU {self._holders[lock].index})")
        cur.wants = None
        self._holders[lock] = cur
        cur.held.append(str(lock))
        self.log.append(Lane(cur.index, "lock", f"took {lock}", tuple(cur.held)))

    def spin_unlock(self, lock: Hashable, what: str) -> None:
        """:class:`bpfns._smp.Smp`: release ``lock``, then a point."""
        if not self.active:
            return
        cur = self._running
        assert cur is not None and self._holders.get(lock) is cur
        del self._holders[lock]
        cur.held.remove(str(lock))
        self._point(what, "unlock")

    def rcu_read_lock(self) -> None:
        """:class:`bpfns._smp.Smp`: a point, then a read-side section begins."""
        if not self.active:
            return
        cur = self._point("rcu_read_lock")
        cur.rcu_depth += 1
        if cur.rcu_depth == 1:
            cur.sections += 1
            self._readers.add((cur.index, cur.sections))

    def rcu_read_unlock(self) -> None:
        """:class:`bpfns._smp.Smp`: the section ends, then a point."""
        if not self.active:
            return
        cur = self._running
        assert cur is not None and cur.rcu_depth > 0
        cur.rcu_depth -= 1
        if not cur.rcu_depth:
            self._readers.discard((cur.index, cur.sections))
        self._point("rcu_read_unlock")

    def synchronize_rcu(self) -> None:
        """:class:`bpfns._smp.Smp`: wait for every read-side section open now to end."""
        if not self.active:
            return
        cur = self._point("synchronize_rcu")
        cur.grace = frozenset(self._readers)
        while cur.grace & self._readers:
            self._wait(cur, "a grace period (a CPU is in an RCU read-side section)")
        cur.grace = None

    def note(self, what: str) -> None:
        """:class:`bpfns._smp.Smp`: log ``what`` in the running CPU's lane."""
        cur = self._running if self.active else None
        self.log.append(Lane(-1 if cur is None else cur.index, "note", what))


def _outcome(cpu: _Cpu) -> str:
    if cpu.error is not None:
        return f"raised {type(cpu.error).__name__}"
    return f"returned {cpu.result!r}"
