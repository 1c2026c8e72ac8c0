"""Issue 12's examples, one regression test each: atomic failures, visible leaks, clear errors.

Each test states the example as it was found; the mechanisms that fix them are tested
wholesale elsewhere (tests/test_bad_arguments.py, tests/test_fail_nth.py, the leftovers
property of tests/test_machine.py, tests/test_hostile_traces.py).
"""

from __future__ import annotations

import enum
import errno

import attrs
import pytest

import bpfns
from bpfns import (
    CLONE_FILES,
    CLONE_NEWBPF,
    CLONE_NEWUSER,
    FAILED_CALL_LEAVES,
    FIXED,
    NS_GET_USERNS,
    RFC,
    BpfnsError,
    Cap,
    FaultSite,
    Kernel,
    Leftover,
    NullPointerDereference,
    ObjType,
    UseAfterFree,
)
from helpers import assert_atomic, errno_of

# -- 1. atomicity ------------------------------------------------------------------------


def test_primer_pins_the_task_inside_its_syscall() -> None:
    """``pr = t.link_prime(p); t.unshare(CLONE_FILES); pr.settle()`` raised KeyError."""
    k = Kernel(FIXED)
    t = k.init_task.clone()
    pr = t.link_prime(t.prog_load())
    before = k.snapshot()
    for call in (lambda: t.unshare(CLONE_FILES), t.exit):
        with pytest.raises(ValueError, match="inside BPF_LINK_CREATE"):
            call()
        assert k.snapshot() == before  # refused before anything changed
    k.check()
    fd = pr.settle()
    assert t.obj_get_info_by_fd(fd).id == 1
    t.unshare(CLONE_FILES)  # once the call is finished, both are fine
    t.exit()
    k.teardown()
    assert k.leftovers() == []


def test_primer_cleanup_then_exit_leaves_nothing() -> None:
    """``pr = t.link_prime(p); t.exit()`` stranded a namespace, 2 objects and 4 ids."""
    k = Kernel(FIXED)
    t = k.init_task.clone(CLONE_NEWBPF)
    pr = t.link_prime(t.prog_load())
    assert [x.kind for x in k.leftovers()].count("link primer") == 1
    pr.cleanup()
    with pytest.raises(ValueError, match="already settled or cleaned up"):
        pr.settle()
    with pytest.raises(ValueError, match="already settled or cleaned up"):
        pr.cleanup()
    t.exit()
    k.synchronize_rcu()
    k.synchronize_rcu()
    assert k.leftovers() == []


def test_a_stranded_primer_is_a_leftover_and_teardown_finishes_it() -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone()
    pr = t.link_prime(t.prog_load())
    assert [str(x) for x in k.leftovers() if x.kind == "link primer"] == [f"link primer: {pr!r}"]
    assert k.snapshot().primers == ((t.pid, pr.fd, pr.id),)
    k.teardown()  # cleans the primer up (a failed attachment), then exits the task
    assert pr.done
    assert k.leftovers() == []


def test_create_child_with_a_freed_user_namespace_changes_nothing() -> None:
    """``u.put(); k.init_ns.create_child(u)`` charged a ucount, an inum and a slab first."""
    k = Kernel(FIXED)
    u = k.init_user_ns.create_child(owner=1000)
    u.put()
    before = k.snapshot()
    with pytest.raises(ValueError, match=r"user_ns: .* was freed"):
        k.init_ns.create_child(u)
    assert k.snapshot() == before


def test_a_user_namespace_put_you_do_not_own_is_refused() -> None:
    """``t.cred.user_ns.put()`` was accepted, and the task's exit then failed half-way."""
    k = Kernel(FIXED)
    t = k.init_task.clone(CLONE_NEWUSER)
    before = k.snapshot()
    with pytest.raises(ValueError, match="you hold no reference"):
        t.cred.user_ns.put()
    assert k.snapshot() == before
    mine = t.cred.user_ns.get()
    assert mine.holders == {"cred": 1, "ref": 1}
    mine.put()
    t.exit()
    assert k.leftovers() == []


def test_every_rcu_callback_of_a_batch_runs_even_when_one_raises() -> None:
    """A raising first callback used to drop the batch: namespaces stayed DESTROYED."""
    k = Kernel(RFC)
    host = k.init_task
    c = host.clone(CLONE_NEWBPF)
    m = c.send_fd(c.map_create(name="theirs"), host)  # a container's map, held by host
    prog = host.prog_load(maps=(m,))
    host.close(m)  # only the program holds the map now
    c.exit()  # D2: the map's record does not pin the container's namespace
    k.synchronize_rcu()  # ... which is freed
    host.close(prog)  # bpf_prog_free waits for a grace period, then puts the map
    others = [k.init_ns.create_child() for _ in range(2)]
    for ns in others:
        ns.put()
    assert len(k.rcu_pending) == 3
    with pytest.raises(UseAfterFree):  # the first callback frees the map's ids
        k.synchronize_rcu()
    assert k.rcu_pending == ()
    assert not any(ns in k.namespaces() for ns in others)  # the rest of the batch ran


def test_rcu_batch_with_a_raising_callback_still_runs_the_rest() -> None:
    k = Kernel(FIXED)
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise RuntimeError("first")

    k.rcu.call_rcu(boom, "boom", owner=None)
    k.rcu.call_rcu(lambda: ran.append("second"), "second", owner=None)
    with pytest.raises(RuntimeError, match="first"):
        k.synchronize_rcu()
    assert ran == ["boom", "second"]
    assert k.rcu_pending == ()


def test_ns_get_userns_with_a_full_fd_table_takes_no_reference() -> None:
    """EMFILE after the reference was taken leaked it."""
    k = Kernel(FIXED)
    t = k.init_task
    fd = t.open_proc_ns()
    assert t.files is not None
    t.files.nofile = len(t.files)
    before = k.snapshot()
    assert errno_of(lambda: t.ns_ioctl(fd, NS_GET_USERNS)) == errno.EMFILE
    assert k.snapshot() == before
    assert k.init_user_ns.holders.get("file", 0) == 0


def test_ns_get_userns_eperm_gives_the_fd_back() -> None:
    k = Kernel(FIXED)
    a = k.init_task.clone(CLONE_NEWUSER)
    b = k.init_task.clone(CLONE_NEWUSER)
    inner = b.clone(CLONE_NEWBPF)  # a BPF namespace owned by b's user namespace
    fd = k.init_task.send_fd(k.init_task.open_proc_ns(inner.pid), a)
    before = k.snapshot()  # a's user namespace is a sibling of the owner: EPERM
    assert errno_of(lambda: a.ns_ioctl(fd, NS_GET_USERNS)) == errno.EPERM
    assert k.snapshot() == before


def test_d8_oops_during_exit_kills_the_task_consistently() -> None:
    """A D8 oops left the task half-exited; a second exit() raised AssertionError."""
    k = Kernel(RFC)
    c = k.init_task.clone()
    c.prog_load()
    with pytest.raises(NullPointerDereference):
        c.exit()
    assert not c.alive
    assert c not in k.tasks()
    assert k.dmesg[-1] == "Fixing recursive fault but reboot is needed!"
    with pytest.raises(ValueError, match="has exited"):
        c.exit()
    with pytest.raises(ValueError, match="has exited"):
        c.map_create()
    # what the dead task still held is visible
    assert "bpf object" in {x.kind for x in k.leftovers()}


def test_an_oops_outside_exit_kills_the_task_through_do_exit() -> None:
    """D10: ioctl(NS_GET_USERNS) calls a NULL op; the kernel kills the caller."""
    k = Kernel(RFC)
    t = k.init_task.clone(CLONE_NEWBPF)
    ns = t.bpf_ns
    fd = t.open_proc_ns()
    with pytest.raises(NullPointerDereference):
        t.ns_ioctl(fd, NS_GET_USERNS)
    assert not t.alive
    assert not ns.alive  # do_exit ran: the nsproxy and the nsfs file were put
    assert k.dmesg == []  # not a recursive fault


def test_an_oops_in_record_mode_does_not_kill() -> None:
    k = Kernel(RFC, on_bug="record")
    t = k.init_task.clone()
    fd = t.open_proc_ns()
    assert t.ns_ioctl(fd, NS_GET_USERNS) == 0
    assert t.alive
    assert t.files is not None and len(t.files) == 1  # the reserved fd was given back
    k.check()


# -- 2. nothing leaks unseen -----------------------------------------------------------


@pytest.mark.bpfns_corrupts
def test_a_user_namespace_refcount_leak_is_seen() -> None:
    """A leaked user-namespace reference passed both snapshot() and check()."""
    k = Kernel(FIXED)
    before = k.snapshot()
    k.init_user_ns.get()
    assert k.snapshot() != before
    assert before.changed(k.snapshot()) == ["user_namespaces"]
    assert [x.kind for x in k.leftovers()] == ["user namespace reference"]
    k.check()  # a reference you hold is legal: leftovers() is what shows it
    k.init_user_ns._holders["cred"] += 1  # a reference nobody holds: check() sees it
    k.init_user_ns._count += 1
    with pytest.raises(AssertionError, match="user namespace refcounts equal their holders"):
        k.check()


@pytest.mark.bpfns_corrupts
def test_check_sees_a_stranded_reserved_fd_and_rcu_mismatches() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    assert t.files is not None
    t.files.reserve()
    with pytest.raises(AssertionError, match="reserved fds belong to pending primers"):
        k.check()
    k2 = Kernel(FIXED)
    k2.rcu.call_rcu(lambda: None, "stray", owner=None)
    with pytest.raises(AssertionError, match="RCU callbacks match"):
        k2.check()


def test_leftovers_lists_each_kind() -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone(CLONE_NEWUSER)
    u = k.init_user_ns.create_child(owner=5)
    ns = k.init_ns.create_child()
    k.alloc_obj_id(ns, "raw", ObjType.PROG)
    host = k.init_task
    host.obj_pin(host.map_create(name="pinned"), "/sys/fs/bpf/p")
    k.init_ns.create_child().put()
    kinds = sorted({x.kind for x in k.leftovers()})
    assert kinds == [
        "bpf object",
        "fd",
        "id record",
        "namespace",
        "pin",
        "rcu callback",
        "task",
        "ucount",
        "user namespace",
    ]
    assert all(isinstance(x, Leftover) and str(x).startswith(x.kind) for x in k.leftovers())
    assert t.alive and u.alive


def test_teardown_leaves_only_what_you_hold() -> None:
    k = Kernel(FIXED)
    ns = k.init_ns.create_child()
    u = k.init_user_ns.create_child(owner=3)
    t = k.init_task.clone(CLONE_NEWBPF)
    t.obj_pin(t.map_create(), "/sys/fs/bpf/kept")
    k.init_task.unshare(CLONE_NEWBPF)  # init itself moves: its namespace is a leftover
    assert "/sys/fs/bpf/kept" in k.bpffs.paths()
    k.teardown()
    assert k.bpffs.paths() == [] and k.tasks() == []
    assert sorted({x.kind for x in k.leftovers()}) == ["namespace", "ucount", "user namespace"]
    ns.put()
    u.put()
    k.synchronize_rcu()
    assert k.leftovers() == []


# -- 3. clear errors ---------------------------------------------------------------------


def test_free_obj_id_refuses_the_record_of_a_bpf_object() -> None:
    """It accepted a map's record; the map's close then hit ``AssertionError: double free``."""
    k = Kernel(FIXED)
    t = k.init_task
    fd = t.map_create()
    (m,) = k.bpf_objects()
    assert m.obj_id is not None
    before = k.snapshot()
    with pytest.raises(ValueError, match="close its fds"):
        k.free_obj_id(m.obj_id, ObjType.MAP)
    assert k.snapshot() == before
    t.close(fd)
    assert k.leftovers() == []


def test_lookup_of_a_raw_id_is_a_clear_error() -> None:
    """Ids from ``Kernel.alloc_obj_id`` made ``map_get_fd_by_id`` raise AttributeError."""
    k = Kernel(FIXED)
    k.alloc_obj_id(k.init_ns, "x", ObjType.MAP)
    with pytest.raises(ValueError, match=r"allocated with Kernel\.alloc_obj_id"):
        k.init_task.map_get_fd_by_id(1)
    assert k.init_task.map_get_next_id(0) == 1  # listing it is fine


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda k, t: t.ns_ioctl(t.open_proc_ns(), "x"), TypeError, "request"),
        (lambda k, t: t.ns_capable(None, Cap.CAP_BPF), TypeError, "ns"),
        (lambda k, t: t.ns_capable(k.init_user_ns, "CAP_BPF"), TypeError, "cap"),
        (lambda k, t: k.init_ns.is_ancestor_of(0), TypeError, "other"),
        (lambda k, t: k.init_user_ns.contains(0), TypeError, "other"),
        (lambda k, t: k.faults.fail_nth(True), TypeError, "n"),
        (lambda k, t: k.init_ns.create_child(name=5), TypeError, "name"),
    ],
)
def test_bad_arguments_found_by_the_review(call: object, error: type, name: str) -> None:
    k = Kernel(FIXED)
    t = k.init_task
    with pytest.raises(error, match=rf"\b{name}\b"):
        call(k, t)  # type: ignore[operator]


def test_fail_randomly_with_a_bad_seed_leaves_the_injector_disarmed() -> None:
    k = Kernel(FIXED)
    with pytest.raises(TypeError, match="seed"):
        k.faults.fail_randomly(0.5, seed=[1])  # type: ignore[arg-type]
    assert not k.faults.armed


def test_sysctls_of_an_exited_task_are_refused() -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone()
    t.exit()
    with pytest.raises(ValueError, match="has exited"):
        t.read_sysctl("user.max_bpf_namespaces")
    with pytest.raises(ValueError, match="has exited"):
        t.write_sysctl("user.max_bpf_namespaces", 3)


class Size(enum.IntEnum):
    FOUR = 4


class Label(str):
    __slots__ = ()


def test_str_and_int_subclasses_are_their_plain_values_everywhere() -> None:
    """A str-subclass name got 'EINVAL ... sizes must be > 0' from map_create (the drift bug)."""
    k = Kernel(FIXED)
    t = k.init_task
    m = t.map_create(name=Label("counts"), key_size=Size.FOUR)
    p = t.prog_load(name=Label("counts"), prog_type=Size.FOUR)
    info = t.obj_get_info_by_fd(m)
    assert (info.name, info.key_size) == ("counts", 4)
    assert type(info.name) is str and type(info.key_size) is int
    assert type(t.obj_get_info_by_fd(p).type) is int
    ns = k.init_ns.create_child(name=Label("c"))
    assert type(ns.name) is str
    assert t.map_get_next_id(Size.FOUR - 4) == 1


def test_bool_is_not_an_int_anywhere() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    fd = t.map_create()
    for call in (
        lambda: t.close(True),
        lambda: t.map_create(key_size=True),
        lambda: t.map_get_next_id(False),
        lambda: t.clone(True),
        lambda: k.faults.fail_nth(True),
    ):
        with pytest.raises(TypeError, match="not bool"):
            call()
    t.close(fd)


def test_the_docs_table_is_the_code_table() -> None:
    """'What a failed call leaves behind' (docs/explanation/fidelity.md) lists every row."""
    from pathlib import Path  # noqa: PLC0415

    text = (Path(__file__).parent.parent / "docs" / "explanation" / "fidelity.md").read_text()
    table = text.split("## What a failed call leaves behind", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(FAILED_CALL_LEAVES) + 1  # the header
    for row, left in zip(rows[1:], FAILED_CALL_LEAVES, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == left.name
        assert cells[1] == ", ".join(f"`{f}`" for f in left.fields)
        assert cells[2] == ", ".join(f"`{c}`" for c in left.calls)
        assert cells[3] == left.why


def test_a_failed_prog_load_leaves_only_its_rows() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    m = t.map_create()
    assert t.files is not None
    t.files.nofile = len(t.files)
    before = k.snapshot()
    assert errno_of(lambda: t.prog_load(maps=(m,))) == errno.EMFILE
    assert set(before.changed(k.snapshot())) == {"cursors", "audit", "rcu_pending", "objects"}
    assert_atomic(k, before, "prog_load")  # and after a grace period, objects are as before


@pytest.mark.parametrize(
    ("site", "flags"),
    [
        (FaultSite.TASK, 0),
        (FaultSite.USER_NS, CLONE_NEWUSER),
        (FaultSite.FILES, 0),
        (FaultSite.NSPROXY, CLONE_NEWBPF),
    ],
)
def test_clone_fault_sites_are_atomic(site: FaultSite, flags: int) -> None:
    k = Kernel(FIXED)
    k.init_task.map_create()  # a file the copied table would reference
    k.faults.fail_nth(1, sites=[site])
    before = k.snapshot()
    with pytest.raises(BpfnsError) as info:
        k.init_task.clone(flags)
    assert info.value.errno == errno.ENOMEM
    assert k.faults.injected == [site]
    assert_atomic(k, before, "clone")
    k.check()


# -- the rarer paths of these mechanisms --------------------------------------------------


@pytest.mark.bpfns_corrupts
def test_a_primer_of_a_killed_task_cannot_finish() -> None:
    k = Kernel(RFC)
    t = k.init_task.clone()
    pr = t.link_prime(t.prog_load())
    with pytest.raises(NullPointerDereference):
        t.ns_ioctl(t.open_proc_ns(), NS_GET_USERNS)  # D10: the oops kills t
    assert not t.alive
    with pytest.raises(ValueError, match="killed by an oops"):
        pr.settle()
    assert not pr.done and pr in k.link_primers()
    with pytest.raises(AssertionError, match="primers belong to live tasks"):
        k.check()
    k.teardown()  # a primer no task can finish stays: a leftover of a tainted kernel
    assert [x.kind for x in k.leftovers()].count("link primer") == 1


def test_a_second_oops_while_being_killed_is_a_recursive_fault() -> None:
    k = Kernel(RFC)
    t = k.init_task.clone()
    t.prog_load()  # its release at exit is D8
    with pytest.raises(NullPointerDereference) as info:
        t.ns_ioctl(t.open_proc_ns(), NS_GET_USERNS)  # D10, then do_exit hits D8
    assert info.value.report.defect == "D10"
    assert [r.defect for r in k.reports] == ["D10", "D8"]
    assert not t.alive and k.dmesg == ["Fixing recursive fault but reboot is needed!"]


def test_make_task_dead_of_a_dead_task_does_nothing() -> None:
    from bpfns._task import make_task_dead  # noqa: PLC0415

    k = Kernel(FIXED)
    t = k.init_task.clone()
    t.exit()
    make_task_dead(t)
    assert k.dmesg == [] and t not in k.tasks()


@pytest.mark.bpfns_corrupts
def test_teardown_when_init_was_killed_keeps_the_pins() -> None:
    k = Kernel(RFC)
    k.init_task.obj_pin(k.init_task.map_create(), "/sys/fs/bpf/p")
    with pytest.raises(NullPointerDereference):
        k.init_task.ns_ioctl(k.init_task.open_proc_ns(), NS_GET_USERNS)
    k.teardown()
    assert k.bpffs.paths() == ["/sys/fs/bpf/p"]


@pytest.mark.bpfns_corrupts
def test_check_sees_a_leaked_namespace_slab_object() -> None:
    k = Kernel(FIXED)
    k.ns_cache.alloc(None)
    with pytest.raises(AssertionError, match="slab objects are owned"):
        k.check()


@pytest.mark.bpfns_corrupts
def test_check_sees_user_namespace_leaks() -> None:
    k = Kernel(FIXED)
    u = k.init_user_ns.create_child(owner=9)
    t = k.init_task.clone()
    del k.init_user_ns.registry.live[u]  # a namespace the kernel forgot, still referenced
    t.cred = attrs.evolve(t.cred, user_ns=u)
    with pytest.raises(AssertionError, match="user namespaces live while referenced"):
        k.check()
    k2 = Kernel(FIXED)
    k2.init_user_ns.create_child(owner=9).put()
    (uc,) = [uc for uc in k2.init_user_ns.registry.ucounts.values() if uc.uid == 9]
    uc.counts[0] += 1  # a max_user_namespaces charge nobody holds
    with pytest.raises(AssertionError, match="ucounts equal live user namespaces"):
        k2.check()


def test_snapshots_name_what_files_refer_to() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    child = t.clone()
    t.pidfd_open(child.pid)
    t.ns_ioctl(t.open_proc_ns(), NS_GET_USERNS)
    rows = {kind: target for kind, target, _ in (f for _, f in k.snapshot().files[0][2])}
    assert rows == {"pidfd": child.pid, "nsfs:bpf": k.init_ns.inum, "nsfs:user": 0}
    child.exit()
    rows = {kind: target for kind, target, _ in (f for _, f in k.snapshot().files[0][2])}
    assert rows["pidfd"] == -1  # the task is gone: no pid to name


def test_kernel_threads_see_global_ids() -> None:
    """Kernel code run with no current task (bpffs used directly) is a kworker in init."""
    k = Kernel(FIXED)
    c = k.init_task.clone(CLONE_NEWBPF)
    k.init_task.map_create()  # ids differ per level
    fd = c.prog_load(name="p")
    c.obj_pin(fd, "/sys/fs/bpf/p")
    c.close(fd)
    k.bpffs.unlink("/sys/fs/bpf/p")  # the last reference, dropped from no task
    assert k.audit_log[-1] == bpfns.AuditRecord("UNLOAD", 1, 0)


def test_traces_encode_what_a_replay_can_pass() -> None:
    k = Kernel(FIXED, trace=True)
    t = k.init_task
    with pytest.raises(TypeError):
        t.close(bpfns.FileKind.PIDFD)  # an enum a replay does not know: opaque
    k.alloc_obj_id(k.init_ns, bytes(500), ObjType.MAP)  # a long repr is cut
    enters = [e for e in k.trace if isinstance(e, bpfns.Enter)]
    assert enters[0].args == [{"opaque": "FileKind.PIDFD"}]
    assert enters[1].args[1]["opaque"].endswith("...")
    assert len(enters[1].args[1]["opaque"]) == 203
    assert bpfns.replay(k.trace).snapshot() == k.snapshot()


def test_ucount_types_take_their_int_values() -> None:
    k = Kernel(FIXED, ucount_max=5)
    assert k.init_user_ns.get_max(1) == 5  # UcountType.BPF_NAMESPACES
    assert repr(bpfns.UcountType.BPF_NAMESPACES) == "UcountType.BPF_NAMESPACES"
    with pytest.raises(ValueError, match="kind"):
        k.init_user_ns.get_max(9)


def test_an_oops_in_close_kills_the_closing_task() -> None:
    k = Kernel(RFC)
    c = k.init_task.clone(CLONE_NEWBPF)
    holder = k.init_task.clone()
    fd = c.send_fd(c.map_create(), holder)
    c.exit()  # D2: the map's record does not pin c's namespace, now destroyed
    k.synchronize_rcu()  # ... and, after the grace period, freed
    with pytest.raises(UseAfterFree):
        holder.close(fd)
    assert not holder.alive


def test_a_set_argument_replays_as_a_set() -> None:
    k = Kernel(FIXED, trace=True)
    k.faults.fail_nth(2, sites={FaultSite.INUM, FaultSite.NAMESPACE})
    enter = next(e for e in k.trace if isinstance(e, bpfns.Enter))
    assert enter.kwargs["sites"] == {
        "set": [{"enum": "FaultSite", "name": n} for n in ("INUM", "NAMESPACE")]
    }
    assert bpfns.replay(k.trace).faults.armed
