"""Fault injection: fail-nth semantics and an ENOMEM sweep over a whole scenario."""

from __future__ import annotations

import errno

import pytest

from bpfns import FIXED, BpfnsError, FaultInjector, FaultSite, Kernel, ObjType


def test_fail_nth_counts_from_the_next_allocation_and_fires_once() -> None:
    f = FaultInjector()
    assert not f.should_fail(FaultSite.INUM)  # disarmed
    f.fail_nth(3)
    assert [f.should_fail(FaultSite.INUM) for _ in range(5)] == [False, False, True, False, False]
    assert not f.armed


def test_fail_nth_with_sites_counts_only_those() -> None:
    f = FaultInjector()
    f.fail_nth(1, sites=[FaultSite.IDR_NODE])
    assert not f.should_fail(FaultSite.OBJ_ID)
    assert f.should_fail(FaultSite.IDR_NODE)
    assert f.injected == [FaultSite.IDR_NODE]


def test_disarm() -> None:
    f = FaultInjector()
    f.fail_nth(1)
    f.disarm()
    assert not f.should_fail(FaultSite.NAMESPACE)


def test_fail_nth_validates() -> None:
    f = FaultInjector()
    with pytest.raises(ValueError, match="from 1"):
        f.fail_nth(0)
    with pytest.raises(TypeError, match="FaultSite"):
        f.fail_nth(1, sites=["inum"])  # type: ignore[list-item]
    assert not f.armed


def scenario(k: Kernel) -> None:
    """Namespaces three deep, objects of every type at every level, then teardown."""
    ns = [k.init_ns]
    made = []
    try:
        for _ in range(3):
            ns.append(ns[-1].create_child())
        for level in ns:
            for t in ObjType:
                made.append((k.alloc_obj_id(level, f"{t.name}@{level.level}", t), t))
    finally:
        for oid, t in reversed(made):
            k.free_obj_id(oid, t)
        for level in reversed(ns[1:]):
            level.put()
        k.synchronize_rcu()


def test_enomem_sweep_leaves_nothing_behind() -> None:
    """Fail each allocation of the scenario in turn (FIXED): check() holds, nothing leaks."""
    n = 0
    failures = 0
    while True:
        n += 1
        k = Kernel(FIXED)
        k.faults.fail_nth(n)
        try:
            scenario(k)
        except BpfnsError as e:
            assert e.errno == errno.ENOMEM
            failures += 1
        if not k.faults.injected:
            break  # the scenario made fewer than n allocations: every one was hit
        k.check()
        assert k.namespaces() == [k.init_ns]
        assert all(idr.is_empty() for idr in k.init_ns.idr)
        assert all(active == 0 for _, active in k.snapshot().slabs)
        assert k.snapshot().ucounts == ()
        assert k.reports == []
    assert failures == n - 1
    assert n > 20  # the scenario has many allocation sites; the sweep reached them all


def test_fail_randomly_is_seeded_and_stays_armed() -> None:
    runs = []
    for _ in range(2):
        f = FaultInjector()
        f.fail_randomly(0.3, sites=[FaultSite.OBJ_ID], seed=42)
        runs.append([f.should_fail(FaultSite.OBJ_ID) for _ in range(200)])
        assert not f.should_fail(FaultSite.INUM)  # not a chosen site
        assert f.armed
    assert runs[0] == runs[1]
    assert 20 < sum(runs[0]) < 100
    f.disarm()
    assert not f.should_fail(FaultSite.OBJ_ID)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_fail_randomly_validates(p: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultInjector().fail_randomly(p)


def test_random_faults_in_a_fixed_kernel_leave_it_consistent() -> None:
    k = Kernel(FIXED)
    k.faults.fail_randomly(0.02, seed=7)
    failures = 0
    for _ in range(30):
        try:
            scenario(k)
        except BpfnsError as e:
            assert e.errno == errno.ENOMEM
            failures += 1
    k.faults.disarm()
    k.check()
    assert 0 < failures < 30
    assert k.namespaces() == [k.init_ns]
