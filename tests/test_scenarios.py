"""Scenarios from the RFC itself: the selftest, the bpftool transcripts, isolation, D6."""

from __future__ import annotations

import errno

import pytest

from bpfns import CLONE_NEWBPF, FIXED, RFC, Behavior, BpfnsError, Kernel, LinkInfo
from helpers import walk


@pytest.mark.parametrize("behavior", [RFC, FIXED])
def test_rfc_selftest(behavior: Behavior) -> None:
    """The RFC's selftest (patch 13, test_bpfns.c), with the checks it forgot."""
    k = Kernel(behavior)
    init = k.init_task
    map_in_init = init.map_create(name="map_in_init")
    child = init.clone(CLONE_NEWBPF)
    child_map = child.map_create(name="map_in_bpfns")
    assert child.obj_get_info_by_fd(child_map).id == 1  # the selftest's assert
    assert child.obj_get_info_by_fd(map_in_init).id == 0  # inherited: invisible here
    global_fd = init.map_get_fd_by_id(2)  # init sees the child's map, global id
    assert init.obj_get_info_by_fd(global_fd).name == "map_in_bpfns"
    assert init.obj_get_info_by_fd(map_in_init).id == 1
    k.check()


def test_bpftool_transcripts_of_patch_10() -> None:
    """semantics §2.6: child maps 4/5, progs 7/9, links 1/2; init maps 8/9, progs 15/17,
    links 2/3; libbpf's feature probes explain the gaps."""
    k = Kernel()
    host = k.init_task
    for _ in range(4):  # the host's own objects set init's starting cursors
        host.map_create()
    for _ in range(8):
        host.prog_load()
    host.link_create(4)  # fd 4 is the host's first program
    child = host.clone(CLONE_NEWBPF, name="container")
    for _ in range(3):  # libbpf probes: created and closed at once
        child.close(child.map_create())
    for _ in range(6):
        child.close(child.prog_load())
    map_a = child.map_create(name="kprobe_map")
    child.map_create(name="rodata")
    prog_1 = child.prog_load(name="kprobe_1", maps=(map_a,))
    child.close(child.prog_load())  # one more probe
    prog_2 = child.prog_load(name="kprobe_2", maps=(map_a,))
    link_1 = child.link_create(prog_2)
    link_2 = child.link_create(prog_1)

    assert walk(child, "map") == [4, 5]
    assert walk(child, "prog") == [7, 9]
    assert walk(child, "link") == [1, 2]
    assert [child.obj_get_info_by_fd(fd) for fd in (link_1, link_2)] == [
        LinkInfo(1, 7, 9),
        LinkInfo(2, 7, 7),
    ]
    assert child.obj_get_info_by_fd(prog_1).map_ids == (4,)  # type: ignore[union-attr]

    assert walk(host, "map")[-2:] == [8, 9]
    assert walk(host, "prog")[-2:] == [15, 17]
    assert walk(host, "link")[-2:] == [2, 3]
    host_view = [host.obj_get_info_by_fd(host.link_get_fd_by_id(i)) for i in (2, 3)]
    assert host_view == [LinkInfo(2, 7, 17), LinkInfo(3, 7, 15)]
    assert "map_id:\t8\n" in host.read_fdinfo(child, map_a)
    k.check()


def test_sibling_isolation() -> None:
    k = Kernel(FIXED)
    child_a = k.init_task.clone(CLONE_NEWBPF, name="a")
    child_b = k.init_task.clone(CLONE_NEWBPF, name="b")
    child_b_b = child_b.clone(CLONE_NEWBPF, name="b_b")
    a_maps = [child_a.map_create(name=f"a{i}") for i in range(2)]
    b_maps = [child_b.map_create(name=f"b{i}") for i in range(3)]
    child_b_b.map_create(name="bb0")
    # GET_NEXT_ID lists exactly the namespace's subtree, in its own numbering.
    assert walk(child_a, "map") == [1, 2]
    assert walk(child_b, "map") == [1, 2, 3, 4]
    assert walk(child_b_b, "map") == [1]
    assert walk(k.init_task, "map") == [1, 2, 3, 4, 5, 6]
    # A task in child_a never opens one of child_b's maps by id.
    names = [child_a.obj_get_info_by_fd(child_a.map_get_fd_by_id(i)).name for i in (1, 2)]  # type: ignore[union-attr]
    assert names == ["a0", "a1"]
    with pytest.raises(BpfnsError) as info:
        child_a.map_get_fd_by_id(3)
    assert info.value.errno == errno.ENOENT
    assert len(b_maps) + len(a_maps) == 5
    k.check()


@pytest.mark.parametrize(("behavior", "seen"), [(RFC, 1), (FIXED, 0)])
def test_fd_passed_between_siblings_shows_d6(behavior: Behavior, seen: int) -> None:
    k = Kernel(behavior)
    child_a = k.init_task.clone(CLONE_NEWBPF, name="a")
    child_b = k.init_task.clone(CLONE_NEWBPF, name="b")
    mine = child_a.map_create(name="mine")
    theirs = child_b.map_create(name="theirs")
    got = child_b.send_fd(theirs, child_a)
    assert child_a.obj_get_info_by_fd(got).id == seen
    assert f"map_id:\t{seen}\n" in child_a.read_fdinfo(child_a, got)
    if behavior is RFC:
        # The wrong id names a different map of child_a's own.
        opened = child_a.map_get_fd_by_id(seen)
        assert child_a.obj_get_info_by_fd(opened).name == "mine"
        assert {r.defect for r in k.reports} == {"D6"}
    else:
        assert k.reports == []
    assert child_a.obj_get_info_by_fd(mine).id == 1
