"""Small helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bpfns import BpfnsError, Kernel, Snapshot, Task


def errno_of(call: Callable[[], object]) -> int:
    """The errno of the BpfnsError that ``call`` must raise."""
    with pytest.raises(BpfnsError) as info:
        call()
    assert info.value.errno is not None
    return info.value.errno


def walk(t: Task, kind: str) -> list[int]:
    """Walk ``<kind>_get_next_id`` from 0 the way bpftool does, until ENOENT."""
    get_next = getattr(t, f"{kind}_get_next_id")
    out: list[int] = []
    cur = 0
    while True:
        try:
            cur = get_next(cur)
        except BpfnsError as e:
            assert e.errorcode == "ENOENT"
            return out
        out.append(cur)


def assert_atomic(k: Kernel, before: Snapshot, call: str) -> None:
    """A failed ``call`` changed at most what the kernel leaves behind (the docs table).

    ``before`` is ``k.snapshot()`` taken just before the call. When the call left a
    deferred free and nothing else was pending before it, one grace period must bring
    the objects back to what they were.
    """
    after = k.snapshot()
    extra = before.unexpected(after, call)
    assert extra == [], f"a failed {call} changed {extra}: {before!r} -> {after!r}"
    if "rcu_pending" in before.changed(after) and not before.rcu_pending:
        k.synchronize_rcu()
        settled = k.snapshot()
        stays = [f for f in before.changed(settled) if f in ("objects", "rcu_pending")]
        assert stays == [], f"after a grace period, a failed {call} still changed {stays}"
