"""Property-based test of the Kernel against a deliberately simple reference model.

The model keeps, per namespace and type, a plain dict of ids and an int cursor, and
allocates by scanning (semantics §2.3: ``idr_alloc_cyclic(1, id_end)`` at every level,
deepest first; on failure nothing is kept but the deeper cursors stay advanced). It also
counts references by hand (semantics §2.2 lifetime; FIXED pins the deepest namespace). The
id space and the depth are tiny so that wrap-around, full ranges and rollback happen.
"""

from __future__ import annotations

import errno
from typing import Any

import attrs
from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from bpfns import FIXED, BpfnsError, Kernel, Namespace, ObjId, ObjType


@attrs.define(eq=False)
class ModelNs:
    parent: ModelNs | None
    level: int
    ids: list[dict[int, object]] = attrs.field(factory=lambda: [{}, {}, {}])
    cursor: list[int] = attrs.field(factory=lambda: [0, 0, 0])
    refs: int = 1
    children: int = 0
    pins: int = 0
    dead: bool = False

    def chain(self) -> list[ModelNs]:
        out, ns = [], self
        while ns is not None:
            out.append(ns)
            ns = ns.parent
        return out

    def total(self) -> int:
        return self.refs + self.children + self.pins


def model_alloc(ns: ModelNs, t: int, obj: object, end: int) -> list[int] | None:
    """Cyclic allocation at every level, deepest first; None (ENOSPC) keeps no id."""
    got: list[tuple[ModelNs, int]] = []
    for level in ns.chain():
        ids, start = level.ids[t], level.cursor[t]
        start = max(start, 1)
        order = list(range(start, end)) + list(range(1, min(start, end)))
        free = [i for i in order if i not in ids]
        if not free:
            for done, nr in got:
                del done.ids[t][nr]
            return None
        level.ids[t][free[0]] = obj
        level.cursor[t] = free[0] + 1
        got.append((level, free[0]))
    return [nr for _, nr in reversed(got)]


def model_put(ns: ModelNs | None, field: str) -> None:
    while ns is not None and ns.level:
        setattr(ns, field, getattr(ns, field) - 1)
        if ns.total():
            return
        ns.dead = True
        ns.ids = [{}, {}, {}]
        ns, field = ns.parent, "children"


class KernelMachine(RuleBasedStateMachine):
    """FIXED behaviour: every step must agree with the model and keep check() true."""

    namespaces = Bundle("namespaces")  # namespaces whose creation reference we hold
    objects = Bundle("objects")

    def __init__(self) -> None:
        super().__init__()
        self.k: Kernel
        self.model: dict[int, ModelNs] = {}
        self.end = 0

    @initialize(target=namespaces, id_end=st.integers(2, 6), max_level=st.integers(1, 3))
    def boot(self, id_end: int, max_level: int) -> Any:
        self.k = Kernel(FIXED, id_end=id_end, max_level=max_level)
        self.end = id_end
        self.model[id(self.k.init_ns)] = ModelNs(None, 0)
        return multiple()

    def m(self, ns: Namespace) -> ModelNs:
        return self.model[id(ns)]

    def live(self) -> list[Namespace]:
        return [ns for ns in self.k.namespaces() if ns.alive]

    @rule(target=namespaces, data=st.data())
    def create(self, data: st.DataObject) -> Any:
        parent = data.draw(st.sampled_from(self.live()), label="parent")
        before = self.k.snapshot()
        try:
            child = parent.create_child()
        except BpfnsError as e:
            assert e.errno == errno.ENOSPC
            assert parent.level + 1 > self.k.max_level
            event("create: level limit")
            assert self.k.snapshot() == before
            return multiple()
        mp = self.m(parent)
        mp.children += mp.level > 0
        self.model[id(child)] = ModelNs(mp, parent.level + 1)
        return child

    @rule(ns=consumes(namespaces))
    def put(self, ns: Namespace) -> None:
        ns.put()
        model_put(self.m(ns), "refs")

    @rule(target=objects, data=st.data(), t=st.sampled_from(ObjType))
    def alloc(self, data: st.DataObject, t: ObjType) -> Any:
        ns = data.draw(st.sampled_from(self.live()), label="ns")
        obj = object()
        cursors = [level.cursor[t] for level in self.m(ns).chain()]
        expected = model_alloc(self.m(ns), t, obj, self.end)
        if expected is not None and any(
            nr < c for nr, c in zip(reversed(expected), cursors, strict=True)
        ):
            event("alloc: wrapped")
        before = self.k.snapshot()
        try:
            oid = self.k.alloc_obj_id(ns, obj, t)
        except BpfnsError as e:
            assert e.errno == errno.ENOSPC
            assert expected is None
            event("alloc: ENOSPC with rollback" if ns.level else "alloc: ENOSPC")
            assert self.k.snapshot().without_cursors() == before.without_cursors()
            return multiple()
        assert expected is not None, "the kernel allocated where the model found no id"
        assert [e.nr for e in oid.numbers] == expected
        for level, e in zip(self.m(ns).chain(), reversed(oid.numbers), strict=True):
            level.ids[t][e.nr] = oid
        if ns.level:
            self.m(ns).pins += 1
        return (oid, t)

    @rule(pair=consumes(objects))
    def free(self, pair: tuple[ObjId, ObjType]) -> None:
        oid, t = pair
        deepest = self.m(oid.ns)
        for level, e in zip(deepest.chain(), reversed(oid.numbers), strict=True):
            del level.ids[t][e.nr]
        self.k.free_obj_id(oid, t)
        if deepest.level:
            model_put(deepest, "pins")

    @rule()
    def grace_period(self) -> None:
        self.k.synchronize_rcu()

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "k"):
            return
        for ns in self.k.namespaces():
            m = self.m(ns)
            assert ns.alive == (not m.dead), ns
            for t in ObjType:
                assert ns.idr[t].ids() == sorted(m.ids[t]), (ns, t)
                assert ns.idr[t].cursor == m.cursor[t], (ns, t)
            if ns.level:
                assert ns.refcount == m.total()
        note(self.k.init_ns.tree())
        self.k.check()
        assert self.k.reports == []


TestKernelMachine = KernelMachine.TestCase
