"""Kernel.check(): every invariant is verified, and each one can actually fail.

Each test builds a healthy world, corrupts exactly one thing behind the API's back, and
expects the InvariantViolation that names the broken invariant.
"""

from __future__ import annotations

import pytest

import bpfns
from bpfns import (
    CLONE_NEWBPF,
    FIXED,
    RFC,
    BpfMap,
    InvariantViolation,
    Kernel,
    Namespace,
    ObjId,
    ObjIdEntry,
    ObjType,
    Task,
    UcountType,
)
from bpfns._ucount import all_ucounts

pytestmark = pytest.mark.bpfns_corrupts


def world() -> tuple[Kernel, Namespace, ObjId]:
    k = Kernel(FIXED)
    ns = k.init_ns.create_child(name="c")
    oid = k.alloc_obj_id(ns, "m", ObjType.MAP)
    k.check()
    return k, ns, oid


def expect(k: Kernel, invariant: str) -> None:
    with pytest.raises(InvariantViolation) as info:
        k.check()
    assert info.value.invariant == invariant
    assert str(info.value).startswith(f"invariant {invariant!r} violated: ")


def test_healthy_world_passes() -> None:
    k, _, _ = world()
    k.check()


def test_data_structure_corruption() -> None:
    k, _, _ = world()
    k.init_ns.idr[ObjType.MAP]._bits._count += 1
    expect(k, "data structures")


def test_namespace_count_must_equal_its_holders() -> None:
    k, ns, _ = world()
    ns._count += 1
    expect(k, "data structures")


def test_null_entry_in_a_namespace_idr() -> None:
    k, _, _ = world()
    k.init_ns.idr[ObjType.PROG].alloc(None, 5, 0)
    expect(k, "no NULL entries")


def test_freed_record_left_in_an_idr() -> None:
    k, _, oid = world()
    k.free_obj_id(oid, ObjType.MAP)
    k.init_ns.idr[ObjType.MAP].alloc(oid, 9, 10)
    expect(k, "IDR entries point to live records")


def test_id_missing_at_one_level() -> None:
    k, _, _ = world()
    k.init_ns.idr[ObjType.MAP].remove(1)
    expect(k, "every live id present at each level")


def test_id_missing_at_every_level() -> None:
    k, ns, _ = world()
    k.init_ns.idr[ObjType.MAP].remove(1)
    ns.idr[ObjType.MAP].remove(1)
    expect(k, "root sees every live object")


def test_entry_at_the_wrong_level() -> None:
    k, _, oid = world()
    other = k.init_ns.create_child().create_child()
    oid._slot.mem[1] = ObjIdEntry(1, other)
    expect(k, "ids at every level")


def test_stray_entry_in_another_namespace() -> None:
    k, _, oid = world()
    sibling = k.init_ns.create_child()
    sibling.idr[ObjType.MAP].alloc(oid, 7, 8)
    expect(k, "ids unique per (namespace, type)")


def test_entry_in_the_idr_of_another_type() -> None:
    k, _, oid = world()
    k.init_ns.idr[ObjType.PROG].alloc(oid, 1, 2)
    expect(k, "ids unique per (namespace, type)")


def test_live_record_referencing_a_dead_namespace_when_d2_is_fixed() -> None:
    k = Kernel(RFC)
    ns = k.init_ns.create_child()
    k.alloc_obj_id(ns, "orphan", ObjType.LINK)
    ns.put()
    k.check()  # acceptable while the behaviour reproduces D2
    k.behavior = FIXED
    expect(k, "nothing live references a dead namespace")


def test_refcount_not_matching_its_holders() -> None:
    k, ns, _ = world()
    ns._holders["child"] += 1
    ns._count += 1
    expect(k, "refcounts equal their holders")


def test_pin_count_not_matching_live_records() -> None:
    k, ns, _ = world()
    ns._holders["obj_id"] -= 1
    ns._holders["ref"] += 1
    expect(k, "refcounts equal their holders")


def test_ucount_not_matching_live_namespaces() -> None:
    k, _, _ = world()
    (uc,) = all_ucounts(k.init_user_ns)
    uc.counts[UcountType.BPF_NAMESPACES] += 1
    expect(k, "ucounts equal live namespaces")


def test_inode_number_leaked() -> None:
    k, _, _ = world()
    k.inum_ida.alloc()
    expect(k, "inode numbers distinct and allocated")


# -- tasks, files and BPF objects (the syscall layer) -----------------------------------


def busy() -> tuple[Kernel, Task]:
    k = Kernel(FIXED)
    t = k.init_task.clone(CLONE_NEWBPF)
    m = t.map_create(name="m")
    t.obj_pin(m, "/sys/fs/bpf/m")
    t.link_create(t.prog_load(name="p", maps=(m,)))
    k.check()
    return k, t


def test_task_without_nsproxy() -> None:
    k, t = busy()
    t.nsproxy = None
    expect(k, "live tasks are whole")


def test_pid_pointing_elsewhere() -> None:
    k, t = busy()
    k.pid_idr.replace(k.init_task, t.pid)
    expect(k, "pids map to their tasks")


def test_pid_outliving_its_task() -> None:
    k, _ = busy()
    k.pid_idr.alloc("ghost", 100, 101)
    expect(k, "pids map to their tasks")


def test_nsproxy_count_wrong() -> None:
    k, t = busy()
    assert t.nsproxy is not None
    t.nsproxy.count += 1
    expect(k, "nsproxy counts equal their tasks")


def test_fd_table_count_wrong() -> None:
    k, t = busy()
    assert t.files is not None
    t.files.count += 1
    expect(k, "file tables counted by their tasks")


def test_fd_table_corrupt() -> None:
    k, t = busy()
    assert t.files is not None
    t.files._holes.append(0)  # fd 0 is open and free at once
    expect(k, "data structures")


def test_file_count_wrong() -> None:
    k, t = busy()
    t._fdget(0).count += 1
    expect(k, "file counts equal their fds")


def test_object_refcount_wrong() -> None:
    k, t = busy()
    t._fdget(0).obj.refcnt += 1
    expect(k, "object refcounts equal their holders")


def test_object_lost_its_id_record() -> None:
    k, t = busy()
    t._fdget(0).obj.id = 99
    expect(k, "objects own their ids")


def test_id_of_a_dead_object() -> None:
    k, t = busy()
    obj = t._fdget(0).obj
    del k.objects[obj]
    expect(k, "referenced objects are live")
    k.objects[obj] = None
    k.check()
    k.alloc_obj_id(k.init_ns, BpfMap(k, "stray"), ObjType.MAP)  # never registered
    expect(k, "ids belong to live objects")


# -- BTF ids, offloaded maps and their devices ---------------------------------------


def test_a_btf_id_without_its_object() -> None:
    k = Kernel(FIXED)
    k.btf_idr.alloc_cyclic("not a btf", 1, 0)
    expect(k, "BTF ids belong to live BTF objects")


def test_a_btf_object_without_its_id() -> None:
    k = Kernel(FIXED)
    k.init_task.btf_load()
    btf = k.bpf_objects()[0]
    btf.id = 7
    expect(k, "BTF objects own their global ids")


def _offloaded(k: Kernel) -> bpfns.BpfMap:
    dev = k.register_netdev()
    k.init_task.map_create(bpfns.BPF_MAP_TYPE_HASH, map_ifindex=dev)
    m = k.bpf_objects()[0]
    assert isinstance(m, bpfns.BpfMap)
    return m


def test_an_orphaned_offloaded_map_keeps_an_id() -> None:
    k = Kernel(FIXED)
    m = _offloaded(k)
    k.unregister_netdev(m.ifindex)
    m.id = 1
    expect(k, "an offloaded map whose device is gone has no ids")


def test_an_offloaded_map_its_device_does_not_list() -> None:
    k = Kernel(FIXED)
    m = _offloaded(k)
    assert m.netdev is not None
    m.netdev.offloaded.clear()
    expect(k, "offloaded maps are bound to their device")


def test_a_device_listing_a_map_that_is_not_bound() -> None:
    k = Kernel(FIXED)
    m = _offloaded(k)
    dev = m.netdev
    assert dev is not None
    m.netdev = None
    m.ifindex = 0
    assert list(dev.offloaded) == [m]
    expect(k, "devices hold only their live offloaded maps")
