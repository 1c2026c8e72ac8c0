"""The kernel's own IDR self-tests (tools/testing/radix-tree/idr-test.c), as conformance cases.

One test per kernel test function, with the kernel's numbers (kernel rules §B,
v6.17-rc3 plus ``idr_alloc2_test`` from c6e8e595). ``RADIX_TREE_MAP_SIZE`` is the kernel
value, 64. ``DUMMY`` is the kernel's ``DUMMY_PTR``: any non-NULL object.
"""

from __future__ import annotations

import errno
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from bpfns import INT_MAX, BpfnsError, Idr, KernelWarning, c_int

DUMMY = object()
RADIX_TREE_MAP_SIZE = 64


class Item:
    """``struct item`` of the radix-tree harness: an object that knows its expected id."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Item({self.index})"


def item_idr_free(idr: Idr) -> int:
    """``idr_for_each(idr, item_idr_free, idr)``: every visited item must sit at its index.

    Returns the number of items visited.
    """
    visited = 0
    for id_, item in idr:
        assert isinstance(item, Item)
        assert item.index == id_
        visited += 1
    return visited


def item_idr_remove(idr: Idr, id_: int) -> None:
    """``item_idr_remove``: ``idr_find`` must return the item of ``id_``; then remove it."""
    item = idr.find(id_)
    assert isinstance(item, Item)
    assert item.index == id_
    assert idr.remove(id_) is item


def for_each_entry(idr: Idr) -> Iterator[tuple[int, Any]]:
    """``idr_for_each_entry``: ``for (id = 0; (entry = idr_get_next(idr, &id)); id++)``."""
    id_ = 0
    while (hit := idr.get_next(id_)) is not None:
        yield hit
        id_ = hit[0] + 1


def expect_errno(code: int) -> pytest.RaisesExc[BpfnsError]:
    """``pytest.raises`` for a BpfnsError carrying ``code``."""
    return pytest.raises(BpfnsError, check=lambda e: e.errno == code)


def test_b1_idr_alloc_test_cyclic_wrap() -> None:
    idr = Idr()
    assert idr.alloc_cyclic(DUMMY, 0, 0x4000) == 0
    assert idr.cursor == 1
    # The cursor (1) is below start, so the search begins at start.
    assert idr.alloc_cyclic(DUMMY, 0x3FFD, 0x4000) == 0x3FFD
    assert idr.cursor == 0x3FFE
    assert idr.remove(0x3FFD) is DUMMY
    assert idr.remove(0) is DUMMY
    assert idr.is_empty()
    assert idr.cursor == 0x3FFE  # idr_remove does not touch the cursor

    items = [Item(i) for i in (0x3FFE, 0x3FFF, 1, 2, 3)]
    for item in items:
        assert idr.alloc_cyclic(item, 1, 0x4000) == item.index
        idr._check()
    # The wrap went to start=1, not to 0.
    assert idr.ids() == [1, 2, 3, 0x3FFE, 0x3FFF]
    assert idr.cursor == 4

    assert item_idr_free(idr) == 5
    idr.destroy()
    assert idr.is_empty()


def test_b2_idr_alloc2_test_range_below_base() -> None:
    idr = Idr(base=1)
    # [0, 1) is {0}, wholly below the base (c6e8e595: before the fix this returned 1).
    with expect_errno(errno.ENOSPC):
        idr.alloc(DUMMY, 0, 1)
    assert idr.is_empty()
    assert idr.alloc(DUMMY, 1, 2) == 1
    with expect_errno(errno.ENOSPC):
        idr.alloc(DUMMY, 0, 1)
    # 0 is below the base and 1 is taken.
    with expect_errno(errno.ENOSPC):
        idr.alloc(DUMMY, 0, 2)
    assert idr.ids() == [1]
    assert idr.find(0) is None
    idr._check()
    idr.destroy()
    assert idr.is_empty()


def test_b3_idr_replace_test() -> None:
    idr = Idr()
    minus_one = object()  # (void *)-1
    assert idr.alloc(minus_one, 10, 11) == 10
    assert idr.replace(idr, 10) is minus_one
    assert idr.find(10) is idr
    assert idr.ids() == [10]
    idr.destroy()
    assert idr.is_empty()


def test_b4_idr_null_test() -> None:
    idr = Idr()
    # 1.
    assert idr.is_empty()
    assert idr.alloc(None, 0, 0) == 0
    assert not idr.is_empty()
    assert idr.remove(0) is None
    assert idr.is_empty()
    # 2.
    assert idr.alloc(None, 0, 0) == 0
    assert not idr.is_empty()
    idr.destroy()
    assert idr.is_empty()
    # 3. NULL entries are allocated: each alloc moves on.
    for i in range(10):
        assert idr.alloc(None, 0, 0) == i
    assert len(idr) == 10
    assert list(idr) == []  # NULL entries are invisible to iteration
    assert idr.get_next(0) is None
    # 4.
    assert idr.replace(DUMMY, 3) is None
    assert idr.replace(DUMMY, 4) is None
    assert idr.replace(None, 4) is DUMMY
    with expect_errno(errno.ENOENT):
        idr.replace(DUMMY, 11)
    assert list(idr) == [(3, DUMMY)]
    # 5. The lowest free id is reused.
    assert idr.remove(5) is None
    assert idr.alloc(None, 0, 0) == 5
    assert idr.remove(5) is None
    assert 5 not in idr
    # 6. Removing 0..8 (5 is already free: a no-op) leaves 9.
    for i in range(9):
        idr.remove(i)
        assert not idr.is_empty()
    assert idr.ids() == [9]
    # 7.
    assert idr.remove(8) is None
    assert not idr.is_empty()
    assert idr.remove(9) is None
    assert idr.is_empty()
    # 8.
    assert idr.alloc(None, 0, 0) == 0
    with expect_errno(errno.ENOENT):
        idr.replace(DUMMY, 3)
    assert idr.replace(DUMMY, 0) is None
    assert idr.replace(None, 0) is DUMMY
    assert idr.find(0) is None
    assert 0 in idr
    # 9.
    idr.destroy()
    assert idr.is_empty()
    # 10.
    for i in range(1, 10):
        assert idr.alloc(None, 1, 0) == i
    assert idr.ids() == list(range(1, 10))
    idr.destroy()
    assert idr.is_empty()
    idr._check()


def test_b5_idr_nowait_test() -> None:
    idr = Idr()
    # idr_preload()/GFP_NOWAIT do not affect which ids are chosen: nothing to model.
    items = [Item(i) for i in range(3)]
    for i, item in enumerate(items):
        assert idr.alloc(item, i, i + 1) == i
    assert item_idr_free(idr) == 3
    idr.destroy()
    assert idr.is_empty()


@pytest.mark.parametrize("base", [0, 1, 4])
def test_b6_idr_get_next_test(base: int) -> None:
    idr = Idr(base=base)
    indices = [4, 7, 9, 15, 65, 128, 1000, 99999, 0]
    for idx, nxt in itertools.pairwise(indices):
        # The last call uses end=0: up to INT_MAX.
        assert idr.alloc(Item(idx), idx, nxt) == idx

    nextid = 0  # with base 4, 0 is below the base: the search starts at the base
    for idx in indices[:-1]:
        hit = idr.get_next(nextid)
        assert hit is not None
        assert hit[0] == idx
        assert hit[1].index == idx
        nextid = hit[0] + 1
    assert idr.get_next(nextid) is None

    assert item_idr_free(idr) == 8
    idr.destroy()
    assert idr.is_empty()


@pytest.mark.parametrize("base", [4, 1, 0])
def test_b7_idr_u32_test(base: int) -> None:
    idr = Idr(base=base)  # one IDR for all six handles, as idr_u32_test does
    for handle in (10, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFE00000, 0xFFFFFFFF):
        # 1.
        assert idr.alloc_u32(DUMMY, handle, handle) == handle
        # 2. (*nextid is an in-parameter here, so "unchanged" is implicit.)
        with expect_errno(errno.ENOSPC):
            idr.alloc_u32(DUMMY, handle, handle)
        assert idr.ids() == [handle]
        assert idr.cursor == 0  # alloc_u32 neither reads nor moves the cursor
        # 3. and 4.
        if handle <= INT_MAX:
            assert idr.get_next(0) == (handle, DUMMY)
            assert list(idr) == [(handle, DUMMY)]
        else:
            with pytest.warns(KernelWarning):
                assert idr.get_next(0) is None
            with pytest.warns(KernelWarning):
                assert list(idr) == []
        assert idr.find(handle) is DUMMY
        # 5.
        assert idr.remove(handle) is DUMMY
        assert idr.is_empty()
        idr._check()


def test_b8_idr_align_test() -> None:
    idr = Idr()
    # &name[i] of "Motorola 68000": distinct pointers, compared by identity.
    name = [("name", i) for i in range(len("Motorola 68000"))]

    for offset in range(4):
        for i in range(offset, offset + 9):
            assert idr.alloc(name[i], 0, 0) == i - offset
            assert list(for_each_entry(idr)) == [
                (j - offset, name[j]) for j in range(offset, i + 1)
            ]
        idr.destroy()
        assert idr.is_empty()

    for i in range(8):
        assert idr.alloc(name[i], 0, 0) == 0
        assert idr.alloc(name[i + 1], 0, 0) == 1
        assert list(for_each_entry(idr)) == [(0, name[i]), (1, name[i + 1])]
        assert idr.remove(1) is name[i + 1]
        assert list(for_each_entry(idr)) == [(0, name[i])]
        assert idr.remove(0) is name[i]
        assert idr.is_empty()

    for i in range(8):
        assert idr.alloc(None, 0, 0) == 0
        assert list(for_each_entry(idr)) == []
        assert idr.replace(name[i], 0) is None
        assert list(for_each_entry(idr)) == [(0, name[i])]
        assert idr.find(0) is name[i]
        assert idr.remove(0) is name[i]
    assert idr.is_empty()

    for i in range(8):
        assert idr.alloc(name[i], 0, 0) == 0
        assert idr.alloc(None, 0, 0) == 1
        assert idr.remove(1) is None
        assert list(for_each_entry(idr)) == [(0, name[i])]
        assert idr.replace(name[i + 1], 0) is name[i]
        assert list(for_each_entry(idr)) == [(0, name[i + 1])]
        assert idr.remove(0) is name[i + 1]
    assert idr.is_empty()
    idr._check()


# B9 idr_find_test is an RCU concurrency test: a "throbber" thread allocates and removes
# id X while readers call idr_get_next() under rcu_read_lock(). The simulator has no
# concurrent readers, so the race itself cannot be reproduced; what it checks at every
# interleaving point is tested sequentially below.
@pytest.mark.parametrize(("anchor", "throbber"), [(100000, 0), (0, 100000)])
def test_b9_idr_find_test_sequential(anchor: int, throbber: int) -> None:
    idr = Idr()
    y, x = Item(anchor), Item(throbber)
    assert idr.alloc(y, anchor, anchor + 1) == anchor
    for _ in range(3):
        assert idr.get_next(0) == (anchor, y)
        assert idr.alloc(x, throbber, throbber + 1) == throbber
        first = min(anchor, throbber)
        assert idr.get_next(0) == (first, x if first == throbber else y)
        assert idr.remove(throbber) is x
    assert idr.get_next(0) == (anchor, y)


def test_b10_idr_checks() -> None:
    idr = Idr()
    # 1.
    items = [Item(i) for i in range(10000)]
    for i, item in enumerate(items):
        assert idr.alloc(item, 0, 20000) == i
    with expect_errno(errno.ENOSPC):
        idr.alloc(DUMMY, 5, 30)
    assert len(idr) == 10000
    # 2.
    for i in range(5000):
        item_idr_remove(idr, i)
    assert idr.remove(3) is None
    assert item_idr_free(idr) == 5000
    idr.destroy()
    assert idr.is_empty()
    # 3.
    assert idr.remove(3) is None
    assert idr.remove(0) is None
    assert idr.is_empty()
    # 4.
    assert idr.alloc(DUMMY, 0, 0) == 0
    assert idr.remove(1) is None
    for i in range(1, RADIX_TREE_MAP_SIZE):
        assert idr.alloc(DUMMY, 0, 0) == i
    assert idr.remove(1 << 30) is None
    assert idr.ids() == list(range(RADIX_TREE_MAP_SIZE))
    idr.destroy()
    assert idr.is_empty()
    # 5. i + 10 overflows to a negative int: end <= 0 means INT_MAX.
    for i in range(INT_MAX - 3, INT_MAX + 1):
        assert c_int(i + 10) < 0
        assert idr.alloc(Item(i), i, c_int(i + 10)) == i
    # 6.
    i = INT_MAX + 1
    with expect_errno(errno.ENOSPC):
        idr.alloc(DUMMY, i - 2, c_int(i))
    with expect_errno(errno.ENOSPC):
        idr.alloc(DUMMY, i - 2, c_int(i + 10))
    assert idr.ids() == list(range(INT_MAX - 3, INT_MAX + 1))
    assert item_idr_free(idr) == 4
    # 7.
    idr.destroy()
    idr.destroy()
    assert idr.is_empty()
    # 8. After INT_MAX the cursor is 0x80000000, negative as an int: restart at start.
    idr.cursor = INT_MAX - 3
    for expected in (INT_MAX - 3, INT_MAX - 2, INT_MAX - 1, INT_MAX, 0, 1):
        assert idr.alloc_cyclic(Item(expected), 0, 0) == expected
        if expected == INT_MAX:
            assert idr.cursor == 0x80000000
    assert idr.cursor == 2
    assert item_idr_free(idr) == 6
    idr.destroy()
    assert idr.is_empty()
    assert idr.cursor == 2  # idr_destroy keeps the cursor
    # 9.
    for i in range(1, 10000):
        assert idr.alloc(Item(i), 1, 20000) == i
    assert item_idr_free(idr) == 9999
    idr.destroy()
    assert idr.is_empty()
    idr._check()


def test_a3_idr_alloc_negative_start_warns_and_returns_einval() -> None:
    """kernel rules §A.3: ``start < 0`` gives a WARN and -EINVAL (``WARN_ON_ONCE(start < 0)``)."""
    idr = Idr()
    with pytest.warns(KernelWarning), expect_errno(errno.EINVAL):
        idr.alloc(DUMMY, -1, 0)
    assert idr.is_empty()
