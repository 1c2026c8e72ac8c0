"""The pid flavour of the core against kernel rules §C (alloc_pid, pid_max)."""

from __future__ import annotations

import errno

import pytest

from bpfns import BpfnsError, ObjType
from bpfns.conformance import parse_nspid
from bpfns.pidns import PID_MAX_LIMIT, PidKernel
from helpers import errno_of


def nrs(pid: object) -> list[int]:
    return [n.nr for n in pid.numbers]  # type: ignore[attr-defined]


def test_fresh_root() -> None:
    pk = PidKernel()
    assert pk.root.idr[0].cursor == 0
    assert pk.pid_max(pk.root) == PID_MAX_LIMIT == 4194304
    assert nrs(pk.alloc_pid(pk.root)) == [1]


def test_one_number_per_level_innermost_first() -> None:
    pk = PidKernel()
    a = pk.create_namespace(pk.root)
    b = pk.create_namespace(a)
    for _ in range(4):
        pk.alloc_pid(pk.root)
    assert nrs(pk.alloc_pid(a)) == [5, 1]
    assert nrs(pk.alloc_pid(b)) == [6, 2, 1]
    assert pk.find_pid(a, 2) is not None
    assert pk.find_pid(a, 3) is None


def test_wrap_goes_to_300_once_past_reserved() -> None:
    """C.2 step 8 with pid_max = 500: ..., 498, 499, then 300."""
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    pk.set_pid_max(ns, 500)
    assert nrs(pk.alloc_pid(ns))[-1] == 1  # the namespace's init, which stays
    got = []
    for _ in range(510):  # fork + reap, like the pid_max_simple selftest
        pid = pk.alloc_pid(ns)
        got.append(nrs(pid)[-1])
        pk.free_pid(pid)
    assert max(got) == 499
    assert got[496:499] == [498, 499, 300]


def test_pid_max_302_gives_301_pids_then_eagain() -> None:
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    pk.set_pid_max(ns, 302)
    pids = [nrs(pk.alloc_pid(ns))[-1] for _ in range(301)]
    assert pids == list(range(1, 302))
    assert errno_of(lambda: pk.alloc_pid(ns)) == errno.EAGAIN


def test_pid_max_nested_limit_selftest() -> None:
    """Outer pid_max 400, inner 500: 397 inner forks succeed (kernel rules §C.10)."""
    pk = PidKernel()
    outer = pk.create_namespace(pk.root)
    pk.set_pid_max(outer, 400)
    pk.alloc_pid(outer)  # the outer init
    inner = pk.create_namespace(outer)
    pk.alloc_pid(inner)  # the inner init: outer nr 2, inner nr 1
    made = 0
    while True:
        try:
            pk.alloc_pid(inner)
        except BpfnsError as e:
            assert e.errno == errno.EAGAIN
            break
        made += 1
    assert made == 397


def test_pid_max_nested_selftest() -> None:
    pk = PidKernel()
    outer = pk.create_namespace(pk.root)
    pk.set_pid_max(outer, 400)
    pk.alloc_pid(outer)
    for _ in range(396):
        pk.alloc_pid(outer)
    inner = pk.create_namespace(outer)
    pk.set_pid_max(inner, 500)
    first = pk.alloc_pid(inner)
    assert nrs(first)[1:] == [398, 1]
    second = pk.alloc_pid(inner)  # outer 399
    assert nrs(second)[1:] == [399, 2]
    assert errno_of(lambda: pk.alloc_pid(inner)) == errno.EAGAIN


def test_rollback_keeps_deeper_cursors_but_resets_an_empty_innermost() -> None:
    pk = PidKernel()
    outer = pk.create_namespace(pk.root)
    pk.set_pid_max(outer, 302)
    for _ in range(301):
        pk.alloc_pid(outer)  # outer is full
    inner = pk.create_namespace(outer)
    assert errno_of(lambda: pk.alloc_pid(inner)) == errno.EAGAIN
    assert inner.idr[0].cursor == 0  # never published: reset, the next gets pid 1 again
    mid = pk.create_namespace(inner)
    low = pk.find_pid(outer, 5)
    assert low is not None
    pk.free_pid(low)  # below the floor of 300: not reusable once the cursor passed it
    assert errno_of(lambda: pk.alloc_pid(mid)) == errno.EAGAIN
    top = pk.find_pid(outer, 300)
    assert top is not None
    pk.free_pid(top)
    first = pk.alloc_pid(mid)  # takes outer's only free pid above the floor
    assert nrs(first)[1:] == [300, 2, 1]
    assert errno_of(lambda: pk.alloc_pid(mid)) == errno.EAGAIN
    assert mid.idr[0].cursor == 3  # it holds a pid: not reset; its number 2 is burned
    assert inner.idr[0].cursor == 4  # and the middle level's number 3


def test_set_pid_max_range() -> None:
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    for bad in (300, PID_MAX_LIMIT + 1, 0):
        assert errno_of(lambda bad=bad: pk.set_pid_max(ns, bad)) == errno.EINVAL
    pk.set_pid_max(ns, 301)
    assert pk.pid_max(ns) == 301
    with pytest.raises(TypeError):
        pk.set_pid_max(ns, "400")  # type: ignore[arg-type]


def test_eagain_message_names_alloc_pid() -> None:
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    pk.set_pid_max(ns, 301)
    for _ in range(300):
        pk.alloc_pid(ns)
    with pytest.raises(BpfnsError, match=r"alloc_pid: level 1 .*EAGAIN|alloc_pid: level 1"):
        pk.alloc_pid(ns)


# -- the rules an audit found missing (kernel rules §C.1, §C.2, §C.6, §C.8) -----------------


def test_alloc_pid_after_the_init_exited_is_enomem() -> None:
    """C.6: zap_pid_ns_processes clears PIDNS_ADDING; later forks get ENOMEM (C.2 step 5)."""
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    init = pk.alloc_pid(ns)
    child = pk.alloc_pid(ns)
    assert nrs(child)[-1] == 2
    pk.free_pid(child)  # not the init: nothing changes
    assert nrs(pk.alloc_pid(ns))[-1] == 3
    cursors = (pk.root.idr[ObjType.MAP].cursor, ns.idr[ObjType.MAP].cursor)
    pk.free_pid(init)
    assert errno_of(lambda: pk.alloc_pid(ns)) == errno.ENOMEM
    # every level was rolled back; the cursors stay advanced (C.2 step 7)
    assert pk.find_pid(ns, cursors[1]) is None and pk.find_pid(pk.root, cursors[0]) is None
    assert ns.idr[ObjType.MAP].cursor == cursors[1] + 1
    assert nrs(pk.alloc_pid(pk.root))[-1] == cursors[0] + 1  # a number was burned
    inner = pk.create_namespace(ns)  # only the innermost namespace is checked
    assert nrs(pk.alloc_pid(inner)) == [cursors[0] + 2, cursors[1] + 1, 1]
    pk.core.check()


def test_set_tid_asks_for_exact_pids_innermost_first() -> None:
    """C.2: set_tid[0] is the innermost level; exact pids do not move the cursor."""
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    assert errno_of(lambda: pk.alloc_pid(ns, (5,))) == errno.EINVAL  # no init yet
    assert nrs(pk.alloc_pid(ns, (1,)))[-1] == 1
    assert nrs(pk.alloc_pid(ns, (5,)))[-1] == 5
    assert errno_of(lambda: pk.alloc_pid(ns, (5,))) == errno.EEXIST
    assert errno_of(lambda: pk.alloc_pid(ns, (0,))) == errno.EINVAL
    assert errno_of(lambda: pk.alloc_pid(ns, (PID_MAX_LIMIT,))) == errno.EINVAL
    assert errno_of(lambda: pk.alloc_pid(ns, (1, 2, 3))) == errno.EINVAL  # 3 > 2 levels
    assert nrs(pk.alloc_pid(ns))[-1] == 2  # the cursor never moved past 1
    both = pk.alloc_pid(ns, (7, 4242))  # the root's number too
    assert nrs(both) == [4242, 7]
    assert errno_of(lambda: pk.alloc_pid(ns, (8, 4242))) == errno.EEXIST  # at the root
    assert pk.find_pid(ns, 8) is None  # the inner level was rolled back
    with pytest.raises(TypeError, match="set_tid"):
        pk.alloc_pid(ns, 5)  # type: ignore[arg-type]
    pk.core.check()


def test_the_root_is_init_pid_ns() -> None:
    """C.1: init_pid_ns has ns.count 2 and inode 0xEFFFFFFC; caches are pid, pid_<n>."""
    pk = PidKernel()
    assert (pk.root.refcount, pk.root.inum) == (2, 0xEFFFFFFC)
    inner = pk.create_namespace(pk.create_namespace(pk.root))
    pk.alloc_pid(inner)
    assert [name for name, _ in pk.core.slabinfo()] == ["bpf_namespace", "pid", "pid_2", "pid_3"]
    pk.core.check()


def test_nspid_runs_from_the_viewer_to_the_task() -> None:
    """C.8: one field per level from the viewer's down, the viewer's number first."""
    pk = PidKernel()
    outer = pk.create_namespace(pk.root)
    for _ in range(4):
        pk.alloc_pid(pk.root)
    pk.alloc_pid(outer)
    inner = pk.create_namespace(outer)
    pid = pk.alloc_pid(inner)
    assert pk.nspid(pid, pk.root) == "NSpid:\t6\t2\t1"
    assert pk.nspid(pid, inner) == "NSpid:\t1"
    assert parse_nspid(pk.nspid(pid, outer) + "\n") == [2, 1]  # what the driver parses
    sibling = pk.create_namespace(pk.root)
    assert errno_of(lambda: pk.nspid(pid, sibling)) == errno.ENOENT
