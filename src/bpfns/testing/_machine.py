"""BpfnsMachine: a Hypothesis state machine that drives a Kernel and checks it every step.

Subclass it in your own test suite and configure it with class attributes::

    from bpfns.testing import BpfnsMachine

    class MyMachine(BpfnsMachine):
        behavior = bpfns.FIXED
        id_end = 5          # ids 1..4 at every level: wrap-around and ENOSPC are common
        max_level = 3

    TestMyMachine = MyMachine.TestCase

Every step is checked against :class:`~bpfns.testing.RefModel`, an independent
reference model, touching only what the step touched (so a world of 100,000 objects
costs no more per step than one of ten). A broken rule raises
:class:`bpfns.InvariantViolation` naming the invariant; a memory bug of the posted RFC
raises its :class:`bpfns.KernelBug`. The whole world is checked with
:meth:`bpfns.Kernel.check` at the end of every example, then torn down
(:meth:`bpfns.Kernel.teardown`, pins unlinked): :meth:`bpfns.Kernel.leftovers` must
then be empty ("nothing leaks").

Besides the bpf() commands, the rules make user namespaces (unprivileged tasks, whose
commands are refused), two-phase links (``link_prime``, then ``settle`` or ``cleanup``),
allocation failures at every fault site, and refused calls (bad arguments, objects of
another Kernel): a refused call must change nothing.

The failure output is a runnable program: every argument is a plain value or a
variable of an earlier step.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    multiple,
    precondition,
    rule,
)

from .._behavior import FIXED, Behavior
from .._bpf_namespace import CLONE_NEWBPF, Namespace, ObjType
from .._bpf_object import BpfObject
from .._capability import Cap
from .._errors import BpfnsError, InvariantViolation
from .._fault import FaultSite
from .._files import File, FileKind
from .._kernel import Kernel
from .._link import LinkPrimer
from .._nsfs import CLONE_NEWUSER
from .._replay import replay
from .._snapshot import Snapshot
from .._task import Task
from .._ucount import UcountType
from ..concurrency import Schedule
from ..concurrency._scheduler import CpuPool, Follow, Scheduler
from ._misuse import MISUSES, run_misuse
from ._model import RefModel, RefNs, RefObj
from ._strategies import schedules

__all__ = ["BpfnsMachine", "FdRef", "Primed", "errorcode_of"]


def _open_file(task: Task, fd: int) -> File:
    """The open file behind ``fd`` of ``task`` (its file table's ``get``)."""
    assert task.files is not None
    return task.files.get(fd)


_PINS = ("/sys/fs/bpf/p0", "/sys/fs/bpf/p1", "/sys/fs/bpf/p2")
_WALK_LIMIT = 8


def _result(value: object, error: BaseException | None) -> object:
    """A concurrent call's outcome as a call would give it: ``value``, or raise."""
    if error is not None:
        raise error
    return value


def errorcode_of(call: Any) -> str | None:
    """The errno name of the BpfnsError ``call()`` raises, or None if it returns.

    >>> from bpfns import Kernel
    >>> errorcode_of(lambda: Kernel().init_task.close(9)), errorcode_of(lambda: None)
    ('EBADF', None)
    """
    try:
        call()
    except BpfnsError as e:
        return e.errorcode
    return None


def _none_between(ids: dict[int, RefObj], lo: int, hi: int) -> bool:
    """No id strictly between ``lo`` and ``hi``; O(min(gap, len(ids)))."""
    if hi - lo - 1 <= len(ids):
        return all(i not in ids for i in range(lo + 1, hi))
    return not any(lo < i < hi for i in ids)


@attrs.frozen
class FdRef:
    """An fd of a task, as the machine's bundles hold it."""

    task: Task
    fd: int


@attrs.define(eq=False)
class Primed:
    """A pending ``link_prime`` of the machine: the task, the primer, the model's link."""

    task: Task
    primer: LinkPrimer
    link: RefObj


@attrs.define(eq=False)
class _OpenFile:
    """The model of a ``struct file``: fds share it (dup, clone, SCM_RIGHTS)."""

    obj: RefObj | None
    count: int = 1


class BpfnsMachine(RuleBasedStateMachine):
    """Drive a :class:`bpfns.Kernel` through tasks and bpf() commands; check every step.

    Configuration (class attributes; set them in a subclass, never ``settings``):

    Attributes:
        behavior: the :class:`bpfns.Behavior` under test (default FIXED).
        id_end: ``Kernel(id_end=...)``: small values make wrap-around and ENOSPC common.
        max_level: ``Kernel(max_level=...)``.
        initial_objects: maps created in the initial namespace before the first step
            (for measuring cost against world size).
        check_at_teardown: run the full :meth:`bpfns.Kernel.check` after each example.
        check_leftovers: then tear the world down and require
            :meth:`bpfns.Kernel.leftovers` to be empty.
        trace: build the kernel with ``trace=True`` and check at teardown that
            :func:`bpfns.replay` of its trace rebuilds the same world (slower).
        concurrency: give the kernel two simulated CPUs and enable the rule that runs
            a MAP_CREATE and a MAP_GET_FD_BY_ID at once under a drawn schedule
            (:func:`bpfns.testing.schedules`); every other rule then takes the careful
            path, as an explored kernel does.
    """

    behavior: ClassVar[Behavior] = FIXED
    id_end: ClassVar[int] = 6
    max_level: ClassVar[int] = 3
    initial_objects: ClassVar[int] = 0
    check_at_teardown: ClassVar[bool] = True
    check_leftovers: ClassVar[bool] = True
    trace: ClassVar[bool] = False
    concurrency: ClassVar[bool] = False

    tasks = Bundle("tasks")
    fds = Bundle("fds")
    primers = Bundle("primers")

    def __init__(self) -> None:
        super().__init__()
        self.k = Kernel(
            self.behavior, id_end=self.id_end, max_level=self.max_level, trace=self.trace
        )
        self.model = RefModel(self.id_end)
        root = RefNs(None, 0)
        self.ns_of: dict[Namespace, RefNs] = {self.k.init_ns: root}
        self.kns_of: dict[RefNs, Namespace] = {root: self.k.init_ns}
        self.obj_of: dict[BpfObject, RefObj] = {}
        self.kobj_of: dict[RefObj, BpfObject] = {}
        #: per task, its fds and the open file behind each
        self.fd_of: dict[Task, dict[int, _OpenFile]] = {self.k.init_task: {}}
        #: the pending link primers
        self.pending: list[Primed] = []
        #: another Kernel, whose objects the refused calls pass
        self.other = Kernel(FIXED)
        self._failed = False
        self.cpus: CpuPool | None = None
        if self.concurrency:
            self.cpus = CpuPool(2)
            self.sched = Scheduler(self.cpus, self.k, Follow(()))
            self.k.smp_init(self.sched)

    # -- plumbing ---------------------------------------------------------------------

    def expect(self, invariant: str, ok: object, detail: str) -> None:
        """Raise InvariantViolation(invariant, detail) unless ``ok``."""
        if not ok:
            self._failed = True
            raise InvariantViolation(invariant, detail)

    @staticmethod
    def _bpf_capable(task: Task) -> bool:
        """``bpf_capable()``: may this task create objects."""
        return task.capable(Cap.CAP_BPF) or task.capable(Cap.CAP_SYS_ADMIN)

    @staticmethod
    def _may_look_up(task: Task) -> bool:
        """Patch 11's gate of GET_NEXT_ID and GET_FD_BY_ID."""
        if task.capable(Cap.CAP_SYS_ADMIN):
            return True
        return not task.bpf_ns.is_init and task.capable(Cap.CAP_BPF)

    def _small(self) -> bool:
        """Whether a whole-world snapshot per refused call is affordable.

        A world built with ``initial_objects`` is for measuring the cost per step,
        which must not grow with the world: there a refused call is checked against
        the model only.
        """
        return not self.initial_objects

    def _ref_ns(self, ns: Namespace) -> RefNs:
        ref = self.ns_of.get(ns)
        if ref is None:
            assert ns.parent is not None
            ref = self.ns_of[ns] = RefNs(self._ref_ns(ns.parent), ns.level)
            self.kns_of[ref] = ns
        return ref

    def _pair(self, obj: BpfObject, ref: RefObj) -> None:
        self.obj_of[obj] = ref
        self.kobj_of[ref] = obj

    def _live(self, ref: FdRef) -> bool:
        return ref.task.alive and ref.fd in self.fd_of[ref.task]

    def _file_obj(self, ref: FdRef) -> RefObj | None:
        return self.fd_of[ref.task][ref.fd].obj

    def _track_fd(self, task: Task, fd: int, obj: RefObj | None) -> FdRef:
        self.fd_of[task][fd] = _OpenFile(obj)
        return FdRef(task, fd)

    def _fput(self, file: _OpenFile) -> list[RefObj]:
        """One fd fewer on ``file``; the last one drops the object reference."""
        file.count -= 1
        if file.count or file.obj is None:
            return []
        return self.model.put(file.obj)

    def _freed(self, objs: list[RefObj]) -> None:
        """Invariant "freed ids are gone": each level no longer has the id."""
        for obj in objs:
            self.obj_of.pop(self.kobj_of.pop(obj))
            for ns, nr in obj.numbers:
                kns = self.kns_of[ns]
                if kns.alive:
                    self.expect(
                        "freed ids are released",
                        kns.idr[obj.type].find(nr) is None,
                        f"{kns.label()} still has {ObjType(obj.type).name} {nr}",
                    )

    def _check_ucounts(self) -> None:
        """Every namespace not yet freed is charged once to (init_user_ns, uid 0)."""
        charged = self.k.init_user_ns.count(UcountType.BPF_NAMESPACES, 0)
        self.expect(
            "ucounts balanced",
            charged == len(self.k.live_namespaces),
            f"{charged} max_bpf_namespaces charges, {len(self.k.live_namespaces)} namespaces",
        )

    def _check_refs(self, *objs: BpfObject) -> None:
        for obj in objs:
            ref = self.obj_of[obj]
            self.expect(
                "refcounts balanced",
                obj.refcnt == ref.refs,
                f"{obj!r}: kernel {obj.refcnt}, model {ref.refs}",
            )

    def _check_created(self, task: Task, fd: int, obj: BpfObject, ref: RefObj) -> None:
        """Ids in range with cursor semantics, uniqueness, root and ancestor views."""
        assert obj.obj_id is not None
        want = self._check_ids(obj, obj.obj_id, ref)
        self.expect(
            "ancestor visibility",
            task.obj_get_info_by_fd(fd).id == want[0],
            f"{obj!r}: its creator sees the wrong id",
        )

    def _check_ids(self, obj: BpfObject, obj_id: Any, ref: RefObj) -> list[int]:
        """An object's ids against the model's; returns the model's, deepest first."""
        got = [(e.ns, e.nr) for e in reversed(obj_id.numbers)]
        want = [nr for _, nr in ref.numbers]
        self.expect(
            "ids follow the kernel's cursor semantics",
            [nr for _, nr in got] == want,
            f"{obj!r}: kernel ids {[nr for _, nr in got]}, model {want} (deepest first)",
        )
        for (kns, nr), (rns, _) in zip(got, ref.numbers, strict=True):
            self.expect(
                "ids unique per (namespace, type)",
                kns.idr[obj.TYPE].find(nr) is obj_id,
                f"{kns.label()} id {nr} does not lead back to {obj!r}",
            )
            self.expect(
                "ids follow the kernel's cursor semantics",
                kns.idr[obj.TYPE].cursor == rns.cursor[obj.TYPE],
                f"{kns.label()} cursor {kns.idr[obj.TYPE].cursor}, model {rns.cursor[obj.TYPE]}",
            )
        self.expect(
            "root sees every object",
            self.k.init_ns.idr[obj.TYPE].find(obj_id.nr()) is obj_id,
            f"{obj!r} is not at {obj_id.nr()} in init_bpf_ns",
        )
        return want

    def _check_failed(self, task: Task, t: ObjType, before: list[tuple[int, int]]) -> None:
        """Failed operations are atomic: each level keeps its ids; cursors as modelled."""
        for ns, (count, _) in zip(task.bpf_ns.ancestors(), before, strict=True):
            ref = self._ref_ns(ns)
            self.expect(
                "failed operations are atomic",
                len(ns.idr[t]) == count == len(ref.ids[t]),
                f"{ns.label()}: {len(ns.idr[t])} {t.name} ids after a failed create, "
                f"{count} before, model {len(ref.ids[t])}",
            )
            self.expect(
                "ids follow the kernel's cursor semantics",
                ns.idr[t].cursor == ref.cursor[t],
                f"{ns.label()} cursor {ns.idr[t].cursor}, model {ref.cursor[t]}",
            )

    def _expected_create(
        self,
        task: Task,
        t: ObjType,
        fail_at: int,
        late: FaultSite | None,
        holds: RefObj | None = None,
    ) -> RefObj | str:
        """What the model says a create call gives: an object or an error name.

        ``late`` fails that allocation: BPF_OBJECT before the ids (nothing happens),
        FILE after them (the ids are allocated and freed again: cursors advance).
        """
        if t is not ObjType.LINK and not self._bpf_capable(task):
            return "EPERM"
        if late is FaultSite.BPF_OBJECT:
            return "ENOMEM"
        made = self.model.create(self._ref_ns(task.bpf_ns), t, fail_at)
        if late is FaultSite.FILE and isinstance(made, RefObj):
            if holds is not None:  # a program took its map before the fd failed
                made.maps.append(holds)
                self.model.get(holds)
            self.model.put(made)  # the object goes again; its maps after a grace period
            return "ENOMEM"
        return made

    def _ids_before(self, task: Task, t: ObjType) -> list[tuple[int, int]]:
        return [(len(ns.idr[t]), ns.idr[t].cursor) for ns in task.bpf_ns.ancestors()]

    def _create(
        self,
        task: Task,
        t: ObjType,
        call: Any,
        fail_at: int = 0,
        late: FaultSite | None = None,
        holds: RefObj | None = None,
        before: list[tuple[int, int]] | None = None,
    ) -> Any:
        """Run a create call and compare its result, ids and failure with the model.

        ``before`` is the IDRs' state before the call, if the call already ran.
        """
        if before is None:
            before = self._ids_before(task, t)
        expected = self._expected_create(task, t, fail_at, late, holds)
        try:
            fd = call()
        except BpfnsError as e:
            self.expect(
                "failures match the model",
                isinstance(expected, str) and e.errorcode == expected,
                f"{e!r}, model {expected!r}",
            )
            self._check_failed(task, t, before)
            return multiple()
        assert task.files is not None  # the call returned: the task is alive
        installed = dict(task.files.items())
        # D3's 0 is no new fd: fd 0 is free, or holds what the model already tracked.
        known = 0 in self.fd_of.get(task, {})
        d3 = self.k.behavior.d3_create_returns_zero and fd == 0 and (0 not in installed or known)
        self.expect(  # the RFC's D3 by name: the id allocation failed, the call said 0
            "D3: a create whose id allocation failed returns 0",
            not (d3 and expected in ("ENOMEM", "ENOSPC")),
            f"the kernel returned 0; the model expects {expected}",
        )
        self.expect(
            "failures match the model",
            isinstance(expected, RefObj),
            f"the kernel returned fd {fd}; the model expects {expected}",
        )
        assert isinstance(expected, RefObj)
        obj: BpfObject = _open_file(task, fd).obj
        self._pair(obj, expected)
        self._check_created(task, fd, obj, expected)
        return self._track_fd(task, fd, expected)

    # -- rules: tasks and namespaces -------------------------------------------------------

    @initialize(target=tasks)
    def boot(self) -> Task:
        """The initial task; ``initial_objects`` maps held by a task outside the bundles."""
        init = self.k.init_task
        if self.initial_objects:
            holder = init.clone()
            self.fd_of[holder] = {}
            assert holder.files is not None
            holder.files.nofile = self.initial_objects + 1
            for _ in range(self.initial_objects):
                fd = holder.map_create()
                made = self.model.create(self.ns_of[self.k.init_ns], ObjType.MAP)
                assert isinstance(made, RefObj)
                self._pair(_open_file(holder, fd).obj, made)
                self.fd_of[holder][fd] = _OpenFile(made)
        return init

    @rule(target=tasks, parent=tasks, new_ns=st.booleans())
    def clone(self, parent: Task, new_ns: bool) -> Any:
        """``clone3`` with or without CLONE_NEWBPF; the child copies the fd table."""
        if not parent.alive:
            return multiple()
        try:
            child = parent.clone(CLONE_NEWBPF if new_ns else 0)
        except BpfnsError as e:
            self.expect(
                "namespace limits",
                e.errorcode == "ENOSPC" and parent.bpf_ns.level + 1 > self.max_level,
                f"clone(CLONE_NEWBPF) from level {parent.bpf_ns.level}: {e!r}",
            )
            return multiple()
        return self._cloned(parent, child, new_ns)

    @rule(target=tasks, parent=tasks)
    def clone_user(self, parent: Task) -> Any:
        """``clone3(CLONE_NEWUSER)``: a child without capabilities in the initial user ns.

        It has every capability in its own user namespace, so it may create namespaces,
        but its bpf() commands are refused (EPERM).
        """
        if not parent.alive:
            return multiple()
        return self._cloned(parent, parent.clone(CLONE_NEWUSER), False)

    @rule(target=tasks, parent=tasks, new_ns=st.booleans(), n=st.integers(1, 8))
    def clone_failing(self, parent: Task, new_ns: bool, n: int) -> Any:
        """``clone3`` with its n-th allocation failing: ENOMEM, and nothing changes."""
        if not parent.alive or (new_ns and parent.bpf_ns.level >= self.max_level):
            return multiple()
        before = self._before()
        self.k.faults.fail_nth(n)
        try:
            child = parent.clone(CLONE_NEWBPF if new_ns else 0)
        except BpfnsError as e:
            self.expect("failures match the model", e.errorcode == "ENOMEM", repr(e))
            self._unchanged_since(before, "clone", "a clone whose allocation failed")
            return multiple()
        finally:
            self.k.faults.disarm()
        return self._cloned(parent, child, new_ns)

    def _before(self) -> Snapshot | None:
        """A snapshot to compare after a refused call, when the world is small enough."""
        return self.k.snapshot() if self._small() else None

    def _unchanged_since(self, before: Snapshot | None, call: str, what: str) -> None:
        """Invariant "failed operations are atomic": only the documented leftovers."""
        if before is not None:
            changed = before.unexpected(self.k.snapshot(), call)
            self.expect("failed operations are atomic", changed == [], f"{what} changed {changed}")

    def _cloned(self, parent: Task, child: Task, new_ns: bool) -> Task:
        """Check and track a new child of ``parent``."""
        expected_ns = parent.bpf_ns if not new_ns else child.bpf_ns
        self.expect(
            "namespace tree",
            (child.bpf_ns.parent if new_ns else child.bpf_ns) is parent.bpf_ns,
            f"{child!r} landed in {expected_ns.label()}",
        )
        self.fd_of[child] = dict(self.fd_of[parent])
        for file in self.fd_of[child].values():
            file.count += 1
        self._check_ucounts()
        return child

    @rule(task=tasks)
    def unshare(self, task: Task) -> None:
        """``unshare(CLONE_NEWBPF)``: the task moves into a new child namespace."""
        if not task.alive or task.bpf_ns.level >= self.max_level:
            return
        old = task.bpf_ns
        task.unshare(CLONE_NEWBPF)
        self.expect("namespace tree", task.bpf_ns.parent is old, "unshare moved elsewhere")
        self._check_ucounts()

    @rule(target=tasks, task=consumes(tasks))
    def exit(self, task: Task) -> Any:
        """``exit``: namespaces first, then every fd (the RFC's D8 order)."""
        if task is self.k.init_task or not task.alive:
            return task if task.alive else multiple()
        if any(p.task is task for p in self.pending):
            with contextlib.suppress(ValueError):  # inside BPF_LINK_CREATE: refused
                task.exit()
            self.expect("a task exits between its syscalls", task.alive, f"{task!r} exited")
            return task
        files = list(self.fd_of.pop(task).values())
        touched = {self.kobj_of[f.obj] for f in files if f.obj is not None}
        task.exit()
        freed: list[RefObj] = []
        for file in files:
            freed += self._fput(file)
        self._freed(freed)
        self._check_refs(*(o for o in touched if o.refcnt))
        return multiple()

    @rule(target=fds, task=tasks)
    def open_ns(self, task: Task) -> Any:
        """Open ``/proc/self/ns/bpf``: an fd holding a namespace reference."""
        if not task.alive:
            return multiple()
        return self._track_fd(task, task.open_proc_ns(), None)

    # -- rules: objects ------------------------------------------------------------------

    @rule(target=fds, task=tasks)
    def map_create(self, task: Task) -> Any:
        """``BPF_MAP_CREATE``."""
        if not task.alive:
            return multiple()
        return self._create(task, ObjType.MAP, task.map_create)

    @rule(target=fds, task=tasks, n=st.integers(1, 4))
    def map_create_failing(self, task: Task, n: int) -> Any:
        """``BPF_MAP_CREATE`` with the n-th of its allocations failing (fail-nth)."""
        if not task.alive:
            return multiple()
        sites = [FaultSite.OBJ_ID, FaultSite.IDR_NODE]
        self.k.faults.fail_nth(n, sites=sites)
        try:
            return self._create(task, ObjType.MAP, task.map_create, fail_at=n)
        finally:
            self.k.faults.disarm()

    @rule(
        target=fds,
        held=fds,
        late=st.sampled_from([FaultSite.BPF_OBJECT, FaultSite.FILE]),
        prog=st.booleans(),
    )
    def create_failing_late(self, held: FdRef, late: FaultSite, prog: bool) -> Any:
        """A map or program whose object (BPF_OBJECT) or file (FILE) allocation fails."""
        if not prog:
            if not self._live(held):
                return multiple()
            task = held.task
            self.k.faults.fail_nth(1, sites=[late])
            try:
                return self._create(task, ObjType.MAP, task.map_create, late=late)
            finally:
                self.k.faults.disarm()
        self.k.faults.fail_nth(1, sites=[late])
        try:
            return self._create_holding(
                held, FileKind.BPF_MAP, ObjType.PROG, lambda t, fd: t.prog_load(maps=(fd,)), late
            )
        finally:
            self.k.faults.disarm()

    def _create_holding(
        self, held: FdRef, kind: FileKind, t: ObjType, call: Any, late: FaultSite | None = None
    ) -> Any:
        """Create an object that takes a reference on the one behind ``held``."""
        if not self._live(held) or self._file_kind(held) is not kind:
            return multiple()
        task = held.task
        target = self._file_obj(held)
        assert target is not None
        holds = target if t is ObjType.PROG else None
        made = self._create(task, t, lambda: call(task, held.fd), late=late, holds=holds)
        if isinstance(made, FdRef):
            ref = self._file_obj(made)
            assert ref is not None
            if t is ObjType.PROG:
                ref.maps.append(target)
            else:
                ref.prog = target
            self.model.get(target)
            self._check_refs(_open_file(task, held.fd).obj)
        return made

    @rule(target=fds, map_fd=fds)
    def prog_load(self, map_fd: FdRef) -> Any:
        """``BPF_PROG_LOAD`` using the map behind ``map_fd``."""
        return self._create_holding(
            map_fd, FileKind.BPF_MAP, ObjType.PROG, lambda t, fd: t.prog_load(maps=(fd,))
        )

    @rule(target=fds, prog_fd=fds)
    def link_create(self, prog_fd: FdRef) -> Any:
        """``BPF_LINK_CREATE`` on the program behind ``prog_fd``."""
        return self._create_holding(
            prog_fd, FileKind.BPF_PROG, ObjType.LINK, lambda t, fd: t.link_create(fd)
        )

    @rule(target=primers, prog_fd=fds)
    def prime(self, prog_fd: FdRef) -> Any:
        """``bpf_link_prime``: the link's ids exist, but lookups say EAGAIN until settled."""
        if not self._live(prog_fd) or self._file_kind(prog_fd) is not FileKind.BPF_PROG:
            return multiple()
        task = prog_fd.task
        prog = self._file_obj(prog_fd)
        assert prog is not None
        expected = self._expected_create(task, ObjType.LINK, 0, None)
        try:
            primer = task.link_prime(prog_fd.fd)
        except BpfnsError as e:
            self.expect(
                "failures match the model",
                isinstance(expected, str) and e.errorcode == expected,
                f"{e!r}, model {expected!r}",
            )
            return multiple()
        assert isinstance(expected, RefObj)
        self._pair(primer.link, expected)
        self._check_ids(primer.link, primer.obj_id, expected)
        expected.prog, expected.settled = prog, False
        self.model.get(prog)
        primed = Primed(task, primer, expected)
        self.pending.append(primed)
        return primed

    @rule(target=fds, primed=consumes(primers))
    def settle(self, primed: Primed) -> Any:
        """``bpf_link_settle``: the link is published and gets its fd."""
        self.pending.remove(primed)
        fd = primed.primer.settle()
        primed.link.settled = True
        made = self._track_fd(primed.task, fd, primed.link)
        self.info(made)
        return made

    @rule(primed=consumes(primers))
    def cleanup(self, primed: Primed) -> None:
        """``bpf_link_cleanup``: the attachment failed; the link and its ids go."""
        self.pending.remove(primed)
        primed.primer.cleanup()
        self._freed(self.model.put(primed.link))

    @rule(task=tasks, which=st.integers(0, len(MISUSES) - 1))
    def misuse(self, task: Task, which: int) -> None:
        """A call no C caller could make, or one with another Kernel's objects.

        It must be refused with TypeError, ValueError or EBADF, and change nothing.
        """
        if not task.alive:
            return
        before = self._before()
        error = run_misuse(which, task, self.other)
        self.expect(
            "bad input gets a clear error",
            isinstance(error, TypeError | ValueError | BpfnsError),
            f"{MISUSES[which][0]}: {error!r}",
        )
        self._unchanged_since(before, "", MISUSES[which][0])

    def _file_kind(self, ref: FdRef) -> FileKind:
        return _open_file(ref.task, ref.fd).kind

    @rule(ref=consumes(fds))
    def close(self, ref: FdRef) -> None:
        """``close``: the last reference frees the object and its ids."""
        if not self._live(ref):
            return
        kfile = _open_file(ref.task, ref.fd)
        file = self.fd_of[ref.task].pop(ref.fd)
        ref.task.close(ref.fd)
        self._freed(self._fput(file))
        if file.obj is not None and kfile.obj.refcnt:
            self._check_refs(kfile.obj)

    @rule(target=fds, ref=fds, to=tasks)
    def send(self, ref: FdRef, to: Task) -> Any:
        """Pass an fd to another task (SCM_RIGHTS)."""
        if not self._live(ref) or not to.alive:
            return multiple()
        file = self.fd_of[ref.task][ref.fd]
        new = ref.task.send_fd(ref.fd, to)
        file.count += 1
        self.fd_of[to][new] = file
        received = FdRef(to, new)
        self.info(received)  # the step touched the receiver's view of the object
        return received

    @rule(ref=fds, slot=st.integers(0, len(_PINS) - 1))
    def pin(self, ref: FdRef, slot: int) -> None:
        """``BPF_OBJ_PIN`` at one of a few bpffs paths."""
        if not self._live(ref) or self._file_obj(ref) is None:
            return
        if _PINS[slot] in self.k.bpffs.paths():
            return
        ref.task.obj_pin(ref.fd, _PINS[slot])
        obj = self._file_obj(ref)
        assert obj is not None
        self.model.get(obj)
        self._check_refs(_open_file(ref.task, ref.fd).obj)

    @rule(task=tasks, slot=st.integers(0, len(_PINS) - 1))
    def unpin(self, task: Task, slot: int) -> None:
        """``unlink`` a pin."""
        path = _PINS[slot]
        if not task.alive or path not in self.k.bpffs.paths():
            return
        kobj = self.k.bpffs.lookup(path)
        task.unlink(path)
        self._freed(self.model.put(self.obj_of[kobj]))

    @rule(target=fds, task=tasks, slot=st.integers(0, len(_PINS) - 1))
    def obj_get(self, task: Task, slot: int) -> Any:
        """``BPF_OBJ_GET``: open a pin, from any namespace (bpffs is not namespaced)."""
        path = _PINS[slot]
        if not task.alive or path not in self.k.bpffs.paths():
            return multiple()
        obj = self.obj_of[self.k.bpffs.lookup(path)]
        opened = self._track_fd(task, task.obj_get(path), obj)
        self.model.get(obj)
        self.info(opened)  # the step touched this task's view of the object
        return opened

    @rule()
    def grace_period(self) -> None:
        """``synchronize_rcu``: programs freed earlier release their maps."""
        self.k.synchronize_rcu()
        self._freed(self.model.grace_period())
        self._check_ucounts()

    # -- rules: lookups -------------------------------------------------------------------

    @rule(task=tasks, t=st.sampled_from(ObjType), start=st.integers(0, 8))
    def walk(self, task: Task, t: ObjType, start: int) -> None:
        """GET_NEXT_ID from ``start``: the next few ids equal the model's."""
        if not task.alive:
            return
        get_next = getattr(task, f"{t.name.lower()}_get_next_id")
        if not self._may_look_up(task):
            refused = errorcode_of(lambda: get_next(start))
            self.expect("capabilities gate lookups", refused == "EPERM", f"{task!r}: {refused}")
            return
        got: list[int] = []
        cur = start
        while len(got) < _WALK_LIMIT:
            try:
                cur = get_next(cur)
            except BpfnsError:
                break
            got.append(cur)
        ids = self._ref_ns(task.bpf_ns).ids[t]
        bounds = [start, *got] + ([self.id_end] if len(got) < _WALK_LIMIT else [])
        ok = all(nr in ids for nr in got) and all(
            _none_between(ids, lo, hi) for lo, hi in itertools.pairwise(bounds)
        )
        if not ok:
            want = RefModel.listing(self._ref_ns(task.bpf_ns), t, start, _WALK_LIMIT)
            raise InvariantViolation(
                "GET_NEXT_ID lists the namespace's ids",
                f"{task.bpf_ns.label()} {t.name} from {start}: kernel {got}, model {want}",
            )

    @rule(target=fds, task=tasks, t=st.sampled_from(ObjType), nr=st.integers(0, 8))
    def get_fd_by_id(self, task: Task, t: ObjType, nr: int) -> Any:
        """GET_FD_BY_ID finds exactly the model's object, in the caller's namespace."""
        if not task.alive:
            return multiple()
        want = self._ref_ns(task.bpf_ns).ids[t].get(nr)
        expected = "ENOENT" if want is None else None if want.settled else "EAGAIN"
        if not self._may_look_up(task):
            expected = "EPERM"
        try:
            fd = getattr(task, f"{t.name.lower()}_get_fd_by_id")(nr)
        except BpfnsError as e:
            self.expect(
                "lookups stay in the caller's namespace",
                expected is not None and e.errorcode == expected,
                f"{t.name} {nr} in {task.bpf_ns.label()}: {e!r}, model has {want}",
            )
            return multiple()
        self.expect(
            "lookups stay in the caller's namespace",
            expected is None,
            f"{t.name} {nr} in {task.bpf_ns.label()} opened; the model expects {expected}",
        )
        obj = _open_file(task, fd).obj
        self.expect(
            "lookups stay in the caller's namespace",
            want is not None and self.obj_of.get(obj) is want,
            f"{t.name} {nr} in {task.bpf_ns.label()} opened {obj!r}",
        )
        assert want is not None
        self.model.get(want)
        return self._track_fd(task, fd, want)

    @precondition(lambda self: self.concurrency)
    @rule(target=fds, task=tasks, nr=st.integers(0, 8), schedule=schedules(2))
    def concurrent_create_and_lookup(self, task: Task, nr: int, schedule: Schedule) -> Any:
        """MAP_CREATE and MAP_GET_FD_BY_ID(nr) by two threads of ``task``, at once.

        The create must do what the model says; the lookup must give what the model
        gives either before the create or after it (the calls are linearizable): ENOENT,
        or an fd for the map with id ``nr``.
        """
        if not task.alive:
            return multiple()
        ids = self._ref_ns(task.bpf_ns).ids[ObjType.MAP]
        maybe = [ids.get(nr)]
        before = self._ids_before(task, ObjType.MAP)
        self.sched.strategy = Follow(schedule.choices)
        (made, err), (found, lookup_err) = self.sched.run(
            [task.map_create, lambda: task.map_get_fd_by_id(nr)]
        )
        for error in (err, lookup_err):
            if error is not None and not isinstance(error, BpfnsError):
                raise error
        created = self._create(task, ObjType.MAP, lambda: _result(made, err), before=before)
        maybe.append(ids.get(nr))
        if not self._may_look_up(task):
            code = errorcode_of(lambda: _result(found, lookup_err))
            self.expect("capabilities gate lookups", code == "EPERM", f"{task!r}: {code}")
            return created
        if lookup_err is not None:
            self.expect(
                "concurrent calls are linearizable",
                None in maybe and errorcode_of(lambda: _result(None, lookup_err)) == "ENOENT",
                f"MAP_GET_FD_BY_ID({nr}) raised {lookup_err!r}; the model has {maybe}",
            )
            return created
        assert isinstance(found, int)
        obj = self.obj_of.get(_open_file(task, found).obj)
        self.expect(
            "concurrent calls are linearizable",
            obj is not None and obj in maybe,
            f"MAP_GET_FD_BY_ID({nr}) opened {obj}; the model has {maybe}",
        )
        assert obj is not None
        self.model.get(obj)
        looked = self._track_fd(task, found, obj)
        return multiple(*[r for r in (created, looked) if isinstance(r, FdRef)])

    @rule(ref=fds)
    def info(self, ref: FdRef) -> None:
        """GET_INFO_BY_FD: the id is the one the task's namespace should see."""
        if not self._live(ref) or self._file_obj(ref) is None:
            return
        obj = self._file_obj(ref)
        assert obj is not None
        kobj = _open_file(ref.task, ref.fd).obj
        want = self.model.vnr(obj, self._ref_ns(ref.task.bpf_ns))
        got = ref.task.obj_get_info_by_fd(ref.fd).id
        self.expect(
            "ancestor visibility",
            got == want,
            f"{kobj!r} seen from {ref.task.bpf_ns.label()}: kernel {got}, model {want}",
        )

    def teardown(self) -> None:
        """The whole-world check, once per example; then nothing may leak."""
        if self.cpus is not None:
            self.cpus.close()
        if self._failed or self.k.tainted:
            return  # the example already failed: keep its error
        if self.check_at_teardown:
            self.k.check()
        if self.trace:
            again = replay(self.k.trace)
            self.expect(
                "the trace replays",
                again.snapshot() == self.k.snapshot(),
                "replay(k.trace) built a different world",
            )
        if self.check_leftovers:
            self.k.teardown()
            left = self.k.leftovers()
            self.expect("nothing leaks", left == [], "; ".join(map(str, left)))
