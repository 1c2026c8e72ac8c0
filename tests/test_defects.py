"""The RFC's memory and semantic defects, reached on purpose (docs/explanation/defects.md).

D1: the rollback of a failed ``bpf_alloc_obj_id`` starts at the failed level and reads a
never-written, non-zeroed slab entry. D2: an id record does not pin its namespace, so
freeing an object that outlived its namespace touches freed memory. D6: ``nr_ns`` has no
namespace identity check. Each test runs the same scenario in RFC and FIXED behaviour.
"""

from __future__ import annotations

import attrs
import pytest

from bpfns import (
    FIXED,
    RFC,
    Behavior,
    BpfnsError,
    BugKind,
    Kernel,
    KernelBug,
    Namespace,
    NsState,
    ObjId,
    ObjType,
    UninitializedRead,
    UseAfterFree,
)
from bpfns._sanitizer import OnBug

# -- D1 -------------------------------------------------------------------------------


def full_init_kernel(behavior: Behavior, on_bug: OnBug = "raise") -> Kernel:
    """ids {1, 2}; init's map IDR is full, a child is empty."""
    return Kernel(behavior, id_end=3, on_bug=on_bug)


def test_d1_fresh_record_is_an_uninitialized_read() -> None:
    k = full_init_kernel(RFC)
    child = k.init_ns.create_child()
    k.alloc_obj_id(k.init_ns, "h1", ObjType.MAP)
    k.alloc_obj_id(k.init_ns, "h2", ObjType.MAP)  # an ancestor IDR is now full
    with pytest.raises(UninitializedRead) as info:
        k.alloc_obj_id(child, "m", ObjType.MAP)
    report = info.value.report
    assert (report.defect, report.kind, report.where) == (
        "D1",
        BugKind.UNINIT_VALUE,
        "bpf_alloc_obj_id",
    )
    assert "numbers[0] was never written" in report.what
    assert k.reports == [report]
    assert k.tainted
    assert str(info.value).startswith("BUG: KMSAN: uninit-value in bpf_alloc_obj_id (D1")


def test_d1_fresh_record_in_record_mode_skips_the_wild_pointer() -> None:
    k = full_init_kernel(RFC, on_bug="record")
    child = k.init_ns.create_child()
    k.alloc_obj_id(k.init_ns, "h1", ObjType.MAP)
    k.alloc_obj_id(k.init_ns, "h2", ObjType.MAP)
    with pytest.raises(BpfnsError):
        k.alloc_obj_id(child, "m", ObjType.MAP)
    assert [r.defect for r in k.reports] == ["D1"]
    assert child.idr[ObjType.MAP].is_empty()  # the good part of the rollback still ran
    k.check()


def stale_scenario(behavior: Behavior, on_bug: OnBug = "raise") -> tuple[Kernel, ObjId]:
    """A level-1 record whose memory still says (nr=1, init); init's id 1 is a victim."""
    k = full_init_kernel(behavior, on_bug)
    child = k.init_ns.create_child(name="child")
    old = k.alloc_obj_id(child, "old", ObjType.MAP)  # init id 1, child id 1
    k.free_obj_id(old, ObjType.MAP)  # the record goes back to the bpf_2 cache, unzeroed
    k.init_ns.idr[ObjType.MAP].cursor = 0
    victim = k.alloc_obj_id(k.init_ns, "victim", ObjType.MAP)  # init id 1 again
    k.alloc_obj_id(k.init_ns, "filler", ObjType.MAP)  # init id 2: init is full
    return k, victim


def test_d1_stale_record_is_reported() -> None:
    k, _ = stale_scenario(RFC)
    child = k.init_ns.children()[0]
    with pytest.raises(UninitializedRead, match=r"nr=1, ns=init_bpf_ns"):
        k.alloc_obj_id(child, "new", ObjType.MAP)


def test_d1_stale_record_removes_another_objects_id_in_record_mode() -> None:
    k, victim = stale_scenario(RFC, on_bug="record")
    child = k.init_ns.children()[0]
    with pytest.raises(BpfnsError) as info:
        k.alloc_obj_id(child, "new", ObjType.MAP)
    assert info.value.errno == 28  # the caller still sees ENOSPC
    assert [r.defect for r in k.reports] == ["D1"]
    # The consequence the C code has: the live victim lost its id in init.
    assert k.init_ns.idr[ObjType.MAP].find(1) is None
    assert victim.live
    with pytest.raises(Exception, match="root sees every live object"):
        k.check()


def test_d1_fixed_rolls_back_cleanly() -> None:
    k, victim = stale_scenario(FIXED)
    child = k.init_ns.children()[0]
    before = k.snapshot()
    with pytest.raises(BpfnsError):
        k.alloc_obj_id(child, "new", ObjType.MAP)
    assert k.snapshot().without_cursors() == before.without_cursors()
    assert k.init_ns.idr[ObjType.MAP].find(1) is victim
    assert k.reports == []
    k.check()


def test_d1_switch_alone() -> None:
    only_d1_fixed = attrs.evolve(RFC, d1_rollback_at_failed_level=False)
    k, victim = stale_scenario(only_d1_fixed)
    with pytest.raises(BpfnsError):
        k.alloc_obj_id(k.init_ns.children()[0], "new", ObjType.MAP)
    assert k.reports == []
    assert k.init_ns.idr[ObjType.MAP].find(1) is victim


def test_d1_at_level_0() -> None:
    # The posted loop runs even when the failure is at the creating level itself.
    k = Kernel(RFC, id_end=2)
    k.alloc_obj_id(k.init_ns, "a", ObjType.PROG)
    with pytest.raises(UninitializedRead):
        k.alloc_obj_id(k.init_ns, "b", ObjType.PROG)


# -- D2 -------------------------------------------------------------------------------


def orphan_scenario(
    behavior: Behavior, on_bug: OnBug = "raise"
) -> tuple[Kernel, Namespace, ObjId]:
    """An object created in a namespace that then loses its last reference."""
    k = Kernel(behavior, on_bug=on_bug)
    ns = k.init_ns.create_child(name="container")
    oid = k.alloc_obj_id(ns, "pinned map", ObjType.MAP)  # e.g. pinned in bpffs
    ns.put()  # the last task of the container exits
    return k, ns, oid


def test_d2_free_after_the_namespace_is_freed_is_use_after_free() -> None:
    k, ns, oid = orphan_scenario(RFC)
    k.synchronize_rcu()  # delayed_free_bpfns: the namespace memory is freed
    assert ns.state is NsState.FREED
    with pytest.raises(UseAfterFree) as info:
        k.free_obj_id(oid, ObjType.MAP)
    report = info.value.report
    assert report.defect == "D2"
    assert report.kind is BugKind.USE_AFTER_FREE
    assert report.where == "bpf_free_obj_id"
    assert "idr_remove(idr[MAP], 1) on namespace container" in report.what
    assert "freed" in report.what
    assert str(info.value).startswith("BUG: KASAN: slab-use-after-free in bpf_free_obj_id")


def test_d2_free_between_destroy_and_rcu_free_touches_valid_memory() -> None:
    """The namespace is freed after a grace period (delayed_free_bpfns, call_rcu)."""
    k, ns, oid = orphan_scenario(RFC)
    assert ns.state is NsState.DESTROYED
    k.free_obj_id(oid, ObjType.MAP)  # its IDR is destroyed: idr_remove finds nothing
    assert k.reports == []
    assert k.init_ns.idr[ObjType.MAP].is_empty()  # the live levels lost the id too
    k.synchronize_rcu()
    k.check()


def test_d2_after_rcu_free_in_record_mode() -> None:
    k, ns, oid = orphan_scenario(RFC, on_bug="record")
    k.synchronize_rcu()
    assert ns.state is NsState.FREED
    assert oid.nr_ns(k.init_ns) == 1  # ancestors still see it
    k.free_obj_id(oid, ObjType.MAP)
    assert [(r.defect, r.kind) for r in k.reports] == [("D2", BugKind.USE_AFTER_FREE)] * 2
    assert "freed" in k.reports[0].what
    assert "read of ns->obj_id_cachep" in k.reports[1].what
    assert k.init_ns.idr[ObjType.MAP].is_empty()  # level 0 was still removed
    k.check()


def test_d2_reused_namespace_memory_loses_an_unrelated_id() -> None:
    k, _, oid = orphan_scenario(RFC, on_bug="record")
    k.synchronize_rcu()
    reused = k.init_ns.create_child(name="new container")  # takes the freed memory
    innocent = k.alloc_obj_id(reused, "innocent", ObjType.MAP)
    assert innocent.nr_ns(reused) == 1
    k.free_obj_id(oid, ObjType.MAP)
    assert "memory reused by" in k.reports[0].what
    assert reused.idr[ObjType.MAP].find(1) is None  # the innocent map is unfindable
    assert innocent.live
    with pytest.raises(Exception, match="every live id present at each level"):
        k.check()


def test_d2_fixed_object_keeps_its_namespace_alive() -> None:
    k, ns, oid = orphan_scenario(FIXED)
    assert ns.alive
    k.synchronize_rcu()
    k.check()
    k.free_obj_id(oid, ObjType.MAP)
    assert ns.state is NsState.DESTROYED
    assert k.synchronize_rcu() == 1
    assert k.reports == []
    k.check()


def test_d2_raise_mode_is_a_kernel_bug() -> None:
    k, _, oid = orphan_scenario(RFC)
    k.synchronize_rcu()
    with pytest.raises(KernelBug):
        k.free_obj_id(oid, ObjType.MAP)


# -- D6 -------------------------------------------------------------------------------


@pytest.mark.parametrize(("behavior", "expected"), [(RFC, 1), (FIXED, 0)])
def test_d6_sibling_sees_another_branch_number(behavior: Behavior, expected: int) -> None:
    k = Kernel(behavior)
    child_a = k.init_ns.create_child(name="child_a")
    child_b = k.init_ns.create_child(name="child_b")
    oid = k.alloc_obj_id(child_b, "b's map", ObjType.MAP)
    assert oid.nr_ns(child_a) == expected
    if behavior is RFC:
        (report,) = k.reports
        assert (report.defect, report.kind) == ("D6", BugKind.SEMANTIC)
        assert "to a viewer in child_a" in report.what
        assert not k.tainted  # semantic, never raised
    else:
        assert k.reports == []
    k.check()


def test_d6_wrong_number_can_name_a_different_object() -> None:
    k = Kernel(RFC)
    child_a = k.init_ns.create_child()
    child_b = k.init_ns.create_child()
    mine = k.alloc_obj_id(child_a, "a's map", ObjType.MAP)
    theirs = k.alloc_obj_id(child_b, "b's map", ObjType.MAP)
    seen = theirs.nr_ns(child_a)
    assert child_a.idr[ObjType.MAP].find(seen) is mine  # GET_FD_BY_ID would open the wrong map
