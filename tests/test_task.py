"""Tasks: clone, unshare, setns, exit, credentials, procfs and sysctls (semantics §2.1, §2.2)."""

from __future__ import annotations

import errno

import pytest

from bpfns import (
    CLONE_FILES,
    CLONE_NEWBPF,
    CLONE_NEWUSER,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    FIXED,
    INT_MAX,
    NS_GET_NSTYPE,
    NS_GET_PARENT,
    NS_GET_USERNS,
    RFC,
    Behavior,
    Cap,
    FaultSite,
    Kernel,
    NsState,
    NullPointerDereference,
    Task,
    UcountType,
)
from helpers import errno_of

THREAD = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_FILES


def test_init_task() -> None:
    k = Kernel()
    t = k.init_task
    assert (t.pid, t.tgid, t.cred.euid) == (1, 1, 0)
    assert t.bpf_ns is k.init_ns
    assert t.cred.user_ns is k.init_user_ns
    assert all(t.capable(cap) for cap in Cap)
    assert k.tasks() == [t]
    assert repr(t) == "<Task pid=1 'init' euid=0 bpf_ns=init_bpf_ns>"


def test_clone_without_flags_shares_the_namespace() -> None:
    k = Kernel()
    child = k.init_task.clone(name="worker")
    assert child.pid == 2
    assert child.bpf_ns is k.init_ns
    assert child.nsproxy is k.init_task.nsproxy
    assert child.nsproxy is not None
    assert child.nsproxy.count == 2
    k.check()


def test_clone3_newbpf_creates_a_child_namespace() -> None:
    k = Kernel()
    parent = k.init_task.clone(CLONE_NEWBPF)
    child = parent.clone(CLONE_NEWBPF)
    assert child.bpf_ns.parent is parent.bpf_ns
    assert child.bpf_ns.level == 2
    assert parent.bpf_ns.holders == {"nsproxy": 1, "child": 1}
    assert k.init_task.bpf_ns is k.init_ns  # the parent task did not move
    k.check()


def test_legacy_clone_drops_the_flag_silently() -> None:
    k = Kernel()
    child = k.init_task.clone(CLONE_NEWBPF, legacy=True)
    assert child.bpf_ns is k.init_ns
    assert child.nsproxy is k.init_task.nsproxy


def test_clone_newbpf_needs_cap_sys_admin() -> None:
    k = Kernel()
    t = k.init_task.clone()
    t.drop_capabilities(Cap.CAP_SYS_ADMIN)
    before = k.snapshot()
    assert errno_of(lambda: t.clone(CLONE_NEWBPF)) == errno.EPERM
    assert k.snapshot().without_cursors() == before.without_cursors()


@pytest.mark.parametrize(("behavior", "allowed"), [(RFC, True), (FIXED, False)])
def test_d19_newuser_newbpf(behavior: Behavior, allowed: bool) -> None:
    k = Kernel(behavior)
    user = k.init_task.clone()
    user.set_euid(1000)  # an unprivileged user: no capability in init_user_ns
    assert not user.capable(Cap.CAP_SYS_ADMIN)
    before = k.snapshot()
    if allowed:
        child = user.clone(CLONE_NEWUSER | CLONE_NEWBPF)
        assert child.bpf_ns.level == 1
        assert child.bpf_ns.user_ns is child.cred.user_ns
        assert child.cred.user_ns.owner == 1000
        assert child.ns_capable(child.cred.user_ns, Cap.CAP_SYS_ADMIN)
        assert not child.capable(Cap.CAP_BPF)  # harmless but useless (semantics §2.5)
        k.check()
    else:
        assert errno_of(lambda: user.clone(CLONE_NEWUSER | CLONE_NEWBPF)) == errno.EINVAL
        assert errno_of(lambda: user.unshare(CLONE_NEWUSER | CLONE_NEWBPF)) == errno.EINVAL
        assert k.snapshot().without_cursors() == before.without_cursors()


def test_clone_newuser_alone_keeps_the_nsproxy() -> None:
    k = Kernel()
    child = k.init_task.clone(CLONE_NEWUSER)
    assert child.nsproxy is k.init_task.nsproxy
    assert child.cred.user_ns.parent is k.init_user_ns
    assert child.cred.user_ns.refcount == 1  # held by the child's cred
    child.exit()
    assert not child.cred.user_ns.alive
    assert k.init_user_ns.count(UcountType.USER_NAMESPACES, 0) == 0
    k.check()


def test_failed_clone_gives_back_the_new_user_namespace() -> None:
    k = Kernel()
    k.faults.fail_nth(1, sites=[FaultSite.NAMESPACE])
    before = k.snapshot()
    assert errno_of(lambda: k.init_task.clone(CLONE_NEWUSER | CLONE_NEWBPF)) == errno.ENOMEM
    assert k.snapshot() == before
    assert k.init_user_ns.count(UcountType.USER_NAMESPACES, 0) == 0


@pytest.mark.parametrize(
    "flags",
    [
        CLONE_THREAD,  # without CLONE_SIGHAND
        CLONE_SIGHAND,  # without CLONE_VM
        THREAD | CLONE_NEWUSER,
        THREAD | 0x20000000,  # CLONE_NEWPID
    ],
)
def test_invalid_clone_flags(flags: int) -> None:
    k = Kernel()
    before = k.snapshot()
    assert errno_of(lambda: k.init_task.clone(flags)) == errno.EINVAL
    assert k.snapshot() == before


def test_threads_can_sit_in_different_namespaces() -> None:
    k = Kernel()
    leader = k.init_task.clone(name="leader")
    thread = leader.clone(THREAD, name="thread")
    assert thread.tgid == leader.pid
    assert thread.files is leader.files
    assert leader.thread_group() == [leader, thread]
    fd = leader.map_create(name="shared")
    thread.unshare(CLONE_NEWBPF)
    assert thread.bpf_ns.parent is leader.bpf_ns
    # One fd, two threads, two answers (semantics §2.1).
    assert leader.obj_get_info_by_fd(fd).id == 1
    assert thread.obj_get_info_by_fd(fd).id == 0
    assert errno_of(lambda: thread.unshare(CLONE_NEWUSER)) == errno.EINVAL  # threaded
    k.check()


def test_unshare_moves_the_caller_at_once() -> None:
    k = Kernel()
    t = k.init_task.clone()
    fd = t.map_create(name="before")
    t.unshare(CLONE_NEWBPF)
    assert t.bpf_ns.level == 1
    assert t.obj_get_info_by_fd(fd).id == 0  # its old object reads as id 0 now
    new_fd = t.map_create(name="after")
    assert t.obj_get_info_by_fd(new_fd).id == 1
    assert k.init_task.obj_get_info_by_fd(k.init_task.map_get_fd_by_id(2)).name == "after"
    k.check()


def test_unshare_without_namespace_flags_changes_nothing() -> None:
    k = Kernel()
    t = k.init_task.clone()
    before = k.snapshot()
    t.unshare(0)
    assert k.snapshot().tasks == before.tasks
    assert t.nsproxy is k.init_task.nsproxy
    assert t.nsproxy is not None
    assert t.nsproxy.count == 2


def test_unshare_newuser_then_newbpf_in_the_new_user_namespace() -> None:
    k = Kernel(RFC)
    t = k.init_task.clone()
    t.set_euid(1000)
    t.unshare(CLONE_NEWUSER | CLONE_NEWBPF)
    assert t.cred.user_ns.owner == 1000
    assert t.bpf_ns.user_ns is t.cred.user_ns
    k.check()


def test_unshare_errors() -> None:
    k = Kernel()
    t = k.init_task.clone()
    assert errno_of(lambda: t.unshare(1 << 40)) == errno.EINVAL
    t.drop_capabilities(Cap.CAP_SYS_ADMIN)
    before = k.snapshot()
    assert errno_of(lambda: t.unshare(CLONE_NEWBPF)) == errno.EPERM
    assert k.snapshot() == before
    t.set_euid(5)  # unprivileged: a new user namespace would give CAP_SYS_ADMIN back...
    k.faults.fail_nth(1, sites=[FaultSite.NAMESPACE])
    before = k.snapshot()
    assert errno_of(lambda: t.unshare(CLONE_NEWUSER | CLONE_NEWBPF)) == errno.ENOMEM
    assert k.snapshot() == before  # ...and a failure gives it back
    assert t.cred.user_ns is k.init_user_ns


def test_unshare_files_gives_a_private_table() -> None:
    k = Kernel()
    a = k.init_task.clone()
    b = a.clone(THREAD)
    a.unshare(CLONE_FILES)
    assert a.files is not b.files
    assert b.files is not None
    assert b.files.count == 1
    k.check()


def test_exit_frees_a_namespace_with_no_other_user() -> None:
    k = Kernel()
    t = k.init_task.clone(CLONE_NEWBPF)
    ns = t.bpf_ns
    t.exit()
    assert not t.alive
    assert ns.state is NsState.DESTROYED
    assert t.nsproxy is None
    assert repr(t).endswith("bpf_ns=exited>")
    k.synchronize_rcu()
    assert ns.state is NsState.FREED
    with pytest.raises(ValueError, match="exited"):
        t.exit()
    with pytest.raises(ValueError, match="exited"):
        _ = t.bpf_ns
    with pytest.raises(ValueError, match="exited"):
        t.map_create()
    assert errno_of(lambda: k.find_task(t.pid)) == errno.ESRCH
    k.check()


def test_pids_are_cyclic_and_reused_after_exit() -> None:
    k = Kernel()
    a = k.init_task.clone()
    b = k.init_task.clone()
    a.exit()
    c = k.init_task.clone()
    assert (a.pid, b.pid, c.pid) == (2, 3, 4)  # like alloc_pid: the cursor moves on


# -- credentials and sysctls -----------------------------------------------------------


def test_set_euid_clears_and_restores_capabilities() -> None:
    t = Kernel().init_task.clone()
    t.set_euid(1000)
    assert not t.capable(Cap.CAP_BPF)
    t.set_euid(1001)
    assert not t.capable(Cap.CAP_BPF)
    t.set_euid(0)
    assert t.capable(Cap.CAP_BPF)
    with pytest.raises(ValueError, match="euid"):
        t.set_euid(-1)


def test_drop_capabilities_validates() -> None:
    t = Kernel().init_task.clone()
    with pytest.raises(TypeError, match="Cap members"):
        t.drop_capabilities(21)  # type: ignore[arg-type]
    t.drop_capabilities(Cap.CAP_BPF, Cap.CAP_SYS_RESOURCE)
    assert t.cred.caps == frozenset({Cap.CAP_SYS_ADMIN, Cap.CAP_NET_ADMIN, Cap.CAP_PERFMON})


def test_max_bpf_namespaces_sysctl() -> None:
    k = Kernel()
    admin = k.init_task.clone()
    admin.write_sysctl("user.max_bpf_namespaces", 1)
    assert admin.read_sysctl("user.max_bpf_namespaces") == 1
    admin.clone(CLONE_NEWBPF)
    assert errno_of(lambda: admin.clone(CLONE_NEWBPF)) == errno.ENOSPC
    admin.drop_capabilities(Cap.CAP_SYS_RESOURCE)
    assert errno_of(lambda: admin.write_sysctl("user.max_bpf_namespaces", 9)) == errno.EPERM
    assert errno_of(lambda: k.init_task.write_sysctl("user.max_user_namespaces", -1)) == (
        errno.EINVAL
    )
    assert k.init_task.read_sysctl("user.max_user_namespaces") > 0
    with pytest.raises(ValueError, match="unknown sysctl"):
        admin.read_sysctl("kernel.pid_max")


def test_owner_of_a_user_namespace_may_write_its_limit() -> None:
    k = Kernel()
    user = k.init_task.clone()
    user.set_euid(1000)
    child = user.clone(CLONE_NEWUSER)
    child.write_sysctl("user.max_bpf_namespaces", 3)  # CAP_SYS_RESOURCE there
    assert child.cred.user_ns.get_max(UcountType.BPF_NAMESPACES) == 3
    assert k.init_user_ns.get_max(UcountType.BPF_NAMESPACES) != 3


# -- procfs and nsfs -------------------------------------------------------------------


def test_proc_ns_link() -> None:
    k = Kernel()
    t = k.init_task.clone(CLONE_NEWBPF)
    assert t.proc_ns_link("bpf") == f"bpf:[{t.bpf_ns.inum}]"
    assert k.init_task.proc_ns_link() == "bpf:[4026531833]"
    with pytest.raises(ValueError, match="bpf only"):
        t.proc_ns_link("net")


def test_open_proc_ns_holds_a_reference() -> None:
    k = Kernel()
    t = k.init_task.clone(CLONE_NEWBPF)
    ns = t.bpf_ns
    fd = k.init_task.open_proc_ns(t.pid)
    assert ns.holders == {"nsproxy": 1, "file": 1}
    t.exit()
    assert ns.alive  # the open nsfs file keeps it
    k.check()
    k.init_task.close(fd)
    assert ns.state is NsState.DESTROYED
    # proc_pid_lookup: no /proc/999 directory, so the open is ENOENT (not ESRCH)
    assert errno_of(lambda: k.init_task.open_proc_ns(999)) == errno.ENOENT
    own = k.init_task.open_proc_ns()
    assert k.init_task.ns_ioctl(own, NS_GET_NSTYPE) == CLONE_NEWBPF
    k.check()


def test_setns_on_a_bpf_namespace() -> None:
    k = Kernel()
    t = k.init_task.clone(CLONE_NEWBPF)
    fd = k.init_task.open_proc_ns(t.pid)
    before = k.snapshot()
    assert errno_of(lambda: k.init_task.setns(fd)) == errno.EOPNOTSUPP
    assert k.dmesg == ["setns not supported for bpf namespace"]
    # CLONE_NEWBPF does not fit setns's int nstype: C truncates it to 0.
    assert errno_of(lambda: k.init_task.setns(fd, CLONE_NEWBPF)) == errno.EOPNOTSUPP
    assert errno_of(lambda: k.init_task.setns(fd, CLONE_NEWUSER)) == errno.EINVAL
    assert k.snapshot().namespaces == before.namespaces
    assert k.init_task.bpf_ns is k.init_ns
    assert len(k.dmesg) == 2  # unprivileged users can flood the log (D18)


def test_setns_through_a_pidfd_or_another_fd() -> None:
    k = Kernel()
    t = k.init_task.clone(CLONE_NEWBPF)
    pidfd = k.init_task.pidfd_open(t.pid)
    assert errno_of(lambda: k.init_task.setns(pidfd, CLONE_NEWBPF)) == errno.EINVAL
    assert errno_of(lambda: k.init_task.setns(pidfd, 0)) == errno.EINVAL
    with pytest.raises(ValueError, match="BPF and user namespaces only"):
        k.init_task.setns(pidfd, CLONE_NEWUSER)
    map_fd = k.init_task.map_create()
    assert errno_of(lambda: k.init_task.setns(map_fd)) == errno.EINVAL
    assert errno_of(lambda: k.init_task.setns(99)) == errno.EBADF


def test_ns_ioctls() -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone(CLONE_NEWBPF)
    fd = t.open_proc_ns()
    assert t.ns_ioctl(fd, NS_GET_NSTYPE) == 0x400000000
    assert errno_of(lambda: t.ns_ioctl(fd, NS_GET_PARENT)) == errno.EINVAL
    assert errno_of(lambda: t.ns_ioctl(fd, 0x1234)) == errno.ENOTTY
    assert errno_of(lambda: t.ns_ioctl(t.map_create(), NS_GET_NSTYPE)) == errno.ENOTTY


@pytest.mark.parametrize("behavior", [RFC, FIXED])
def test_d10_ns_get_userns(behavior: Behavior) -> None:
    k = Kernel(behavior)
    t = k.init_task.clone(CLONE_NEWBPF)
    fd = t.open_proc_ns()
    if behavior is RFC:
        with pytest.raises(NullPointerDereference) as info:
            t.ns_ioctl(fd, NS_GET_USERNS)
        assert info.value.report.defect == "D10"
        assert str(info.value).startswith("BUG: KASAN: null-ptr-deref in ns_ioctl (D10")
    else:
        user_fd = t.ns_ioctl(fd, NS_GET_USERNS)
        assert t._fdget(user_fd).obj is k.init_user_ns
        t.close(user_fd)
        k.check()


def test_d10_in_record_mode_returns_nothing() -> None:
    k = Kernel(RFC, on_bug="record")
    fd = k.init_task.open_proc_ns()
    assert k.init_task.ns_ioctl(fd, NS_GET_USERNS) == 0
    assert [r.defect for r in k.reports] == ["D10"]


def test_ns_get_userns_needs_the_owner_at_or_below_the_callers_user_ns() -> None:
    """ns_get_owner (fs/nsfs.c) walks up from the owner looking for the caller's."""
    k = Kernel(FIXED)
    owner = k.init_task.clone(CLONE_NEWUSER)
    inner = owner.clone(CLONE_NEWBPF)  # owned by owner's user namespace, below init's
    fd = k.init_task.open_proc_ns(inner.pid)
    assert k.init_task.ns_ioctl(fd, NS_GET_USERNS) > fd  # host root may get it
    up = owner.open_proc_ns(k.init_task.pid)  # init_bpf_ns, owned above owner's
    assert errno_of(lambda: owner.ns_ioctl(up, NS_GET_USERNS)) == errno.EPERM


# -- misuse ----------------------------------------------------------------------------


def test_bad_arguments() -> None:
    k = Kernel()
    t = k.init_task
    with pytest.raises(ValueError, match="u64"):
        t.clone(-1)
    with pytest.raises(TypeError):
        t.clone("CLONE_NEWBPF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nstype"):
        t.setns(t.open_proc_ns(), -(2**40))
    with pytest.raises(TypeError, match="Task"):
        t.send_fd(t.map_create(), "pid 2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="another Kernel"):
        t.send_fd(0, Kernel().init_task)
    assert isinstance(t, Task)
    assert errno_of(lambda: k.find_task(INT_MAX)) == errno.ESRCH


def test_other_namespace_flags_build_a_new_nsproxy_sharing_the_bpf_namespace() -> None:
    k = Kernel()
    clone_newnet = 0x40000000
    child = k.init_task.clone(clone_newnet)
    assert child.nsproxy is not k.init_task.nsproxy
    assert child.bpf_ns is k.init_ns
    other = child.clone(CLONE_NEWBPF)
    child.exit()
    assert other.bpf_ns.parent is k.init_ns
    k.check()


def test_pidfd_close_releases_nothing_else() -> None:
    k = Kernel()
    t = k.init_task.clone()
    fd = k.init_task.pidfd_open(t.pid)
    k.init_task.close(fd)
    assert t.alive
    k.check()


def test_user_namespace_lifetime_errors() -> None:
    k = Kernel()
    ns = k.init_user_ns.create_child(owner=3)
    ns.put()
    assert not ns.alive
    with pytest.raises(ValueError, match="was freed"):
        ns.get()
    with pytest.raises(ValueError, match="was freed"):
        ns.put()
    with pytest.raises(ValueError, match="was freed"):
        ns.create_child()
    with pytest.raises(ValueError, match="you hold no reference"):
        k.init_user_ns.put()  # the kernel's, the creds' and init_ns's references
    k.init_user_ns.get().put()  # a reference of your own you may put; init is never freed
    assert k.init_user_ns.alive


def test_reprs() -> None:
    assert repr(Cap.CAP_BPF) == "Cap.CAP_BPF"
    from bpfns import FileKind  # noqa: PLC0415

    assert repr(FileKind.PIDFD) == "FileKind.PIDFD"


def test_clone_and_unshare_label_the_namespace_they_create() -> None:
    k = Kernel()
    t = k.init_task.clone(CLONE_NEWBPF, ns_name="ctr")
    assert t.bpf_ns.label() == "ctr" and t.bpf_ns.name == "ctr"
    t.unshare(CLONE_NEWBPF, ns_name="inner")
    assert [ns.label() for ns in t.bpf_ns.ancestors()] == ["inner", "ctr", "init_bpf_ns"]
    same = t.clone(ns_name="ignored")  # no new namespace: nothing to label
    assert same.bpf_ns is t.bpf_ns and t.bpf_ns.name == "inner"
    before = k.snapshot()
    with pytest.raises(TypeError, match="ns_name must be a str label or None, not int"):
        t.clone(CLONE_NEWBPF, ns_name=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a str label or None, not bytes"):
        t.clone(CLONE_NEWBPF, name=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ns_name must be a str"):
        t.unshare(CLONE_NEWBPF, ns_name=1.5)  # type: ignore[arg-type]
    assert k.snapshot() == before
