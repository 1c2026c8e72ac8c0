"""Property tests: Idr, Ida and RunSet against deliberately naive reference models.

The models below are written from the text of kernel rules §A.2-A.9 (not from src/): a dict
from id to pointer, an int cursor and a base, and linear scans. The id spaces are small
(ids 0..42 plus a few values at the INT_MAX and U32_MAX edges) and the Idr's bitmap leaves
hold 1, 2, 4 or 8 ids, so that wrap-around, full ranges and full leaves are reached.
"""

from __future__ import annotations

import errno
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bpfns import INT_MAX, U32_MAX, BpfnsError, Ida, Idr, KernelWarning
from bpfns._radix_tree import IdBitmap, RunSet

# -- reference models ---------------------------------------------------------------------


class RefError(Exception):
    """A negative errno return of the reference model."""

    def __init__(self, code: int) -> None:
        super().__init__(errno.errorcode[code])
        self.errno = code


def as_c_int(value: int) -> int:
    """The u32 ``value`` read as a signed 32-bit int."""
    return value - (1 << 32) if value & 0x80000000 else value


class RefIdr:
    """kernel rules §A.1-A.8, straight from the text. ``warned`` records WARNs."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.cursor = 0  # idr_next
        self.entries: dict[int, Any] = {}
        self.warned = False
        self.wrapped = False  # the last alloc_cyclic took the second search
        self.wrapped_from_start_plus_one = False  # ... and the first began at start + 1

    def alloc_u32(self, ptr: Any, nextid: int, max_: int) -> int:
        # A.2: ENOSPC if max < base; start = max(nextid, base); lowest unallocated id in
        # [start, max]; NULL-valued ids count as allocated; never 2**32.
        max_ = min(max_, U32_MAX)
        if max_ < self.base:
            raise RefError(errno.ENOSPC)
        start = self.base if nextid < self.base else nextid
        candidate = start
        while candidate <= max_:
            if candidate not in self.entries:
                self.entries[candidate] = ptr
                return candidate
            candidate += 1
        raise RefError(errno.ENOSPC)

    def alloc(self, ptr: Any, start: int, end: int) -> int:
        # A.3: start < 0 WARNs and gives EINVAL; end <= 0 means INT_MAX; no cursor.
        if start < 0:
            self.warned = True
            raise RefError(errno.EINVAL)
        max_ = end - 1 if end > 0 else INT_MAX
        return self.alloc_u32(ptr, start, max_)

    def alloc_cyclic(self, ptr: Any, start: int, end: int) -> int:
        # A.4, the pseudo-code line by line.
        self.wrapped = self.wrapped_from_start_plus_one = False
        max_ = end - 1 if end > 0 else INT_MAX
        id_ = self.cursor
        if as_c_int(id_) < start:
            id_ = start
        try:
            got = self.alloc_u32(ptr, id_, max_)
        except RefError as e:
            if not (e.errno == errno.ENOSPC and id_ > start):
                raise
            got = self.alloc_u32(ptr, start, max_)
            self.wrapped = True
            self.wrapped_from_start_plus_one = id_ == start + 1
        self.cursor = (got + 1) & U32_MAX
        return got

    def find(self, id_: int) -> Any:
        return self.entries.get(id_)

    def _visible(self, lo: int) -> list[int]:
        return sorted(i for i, p in self.entries.items() if i >= lo and p is not None)

    def get_next(self, id_: int) -> tuple[int, Any] | None:
        # A.5: smallest id >= max(id, base) with a non-NULL pointer; above INT_MAX: WARN.
        hits = self._visible(max(id_, self.base))
        if not hits:
            return None
        if hits[0] > INT_MAX:
            self.warned = True
            return None
        return hits[0], self.entries[hits[0]]

    def for_each(self) -> list[tuple[int, Any]]:
        # A.5: ascending, non-NULL only; the first id > INT_MAX WARNs and stops the walk.
        out = []
        for i in self._visible(self.base):
            if i > INT_MAX:
                self.warned = True
                break
            out.append((i, self.entries[i]))
        return out

    def remove(self, id_: int) -> Any:
        return self.entries.pop(id_, None)

    def replace(self, ptr: Any, id_: int) -> Any:
        if id_ not in self.entries:
            raise RefError(errno.ENOENT)
        old = self.entries[id_]
        self.entries[id_] = ptr
        return old

    def destroy(self) -> None:
        self.entries.clear()  # cursor and base stay


class RefIda:
    """kernel rules §A.9: lowest free id, no cursor, ids never above INT_MAX."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.warned = False

    def alloc_range(self, lo: int, hi: int) -> int:
        if as_c_int(lo) < 0:
            raise RefError(errno.ENOSPC)
        if as_c_int(hi) < 0:
            hi = INT_MAX
        candidate = lo
        while candidate <= hi:
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate
            candidate += 1
        raise RefError(errno.ENOSPC)

    def free(self, id_: int) -> None:
        if as_c_int(id_) < 0:
            return
        if id_ not in self.used:
            self.warned = True
            return
        self.used.remove(id_)

    def find_first_range(self, lo: int, hi: int) -> int:
        if as_c_int(lo) < 0:
            raise RefError(errno.EINVAL)
        if as_c_int(hi) < 0:
            hi = INT_MAX
        hits = sorted(i for i in self.used if lo <= i <= hi)
        if not hits:
            raise RefError(errno.ENOENT)
        return hits[0]


# -- running both sides -------------------------------------------------------------------

Outcome = tuple[str, Any]


def run_real(fn: Callable[[], Any]) -> tuple[Outcome, bool]:
    """Call ``fn``; return ``(("ok", value) | ("err", errno), warned)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome: Outcome = ("ok", fn())
        except BpfnsError as e:
            outcome = ("err", e.errno)
    others = [w for w in caught if not issubclass(w.category, KernelWarning)]
    assert not others, [str(w.message) for w in others]
    return outcome, bool(caught)


def run_ref(model: RefIdr | RefIda, fn: Callable[[], Any]) -> tuple[Outcome, bool]:
    model.warned = False
    try:
        outcome: Outcome = ("ok", fn())
    except RefError as e:
        outcome = ("err", e.errno)
    return outcome, model.warned


def same(model: RefIdr | RefIda, real: Callable[[], Any], ref: Callable[[], Any]) -> Outcome:
    """Run both sides: the results or errnos, and whether a WARN was given, must agree."""
    got, got_warned = run_real(real)
    want, want_warned = run_ref(model, ref)
    assert got == want
    assert got_warned == want_warned, f"WARN expected: {want_warned}"
    return want


# -- strategies ---------------------------------------------------------------------------

EDGES = [INT_MAX - 1, INT_MAX, 0x80000000, U32_MAX - 1, U32_MAX]
ptrs = st.sampled_from([None, 0, "", "a", "b", ("t", 1)])
# The second branch of each one_of favours a tiny corner of the space, so that ranges
# fill up and the cyclic search wraps within a few dozen steps.
small_ids = st.one_of(st.integers(0, 42), st.integers(0, 9))
ulong_ids = st.one_of(small_ids, st.sampled_from(EDGES))
u32s = st.one_of(small_ids, st.sampled_from(EDGES))
cursors = st.one_of(small_ids, st.sampled_from([INT_MAX - 1, INT_MAX, 0x80000000, U32_MAX]))
starts = st.one_of(st.integers(0, 40), st.integers(0, 6))
# end <= 0 means INT_MAX; INT_MIN is what c_int(INT_MAX + 1) gives kernel callers.
ends = st.one_of(st.integers(-2, 40), st.integers(1, 9), st.sampled_from([0, -1, -(2**31)]))

# Things the Idr machine reached, so that a test can assert the search has teeth.
REACHED: set[str] = set()


class IdrMachine(RuleBasedStateMachine):
    """Idr (small leaves, small bases) against RefIdr."""

    idr: Idr
    model: RefIdr

    @initialize(
        shift=st.integers(0, 3),
        base=st.integers(0, 3),
        cursor=st.one_of(st.just(0), cursors),
        window=st.tuples(st.integers(0, 6), st.integers(-1, 12)),
    )
    def init(self, shift: int, base: int, cursor: int, window: tuple[int, int]) -> None:
        self.idr = Idr._with_leaf_shift(shift, base)
        self.model = RefIdr(base)
        assert self.idr.cursor == 0  # IDR_INIT_BASE: idr_next = 0
        self.idr.cursor = self.model.cursor = cursor  # idr_set_cursor
        # Kernel users call alloc_cyclic with one fixed range (alloc_pid: [1, pid_max)).
        self.window = window
        self.last: int | None = None  # the id the last successful allocation returned

    def _note_alloc(self, kind: str, outcome: Outcome) -> None:
        if outcome[0] == "ok":
            self.last = outcome[1]
        if outcome == ("err", errno.ENOSPC):
            REACHED.add(f"{kind}_enospc")
            event(f"{kind}: ENOSPC")

    @rule(ptr=ptrs, start=st.integers(-1, 40), end=ends)
    def alloc(self, ptr: Any, start: int, end: int) -> None:
        # start = -1 must WARN and give EINVAL (A.3).
        outcome = same(
            self.model,
            lambda: self.idr.alloc(ptr, start, end),
            lambda: self.model.alloc(ptr, start, end),
        )
        self._note_alloc("alloc", outcome)

    @rule(ptr=ptrs, start=starts, end=ends)
    def alloc_cyclic(self, ptr: Any, start: int, end: int) -> None:
        outcome = same(
            self.model,
            lambda: self.idr.alloc_cyclic(ptr, start, end),
            lambda: self.model.alloc_cyclic(ptr, start, end),
        )
        self._note_alloc("cyclic", outcome)
        if self.model.wrapped:
            REACHED.add("cyclic_wrap")
            event("cyclic: wrapped")
        if self.model.wrapped_from_start_plus_one:
            REACHED.add("cyclic_wrap_from_start_plus_one")
            event("cyclic: wrapped, first search began at start + 1")
        if outcome[0] == "ok" and self.model.cursor > INT_MAX:
            REACHED.add("cursor_above_int_max")
            event("cyclic: cursor above INT_MAX")

    @rule(ptr=ptrs)
    def alloc_cyclic_in_window(self, ptr: Any) -> None:
        self.alloc_cyclic(ptr, *self.window)

    @precondition(lambda self: self.model.entries)
    @rule(data=st.data())
    def remove_allocated(self, data: st.DataObject) -> None:
        self.remove(data.draw(st.sampled_from(sorted(self.model.entries)), label="id_"))

    @rule()
    def remove_last(self) -> None:
        """Free the id just allocated (alloc/free churn, as short-lived tasks do)."""
        if self.last is not None:
            self.remove(self.last)

    @rule(ptr=ptrs, start=starts, end=st.sampled_from([0, -1, -(2**31)]))
    def alloc_cyclic_to_int_max(self, ptr: Any, start: int, end: int) -> None:
        """alloc_cyclic with no upper limit, so that a cursor near INT_MAX runs off the top."""
        self.alloc_cyclic(ptr, start, end)

    @rule(ptr=ptrs, nextid=u32s, max_=u32s)
    def alloc_u32(self, ptr: Any, nextid: int, max_: int) -> None:
        outcome = same(
            self.model,
            lambda: self.idr.alloc_u32(ptr, nextid, max_),
            lambda: self.model.alloc_u32(ptr, nextid, max_),
        )
        self._note_alloc("u32", outcome)
        if outcome[0] == "ok" and outcome[1] > INT_MAX:
            REACHED.add("above_int_max")
            event("u32: allocated above INT_MAX")

    @rule(id_=ulong_ids)
    def remove(self, id_: int) -> None:
        same(self.model, lambda: self.idr.remove(id_), lambda: self.model.remove(id_))

    @rule(ptr=ptrs, id_=ulong_ids)
    def replace(self, ptr: Any, id_: int) -> None:
        same(
            self.model,
            lambda: self.idr.replace(ptr, id_),
            lambda: self.model.replace(ptr, id_),
        )

    @rule(id_=ulong_ids)
    def find(self, id_: int) -> None:
        same(self.model, lambda: self.idr.find(id_), lambda: self.model.find(id_))

    @rule(id_=st.one_of(small_ids, st.sampled_from([INT_MAX - 1, INT_MAX])))
    def get_next(self, id_: int) -> None:
        outcome = same(
            self.model, lambda: self.idr.get_next(id_), lambda: self.model.get_next(id_)
        )
        if outcome == ("ok", None) and self.model.warned:
            REACHED.add("get_next_warn")
            event("get_next: WARN above INT_MAX")

    @rule(value=cursors)
    def set_cursor(self, value: int) -> None:
        self.idr.cursor = value
        self.model.cursor = value

    @rule(offset=st.integers(-1, 2))
    def set_cursor_near_window_start(self, offset: int) -> None:
        self.set_cursor(max(0, self.window[0] + offset))

    @rule()
    def destroy(self) -> None:
        self.idr.destroy()
        self.model.destroy()

    @rule()
    def for_each_entry(self) -> None:
        """``idr_for_each_entry``: get_next from 0, then id + 1, until NULL."""

        def walk(get_next: Callable[[int], tuple[int, Any] | None]) -> list[tuple[int, Any]]:
            out = []
            id_ = 0
            while id_ <= INT_MAX and (hit := get_next(id_)) is not None:
                out.append(hit)
                id_ = hit[0] + 1
            return out

        same(self.model, lambda: walk(self.idr.get_next), lambda: walk(self.model.get_next))
        if self.model.warned:
            REACHED.add("get_next_warn")
            event("for_each_entry: WARN above INT_MAX")

    @invariant()
    def agrees(self) -> None:
        self.idr._check()
        model = self.model
        assert self.idr.ids() == sorted(model.entries)
        assert self.idr.cursor == model.cursor
        assert self.idr.base == model.base
        assert len(self.idr) == len(model.entries)
        assert self.idr.is_empty() == (not model.entries)
        same(model, lambda: list(self.idr), model.for_each)
        if model.warned:
            REACHED.add("for_each_warn")
        for id_ in (0, 1, 2, 3, 4, 39, 40, 41, INT_MAX, U32_MAX):
            assert (id_ in self.idr) == (id_ in model.entries)
            assert self.idr.find(id_) == model.find(id_)
        if self.idr._bits._full_leaves.runs():
            REACHED.add("full_leaf")


TestIdrMachine = IdrMachine.TestCase


class IdaMachine(RuleBasedStateMachine):
    """Ida (small leaves) against RefIda."""

    ida: Ida
    model: RefIda

    @initialize(shift=st.integers(0, 3))
    def init(self, shift: int) -> None:
        self.ida = Ida()
        # Ida has no _with_leaf_shift; give it small leaves the same way Idr does.
        self.ida._bits = IdBitmap(shift=shift)
        self.model = RefIda()

    @rule(lo=u32s, hi=u32s)
    def alloc_range(self, lo: int, hi: int) -> None:
        same(
            self.model,
            lambda: self.ida.alloc_range(lo, hi),
            lambda: self.model.alloc_range(lo, hi),
        )

    @rule()
    def alloc(self) -> None:
        same(self.model, self.ida.alloc, lambda: self.model.alloc_range(0, U32_MAX))

    @rule(lo=u32s)
    def alloc_min(self, lo: int) -> None:
        same(
            self.model, lambda: self.ida.alloc_min(lo), lambda: self.model.alloc_range(lo, U32_MAX)
        )

    @rule(hi=u32s)
    def alloc_max(self, hi: int) -> None:
        same(self.model, lambda: self.ida.alloc_max(hi), lambda: self.model.alloc_range(0, hi))

    @rule(start=small_ids, end=st.one_of(st.integers(0, 43), st.integers(0, 9)))
    def simple_get(self, start: int, end: int) -> None:
        # ida_simple_get(s, e) = alloc_range(s, e - 1); e = 0 gives (unsigned)-1.
        same(
            self.model,
            lambda: self.ida.simple_get(start, end),
            lambda: self.model.alloc_range(start, (end - 1) & U32_MAX),
        )

    @rule(id_=u32s)
    def free(self, id_: int) -> None:
        same(self.model, lambda: self.ida.free(id_), lambda: self.model.free(id_))

    @rule(lo=u32s, hi=u32s)
    def find_first_range(self, lo: int, hi: int) -> None:
        same(
            self.model,
            lambda: self.ida.find_first_range(lo, hi),
            lambda: self.model.find_first_range(lo, hi),
        )

    @rule()
    def find_first(self) -> None:
        same(self.model, self.ida.find_first, lambda: self.model.find_first_range(0, U32_MAX))

    @rule(id_=u32s)
    def exists(self, id_: int) -> None:
        # ida_exists(id) is find_first_range(id, id) == id.
        def ref() -> bool:
            try:
                return self.model.find_first_range(id_, id_) == id_
            except RefError:
                return False

        same(self.model, lambda: self.ida.exists(id_), ref)

    @rule()
    def destroy(self) -> None:
        self.ida.destroy()
        self.model.used.clear()

    @invariant()
    def agrees(self) -> None:
        self.ida._check()
        assert self.ida.ids() == sorted(self.model.used)
        assert len(self.ida) == len(self.model.used)
        assert self.ida.is_empty() == (not self.model.used)


TestIdaMachine = IdaMachine.TestCase


def model_runs(members: set[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for k in sorted(members):
        if runs and runs[-1][1] == k - 1:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    return runs


@given(st.lists(st.integers(0, 40), max_size=80))
def test_runset_matches_a_plain_set(toggles: list[int]) -> None:
    """Toggle membership of each drawn key; RunSet must behave as a set of ints."""
    runs, members = RunSet(), set()
    for k in toggles:
        if k in members:
            runs.discard(k)
            members.remove(k)
        else:
            runs.add(k)
            members.add(k)
        runs._check()
        assert runs.runs() == model_runs(members)
        assert len(runs) == len(members)
        for probe in range(43):
            assert (probe in runs) == (probe in members)
            expected = probe
            while expected in members:
                expected += 1
            assert runs.next_absent(probe) == expected
    runs.clear()
    runs._check()
    assert runs.runs() == []
    assert runs.next_absent(5) == 5


# -- the search reaches the interesting corners -------------------------------------------


def test_small_space_wrap_and_enospc_directly() -> None:
    """Model and Idr agree on a hand-driven wrap, a full range and a full leaf."""
    idr, model = Idr._with_leaf_shift(1, base=1), RefIdr(1)

    def both(real: Callable[[], Any], ref: Callable[[], Any]) -> Outcome:
        return same(model, real, ref)

    # [0, 5) with base 1 is {1, 2, 3, 4}: two full 2-id leaves, then ENOSPC.
    for expected in (1, 2, 3, 4):
        outcome = both(lambda: idr.alloc_cyclic("x", 0, 5), lambda: model.alloc_cyclic("x", 0, 5))
        assert outcome == ("ok", expected)
        assert not model.wrapped
    assert idr._bits._full_leaves.runs() == [(1, 1)]  # the leaf {2, 3} is full
    assert idr.cursor == 5
    outcome = both(lambda: idr.alloc_cyclic("y", 0, 5), lambda: model.alloc_cyclic("y", 0, 5))
    assert outcome == ("err", errno.ENOSPC)
    assert idr.cursor == 5  # unchanged on failure
    assert both(lambda: idr.remove(2), lambda: model.remove(2)) == ("ok", "x")
    # Cursor 5 > max 4: nothing from 5, so the search wraps to start and finds 2.
    outcome = both(lambda: idr.alloc_cyclic("z", 0, 5), lambda: model.alloc_cyclic("z", 0, 5))
    assert outcome == ("ok", 2)
    assert model.wrapped
    assert idr.cursor == 3
    outcome = both(lambda: idr.alloc(None, 1, 5), lambda: model.alloc(None, 1, 5))
    assert outcome == ("err", errno.ENOSPC)
    idr._check()


def test_idr_machine_reaches_wrap_enospc_and_full_leaves() -> None:
    """The stateful search above is not vacuous: with a fixed seed it gets everywhere."""
    REACHED.clear()
    run_state_machine_as_test(
        IdrMachine,
        settings=settings(max_examples=300, derandomize=True, database=None, deadline=None),
    )
    # The rare retry with the cursor exactly at start + 1 is pinned down by the
    # deterministic test below instead: whether this search meets it depends on the
    # exact example stream, which shifts with Hypothesis internals.
    missing = {
        "cyclic_wrap",
        "cyclic_enospc",
        "alloc_enospc",
        "u32_enospc",
        "full_leaf",
        "above_int_max",
        "cursor_above_int_max",
        "for_each_warn",
    } - REACHED
    assert not missing


def test_cyclic_retries_from_start_when_cursor_is_start_plus_one() -> None:
    """A.4: the second search runs whenever ``id > start``, ``id == start + 1`` included."""
    idr, model = Idr(), RefIdr(0)

    def cyclic(ptr: str) -> Outcome:
        return same(
            model, lambda: idr.alloc_cyclic(ptr, 5, 8), lambda: model.alloc_cyclic(ptr, 5, 8)
        )

    assert [cyclic("x") for _ in range(3)] == [("ok", 5), ("ok", 6), ("ok", 7)]
    idr.remove(5)
    model.remove(5)
    idr.cursor = model.cursor = 6  # [6, 7] is full and 5 is free
    assert cyclic("y") == ("ok", 5)
    assert model.wrapped_from_start_plus_one
    assert idr.cursor == 6
    assert cyclic("z") == ("err", errno.ENOSPC)
    assert idr.cursor == 6


@pytest.mark.parametrize("shift", [0, 3])
def test_cyclic_fills_whole_range_then_wraps_in_order(shift: int) -> None:
    """Cyclic over [3, 12) on a fresh IDR: 3..11, ENOSPC, and after frees, wrap in order."""
    idr = Idr._with_leaf_shift(shift)
    assert [idr.alloc_cyclic(i, 3, 12) for i in range(3, 12)] == list(range(3, 12))
    with pytest.raises(BpfnsError, check=lambda e: e.errno == errno.ENOSPC):
        idr.alloc_cyclic("full", 3, 12)
    assert idr.cursor == 12
    for i in (9, 4, 7):
        idr.remove(i)
    assert [idr.alloc_cyclic("again", 3, 12) for _ in range(3)] == [4, 7, 9]
    assert idr.cursor == 10
    idr._check()
