"""Fail every allocation of every public call in turn: each failure is atomic.

For each call that allocates, in a world built for it (FIXED), the sweep arms
``fail_nth(n)`` just before the call for n = 1, 2, ... until a call runs with nothing
injected. Each injected failure must surface as ENOMEM, leave the world as it was except
for the documented rows of "What a failed call leaves behind" (tests/helpers.py
``assert_atomic``), keep ``check()`` true, and be retryable: the same call then succeeds.
Each sweep must reach exactly the allocation sites the kernel's code path has, so a
site that stops being reached (or a new one) shows here.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import attrs
import pytest

from bpfns import (
    CLONE_FILES,
    CLONE_NEWBPF,
    CLONE_NEWUSER,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    FIXED,
    NS_GET_USERNS,
    BpfnsError,
    FaultSite,
    Kernel,
    ObjType,
    Task,
)
from helpers import assert_atomic

S = FaultSite


@attrs.frozen
class Call:
    """A public call, the world it runs in, and the allocation sites it must reach."""

    op: str
    setup: Callable[[Kernel], Task]
    run: Callable[[Kernel, Task], object]
    sites: tuple[FaultSite, ...]


def deep(k: Kernel) -> Task:
    """A task two levels down, holding a map and a program; every level's cache exists."""
    t = k.init_task.clone(CLONE_NEWBPF).clone(CLONE_NEWBPF)
    t.prog_load(maps=(t.map_create(name="m"),))
    t.obj_pin(0, "/sys/fs/bpf/m")
    t.bpf_ns.create_child().put()  # the cache of level 3 exists: KMEM_CACHE is not hit
    k.synchronize_rcu()
    return t


def fresh_level(k: Kernel) -> Task:
    """A task at level 1 whose child level has no id cache yet (create_bpf_cachep runs)."""
    return k.init_task.clone(CLONE_NEWBPF)


def with_nsfs(k: Kernel) -> Task:
    """``deep``, with fd 2 open on init's BPF namespace (/proc/1/ns/bpf)."""
    t = deep(k)
    assert t.open_proc_ns(1) == 2
    return t


def threaded(k: Kernel) -> Task:
    """A task sharing its file table with a thread (unshare(CLONE_FILES) copies it)."""
    t = deep(k)
    t.clone(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_FILES)
    return t


def sharing(k: Kernel) -> Task:
    """A single-threaded task sharing its file table with a child process."""
    t = deep(k)
    t.clone(CLONE_FILES)
    return t


IDS_2 = (S.OBJ_ID, S.IDR_NODE, S.IDR_NODE, S.IDR_NODE)  # a record, a node per level

CALLS = [
    Call("copy_bpfns", fresh_level,
         lambda k, t: k.copy_bpfns(CLONE_NEWBPF, k.init_user_ns, t.bpf_ns),
         (S.NAMESPACE, S.KMEM_CACHE, S.INUM)),
    Call("create_child", deep, lambda k, t: t.bpf_ns.create_child(), (S.NAMESPACE, S.INUM)),
    Call("clone", deep, lambda k, t: t.clone(), (S.TASK, S.FILES)),
    Call("clone", deep, lambda k, t: t.clone(CLONE_FILES), (S.TASK,)),
    Call("clone", fresh_level, lambda k, t: t.clone(CLONE_NEWBPF),
         (S.TASK, S.FILES, S.NSPROXY, S.NAMESPACE, S.KMEM_CACHE, S.INUM)),
    Call("clone", deep, lambda k, t: t.clone(CLONE_NEWUSER), (S.TASK, S.USER_NS, S.FILES)),
    Call("unshare", deep, lambda k, t: t.unshare(CLONE_NEWBPF), (S.NSPROXY, S.NAMESPACE, S.INUM)),
    Call("unshare", threaded, lambda k, t: t.unshare(CLONE_FILES), (S.FILES,)),
    Call("unshare", sharing, lambda k, t: t.unshare(CLONE_FILES | CLONE_NEWUSER),
         (S.FILES, S.USER_NS)),
    Call("unshare", threaded, lambda k, t: t.unshare(CLONE_FILES | CLONE_NEWBPF),
         (S.FILES, S.NSPROXY, S.NAMESPACE, S.INUM)),
    Call("unshare", deep, lambda k, t: t.unshare(CLONE_NEWUSER), (S.USER_NS,)),
    Call("create_user_ns", deep, lambda k, t: k.init_user_ns.create_child(owner=7),
         (S.USER_NS,)),
    Call("alloc_obj_id", deep, lambda k, t: k.alloc_obj_id(t.bpf_ns, "x", ObjType.LINK), IDS_2),
    Call("map_create", deep, lambda k, t: t.map_create(), (S.BPF_OBJECT, *IDS_2, S.FILE)),
    Call("prog_load", deep, lambda k, t: t.prog_load(maps=(0,)), (S.BPF_OBJECT, *IDS_2, S.FILE)),
    Call("link_prime", deep, lambda k, t: t.link_prime(1), (S.BPF_OBJECT, *IDS_2, S.FILE)),
    Call("link_create", deep, lambda k, t: t.link_create(1), (S.BPF_OBJECT, *IDS_2, S.FILE)),
    Call("obj_get", deep, lambda k, t: t.obj_get("/sys/fs/bpf/m"), (S.FILE,)),
    Call("map_get_fd_by_id", deep, lambda k, t: t.map_get_fd_by_id(1), (S.FILE,)),
    Call("prog_get_fd_by_id", deep, lambda k, t: t.prog_get_fd_by_id(1), (S.FILE,)),
    Call("open_proc_ns", deep, lambda k, t: t.open_proc_ns(), (S.FILE,)),
    Call("pidfd_open", deep, lambda k, t: t.pidfd_open(1), (S.FILE,)),
    Call("ns_ioctl", with_nsfs, lambda k, t: t.ns_ioctl(2, NS_GET_USERNS), (S.FILE,)),
]  # fmt: skip


def sweep(call: Call) -> list[FaultSite]:
    """Fail the 1st, 2nd, ... allocation of the call; return the sites failed, in order."""
    hit: list[FaultSite] = []
    for n in range(1, 50):
        k = Kernel(FIXED)
        t = call.setup(k)
        before = k.snapshot()
        k.faults.fail_nth(n)
        try:
            call.run(k, t)
        except BpfnsError as err:
            assert err.errno == errno.ENOMEM, f"{call.op}, allocation {n}: {err!r}"
            (site,) = k.faults.injected
            hit.append(site)
            assert f"{site.value}" in str(err) or "injected" in str(err)
            k.faults.disarm()
            assert_atomic(k, before, call.op)
            k.check()
            call.run(k, t)  # nothing was half-done: the same call now succeeds
            k.check()
            continue
        k.faults.disarm()
        assert k.faults.injected == [], f"{call.op}: allocation {n} failed but nothing said so"
        k.check()
        return hit
    raise AssertionError(f"{call.op} made more than 49 allocations")  # pragma: no cover


@pytest.mark.parametrize("call", CALLS, ids=[f"{c.op}-{i}" for i, c in enumerate(CALLS)])
def test_every_allocation_failure_is_atomic(call: Call) -> None:
    assert tuple(sweep(call)) == call.sites


def test_the_sweep_reaches_every_fault_site() -> None:
    assert {site for call in CALLS for site in call.sites} == set(FaultSite)
