"""Simulated CPUs: the RFC's races (D7, D11) found, and the exploration machinery itself."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import attrs
import pytest

import bpfns
from bpfns import CLONE_NEWBPF, FIXED, RFC, BpfnsError, Kernel, NsState, ObjType
from bpfns.concurrency import (
    Deadlock,
    Schedule,
    SchedulerStalled,
    _scheduler,
    explore,
    replay,
    scenarios,
)
from bpfns.concurrency._scheduler import CpuPool, Follow, Scheduler

RFC_BUT_D1 = attrs.evolve(RFC, d1_rollback_at_failed_level=False)


def d7_setup(k: Kernel) -> list[Callable[[], object]]:
    """The issue's program, as written."""
    host = k.init_task
    child = host.clone(bpfns.CLONE_NEWBPF)
    host.map_create()  # with id_end=2 the initial namespace is now full
    return [child.map_create, lambda: child.map_get_fd_by_id(1)]


# -- D7 and D11: found under RFC, absent under FIXED (exhaustive, bound 2) ---------------


def test_d7_found_under_rfc_exactly_where_the_getter_runs_between_levels() -> None:
    result = explore(d7_setup, behavior=RFC_BUT_D1, kernel_args={"id_end": 2}, preemption_bound=2)
    assert result.exhaustive and result.schedules > 10
    assert result.failures, "the D7 use-after-free must be found"
    for run in result.failures:
        assert isinstance(run.error, bpfns.UseAfterFree)
        assert run.error.report.defect == "D7"
        # the getter got an fd (its lookup ran while only level 1 was published)
        assert run.outcomes[1] == 0 and run.outcomes[0] == 0  # D3: map_create returns 0
    clean = list(result.runs) if result.runs else []
    assert clean == []  # runs are kept only on request
    first = result.shortest()
    assert first.preemptions == 1
    kinds = [(lane.cpu, lane.what) for lane in first.log if lane.kind in ("unlock", "point")]
    level1 = kinds.index((0, "spin_unlock_bh(bpf_idr_lock[MAP]): level 1 = 1"))
    getter = kinds.index((1, "spin_lock_bh(bpf_idr_lock[MAP]): idr_find(1)"))
    level0 = kinds.index((0, "spin_lock_bh(bpf_idr_lock[MAP]) for level 0"))
    assert level1 < getter < level0


def test_d7_every_clean_run_of_rfc_has_the_getter_outside_the_window() -> None:
    result = explore(d7_setup, behavior=RFC_BUT_D1, kernel_args={"id_end": 2}, keep_runs=True)
    failing = {id(run) for run in result.failures}
    for run in result.runs:
        if id(run) not in failing:
            assert isinstance(run.outcomes[1], BpfnsError)
            assert run.outcomes[1].errorcode == "ENOENT"
    assert len(result.runs) == result.schedules


@pytest.mark.parametrize("name", ["d7-map", "d7-prog", "d11-exit", "d11-unshare"])
def test_the_race_defects_are_found_under_rfc_and_absent_under_fixed(name: str) -> None:
    scenario = scenarios.get(name)
    rfc = scenario.check("rfc", preemption_bound=2)
    assert rfc.verdict == "UseAfterFree" and rfc.result.exhaustive
    defect = "D7" if name.startswith("d7") else "D11"
    assert {run.error.report.defect for run in rfc.result.failures} == {defect}  # type: ignore[union-attr]
    fixed = scenario.check("fixed", preemption_bound=2)
    assert fixed.verdict == "clean" and fixed.result.exhaustive and fixed.ok


def test_d7_fixed_publishes_only_after_every_level_and_the_id_fields() -> None:
    result = explore(
        scenarios.get("d7-window").setup, behavior=FIXED, keep_runs=True, preemption_bound=3
    )
    assert result.clean
    ids = {run.outcomes[1] for run in result.runs}
    assert 0 not in ids and 1 in ids  # found with its id, or not found at all
    assert any(isinstance(o, BpfnsError) and o.errorcode == "ENOENT" for o in ids)


def test_d7_benign_window_seen_under_rfc() -> None:
    check = scenarios.get("d7-window").check("rfc")
    assert check.observed is True and check.verdict == "clean"


def _first(
    log: tuple[bpfns.concurrency.Lane, ...], cpu: int | None, prefix: str = "", start: int = 0
) -> int | None:
    """The first entry at or after ``start`` by ``cpu`` (None: any) starting with ``prefix``."""
    for i in range(start, len(log)):
        if (cpu is None or log[i].cpu == cpu) and log[i].what.startswith(prefix):
            return i
    return None


def test_d11_rfc_fails_exactly_when_the_exit_runs_inside_the_readers_window() -> None:
    """The reader fails if the nsproxy is freed before it reads it, or the namespace
    drops to zero before its refcount_inc (both inside the RCU read-side section)."""
    result = scenarios.get("d11-exit").explore("rfc", keep_runs=True)
    assert result.failures and len(result.failures) < result.schedules
    kinds = set()
    for run in result.runs:
        log = run.log
        load = _first(log, 0, "nsproxy->bpf_ns")
        if load is None:  # the opener found the task gone, or its nsproxy NULL
            assert not run.failed
            continue
        end = len(log)
        resumed = _first(log, 0, start=load + 1) or end
        freed = _first(log, None, "free_nsproxy of task 3")
        nsproxy_uaf = freed is not None and load < freed < resumed
        get = _first(log, 0, "get_bpfns", load)
        put = _first(log, 1, "put_bpfns")
        ns_uaf = False
        if get is not None and put is not None:
            dec = _first(log, 1, start=put + 1) or end  # CPU 1 went on past its put
            ns_uaf = dec < (_first(log, 0, start=get + 1) or end)
        assert run.failed == (nsproxy_uaf or ns_uaf)
        if run.failed:
            kinds.add("nsproxy" if nsproxy_uaf else "refcount")
            assert run.error.report.defect == "D11"  # type: ignore[union-attr]
    assert kinds == {"nsproxy", "refcount"}


def test_d11_fixed_holds_task_lock_so_the_exit_waits() -> None:
    result = scenarios.get("d11-exit").explore("fixed", keep_runs=True)
    waits = [
        lane
        for run in result.runs
        for lane in run.log
        if lane.kind == "wait" and "task_lock" in lane.what
    ]
    assert waits, "some schedule must make one CPU wait for the other's task_lock"
    outcomes = {type(run.outcomes[0]).__name__ for run in result.runs}
    assert outcomes == {"int", "BpfnsError"}  # an fd, or ESRCH/ENOENT


@pytest.mark.parametrize("scenario", scenarios.CATALOGUE, ids=lambda s: s.name)
@pytest.mark.parametrize("behavior", ["rfc", "fixed"])
def test_catalogue_expectations_hold(scenario: scenarios.Scenario, behavior: str) -> None:
    check = scenario.check(behavior)
    assert check.ok, (check.verdict, check.observed, scenario.expect[behavior])
    assert check.result.exhaustive


def test_grace_period_waits_for_the_reader() -> None:
    result = scenarios.get("grace-period").explore("rfc", keep_runs=True)
    waited = [
        run
        for run in result.runs
        if any(lane.kind == "wait" and "grace period" in lane.what for lane in run.log)
    ]
    assert waited
    for run in waited:
        before, after = run.outcomes[0]  # type: ignore[misc]
        assert before is NsState.DESTROYED or after is not NsState.FREED
        assert after is NsState.DESTROYED  # destroyed under the reader, freed after it


def test_last_close_lookups_get_enoent_or_a_reference() -> None:
    result = scenarios.get("last-close").explore("rfc", keep_runs=True)
    errors = set()
    for run in result.runs:
        got = run.outcomes[1]
        errors.add(got.errorcode if isinstance(got, BpfnsError) else "fd")
    assert errors == {"ENOENT", "fd"}
    messages = {
        str(run.outcomes[1]) for run in result.runs if isinstance(run.outcomes[1], BpfnsError)
    }
    assert any("being freed (refcount 0)" in m for m in messages)


def test_link_lookup_gets_eagain_until_settled() -> None:
    result = scenarios.get("link-settle").explore("fixed", keep_runs=True)
    codes = {
        run.outcomes[1].errorcode if isinstance(run.outcomes[1], BpfnsError) else "fd"
        for run in result.runs
    }
    assert codes == {"EAGAIN", "ENOENT", "fd"}


# -- schedules, replay, PCT -------------------------------------------------------------


def test_schedule_repr_pastes_back_and_replays_the_same_error_at_the_same_step() -> None:
    result = explore(d7_setup, behavior=RFC_BUT_D1, kernel_args={"id_end": 2})
    for run in result.failures:
        schedule = eval(repr(run.schedule), {"Schedule": Schedule})
        again = replay(d7_setup, schedule, behavior=RFC_BUT_D1, kernel_args={"id_end": 2})
        assert type(again.error) is type(run.error) and again.step == run.step
        assert str(again.error) == str(run.error)
        assert again.log == run.log
        one = explore(d7_setup, behavior=RFC_BUT_D1, kernel_args={"id_end": 2}, schedule=schedule)
        assert one.schedules == 1 and not one.exhaustive and len(one.failures) == 1
        assert run.replay().step == run.step


def test_replay_of_a_schedule_of_another_program_is_refused() -> None:
    def one_cpu(k: Kernel) -> list[Callable[[], object]]:
        t = k.init_task
        return [t.map_create, t.map_create]

    with pytest.raises(ValueError, match="decision 0 of Schedule"):
        replay(one_cpu, [5])
    assert replay(one_cpu, (1,)).outcomes == (1, 0)


def test_pct_finds_d7_and_is_deterministic_per_seed() -> None:
    def pct(seed: int) -> bpfns.concurrency.ExploreResult:
        return explore(
            d7_setup,
            behavior=RFC_BUT_D1,
            kernel_args={"id_end": 2},
            strategy="pct",
            runs=40,
            seed=seed,
            depth=2,
        )

    firsts = []
    for seed in range(6):
        result, again = pct(seed), pct(seed)
        assert result.strategy == "pct" and not result.exhaustive and result.schedules == 40
        assert [r.schedule for r in again.failures] == [r.schedule for r in result.failures]
        firsts.append(result.first_failure)
    assert all(first is not None for first in firsts)


def test_stop_at_first_and_max_schedules() -> None:
    args = {"behavior": RFC_BUT_D1, "kernel_args": {"id_end": 2}}
    first = explore(d7_setup, stop_at_first=True, **args)  # type: ignore[arg-type]
    assert len(first.failures) == 1 and first.schedules == first.first_failure
    assert not first.exhaustive
    capped = explore(d7_setup, max_schedules=3, **args)  # type: ignore[arg-type]
    assert capped.schedules == 3 and not capped.exhaustive


def test_bound_zero_runs_only_the_non_preemptive_schedules() -> None:
    result = explore(d7_setup, behavior=RFC_BUT_D1, kernel_args={"id_end": 2}, preemption_bound=0)
    assert result.exhaustive and result.clean
    assert result.schedules == 2  # CPU 0 first, or CPU 1 first; each runs to its end


def test_more_preemptions_reach_more_schedules() -> None:
    counts = [
        explore(d7_setup, behavior=FIXED, kernel_args={"id_end": 2}, preemption_bound=b).schedules
        for b in range(4)
    ]
    assert counts == sorted(counts) and len(set(counts)) == 4


# -- the scheduler itself ---------------------------------------------------------------


@attrs.define
class _Ctx:
    current: object = None


@attrs.define
class _First:
    def choose(self, runnable: tuple[int, ...], current: int | None, point: int) -> int:
        return current if current is not None else runnable[0]


@attrs.define
class _Alternate:
    def choose(self, runnable: tuple[int, ...], current: int | None, point: int) -> int:
        others = [c for c in runnable if c != current]
        return others[0] if others else runnable[0]


def test_opposite_lock_order_deadlocks_and_the_waits_are_named() -> None:
    with CpuPool(2) as pool:
        sched = Scheduler(pool, _Ctx(), _Alternate())

        def ab() -> None:
            sched.spin_lock("A", "lock A")
            sched.spin_lock("B", "lock B")

        def ba() -> None:
            sched.spin_lock("B", "lock B")
            sched.spin_lock("A", "lock A")

        outcomes = sched.run([ab, ba])
        assert isinstance(sched.deadlock, Deadlock)
        assert sched.deadlock.waits == {0: "B (held by CPU 1)", 1: "A (held by CPU 0)"}
        assert outcomes == [(None, None), (None, None)]
        # the pool's threads are reusable after an abort
        again = Scheduler(pool, _Ctx(), _First())
        assert again.run([lambda: 1, lambda: 2]) == [(1, None), (2, None)]


def test_a_lock_taken_twice_and_a_grace_period_inside_a_reader_deadlock() -> None:
    with CpuPool(1) as pool:
        sched = Scheduler(pool, _Ctx(), _First())

        def twice() -> None:
            sched.spin_lock("A", "lock A")
            sched.spin_lock("A", "lock A again")

        sched.run([twice])
        assert sched.deadlock is not None and sched.deadlock.waits == {0: "A (held by CPU 0)"}
        sched = Scheduler(pool, _Ctx(), _First())

        def reader() -> None:
            sched.rcu_read_lock()
            sched.synchronize_rcu()

        sched.run([reader])
        assert sched.deadlock is not None and "synchronize_rcu" in sched.deadlock.waits[0]


def test_a_job_that_blocks_outside_the_simulation_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_scheduler, "STALL_SECONDS", 0.2)
    gate = threading.Event()
    pool = CpuPool(1)
    sched = Scheduler(pool, _Ctx(), _First())
    with pytest.raises(SchedulerStalled, match="outside the simulation"):
        sched.run([gate.wait])
    gate.set()
    pool.close()

    def setup(k: Kernel) -> list[Callable[[], object]]:
        t = k.init_task
        never = threading.Event()
        return [t.map_create, never.wait]

    started = time.monotonic()
    with pytest.raises(SchedulerStalled):  # the pool closes: no hang, the CPU unwinds
        explore(setup, schedule=[1])
    assert time.monotonic() - started < 5


def test_closing_a_pool_mid_run_unwinds_the_waiting_cpus() -> None:
    pool = CpuPool(2)
    sched = Scheduler(pool, _Ctx(), Follow((0, 0, 1)))  # CPU 0 takes A, then CPU 1 runs
    reached = threading.Event()

    def waits() -> None:
        sched.spin_lock("A", "lock A")
        reached.set()
        sched.preempt("hand over")  # CPU 1 now runs, and blocks outside the simulation
        sched.spin_unlock("A", "unlock A")

    gate = threading.Event()
    runner = threading.Thread(target=lambda: sched.run([waits, gate.wait]), daemon=True)
    runner.start()
    assert reached.wait(5)
    pool.close()  # CPU 0 waits for its turn: it unwinds; CPU 1 is left behind
    gate.set()
    runner.join(5)
    assert not runner.is_alive()


def test_an_oops_ends_the_cpus_read_side_section_and_a_scheduler_runs_again() -> None:
    with CpuPool(2) as pool:
        sched = Scheduler(pool, _Ctx(), _First())

        def dies() -> None:
            sched.rcu_read_lock()
            raise RuntimeError("oops")

        def waits() -> str:
            sched.synchronize_rcu()
            return "grace period over"

        outcomes = sched.run([dies, waits])
        assert isinstance(outcomes[0][1], RuntimeError) and outcomes[1] == (
            "grace period over",
            None,
        )
        with pytest.raises(ValueError, match="at least as many CPUs"):
            sched.run([waits, waits, waits])
        inside = Scheduler(pool, _Ctx(), _First())
        nested = inside.run([lambda: inside.run([waits])])
        assert isinstance(nested[0][1], ValueError)  # a run inside a run is refused
        assert sched.run([waits]) == [("grace period over", None)]  # a second run
        assert [lane.kind for lane in sched.log] == ["start", "point", "done"]


def test_hooks_are_inert_outside_a_run() -> None:
    with CpuPool(1) as pool:
        sched = Scheduler(pool, _Ctx(), _First())
        sched.preempt("x")
        sched.spin_lock("A", "x")
        sched.spin_unlock("A", "x")
        sched.rcu_read_lock()
        sched.rcu_read_unlock()
        sched.synchronize_rcu()
        sched.note("outside")
        assert sched.points == 0 and [lane.cpu for lane in sched.log] == [-1]


# -- the kernel side -------------------------------------------------------------------


def test_smp_kernels_take_the_careful_path_and_stay_consistent() -> None:
    plain, smp = Kernel(), Kernel()
    early = [k.init_ns.create_child(name="early") for k in (plain, smp)]
    with CpuPool(1) as pool:
        smp.smp_init(Scheduler(pool, smp, _First()))
        assert early[1].fast_owner is None and early[0].fast_owner is plain
        with pytest.raises(ValueError, match="already has its simulated CPUs"):
            smp.smp_init(Scheduler(pool, smp, _First()))
        for k in (plain, smp):
            child = k.init_task.clone(CLONE_NEWBPF)
            fds = [child.map_create(), child.prog_load(), k.init_task.map_create()]
            child.close(fds[0])
            child.unshare(CLONE_NEWBPF)
            child.map_create()
            k.check()
        assert all(ns.fast_owner is None for ns in smp.namespaces())
        assert all(ns.fast_owner is plain for ns in plain.namespaces())
        assert plain.snapshot() == smp.snapshot()
        for k in (plain, smp):
            assert [nr for nr, _ in k.init_ns.idr[ObjType.MAP]] == [2, 3]


def test_sequential_rcu_readers() -> None:
    k = Kernel()
    k.init_ns.create_child().put()
    k.rcu_read_lock()
    with pytest.raises(ValueError, match="inside an RCU read-side section"):
        k.synchronize_rcu()
    k.rcu_read_unlock()
    assert k.synchronize_rcu() == 1
    with pytest.raises(ValueError, match="no read-side section"):
        k.rcu_read_unlock()


# -- misuse ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"setup": 5}, TypeError, "setup must be a callable"),
        ({"setup": lambda k: 5}, TypeError, "list of 1 to 4 callables"),
        ({"setup": lambda k: [1]}, TypeError, "wrap each call in a lambda"),
        ({"setup": lambda k: [print] * 5}, TypeError, "list of 1 to 4"),
        ({"behavior": "rfc"}, TypeError, "bpfns.Behavior"),
        ({"kernel_args": [("id_end", 2)]}, TypeError, "kernel_args must be a dict"),
        ({"kernel_args": {"trace": True}}, ValueError, "cannot be explored yet"),
        ({"strategy": "random"}, ValueError, "'exhaustive' or 'pct'"),
        ({"preemption_bound": -1}, ValueError, "preemption_bound"),
        ({"schedule": "01"}, TypeError, "sequence of CPU numbers"),
        ({"schedule": [0, -1]}, TypeError, "ints >= 0"),
        ({"schedule": [True]}, TypeError, "ints >= 0"),
    ],
)
def test_explore_misuse(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    args: dict[str, object] = {"setup": d7_setup, **kwargs}
    with pytest.raises(error, match=match):
        explore(**args)  # type: ignore[arg-type]


def test_shortest_of_a_clean_result_and_reprs() -> None:
    result = explore(d7_setup, behavior=FIXED, kernel_args={"id_end": 2}, preemption_bound=0)
    with pytest.raises(ValueError, match="no run failed"):
        result.shortest()
    assert repr(result) == "<ExploreResult exhaustive: 2 schedules, exhaustive=True, 0 failing>"
    with pytest.raises(ValueError, match="behavior must be one of"):
        scenarios.get("d7-map").explore("posted")
    with pytest.raises(ValueError, match="the catalogue has: d7-map"):
        scenarios.get("d8")
    run = scenarios.get("d7-map").explore("rfc").shortest()
    assert repr(run) == "<Run Schedule([0, 0, 0, 1]) 1 preemptions: UseAfterFree in teardown>"
    assert len(run.schedule) == 4 and run.failed


# -- pictures --------------------------------------------------------------------------


def test_swimlane_text_marks_lock_holds_the_free_and_the_fault() -> None:
    d7 = scenarios.get("d7-map").explore("rfc").shortest().swimlane()
    lines = d7.splitlines()
    assert lines[0].split() == ["CPU", "0", "|", "CPU", "1"]
    assert any(line.lstrip().startswith("-- free <BpfMap") for line in lines)
    assert any(line.startswith("!! teardown: BUG: KASAN: slab-use-after-free") for line in lines)
    assert lines[-1].startswith("schedule Schedule([0, 0, 0, 1]), 1 preemption(s): UseAfterFree")
    held = scenarios.get("d11-exit").explore("fixed", keep_runs=True)
    texts = [run.swimlane() for run in held.runs]
    assert any("[task_lock(3)]" in text for text in texts)  # the reader's hold, shown


def test_swimlane_svg_is_well_formed_with_a_bar_per_lock_hold() -> None:
    result = scenarios.get("d11-exit").explore("fixed", keep_runs=True)
    bars = 0
    for run in result.runs:
        root = ET.fromstring(run.svg())
        rects = [
            r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "lock"
        ]
        bars += len(rects)
        assert all(float(r.get("height", "0")) > 0 for r in rects)
    assert bars
    failing = scenarios.get("d7-map").explore("rfc").shortest()
    assert "#b00020" in failing._repr_svg_()


def test_a_cpu_that_finishes_holding_a_lock_strands_its_waiter() -> None:
    with CpuPool(2) as pool:
        sched = Scheduler(pool, _Ctx(), _Alternate())

        def keeps() -> None:
            sched.spin_lock("A", "lock A")
            sched.preempt("after A")

        sched.run([keeps, lambda: sched.spin_lock("A", "lock A")])
        assert sched.deadlock is not None and sched.deadlock.waits == {1: "A (held by CPU 0)"}
        assert [lane.kind for lane in sched.log if lane.cpu == 0][-1] == "done"


def test_nested_read_side_sections_end_at_the_outermost_unlock() -> None:
    with CpuPool(2) as pool:
        sched = Scheduler(pool, _Ctx(), _Alternate())
        order: list[str] = []

        def reader() -> None:
            sched.rcu_read_lock()
            sched.rcu_read_lock()
            sched.rcu_read_unlock()
            order.append("inner unlock done")
            order.append("outer unlock next")
            sched.rcu_read_unlock()

        def writer() -> None:
            sched.preempt("let the reader in")
            sched.synchronize_rcu()
            order.append("grace period")

        sched.run([reader, writer])
        assert order == ["inner unlock done", "outer unlock next", "grace period"]
        assert any(lane.kind == "wait" for lane in sched.log if lane.cpu == 1)


def test_an_explored_deadlock_is_a_failure_without_teardown() -> None:
    def setup(k: Kernel) -> list[Callable[[], object]]:
        def stuck() -> None:
            k.rcu_read_lock()
            k.synchronize_rcu()

        return [stuck]

    result = explore(setup)
    (run,) = result.failures
    assert isinstance(run.error, Deadlock) and run.where == "deadlock"
    assert not any(lane.what.startswith("teardown") for lane in run.log)


def test_recorded_reports_fail_the_run_and_a_later_teardown_failure_is_logged() -> None:
    recorded = explore(
        scenarios.get("d7-map").setup,
        behavior=scenarios.rfc_for("D7"),
        kernel_args={"id_end": 2, "on_bug": "record"},
    )
    assert recorded.failures and {r.where for r in recorded.failures} == {"recorded"}
    assert all(isinstance(r.error, bpfns.UseAfterFree) for r in recorded.failures)

    def setup(k: Kernel) -> list[Callable[[], object]]:  # D11 on a CPU, D2 at teardown
        # (the D2 needs the grace period that frees the namespace before the teardown's
        # unlink frees the pinned map)
        host = k.init_task
        opener = host.clone()
        target = host.clone(CLONE_NEWBPF)
        target.obj_pin(target.map_create(), "/sys/fs/bpf/m")
        return [lambda: opener.open_proc_ns(target.pid), target.exit, k.synchronize_rcu]

    both = explore(setup, behavior=RFC)
    twice = [
        run
        for run in both.failures
        if run.where == "CPU 0" and any(lane.what.startswith("teardown:") for lane in run.log)
    ]
    assert twice and all(run.error.report.defect == "D11" for run in twice)  # type: ignore[union-attr]


def test_replay_notes_the_first_impossible_choice() -> None:
    def two(k: Kernel) -> list[Callable[[], object]]:
        t = k.init_task
        return [t.map_create, t.map_create]

    with pytest.raises(ValueError, match="decision 0 of Schedule"):
        replay(two, [7, 7, 7])


def test_an_svg_bar_runs_to_the_end_for_a_lock_never_released() -> None:
    run = scenarios.get("d7-map").explore("rfc").shortest()
    held = attrs.evolve(
        run, log=(*run.log[:3], bpfns.concurrency.Lane(0, "note", "stuck", ("bpf_idr_lock[MAP]",)))
    )
    root = ET.fromstring(held.svg())
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "lock"]
    assert len(bars) == 1 and float(bars[0].get("height", "0")) == 18  # its row, to the end


@pytest.mark.parametrize(
    ("use", "where"),
    [
        (lambda t, fd: t.obj_get_info_by_fd(fd), "bpf_obj_get_info_by_fd"),
        (lambda t, fd: t.read_fdinfo(t, fd), "bpf_obj_show_fdinfo"),
        (lambda t, fd: t.obj_pin(fd, "/sys/fs/bpf/late"), "bpf_obj_inc"),
    ],
)
def test_every_access_through_the_dangling_fd_is_reported(
    use: Callable[[bpfns.Task, int], object], where: str
) -> None:
    def setup(k: Kernel) -> list[Callable[[], object]]:
        host = k.init_task
        child = host.clone(CLONE_NEWBPF)
        host.map_create()

        def getter() -> object:
            fd = child.map_get_fd_by_id(1)
            child.map_get_next_id(0)  # preemption points: the creator may free the map now
            return use(child, fd)

        return [child.map_create, getter]

    result = explore(setup, behavior=scenarios.rfc_for("D7"), kernel_args={"id_end": 2})
    wheres = {run.error.report.where for run in result.failures}  # type: ignore[union-attr]
    assert where in wheres
    on_cpu = [run for run in result.failures if run.where == "CPU 1"]
    assert on_cpu and all(run.error.report.where == where for run in on_cpu)  # type: ignore[union-attr]


def test_cli_explore(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfns._cli import main  # noqa: PLC0415 - the CLI, as the console script runs it

    assert main(["explore", "--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["scenario", "rfc", "fixed", "what"]
    assert [line.split()[0] for line in listing[1:]] == [s.name for s in scenarios.CATALOGUE]
    assert main(["explore", "d7-map"]) == 1
    out = capsys.readouterr().out
    assert "expected UseAfterFree, got UseAfterFree" in out
    assert "shortest failing schedule:" in out and "| CPU 1" in out
    assert main(["explore", "d7-map", "--behavior", "fixed", "--bound", "1"]) == 0
    assert "0 failing; expected clean, got clean" in capsys.readouterr().out
    assert main(["explore", "d7-window"]) == 0
    assert "reports id 0 (get_info before map->id is set): seen" in capsys.readouterr().out
    assert main(["explore", "nope"]) == 2
    assert "the catalogue has: d7-map" in capsys.readouterr().err
    assert main(["explore"]) == 2
    assert "name a scenario" in capsys.readouterr().err


# -- Hypothesis: schedules, and the machine's concurrent rule ------------------------


def test_hypothesis_shrinks_a_d7_schedule_to_one_preemption() -> None:
    from hypothesis import find, settings  # noqa: PLC0415 - the testing extra

    from bpfns.testing import schedules  # noqa: PLC0415

    def fails(schedule: Schedule) -> bool:
        return replay(d7_setup, schedule, behavior=RFC_BUT_D1, kernel_args={"id_end": 2}).failed

    shrunk = find(schedules(), fails, settings=settings(database=None, derandomize=True))
    run = replay(d7_setup, shrunk, behavior=RFC_BUT_D1, kernel_args={"id_end": 2})
    assert run.preemptions == 1 and isinstance(run.error, bpfns.UseAfterFree)
    assert (
        shrunk
        == explore(d7_setup, behavior=RFC_BUT_D1, kernel_args={"id_end": 2}).shortest().schedule
    )
    with pytest.raises(ValueError, match="cpus must be 1 to 4"):
        schedules(cpus=5)


def _machine(behavior: bpfns.Behavior) -> type:
    from bpfns.testing import BpfnsMachine  # noqa: PLC0415 - the testing extra

    class Concurrent(BpfnsMachine):
        concurrency = True
        id_end = 2
        max_level = 2

    Concurrent.behavior = behavior
    return Concurrent


def test_the_machines_concurrent_rule_reaches_d7_and_says_it_is_not_linearizable() -> None:
    d7_only = attrs.evolve(FIXED, d7_publication_not_atomic=True)
    m = _machine(d7_only)()
    host = m.boot()
    child = m.clone(host, new_ns=True)
    m.map_create(host)  # init is full: the child's next map fails at level 0
    failing = explore(d7_setup, behavior=d7_only, kernel_args={"id_end": 2}).shortest()
    with pytest.raises(bpfns.InvariantViolation, match="opened None; the model has"):
        m.concurrent_create_and_lookup(child, 1, failing.schedule)  # a freed map's fd
    m.teardown()  # the example failed: its error stands, nothing more is checked
    assert m.cpus is not None and not m.cpus._threads
    clean = _machine(FIXED)()
    host = clean.boot()
    child = clean.clone(host, new_ns=True)
    clean.map_create(host)
    got = clean.concurrent_create_and_lookup(child, 1, failing.schedule)
    assert got.values == ()  # ENOSPC and ENOENT: nothing to track
    clean.teardown()


def test_the_concurrent_machine_runs_clean_under_fixed() -> None:
    from hypothesis import HealthCheck, settings  # noqa: PLC0415 - the testing extra
    from hypothesis.stateful import run_state_machine_as_test  # noqa: PLC0415

    machine = _machine(FIXED)
    machine.id_end = 4
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=20,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_concurrent_rule_with_an_exited_task_or_a_kernel_bug() -> None:
    m = _machine(FIXED)()
    host = m.boot()
    gone = m.clone(host, new_ns=False)
    m.exit(gone)
    assert m.concurrent_create_and_lookup(gone, 1, Schedule([])).values == ()
    m.teardown()
    d1 = _machine(attrs.evolve(FIXED, d1_rollback_at_failed_level=True))()
    host = d1.boot()
    child = d1.clone(host, new_ns=True)
    d1.map_create(host)  # init is full: the child's create fails at level 0 (D1)
    with pytest.raises(bpfns.UninitializedRead, match="D1"):
        d1.concurrent_create_and_lookup(child, 1, Schedule([]))
    d1.teardown()


def test_the_machine_refuses_the_exit_of_a_task_inside_link_create() -> None:
    m = _machine(FIXED)()
    host = m.boot()
    task = m.clone(host, new_ns=False)
    prog = m.prog_load(m.map_create(task))
    m.prime(prog)
    assert m.exit(task) is task and task.alive
    m.teardown()


def test_d11_recorded_the_opener_gets_enoent_and_the_namespace_stays_freed_once() -> None:
    scenario = scenarios.get("d11-exit")
    result = explore(
        scenario.setup,
        behavior=scenario.behaviors["rfc"],
        kernel_args={"on_bug": "record"},
        keep_runs=True,
    )
    refcount = [
        run
        for run in result.failures
        if "addition on 0" in str(run.error)  # the namespace went to zero first
    ]
    assert refcount and all(run.where == "recorded" for run in refcount)
    for run in refcount:
        opened = run.outcomes[0]
        assert isinstance(opened, BpfnsError) and opened.errorcode == "ENOENT"
        assert run.error.report.where == "get_bpfns"  # type: ignore[union-attr]


def test_d2_teardown_depends_on_which_goes_last() -> None:
    result = scenarios.get("d2-teardown").explore("rfc", keep_runs=True)
    assert 0 < len(result.failures) < result.schedules
    for run in result.runs:
        # delayed_free_bpfns ran (the exit had destroyed the namespace before the grace
        # period) before bpf_free_obj_id of the map was done: only then is it freed memory
        grace = _first(run.log, 1, "returned")
        assert grace is not None
        ns_freed = run.log[grace].what == "returned 1"
        map_freed = _first(run.log, None, "free <BpfMap")  # after its ids and record
        assert run.failed == (ns_freed and (map_freed is None or grace < map_freed))
        if run.failed:
            assert run.error.report.defect == "D2"  # type: ignore[union-attr]
