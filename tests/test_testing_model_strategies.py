"""The reference model and the strategies of bpfns.testing, on their own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import bpfns
from bpfns import FIXED, Kernel, ObjType
from bpfns.testing import (
    Op,
    RefModel,
    RefNs,
    RefObj,
    kernels,
    namespace_trees,
    operations,
    run_operations,
)


def test_model_cyclic_allocation_and_wrap() -> None:
    model = RefModel(end=4)  # ids 1, 2, 3
    root = RefNs(None, 0)
    made = [model.create(root, 0) for _ in range(3)]
    assert all(isinstance(m, RefObj) for m in made)
    assert [m.numbers[0][1] for m in made if isinstance(m, RefObj)] == [1, 2, 3]
    assert model.create(root, 0) == "ENOSPC"  # cursor 4 > start: retried from 1, full
    first = made[0]
    assert isinstance(first, RefObj)
    model.put(first)
    again = model.create(root, 0)
    assert isinstance(again, RefObj)
    assert again.numbers == [(root, 1)]  # the wrap to start


def test_model_full_range_with_cursor_at_start_does_not_retry() -> None:
    model = RefModel(end=2)  # ids {1}
    root = RefNs(None, 0)
    taken = model.create(root, 1)
    assert isinstance(taken, RefObj)
    root.cursor[1] = 1
    assert model.create(root, 1) == "ENOSPC"


def test_model_rollback_and_faults() -> None:
    model = RefModel(end=3)
    root = RefNs(None, 0)
    child = RefNs(root, 1)
    assert model.create(child, 0, fail_at=1) == "ENOMEM"
    assert model.create(child, 0, fail_at=3) == "ENOMEM"  # at the root, after the child
    assert child.ids[0] == {}
    assert child.cursor[0] == 2  # the child's cursor moved, like the kernel's
    model.create(root, 0)
    model.create(root, 0)
    assert model.create(child, 0) == "ENOSPC"


def test_model_views_and_rcu() -> None:
    model = RefModel(end=10)
    root = RefNs(None, 0)
    a, b = RefNs(root, 1), RefNs(root, 1)
    m = model.create(a, 0)
    assert isinstance(m, RefObj)
    p = model.create(a, 1)
    assert isinstance(p, RefObj)
    p.maps.append(m)
    model.get(m)
    assert (model.vnr(m, a), model.vnr(m, root), model.vnr(m, b)) == (1, 1, 0)
    assert model.listing(root, 0, 0, 8) == [1]
    assert model.put(m) == []
    assert model.put(p) == [p]
    assert model.grace_period() == [m]


@given(kernels())
def test_kernels_are_small(k: Kernel) -> None:
    assert 4 <= k.id_end <= 16
    assert 1 <= k.max_level <= 4
    assert k.behavior == FIXED


@given(namespace_trees())
def test_namespace_trees(tree: tuple[Kernel, list[bpfns.Namespace]]) -> None:
    k, nodes = tree
    assert nodes[0] is k.init_ns
    assert all(ns.level <= k.max_level for ns in nodes)
    k.check()


@given(kernels(id_end=st.just(3)), operations())
def test_operations_keep_fixed_kernels_consistent(k: Kernel, ops: list[Op]) -> None:
    errors = run_operations(k, ops)
    assert all(e.errorcode == "ENOSPC" for e in errors)
    k.check()


def test_run_operations_covers_every_kind() -> None:
    k = Kernel(FIXED, id_end=2, max_level=1)
    ops = [
        Op("child", 0),
        Op("child", 1),  # ENOSPC: level 2 > max_level
        Op("alloc", 1, ObjType.PROG),
        Op("alloc", 0, ObjType.PROG),  # ENOSPC: init's prog ids are full
        Op("put", 0),
        Op("free", 0),
        Op("rcu"),
        Op("free", 0),  # nothing left: skipped
        Op("put", 0),  # nothing left: skipped
    ]
    errors = run_operations(k, ops)
    assert [e.errorcode for e in errors] == ["ENOSPC", "ENOSPC"]
    assert k.namespaces() == [k.init_ns]
    k.check()
