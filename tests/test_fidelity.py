"""The remaining RFC defects (D5, D9, D12, D13, D14, D20) and the kernel rules an audit found.

Each defect runs in RFC (it shows) and FIXED (it does not). Each divergence test states
the kernel rule it checks and where it comes from (the kernel function, or the section
of the specification the model follows).
"""

from __future__ import annotations

import errno

import attrs
import pytest

from bpfns import (
    BPF_EXIST,
    BPF_FD_TYPE_RAW_TRACEPOINT,
    BPF_FD_TYPE_TRACEPOINT,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_NOEXIST,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    CLONE_NEWBPF,
    CLONE_NEWUSER,
    ENOTSUPP,
    FIXED,
    NS_GET_NSTYPE,
    NS_GET_USERNS,
    RFC,
    Behavior,
    BpfnsError,
    BtfInfo,
    BugKind,
    Cap,
    FaultSite,
    Kernel,
    NullPointerDereference,
    ObjType,
    SlabOutOfBounds,
    UseAfterFree,
    replay,
)
from bpfns._bpf_object import object_listing
from bpfns._netdev import NetdevTable
from bpfns.concurrency import explore
from bpfns.conformance import parse_nspid
from helpers import errno_of, walk

BOTH = pytest.mark.parametrize("behavior", [RFC, FIXED], ids=["rfc", "fixed"])


def only(**switches: bool) -> Behavior:
    """FIXED with the named switches on: one defect in isolation."""
    return attrs.evolve(FIXED, **switches)


# -- D5: offloaded maps -------------------------------------------------------------


def offloaded_map(behavior: Behavior) -> tuple[Kernel, int, int]:
    """A map offloaded to a new device, whose fd stays open; then the device goes."""
    k = Kernel(behavior, on_bug="record")
    dev = k.register_netdev()
    fd = k.init_task.map_create(BPF_MAP_TYPE_HASH, name="offl", max_entries=4, map_ifindex=dev)
    assert k.init_task.obj_get_info_by_fd(fd).ifindex == dev
    k.unregister_netdev(dev)
    return k, fd, dev


def test_d5_rfc_info_and_fdinfo_read_the_freed_record() -> None:
    k, fd, _ = offloaded_map(RFC)
    t = k.init_task
    assert walk(t, "map") == []  # __bpf_map_offload_destroy freed the ids
    assert k.reports == []  # the destroy itself is fine
    assert "map_id:\t1" in t.read_fdinfo(t, fd)  # the stale number, read after the free
    assert errno_of(lambda: t.obj_get_info_by_fd(fd)) == errno.ENODEV
    assert [(r.defect, r.kind) for r in k.reports] == [("D5", BugKind.USE_AFTER_FREE)] * 2
    t.close(fd)
    k.check()


def test_d5_rfc_the_freed_record_is_someone_elses_after_reuse() -> None:
    k, fd, _ = offloaded_map(RFC)
    t = k.init_task
    t.map_create(name="new")  # id 2, in the record the offloaded map still points at
    assert "map_id:\t2" in t.read_fdinfo(t, fd)
    assert k.reports[-1].defect == "D5"


def test_d5_rfc_raises_by_default() -> None:
    k = Kernel(RFC)
    dev = k.register_netdev()
    fd = k.init_task.map_create(BPF_MAP_TYPE_ARRAY, map_ifindex=dev)
    k.unregister_netdev(dev)
    with pytest.raises(UseAfterFree, match="D5"):
        k.init_task.obj_get_info_by_fd(fd)


def test_d5_fixed_clears_obj_id_and_reports_id_0() -> None:
    k, fd, _ = offloaded_map(FIXED)
    t = k.init_task
    assert "map_id:\t0" in t.read_fdinfo(t, fd)
    assert errno_of(lambda: t.obj_get_info_by_fd(fd)) == errno.ENODEV  # the device is gone
    assert k.reports == []
    k.check()
    t.close(fd)
    k.check()


def test_d5_only_the_offloaded_maps_of_that_device() -> None:
    k = Kernel(only(d5_offload_obj_id_dangling=True), on_bug="record")
    t = k.init_task
    a, b = k.register_netdev(), k.register_netdev("eth1")
    on_a = t.map_create(BPF_MAP_TYPE_HASH, map_ifindex=a)
    on_b = t.map_create(BPF_MAP_TYPE_HASH, map_ifindex=b)
    host = t.map_create()
    prog = t.prog_load(maps=(on_a, host))
    k.unregister_netdev(a)
    assert walk(t, "map") == [2, 3]
    assert t.obj_get_info_by_fd(on_b).id == 2 and t.obj_get_info_by_fd(host).id == 3
    assert k.reports == []
    info = t.obj_get_info_by_fd(prog)  # the program keeps its id (semantics D5) ...
    assert info.id == 1
    assert k.reports[-1].defect == "D5"  # ... but its map_ids read the freed record
    k.check()


def test_offload_checks_follow_bpf_map_offload_map_alloc() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    dev = k.register_netdev()
    c = t.clone()
    c.drop_capabilities(Cap.CAP_SYS_ADMIN)
    assert errno_of(lambda: c.map_create(BPF_MAP_TYPE_HASH, map_ifindex=dev)) == errno.EPERM
    assert errno_of(lambda: t.map_create(9, map_ifindex=dev)) == errno.EINVAL
    assert errno_of(lambda: t.map_create(BPF_MAP_TYPE_HASH, map_ifindex=99)) == errno.EINVAL
    assert errno_of(lambda: t.map_create(BPF_MAP_TYPE_HASH, map_ifindex=1)) == errno.EOPNOTSUPP
    assert walk(t, "map") == []


def test_netdev_registry() -> None:
    k = Kernel()
    assert k.register_netdev() == 2 and k.register_netdev() == 3
    assert sorted(k.snapshot().netdevs) == [(1, "lo"), (2, "sim0"), (3, "sim1")]
    for bad in ("", "a/b", "with space", "x" * 16, "sim0"):
        with pytest.raises(ValueError, match="netdev name"):
            k.register_netdev(bad)
    for ifindex in (1, 7):
        with pytest.raises(ValueError, match="unregister_netdev"):
            k.unregister_netdev(ifindex)
    k.unregister_netdev(2)
    assert k.register_netdev("sim0") == 4  # dev_index_reserve moves on
    k.check()


def test_offloaded_map_closed_before_the_device_goes() -> None:
    k = Kernel(RFC)
    dev = k.register_netdev()
    fd = k.init_task.map_create(BPF_MAP_TYPE_HASH, map_ifindex=dev)
    k.init_task.close(fd)  # bpf_map_offload_map_free unbinds it
    k.unregister_netdev(dev)
    assert k.reports == []
    k.check()


# -- D9: the preload's initcall -------------------------------------------------------


def test_d9_rfc_builtin_preload_dereferences_the_null_cache() -> None:
    with pytest.raises(NullPointerDereference, match=r"D9.*kmem_cache_alloc"):
        Kernel(RFC, bpf_preload="builtin")
    k = Kernel(RFC, bpf_preload="builtin", on_bug="record")
    assert [(r.defect, r.kind) for r in k.reports] == [("D9", BugKind.NULL_DEREF)]
    assert k.bpf_objects() == [] and k.bpffs.paths() == []
    assert "panic" in k.dmesg[-1]


def test_d9_fixed_preload_objects_take_the_first_ids() -> None:
    k = Kernel(FIXED, bpf_preload="builtin")
    t = k.init_task
    assert k.bpffs.paths() == ["/sys/fs/bpf/maps.debug", "/sys/fs/bpf/progs.debug"]
    assert (walk(t, "map"), walk(t, "prog"), walk(t, "link")) == ([1], [1, 2], [1, 2])
    assert t.obj_get_info_by_fd(t.map_create()).id == 2
    assert len(list(t.files.items())) == 1  # only that map: the preload closed its fds
    k.check()
    k.teardown()
    assert k.leftovers() == []  # what the boot made is not a leftover
    k.check()


def test_default_boot_has_no_preload() -> None:
    assert Kernel().bpf_objects() == [] and Kernel(FIXED).bpffs.paths() == []


def test_preloaded_kernel_traces_and_replays() -> None:
    k = Kernel(FIXED, bpf_preload="builtin", trace=True)
    k.init_task.map_create(name="after")
    again = replay(k.trace)
    assert again.snapshot() == k.snapshot()


# -- D12: BTF ids -----------------------------------------------------------------------


def container(k: Kernel) -> object:
    c = k.init_task.clone(CLONE_NEWBPF)
    c.drop_capabilities(Cap.CAP_SYS_ADMIN)  # CAP_BPF only
    return c


def test_d12_rfc_child_enumerates_every_host_btf() -> None:
    k = Kernel(RFC)
    host = k.init_task
    host.btf_load("vmlinux")
    host.btf_load("host_mod")
    c = k.init_task.clone(CLONE_NEWBPF)
    c.drop_capabilities(Cap.CAP_SYS_ADMIN)
    assert walk(c, "btf") == [1, 2]
    assert errno_of(lambda: c.btf_get_fd_by_id(1)) == errno.EPERM  # still CAP_SYS_ADMIN


def test_d12_fixed_btf_enumeration_needs_cap_sys_admin() -> None:
    k = Kernel(FIXED)
    k.init_task.btf_load("vmlinux")
    c = k.init_task.clone(CLONE_NEWBPF)
    c.drop_capabilities(Cap.CAP_SYS_ADMIN)
    assert errno_of(lambda: c.btf_get_next_id(0)) == errno.EPERM
    assert errno_of(lambda: c.map_get_next_id(0)) == errno.ENOENT  # maps: patch 11's gate


@BOTH
def test_btf_ids_are_global(behavior: Behavior) -> None:
    k = Kernel(behavior)
    host = k.init_task
    c = host.clone(CLONE_NEWBPF)
    fd = c.btf_load("mine")
    assert c.obj_get_info_by_fd(fd) == BtfInfo(1, "mine")
    by_id = host.btf_get_fd_by_id(1)
    assert host.obj_get_info_by_fd(by_id).id == 1  # the same id
    assert "btf_id:\t1" in host.read_fdinfo(c, fd)
    assert walk(host, "btf") == [1]
    assert errno_of(lambda: host.btf_get_next_id(2**31 - 1)) == errno.EINVAL
    assert errno_of(lambda: host.btf_get_fd_by_id(0)) == errno.ENOENT
    host.close(host.btf_get_fd_by_id(1))
    host.close(by_id)
    c.close(fd)  # the last reference: btf_free_id
    assert walk(host, "btf") == [] and k.bpf_objects() == []
    k.check()


def test_btf_load_needs_bpf_capable() -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone()
    t.drop_capabilities(Cap.CAP_SYS_ADMIN, Cap.CAP_BPF)
    assert errno_of(t.btf_load) == errno.EPERM
    assert errno_of(lambda: t.btf_get_next_id(0)) == errno.EPERM


def test_btf_ids_wrap_and_run_out() -> None:
    k = Kernel(FIXED, id_end=3)
    t = k.init_task
    fds = [t.btf_load(), t.btf_load()]
    assert errno_of(t.btf_load) == errno.ENOSPC
    t.close(fds[0])
    t.btf_load()
    assert walk(t, "btf") == [1, 2]
    k.check()


# -- D13: BPF_TASK_FD_QUERY -----------------------------------------------------------


def tracing_world(behavior: Behavior) -> tuple[Kernel, object, object, int, int]:
    """A host task with a perf event (prog 2), a container task with one of its own."""
    k = Kernel(behavior)
    host = k.init_task
    host.prog_load()
    host_ev = host.perf_event_open("sched_switch")
    host.perf_event_set_bpf(host_ev, host.prog_load())  # prog id 2
    c = host.clone(CLONE_NEWBPF)
    c.drop_capabilities(Cap.CAP_SYS_ADMIN)
    c_ev = c.perf_event_open("sys_enter")
    c.perf_event_set_bpf(c_ev, c.prog_load())  # id 1 in c, 3 globally
    return k, host, c, host_ev, c_ev


def test_d13_rfc_any_task_and_the_global_id() -> None:
    _, host, c, host_ev, c_ev = tracing_world(RFC)
    assert c.task_fd_query(host.pid, host_ev).buf == "sched_switch"  # not filtered
    query = c.task_fd_query(c.pid, c_ev)
    assert (query.prog_id, query.fd_type) == (3, BPF_FD_TYPE_TRACEPOINT)  # global, not 1


def test_d13_fixed_filters_and_reports_vnr() -> None:
    _, host, c, host_ev, c_ev = tracing_world(FIXED)
    assert errno_of(lambda: c.task_fd_query(host.pid, host_ev)) == errno.ENOENT
    assert c.task_fd_query(c.pid, c_ev).prog_id == 1
    assert host.task_fd_query(c.pid, c_ev).prog_id == 3  # the host sees its global id


@BOTH
def test_task_fd_query_raw_tracepoint_reports_vnr(behavior: Behavior) -> None:
    k = Kernel(behavior)
    k.init_task.prog_load()
    c = k.init_task.clone(CLONE_NEWBPF)
    fd = c.raw_tracepoint_open("sys_exit", c.prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT))
    query = c.task_fd_query(c.pid, fd)
    assert (query.prog_id, query.fd_type, query.buf) == (1, BPF_FD_TYPE_RAW_TRACEPOINT, "sys_exit")
    assert walk(c, "link") == [1]


@BOTH
def test_task_fd_query_errors(behavior: Behavior) -> None:
    k = Kernel(behavior)
    host = k.init_task
    bpf_only = host.clone()
    bpf_only.drop_capabilities(Cap.CAP_SYS_ADMIN)  # CAP_BPF in init: not bpfns_capable
    ev = host.perf_event_open("tp")
    assert errno_of(lambda: bpf_only.task_fd_query(host.pid, ev)) == errno.EPERM
    assert errno_of(lambda: host.task_fd_query(host.pid, ev)) == errno.ENOENT  # no program
    assert errno_of(lambda: host.task_fd_query(999, ev)) == errno.ENOENT
    assert errno_of(lambda: host.task_fd_query(host.pid, 77)) == errno.EBADF
    m = host.map_create()
    assert errno_of(lambda: host.task_fd_query(host.pid, m)) == ENOTSUPP
    link = host.link_create(host.prog_load())  # a perf_event link, not a raw tracepoint
    assert errno_of(lambda: host.task_fd_query(host.pid, link)) == ENOTSUPP
    prog = host.prog_load()
    host.perf_event_set_bpf(ev, prog)
    assert errno_of(lambda: host.perf_event_set_bpf(ev, prog)) == errno.EEXIST
    assert errno_of(lambda: host.perf_event_set_bpf(m, prog)) == errno.ENOTTY
    assert errno_of(lambda: host.perf_event_set_bpf(ev, m)) == errno.EINVAL
    assert errno_of(lambda: host.perf_event_open("")) == errno.EINVAL
    assert errno_of(lambda: host.raw_tracepoint_open("tp", prog)) == errno.EINVAL  # kprobe
    host.close(prog)
    host.close(ev)  # the event's reference on the program goes with it
    assert [o.name for o in k.bpf_objects() if o.refcnt] == ["", "", ""]  # map, link, prog
    assert str(BpfnsError(ENOTSUPP, "x")).startswith("[ENOTSUPP: Operation not supported]")
    assert repr(BpfnsError(ENOTSUPP, "x")) == "BpfnsError(524, 'x')"
    k.check()


# -- D14: 32-bit kernels ----------------------------------------------------------------


def test_d14_rfc_32_bit_cannot_express_clone_newbpf() -> None:
    k = Kernel(RFC, word_size=32)
    t = k.init_task
    assert errno_of(lambda: t.clone().unshare(CLONE_NEWBPF)) == errno.EINVAL
    child = t.clone(CLONE_NEWBPF)  # clone3's u64 flags, truncated for copy_namespaces
    assert child.bpf_ns is k.init_ns
    assert t.ns_ioctl(t.open_proc_ns(), NS_GET_NSTYPE) == 0  # a 32-bit long
    assert len(k.namespaces()) == 1


def test_d14_fixed_flag_below_bit_32_works_on_32_bit() -> None:
    k = Kernel(FIXED, word_size=32)
    t = k.init_task
    assert t.clone(CLONE_NEWBPF).bpf_ns.level == 1
    u = t.clone()
    u.unshare(CLONE_NEWBPF)
    assert u.bpf_ns.level == 1
    assert t.ns_ioctl(t.open_proc_ns(), NS_GET_NSTYPE) == CLONE_NEWBPF


@BOTH
def test_d14_64_bit_is_unaffected(behavior: Behavior) -> None:
    k = Kernel(behavior)
    t = k.init_task.clone()
    t.unshare(CLONE_NEWBPF)
    assert t.bpf_ns.level == 1 and t.clone(CLONE_NEWBPF).bpf_ns.level == 2
    assert t.ns_ioctl(t.open_proc_ns(), NS_GET_NSTYPE) == CLONE_NEWBPF


# -- D20: map-in-map lookups ---------------------------------------------------------


def map_in_map(behavior: Behavior) -> tuple[Kernel, object, int]:
    """A container with an outer array whose slot 0 holds its own map (id 1 in it, 2 in init)."""
    k = Kernel(behavior)
    k.init_task.map_create(name="host")
    c = k.init_task.clone(CLONE_NEWBPF)
    inner = c.map_create(name="inner")
    outer = c.map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "outer", max_entries=2, inner_map_fd=inner)
    c.map_update_elem(outer, 0, inner)
    c.close(inner)  # the element keeps it
    return k, c, outer


def test_d20_rfc_lookup_returns_the_global_id() -> None:
    _, c, outer = map_in_map(RFC)
    assert c.map_lookup_elem(outer, 0) == 2


def test_d20_fixed_lookup_returns_the_callers_id() -> None:
    k, c, outer = map_in_map(FIXED)
    assert c.map_lookup_elem(outer, 0) == 1
    host = k.init_task
    host.obj_pin(host.map_get_fd_by_id(1), "/sys/fs/bpf/host")
    c.map_update_elem(outer, 1, c.obj_get("/sys/fs/bpf/host"))
    assert c.map_lookup_elem(outer, 1) == 0  # the host map is invisible in c
    pinned = host.obj_get("/sys/fs/bpf/host")
    assert host.obj_get_info_by_fd(pinned).id == 1
    k.check()


@BOTH
def test_map_in_map_references_and_errors(behavior: Behavior) -> None:
    k, c, outer = map_in_map(behavior)
    assert walk(c, "map") == [1, 2]  # the inner map lives on in the element
    wrong = c.map_create(key_size=8)
    assert errno_of(lambda: c.map_update_elem(outer, 1, wrong)) == errno.EINVAL  # template
    assert errno_of(lambda: c.map_update_elem(outer, 1, outer)) == errno.EINVAL  # one level
    assert errno_of(lambda: c.map_update_elem(outer, 2, c.map_create())) == errno.E2BIG
    assert errno_of(lambda: c.map_lookup_elem(outer, 1)) == errno.ENOENT  # empty slot
    assert errno_of(lambda: c.map_lookup_elem(outer, 5)) == errno.ENOENT
    assert errno_of(lambda: c.map_update_elem(outer, 0, 0, 3)) == errno.EINVAL
    assert errno_of(lambda: c.map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, inner_map_fd=outer)) == (
        errno.EINVAL
    )
    assert errno_of(lambda: c.map_create(BPF_MAP_TYPE_HASH_OF_MAPS)) == errno.EBADF
    assert (
        errno_of(lambda: c.map_create(BPF_MAP_TYPE_HASH_OF_MAPS, value_size=8, inner_map_fd=wrong))
        == errno.EINVAL
    )
    c.map_delete_elem(outer, 0)  # the inner map's last reference
    assert errno_of(lambda: c.map_delete_elem(outer, 0)) == errno.ENOENT
    k.check()
    c.close(outer)
    k.check()


@BOTH
def test_outer_map_free_puts_its_inner_maps(behavior: Behavior) -> None:
    k, c, outer = map_in_map(behavior)
    hash_outer = c.map_create(
        BPF_MAP_TYPE_HASH_OF_MAPS, max_entries=1, inner_map_fd=c.map_create()
    )
    c.map_update_elem(hash_outer, 9, c.map_get_fd_by_id(1))
    assert errno_of(lambda: c.map_update_elem(hash_outer, 10, c.map_get_fd_by_id(1))) == (
        errno.E2BIG
    )
    c.map_update_elem(hash_outer, 9, c.map_get_fd_by_id(1), BPF_EXIST)  # replaces, puts old
    c.close(outer)
    c.close(hash_outer)
    for fd, _ in list(c.files.items()):
        c.close(fd)
    assert walk(c, "map") == []
    k.check()


def test_plain_map_elements() -> None:
    t = Kernel(FIXED).init_task
    arr = t.map_create(BPF_MAP_TYPE_ARRAY, max_entries=2)
    assert t.map_lookup_elem(arr, 1) == 0  # arrays are zero-filled
    t.map_update_elem(arr, 1, 7)
    assert t.map_lookup_elem(arr, 1) == 7
    assert errno_of(lambda: t.map_update_elem(arr, 1, 7, BPF_NOEXIST)) == errno.EEXIST
    assert errno_of(lambda: t.map_delete_elem(arr, 1)) == errno.EINVAL
    h = t.map_create(BPF_MAP_TYPE_HASH, max_entries=1)
    assert errno_of(lambda: t.map_update_elem(h, 1, 1, BPF_EXIST)) == errno.ENOENT
    t.map_update_elem(h, 1, 1, BPF_NOEXIST)
    assert errno_of(lambda: t.map_update_elem(h, 1, 2, BPF_NOEXIST)) == errno.EEXIST
    assert errno_of(lambda: t.map_update_elem(h, 2, 2)) == errno.E2BIG
    with pytest.raises(ValueError, match="key"):
        t.map_lookup_elem(h, 2**32)
    assert errno_of(lambda: t.map_lookup_elem(t.prog_load(), 0)) == errno.EINVAL


# -- divergences: the kernel's behaviour wins ---------------------------------------


def test_ns_get_userns_walks_up_from_the_owner() -> None:
    """ns_get_owner (fs/nsfs.c): the owner must be the caller's user ns or below it."""
    k = Kernel(FIXED)
    host = k.init_task
    ctr = host.clone(CLONE_NEWUSER)  # a task in a child user namespace
    ctr.unshare(CLONE_NEWBPF)  # a BPF namespace that ctr's user namespace owns
    # the child asks about init's namespace, owned by init_user_ns (above it): EPERM
    assert errno_of(lambda: ctr.ns_ioctl(ctr.open_proc_ns(1), NS_GET_USERNS)) == errno.EPERM
    # host root asks about the container's namespace (owner below init_user_ns): an fd
    fd = host.ns_ioctl(host.open_proc_ns(ctr.pid), NS_GET_USERNS)
    assert host.files.get(fd).obj is ctr.cred.user_ns
    # and the container about its own
    ctr.ns_ioctl(ctr.open_proc_ns(), NS_GET_USERNS)
    k.check()


def test_d2_window_before_the_rcu_free_is_no_use_after_free() -> None:
    """delayed_free_bpfns runs after a grace period: until then the memory is valid."""
    k = Kernel(RFC)
    child = k.init_task.clone(CLONE_NEWBPF)
    fd = child.map_create()
    child.obj_pin(fd, "/sys/fs/bpf/kept")
    ns = child.bpf_ns
    child.exit()
    assert not ns.alive and ns.state.value == "destroyed"
    k.init_task.unlink("/sys/fs/bpf/kept")  # idr_remove on the destroyed (empty) IDR
    assert k.reports == []
    assert walk(k.init_task, "map") == []  # init's id went too
    k.synchronize_rcu()
    k.check()


def test_d2_reused_memory_of_another_level_gets_the_record() -> None:
    """kmem_cache_free(numbers[level].ns->obj_id_cachep) reads the reused memory."""
    k = Kernel(RFC, on_bug="record")
    a = k.init_ns.create_child(name="a")
    gone = k.init_ns.create_child(name="gone")  # level 1
    pinned = k.alloc_obj_id(gone, "pinned", ObjType.MAP)
    gone.put()
    k.synchronize_rcu()
    deep = a.create_child(name="deep")  # level 2, in gone's memory
    k.free_obj_id(pinned, ObjType.MAP)
    assert [r.kind for r in k.reports] == [BugKind.USE_AFTER_FREE] * 2
    cache = deep.obj_id_cachep
    assert cache.strays and deep.fast_owner is None  # a level-1 record in bpf_3
    new = k.alloc_obj_id(deep, "new", ObjType.MAP)  # gets the short record
    assert k.reports[-1].kind is BugKind.OUT_OF_BOUNDS and k.reports[-1].defect == "D2"
    assert [e.nr for e in new.numbers] == [2, 1, 1]
    assert not cache.strays and deep.fast_owner is k
    k.check()


def test_d2_out_of_bounds_raises_by_default() -> None:
    k = Kernel(RFC, on_bug="record")
    a = k.init_ns.create_child()
    gone = k.init_ns.create_child()
    pinned = k.alloc_obj_id(gone, "pinned", ObjType.MAP)
    gone.put()
    k.synchronize_rcu()
    deep = a.create_child()
    k.free_obj_id(pinned, ObjType.MAP)
    k.sanitizer.on_bug = "raise"
    with pytest.raises(SlabOutOfBounds, match="past the end"):
        k.alloc_obj_id(deep, "new", ObjType.MAP)


def test_d2_reused_memory_of_a_deeper_level_wastes_the_record() -> None:
    k = Kernel(RFC, on_bug="record")
    deep = k.init_ns.create_child().create_child()  # level 2, its parent pinned by it
    pinned = k.alloc_obj_id(deep, "pinned", ObjType.MAP)
    deep.put()
    k.synchronize_rcu()
    shallow = k.init_ns.create_child(name="shallow")  # level 1, in deep's memory
    k.free_obj_id(pinned, ObjType.MAP)
    reports = len(k.reports)
    k.alloc_obj_id(shallow, "fits", ObjType.MAP)  # a larger record: no report
    assert len(k.reports) == reports
    k.check()


def test_init_bpf_ns_refcount_reads_0() -> None:
    """semantics §2.1: init_bpf_ns is static and its count never touched (get/put skip it)."""
    k = Kernel()
    assert k.init_ns.refcount == 0
    t = k.init_task.clone()
    t.exit()
    assert k.init_ns.refcount == 0
    assert k.snapshot().namespaces[0][4] == 0


@pytest.mark.parametrize("kind", ["map", "prog", "link"])
def test_get_fd_by_id_checks_mask_then_capability_then_file_flags(kind: str) -> None:
    """bpf_map_get_fd_by_id: BPF_OBJ_FLAG_MASK, then capable(), then bpf_get_file_flag."""
    k = Kernel(FIXED)
    k.init_task.link_create(k.init_task.prog_load())
    k.init_task.map_create()
    user = k.init_task.clone()
    user.drop_capabilities(Cap.CAP_SYS_ADMIN, Cap.CAP_BPF)
    get = getattr(user, f"{kind}_get_fd_by_id")
    assert errno_of(lambda: get(1)) == errno.EPERM
    if kind == "map":
        assert errno_of(lambda: user.map_get_fd_by_id(1, 1 << 5)) == errno.EINVAL  # mask
        assert errno_of(lambda: user.map_get_fd_by_id(1, 0x18)) == errno.EPERM  # not EINVAL
        assert errno_of(lambda: k.init_task.map_get_fd_by_id(1, 0x18)) == errno.EINVAL


def test_clone3_rejects_flags_it_does_not_know() -> None:
    """clone3_args_valid (kernel/fork.c): unknown bits, the exit-signal byte, CLONE_DETACHED."""
    t = Kernel().init_task
    for flags in (1 << 40, 0x11, 0x00400000):
        assert errno_of(lambda flags=flags: t.clone(flags)) == errno.EINVAL
    # the legacy clone() takes its exit signal in the low byte
    assert t.clone(0x11, legacy=True).bpf_ns is t.bpf_ns
    assert t.clone(0x80).bpf_ns is t.bpf_ns  # CLONE_NEWTIME is a clone3 flag


def test_proc_ns_of_a_missing_pid_is_enoent() -> None:
    """proc_pid_lookup: no /proc/<pid> directory, so the open fails with ENOENT."""
    t = Kernel().init_task
    assert errno_of(lambda: t.open_proc_ns(4242)) == errno.ENOENT


# -- the paths the scenarios above do not take ----------------------------------------


def test_btf_failed_fd_install_frees_the_id_and_burns_it() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    before = k.snapshot()
    k.faults.fail_nth(1, [FaultSite.FILE])
    assert errno_of(t.btf_load) == errno.ENOMEM
    assert before.unexpected(k.snapshot(), "btf_load") == []  # the cursor may move
    assert walk(t, "btf") == []
    t.btf_load()
    k.faults.fail_nth(1, [FaultSite.FILE])
    assert errno_of(lambda: t.btf_get_fd_by_id(2)) == errno.ENOMEM  # id 1 was burned
    assert k.bpf_objects()[0].refcnt == 1
    k.check()


def test_btf_on_simulated_cpus() -> None:
    def setup(k: Kernel) -> list[object]:
        t = k.init_task
        fd = t.btf_load()
        return [t.btf_load, lambda: t.close(fd)]

    result = explore(setup, behavior=FIXED)
    assert result.exhaustive and result.clean


def test_btf_listing() -> None:
    k = Kernel(FIXED)
    k.init_task.btf_load("vmlinux")
    k.init_task.btf_load()
    assert [object_listing(b, k.init_ns) for b in k.bpf_objects()] == [
        "name vmlinux",
        "name <anon>",
    ]


def test_netdev_indexes_skip_taken_ones_and_wrap() -> None:
    table = NetdevTable()
    table.last = 0  # the search meets lo (taken) first
    assert table.register("a").ifindex == 2
    table.last = 2**31 - 1  # wraps to 1, taken, then 2, taken
    assert table.register("b").ifindex == 3


def test_d5_stale_reads_from_deeper_and_sibling_namespaces() -> None:
    k = Kernel(only(d5_offload_obj_id_dangling=True), on_bug="record")
    owner = k.init_task.clone(CLONE_NEWBPF)
    sibling = k.init_task.clone(CLONE_NEWBPF)
    deeper = owner.clone(CLONE_NEWBPF)
    dev = k.register_netdev()
    fd = owner.map_create(BPF_MAP_TYPE_ARRAY, map_ifindex=dev)
    deeper_fd = owner.send_fd(fd, deeper)
    sibling_fd = owner.send_fd(fd, sibling)
    k.unregister_netdev(dev)
    assert "map_id:\t0" in deeper.read_fdinfo(deeper, deeper_fd)  # a level the record lacks
    assert "map_id:\t0" in sibling.read_fdinfo(sibling, sibling_fd)  # D6 fixed: not its own
    assert "map_id:\t1" in owner.read_fdinfo(owner, fd)
    assert [r.defect for r in k.reports] == ["D5"] * 3


def test_strays_leave_a_cache_one_at_a_time() -> None:
    k = Kernel(RFC, on_bug="record")
    a = k.init_ns.create_child()
    gone = [k.init_ns.create_child() for _ in range(2)]
    pinned = [k.alloc_obj_id(ns, "pinned", ObjType.MAP) for ns in gone]
    for ns in gone:
        ns.put()
    k.synchronize_rcu()
    deep = [a.create_child() for _ in range(2)]  # level 2, in the freed level-1 memory
    for oid in pinned:
        k.free_obj_id(oid, ObjType.MAP)  # two strays in bpf_3
    mine = k.alloc_obj_id(deep[0], "mine", ObjType.MAP)
    k.free_obj_id(mine, ObjType.MAP)  # a record of the right size, on top of them
    cache = deep[0].obj_id_cachep
    assert len(cache.strays) == 1  # mine took one stray; the free put it back fitted
    k.alloc_obj_id(deep[0], "fits", ObjType.MAP)  # the fitted record: not a stray
    assert len(cache.strays) == 1 and deep[0].fast_owner is None
    k.alloc_obj_id(deep[0], "last", ObjType.MAP)
    assert not cache.strays and deep[1].fast_owner is k
    k.check()


def test_map_alloc_faults_after_its_checks() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    dev = k.register_netdev()
    k.faults.fail_nth(1, [FaultSite.BPF_OBJECT])
    assert errno_of(lambda: t.map_create(BPF_MAP_TYPE_HASH, map_ifindex=dev)) == errno.ENOMEM
    assert walk(t, "map") == []
    k.check()


def test_parse_nspid_needs_the_line() -> None:
    with pytest.raises(ValueError, match="no NSpid line"):
        parse_nspid("Name:\tsh\n")
