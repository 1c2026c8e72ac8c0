"""lib/idr.c: the IDR (id -> pointer map with a cyclic cursor) and the IDA (id allocator).

Semantics follow kernel rules §A (v6.17-rc3 plus the 6.19/stable fix c6e8e595,
"idr: fix idr_alloc() returning an ID out of range"); the kernel's own self-tests,
restated in kernel rules §B, are the test suite's conformance cases.

C calling conventions map to Python as follows:

* a negative errno return becomes a raised :class:`bpfns.BpfnsError`;
* ``idr_alloc_u32``'s ``u32 *nextid`` out-parameter becomes the return value;
* ``idr_get_next``'s ``int *nextid`` in/out parameter becomes ``get_next(id)`` returning
  ``(id, ptr)`` or None;
* a C ``NULL`` pointer is Python ``None``; a WARN is a :class:`bpfns.KernelWarning`.

Arguments are C integers: passing a value no C caller could pass (a float, an ``int``
argument outside ``[INT_MIN, INT_MAX]``, a negative id) raises TypeError or ValueError.
Kernel callers that rely on signed overflow (``idr_alloc(p, i, i + 10)`` with ``i`` near
INT_MAX) must pass the wrapped value, as :func:`c_int` computes it.
"""

from __future__ import annotations

import errno
import warnings
from collections.abc import Iterator
from typing import Any

import attrs

from ._args import INT_MAX, INT_MIN, U32_MAX, ULONG_MAX, check_int
from ._errors import BpfnsError, KernelWarning
from ._radix_tree import FREE, IdBitmap

__all__ = [
    "INT_MAX",
    "U32_MAX",
    "Ida",
    "Idr",
    "c_int",
    "idr_alloc_cyclic",
    "idr_remove",
    "idr_tree",
]


def c_int(value: int) -> int:
    """Wrap a Python int to a 32-bit C ``int``, as signed overflow does in the kernel.

    >>> c_int(0x7FFFFFFF + 10)
    -2147483639

    Raises:
        TypeError: if ``value`` is not an int.
    """
    value = check_int("value", value, -(2**4096), 2**4096, "")
    return (value + 0x80000000) % 0x100000000 - 0x80000000


def _enospc(what: str, lo: int, hi: int) -> BpfnsError:
    return BpfnsError(
        errno.ENOSPC,
        f"{what}: no free id in [{lo}, {hi}]; remove an id or widen the range",
    )


@attrs.define(eq=False)
class Idr:
    """An IDR: ids mapped to pointers, with the cyclic cursor ``idr_next``.

    Models ``struct idr`` of lib/idr.c (kernel rules §A.1-A.8). ``base`` is ``idr_base``:
    ids below it can never be allocated or found. ``cursor`` is ``idr_next``, read and
    written by ``idr_get_cursor``/``idr_set_cursor``; only :meth:`alloc_cyclic` moves it.

    An id is *allocated* or *free*; an allocated id may hold ``None`` (a NULL entry),
    which :meth:`find`, :meth:`get_next` and iteration do not see (kernel rules §A.8).

    ``arm_limit`` (keyword-only; no kernel equivalent) is a speed hint: the O(1) path of
    cyclic allocation (the cursor's slot) is used only for ids up to it. Pass the
    largest id your cyclic allocations hand out (``end - 1``) when it is below
    ``INT_MAX``; any value gives the same ids.

    The pointers live in the slots of the radix tree's leaves, as in the kernel; there is
    no second map. Complexity: every allocation is O(log n), including the worst case of
    a dense, wrapped id space with one free slot; the common cyclic case (the cursor's
    slot is free) reads and writes one slot. :meth:`find`, :meth:`remove` and
    :meth:`replace` are O(1); :meth:`get_next` is O(log n) plus the NULL entries it skips.

    >>> idr = Idr()
    >>> idr.alloc_cyclic("a", 1, 4), idr.alloc_cyclic("b", 1, 4), idr.cursor
    (1, 2, 3)
    >>> idr.remove(1)
    'a'
    >>> idr.alloc_cyclic("c", 1, 4), idr.alloc_cyclic("d", 1, 4)  # wraps to start
    (3, 1)
    >>> list(idr)
    [(1, 'd'), (2, 'b'), (3, 'c')]
    """

    _base: int = attrs.field(default=0, alias="base")
    _arm_limit: int = attrs.field(default=INT_MAX, kw_only=True, alias="arm_limit", repr=False)
    #: the radix tree: slots, free-slot tags and the cursor ``idr_next``
    _bits: IdBitmap = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        check_int("base", self._base, 0, INT_MAX, "int >= 0")
        check_int("arm_limit", self._arm_limit, 0, INT_MAX, "int >= 0")
        self._bits = IdBitmap(arm_limit=self._arm_limit)

    @classmethod
    def _with_leaf_shift(cls, shift: int, base: int = 0) -> Idr:
        """An Idr whose radix-tree leaves hold ``2**shift`` ids (tests reach leaf edges)."""
        idr = cls(base=base)
        idr._bits = IdBitmap(shift=shift)
        return idr

    # -- properties -----------------------------------------------------------------

    @property
    def base(self) -> int:
        """``idr_base``: the lowest id this IDR can hold (``idr_init_base``)."""
        return self._base

    @property
    def cursor(self) -> int:
        """``idr_next`` (``idr_get_cursor``): where :meth:`alloc_cyclic` starts looking.

        Setting it is ``idr_set_cursor``; the value is a C ``unsigned int``.
        """
        return self._bits.cursor

    @cursor.setter
    def cursor(self, value: int) -> None:
        self._bits.set_cursor(check_int("cursor", value, 0, U32_MAX, "unsigned int"))

    # -- allocation -----------------------------------------------------------------

    def _alloc_from(self, ptr: object, nextid: int, max_: int, what: str) -> int:
        """``idr_alloc_u32`` after argument checks: lowest free id in [nextid, max_]."""
        # A range wholly below base is ENOSPC (c6e8e595, 6.19/stable): start > max_ then.
        start = max(nextid, self._base)
        found = self._bits.take(start, max_, ptr) if start <= max_ else None
        if found is None:
            raise _enospc(what, start, max_)
        return found

    def alloc_u32(self, ptr: object, nextid: int, max: int) -> int:
        """``idr_alloc_u32``: allocate the lowest free id in ``[nextid, max]`` (inclusive).

        ``nextid`` is the value of the kernel's ``*nextid``; the allocated id, which the
        kernel writes back to ``*nextid``, is returned. The cursor is not used or moved.

        Raises:
            BpfnsError: ENOSPC if no id in the range is free (the kernel leaves
                ``*nextid`` unchanged), including ``max < base``.
            TypeError, ValueError: if ``nextid`` is not a u32 or ``max`` not a C
                ``unsigned long``.

        >>> Idr().alloc_u32("x", 0x80000000, 0xFFFFFFFF)
        2147483648
        """
        check_int("nextid", nextid, 0, U32_MAX, "u32")
        check_int("max", max, 0, ULONG_MAX, "unsigned long")
        return self._alloc_from(ptr, nextid, min(max, U32_MAX), "idr_alloc_u32")

    def alloc(self, ptr: object, start: int, end: int) -> int:
        """``idr_alloc``: the lowest free id in ``[start, end)``; ``end <= 0`` means INT_MAX.

        The cursor is neither read nor moved (kernel rules §A.3).

        Raises:
            BpfnsError: EINVAL if ``start < 0``, after a :class:`bpfns.KernelWarning`
                (the kernel's ``WARN_ON_ONCE``); ENOSPC if the
                range is empty, full, or wholly below ``base``.
            TypeError, ValueError: if ``start`` or ``end`` is not a C ``int``.

        >>> idr = Idr()
        >>> idr.alloc("a", 5, 0), idr.alloc("b", 0, 0), idr.alloc("c", 5, 0)
        (5, 0, 6)
        """
        check_int("start", start, INT_MIN, INT_MAX, "int")
        check_int("end", end, INT_MIN, INT_MAX, "int")
        if start < 0:
            warnings.warn(
                f"idr_alloc: WARN_ON_ONCE(start={start} < 0)", KernelWarning, stacklevel=2
            )
            raise BpfnsError(errno.EINVAL, f"idr_alloc: start={start} is negative; use >= 0")
        return self._alloc_from(ptr, start, end - 1 if end > 0 else INT_MAX, "idr_alloc")

    def alloc_cyclic(self, ptr: object, start: int, end: int) -> int:
        """``idr_alloc_cyclic``: allocate at or after the cursor, wrapping to ``start``.

        ``end`` is exclusive, ``end <= 0`` means INT_MAX (kernel rules §A.4). The search
        starts at the cursor, or at ``start`` if the cursor is below it or is
        ``>= 0x80000000`` (negative as a C int). If nothing is free up to the top, the
        search is repeated once from ``start`` (the silent wrap). On success the cursor
        becomes ``id + 1``; on failure it does not move.

        Raises:
            BpfnsError: ENOSPC if every id in ``[start, end)`` is taken. EINVAL if
                ``start < 0``: the kernel does not check it, but no kernel caller
                passes one and the C comparison it would reach is meaningless.
            TypeError, ValueError: if ``start`` or ``end`` is not a C ``int``.

        >>> idr = Idr()
        >>> idr.cursor = 0x7FFFFFFE
        >>> [idr.alloc_cyclic(None, 0, 0) for _ in range(3)]
        [2147483646, 2147483647, 0]
        """
        check_int("start", start, INT_MIN, INT_MAX, "int")
        check_int("end", end, INT_MIN, INT_MAX, "int")
        if start < 0:
            raise BpfnsError(
                errno.EINVAL, f"idr_alloc_cyclic: start={start} is negative; use >= 0"
            )
        return self._alloc_cyclic(ptr, start, end - 1 if end > 0 else INT_MAX)

    def _alloc_cyclic(self, ptr: object, start: int, max_: int) -> int:
        """``idr_alloc_cyclic`` on checked arguments (``0 <= start``, inclusive ``max_``).

        The common case, the cursor's slot free in the armed leaf, is
        :meth:`IdBitmap.take_cursor`, which needs no search: the arming invariants
        guarantee ``cursor > base``.
        """
        bits = self._bits
        found = bits.take_cursor(ptr, start, max_)
        if found >= 0:
            return found
        nextid = bits.cursor
        if nextid > INT_MAX or nextid < start:  # (int)idr_next < start
            nextid = start
        base = self._base
        lo = nextid if nextid > base else base
        got = bits.take(lo, max_, ptr, True) if lo <= max_ else None
        if got is None and nextid > start:
            lo = start if start > base else base
            got = bits.take(lo, max_, ptr, True) if lo <= max_ else None
        if got is None:
            raise _enospc("idr_alloc_cyclic", start, max_)
        return got

    # -- lookup ---------------------------------------------------------------------

    def find(self, id: int) -> Any:
        """``idr_find``: the pointer stored at ``id``; None if free, NULL or below base.

        Raises:
            TypeError, ValueError: if ``id`` is not a non-negative C ``unsigned long``.

        >>> idr = Idr()
        >>> idr.find(idr.alloc("x", 0, 0)), idr.find(7)
        ('x', None)
        """
        check_int("id", id, 0, ULONG_MAX, "unsigned long")
        found = self._bits.get(id)
        return None if found is FREE else found

    def get_next(self, id: int) -> tuple[int, Any] | None:
        """``idr_get_next``: the first id ``>= id`` (and ``>= base``) with a non-None pointer.

        Returns ``(id, ptr)``, or None if there is none. An id above INT_MAX cannot be
        returned through the C ``int *nextid``: the kernel WARNs and returns NULL, and so
        does this method (with a :class:`bpfns.KernelWarning`).

        Raises:
            TypeError, ValueError: if ``id`` is not a non-negative C ``int``.

        >>> idr = Idr()
        >>> _ = idr.alloc("a", 4, 0), idr.alloc(None, 5, 0), idr.alloc("c", 6, 0)
        >>> idr.get_next(0), idr.get_next(5)
        ((4, 'a'), (6, 'c'))
        """
        check_int("id", id, 0, INT_MAX, "int >= 0")
        return next(self._walk(id, "idr_get_next"), None)

    def _walk(self, lo: int, what: str) -> Iterator[tuple[int, Any]]:
        """Non-None entries from ``max(lo, base)`` up, stopping with a WARN above INT_MAX."""
        for found, ptr in self._bits.iter_items(max(lo, self._base)):
            if ptr is None:
                continue
            if found > INT_MAX:
                warnings.warn(
                    f"{what}: id {found} > INT_MAX cannot be returned; the walk stops",
                    KernelWarning,
                    stacklevel=3,
                )
                return
            yield found, ptr

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        """``idr_for_each``: ``(id, ptr)`` in ascending id order, skipping None pointers.

        Like the kernel, the walk WARNs and stops at the first id above INT_MAX.
        Do not allocate or remove while iterating.
        """
        return self._walk(self._base, "idr_for_each")

    def ids(self) -> list[int]:
        """Every allocated id, NULL entries and ids above INT_MAX included, ascending."""
        return list(self._bits.iter_set(0))

    def is_empty(self) -> bool:
        """``idr_is_empty``: true iff no id is allocated (a NULL entry counts)."""
        return not len(self._bits)

    def __len__(self) -> int:
        """Number of allocated ids, NULL entries included."""
        return len(self._bits)

    def __contains__(self, id: object) -> bool:
        """Whether ``id`` is allocated (NULL entries included); no kernel equivalent."""
        return isinstance(id, int) and id >= 0 and self._bits.is_set(id)

    # -- mutation -------------------------------------------------------------------

    def remove(self, id: int) -> Any:
        """``idr_remove``: free ``id`` and return its pointer; a free id is a no-op (None).

        The cursor is not touched.

        Raises:
            TypeError, ValueError: if ``id`` is not a non-negative C ``unsigned long``.

        >>> idr = Idr()
        >>> idr.remove(idr.alloc("x", 0, 0)), idr.remove(0)
        ('x', None)
        """
        check_int("id", id, 0, ULONG_MAX, "unsigned long")
        return self._remove(id)

    def _remove(self, id: int) -> Any:
        """``idr_remove`` on a checked id (the kernel-internal fast path)."""
        old = self._bits.remove(id)
        return None if old is FREE else old

    def replace(self, ptr: object, id: int) -> Any:
        """``idr_replace``: store ``ptr`` at an allocated ``id``; return the old pointer.

        Works on NULL entries (returns None) and may store None.

        Raises:
            BpfnsError: ENOENT if ``id`` is not allocated (the kernel returns
                ``ERR_PTR(-ENOENT)``), including ``id < base``.
            TypeError, ValueError: if ``id`` is not a non-negative C ``unsigned long``.

        >>> idr = Idr()
        >>> idr.replace("y", idr.alloc("x", 0, 0))
        'x'
        """
        check_int("id", id, 0, ULONG_MAX, "unsigned long")
        old = self._bits.get(id)
        if old is FREE:
            raise BpfnsError(
                errno.ENOENT, f"idr_replace: id {id} is not allocated; allocate it first"
            )
        self._bits.put(id, ptr)
        return old

    def destroy(self) -> None:
        """``idr_destroy``: free every id. Keeps ``cursor`` and ``base``; idempotent."""
        self._bits.clear_all()

    # -- debugging ------------------------------------------------------------------

    def _check(self) -> None:
        """Assert the internal invariants (sortedcontainers style)."""
        bits = self._bits
        bits._check()
        ids = self.ids()
        assert len(ids) == len(bits)
        assert all(self._base <= i <= U32_MAX for i in ids)
        assert 0 <= bits.cursor <= U32_MAX
        if bits.armed:  # arming needs a cyclic allocation: the cursor is above base
            assert bits.cursor > self._base

    def _repr_html_(self) -> str:
        """Notebooks: the repr and an id ruler (SVG) of the low ids."""
        from ._render import idr_html  # noqa: PLC0415 - rendering imports this module

        return idr_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: the repr."""
        p.text(repr(self))

    def __repr__(self) -> str:
        shown = self.ids()
        more = "" if len(shown) <= 8 else f" ... {len(shown) - 8} more"
        ids = ", ".join(map(str, shown[:8])) + more
        return f"<Idr base={self._base} cursor={self._bits.cursor} ids=[{ids}]>"


# -- the kernel-internal entry points (bpfns's own callers pass valid C values) -----------


def idr_alloc_cyclic(idr: Idr, ptr: object, start: int, max_: int) -> int:
    """:meth:`Idr.alloc_cyclic` without the argument checks (``0 <= start``, inclusive ``max_``).

    For bpfns's own callers (allocation policies, the pid IDR), which pass valid C
    values. Raises BpfnsError ENOSPC as :meth:`Idr.alloc_cyclic` does.
    """
    return idr._alloc_cyclic(ptr, start, max_)


def idr_remove(idr: Idr, id: int) -> Any:
    """:meth:`Idr.remove` without the argument check, for bpfns's own callers."""
    return idr._remove(id)


def idr_tree(idr: Idr) -> IdBitmap:
    """The radix tree under ``idr``: what the id walks of :mod:`bpfns._obj_id` run on."""
    return idr._bits


@attrs.define(eq=False)
class Ida:
    """An IDA: a lowest-free id allocator with no cursor (lib/idr.c, kernel rules §A.9).

    ``proc_alloc_inum`` uses one for namespace inode numbers (kernel rules §E.3), so freed
    numbers are reused at once, lowest first. Ids never exceed INT_MAX. Allocation is
    O(log n) in the worst case.

    >>> ida = Ida()
    >>> ida.alloc(), ida.alloc(), ida.alloc_min(10)
    (0, 1, 10)
    >>> ida.free(0); ida.alloc()
    0
    """

    _bits: IdBitmap = attrs.field(init=False, factory=IdBitmap)

    def alloc_range(self, min: int, max: int) -> int:
        """``ida_alloc_range``: the lowest free id in ``[min, max]`` (unsigned arguments).

        A ``max`` that is negative as a C int means INT_MAX.

        Raises:
            BpfnsError: ENOSPC if ``min`` is negative as a C int (``min >= 2**31``) or
                no id in the range is free.
            TypeError, ValueError: if an argument is not a C ``unsigned int``.
        """
        check_int("min", min, 0, U32_MAX, "unsigned int")
        check_int("max", max, 0, U32_MAX, "unsigned int")
        if min > INT_MAX:
            raise BpfnsError(errno.ENOSPC, f"ida_alloc_range: min={min} is above INT_MAX")
        return self._take(min, INT_MAX if max > INT_MAX else max)

    def alloc(self) -> int:
        """``ida_alloc``: ``alloc_range(0, ~0)`` (fds and inode numbers: no checks to make)."""
        return self._take(0, INT_MAX)

    def _take(self, min: int, max: int) -> int:
        """The lowest free id in ``[min, max]`` (checked C values), or ENOSPC."""
        found = self._bits.take(min, max, None) if min <= max else None
        if found is None:
            raise _enospc("ida_alloc_range", min, max)
        return found

    def alloc_min(self, min: int) -> int:
        """``ida_alloc_min``: ``alloc_range(min, ~0)``."""
        return self.alloc_range(min, U32_MAX)

    def alloc_max(self, max: int) -> int:
        """``ida_alloc_max``: ``alloc_range(0, max)``."""
        return self.alloc_range(0, max)

    def simple_get(self, start: int, end: int) -> int:
        """Deprecated ``ida_simple_get(start, end)``: ``alloc_range(start, end - 1)``.

        ``end == 0`` means no upper limit, as in the kernel.

        Raises:
            BpfnsError: as :meth:`alloc_range`.
            TypeError, ValueError: if ``start`` or ``end`` is not a C ``unsigned int``.
        """
        start = check_int("start", start, 0, U32_MAX, "unsigned int")
        end = check_int("end", end, 0, U32_MAX, "unsigned int")
        return self.alloc_range(start, end - 1 if end else U32_MAX)

    def free(self, id: int) -> None:
        """``ida_free``: release ``id``.

        An id negative as a C int is ignored silently; freeing an id that is not
        allocated WARNs (:class:`bpfns.KernelWarning`) and changes nothing.
        """
        check_int("id", id, 0, U32_MAX, "unsigned int")
        if id > INT_MAX:
            return
        if self._bits.remove(id) is FREE:
            warnings.warn(
                f"ida_free called for id={id} which is not allocated.",
                KernelWarning,
                stacklevel=2,
            )

    def find_first_range(self, min: int, max: int) -> int:
        """``ida_find_first_range``: the lowest *allocated* id in ``[min, max]``.

        A ``max`` negative as a C int means INT_MAX.

        Raises:
            BpfnsError: EINVAL if ``min`` is negative as a C int; ENOENT if none is
                allocated there or ``min > max``.
        """
        check_int("min", min, 0, U32_MAX, "unsigned int")
        check_int("max", max, 0, U32_MAX, "unsigned int")
        if min > INT_MAX:
            raise BpfnsError(errno.EINVAL, f"ida_find_first_range: min={min} is negative")
        max = INT_MAX if max > INT_MAX else max
        found = self._bits.find_set(min, max) if min <= max else None
        if found is None:
            raise BpfnsError(errno.ENOENT, f"ida_find_first_range: no id in [{min}, {max}]")
        return found

    def find_first(self) -> int:
        """``ida_find_first``: ``find_first_range(0, ~0)``."""
        return self.find_first_range(0, U32_MAX)

    def exists(self, id: int) -> bool:
        """``ida_exists``: whether ``id`` is allocated."""
        check_int("id", id, 0, U32_MAX, "unsigned int")
        return self._bits.is_set(id)

    def is_empty(self) -> bool:
        """``ida_is_empty``."""
        return not len(self._bits)

    def __len__(self) -> int:
        return len(self._bits)

    def destroy(self) -> None:
        """``ida_destroy``: free everything."""
        self._bits.clear_all()

    def ids(self) -> list[int]:
        """The allocated ids, ascending."""
        return list(self._bits.iter_set(0))

    def _check(self) -> None:
        """Assert the internal invariants."""
        self._bits._check()
        assert all(i <= INT_MAX for i in self._bits.iter_set(0))

    def __repr__(self) -> str:
        return f"<Ida ids={self.ids()!r}>"
