"""Namespaces: creation checks in the kernel's order, inode numbers, refcounts and teardown.

Specification: semantics §2.1 and §2.2; kernel rules §D (ucounts) and E.3 (inode numbers).
"""

from __future__ import annotations

import errno

import pytest

import bpfns
from bpfns import (
    CLONE_NEWBPF,
    FIXED,
    PROC_BPF_INIT_INO,
    PROC_DYNAMIC_FIRST,
    RFC,
    BpfnsError,
    FaultSite,
    Kernel,
    NsState,
    ObjType,
    UcountType,
)


def test_init_namespace_is_level_0_with_the_rfc_inode_number() -> None:
    k = Kernel()
    init = k.init_ns
    assert (init.level, init.parent, init.inum) == (0, None, PROC_BPF_INIT_INO)
    assert init.inum == 4026531833
    assert init.user_ns is k.init_user_ns
    assert init.is_init
    assert [idr.is_empty() for idr in init.idr] == [True, True, True]


def test_init_is_never_refcounted() -> None:
    k = Kernel()
    before = k.init_ns.refcount
    k.init_ns.get()
    k.init_ns.put()
    k.init_ns.put()
    assert k.init_ns.refcount == before
    assert k.init_ns.alive
    child = k.init_ns.create_child()
    assert k.init_ns.refcount == before  # a child does not count its init parent either
    child.put()
    assert k.init_ns.alive
    k.check()


def test_child_level_parent_and_reference() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    b = a.create_child()
    assert (a.level, b.level) == (1, 2)
    assert b.parent is a
    assert a.parent is k.init_ns
    assert a.refcount == 2  # the caller's reference and b's
    assert a.holders == {"ref": 1, "child": 1}
    assert b.refcount == 1
    k.check()


def test_copy_bpfns_without_flag_shares_the_old_namespace() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    same = k.copy_bpfns(0, k.init_user_ns, a)
    assert same is a
    assert a.refcount == 2
    same.put()
    assert a.refcount == 1
    new = k.copy_bpfns(CLONE_NEWBPF | 0x100, k.init_user_ns, a)
    assert new.parent is a  # the caller's own namespace, no for_children indirection


def test_inode_numbers_are_lowest_free_and_reused() -> None:
    k = Kernel()
    first = [k.init_ns.create_child() for _ in range(3)]
    assert [ns.inum for ns in first] == [PROC_DYNAMIC_FIRST + i for i in range(3)]
    first[1].put()  # destroy frees the inode number at once (ns_free_inum)
    again = k.init_ns.create_child()
    assert again.inum == PROC_DYNAMIC_FIRST + 1
    assert k.init_ns.create_child().inum == PROC_DYNAMIC_FIRST + 3
    assert PROC_BPF_INIT_INO not in {ns.inum for ns in k.namespaces()[1:]}


# -- creation checks, in order ------------------------------------------------------------


def test_owner_outside_parent_owner_is_einval() -> None:
    k = Kernel()
    user_a = k.init_user_ns.create_child(owner=1000)
    user_b = k.init_user_ns.create_child(owner=1001)
    ns_a = k.init_ns.create_child(user_a)
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        ns_a.create_child(user_b)
    assert info.value.errno == errno.EINVAL
    assert "owner user namespace" in info.value.strerror
    assert k.snapshot() == before
    # A descendant of the parent's owner is fine; the parent's owner itself too.
    assert ns_a.create_child(user_a.create_child(owner=5)).level == 2
    assert ns_a.create_child(user_a).user_ns is user_a


def test_einval_is_checked_before_the_level_limit() -> None:
    k = Kernel(max_level=1)
    child = k.init_ns.create_child(k.init_user_ns.create_child(owner=1))
    other = k.init_user_ns.create_child(owner=2)
    with pytest.raises(BpfnsError) as info:
        child.create_child(other)  # both wrong owner and too deep: EINVAL wins
    assert info.value.errno == errno.EINVAL


def test_level_33_is_enospc_levels_0_to_32_are_valid() -> None:
    k = Kernel()
    ns = k.init_ns
    for _ in range(32):
        ns = ns.create_child()
    assert ns.level == 32
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        ns.create_child()
    assert info.value.errno == errno.ENOSPC
    assert "MAX_BPF_NS_LEVEL" in info.value.strerror
    assert k.snapshot() == before
    k.check()


def test_max_level_is_configurable() -> None:
    k = Kernel(max_level=2)
    ns = k.init_ns.create_child().create_child()
    with pytest.raises(BpfnsError) as info:
        ns.create_child()
    assert info.value.errno == errno.ENOSPC


def test_level_limit_is_checked_before_the_ucount() -> None:
    k = Kernel(max_level=1, ucount_max=1)
    child = k.init_ns.create_child()  # uses the only ucount
    with pytest.raises(BpfnsError) as info:
        child.create_child()
    assert "MAX_BPF_NS_LEVEL" in info.value.strerror


def test_ucount_limit_in_init_user_ns() -> None:
    k = Kernel(ucount_max=2)
    a = k.init_ns.create_child()
    k.init_ns.create_child()
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        k.init_ns.create_child()
    assert info.value.errno == errno.ENOSPC
    assert "max_bpf_namespaces" in info.value.strerror
    assert k.snapshot() == before
    # The charge is released at the final free, not at destroy (kernel rules §C.6, §D).
    a.put()
    with pytest.raises(BpfnsError):
        k.init_ns.create_child()
    assert k.synchronize_rcu() == 1
    assert k.init_ns.create_child().level == 1


def test_ucount_limit_at_an_ancestor_user_namespace() -> None:
    k = Kernel()
    parent_user = k.init_user_ns.create_child(owner=1000)
    child_user = parent_user.create_child(owner=1000)
    parent_user.set_max(UcountType.BPF_NAMESPACES, 1)
    assert child_user.get_max(UcountType.BPF_NAMESPACES) == bpfns.INT_MAX
    ns = k.init_ns.create_child(child_user, euid=1000)
    # The charge went to every level: child (uid 1000), parent (owner of child_user),
    # and init (owner of parent_user).
    assert child_user.count(UcountType.BPF_NAMESPACES, 1000) == 1
    assert parent_user.count(UcountType.BPF_NAMESPACES, 1000) == 1
    assert k.init_user_ns.count(UcountType.BPF_NAMESPACES, 1000) == 1
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        k.init_ns.create_child(child_user, euid=1000)
    assert info.value.errno == errno.ENOSPC
    assert k.snapshot() == before  # the child level's charge was undone
    assert child_user.count(UcountType.BPF_NAMESPACES, 1000) == 1
    ns.put()
    k.synchronize_rcu()
    assert parent_user.count(UcountType.BPF_NAMESPACES, 1000) == 0
    k.check()


@pytest.mark.parametrize(
    ("site", "nth"),
    [
        (FaultSite.NAMESPACE, 1),
        (FaultSite.KMEM_CACHE, 1),
        (FaultSite.INUM, 1),
    ],
)
def test_injected_allocation_failure_is_enomem_and_unwinds(site: FaultSite, nth: int) -> None:
    k = Kernel(FIXED)
    parent = k.init_ns.create_child()
    if site is FaultSite.INUM:  # warm the level-2 cache, which would otherwise stay behind
        parent.create_child().put()
        k.synchronize_rcu()
    before = k.snapshot()
    k.faults.fail_nth(nth, sites=[site])
    with pytest.raises(BpfnsError) as info:
        parent.create_child()
    assert info.value.errno == errno.ENOMEM
    assert k.faults.injected == [site]
    assert k.snapshot() == before
    k.check()
    assert parent.create_child().level == 2


def test_level_cache_created_before_a_later_failure_stays() -> None:
    # create_bpf_cachep succeeded, then ns_alloc_inum failed: the kernel never destroys
    # the per-level caches, so the cache stays (the one documented leftover).
    k = Kernel(FIXED)
    k.faults.fail_nth(1, sites=[FaultSite.INUM])
    with pytest.raises(BpfnsError):
        k.init_ns.create_child()
    assert k.snapshot().caches == ("bpf_2", "bpf_namespace", "pid")
    assert k.snapshot().slabs == ()  # empty: nothing allocated from it


# -- lifetime -------------------------------------------------------------------------


def test_put_destroys_and_rcu_frees() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    inum = ns.inum
    ns.put()
    assert ns.state is NsState.DESTROYED
    assert not ns.alive
    assert ns.refcount == 0
    assert k.rcu_pending == (f"delayed_free_bpfns(bpf:[{inum}])",)
    assert inum - PROC_DYNAMIC_FIRST not in k.snapshot().inums
    assert k.init_user_ns.count(UcountType.BPF_NAMESPACES, 0) == 1  # until the RCU free
    k.check()
    assert k.synchronize_rcu() == 1
    assert ns.state is NsState.FREED
    assert k.init_user_ns.count(UcountType.BPF_NAMESPACES, 0) == 0
    assert k.namespaces() == [k.init_ns]
    k.check()


def test_put_walks_the_parent_chain() -> None:
    k = Kernel()
    a = k.init_ns.create_child(name="a")
    b = a.create_child(name="b")
    c = b.create_child(name="c")
    b.put()
    a.put()  # a and b now live only through their children
    assert (a.refcount, b.refcount, c.refcount) == (1, 1, 1)
    assert a.alive
    assert b.alive
    c.put()  # the cascade: c, then b, then a
    assert [ns.state for ns in (a, b, c)] == [NsState.DESTROYED] * 3
    assert k.rcu_pending == (
        "delayed_free_bpfns(c)",
        "delayed_free_bpfns(b)",
        "delayed_free_bpfns(a)",
    )
    assert k.synchronize_rcu() == 3
    k.check()


def test_put_stops_at_a_namespace_still_referenced() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    b = a.create_child()
    b.put()
    assert a.alive
    assert a.refcount == 1
    assert a.holders == {"ref": 1}


def test_objects_do_not_hold_a_namespace_reference_in_rfc() -> None:
    k = Kernel(RFC)
    ns = k.init_ns.create_child()
    k.alloc_obj_id(ns, "map", ObjType.MAP)
    assert ns.refcount == 1
    ns.put()
    assert ns.state is NsState.DESTROYED  # destroyed under a live object: D2's setup
    assert ns.idr[ObjType.MAP].is_empty()  # idr_destroy dropped the entries


def test_fixed_objects_pin_their_namespace() -> None:
    k = Kernel(FIXED)
    ns = k.init_ns.create_child()
    oid = k.alloc_obj_id(ns, "map", ObjType.MAP)
    assert ns.holders == {"ref": 1, "obj_id": 1}
    ns.put()
    assert ns.alive
    k.free_obj_id(oid, ObjType.MAP)
    assert ns.state is NsState.DESTROYED
    k.synchronize_rcu()
    k.check()


def test_freed_namespace_memory_is_reused_lifo() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    b = k.init_ns.create_child()
    a.put()
    b.put()
    k.synchronize_rcu()
    c = k.init_ns.create_child()
    assert c._slot is b._slot  # the last freed object is handed out first
    d = k.init_ns.create_child()
    assert d._slot is a._slot


def test_rcu_callbacks_queued_by_callbacks_wait_for_the_next_grace_period() -> None:
    k = Kernel()
    ran: list[str] = []

    def outer() -> None:
        k.rcu.call_rcu(lambda: ran.append("inner"), "inner", owner=None)

    k.rcu.call_rcu(outer, "outer", owner=None)
    assert k.synchronize_rcu() == 1
    assert ran == []
    assert k.rcu_pending == ("inner",)
    assert k.synchronize_rcu() == 1
    assert ran == ["inner"]


# -- misuse ---------------------------------------------------------------------------


def test_put_of_a_dead_namespace_is_a_value_error() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    ns.put()
    with pytest.raises(ValueError, match="destroyed"):
        ns.put()
    with pytest.raises(ValueError, match="destroyed"):
        ns.get()
    with pytest.raises(ValueError, match="destroyed"):
        ns.create_child()
    k.synchronize_rcu()
    with pytest.raises(ValueError, match="freed"):
        ns.put()


def test_put_of_a_reference_you_do_not_hold_is_refused() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    b = a.create_child()
    a.put()
    before = k.snapshot()
    with pytest.raises(ValueError, match="held by"):
        a.put()  # the only reference left is b's
    assert k.snapshot() == before
    assert b.parent is a


def test_copy_bpfns_rejects_bad_arguments() -> None:
    k = Kernel()
    other = Kernel()
    with pytest.raises(TypeError, match="Namespace"):
        k.copy_bpfns(CLONE_NEWBPF, k.init_user_ns, "init")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="another Kernel"):
        k.copy_bpfns(CLONE_NEWBPF, k.init_user_ns, other.init_ns)
    with pytest.raises(ValueError, match=r"user_ns: .* belongs to another Kernel"):
        k.copy_bpfns(CLONE_NEWBPF, other.init_user_ns, k.init_ns)
    with pytest.raises(TypeError, match=r"user_ns must be a bpfns\.UserNamespace"):
        k.copy_bpfns(CLONE_NEWBPF, None, k.init_ns)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="u64"):
        k.copy_bpfns(-1, k.init_user_ns, k.init_ns)
    with pytest.raises(TypeError, match="flags"):
        k.copy_bpfns(1.0, k.init_user_ns, k.init_ns)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="euid"):
        k.copy_bpfns(CLONE_NEWBPF, k.init_user_ns, k.init_ns, euid=-1)
    assert k.namespaces() == [k.init_ns]


def test_two_kernels_share_nothing() -> None:
    k1, k2 = Kernel(), Kernel()
    a = k1.init_ns.create_child()
    k1.alloc_obj_id(a, "m", ObjType.MAP)
    b = k2.init_ns.create_child()
    assert a.inum == b.inum  # each Kernel has its own inode-number allocator
    assert k2.alloc_obj_id(b, "m", ObjType.MAP).nr() == 1
    assert k1.init_ns.idr[ObjType.MAP] is not k2.init_ns.idr[ObjType.MAP]
    assert k1.init_user_ns is not k2.init_user_ns


def test_ancestry_helpers() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    b = k.init_ns.create_child()
    aa = a.create_child()
    assert list(aa.ancestors()) == [aa, a, k.init_ns]
    assert k.init_ns.is_ancestor_of(aa)
    assert a.is_ancestor_of(aa)
    assert aa.is_ancestor_of(aa)
    assert not b.is_ancestor_of(aa)
    assert not aa.is_ancestor_of(a)
    assert k.init_ns.children() == [a, b]
    b.put()
    assert k.init_ns.children() == [a]


def test_labels_and_repr() -> None:
    k = Kernel()
    named = k.init_ns.create_child(name="child_a")
    anon = k.init_ns.create_child()
    assert k.init_ns.label() == "init_bpf_ns"
    assert named.label() == "child_a"
    assert anon.label() == f"bpf:[{anon.inum}]"
    assert repr(named) == (
        "<Namespace inum=4026531840 level=1 name='child_a' refcount=1 state=alive>"
    )
    assert "name=" not in repr(anon)
    # Inode numbers read as the kernel prints them (readlink of /proc/PID/ns/bpf, the
    # tree, the repr): decimal everywhere, so one namespace is one number on a line.
    assert f"inum={anon.inum} " in repr(anon)
    inside = k.init_task.clone(bpfns.CLONE_NEWBPF)
    ns = inside.bpf_ns
    assert inside.proc_ns_link() == f"bpf:[{ns.inum}]" == ns.label()
    assert f"inum={ns.inum} " in repr(ns)


def test_namespaces_sharing_an_inode_number_are_listed_oldest_first() -> None:
    """Found by TracedMachine: the order came from a set, so two kernels built the same
    way could list a destroyed namespace and its successor in different orders."""
    k = Kernel()
    pairs = []
    for i in range(20):
        old = k.init_ns.create_child(name=f"old{i}")
        old.put()  # destroyed: its inode number is free, its memory waits for RCU
        new = k.init_ns.create_child(name=f"new{i}")
        assert new.inum == old.inum
        pairs.append((old, new))
        new.put()
    listed = k.namespaces()[1:]
    assert [ns.name for ns in listed] == [ns.name for pair in pairs for ns in pair]
    k.synchronize_rcu()
    assert k.namespaces() == [k.init_ns]


def test_namespace_names_are_path_labels() -> None:
    """A name is a str without '/', so that /a/b paths (bpfns show --ns) can address it."""
    k = Kernel()
    for bad in ("a/b", "", "/"):
        with pytest.raises(ValueError, match="may not be empty or contain '/'"):
            k.init_ns.create_child(name=bad)
        with pytest.raises(ValueError, match="ns_name"):
            k.init_task.clone(CLONE_NEWBPF, ns_name=bad)
        with pytest.raises(ValueError, match="ns_name"):
            k.init_task.clone().unshare(CLONE_NEWBPF, ns_name=bad)
    with pytest.raises(TypeError, match="str label"):
        k.init_ns.create_child(name=5)  # type: ignore[arg-type]
    assert len(k.namespaces()) == 1
