"""The fast paths and the careful paths are one operation: a differential test.

Every program the BpfnsMachine generates runs on three kernels at once:

* A, the machine's own kernel, traced: every id walk and bpf() command runs its careful
  form (the tracer turns the fast paths off);
* B, untraced: the fast forms (the radix tree's cursor walks, the inline slab records,
  the bpf() commands' prechecks);
* C, untraced with a fault injector that is armed but never fires: every fault site is
  reached and says no, which sends each walk down its careful form without a tracer.

Each top-level call the machine makes on A is made on B and C too, with A's objects
replaced by their counterparts (paired as they appear: returned, or created in the
same order); the three must return equal values or raise the same error, and their
snapshots must be equal after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

import bpfns
from bpfns import FIXED, Behavior, BpfnsError, Kernel
from bpfns._idr import idr_tree
from bpfns._trace import Tracer
from bpfns.testing import BpfnsMachine

#: ``fail_nth`` far enough away never to be reached: armed, never firing.
NEVER = 2**62


def _armed_never_firing(k: Kernel) -> None:
    if not k.faults.armed:
        k.faults.fail_nth(NEVER)


class Lockstep:
    """Makes every top-level call of kernel ``a`` on two mirrors, ``b`` and ``c``."""

    def __init__(self, a: Kernel) -> None:
        self.a = a
        config = {"id_end": a.id_end, "max_level": a.max_level, "on_bug": a.on_bug}
        self.b = Kernel(a.behavior, **config)  # type: ignore[arg-type]
        self.c = Kernel(a.behavior, **config)  # type: ignore[arg-type]
        _armed_never_firing(self.c)
        #: id(object of a) -> (object of a, its counterpart in b, in c)
        self.pairs: dict[int, tuple[object, object, object]] = {}
        self.seen: dict[str, int] = {}
        self.steps = 0
        #: steps after which some IDR of ``b`` had an armed leaf (its fast path's case)
        self.armed_steps = 0
        self.sync()

    def pair(self, x: object, y: object, z: object) -> None:
        if isinstance(x, list | tuple):
            assert isinstance(y, list | tuple) and isinstance(z, list | tuple)
            for items in zip(x, y, z, strict=True):
                self.pair(*items)
        elif getattr(type(x), "_trace_kind", None) is not None or isinstance(x, bpfns.BpfObject):
            self.pairs.setdefault(id(x), (x, y, z))

    def sync(self) -> None:
        """Pair what the last call created, in creation order in each kernel."""
        a, b, c = self.a, self.b, self.c
        self.pair([a, a.faults, a.bpffs], [b, b.faults, b.bpffs], [c, c.faults, c.bpffs])
        views: list[Callable[[Kernel], list[Any]]] = [
            lambda k: [k.init_ns, *k.live_namespaces],
            lambda k: [k.live_tasks[pid] for pid in sorted(k.live_tasks)],
            lambda k: k.user_namespaces(),
            lambda k: list(k.objects),
            lambda k: list(k.primers),
        ]
        for view in views:
            xs, ys, zs = view(a), view(b), view(c)
            assert len(xs) == len(ys) == len(zs), f"{len(xs)}, {len(ys)}, {len(zs)} live"
            for x, y, z in zip(xs, ys, zs, strict=True):
                if id(x) not in self.pairs:
                    self.pair(x, y, z)

    def mapped(self, value: Any, i: int) -> Any:
        found = self.pairs.get(id(value))
        if found is not None and found[0] is value:
            return found[i]
        if isinstance(value, list | tuple):
            return type(value)(self.mapped(v, i) for v in value)
        return value  # a plain value, or another Kernel's object (refused in all three)

    def call(
        self, fn: Callable[..., Any], target: object, args: Any, kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Make the call ``a`` just made on ``b`` and ``c``; compare outcomes and worlds."""
        outcomes = []
        for i in (1, 2):
            mirror_args = self.mapped(list(args), i)
            mirror_kwargs = {key: self.mapped(v, i) for key, v in kwargs.items()}
            try:
                outcomes.append(("ok", fn(self.mapped(target, i), *mirror_args, **mirror_kwargs)))
            except Exception as exc:
                outcomes.append(("error", exc))
        return outcomes

    def compare(self, op: str, mine: tuple[str, Any], theirs: list[tuple[str, Any]]) -> None:
        for kind, value in theirs:
            assert kind == mine[0], f"{op}: {mine} on the traced kernel, {kind} {value!r}"
            if kind == "error":
                assert type(value) is type(mine[1]), f"{op}: {mine[1]!r} vs {value!r}"
                if isinstance(value, BpfnsError):
                    assert value.errno == mine[1].errno, f"{op}: {mine[1]!r} vs {value!r}"
            elif not hasattr(type(mine[1]), "_trace_kind") and not isinstance(
                mine[1], bpfns.BpfObject | list | tuple
            ):
                assert value == mine[1], f"{op}: returned {mine[1]!r} and {value!r}"
        results = [mine[1], *(v for _, v in theirs)]
        if mine[0] == "ok":
            self.pair(*results)
        self.sync()
        _armed_never_firing(self.c)
        self.steps += 1
        self.seen[op] = self.seen.get(op, 0) + 1
        trees = [idr_tree(idr) for ns in self.b.namespaces() for idr in ns.idr]
        self.armed_steps += any(tree.armed for tree in trees)
        snaps = [k.snapshot() for k in (self.a, self.b, self.c)]
        changed = snaps[0].changed(snaps[1]) or snaps[0].changed(snaps[2])
        assert snaps[0] == snaps[1] == snaps[2], f"after {op}: the worlds differ in {changed}"


def _mirroring_tracer(lockstep: Lockstep) -> type[Tracer]:
    def call(self: Tracer, fn: Callable[..., Any], target: object, args: Any, kwargs: Any) -> Any:
        try:
            result = Tracer.call(self, fn, target, args, kwargs)
        except Exception as exc:
            lockstep.compare(fn.__name__, ("error", exc), lockstep.call(fn, target, args, kwargs))
            raise
        lockstep.compare(fn.__name__, ("ok", result), lockstep.call(fn, target, args, kwargs))
        return result

    return type("MirroringTracer", (Tracer,), {"__slots__": (), "call": call})


class _Differential(BpfnsMachine):
    trace: ClassVar[bool] = True
    runs: ClassVar[list[Lockstep]] = []

    def __init__(self) -> None:
        super().__init__()
        lockstep = Lockstep(self.k)
        assert self.k.tracer is not None
        self.k.tracer.__class__ = _mirroring_tracer(lockstep)
        self.runs.append(lockstep)


def _machine(behavior: Behavior, end: int) -> type[_Differential]:
    attrs = {"behavior": behavior, "id_end": end, "runs": []}
    return type(f"Differential{end}", (_Differential,), attrs)


#: Small id spaces wrap and fill; the radix tree arms a leaf (the fast path's case) only
#: below the allocator's largest id, so 300 and INT_MAX exercise the armed walks.
ID_ENDS = [4, 9, 300, 2**31 - 1]


@pytest.mark.parametrize(("behavior", "end"), [(FIXED, end) for end in ID_ENDS])
def test_fast_careful_and_armed_paths_agree_at_every_step(behavior: Behavior, end: int) -> None:
    machine = _machine(behavior, end)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    ops = {op for run in machine.runs for op in run.seen}
    # the differential covered the hot calls and their failures, not a trivial subset
    assert {"map_create", "close", "prog_load", "clone"} <= ops, sorted(ops)
    assert sum(run.steps for run in machine.runs) > 1000
    if end >= 300:  # the untraced kernel ran its armed fast walks
        assert sum(run.armed_steps for run in machine.runs) > 100


def test_the_lockstep_sees_a_divergence() -> None:
    """A mirror that drifts (its cursor moved behind its back) fails the comparison."""
    k = Kernel(FIXED, trace=True)
    lockstep = Lockstep(k)
    assert k.tracer is not None
    k.tracer.__class__ = _mirroring_tracer(lockstep)
    k.init_task.map_create()
    lockstep.b.init_ns.idr[bpfns.ObjType.MAP].cursor = 7
    with pytest.raises(AssertionError, match=r"after map_create: the worlds differ in \["):
        k.init_task.map_create()


def test_rfc_defect_paths_agree() -> None:
    """RFC behaviour: D3's fd 0, D1's rollback read, D2's dangling records, on all three."""
    k = Kernel(bpfns.RFC, id_end=3, on_bug="record", trace=True)
    lockstep = Lockstep(k)
    assert k.tracer is not None
    k.tracer.__class__ = _mirroring_tracer(lockstep)
    child = k.init_task.clone(bpfns.CLONE_NEWBPF)
    fds = [child.map_create() for _ in range(3)]  # ids 1, 2, then ENOSPC: D3 returns 0
    assert fds[-1] == 0
    child.close(fds[0])
    other = k.init_task.clone(bpfns.CLONE_NEWBPF)
    other.prog_load()
    oid = k.alloc_obj_id(other.bpf_ns, "raw", bpfns.ObjType.PROG)
    other.exit()  # the namespace dies with a record still in it (D2)
    k.free_obj_id(oid, bpfns.ObjType.PROG)  # D2 reported, on every kernel
    child.exit()
    k.synchronize_rcu()
    assert lockstep.steps >= 10
    assert [len(m.reports) for m in (lockstep.a, lockstep.b, lockstep.c)] == [len(k.reports)] * 3
    assert k.reports, "the RFC run reached its defects"
