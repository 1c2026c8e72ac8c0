"""Stateless exploration of interleavings: re-run the program once per schedule.

A *program* is a ``setup(k)`` that builds a world sequentially on a fresh
:class:`bpfns.Kernel` and returns one callable per simulated CPU. One *run* executes the
callables concurrently under one schedule (:class:`Schedule`: the CPU chosen at each
decision point, where two or more CPUs can run), then tears the world down
(:meth:`bpfns.Kernel.teardown`: every primer cleaned up, every pin unlinked, every task
exited, RCU drained) and checks it (:meth:`bpfns.Kernel.check`). A run *fails* when a
CPU oopses (a :class:`bpfns.KernelBug`), the sanitizer reports a memory bug, the run
deadlocks, or the teardown or the check fails.

Strategies:

* ``"exhaustive"``: depth-first over every schedule with at most ``preemption_bound``
  preemptions (a switch away from a CPU that could have gone on; Musuvathi and Qadeer,
  PLDI 2007). Pruning: a point where only one CPU can run is no decision, and a
  schedule is never run twice; no other schedule is skipped (no partial-order
  reduction), so the count is the full preemption-bounded count.
* ``"pct"``: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): random
  CPU priorities and ``depth - 1`` random priority change points per run; a bug of
  depth ``d`` is found in each run with probability at least ``1 / (n k^(d-1))``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs

from .._args import check_int
from .._behavior import RFC, Behavior
from .._errors import KernelBug
from .._kernel import Kernel
from .._sanitizer import BugKind, bug_of
from ._scheduler import CpuPool, Follow, Lane, Scheduler, Strategy, default_choice
from ._swimlane import swimlane_svg, swimlane_text

__all__ = ["ExploreResult", "Run", "Schedule", "explore", "replay"]

Setup = Callable[[Kernel], Sequence[Callable[[], object]]]
Decision = tuple[tuple[int, ...], int | None, int]


def _choices(value: object) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"a schedule is a sequence of CPU numbers, not {value!r}")
    for cpu in value:
        if cpu.__class__ is not int or cpu < 0:
            raise TypeError(f"a schedule holds CPU numbers (ints >= 0), not {cpu!r}")
    return tuple(value)


@attrs.frozen(repr=False)
class Schedule:
    """The CPU chosen at each decision point of a run, in order.

    After the last entry, the running CPU goes on while it can (no preemption), and
    when it cannot, the lowest-numbered CPU that can runs. A run's schedule is kept
    short that way: trailing choices the default would make are dropped. The repr
    pastes back: ``explore(..., schedule=Schedule([0, 1]))``.

    >>> Schedule([0, 1, 1])
    Schedule([0, 1, 1])
    """

    choices: tuple[int, ...] = attrs.field(converter=_choices)

    def __repr__(self) -> str:
        return f"Schedule({list(self.choices)!r})"

    def __len__(self) -> int:
        return len(self.choices)


def _preemption(current: int | None, chosen: int) -> int:
    return 0 if current is None or chosen == current else 1


@attrs.define
class _Pct:
    """Strategy: PCT's priorities (higher runs) and priority change points."""

    priorities: dict[int, int]
    change_points: list[int]
    last_point: int = 0

    def choose(self, runnable: tuple[int, ...], current: int | None, point: int) -> int:
        for rank, change in enumerate(self.change_points):
            if self.last_point < change <= point and current is not None:
                self.priorities[current] = -1 - rank  # below every initial priority
        self.last_point = point
        return max(runnable, key=lambda cpu: self.priorities[cpu])


@attrs.frozen
class _Program:
    setup: Setup
    behavior: Behavior
    kernel_args: Mapping[str, Any]


@attrs.define(eq=False, repr=False)
class Run:
    """One executed schedule, and what came of it.

    Attributes:
        schedule: the :class:`Schedule` (short form; replays the same run).
        outcomes: per CPU, what its callable returned, or the exception it raised.
        error: why the run failed (a :class:`bpfns.KernelBug`, a :class:`Deadlock`, an
            :class:`bpfns.InvariantViolation`, or what the teardown raised); None if
            it did not.
        where: ``"CPU n"``, ``"teardown"`` or ``"check"``: where ``error`` happened.
        step: the kernel's operation counter at the error (:attr:`bpfns.Kernel.step`).
        preemptions: how many preemptions the schedule makes.
        log: what each CPU did, in order (:class:`Lane` entries; CPU -1 is the
            sequential teardown).
        cpus: how many CPUs ran.
    """

    schedule: Schedule
    outcomes: tuple[object, ...]
    error: BaseException | None
    where: str | None
    step: int
    preemptions: int
    log: tuple[Lane, ...]
    cpus: int
    _program: _Program
    _decisions: tuple[Decision, ...]

    @property
    def failed(self) -> bool:
        """Whether the run failed."""
        return self.error is not None

    @property
    def defect(self) -> str | None:
        """The defect (``"D7"``, ...) of the kernel bug the run hit; None for any other end.

        Typed for user code: ``run.error`` is any exception, this is its report's
        :attr:`bpfns.Report.defect` when it is a :class:`bpfns.KernelBug`.

        >>> from bpfns.concurrency import scenarios
        >>> scenarios.get("d11-exit").explore("rfc").shortest().defect
        'D11'
        """
        return self.error.report.defect if isinstance(self.error, KernelBug) else None

    def replay(self) -> Run:
        """Run the same program under the same schedule again (a fresh kernel).

        >>> from bpfns.concurrency import scenarios
        >>> first = scenarios.get("d7-map").explore("rfc").shortest()
        >>> again = first.replay()
        >>> type(again.error) is type(first.error), again.step == first.step
        (True, True)
        """
        program = self._program
        return replay(
            program.setup,
            self.schedule,
            behavior=program.behavior,
            kernel_args=dict(program.kernel_args),
        )

    def swimlane(self) -> str:
        """The run as a text swimlane diagram: one column per CPU, time going down.

        A picture, not a kernel function: what each CPU did, the locks it held (in
        brackets on its rows, ``|`` on the others'), the frees (``--``) and the fault
        (``!!``), then the schedule and the verdict.

        >>> from bpfns.concurrency import scenarios
        >>> run = scenarios.get("d7-map").explore("rfc").shortest()
        >>> run.swimlane().splitlines()[-1]
        'schedule Schedule([0, 0, 0, 1]), 1 preemption(s): UseAfterFree in teardown at step 5'
        """
        return swimlane_text(self)

    def svg(self) -> str:
        """The run as an SVG swimlane picture: lanes, lock holds as bars, the fault.

        What a notebook shows for a run (``_repr_svg_``).

        >>> from bpfns.concurrency import scenarios
        >>> scenarios.get("d7-map").explore("rfc").shortest().svg()[:4]
        '<svg'
        """
        return swimlane_svg(self)

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        what = "clean" if self.error is None else f"{type(self.error).__name__} in {self.where}"
        return f"<Run {self.schedule!r} {self.preemptions} preemptions: {what}>"


@attrs.define(repr=False)
class ExploreResult:
    r"""What an exploration found.

    Attributes:
        schedules: how many schedules (runs) were executed.
        exhaustive: True when every schedule within the preemption bound was executed.
        failures: the failing :class:`Run`\\ s, in the order they were found.
        strategy: ``"exhaustive"``, ``"pct"`` or ``"schedule"`` (one given schedule).
        first_failure: the number of the run (1-based) that failed first, None if none.
        runs: every run, in order, when explored with ``keep_runs=True`` (else empty).
    """

    schedules: int
    exhaustive: bool
    failures: list[Run]
    strategy: str
    first_failure: int | None = None
    runs: list[Run] = attrs.field(factory=list)

    @property
    def clean(self) -> bool:
        """Whether no run failed."""
        return not self.failures

    def shortest(self) -> Run:
        """The failing run with the fewest preemptions, then the shortest schedule.

        Raises:
            ValueError: if no run failed.

        >>> from bpfns.concurrency import scenarios
        >>> scenarios.get("d11-exit").explore("rfc").shortest().preemptions
        1
        """
        if not self.failures:
            raise ValueError("shortest: no run failed; there is no failing schedule to show")
        return min(self.failures, key=lambda run: (run.preemptions, len(run.schedule)))

    def __repr__(self) -> str:
        return (
            f"<ExploreResult {self.strategy}: {self.schedules} schedules, "
            f"exhaustive={self.exhaustive}, {len(self.failures)} failing>"
        )


# -- running one schedule -----------------------------------------------------------------


def _jobs(value: object, most: int) -> list[Callable[[], object]]:
    """``setup``'s result: 1 to ``most`` callables.

    Raises:
        TypeError: for anything else (the message shows how to write it).
    """
    jobs = list(value) if isinstance(value, list | tuple) else None
    if jobs is None or not 1 <= len(jobs) <= most or not all(callable(j) for j in jobs):
        raise TypeError(
            f"setup must return a list of 1 to {most} callables (one per CPU), got "
            f"{value!r}; wrap each call in a lambda: [lambda: task.map_create(), ...]"
        )
    return jobs


def _execute(program: _Program, pool: CpuPool, strategy: Strategy) -> Run:
    """Build the world, run its callables under ``strategy``, tear down, check."""
    k = Kernel(program.behavior, **program.kernel_args)
    if k.tracer is not None:
        raise ValueError(
            "explore: a traced kernel (trace=True) cannot be explored yet; drop trace "
            "from kernel_args and read the run's log and swimlane instead"
        )
    sched = Scheduler(pool, k, strategy)
    # The CPUs come up before setup, so that every namespace takes the careful
    # (lock-aware) path; they stay inactive until the jobs run.
    k.smp_init(sched)
    jobs = _jobs(program.setup(k), pool.n)
    outcomes = sched.run(jobs)
    error: BaseException | None = None
    where: str | None = None
    step = k.step
    for lane in sched.log:
        if lane.kind == "oops":
            bug = outcomes[lane.cpu][1]
            assert isinstance(bug, KernelBug)
            error, where, step = bug, f"CPU {lane.cpu}", bug.report.step
            break
    if sched.deadlock is not None and error is None:
        error, where, step = sched.deadlock, "deadlock", k.step
    log = sched.log  # the teardown's frees are noted here too (CPU -1)
    if sched.deadlock is None:  # after a deadlock the world is stuck mid-call: no teardown
        for stage, action in (("teardown", k.teardown), ("check", k.check)):
            try:
                action()
            except Exception as exc:  # any failure of the teardown or check fails the run
                if error is None:
                    error, where = exc, stage
                    step = exc.report.step if isinstance(exc, KernelBug) else k.step
                log.append(Lane(-1, "oops", f"{stage}: {exc}"))
                break
    if error is None:
        bugs = [r for r in k.sanitizer.reports if r.kind is not BugKind.SEMANTIC]
        if bugs:
            error, where, step = bug_of(bugs[0]), "recorded", bugs[0].step
    decisions = tuple(sched.decisions)
    return Run(
        schedule=_short(decisions),
        outcomes=tuple(exc if exc is not None else result for result, exc in outcomes),
        error=error,
        where=where,
        step=step,
        preemptions=sum(_preemption(cur, chosen) for _, cur, chosen in decisions),
        log=tuple(log),
        cpus=len(jobs),
        program=program,
        decisions=decisions,
    )


def _short(decisions: Sequence[Decision]) -> Schedule:
    """The schedule of ``decisions`` without the trailing choices the default makes."""
    choices = [chosen for _, _, chosen in decisions]
    n = len(choices)
    while n and decisions[n - 1][2] == default_choice(decisions[n - 1][0], decisions[n - 1][1]):
        n -= 1
    return Schedule(choices[:n])


# -- strategies ---------------------------------------------------------------------------

#: The most CPUs a program may use (the size of an exploration's thread pool).
MAX_CPUS = 4


@attrs.define
class _Node:
    """A decision point on the depth-first path: what could run, what was tried."""

    runnable: tuple[int, ...]
    current: int | None
    chosen: int
    tried: set[int]
    before: int  # preemptions before this point


def _exhaustive(program: _Program, pool: CpuPool, bound: int) -> Iterator[Run]:
    """Depth-first over every schedule with at most ``bound`` preemptions."""
    path: list[_Node] = []
    while True:
        run = _execute(program, pool, Follow(tuple(n.chosen for n in path)))
        yield run
        before = (
            0 if not path else path[-1].before + _preemption(path[-1].current, path[-1].chosen)
        )
        for runnable, current, chosen in run._decisions[len(path) :]:
            path.append(_Node(runnable, current, chosen, {chosen}, before))
            before += _preemption(current, chosen)
        while path:
            node = path[-1]
            alt = next(
                (
                    cpu
                    for cpu in node.runnable
                    if cpu not in node.tried
                    and node.before + _preemption(node.current, cpu) <= bound
                ),
                None,
            )
            if alt is not None:
                node.tried.add(alt)
                node.chosen = alt
                break
            path.pop()
        if not path:
            return


def _pct(program: _Program, pool: CpuPool, runs: int, seed: int, depth: int) -> Iterator[Run]:
    """PCT: ``runs`` runs, each with random priorities and ``depth - 1`` change points."""
    rng = random.Random(seed)
    first = _execute(program, pool, Follow(()))  # measures k, the number of points
    yield first
    k = max(1, sum(1 for lane in first.log if lane.kind in ("point", "unlock")))
    for _ in range(runs - 1):
        order = list(range(first.cpus))
        rng.shuffle(order)
        priorities = {cpu: depth + rank for rank, cpu in enumerate(order)}
        changes = sorted(rng.randint(1, k) for _ in range(depth - 1))
        yield _execute(program, pool, _Pct(priorities, changes))


# -- the public functions -------------------------------------------------------------------


def _program(setup: object, behavior: object, kernel_args: object) -> _Program:
    if not callable(setup):
        raise TypeError(f"setup must be a callable taking a Kernel, not {setup!r}")
    if not isinstance(behavior, Behavior):
        raise TypeError(f"behavior must be a bpfns.Behavior (RFC, FIXED, ...), not {behavior!r}")
    if kernel_args is None:
        kernel_args = {}
    if not isinstance(kernel_args, Mapping):
        raise TypeError(f"kernel_args must be a dict of Kernel() arguments, not {kernel_args!r}")
    return _Program(setup, behavior, dict(kernel_args))


def explore(
    setup: Setup,
    *,
    behavior: Behavior = RFC,
    kernel_args: Mapping[str, Any] | None = None,
    preemption_bound: int = 2,
    strategy: Literal["exhaustive", "pct"] = "exhaustive",
    runs: int = 100,
    seed: int = 0,
    depth: int = 3,
    schedule: Schedule | Sequence[int] | None = None,
    max_schedules: int = 100_000,
    stop_at_first: bool = False,
    keep_runs: bool = False,
) -> ExploreResult:
    """Run ``setup``'s callables concurrently under many schedules; collect the failures.

    Every run starts from a fresh ``Kernel(behavior, **kernel_args)``: ``setup(k)``
    builds the world sequentially and returns one callable per simulated CPU (1 to
    4); they run concurrently, then the world is torn down and checked (the module
    docstring says what fails a run). ``strategy="exhaustive"`` runs every schedule
    with at most ``preemption_bound`` preemptions (or the first ``max_schedules``);
    ``strategy="pct"`` runs ``runs`` random PCT schedules of bug depth ``depth`` from
    ``seed``; ``schedule=`` runs that one schedule. ``stop_at_first`` ends at the first
    failing run; ``keep_runs`` keeps every run (:attr:`ExploreResult.runs`), not only
    the failing ones.

    There is no kernel function for this: it is what a kernel developer does with many
    machines and much luck, made deterministic (the CPUs are threads that take turns at
    the C code's preemption points: locks, RCU, refcounts, fd installs; see the
    concurrency page of the docs).

    Raises:
        TypeError: for a ``setup`` that is not callable or does not return a list of
            callables, a bad ``behavior``, ``kernel_args`` or ``schedule``.
        ValueError: for an unknown strategy, a bound, count or depth out of range, or
            ``trace=True`` in ``kernel_args``.

    >>> import attrs, bpfns
    >>> def setup(k):
    ...     host = k.init_task
    ...     child = host.clone(bpfns.CLONE_NEWBPF)
    ...     host.map_create()  # with id_end=2 the initial namespace is now full
    ...     return [lambda: child.map_create(), lambda: child.map_get_fd_by_id(1)]
    >>> rfc_but_d1 = attrs.evolve(bpfns.RFC, d1_rollback_at_failed_level=False)
    >>> result = explore(setup, behavior=rfc_but_d1, kernel_args={"id_end": 2})
    >>> result.exhaustive, type(result.shortest().error).__name__
    (True, 'UseAfterFree')
    >>> fixed = explore(setup, behavior=bpfns.FIXED, kernel_args={"id_end": 2})
    >>> fixed.clean, fixed.exhaustive
    (True, True)
    """
    program = _program(setup, behavior, kernel_args)
    check_int("preemption_bound", preemption_bound, 0, 64, "")
    check_int("runs", runs, 1, 10**9, "")
    check_int("seed", seed, 0, 2**64 - 1, "")
    check_int("depth", depth, 1, 64, "")
    check_int("max_schedules", max_schedules, 1, 10**9, "")
    if strategy not in ("exhaustive", "pct"):
        raise ValueError(f"strategy must be 'exhaustive' or 'pct', not {strategy!r}")
    with CpuPool(MAX_CPUS) as pool:
        if schedule is not None:
            fixed = schedule if isinstance(schedule, Schedule) else Schedule(schedule)
            name, runs_of = "schedule", iter([_execute(program, pool, Follow(fixed.choices))])
        elif strategy == "pct":
            name, runs_of = "pct", _pct(program, pool, runs, seed, depth)
        else:
            name, runs_of = "exhaustive", _exhaustive(program, pool, preemption_bound)
        result = ExploreResult(0, False, [], name)
        for run in runs_of:
            result.schedules += 1
            if keep_runs:
                result.runs.append(run)
            if run.failed:
                result.failures.append(run)
                if result.first_failure is None:
                    result.first_failure = result.schedules
                if stop_at_first:
                    return result
            if name == "exhaustive" and result.schedules >= max_schedules:
                return result
        result.exhaustive = name == "exhaustive"
    return result


def replay(
    setup: Setup,
    schedule: Schedule | Sequence[int],
    *,
    behavior: Behavior = RFC,
    kernel_args: Mapping[str, Any] | None = None,
) -> Run:
    """Run ``setup``'s callables once, under ``schedule``: the same run every time.

    Raises:
        TypeError: as :func:`explore`.
        ValueError: if the schedule chooses, at some decision point, a CPU that cannot
            run there (it belongs to another program or behaviour).

    >>> import bpfns
    >>> def setup(k):
    ...     t = k.init_task
    ...     return [lambda: t.map_create(), lambda: t.map_create()]
    >>> [replay(setup, s).outcomes for s in ([0], [1])]
    [(0, 1), (1, 0)]
    """
    program = _program(setup, behavior, kernel_args)
    fixed = schedule if isinstance(schedule, Schedule) else Schedule(schedule)
    follow = Follow(fixed.choices)
    with CpuPool(MAX_CPUS) as pool:
        run = _execute(program, pool, follow)
    if follow.mismatch is not None:
        raise ValueError(
            f"replay: decision {follow.mismatch} of {fixed!r} chooses a CPU that cannot run "
            "there; the schedule belongs to another program, behaviour or kernel_args"
        )
    return run
