"""The radix tree under every Idr and Ida: lib/radix-tree.c's slots and IDR_FREE tag, in Python.

The kernel keeps IDR entries in a radix tree: the leaves hold the slots (the stored
pointers) and the nodes carry an ``IDR_FREE`` tag, set when a free slot exists below.
``idr_get_free()`` follows the tags down to the lowest free slot at or above the start,
touching one node per level; in the common cyclic case, that is the slot the cursor
points at. (kernel rules §A.1: "allocated" is tracked separately from the stored value; that
is why a NULL entry is allocated.)

:class:`IdBitmap` keeps the same information in two tiers:

* leaves: a ``dict`` from leaf number to a list of ``2**shift`` slots. A slot holds the
  stored pointer (``None`` for a NULL entry) or :data:`FREE`. Reading, allocating or
  freeing one id touches one slot of one leaf. Beside them, a ``dict`` of leaf masks
  (bit ``j`` set when slot ``j`` is allocated), in which the lowest free slot at or above
  an offset is a couple of integer operations; every full leaf shares one mask object.
* :class:`LeafTags`: which leaves are completely full, as the kernel's inner nodes tag
  them: a 256-ary tree of bitmasks. It answers "first leaf at or after ``k`` that is
  not full" with a few integer operations per level, so a dense, wrapped id space with
  a single free slot costs O(log n), never a scan (issue 2's O(log n) requirement).

A sorted list of the leaves that hold any id serves ascending walks (``idr_get_next``,
``ida_find_first_range``).

**The armed leaf.** A cyclic allocator spends its life allocating the slot its cursor
points at, in one leaf, and freeing recent ids in that same leaf. The tree therefore
keeps the cursor (``idr_next``, :attr:`IdBitmap._next`) and *arms* the leaf it points
into when that leaf is free from the cursor on: while armed, a leaf's slots are written
directly, with no bookkeeping (its mask, its full tag and its share of ``_count`` are
settled when it is disarmed, by looking at its slots once). Allocating the cursor's slot
is then one list read and one list write: :meth:`IdBitmap.take_cursor` for one tree,
:func:`take_cursor_walk` for the trees of every level of an object id, and freeing an id
of the armed leaf is one list write (:func:`remove_walk`). These are the only places
that write an armed leaf's slots directly; every caller (:class:`bpfns.Idr`,
``bpf_alloc_obj_id`` in :mod:`bpfns._obj_id`) goes through them. The invariants, checked
by :meth:`IdBitmap._check`: an armed leaf is present in the tree, and the cursor lies in
``[cur_base, cur_base + 2**shift]``, so that the index ``cursor - cur_base`` is never
negative and is out of range (an IndexError) only at the leaf's end; a disarmed tree's
``_cur`` is an empty list, on which every index raises IndexError. At most two empty
leaves are kept: the armed one, and the last one emptied (so that an id allocated and
freed over and over, an fd or a pid, creates and drops no leaf).

Everything here is private; :class:`bpfns.Idr` and :class:`bpfns.Ida` are the public face.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import compress, repeat
from operator import is_not
from typing import Any, Final

from sortedcontainers import SortedList

from ._args import INT_MAX

__all__ = ["FREE", "IdBitmap", "LeafTags", "RunSet", "remove_walk", "take_cursor_walk"]

#: Default leaf width, 256 ids: 2**24 leaves cover the whole u32 id space.
DEFAULT_SHIFT = 8
#: bytes 0 and 1 to the digits "0" and "1" (a leaf's mask, built in C; see _scan_mask)
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def lowest_bit(x: int) -> int:
    """Index of the lowest set bit of a positive int."""
    return (x & -x).bit_length() - 1


class _Free:
    """The type of :data:`FREE`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FREE"


#: The content of a free slot (a NULL entry holds ``None``, and is allocated).
FREE: Final = _Free()


#: A tag node covers 2**_NODE_SHIFT children; four levels of nodes cover 2**32 leaves.
_NODE_SHIFT = 8  # the hot paths of IdBitmap write 8 and 255 as literals
_NODE_MASK = (1 << _NODE_SHIFT) - 1
_NODE_ALL = (1 << (1 << _NODE_SHIFT)) - 1
_TAG_LEVELS = 4


class LeafTags:
    """Which leaves are full: the IDR_FREE tags of the radix tree's inner nodes, inverted.

    A tree of 256-bit masks: at level 0, bit ``k & 255`` of node ``k >> 8`` is set when
    leaf ``k`` is full; at level ``l + 1``, a bit is set when the level-``l`` node it
    stands for is all set. "The first leaf at or after ``k`` that is not full" follows
    the masks up to the first node with a clear bit and back down, a few integer
    operations per level: O(log n) with a 256-ary base, never a scan, whatever the
    number of full leaves. ``add`` and ``discard`` touch one node, or more only when a
    node becomes or stops being all set.

    >>> tags = LeafTags()
    >>> for k in (3, 4, 5, 9):
    ...     tags.add(k)
    >>> tags.next_absent(3), tags.next_absent(6), tags.runs()
    (6, 6, [(3, 5), (9, 9)])
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[dict[int, int]] = [{} for _ in range(_TAG_LEVELS)]

    def __repr__(self) -> str:
        return f"<LeafTags {self.runs()}>"

    def __contains__(self, k: int) -> bool:
        return bool(self._levels[0].get(k >> _NODE_SHIFT, 0) >> (k & _NODE_MASK) & 1)

    def __len__(self) -> int:
        return sum(bits.bit_count() for bits in self._levels[0].values())

    def next_absent(self, k: int) -> int:
        """Smallest ``j >= k`` that is not in the set."""
        levels = self._levels
        level = 0
        while level < _TAG_LEVELS:
            free = (~levels[level].get(k >> _NODE_SHIFT, 0) & _NODE_ALL) >> (k & _NODE_MASK)
            if free:
                k += lowest_bit(free)
                while level:  # down again, to the lowest clear bit of each node
                    level -= 1
                    k = (k << _NODE_SHIFT) + lowest_bit(~levels[level].get(k, 0) & _NODE_ALL)
                return k
            k = (k >> _NODE_SHIFT) + 1  # this node is all set from k on: the next one up
            level += 1
        return k << (_NODE_SHIFT * _TAG_LEVELS)

    def add(self, k: int) -> None:
        """Insert ``k`` (which must be absent)."""
        for nodes in self._levels:
            node = k >> _NODE_SHIFT
            bits = nodes.get(node, 0) | 1 << (k & _NODE_MASK)
            nodes[node] = bits
            if bits != _NODE_ALL:
                return
            k = node

    def discard(self, k: int) -> None:
        """Remove ``k`` (which must be present)."""
        for nodes in self._levels:
            node = k >> _NODE_SHIFT
            bits = nodes.get(node, 0)
            assert bits >> (k & _NODE_MASK) & 1, f"LeafTags.discard({k}): not present"
            cleared = bits & ~(1 << (k & _NODE_MASK))
            if cleared:
                nodes[node] = cleared
            else:
                del nodes[node]
            if bits != _NODE_ALL:
                return
            k = node

    def clear(self) -> None:
        """Remove everything."""
        for nodes in self._levels:
            nodes.clear()

    def runs(self) -> list[tuple[int, int]]:
        """The members as maximal runs ``(start, end)``, ascending."""
        runs: list[tuple[int, int]] = []
        for node in sorted(self._levels[0]):
            bits = self._levels[0][node]
            while bits:
                low = bits & -bits
                k = (node << _NODE_SHIFT) + low.bit_length() - 1
                if runs and runs[-1][1] == k - 1:
                    runs[-1] = (runs[-1][0], k)
                else:
                    runs.append((k, k))
                bits ^= low
        return runs

    def _check(self) -> None:
        """Assert the internal invariants: no empty node; a parent bit iff a full child."""
        levels = self._levels
        for level, nodes in enumerate(levels):
            assert all(nodes.values()), "an empty tag node"
            above = levels[level + 1] if level + 1 < _TAG_LEVELS else {}
            for node, bits in nodes.items():
                tagged = above.get(node >> _NODE_SHIFT, 0) >> (node & _NODE_MASK) & 1
                assert tagged == (bits == _NODE_ALL), f"level {level} node {node}: tag"
            for node, bits in above.items():
                for j in range(1 << _NODE_SHIFT):
                    if bits >> j & 1:
                        assert nodes.get((node << _NODE_SHIFT) + j) == _NODE_ALL


#: The name of the earlier implementation (a sorted list of runs), same interface.
RunSet = LeafTags


def _scan_mask(leaf: list[Any]) -> int:
    """The mask of a leaf's allocated slots (bit ``j`` for slot ``j``), by identity, in C."""
    taken = bytes(map(is_not, reversed(leaf), repeat(FREE)))
    return int(taken.translate(_DIGITS), 2)


class IdBitmap:
    """The slots of ids ``[0, 2**32)``, with O(log n) lowest-free search and a cursor.

    Models the IDR_FREE-tagged radix tree of lib/radix-tree.c (kernel rules §A.1). A leaf
    is a list of ``2**shift`` slots, each :data:`FREE` or the stored pointer; ``_masks``
    holds, per leaf, the mask of its allocated slots (bit ``j`` for slot ``j``; the
    armed leaf has none while armed). The masks live in one small dict rather than in
    the leaves: a search or a removal in a large tree then reads a mask without loading
    a cold leaf's first cache line, and every full leaf shares one mask object.
    ``_next`` is the cyclic cursor of the :class:`bpfns.Idr` on top (an Ida never moves
    it).

    Complexity: :meth:`get`, :meth:`put` and :meth:`remove` are O(1) except when a leaf
    becomes full, stops being full, or is created or dropped (O(log n), once per
    ``2**shift`` allocations in cyclic use); :meth:`find_free` and :meth:`take` are
    O(log n); :meth:`iter_items` is O(log n) per leaf it enters.

    >>> b = IdBitmap(shift=2)
    >>> [b.take(0, 100, None) for _ in range(6)]
    [0, 1, 2, 3, 4, 5]
    >>> b.find_free(0, 100), b.find_set(3, 100), len(b)
    (6, 3, 6)
    """

    __slots__ = (
        "_arm_limit",
        "_count",
        "_cur",
        "_cur_base",
        "_cur_k",
        "_full",
        "_full_leaves",
        "_leaves",
        "_mask",
        "_masks",
        "_next",
        "_present",
        "_spare",
        "_tags0",
        "_width",
        "shift",
    )

    def __init__(self, shift: int = DEFAULT_SHIFT, arm_limit: int = INT_MAX) -> None:
        self.shift = shift
        self._width = 1 << shift
        self._mask = self._width - 1
        #: the mask of a full leaf; every full leaf's mask is this very object
        self._full = (1 << self._width) - 1
        #: leaf number -> its slots
        self._leaves: dict[int, list[Any]] = {}
        #: leaf number -> the mask of its allocated slots (disarmed leaves)
        self._masks: dict[int, int] = {}
        self._present: SortedList = SortedList()  # type: ignore[type-arg]
        self._full_leaves = LeafTags()
        #: the lowest level of the full-leaf tags, used inline on the hot paths
        self._tags0 = self._full_leaves._levels[0]
        #: allocated ids outside the armed leaf
        self._count = 0
        #: the cyclic cursor, ``idr_next``
        self._next = 0
        #: the armed leaf (``[]`` when none is armed), its number, and its first id:
        #: the slot of id ``i`` is ``_cur[i - _cur_base]``
        self._cur: list[Any] = []
        self._cur_k = -1
        self._cur_base = 0
        #: no leaf reaching above this id is armed (see :meth:`arm_cursor`): a cyclic
        #: allocator's largest id, so that the cursor's slot, when armed, is in range
        self._arm_limit = arm_limit
        #: the one empty leaf kept (the last emptied), or -1: an id allocated and freed
        #: again and again (an fd, a pid) creates and drops no leaf
        self._spare = -1

    def __repr__(self) -> str:
        return f"<IdBitmap shift={self.shift} ids={len(self)} cursor={self._next}>"

    @property
    def cursor(self) -> int:
        """The cyclic cursor ``idr_next``: where the next cyclic allocation looks first."""
        return self._next

    @property
    def armed(self) -> bool:
        """Whether a leaf is armed (see the module docstring)."""
        return self._cur_k >= 0

    def __len__(self) -> int:
        cur = self._cur
        return self._count + (self._width - cur.count(FREE) if cur else 0)

    # -- reading ----------------------------------------------------------------------

    def get(self, i: int) -> Any:
        """The content of slot ``i``: the stored pointer, or :data:`FREE`. O(1)."""
        leaf = self._leaves.get(i >> self.shift)
        return FREE if leaf is None else leaf[i & self._mask]

    def is_set(self, i: int) -> bool:
        """Whether id ``i`` is allocated. O(1)."""
        return self.get(i) is not FREE

    def _locate(self, lo: int) -> tuple[int, list[Any] | None, int]:
        """Where the lowest free id ``>= lo`` is: ``(leaf number, leaf or None, slot)``.

        One leaf's mask (the armed leaf has none: its slots are searched, in C); if it
        has no free slot at or above ``lo``, the full-leaf tags (their lowest level
        inline) and one more leaf, where an absent leaf is all free.
        """
        full, masks, leaves = self._full, self._masks, self._leaves
        k = lo >> self.shift
        leaf = leaves.get(k)
        if leaf is None:
            return k, None, lo & self._mask
        if leaf is self._cur:
            try:
                return k, leaf, leaf.index(FREE, lo & self._mask)
            except ValueError:
                pass
        else:
            mask = masks[k]
            if mask is not full:
                mask |= (1 << (lo & self._mask)) - 1  # the slots below lo count as taken
                if mask != full:  # the lowest clear bit of mask: ~mask & (mask + 1)
                    return k, leaf, (~mask & (mask + 1)).bit_length() - 1
        while True:  # the next leaf without a full tag: it has a free slot (or is armed)
            k += 1
            tags = self._tags0.get(k >> 8, 0) >> (k & 255)  # LeafTags.next_absent, inline
            step = (~tags & (tags + 1)).bit_length() - 1  # its lowest clear bit
            if (k & 255) + step < 256:
                k += step
            else:
                k = self._full_leaves.next_absent(k)
            leaf = leaves.get(k)
            if leaf is None:
                return k, None, 0
            if leaf is not self._cur:
                mask = masks[k]
                return k, leaf, (~mask & (mask + 1)).bit_length() - 1
            try:
                return k, leaf, leaf.index(FREE)
            except ValueError:  # the armed leaf, full (it has no tag)
                pass

    def find_free(self, lo: int, hi: int) -> int | None:
        """Lowest id in ``[lo, hi]`` that is not allocated, or None. O(log n)."""
        k, _, off = self._locate(lo)
        found = (k << self.shift) + off
        return found if found <= hi else None

    def take(  # noqa: PLR0912 - one pass: every Idr and Ida allocation but the fast path
        self, lo: int, hi: int, ptr: object, cyclic: bool = False
    ) -> int | None:
        """:meth:`find_free`, then the id taken and ``ptr`` stored in its slot; or None.

        With ``cyclic``, the cursor also moves to the id after it and the leaf it then
        points into is armed if it can be (:meth:`arm_cursor`).
        """
        k, leaf, off = self._locate(lo)
        found = (k << self.shift) + off
        if found > hi:
            return None
        if leaf is None:
            leaf = self._new_leaf(k)
        leaf[off] = ptr
        if leaf is self._cur:
            mask = 0  # (the armed leaf's mask is settled when it is disarmed)
        else:  # account for it: mask, count, full tag
            masks = self._masks
            mask = masks[k] | 1 << off
            self._count += 1
            if k == self._spare:
                self._spare = -1
            if mask != self._full:
                masks[k] = mask
            else:  # the shared full mask; LeafTags.add, its lowest level inline
                masks[k] = mask = self._full
                nodes = self._tags0
                tags = nodes.get(k >> 8, 0) | 1 << (k & 255)
                if tags == _NODE_ALL:
                    self._full_leaves.add(k)
                else:
                    nodes[k >> 8] = tags
        if cyclic:
            nxt = self._next = (found + 1) & 0xFFFFFFFF
            if self._cur_k >= 0:
                if nxt >> self.shift != self._cur_k:  # the cursor left the armed leaf
                    self.arm_cursor()
            elif not mask >> (off + 1):  # free from the cursor on: a leaf to arm, maybe
                self.arm_cursor()
        return found

    def take_cursor(self, ptr: object, lo: int, hi: int) -> int:
        """The common case of ``take(lo, hi, ptr, cyclic=True)``: the cursor's slot. O(1).

        When the cursor lies in ``[lo, hi]`` and its slot is free in the armed leaf,
        that slot is the lowest free id at or above the cursor, so :meth:`take` would
        take it: this stores ``ptr`` there, moves the cursor to the next id and returns
        the id. Otherwise it changes nothing and returns -1, and the caller runs
        :meth:`take`. (It does not re-arm when the cursor reaches the leaf's end; the
        next allocation's :meth:`take` does.)
        """
        nxt = self._next
        leaf = self._cur
        if leaf and lo <= nxt <= hi:  # a leaf is armed: 0 <= nxt - _cur_base <= 2**shift
            off = nxt - self._cur_base
            if off < self._width and leaf[off] is FREE:
                leaf[off] = ptr
                self._next = nxt + 1
                return nxt
        return -1

    def find_set(self, lo: int, hi: int) -> int | None:
        """Lowest allocated id in ``[lo, hi]``, or None. O(log n)."""
        for i, _ in self.iter_items(lo):
            return i if i <= hi else None
        return None

    def iter_set(self, lo: int) -> Iterator[int]:
        """Allocated ids ``>= lo`` in ascending order (do not mutate while iterating)."""
        for i, _ in self.iter_items(lo):
            yield i

    def iter_items(self, lo: int) -> Iterator[tuple[int, Any]]:
        """``(id, slot content)`` of the allocated ids ``>= lo``, ascending.

        Each leaf is read as a snapshot; do not allocate or remove while iterating.
        """
        shift, width, present = self.shift, self._width, self._present
        k = lo >> shift
        off = lo & self._mask
        leaf = self._leaves.get(k)
        while True:
            if leaf is not None:
                start = k << shift
                slots = leaf[off:]
                taken = compress(range(off, width), map(is_not, slots, repeat(FREE)))
                for j in taken:
                    yield start + j, slots[j - off]
            j = present.bisect_right(k)
            if j == len(present):
                return
            k = present[j]
            leaf = self._leaves[k]
            off = 0

    # -- writing ----------------------------------------------------------------------

    def _new_leaf(self, k: int) -> list[Any]:
        leaf = self._leaves[k] = [FREE] * self._width
        self._masks[k] = 0
        self._present.add(k)
        return leaf

    def put(self, i: int, ptr: object) -> None:
        """Store ``ptr`` in the slot of the allocated id ``i`` (``idr_replace``)."""
        self._leaves[i >> self.shift][i & self._mask] = ptr

    def remove(self, i: int) -> Any:
        """Free ``i``; return what its slot held, or :data:`FREE` if it was not allocated."""
        k = i >> self.shift
        leaf = self._leaves.get(k)
        if leaf is None:
            return FREE
        off = i & self._mask
        old = leaf[off]
        if old is FREE:
            return FREE
        leaf[off] = FREE
        if leaf is self._cur:
            return old
        masks = self._masks
        mask = masks[k]
        if mask is self._full:  # no longer full (LeafTags.discard, its lowest level inline)
            nodes = self._tags0
            node = k >> 8
            tags = nodes[node]
            if tags == _NODE_ALL:
                self._full_leaves.discard(k)
            elif tags := tags ^ 1 << (k & 255):
                nodes[node] = tags
            else:
                del nodes[node]
        mask ^= 1 << off
        self._count -= 1
        masks[k] = mask
        if not mask:
            self._emptied(k)
        return old

    def _emptied(self, k: int) -> None:
        """Leaf ``k`` (disarmed) just became empty: keep it, forget the previous spare."""
        spare = self._spare
        if spare >= 0:
            del self._leaves[spare], self._masks[spare]
            self._present.remove(spare)
        self._spare = k

    def clear_all(self) -> None:
        """Free every id (the radix tree part of ``idr_destroy``); the cursor stays."""
        self._leaves.clear()
        self._masks.clear()
        self._present.clear()
        self._full_leaves.clear()
        self._count = 0
        self._cur, self._cur_k, self._cur_base = [], -1, 0
        self._spare = -1

    # -- the cursor and the armed leaf ------------------------------------------------

    def set_cursor(self, value: int) -> None:
        """Move the cursor anywhere (``idr_set_cursor``); the armed leaf is settled."""
        self.disarm()
        self._next = value

    def arm_cursor(self) -> None:
        """Arm the cursor's leaf if every slot from the cursor to the leaf's end is free.

        Called by :meth:`take` after a cyclic allocation moved the cursor to
        ``found + 1`` out of the armed leaf (or none was armed). That leaf is disarmed.
        The cursor's leaf is armed if it exists, lies wholly at or below ``_arm_limit``
        and is free from the cursor on: a fresh or emptied leaf, where the cyclic
        allocator will take slot after slot. A leaf with ids ahead of the cursor (a
        dense, wrapped id space) stays disarmed: arming it would only defer its
        bookkeeping to an expensive disarm.
        """
        nxt = self._next
        k = nxt >> self.shift
        if self._cur_k >= 0:
            self.disarm()  # the cursor left the armed leaf
        leaf = self._leaves.get(k)
        if leaf is None or nxt | self._mask > self._arm_limit:
            return
        mask = self._masks[k]
        if mask >> (nxt & self._mask):  # ids ahead of the cursor
            return
        del self._masks[k]
        self._count -= mask.bit_count()
        if k == self._spare:
            self._spare = -1
        self._cur, self._cur_k, self._cur_base = leaf, k, k << self.shift

    def disarm(self) -> None:
        """Settle the armed leaf's bookkeeping from its slots, if one is armed."""
        k = self._cur_k
        if k < 0:
            return
        leaf = self._cur
        self._cur, self._cur_k, self._cur_base = [], -1, 0
        n = self._width - leaf.count(FREE)
        if not n:
            self._masks[k] = 0
            self._emptied(k)
            return
        self._count += n
        if n == self._width:
            self._masks[k] = self._full
            self._full_leaves.add(k)
        else:
            self._masks[k] = _scan_mask(leaf)

    # -- debugging --------------------------------------------------------------------

    def _check(self) -> None:
        """Assert the internal invariants (sortedcontainers style)."""
        self._present._check()  # type: ignore[attr-defined]
        self._full_leaves._check()
        assert list(self._present) == sorted(self._leaves)
        assert all(len(leaf) == self._width for leaf in self._leaves.values())
        masks = {k: _scan_mask(leaf) for k, leaf in self._leaves.items()}
        if self._cur_k >= 0:
            assert self._leaves.get(self._cur_k) is self._cur, "the armed leaf is not in the tree"
            start = self._cur_base
            assert start == self._cur_k << self.shift
            assert start <= self._next <= start + self._width
            assert start + self._mask <= self._arm_limit
            del masks[self._cur_k]
        else:
            assert self._cur == [] and self._cur_base == 0
        assert self._masks == masks, "wrong masks"
        for k, mask in masks.items():
            assert (mask == self._full) == (self._masks[k] is self._full)
            assert mask or k == self._spare, f"leaf {k} is empty, not armed and not the spare"
        assert self._spare < 0 or masks.get(self._spare) == 0, "the spare leaf is not empty"
        full = [k for k, mask in masks.items() if mask == self._full]
        assert [k for start, end in self._full_leaves.runs() for k in range(start, end + 1)] == (
            sorted(full)
        )
        assert self._count == sum(mask.bit_count() for mask in masks.values())


# -- the id walks of bpf_alloc_obj_id and bpf_free_obj_id ------------------------------


def take_cursor_walk(
    walk: tuple[tuple[int, IdBitmap], ...], ptr: object, nrs: list[int | None], start: int
) -> int:
    """:meth:`IdBitmap.take_cursor` on the trees of ``walk`` from ``start``, in order.

    ``walk`` is ``(j, tree)`` pairs, ``j`` counting from 0; every tree was built with
    its allocator's largest id as ``arm_limit``, and its allocator's lowest id is 1, so
    that an armed cursor is always in range. While tree ``j`` takes its cursor's slot,
    ``nrs[j]`` is set to the id taken; the first tree that cannot (its cursor's slot is
    taken, or not armed) stops the walk, and its ``j`` is returned (-1 when every tree
    took its slot). The caller allocates at that level the careful way and
    calls again from ``j + 1``. O(1) per tree: one list read and one list write.

    Equals ``nrs[j] = tree.take_cursor(ptr, 1, arm_limit)`` for each tree until one
    returns -1, written as one loop: this is the hot path of every object's creation.
    """
    free = FREE
    for j, bits in walk[start:] if start else walk:
        nr = bits._next
        try:
            leaf = bits._cur
            off = nr - bits._cur_base
            if leaf[off] is free:  # armed (else IndexError): off >= 0, nr in range
                leaf[off] = ptr
                bits._next = nr + 1
                nrs[j] = nr
                continue
        except IndexError:  # no leaf armed, or the cursor at its end
            pass
        return j
    return -1


def remove_walk(walk: tuple[tuple[int, IdBitmap], ...], nrs: Sequence[int | None]) -> None:
    """``tree.remove(nrs[j])`` for each ``(j, tree)`` of ``walk``. O(1) per tree.

    An id of the armed leaf is freed by one list write (the armed leaf keeps no
    bookkeeping); any other goes through :meth:`IdBitmap.remove`. Every ``nrs[j]``
    must be an id allocated in its tree: this is the free of an intact id record.
    """
    free = FREE
    for j, bits in walk:
        nr: int = nrs[j]  # type: ignore[assignment]
        off = nr - bits._cur_base
        if off >= 0:
            try:
                bits._cur[off] = free
                continue
            except IndexError:  # not in the armed leaf
                pass
        bits.remove(nr)
