"""The bpf() commands after patches 08-11 (semantics §2.3 "Callers", 2.5, D3, D8)."""

from __future__ import annotations

import enum
import errno

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfns import (
    BPF_F_RDONLY,
    BPF_F_WRONLY,
    CLONE_NEWBPF,
    FIXED,
    INT_MAX,
    RFC,
    U32_MAX,
    AuditRecord,
    Behavior,
    BpfnsError,
    Cap,
    FaultSite,
    Kernel,
    LinkInfo,
    MapInfo,
    NsState,
    NullPointerDereference,
    ObjType,
    ProgInfo,
    Task,
    UseAfterFree,
)
from helpers import errno_of, walk


def container(k: Kernel) -> Task:
    return k.init_task.clone(CLONE_NEWBPF, name="container")


# -- creation -------------------------------------------------------------------------


def test_map_create_allocates_at_every_level() -> None:
    k = Kernel()
    k.init_task.map_create(name="host")
    c = container(k)
    fd = c.map_create(name="mine", key_size=8, value_size=16, max_entries=4)
    info = c.obj_get_info_by_fd(fd)
    assert info == MapInfo(1, 2, 8, 16, 4, "mine")
    assert k.init_task.obj_get_info_by_fd(k.init_task.map_get_fd_by_id(2)).name == "mine"
    (m,) = [o for o in k.objects if o.name == "mine"]
    assert m.id == 2  # map->id is the level-0 id
    assert m.obj_id is not None
    assert m.obj_id.nr_ns(c.bpf_ns) == 1
    k.check()


def test_create_needs_cap_bpf_or_sys_admin() -> None:
    k = Kernel()
    t = k.init_task.clone()
    t.drop_capabilities(Cap.CAP_BPF)
    t.map_create()  # CAP_SYS_ADMIN is enough
    t.drop_capabilities(Cap.CAP_SYS_ADMIN)
    before = k.snapshot()
    assert errno_of(t.map_create) == errno.EPERM
    assert errno_of(t.prog_load) == errno.EPERM
    assert k.snapshot() == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "a_name_that_is_too_long"},
        {"name": "bad name"},
        {"name": "caf\u00e9"},  # UTF-8 bytes 0xc3 0xa9: the kernel's isalnum rejects 0xa9
        {"name": "\u0661"},  # ARABIC-INDIC DIGIT ONE: str.isalnum() is True, the kernel's not
        {"key_size": 0},
        {"value_size": 0},
        {"max_entries": 0},
    ],
)
def test_map_create_einval(kwargs: dict[str, object]) -> None:
    k = Kernel()
    before = k.snapshot()
    assert errno_of(lambda: k.init_task.map_create(**kwargs)) == errno.EINVAL  # type: ignore[arg-type]
    assert k.snapshot() == before


def test_map_create_accepts_every_allowed_character() -> None:
    t = Kernel().init_task
    for name in ("AZaz09_.", "x" * 15, ""):
        assert t.obj_get_info_by_fd(t.map_create(name=name)).name == name


def test_map_create_eperm_comes_before_argument_errors() -> None:
    t = Kernel().init_task.clone()
    t.drop_capabilities(Cap.CAP_BPF, Cap.CAP_SYS_ADMIN)
    assert errno_of(lambda: t.map_create(name="bad name", key_size=0)) == errno.EPERM


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": 7}, TypeError, "name must be a str"),
        ({"key_size": 4.0}, TypeError, "key_size must be an int"),
        ({"value_size": True}, TypeError, "value_size must be an int"),
        ({"max_entries": -1}, ValueError, "max_entries=-1 does not fit a C u32"),
        ({"map_type": 2**32}, ValueError, "map_type=4294967296 does not fit a C u32"),
    ],
)
def test_map_create_misuse(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    k = Kernel()
    before = k.snapshot()
    with pytest.raises(error, match=match):
        k.init_task.map_create(**kwargs)  # type: ignore[arg-type]
    assert k.snapshot() == before


def test_close_checks_its_fd_as_a_c_int() -> None:
    t = Kernel().init_task
    with pytest.raises(ValueError, match="does not fit a C int"):
        t.close(2**31)
    with pytest.raises(TypeError, match="fd must be an int"):
        t.close("0")  # type: ignore[arg-type]
    assert errno_of(lambda: t.close(-1)) == errno.EBADF


def test_the_hot_commands_refuse_an_exited_task() -> None:
    t = Kernel().init_task.clone()
    fd = t.map_create()
    t.exit()
    with pytest.raises(ValueError, match=r"close: .* has exited; use a live task"):
        t.close(fd)
    with pytest.raises(ValueError, match=r"BPF_MAP_CREATE\): .* has exited"):
        t.map_create()


def test_emfile_frees_the_new_object_and_keeps_only_cursors() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    assert t.files is not None
    t.files.nofile = 1
    t.map_create()
    before = k.snapshot()
    assert errno_of(t.map_create) == errno.EMFILE
    assert errno_of(t.prog_load) == errno.EMFILE
    assert [r.op for r in k.audit_log] == ["LOAD", "UNLOAD"]
    assert k.rcu_pending == ("bpf_prog_free()",)  # the unloaded program's RCU free
    assert k.synchronize_rcu() == 1
    assert k.snapshot().objects == before.objects
    assert errno_of(lambda: t.map_get_fd_by_id(1)) == errno.EMFILE
    k.check()


# -- D3 ---------------------------------------------------------------------------------

ONLY_D3 = attrs.evolve(FIXED, d3_create_returns_zero=True)


@pytest.mark.parametrize(("behavior", "returns_zero"), [(ONLY_D3, True), (FIXED, False)])
def test_d3_map_create_when_ids_run_out(behavior: Behavior, returns_zero: bool) -> None:
    k = Kernel(behavior, id_end=2)  # one id per level
    k.init_task.map_create()
    before = k.snapshot()
    if returns_zero:
        assert k.init_task.map_create() == 0  # "fd 0": userspace thinks it succeeded
    else:
        assert errno_of(k.init_task.map_create) == errno.ENOSPC
    assert k.snapshot() == before  # either way the map was freed
    k.check()


@pytest.mark.parametrize(("behavior", "returns_zero"), [(ONLY_D3, True), (FIXED, False)])
def test_d3_prog_load_when_ids_run_out(behavior: Behavior, returns_zero: bool) -> None:
    k = Kernel(behavior, id_end=2)
    t = k.init_task
    map_fd = t.map_create()
    t.prog_load()
    before = k.snapshot()
    k.faults.fail_nth(1, sites=[FaultSite.OBJ_ID])
    if returns_zero:
        assert t.prog_load(maps=(map_fd,)) == 0
    else:
        assert errno_of(lambda: t.prog_load(maps=(map_fd,))) == errno.ENOMEM
    assert k.snapshot() == before  # the used map's reference was dropped again
    k.check()


def test_d3_in_rfc_also_reads_the_uninitialised_record() -> None:
    k = Kernel(RFC, id_end=2, on_bug="record")
    k.init_task.map_create()
    assert k.init_task.map_create() == 0
    assert [r.defect for r in k.reports] == ["D1"]


# -- programs, links, RCU -----------------------------------------------------------------


def test_prog_holds_its_maps_until_a_grace_period() -> None:
    k = Kernel()
    c = container(k)
    m = c.map_create(name="m")
    p = c.prog_load(name="p", maps=(m, m))
    assert c.obj_get_info_by_fd(p) == ProgInfo(1, 2, "p", (1,), 0)
    c.close(m)
    assert walk(c, "map") == [1]  # held by the program
    c.close(p)
    assert walk(c, "prog") == []  # the program's ids go at once
    assert walk(c, "map") == [1]  # its maps only after the grace period
    assert k.synchronize_rcu() == 1
    assert walk(c, "map") == []
    k.check()


def test_prog_load_bad_map_fds() -> None:
    k = Kernel()
    t = k.init_task
    p = t.prog_load()
    before = k.snapshot()
    assert errno_of(lambda: t.prog_load(maps=(42,))) == errno.EBADF
    assert errno_of(lambda: t.prog_load(maps=(p,))) == errno.EINVAL
    assert k.snapshot() == before


def test_link_holds_its_program() -> None:
    k = Kernel()
    c = container(k)
    p = c.prog_load(name="p")
    link = c.link_create(p)
    assert c.obj_get_info_by_fd(link) == LinkInfo(1, 7, 1)
    c.close(p)
    assert walk(c, "prog") == [1]
    c.close(link)
    assert walk(c, "link") == []
    assert walk(c, "prog") == []
    k.check()


def test_primed_link_is_eagain_until_settled() -> None:
    k = Kernel()
    t = k.init_task
    primer = t.link_prime(t.prog_load())
    assert walk(t, "link") == [1]  # already in the IDR...
    assert errno_of(lambda: t.link_get_fd_by_id(1)) == errno.EAGAIN  # ...but not settled
    k.check()
    fd = primer.settle()
    assert t.obj_get_info_by_fd(t.link_get_fd_by_id(1)).id == 1
    assert isinstance(t.obj_get_info_by_fd(fd), LinkInfo)
    with pytest.raises(ValueError, match="already settled"):
        primer.settle()
    k.check()


def test_link_cleanup_frees_everything() -> None:
    k = Kernel()
    t = k.init_task
    p = t.prog_load()
    before = k.snapshot()
    primer = t.link_prime(p)
    primer.cleanup()
    assert k.snapshot().without_cursors() == before.without_cursors()
    with pytest.raises(ValueError, match="cleaned up"):
        primer.cleanup()
    assert t.link_create(p) == 1  # the reserved fd 1 was given back
    k.check()


def test_link_errors() -> None:
    k = Kernel(FIXED, id_end=2)
    t = k.init_task
    m = t.map_create()
    p = t.prog_load()
    assert errno_of(lambda: t.link_create(m)) == errno.EINVAL
    assert errno_of(lambda: t.link_create(99)) == errno.EBADF
    t.link_create(p)
    before = k.snapshot()
    assert errno_of(lambda: t.link_create(p)) == errno.ENOSPC  # links have no D3
    assert k.snapshot() == before
    assert t.files is not None
    t.files.nofile = len(t.files)
    assert errno_of(lambda: t.link_create(p)) == errno.EMFILE
    assert k.snapshot() == before


# -- GET_NEXT_ID and GET_FD_BY_ID -----------------------------------------------------------


def test_get_next_id_lists_ns_local_ids_in_order() -> None:
    k = Kernel()
    for _ in range(3):
        k.init_task.map_create()
    c = container(k)
    for _ in range(2):
        c.map_create()
    assert walk(c, "map") == [1, 2]
    assert walk(k.init_task, "map") == [1, 2, 3, 4, 5]
    assert c.map_get_next_id(1) == 2
    assert errno_of(lambda: c.map_get_next_id(2)) == errno.ENOENT


def test_get_next_id_errors() -> None:
    k = Kernel()
    t = k.init_task.clone()
    assert errno_of(lambda: t.prog_get_next_id(INT_MAX)) == errno.EINVAL
    t.drop_capabilities(Cap.CAP_SYS_ADMIN)
    # CAP_BPF alone in the init namespace is still EPERM...
    assert errno_of(lambda: t.map_get_next_id(0)) == errno.EPERM
    assert errno_of(lambda: t.link_get_fd_by_id(1)) == errno.EPERM
    # ...EINVAL is checked first...
    assert errno_of(lambda: t.map_get_next_id(INT_MAX)) == errno.EINVAL
    with pytest.raises(ValueError, match="u32"):
        t.map_get_next_id(-1)


def test_bpfns_capable_in_a_child_namespace() -> None:
    k = Kernel()
    c = container(k)
    c.drop_capabilities(Cap.CAP_SYS_ADMIN)
    fd = c.map_create()  # CAP_BPF creates
    assert walk(c, "map") == [1]  # CAP_BPF in a non-init namespace iterates (patch 11)
    assert c.obj_get_info_by_fd(c.map_get_fd_by_id(1)).id == 1
    c.drop_capabilities(Cap.CAP_BPF)
    assert errno_of(lambda: c.map_get_next_id(0)) == errno.EPERM
    assert fd == 0


def test_cap_sys_admin_in_a_child_still_sees_only_its_subtree() -> None:
    k = Kernel()
    k.init_task.map_create(name="host")
    c = container(k)
    assert walk(c, "map") == []
    assert errno_of(lambda: c.map_get_fd_by_id(1)) == errno.ENOENT


def test_get_fd_by_id_errno_table() -> None:
    k = Kernel()
    t = k.init_task
    t.map_create()
    t.prog_load()
    assert errno_of(lambda: t.prog_get_fd_by_id(0)) == errno.ENOENT
    assert errno_of(lambda: t.map_get_fd_by_id(0)) == errno.ENOENT
    assert errno_of(lambda: t.link_get_fd_by_id(0)) == errno.ENOENT
    assert errno_of(lambda: t.prog_get_fd_by_id(7)) == errno.ENOENT
    rw = BPF_F_RDONLY | BPF_F_WRONLY
    assert errno_of(lambda: t.map_get_fd_by_id(1, open_flags=rw)) == errno.EINVAL
    assert errno_of(lambda: t.map_get_fd_by_id(1, open_flags=1)) == errno.EINVAL
    fd = t.map_get_fd_by_id(1, open_flags=BPF_F_RDONLY)
    assert t.obj_get_info_by_fd(fd).id == 1
    assert t.obj_get_info_by_fd(t.prog_get_fd_by_id(1)).id == 1


# -- info, fdinfo, audit -------------------------------------------------------------------


def test_info_translates_map_ids_and_prog_id() -> None:
    k = Kernel()
    host_map = k.init_task.map_create(name="host")
    c = container(k)
    c.files.fd_install(c.files.reserve(), k.init_task._fdget(host_map))  # type: ignore[union-attr]
    k.init_task._fdget(host_map).count += 1
    own = c.map_create(name="own")
    p = c.prog_load(maps=(own, host_map))
    assert c.obj_get_info_by_fd(p).map_ids == (1, 0)  # type: ignore[union-attr]
    assert k.init_task.obj_get_info_by_fd(k.init_task.prog_get_fd_by_id(1)).map_ids == (2, 1)  # type: ignore[union-attr]
    link = c.link_create(p)
    assert c.obj_get_info_by_fd(link) == LinkInfo(1, 7, 1)
    k.check()


def test_fdinfo_uses_the_readers_namespace() -> None:
    k = Kernel()
    k.init_task.map_create()
    c = container(k)
    fd = c.map_create()
    p = c.prog_load(maps=(fd,))
    link = c.link_create(p)
    assert "map_id:\t1\n" in c.read_fdinfo(c, fd)
    assert "map_id:\t2\n" in k.init_task.read_fdinfo(c, fd)
    assert "prog_id:\t1\n" in k.init_task.read_fdinfo(c, p)
    text = k.init_task.read_fdinfo(c, link)
    assert text.endswith("link_type:\t7\nlink_id:\t1\nprog_id:\t1\n")
    nsfd = c.open_proc_ns()
    assert k.init_task.read_fdinfo(c, nsfd) == "pos:\t0\nflags:\t02000002\n"
    assert errno_of(lambda: k.init_task.read_fdinfo(c, 77)) == errno.EBADF


def test_info_by_fd_errors() -> None:
    k = Kernel()
    t = k.init_task
    assert errno_of(lambda: t.obj_get_info_by_fd(3)) == errno.EBADFD  # not EBADF
    assert errno_of(lambda: t.map_get_info_by_fd(3)) == errno.EBADFD
    assert errno_of(lambda: t.obj_get_info_by_fd(t.open_proc_ns())) == errno.EINVAL


def test_audit_prog_id_depends_on_who_runs_the_code() -> None:
    k = Kernel()
    k.init_task.prog_load()
    c = container(k)
    p = c.prog_load(name="p")
    fd = k.init_task.prog_get_fd_by_id(2)
    c.close(p)
    k.init_task.close(fd)  # the last releaser is in init: it sees the global id
    assert k.audit_log[1:] == [
        AuditRecord("LOAD", 1, c.pid),
        AuditRecord("UNLOAD", 2, 1),
    ]


@pytest.mark.parametrize("behavior", [RFC, FIXED])
def test_d8_last_prog_reference_dropped_at_exit(behavior: Behavior) -> None:
    k = Kernel(behavior)
    k.init_task.prog_load()
    c = container(k)
    c.prog_load(name="p")
    if behavior is RFC:
        with pytest.raises(NullPointerDereference) as info:
            c.exit()
        assert info.value.report.defect == "D8"
        assert "has already dropped its nsproxy" in info.value.report.what
    else:
        c.exit()
        assert k.audit_log[-1] == AuditRecord("UNLOAD", 2, c.pid)  # the global id
        k.synchronize_rcu()
        k.check()


def test_d8_in_record_mode_logs_prog_id_zero() -> None:
    k = Kernel(RFC, on_bug="record")
    t = k.init_task.clone()
    t.prog_load()
    t.exit()
    assert k.audit_log[-1] == AuditRecord("UNLOAD", 0, t.pid)
    assert [r.defect for r in k.reports] == ["D8"]


def test_kernel_worker_releases_see_global_walk() -> None:
    k = Kernel()
    c = container(k)
    m = c.map_create()
    p = c.prog_load(maps=(m,))
    link = c.link_create(p)
    c.close(p)
    c.obj_pin(link, "/sys/fs/bpf/l")
    c.close(link)
    c.close(m)
    k.init_task.unlink("/sys/fs/bpf/l")  # init releases: global ids
    assert k.audit_log[-1] == AuditRecord("UNLOAD", 1, 1)


# -- files: close, send, pins ------------------------------------------------------------


def test_close_errors() -> None:
    k = Kernel()
    assert errno_of(lambda: k.init_task.close(5)) == errno.EBADF
    with pytest.raises(TypeError):
        k.init_task.close("5")  # type: ignore[arg-type]


def test_send_fd_shares_the_open_file() -> None:
    k = Kernel()
    a = container(k)
    b = k.init_task.clone()
    fd = a.map_create()
    got = a.send_fd(fd, b)
    assert b.obj_get_info_by_fd(got).id == 1
    a.exit()
    assert b.obj_get_info_by_fd(got).id == 1  # still alive through b's fd
    assert b.files is not None
    b.files.nofile = len(b.files)
    c = k.init_task.clone()
    assert errno_of(lambda: c.send_fd(c.map_create(), b)) == errno.EMFILE
    k.check()


def test_pins() -> None:
    k = Kernel()
    t = k.init_task
    fd = t.map_create(name="m")
    t.obj_pin(fd, "/sys/fs/bpf/m")
    assert errno_of(lambda: t.obj_pin(fd, "/sys/fs/bpf/m")) == errno.EEXIST
    assert errno_of(lambda: t.obj_pin(fd, "/tmp/m")) == errno.EPERM
    assert errno_of(lambda: t.obj_pin(fd, "/sys/fs/bpf/")) == errno.EPERM
    assert errno_of(lambda: t.obj_pin(t.open_proc_ns(), "/sys/fs/bpf/ns")) == errno.EINVAL
    t.close(fd)
    assert walk(t, "map") == [1]  # the pin keeps it
    again = t.obj_get("/sys/fs/bpf/m")
    assert t.obj_get_info_by_fd(again).name == "m"
    assert errno_of(lambda: t.obj_get("/sys/fs/bpf/nothing")) == errno.ENOENT
    t.unlink("/sys/fs/bpf/m")
    assert errno_of(lambda: t.unlink("/sys/fs/bpf/m")) == errno.ENOENT
    t.close(again)
    assert walk(t, "map") == []
    with pytest.raises(TypeError, match="path"):
        t.obj_get(None)  # type: ignore[arg-type]
    k.check()


@pytest.mark.parametrize("behavior", [RFC, FIXED])
def test_d2_through_a_pin(behavior: Behavior) -> None:
    """A container pins a map and exits; the host later unlinks the pin."""
    k = Kernel(behavior)
    c = container(k)
    ns = c.bpf_ns
    c.obj_pin(c.map_create(name="pinned"), "/sys/fs/bpf/pinned")
    c.exit()
    if behavior is RFC:
        assert ns.state is NsState.DESTROYED
        k.synchronize_rcu()
        with pytest.raises(UseAfterFree):
            k.init_task.unlink("/sys/fs/bpf/pinned")
    else:
        assert ns.alive  # the map's id record pins it
        k.init_task.unlink("/sys/fs/bpf/pinned")
        assert ns.state is NsState.DESTROYED
        k.synchronize_rcu()
        k.check()


def test_objects_are_type_checked() -> None:
    k = Kernel()
    fd = k.init_task.map_create()
    assert errno_of(lambda: k.init_task.link_prime(fd)) == errno.EINVAL
    assert ObjType.MAP == 0


def test_object_repr_and_liveness() -> None:
    k = Kernel()
    fd = k.init_task.map_create(name="m")
    (m,) = k.objects
    assert repr(m) == "<BpfMap 'm' id=1 refcnt=1>"
    assert m.live
    k.init_task.close(fd)
    assert not m.live
    assert repr(m) == "<BpfMap 'm' id=0 refcnt=0>"


def test_prog_load_emfile_keeps_its_map_reference_until_the_grace_period() -> None:
    """Found by the syscall state machine: the unloaded program's map reference goes
    only when its RCU free runs (bpf_prog_put -> call_rcu -> free_used_maps)."""
    k = Kernel(FIXED)
    t = k.init_task
    assert t.files is not None
    t.files.nofile = 2
    m = t.map_create(name="used")
    t.map_create()  # the table is now full
    (obj,) = [o for o in k.objects if o.name == "used"]
    assert errno_of(lambda: t.prog_load(maps=(m,))) == errno.EMFILE
    assert obj.refcnt == 2
    k.synchronize_rcu()
    assert obj.refcnt == 1
    k.check()


# -- map_create's one-line argument test is exact ------------------------------------------


class Size(enum.IntEnum):
    """An int subclass: accepted everywhere as its plain value (the one type rule)."""

    FOUR = 4


class Label(str):
    """A str subclass: accepted everywhere as its plain value."""

    __slots__ = ()


GOOD = {
    "name": st.sampled_from(["", "m", "a.b_C9", "x" * 15]),
    "key_size": st.sampled_from([1, 4, U32_MAX]),
    "value_size": st.sampled_from([1, 4, U32_MAX]),
    "max_entries": st.sampled_from([1, 4, U32_MAX]),
    "map_type": st.sampled_from([0, 2, U32_MAX]),
}
BAD_NAMES = st.sampled_from(["x" * 16, "bad name", "caf\u00e9", 7, Label("ok")])
BAD_SIZES = st.sampled_from([0, -1, U32_MAX + 1, 4.0, True, None, Size.FOUR])
#: Valid arguments with at most two of them spoiled, so each single fault is common.
MAP_ARGS = st.fixed_dictionaries(GOOD).flatmap(
    lambda good: st.lists(
        st.sampled_from(sorted(good)).flatmap(
            lambda key: st.tuples(st.just(key), BAD_NAMES if key == "name" else BAD_SIZES)
        ),
        max_size=2,
    ).map(lambda spoiled: {**good, **dict(spoiled)})
)


def reference_map_create_error(
    capable: bool, name: object, sizes: tuple[object, object, object, object]
) -> tuple[type[Exception], int | None] | None:
    """The checks of BPF_MAP_CREATE one by one: misuse first, then the kernel's order.

    Values no C caller can pass (a name that is not a str; a size or type that is not
    an int, or a bool, or out of u32 range) are TypeError/ValueError whatever the
    caller's capabilities; then EPERM, the name (EINVAL), zero sizes (EINVAL). An int
    subclass (IntEnum) and a str subclass are their plain values.
    """
    if not isinstance(name, str):
        return TypeError, None
    key, value, entries, map_type = sizes
    for size in (map_type, key, value, entries):
        if not isinstance(size, int) or isinstance(size, bool):
            return TypeError, None
        if not 0 <= size <= U32_MAX:
            return ValueError, None
    if not capable:
        return BpfnsError, errno.EPERM
    if len(name) > 15 or any(not (c.isascii() and (c.isalnum() or c in "_.")) for c in name):
        return BpfnsError, errno.EINVAL
    return (BpfnsError, errno.EINVAL) if 0 in (key, value, entries) else None


def check_map_create_against_the_reference(
    caps: bool, sys_admin: bool, args: dict[str, object]
) -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone()
    if not caps:
        t.drop_capabilities(Cap.CAP_BPF)
    if not sys_admin:
        t.drop_capabilities(Cap.CAP_SYS_ADMIN)
    name, map_type = args["name"], args["map_type"]
    key, value, entries = args["key_size"], args["value_size"], args["max_entries"]
    expected = reference_map_create_error(caps or sys_admin, name, (key, value, entries, map_type))
    before = k.snapshot()
    try:
        fd = t.map_create(map_type, name, key, value, entries)  # type: ignore[arg-type]
    except (BpfnsError, TypeError, ValueError) as err:
        assert expected is not None, f"unexpected {err!r}"
        assert type(err) is expected[0]
        assert getattr(err, "errno", None) == expected[1]
        assert k.snapshot() == before
    else:
        assert expected is None, f"{args} created a map; expected {expected}"
        info = t.obj_get_info_by_fd(fd)
        assert (info.name, info.key_size, info.value_size) == (name, key, value)
        assert (info.max_entries, info.type) == (entries, map_type)
        fields = (info.name, info.key_size, info.value_size, info.max_entries, info.type)
        assert [type(f) for f in fields] == [str, int, int, int, int]  # plain values
    k.check()


VALID = {"name": "m", "key_size": 4, "value_size": 4, "max_entries": 1, "map_type": 2}
BAD: dict[str, list[object]] = {
    "name": ["x" * 16, "bad name", "caf\u00e9", "\u0661", 7, Label("ok"), Label("no way")]
}
BAD |= {
    key: [0, -1, U32_MAX + 1, 4.0, True, None, Size.FOUR] for key in sorted(VALID) if key != "name"
}


@pytest.mark.parametrize(
    ("key", "bad"), [(key, bad) for key, values in BAD.items() for bad in values]
)
@pytest.mark.parametrize("caps", [True, False])
def test_map_create_each_bad_argument(key: str, bad: object, caps: bool) -> None:
    """Every single fault, exhaustively: the one-line test in map_create is exact."""
    check_map_create_against_the_reference(caps, True, {**VALID, key: bad})


@given(st.booleans(), st.booleans(), MAP_ARGS)
def test_map_create_errors_match_the_checks_in_order(
    caps: bool, sys_admin: bool, args: dict[str, object]
) -> None:
    """Combinations of faults and capabilities: the first check to fail decides."""
    check_map_create_against_the_reference(caps, sys_admin, args)
