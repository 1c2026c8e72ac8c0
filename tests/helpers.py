"""Small helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bpfns import BpfnsError, Task


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
