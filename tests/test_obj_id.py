"""Object ids: allocation at every level, views, release, and the slab records behind them.

Specification: semantics §2.3 (allocation and release) and 2.4 (views).
"""

from __future__ import annotations

import errno

import pytest

from bpfns import (
    FIXED,
    INT_MAX,
    RFC,
    Behavior,
    BpfnsError,
    FaultSite,
    Kernel,
    Namespace,
    ObjId,
    ObjIdEntry,
    ObjType,
)
from bpfns._cli import build_seed_world


def seed_world(k: Kernel) -> dict[str, Namespace]:
    world = {name: task.bpf_ns for name, task in build_seed_world(k).items()}
    world["init"] = world.pop("init_bpf_ns")
    return world


@pytest.mark.parametrize("behavior", [RFC, FIXED])
def test_seed_example(behavior: Behavior) -> None:
    """init -> child_a, child_b; child_b -> child_b_a, child_b_b (the seed's diagram)."""
    k = Kernel(behavior)
    w = seed_world(k)
    for _ in range(3):  # the host already has objects, so the numbers differ by level
        k.alloc_obj_id(w["init"], "host map", ObjType.MAP)
    k.alloc_obj_id(w["child_b"], "child_b map", ObjType.MAP)
    oid = k.alloc_obj_id(w["child_b_b"], "container map", ObjType.MAP)
    assert oid.level == 2
    assert [(e.ns, e.nr) for e in oid.numbers] == [
        (w["init"], 5),  # 3 host maps and child_b's map came first
        (w["child_b"], 2),
        (w["child_b_b"], 1),
    ]
    assert oid.nr() == 5
    assert oid.ns is w["child_b_b"]
    for name, nr in [("init", 5), ("child_b", 2), ("child_b_b", 1)]:
        assert w[name].idr[ObjType.MAP].find(nr) is oid
        assert oid.nr_ns(w[name]) == nr
    assert list(w["child_a"].idr[ObjType.MAP]) == []
    assert list(w["child_b_a"].idr[ObjType.MAP]) == []
    if behavior is FIXED:  # D6 fixed: the same-level cousins see nothing
        assert oid.nr_ns(w["child_a"]) == 0
        assert oid.nr_ns(w["child_b_a"]) == 0
    k.check()


def test_ids_are_allocated_deepest_first() -> None:
    # With the injector failing the second radix-node allocation, only the deepest level
    # has its id: the order of calls is deepest first.
    k = Kernel(FIXED)
    child = k.init_ns.create_child()
    grandchild = child.create_child()
    k.faults.fail_nth(2, sites=[FaultSite.IDR_NODE])
    with pytest.raises(BpfnsError) as info:
        k.alloc_obj_id(grandchild, "m", ObjType.MAP)
    assert info.value.errno == errno.ENOMEM
    assert "level 1" in info.value.strerror
    assert [ns.idr[ObjType.MAP].cursor for ns in (k.init_ns, child, grandchild)] == [0, 0, 2]


def test_one_cursor_per_namespace_and_type() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    for _ in range(3):
        k.alloc_obj_id(k.init_ns, "host", ObjType.PROG)
    firsts = [k.alloc_obj_id(ns, "x", t) for t in ObjType]
    assert [o.nr_ns(ns) for o in firsts] == [1, 1, 1]
    assert [o.nr() for o in firsts] == [1, 4, 1]


def test_freed_ids_are_reused_only_after_a_wrap() -> None:
    k = Kernel(id_end=5)  # ids 1..4
    ns = k.init_ns.create_child()
    objs = [k.alloc_obj_id(ns, i, ObjType.MAP) for i in range(3)]
    k.free_obj_id(objs[0], ObjType.MAP)
    assert k.alloc_obj_id(ns, "d", ObjType.MAP).nr_ns(ns) == 4  # not 1: the cursor is at 4
    assert k.alloc_obj_id(ns, "e", ObjType.MAP).nr_ns(ns) == 1  # the silent wrap to start
    assert ns.idr[ObjType.MAP].cursor == 2
    k.check()


def test_id_end_bounds_every_level() -> None:
    k = Kernel(id_end=4)
    ns = k.init_ns.create_child()
    got = [k.alloc_obj_id(ns, i, ObjType.LINK) for i in range(3)]
    assert [o.nr() for o in got] == [1, 2, 3]
    assert [o.nr_ns(ns) for o in got] == [1, 2, 3]


def test_default_id_space_is_1_to_int_max_minus_1() -> None:
    k = Kernel()
    idr = k.init_ns.idr[ObjType.MAP]
    idr.cursor = INT_MAX - 1
    assert k.alloc_obj_id(k.init_ns, "last", ObjType.MAP).nr() == INT_MAX - 1
    assert k.alloc_obj_id(k.init_ns, "wrapped", ObjType.MAP).nr() == 1  # never 0


def test_full_deepest_level_needs_no_rollback() -> None:
    # Failing at the deepest level: nothing was allocated, so FIXED rolls back nothing
    # (the posted loop would still read numbers[level]: see test_defects.py).
    k = Kernel(FIXED, id_end=2)  # ids {1}
    ns = k.init_ns.create_child()
    k.alloc_obj_id(ns, "a", ObjType.MAP)
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        k.alloc_obj_id(ns, "b", ObjType.MAP)
    assert info.value.errno == errno.ENOSPC
    assert "level 1" in info.value.strerror
    assert k.snapshot() == before


def test_fixed_rollback_leaves_only_advanced_cursors() -> None:
    k = Kernel(FIXED, id_end=3)  # ids {1, 2}
    child = k.init_ns.create_child()
    grandchild = child.create_child()
    k.alloc_obj_id(k.init_ns, "h1", ObjType.MAP)
    k.alloc_obj_id(k.init_ns, "h2", ObjType.MAP)  # init is now full
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        k.alloc_obj_id(grandchild, "m", ObjType.MAP)
    assert info.value.errno == errno.ENOSPC
    assert "level 0 (init_bpf_ns)" in info.value.strerror
    after = k.snapshot()
    assert after != before  # the deeper cursors moved...
    assert after.without_cursors() == before.without_cursors()  # ...and nothing else
    assert [ns.idr[ObjType.MAP].cursor for ns in (child, grandchild)] == [2, 2]
    k.check()
    # The burned ids: the next allocation in grandchild gets 2, not 1.
    k.free_obj_id(k.init_ns.idr[ObjType.MAP].find(1), ObjType.MAP)
    assert k.alloc_obj_id(grandchild, "m", ObjType.MAP).nr_ns(grandchild) == 2


@pytest.mark.parametrize("site", [FaultSite.OBJ_ID, FaultSite.IDR_NODE])
def test_enomem_paths_unwind(site: FaultSite) -> None:
    k = Kernel(FIXED)
    ns = k.init_ns.create_child().create_child()
    before = k.snapshot()
    k.faults.fail_nth(1, sites=[site])
    with pytest.raises(BpfnsError) as info:
        k.alloc_obj_id(ns, "m", ObjType.PROG)
    assert info.value.errno == errno.ENOMEM
    assert k.snapshot() == before
    k.check()


def test_free_releases_every_level() -> None:
    k = Kernel()
    w = seed_world(k)
    oid = k.alloc_obj_id(w["child_b_b"], "m", ObjType.PROG)
    k.free_obj_id(oid, ObjType.PROG)
    assert all(ns.idr[ObjType.PROG].is_empty() for ns in w.values())
    assert not oid.live
    k.check()


def test_records_come_from_a_per_level_lifo_slab_and_are_not_zeroed() -> None:
    k = Kernel()
    a = k.init_ns.create_child()
    b = k.init_ns.create_child()
    first = k.alloc_obj_id(a, "first", ObjType.MAP)
    second = k.alloc_obj_id(b, "second", ObjType.MAP)
    slot_first, slot_second = first._slot, second._slot
    k.free_obj_id(first, ObjType.MAP)
    k.free_obj_id(second, ObjType.MAP)
    third = k.alloc_obj_id(k.init_ns.create_child(), "third", ObjType.MAP)
    assert third._slot is slot_second  # last freed, first reused, across namespaces
    fourth = k.alloc_obj_id(k.init_ns, "fourth", ObjType.MAP)
    assert fourth._slot is not slot_first  # level 0 has its own cache
    assert [c.name for c in k.obj_id_caches.values()] == ["pid", "bpf_2"]


def test_translate() -> None:
    k = Kernel()
    w = seed_world(k)
    k.alloc_obj_id(w["init"], "host", ObjType.MAP)
    oid = k.alloc_obj_id(w["child_b_b"], "m", ObjType.MAP)
    assert k.translate(ObjType.MAP, 1, w["child_b_b"], w["init"]) == 2
    assert k.translate(ObjType.MAP, 2, w["init"], w["child_b"]) == 1
    assert k.translate(ObjType.MAP, 2, w["init"], w["child_b_b"]) == 1
    assert k.translate(ObjType.MAP, 1, w["init"], w["child_b"]) == 0  # host map: invisible
    assert oid.nr() == 2
    with pytest.raises(BpfnsError) as info:
        k.translate(ObjType.MAP, 5, w["init"], w["child_b"])
    assert info.value.errno == errno.ENOENT
    with pytest.raises(BpfnsError):
        k.translate(ObjType.PROG, 1, w["child_b_b"], w["init"])


def test_nr_ns_of_a_deeper_namespace_is_zero() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    oid = k.alloc_obj_id(ns, "m", ObjType.MAP)
    assert oid.nr_ns(ns.create_child().create_child()) == 0
    assert k.reports == []


def test_obj_id_entry_and_repr() -> None:
    k = Kernel()
    ns = k.init_ns.create_child(name="c")
    oid = k.alloc_obj_id(ns, "m", ObjType.MAP)
    assert oid.numbers == (ObjIdEntry(1, k.init_ns), ObjIdEntry(1, ns))
    assert repr(oid) == "<ObjId MAP level=1 [init_bpf_ns=1, c=1]>"
    assert oid.obj == "m"
    assert oid.type is ObjType.MAP
    k.free_obj_id(oid, ObjType.MAP)
    assert repr(oid) == "<ObjId MAP freed>"
    assert repr(ObjType.LINK) == "ObjType.LINK"


# -- misuse ---------------------------------------------------------------------------


def test_alloc_rejects_bad_arguments_and_changes_nothing() -> None:
    k = Kernel()
    other = Kernel()
    dead = k.init_ns.create_child()
    dead.put()
    before = k.snapshot()
    with pytest.raises(TypeError, match="ObjType"):
        k.alloc_obj_id(k.init_ns, "m", "map")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ObjType"):
        k.alloc_obj_id(k.init_ns, "m", True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an ObjType"):
        k.alloc_obj_id(k.init_ns, "m", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="None"):
        k.alloc_obj_id(k.init_ns, None, ObjType.MAP)
    with pytest.raises(ValueError, match="another Kernel"):
        k.alloc_obj_id(other.init_ns, "m", ObjType.MAP)
    with pytest.raises(ValueError, match="destroyed"):
        k.alloc_obj_id(dead, "m", ObjType.MAP)
    with pytest.raises(TypeError, match="Namespace"):
        k.alloc_obj_id(None, "m", ObjType.MAP)  # type: ignore[arg-type]
    assert k.snapshot() == before
    assert k.alloc_obj_id(k.init_ns, "m", 1).type is ObjType.PROG  # type: ignore[arg-type]


def test_free_rejects_misuse() -> None:
    k = Kernel()
    oid = k.alloc_obj_id(k.init_ns, "m", ObjType.MAP)
    with pytest.raises(TypeError, match="ObjId"):
        k.free_obj_id("m", ObjType.MAP)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="another Kernel"):
        Kernel().free_obj_id(oid, ObjType.MAP)
    with pytest.raises(ValueError, match=r"allocated as ObjType\.MAP"):
        k.free_obj_id(oid, ObjType.PROG)
    assert k.init_ns.idr[ObjType.MAP].find(1) is oid
    k.free_obj_id(oid, ObjType.MAP)
    with pytest.raises(ValueError, match="double free"):
        k.free_obj_id(oid, ObjType.MAP)


def test_translate_rejects_bad_arguments() -> None:
    k = Kernel()
    with pytest.raises(ValueError, match="nr"):
        k.translate(ObjType.MAP, -1, k.init_ns, k.init_ns)
    with pytest.raises(TypeError, match="Namespace"):
        k.translate(ObjType.MAP, 1, k.init_ns, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("on_bug", ["raise", "record"])
def test_reading_a_freed_obj_id_is_misuse_not_a_kernel_bug(on_bug: str) -> None:
    # A stale handle is the caller's error: ValueError, nothing reported, not tainted
    # (issue 12; only the kernel's own accesses are KernelBugs).
    k = Kernel(FIXED, on_bug=on_bug)  # type: ignore[arg-type]
    a = k.alloc_obj_id(k.init_ns, "a", ObjType.MAP)
    k.free_obj_id(a, ObjType.MAP)
    b = k.alloc_obj_id(k.init_ns, "b", ObjType.MAP)  # reuses a's record
    readers = {
        "bpf_obj_id_nr": a.nr,
        "ObjId.level": lambda: a.level,
        "ObjId.numbers": lambda: a.numbers,
        "ObjId.ns": lambda: a.ns,
        "bpf_obj_id_nr_ns": lambda: a.nr_ns(k.init_ns),
    }
    for what, read in readers.items():
        with pytest.raises(ValueError, match=f"{what}: this MAP ObjId was freed"):
            read()
    assert k.reports == []
    assert not k.tainted
    assert repr(a) == "<ObjId MAP freed>"
    assert b.nr() == 2 and isinstance(b, ObjId)
