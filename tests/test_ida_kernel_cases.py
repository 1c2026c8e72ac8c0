"""The kernel's IDA self-tests (lib/test_ida.c and user_ida_checks), as conformance cases.

kernel rules §B, "IDA cases". ``IDA_BITMAP_BITS`` is 1024 and ``BITS_PER_LONG`` 64, as
on a 64-bit kernel. Concurrency (``ida_leak_fn``, ``ida_thread_tests``) and memory-failure
cases (``ida_check_nomem``, ``ida_check_conv_user``) have no counterpart in the simulator.
"""

from __future__ import annotations

import errno
import random

import pytest

from bpfns import INT_MAX, U32_MAX, BpfnsError, Ida, KernelWarning

IDA_BITMAP_BITS = 1024
BITS_PER_LONG = 64


def expect_errno(code: int) -> pytest.RaisesExc[BpfnsError]:
    """``pytest.raises`` for a BpfnsError carrying ``code``."""
    return pytest.raises(BpfnsError, check=lambda e: e.errno == code)


def test_ida_check_alloc() -> None:
    ida = Ida()
    for i in range(10000):
        assert ida.alloc() == i
    ida.free(20)
    ida.free(21)
    # The kernel asserts only the third; lowest-free semantics fix all three.
    assert [ida.alloc() for _ in range(3)] == [20, 21, 10000]
    for i in range(5000):
        ida.free(i)
    assert ida.alloc_min(5000) == 10001
    assert len(ida) == 5002
    ida._check()
    ida.destroy()
    assert ida.is_empty()
    assert ida.ids() == []


def test_ida_check_destroy() -> None:
    ida = Ida()
    assert ida.is_empty()
    ida.destroy()  # destroying an empty IDA is fine
    assert ida.is_empty()
    for base in (0, 1, 1023, 1024, 12345678):
        assert ida.alloc_min(base) == base
        assert not ida.is_empty()
        assert ida.ids() == [base]
        ida.destroy()
        assert ida.is_empty()


@pytest.mark.parametrize("base", [0, 1024, 1024 * 64])
def test_ida_check_leaf(base: int) -> None:
    ida = Ida()
    for i in range(IDA_BITMAP_BITS):
        assert ida.alloc_min(base) == base + i
    assert len(ida) == IDA_BITMAP_BITS
    ida._check()
    ida.destroy()
    assert ida.is_empty()
    assert ida.alloc() == 0
    assert not ida.is_empty()
    ida.free(0)
    assert ida.is_empty()
    ida._check()


def test_ida_check_max() -> None:
    # j = 1, 2, 4, ..., 65536: 131071 allocations in all, well under a second.
    ida = Ida()
    j = 1
    while j < 65537:
        base = (1 << 31) - j
        for i in range(j):
            assert ida.alloc_min(base) == base + i
        with expect_errno(errno.ENOSPC):
            ida.alloc_min(base)
        assert len(ida) == j
        assert ida.find_first() == base
        ida._check()
        ida.destroy()
        assert ida.is_empty()
        j *= 2


def test_ida_check_conv() -> None:
    ida = Ida()
    for i in range(0, IDA_BITMAP_BITS * 2, IDA_BITMAP_BITS):
        assert ida.alloc_min(i + 1) == i + 1
        assert ida.alloc_min(i + BITS_PER_LONG) == i + BITS_PER_LONG
        ida.free(i + 1)
        ida.free(i + BITS_PER_LONG)
        assert ida.is_empty()

    for count in (IDA_BITMAP_BITS * 2, IDA_BITMAP_BITS + BITS_PER_LONG - 4):
        for i in range(count):
            assert ida.alloc() == i
        for i in range(count, 0, -1):
            ida.free(i - 1)
            assert len(ida) == i - 1
        assert ida.is_empty()
        ida._check()


def _free_unallocated(ida: Ida) -> None:
    """Free 0 and 1 << i for i < 31: none is allocated, so each one WARNs and does nothing."""
    before = ida.ids()
    for bad in [0] + [1 << i for i in range(31)]:
        with pytest.warns(KernelWarning, match=f"id={bad} which is not allocated"):
            ida.free(bad)
        assert ida.ids() == before


def test_ida_check_bad_free() -> None:
    ida = Ida()
    _free_unallocated(ida)  # empty
    assert ida.is_empty()
    assert ida.alloc_min(3) == 3  # a single value entry
    _free_unallocated(ida)
    assert ida.alloc_min(1023) == 1023  # a single bitmap
    _free_unallocated(ida)
    assert ida.alloc_min((1 << 20) - 1) == (1 << 20) - 1  # a tree
    _free_unallocated(ida)
    assert ida.ids() == [3, 1023, (1 << 20) - 1]
    ida.free(3)
    ida.free(1023)
    ida.free((1 << 20) - 1)
    assert ida.is_empty()
    ida._check()


# (min, max) -> result, from ida_check_find_first. min = -1 is passed as the unsigned int
# the C prototype turns it into, 0xFFFFFFFF.
FIND_FIRST_TABLE = [
    ((U32_MAX, 2), -errno.EINVAL),
    ((0, 2), -errno.ENOENT),
    ((0, 3), 3),
    ((1, 3), 3),
    ((3, 3), 3),
    ((2, 4), 3),
    ((4, 3), -errno.ENOENT),
    ((4, 60), -errno.ENOENT),
    ((4, 64), 63),
    ((63, 63), 63),
    ((64, 1026), 1023),
    ((1023, 1023), 1023),
    ((1023, (1 << 20) - 1), 1023),
    ((1024, (1 << 20) - 1), (1 << 20) - 1),
    ((1 << 20, INT_MAX), -errno.ENOENT),
]


def test_ida_check_find_first() -> None:
    ida = Ida()
    probes = (0, 3, 63, 1023, (1 << 20) - 1)
    for id_ in probes:
        assert not ida.exists(id_)
    with expect_errno(errno.ENOENT):
        ida.find_first()

    for id_ in probes[1:]:
        assert ida.alloc_min(id_) == id_
    assert ida.find_first() == 3
    assert not ida.exists(0)
    for id_ in probes[1:]:
        assert ida.exists(id_)

    for (lo, hi), expected in FIND_FIRST_TABLE:
        if expected < 0:
            with expect_errno(-expected):
                ida.find_first_range(lo, hi)
        else:
            assert ida.find_first_range(lo, hi) == expected, (lo, hi)
    ida.destroy()
    assert ida.is_empty()


def test_ida_simple_get_remove_test() -> None:
    ida = Ida()
    for i in range(10000):
        assert ida.simple_get(0, 20000) == i
    with expect_errno(errno.ENOSPC):
        ida.simple_get(5, 30)
    for i in range(10000):
        ida.free(i)  # ida_simple_remove
    assert ida.is_empty()
    ida.destroy()
    assert ida.is_empty()


def test_ida_check_random() -> None:
    # The kernel repeats 100000 rand() steps for ten seconds; one seeded round here.
    rng = random.Random(20250828)
    ida = Ida()
    bitmap = [False] * 2048
    for _ in range(100000):
        bit = rng.getrandbits(31) & 2047
        if bitmap[bit]:
            bitmap[bit] = False
            ida.free(bit)
        else:
            bitmap[bit] = True
            assert ida.alloc_min(bit) == bit
    assert ida.ids() == [b for b in range(2048) if bitmap[b]]
    ida._check()
    ida.destroy()
    assert ida.is_empty()
