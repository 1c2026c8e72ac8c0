"""Hypothesis strategies for bpfns worlds: kernels, namespace trees, operation sequences.

All of them default to small id spaces and shallow trees, so that the interesting
corners (wrap-around, a full IDR at some level, the level limit) are common.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import strategies as st

from .._behavior import FIXED, Behavior
from .._bpf_namespace import Namespace, ObjType
from .._errors import BpfnsError
from .._kernel import Kernel
from .._obj_id import ObjId
from ..concurrency import Schedule

__all__ = ["Op", "kernels", "namespace_trees", "operations", "run_operations", "schedules"]


def kernels(
    behavior: Behavior = FIXED,
    id_end: st.SearchStrategy[int] | None = None,
    max_level: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[Kernel]:
    """Kernels with small id spaces (ids 1..3 to 1..15) and low level limits (1..4).

    >>> from hypothesis import given
    >>> @given(kernels())
    ... def test(k):
    ...     assert 2 <= k.id_end <= 16
    >>> test()
    """
    return st.builds(
        Kernel,
        st.just(behavior),
        id_end=id_end if id_end is not None else st.integers(4, 16),
        max_level=max_level if max_level is not None else st.integers(1, 4),
    )


@st.composite
def namespace_trees(
    draw: st.DrawFn, kernel: st.SearchStrategy[Kernel] | None = None, max_size: int = 8
) -> tuple[Kernel, list[Namespace]]:
    """A kernel and a random tree of namespaces under ``init_ns`` (init first)."""
    k = draw(kernels() if kernel is None else kernel)
    nodes = [k.init_ns]
    for _ in range(draw(st.integers(0, max_size))):
        parent = draw(st.sampled_from([ns for ns in nodes if ns.level < k.max_level]))
        nodes.append(parent.create_child())
    return k, nodes


@attrs.frozen
class Op:
    """One step of a Kernel-level operation sequence (see :func:`run_operations`).

    ``kind`` is ``"child"`` (create a child of namespace ``a``), ``"put"`` (drop the
    reference on namespace ``a``), ``"alloc"`` (an object of ``type`` in namespace
    ``a``), ``"free"`` (object ``a``) or ``"rcu"``. Indexes wrap around the live ones.
    """

    kind: str
    a: int = 0
    type: ObjType = ObjType.MAP


def operations(max_size: int = 40) -> st.SearchStrategy[list[Op]]:
    """Sequences of :class:`Op`."""
    op = st.one_of(
        st.builds(Op, st.just("child"), st.integers(0, 7)),
        st.builds(Op, st.just("put"), st.integers(0, 7)),
        st.builds(Op, st.just("alloc"), st.integers(0, 7), st.sampled_from(ObjType)),
        st.builds(Op, st.just("free"), st.integers(0, 15)),
        st.builds(Op, st.just("rcu")),
    )
    return st.lists(op, max_size=max_size)


def run_operations(k: Kernel, ops: Sequence[Op]) -> list[BpfnsError]:
    """Apply ``ops`` through the Kernel API; returns the errors the kernel raised.

    Namespaces are referenced by their index among those created (and not yet put);
    objects among those allocated and not yet freed. Kernel refusals (ENOSPC at the
    level limit or a full IDR) are collected, not raised; sanitizer reports raise.
    """
    spaces: list[Namespace] = [k.init_ns]
    objects: list[ObjId] = []
    errors: list[BpfnsError] = []
    for op in ops:
        try:
            if op.kind == "child":
                spaces.append(spaces[op.a % len(spaces)].create_child())
            elif op.kind == "put" and len(spaces) > 1:
                spaces.pop(1 + op.a % (len(spaces) - 1)).put()
            elif op.kind == "alloc":
                ns = spaces[op.a % len(spaces)]
                objects.append(k.alloc_obj_id(ns, op, op.type))
            elif op.kind == "free" and objects:
                obj_id = objects.pop(op.a % len(objects))
                k.free_obj_id(obj_id, obj_id.type)
            elif op.kind == "rcu":
                k.synchronize_rcu()
        except BpfnsError as e:
            errors.append(e)
    return errors


def schedules(cpus: int = 2, max_size: int = 12) -> st.SearchStrategy[Schedule]:
    """Schedules for ``cpus`` simulated CPUs (:class:`bpfns.concurrency.Schedule`).

    The choice at each of the first ``max_size`` decision points; after them the
    running CPU goes on. Hypothesis shrinks a failing schedule towards ``Schedule([])``
    (no preemption) and lower CPU numbers, so a shrunk failure has few preemptions.

    >>> from hypothesis import given
    >>> @given(schedules(cpus=3))
    ... def test(s):
    ...     assert all(0 <= cpu < 3 for cpu in s.choices)
    >>> test()
    """
    if not 1 <= cpus <= 4:
        raise ValueError(f"cpus must be 1 to 4 (the simulated CPUs of a pool), not {cpus!r}")
    return st.lists(st.integers(0, cpus - 1), max_size=max_size).map(Schedule)
