"""The id bitmap under every Idr and Ida: lib/radix-tree.c's IDR_FREE tag, in Python.

The kernel keeps IDR entries in a radix tree whose nodes carry an ``IDR_FREE`` tag: a
set tag means "there is a free slot somewhere below". ``idr_get_free()`` follows the
tags down to the lowest free slot at or above the start, touching one node per level.
(kernel.md A.1: "allocated" is tracked by the IDR_FREE tag, separately from the stored
value; that is why a NULL entry is allocated.)

:class:`IdBitmap` keeps the same information in two tiers:

* leaves: a ``dict`` from leaf number to a ``2**shift``-bit Python ``int`` whose set bits
  are the allocated ids of that leaf. Finding the lowest free id inside a leaf is a
  couple of integer operations; allocating or freeing one id touches one leaf.
* :class:`RunSet`: the leaves that are completely full, kept as disjoint runs in a
  :class:`sortedcontainers.SortedList`. It answers "first leaf at or after ``k`` that is
  not full" in O(log n) by bisection, so a dense, wrapped id space with a single free
  slot costs one bisection, never a scan (issue 2's O(log n) requirement).

A sorted list of the leaves that hold any id serves ascending walks (``idr_get_next``,
``ida_find_first_range``). At most one empty leaf is kept (the one the last allocation
touched) so that the common alloc-then-free cycle of a cyclic allocator never pays a
sorted-list insertion.

Everything here is private; :class:`bpfns.Idr` and :class:`bpfns.Ida` are the public face.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from sortedcontainers import SortedList

__all__ = ["IdBitmap", "RunSet"]

#: Default leaf width, 256 ids: 2**24 leaves cover the whole u32 id space.
DEFAULT_SHIFT = 8


def lowest_bit(x: int) -> int:
    """Index of the lowest set bit of a positive int."""
    return (x & -x).bit_length() - 1


@attrs.define
class RunSet:
    """A set of non-negative ints stored as maximal runs ``[start, end]``.

    ``add`` and ``discard`` cost O(log r) for r runs (one bisection plus at most two
    sorted-list updates); ``next_absent`` and ``__contains__`` cost one bisection.

    >>> s = RunSet()
    >>> for k in (3, 4, 5, 9):
    ...     s.add(k)
    >>> s.next_absent(3), s.next_absent(6), s.runs()
    (6, 6, [(3, 5), (9, 9)])
    """

    _starts: SortedList = attrs.field(factory=SortedList)  # type: ignore[type-arg]
    _end_of: dict[int, int] = attrs.field(factory=dict)
    _start_of: dict[int, int] = attrs.field(factory=dict)

    def _run_of(self, k: int) -> int | None:
        """Start of the run that contains ``k``, or None."""
        i = self._starts.bisect_right(k)
        if i == 0:
            return None
        start: int = self._starts[i - 1]
        return start if self._end_of[start] >= k else None

    def __contains__(self, k: int) -> bool:
        return self._run_of(k) is not None

    def __len__(self) -> int:
        return sum(end - start + 1 for start, end in self._end_of.items())

    def next_absent(self, k: int) -> int:
        """Smallest ``j >= k`` that is not in the set."""
        start = self._run_of(k)
        return k if start is None else self._end_of[start] + 1

    def add(self, k: int) -> None:
        """Insert ``k`` (which must be absent), merging with neighbouring runs."""
        lo = self._start_of.pop(k - 1, None)  # a run ending just below k
        hi_end = self._end_of.pop(k + 1, None)  # a run starting just above k
        if hi_end is not None:
            del self._start_of[hi_end]
            self._starts.remove(k + 1)
        end = k if hi_end is None else hi_end
        if lo is None:
            self._starts.add(k)
            lo = k
        self._end_of[lo] = end
        self._start_of[end] = lo

    def discard(self, k: int) -> None:
        """Remove ``k`` (which must be present), splitting its run."""
        start = self._run_of(k)
        assert start is not None, f"RunSet.discard({k}): not present"
        end = self._end_of.pop(start)
        del self._start_of[end]
        self._starts.remove(start)
        if start <= k - 1:
            self._starts.add(start)
            self._end_of[start] = k - 1
            self._start_of[k - 1] = start
        if k + 1 <= end:
            self._starts.add(k + 1)
            self._end_of[k + 1] = end
            self._start_of[end] = k + 1

    def clear(self) -> None:
        """Remove everything."""
        self._starts.clear()
        self._end_of.clear()
        self._start_of.clear()

    def runs(self) -> list[tuple[int, int]]:
        """The runs in ascending order, as ``(start, end)`` pairs."""
        return [(s, self._end_of[s]) for s in self._starts]

    def _check(self) -> None:
        """Assert the internal invariants (sortedcontainers style)."""
        self._starts._check()  # type: ignore[attr-defined]
        assert list(self._starts) == sorted(self._end_of)
        assert {e: s for s, e in self._end_of.items()} == self._start_of
        prev_end = -2
        for start, end in self.runs():
            assert start <= end
            assert start > prev_end + 1, "runs must be maximal and disjoint"
            prev_end = end


@attrs.define
class IdBitmap:
    """Which ids of ``[0, 2**32)`` are allocated, with O(log n) lowest-free search.

    Models the IDR_FREE-tagged radix tree of lib/radix-tree.c (kernel.md A.1).

    Complexity: ``set``, ``clear`` and ``is_set`` are O(1) except when a leaf becomes
    full, stops being full, or is created or dropped (O(log n), once per ``2**shift``
    allocations in cyclic use); ``find_free`` and ``find_set`` are O(log n).

    >>> b = IdBitmap(shift=2)
    >>> for i in range(6):
    ...     b.set(i)
    >>> b.find_free(0, 100), b.find_set(3, 100), len(b)
    (6, 3, 6)
    """

    shift: int = DEFAULT_SHIFT
    _full: int = attrs.field(init=False)
    _mask: int = attrs.field(init=False)
    _leaves: dict[int, int] = attrs.field(init=False, factory=dict)
    _present: SortedList = attrs.field(init=False, factory=SortedList)  # type: ignore[type-arg]
    _full_leaves: RunSet = attrs.field(init=False, factory=RunSet)
    _hot: int = attrs.field(init=False, default=-1)
    _count: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._full = (1 << (1 << self.shift)) - 1
        self._mask = (1 << self.shift) - 1

    def __len__(self) -> int:
        return self._count

    def is_set(self, i: int) -> bool:
        """Whether id ``i`` is allocated. O(1)."""
        return bool((self._leaves.get(i >> self.shift, 0) >> (i & self._mask)) & 1)

    def find_free(self, lo: int, hi: int) -> int | None:
        """Lowest id in ``[lo, hi]`` that is not allocated, or None. O(log n)."""
        shift = self.shift
        k = lo >> shift
        free = (~self._leaves.get(k, 0) & self._full) >> (lo & self._mask)
        if free:
            found = lo + lowest_bit(free)
        else:
            k = self._full_leaves.next_absent(k + 1)
            found = (k << shift) + lowest_bit(~self._leaves.get(k, 0) & self._full)
        return found if found <= hi else None

    def take(self, lo: int, hi: int) -> int | None:
        """:meth:`find_free` then :meth:`set` in one call; returns the id taken, or None.

        The cyclic allocator's common case, ``lo`` free in the leaf the last allocation
        touched, costs one dict lookup and a few integer operations.
        """
        k = lo >> self.shift
        bits = self._leaves.get(k)
        bit = 1 << (lo & self._mask)
        if k == self._hot and bits is not None and not bits & bit and lo <= hi:
            bits |= bit
            self._leaves[k] = bits
            if bits == self._full:
                self._full_leaves.add(k)
            self._count += 1
            return lo
        found = self.find_free(lo, hi) if lo <= hi else None
        if found is not None:
            self.set(found)
        return found

    def find_set(self, lo: int, hi: int) -> int | None:
        """Lowest allocated id in ``[lo, hi]``, or None. O(log n)."""
        for i in self.iter_set(lo):
            return i if i <= hi else None
        return None

    def iter_set(self, lo: int) -> Iterator[int]:
        """Allocated ids ``>= lo`` in ascending order (do not mutate while iterating)."""
        shift, mask = self.shift, self._mask
        k = lo >> shift
        bits = self._leaves.get(k, 0) >> (lo & mask) << (lo & mask)
        while True:
            while bits:
                low = bits & -bits
                yield (k << shift) + low.bit_length() - 1
                bits ^= low
            j = self._present.bisect_right(k)
            if j == len(self._present):
                return
            k = self._present[j]
            bits = self._leaves[k]

    def set(self, i: int) -> None:
        """Mark ``i`` allocated (it must be free)."""
        k = i >> self.shift
        if k != self._hot:
            self._retire_hot()
            self._hot = k
        bits = self._leaves.get(k)
        if bits is None:
            self._present.add(k)
            bits = 0
        bits |= 1 << (i & self._mask)
        self._leaves[k] = bits
        if bits == self._full:
            self._full_leaves.add(k)
        self._count += 1

    def clear(self, i: int) -> None:
        """Mark ``i`` free (it must be allocated)."""
        k = i >> self.shift
        bits = self._leaves[k]
        if bits == self._full:
            self._full_leaves.discard(k)
        bits &= ~(1 << (i & self._mask))
        self._count -= 1
        if bits or k == self._hot:
            self._leaves[k] = bits
        else:
            del self._leaves[k]
            self._present.remove(k)

    def _retire_hot(self) -> None:
        """Drop the previously hot leaf if it is empty (keeps at most one empty leaf)."""
        if self._leaves.get(self._hot, 1) == 0:
            del self._leaves[self._hot]
            self._present.remove(self._hot)

    def clear_all(self) -> None:
        """Free every id (the radix tree part of ``idr_destroy``)."""
        self._leaves.clear()
        self._present.clear()
        self._full_leaves.clear()
        self._hot = -1
        self._count = 0

    def _check(self) -> None:
        """Assert the internal invariants (sortedcontainers style)."""
        self._present._check()  # type: ignore[attr-defined]
        self._full_leaves._check()
        assert list(self._present) == sorted(self._leaves)
        empty = [k for k, bits in self._leaves.items() if bits == 0]
        assert empty in ([], [self._hot]), f"empty leaves {empty} besides the hot leaf"
        full = [k for k, bits in self._leaves.items() if bits == self._full]
        assert [k for start, end in self._full_leaves.runs() for k in range(start, end + 1)] == (
            sorted(full)
        )
        assert self._count == sum(bits.bit_count() for bits in self._leaves.values())
        assert all(0 <= bits <= self._full for bits in self._leaves.values())
