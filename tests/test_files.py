"""FdTable: the lowest free fd, EMFILE at RLIMIT_NOFILE, reserved fds, and _check."""

from __future__ import annotations

import errno
import heapq

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bpfns
from bpfns import BpfnsError, Kernel
from bpfns._files import FdTable, File, FileKind


def pidfd() -> File:
    return File(FileKind.PIDFD, None)


def test_lowest_free_fd_first() -> None:
    t = FdTable()
    assert [t.install(pidfd()) for _ in range(4)] == [0, 1, 2, 3]
    t.detach(2)
    t.detach(0)
    assert t.install(pidfd()) == 0
    assert t.reserve() == 2
    assert t.install(pidfd()) == 4
    t._check()


def test_closing_the_top_fds_lowers_the_high_mark() -> None:
    t = FdTable()
    for _ in range(3):
        t.install(pidfd())
    t.detach(1)
    t.detach(2)  # 2 was the top: 1 stays a hole below the new mark
    t._check()
    assert t.install(pidfd()) == 1
    assert t.install(pidfd()) == 2


def test_emfile_is_about_the_lowest_free_fd_not_the_count() -> None:
    """alloc_fd fails when the lowest free fd is not below RLIMIT_NOFILE."""
    t = FdTable(nofile=2)
    t.install(pidfd())
    t.install(pidfd())
    with pytest.raises(BpfnsError) as err:
        t.install(pidfd())
    assert err.value.errno == errno.EMFILE
    assert "RLIMIT_NOFILE is 2" in str(err.value)
    t.detach(0)
    t.nofile = 1  # one fd open (fd 1) and the limit lowered to 1: fd 0 still fits
    assert t.install(pidfd()) == 0


def test_a_failed_allocation_changes_nothing() -> None:
    t = FdTable(nofile=1)
    t.install(pidfd())
    before = (dict(t._fds), set(t._reserved), list(t._holes), t._high)
    with pytest.raises(BpfnsError):
        t.reserve()
    assert (dict(t._fds), set(t._reserved), list(t._holes), t._high) == before


def test_a_reserved_fd_is_taken_but_not_open() -> None:
    t = FdTable()
    fd = t.reserve()
    with pytest.raises(BpfnsError) as err:
        t.get(fd)
    assert err.value.errno == errno.EBADF
    assert len(t) == 0
    assert t.install(pidfd()) == fd + 1
    t.fd_install(fd, pidfd())
    assert len(t) == 2
    t._check()


def test_detach_of_a_closed_fd_is_ebadf() -> None:
    t = FdTable()
    with pytest.raises(BpfnsError) as err:
        t.detach(0)
    assert err.value.errno == errno.EBADF


def test_copy_keeps_fds_and_holes_and_drops_reserved_ones() -> None:
    t = FdTable()
    files = [pidfd() for _ in range(4)]
    for f in files:
        t.install(f)
    t.detach(1)
    reserved = t.reserve()
    assert reserved == 1
    t.detach(3)
    new = t.copy()
    new._check()
    assert [fd for fd, _ in new.items()] == [0, 2]
    assert [f.count for f in files] == [2, 1, 2, 1]
    assert [new.install(pidfd()) for _ in range(3)] == [1, 3, 4]


@given(st.lists(st.tuples(st.sampled_from("irdpf"), st.integers(0, 7)), max_size=60))
def test_fd_table_matches_a_lowest_free_model(ops: list[tuple[str, int]]) -> None:
    """Against a set model, with RLIMIT_NOFILE 6 so that EMFILE is reached."""
    t = FdTable(nofile=6)
    installed: set[int] = set()
    reserved: set[int] = set()
    for op, n in ops:
        lowest = min(set(range(7)) - installed - reserved)
        if op in "ir":
            try:
                fd = t.install(pidfd()) if op == "i" else t.reserve()
            except BpfnsError as err:
                assert err.errno == errno.EMFILE
                assert lowest >= 6
                continue
            assert fd == lowest < 6
            (installed if op == "i" else reserved).add(fd)
        elif op == "d":
            if n in installed:
                t.detach(n)
                installed.discard(n)
            else:
                with pytest.raises(BpfnsError):
                    t.detach(n)
        elif op == "p" and n in reserved:
            t.put_unused(n)
            reserved.discard(n)
        elif op == "f" and n in reserved:
            t.fd_install(n, pidfd())
            reserved.discard(n)
            installed.add(n)
        t._check()
    assert [fd for fd, _ in t.items()] == sorted(installed)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda t: t._holes.append(3), "an fd is free twice"),
        (lambda t: t._holes.insert(0, 5), "heap"),
        (lambda t: heapq.heappush(t._holes, 0), "an fd is both used and free"),
        (lambda t: t._reserved.add(0), "an fd is both installed and reserved"),
        (lambda t: setattr(t, "_high", t._high + 1), "fds below the high mark are lost"),
    ],
)
def test_check_finds_corruption(corrupt: object, message: str) -> None:
    t = FdTable()
    for _ in range(5):
        t.install(pidfd())
    t.detach(1)
    t.detach(3)
    t._check()
    corrupt(t)  # type: ignore[operator]
    with pytest.raises(AssertionError, match=message):
        t._check()


def test_dup2_fills_holes_and_the_high_mark() -> None:
    k = Kernel()
    t = k.init_task
    assert t.files is not None
    fd = t.map_create()
    assert t.dup2(fd, fd) == fd  # dup2 onto itself only checks the fd
    assert t.dup2(fd, 5) == 5  # above the high mark: 1-4 become holes
    assert t.files.reserve() == 1  # the lowest hole
    with pytest.raises(bpfns.BpfnsError) as busy:
        t.dup2(fd, 1)
    assert busy.value.errno == errno.EBUSY
    t.files.put_unused(1)
    assert t.dup2(fd, 3) == 3  # a hole below the high mark
    assert [n for n, _ in t.files.items()] == [0, 3, 5]
    other = t.map_create()  # lowest free: 1
    assert other == 1
    t.dup2(other, 3)  # replaces 3's reference to the first map; the map lives on in 0, 5
    assert dict(t.files.items())[0].count == 2
    for bad in (-1, t.files.nofile):
        with pytest.raises(bpfns.BpfnsError) as badf:
            t.dup2(fd, bad)
        assert badf.value.errno == errno.EBADF
    t.close(0)
    t.close(5)
    assert t.map_get_next_id(0) == 2  # the first map went with its last fd
    k.check()
