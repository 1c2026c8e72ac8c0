"""One simulated machine: ``bpfns.Kernel`` ties the namespace tree, ids, slabs and RCU together.

Every piece of mutable state lives in a Kernel instance; two Kernels share nothing.
"""

from __future__ import annotations

import errno
import functools
from typing import Any, ClassVar, cast

import attrs

from ._args import check_int, check_label
from ._behavior import FIXED, RFC, Behavior
from ._bpf_namespace import (
    CLONE_NEWBPF,
    MAX_BPF_NS_LEVEL,
    PROC_BPF_INIT_INO,
    PROC_DYNAMIC_FIRST,
    Namespace,
    ObjType,
    create_bpf_namespace,
    live_namespace,
)
from ._bpf_object import (
    AuditRecord,
    BpfObject,
    BpfProg,
    LinkPrimer,
    check_objects,
    check_primers,
)
from ._bpffs import Bpffs
from ._capability import ALL_CAPS, Cred
from ._errors import BpfnsError, InvariantViolation, KernelBug
from ._fault import FaultInjector, FaultSite
from ._files import FdTable, File, FileKind
from ._idr import INT_MAX, Ida, Idr
from ._obj_id import IdRecord, ObjId, alloc_obj_id, free_obj_id
from ._policy import ObjIdPolicy, PidPolicy
from ._rcu import Rcu
from ._sanitizer import OnBug, Report, Sanitizer
from ._slab import KmemCache, Slot
from ._snapshot import Leftover, Snapshot, World, find_leftovers, take_snapshot
from ._syscall import vnr_namespace
from ._task import Nsproxy, Task, check_tasks, make_task_dead
from ._trace import TaskCreated, Trace, Tracer, traced
from ._ucount import (
    DEFAULT_INIT_UCOUNT_MAX,
    Ucounts,
    UcountType,
    UserNamespace,
    all_ucounts,
    check_user_namespaces,
    get_user_ns,
    live_user_ns,
    new_init_user_ns,
)

__all__ = ["Kernel"]

#: ``PID_MAX_LIMIT`` on 64-bit (kernel.md C.1); the initial pid namespace's bound.
PID_MAX_LIMIT = 4 * 1024 * 1024


class _Current:
    """The context of one syscall: sets ``current`` and restores the caller's."""

    __slots__ = ("kernel", "previous", "task")

    def __init__(self, kernel: Kernel, task: Task) -> None:
        self.kernel, self.task = kernel, task
        self.previous: Task | None = None

    def __enter__(self) -> None:
        self.previous, self.kernel._current = self.kernel._current, self.task

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is not None and issubclass(exc_type, KernelBug):
                make_task_dead(self.task)  # the oops kills the task that hit it
        finally:
            self.kernel._current = self.previous


@attrs.define(eq=False, repr=False)
class Kernel:
    """One simulated Linux kernel with the BPF namespace RFC applied.

    Args:
        behavior: :data:`bpfns.RFC` (the patch as posted, the default) or
            :data:`bpfns.FIXED`, or any :class:`bpfns.Behavior` in between.
        id_end: the ``end`` argument passed to ``idr_alloc_cyclic`` for object ids
            (exclusive). The RFC passes INT_MAX; ``id_end=4`` hands out 1, 2, 3 at every
            level, so wrap-around and ENOSPC are reachable in tests.
        max_level: ``MAX_BPF_NS_LEVEL`` (32 in the RFC).
        on_bug: ``"raise"`` a :class:`bpfns.KernelBug` when the sanitizer catches a
            memory bug, or ``"record"`` it and go on as the C code would.
        ucount_max: the initial ``max_*_namespaces`` limits of ``init_user_ns``
            (the kernel uses ``max_threads / 2``).
        trace: record every action as an event in :attr:`trace` (off by default: a
            kernel without tracing keeps nothing and pays one test per action).

    >>> k = Kernel()
    >>> child = k.init_ns.create_child()
    >>> oid = k.alloc_obj_id(child, "my map", ObjType.MAP)
    >>> [(e.ns.level, e.nr) for e in oid.numbers]
    [(0, 1), (1, 1)]
    """

    _trace_kind: ClassVar[str] = "kernel"
    behavior: Behavior = attrs.field(default=RFC)
    id_end: int = attrs.field(default=INT_MAX, kw_only=True)
    max_level: int = attrs.field(default=MAX_BPF_NS_LEVEL, kw_only=True)
    on_bug: OnBug = attrs.field(default="raise", kw_only=True)
    ucount_max: int = attrs.field(default=DEFAULT_INIT_UCOUNT_MAX, kw_only=True)
    _trace_on: bool = attrs.field(default=False, kw_only=True, alias="trace", repr=False)
    _tracer: Tracer | None = attrs.field(init=False, default=None, repr=False)

    faults: FaultInjector = attrs.field(init=False, factory=FaultInjector)
    init_user_ns: UserNamespace = attrs.field(init=False)
    init_ns: Namespace = attrs.field(init=False)
    _step: int = attrs.field(init=False, default=0)
    _sanitizer: Sanitizer = attrs.field(init=False)
    _rcu: Rcu = attrs.field(init=False, factory=Rcu)
    _inum_ida: Ida = attrs.field(init=False, factory=Ida)
    _next_addr: int = attrs.field(init=False, default=0xFFFF888000000000)
    _ns_cache: KmemCache[Slot] = attrs.field(init=False)
    _obj_id_caches: dict[int, KmemCache[IdRecord]] = attrs.field(init=False, factory=dict)
    #: Namespaces not yet freed, in creation order (a dict: the order is deterministic).
    _namespaces: dict[Namespace, None] = attrs.field(init=False, factory=dict)
    init_task: Task = attrs.field(init=False)
    bpffs: Bpffs = attrs.field(init=False)
    audit_log: list[AuditRecord] = attrs.field(init=False, factory=list)
    dmesg: list[str] = attrs.field(init=False, factory=list)
    _current: Task | None = attrs.field(init=False, default=None)
    _tasks: dict[int, Task] = attrs.field(init=False, factory=dict)
    _pid_idr: Idr = attrs.field(init=False, factory=Idr)
    #: Every BPF object not yet freed, in creation order.
    _bpf_objects: dict[BpfObject, None] = attrs.field(init=False, factory=dict)
    #: The pending link primers (BPF_LINK_CREATE calls between prime and settle).
    _primers: dict[LinkPrimer, None] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.behavior, Behavior):
            raise TypeError(f"behavior must be a bpfns.Behavior, not {self.behavior!r}")
        self.id_end = check_int("id_end", self.id_end, 2, INT_MAX, "int")
        self.max_level = check_int("max_level", self.max_level, 0, MAX_BPF_NS_LEVEL, "int")
        self.ucount_max = check_int("ucount_max", self.ucount_max, 0, INT_MAX, "int")
        if not isinstance(self._trace_on, bool):
            raise TypeError(f"trace must be True or False, not {self._trace_on!r}")
        tracer = self._tracer = Tracer() if self._trace_on else None
        self._sanitizer = Sanitizer(self.on_bug, tracer=tracer)
        self.faults._tracer = self._rcu.tracer = tracer
        self.init_user_ns = new_init_user_ns(self.ucount_max, tracer, self.faults)
        self._ns_cache = KmemCache("bpf_namespace", 0, self._alloc_addr)
        get_user_ns(self.init_user_ns, "bpf_ns")
        self.init_ns = Namespace(
            kernel=self,
            level=0,
            parent=None,
            user_ns=self.init_user_ns,
            inum=PROC_BPF_INIT_INO,
            idr=(Idr(), Idr(), Idr()),
            obj_id_cachep=self._new_obj_id_cache(0),
            policy=self._new_policy(),
            name=None,
        )
        self.bpffs = Bpffs(self)
        if tracer is not None:
            tracer.ref(self)
            tracer.ref(self.faults)
            tracer.kernel_created(self)
        get_user_ns(self.init_user_ns, "cred")
        init_cred = Cred(0, self.init_user_ns, ALL_CAPS)
        self.init_task = self._new_task(init_cred, Nsproxy(self.init_ns), FdTable(), 0, "init")

    def __repr__(self) -> str:
        preset = {RFC: "RFC", FIXED: "FIXED"}.get(self.behavior)
        return (
            f"<Kernel behavior={preset or self.behavior.defects()} id_end={self.id_end} "
            f"namespaces={len(self._namespaces) + 1} step={self._step}>"
        )

    def _repr_html_(self) -> str:
        """Notebooks: the kernel's repr and its namespace tree."""
        from ._render import kernel_html  # noqa: PLC0415 - rendering imports this module

        return kernel_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: the repr and the tree."""
        p.text(repr(self) if cycle else f"{self!r}\n{self.init_ns.tree()}")

    # -- plumbing -------------------------------------------------------------------

    #: The ucount a new namespace is charged to (pid namespaces use their own).
    _ns_ucount = UcountType.BPF_NAMESPACES

    def _new_policy(self) -> ObjIdPolicy | PidPolicy:
        """The allocation policy of a new namespace: ids ``[1, id_end)``."""
        return ObjIdPolicy(self.id_end)

    def _alloc_addr(self) -> int:
        self._next_addr += 0x100
        return self._next_addr

    def _new_obj_id_cache(self, level: int) -> KmemCache[IdRecord]:
        # D4: level 0 uses a second "pid" cache, as posted (rfc.md 2.1); harmless here.
        name = "pid" if level == 0 else f"bpf_{level + 1}"
        cache = KmemCache(name, level + 1, self._alloc_addr, functools.partial(IdRecord, self))
        self._obj_id_caches[level] = cache
        return cache

    def _obj_id_cache(self, level: int) -> KmemCache[IdRecord]:
        """``create_bpf_cachep(level)``: the shared per-level cache, created on first use."""
        cache = self._obj_id_caches.get(level)
        if cache is not None:
            return cache
        if self.faults.armed and self.faults.should_fail(FaultSite.KMEM_CACHE):
            raise BpfnsError(errno.ENOMEM, "create_bpf_cachep failed (injected failure)")
        return self._new_obj_id_cache(level)

    def _new_task(
        self, cred: Cred, nsproxy: Nsproxy, files: FdTable, tgid: int, name: str | None
    ) -> Task:
        """Give a new task a pid (``alloc_pid``: cyclic, from 1) and register it."""
        task = Task(self, 0, tgid, cred, nsproxy, files, name)
        task.pid = self._pid_idr._alloc_cyclic(task, 1, PID_MAX_LIMIT - 1)
        task.tgid = tgid or task.pid
        self._tasks[task.pid] = task
        if self._tracer is not None:
            self._tracer.emit(TaskCreated(self._tracer.step, self._tracer.ref(task), task.pid))
        return task

    def _release_task(self, task: Task) -> None:
        """``release_task``: the pid is free again."""
        self._pid_idr._remove(task.pid)
        del self._tasks[task.pid]

    def tasks(self) -> list[Task]:
        """The live tasks, by pid.

        >>> k = Kernel()
        >>> _ = k.init_task.clone()
        >>> [t.pid for t in k.tasks()]
        [1, 2]
        """
        return [self._tasks[pid] for pid in sorted(self._tasks)]

    def find_task(self, pid: int) -> Task:
        """``find_task_by_vpid`` in the initial pid namespace.

        Raises:
            BpfnsError: ESRCH if no live task has ``pid``.

        >>> Kernel().find_task(1).name
        'init'
        """
        check_int("pid", pid, 0, INT_MAX, "pid_t")
        task = self._tasks.get(pid)
        if task is None:
            raise BpfnsError(errno.ESRCH, f"no live task with pid {pid}")
        return task

    def _own_task(self, task: object, what: str) -> Task:
        """``task`` if it is a live Task of this Kernel; ``what`` names the argument."""
        if not isinstance(task, Task):
            raise TypeError(f"{what} must be a bpfns.Task, not {type(task).__name__}")
        if task.kernel is not self:
            raise ValueError(f"{what}: {task!r} belongs to another Kernel")
        if not task.alive:
            raise ValueError(f"{what}: {task!r} has exited; use a live task")
        return task

    def _syscall(self, task: Task, name: str) -> _Current:
        """Run kernel code as ``current = task`` (one step of the operation counter).

        Use as ``with k._syscall(task, "bpf(...)"):``; a plain class, not a generator,
        because every syscall of every fuzz step enters it.
        """
        if not task.alive:
            raise ValueError(f"{name}: {task!r} has exited; use a live task")
        self._step += 1
        return _Current(self, task)

    def _vnr(self, obj: BpfObject, what: str = "bpf_obj_id_vnr") -> int:
        """``bpf_obj_id_vnr(obj->obj_id)``: the id in ``current``'s namespace (D6, D8).

        Every object reachable from a file, pin or holder has its id record.
        """
        assert obj.obj_id is not None
        ns = vnr_namespace(self, what)
        return 0 if ns is None else obj.obj_id.nr_ns(ns)

    def _audit(self, prog: BpfObject, op: str) -> None:
        """``bpf_audit_prog``: an AUDIT_BPF record with ``prog-id=vnr``.

        ``pid`` is the task running the code, 0 for a kernel thread (no current task).
        """
        prog_id = self._vnr(prog, "bpf_audit_prog")
        pid = 0 if self._current is None else self._current.pid
        self.audit_log.append(AuditRecord(op, prog_id, pid))

    @staticmethod
    def _obj_type(type_: object) -> ObjType:
        if type_.__class__ is ObjType:
            return type_
        if isinstance(type_, bool) or not isinstance(type_, int):
            raise TypeError(f"type must be a bpfns.ObjType, not {type(type_).__name__}")
        try:
            return ObjType(type_)
        except ValueError:
            raise ValueError(f"type={type_} is not an ObjType (MAP=0, PROG=1, LINK=2)") from None

    # -- public views ---------------------------------------------------------------

    @property
    def step(self) -> int:
        """How many operations this kernel has run (reports carry it)."""
        return self._step

    @property
    def trace(self) -> Trace:
        """The recorded events (see :mod:`bpfns` tracing and :func:`bpfns.replay`).

        Raises:
            ValueError: if this kernel was built without ``trace=True``.

        >>> k = Kernel(trace=True)
        >>> k.trace[0].kind, k.trace[1].kind
        ('kernel', 'ns_created')
        """
        if self._tracer is None:
            raise ValueError("this Kernel does not trace; build it with Kernel(trace=True)")
        return self._tracer.trace

    @property
    def reports(self) -> list[Report]:
        """Every sanitizer :class:`bpfns.Report`, oldest first (kept with tracing off)."""
        return self._sanitizer.reports

    @property
    def tainted(self) -> bool:
        """Whether a memory bug was reported: the simulated kernel's state is suspect."""
        return self._sanitizer.tainted

    @property
    def rcu_pending(self) -> tuple[str, ...]:
        """The ``call_rcu`` callbacks waiting for :meth:`synchronize_rcu`."""
        return self._rcu.pending

    def bpf_objects(self) -> list[BpfObject]:
        """Every BPF object not yet freed (maps, programs, links), in creation order.

        An object whose last reference is gone but whose final free waits for a grace
        period (a program) is listed, with ``refcnt`` 0, until :meth:`synchronize_rcu`.

        >>> k = Kernel()
        >>> _ = k.init_task.map_create(name="m")
        >>> k.bpf_objects()
        [<BpfMap 'm' id=1 refcnt=1>]
        """
        return list(self._bpf_objects)

    def link_primers(self) -> list[LinkPrimer]:
        """The pending :class:`bpfns.LinkPrimer` records (BPF_LINK_CREATE in progress).

        >>> k = Kernel()
        >>> t = k.init_task
        >>> primer = t.link_prime(t.prog_load())
        >>> k.link_primers()
        [<LinkPrimer pid=1 fd=1 id=1 pending>]
        """
        return list(self._primers)

    def user_namespaces(self) -> list[UserNamespace]:
        """``init_user_ns`` and every user namespace not yet freed, in creation order.

        >>> k = Kernel()
        >>> _ = k.init_user_ns.create_child(owner=1000)
        >>> [u.level for u in k.user_namespaces()]
        [0, 1]
        """
        return list(self.init_user_ns.registry.live)

    def namespaces(self) -> list[Namespace]:
        """``init_ns`` and every namespace not yet freed, parents before children.

        Sorted by level, then inode number; a destroyed namespace waiting for its RCU
        free shares its number with a newer one, and the older comes first.

        >>> k = Kernel()
        >>> _ = k.init_ns.create_child()
        >>> [ns.level for ns in k.namespaces()]
        [0, 1]
        """
        rest = sorted(self._namespaces, key=lambda ns: (ns.level, ns.inum))
        return [self.init_ns, *rest]

    # -- namespaces -----------------------------------------------------------------

    @traced
    def copy_bpfns(
        self,
        flags: int,
        user_ns: UserNamespace,
        old_ns: Namespace,
        *,
        euid: int = 0,
        name: str | None = None,
    ) -> Namespace:
        """``copy_bpfns``: share ``old_ns`` or, with CLONE_NEWBPF, create its child.

        Without ``CLONE_NEWBPF`` in ``flags`` it returns ``old_ns`` with a new reference
        (``get_bpfns``). With it, it runs ``create_bpf_namespace(user_ns, old_ns)``
        (rfc.md 2.2); the parent is ``old_ns`` itself. ``euid`` is the caller's
        effective uid, charged in ``max_bpf_namespaces``. The caller owns one reference
        on the result; drop it with :meth:`Namespace.put`.

        Raises:
            BpfnsError: EINVAL if ``user_ns`` is not ``old_ns``'s owner or a descendant;
                ENOSPC above ``max_level`` or when ``max_bpf_namespaces`` is exhausted at
                any ancestor user namespace; ENOMEM when an injected allocation fails.
                Nothing changes, except that a per-level id cache created on the way
                stays (the kernel never destroys those caches).
            TypeError, ValueError: for arguments of the wrong type, of another
                Kernel, a dead ``old_ns`` or a freed ``user_ns`` (checked before
                anything is charged or allocated).

        >>> k = Kernel()
        >>> ns = k.copy_bpfns(CLONE_NEWBPF, k.init_user_ns, k.init_ns)
        >>> ns.parent is k.init_ns, ns.level
        (True, 1)
        """
        flags = check_int("flags", flags, 0, 0xFFFFFFFFFFFFFFFF, "u64")
        old = live_namespace(old_ns, "old_ns", self)
        owner = live_user_ns(user_ns, "user_ns", self.init_user_ns)
        uid = check_int("euid", euid, 0, 0xFFFFFFFE, "uid")
        label = check_label("name", name)
        self._step += 1
        if not flags & CLONE_NEWBPF:
            return old.get()
        return create_bpf_namespace(self, owner, old, uid, label)

    # -- object ids -----------------------------------------------------------------

    #: ``bpf_alloc_obj_id`` and ``bpf_free_obj_id``, defined with the id records in
    #: :mod:`bpfns._obj_id`: a public call is one Python call, checks and fast path
    #: included (issue 7).
    alloc_obj_id = alloc_obj_id
    free_obj_id = free_obj_id

    @traced
    def translate(self, type: ObjType, nr: int, from_ns: Namespace, to_ns: Namespace) -> int:
        """The id that the object numbered ``nr`` in ``from_ns`` has in ``to_ns``.

        ``idr_find`` in ``from_ns``, then ``bpf_obj_id_nr_ns(obj_id, to_ns)``: 0 when
        the object is not visible from ``to_ns`` (subject to D6).

        Raises:
            BpfnsError: ENOENT if ``from_ns`` has no object ``nr`` of that type.
            TypeError, ValueError: for bad arguments.

        >>> k = Kernel()
        >>> child = k.init_ns.create_child()
        >>> _ = k.alloc_obj_id(k.init_ns, "other", ObjType.MAP)
        >>> _ = k.alloc_obj_id(child, "mine", ObjType.MAP)
        >>> k.translate(ObjType.MAP, 1, child, k.init_ns)
        2
        """
        type_ = self._obj_type(type)
        src = live_namespace(from_ns, "from_ns", self)
        dst = live_namespace(to_ns, "to_ns", self)
        check_int("nr", nr, 0, INT_MAX, "int")
        found = src.idr[type_].find(nr)
        if found is None:
            raise BpfnsError(
                errno.ENOENT, f"no {type_.name} with id {nr} in {src.label()}; list its ids"
            )
        result: int = found.nr_ns(dst)
        return result

    # -- RCU ------------------------------------------------------------------------

    @traced
    def synchronize_rcu(self) -> int:
        """``synchronize_rcu``: end a grace period and run the queued callbacks.

        Returns how many callbacks ran (for example ``delayed_free_bpfns``).

        >>> k = Kernel()
        >>> k.init_ns.create_child().put()
        >>> k.synchronize_rcu()
        1
        """
        self._step += 1
        return self._rcu.synchronize()

    # -- invariants -----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A :class:`bpfns.Snapshot` of everything refcounted or owned.

        Compare one taken before a failing call with one taken after: they differ at
        most in the rows of "What a failed call leaves behind" (docs: fidelity).

        >>> k = Kernel()
        >>> before = k.snapshot()
        >>> k.init_ns.create_child().put()
        >>> k.snapshot() == before, k.snapshot().inums
        (False, ())
        """
        return take_snapshot(self._world(), self.slabinfo(), tuple(self._inum_ida.ids()))

    def leftovers(self) -> list[Leftover]:
        """What is still live beyond this Kernel's initial state, as :class:`bpfns.Leftover`.

        The initial state is a fresh Kernel: ``init_task`` alive with no open file,
        ``init_ns`` and ``init_user_ns`` with nothing in them. Everything else is
        listed: tasks, init's open and reserved fds, namespaces (alive, or destroyed
        and waiting for their RCU free; the one ``init_task`` moved into with
        ``unshare`` too), user namespaces, references taken on ``init_user_ns``,
        ucount charges, BPF objects, id records of :meth:`alloc_obj_id`, bpffs pins,
        pending link primers and RCU callbacks. After :meth:`teardown`, only the
        references you took yourself remain; in FIXED behaviour nothing else does.

        >>> k = Kernel()
        >>> t = k.init_task.clone()
        >>> [str(x) for x in k.leftovers()]
        ['task: <Task pid=2 euid=0 bpf_ns=init_bpf_ns>']
        >>> k.teardown(); k.leftovers()
        []
        """
        raw = [h for h in self._live_obj_ids() if not isinstance(h.obj, BpfObject)]
        return find_leftovers(self._world(), raw)

    def _world(self) -> World:
        """Everything this Kernel holds, as the lists a :class:`bpfns.Snapshot` reads."""
        return World(
            init_task=self.init_task,
            tasks=self.tasks(),
            namespaces=self.namespaces(),
            user_namespaces=self.user_namespaces(),
            ucounts=all_ucounts(self.init_user_ns),
            objects=self.bpf_objects(),
            primers=self.link_primers(),
            pins=self.bpffs.items(),
            rcu_pending=self.rcu_pending,
            dmesg=tuple(self.dmesg),
            audit=tuple(self.audit_log),
        )

    def slabinfo(self) -> list[tuple[str, int]]:
        """``/proc/slabinfo``, reduced: ``(cache, objects allocated)`` for every cache.

        >>> Kernel().slabinfo()
        [('bpf_namespace', 0), ('pid', 0)]
        """
        caches: list[KmemCache[Any]] = [self._ns_cache, *self._obj_id_caches.values()]
        return sorted((c.name, c.active) for c in caches)

    @traced
    def teardown(self) -> None:
        """End the world's work: what is left is what nothing running holds any more.

        Every pending BPF_LINK_CREATE fails its attachment (:meth:`LinkPrimer.cleanup`),
        bpffs is unmounted (``init_task`` unlinks every pin), every task exits (highest
        pid first, ``init_task`` last), and grace periods run until no RCU callback is
        pending. The references you took yourself (namespaces, user namespaces, id
        records of :meth:`alloc_obj_id`) stay: see :meth:`leftovers`. Afterwards no task
        is left to make calls. There is no kernel function for this; it is what a
        test's cleanup does, in the kernel's own steps.

        Raises:
            KernelBug: in RFC behaviour, if a step hits a defect (D2, D8); the rest of
                the teardown does not run.

        >>> k = Kernel(FIXED)
        >>> child = k.init_task.clone(CLONE_NEWBPF)
        >>> _ = child.map_create()
        >>> k.teardown(); k.leftovers(), len(k.namespaces())
        ([], 1)
        """
        for primer in list(self._primers):
            if primer.task.alive:
                primer.cleanup()
        if self.init_task.alive:  # bpffs is unmounted: every pin is dropped
            for path in self.bpffs.paths():
                self.init_task.unlink(path)
        for task in reversed(self.tasks()):
            task.exit()
        while self._rcu.pending:
            self.synchronize_rcu()

    def check(self) -> None:
        """Verify every invariant of the world; raise :class:`bpfns.InvariantViolation`.

        Checked: each data structure's own ``_check()``; ids unique per (namespace,
        type) and every IDR entry a live record that has that id at that level; every
        live record present at each of its levels (so the root sees every live object);
        refcounts equal their holders; ucounts equal the namespaces not yet freed;
        inode numbers distinct and allocated; and, unless the behaviour reproduces D2,
        no live record references a namespace that is not alive.

        >>> Kernel().check()
        """
        try:
            self._check_structures()
        except AssertionError as exc:
            raise InvariantViolation("data structures", str(exc) or repr(exc)) from exc
        check_tasks(self)
        self._check_ids()
        self._check_refcounts()
        self._check_ucounts()
        self._check_user_namespaces()
        self._check_primers()
        self._check_rcu()
        check_objects(self)

    def _check_structures(self) -> None:
        self._inum_ida._check()
        self._ns_cache._check()
        for cache in self._obj_id_caches.values():
            cache._check()
        self.init_user_ns.registry._check()
        for primer in self._primers:
            primer._check()
        for ns in self.namespaces():
            ns._check()
        if self._tracer is not None:
            self._tracer._check()

    def _live_obj_ids(self) -> list[ObjId]:
        seen: dict[int, ObjId] = {}
        for ns in self.namespaces():
            for idr in ns.idr:
                for i, handle in idr._bits.iter_items(0):  # every allocated id, NULL or not
                    if handle is None:
                        raise InvariantViolation(
                            "no NULL entries", f"{ns.label()} holds a NULL entry at id {i}"
                        )
                    seen[id(handle)] = handle
        return list(seen.values())

    def _check_ids(self) -> None:
        handles = self._live_obj_ids()
        live = sum(c.active for c in self._obj_id_caches.values())
        for h in handles:
            if not h.live:
                raise InvariantViolation(
                    "IDR entries point to live records",
                    f"a freed record is still in an IDR: {h!r}",
                )
            slot = h._slot  # numbers[], read from the record's arrays (deepest first)
            nrs = cast("list[int]", slot.nrs[::-1])
            nss = cast("list[Namespace]", slot.nss[::-1])
            for level, (nr, ns) in enumerate(zip(nrs, nss, strict=True)):
                if ns.level != level:
                    raise InvariantViolation("ids at every level", f"{h!r} level {level}")
                alive = ns.alive
                if alive and ns.idr[h.type]._bits.get(nr) is not h:
                    raise InvariantViolation(
                        "every live id present at each level",
                        f"{h!r} is missing from {ns.label()} as {nr}",
                    )
                if not alive and not self.behavior.d2_obj_id_unpinned:
                    raise InvariantViolation(
                        "nothing live references a dead namespace",
                        f"{h!r} references {ns!r}",
                    )
        if len(handles) != live:
            raise InvariantViolation(
                "root sees every live object",
                f"{live} id records are allocated but {len(handles)} are reachable from "
                "the IDRs (a record lost its ids, or was leaked)",
            )
        for ns in self.namespaces():
            for type_ in ObjType:
                for nr, h in ns.idr[type_]:
                    rec, i = h._slot, h._slot.level - ns.level
                    if h.type is not type_ or i < 0 or (rec.nrs[i], rec.nss[i]) != (nr, ns):
                        raise InvariantViolation(
                            "ids unique per (namespace, type)",
                            f"{ns.label()} {type_.name} {nr} -> {h!r}",
                        )

    def _check_refcounts(self) -> None:
        children: dict[int, int] = {}
        for ns in self._namespaces:
            if ns.alive and ns.parent is not None:
                children[id(ns.parent)] = children.get(id(ns.parent), 0) + 1
        pins: dict[int, int] = {}
        if not self.behavior.d2_obj_id_unpinned:
            for h in self._live_obj_ids():
                pins[id(h.ns)] = pins.get(id(h.ns), 0) + 1
        nsproxies: dict[int, int] = {}
        for nsproxy in {id(t.nsproxy): t.nsproxy for t in self.tasks() if t.nsproxy}.values():
            nsproxies[id(nsproxy.bpf_ns)] = nsproxies.get(id(nsproxy.bpf_ns), 0) + 1
        files: dict[int, int] = {}
        for file in self._open_files():
            if file.kind is FileKind.BPF_NS:
                files[id(file.obj)] = files.get(id(file.obj), 0) + 1
        for ns in self._namespaces:
            want = {
                "child": children.get(id(ns), 0),
                "obj_id": pins.get(id(ns), 0),
                "nsproxy": nsproxies.get(id(ns), 0),
                "file": files.get(id(ns), 0),
            }
            got = {k: ns._holders[k] for k in want}
            if got != want:
                raise InvariantViolation(
                    "refcounts equal their holders", f"{ns!r}: counted {got}, found {want}"
                )

    def _open_files(self) -> list[File]:
        """Every distinct open File in every live task's table."""
        tables = {id(t.files): t.files for t in self.tasks() if t.files is not None}
        seen = {id(f): f for table in tables.values() for _, f in table.items()}
        return list(seen.values())

    def _check_ucounts(self) -> None:
        expected: dict[tuple[int, int], int] = {}
        for ns in self._namespaces:
            assert ns._ucounts is not None
            it: Ucounts | None = ns._ucounts
            while it is not None:
                key = (id(it.ns), it.uid)
                expected[key] = expected.get(key, 0) + 1
                it = it.ns.ucounts
        for uc in all_ucounts(self.init_user_ns):
            want = expected.get((id(uc.ns), uc.uid), 0)
            if uc.counts[self._ns_ucount] != want:
                raise InvariantViolation(
                    "ucounts equal live namespaces",
                    f"user ns level {uc.ns.level} uid {uc.uid}: "
                    f"{uc.counts[self._ns_ucount]} charged, {want} namespaces",
                )
        inums = sorted(ns.inum - PROC_DYNAMIC_FIRST for ns in self._namespaces if ns.alive)
        if inums != self._inum_ida.ids():
            raise InvariantViolation(
                "inode numbers distinct and allocated",
                f"live namespaces {inums}, allocated {self._inum_ida.ids()}",
            )

    def _check_user_namespaces(self) -> None:
        """User-namespace references equal their holders; their ucounts, the live ones."""
        check_user_namespaces(
            self.init_user_ns.registry,
            cred=[t.cred.user_ns for t in self.tasks()],
            bpf_ns=[ns.user_ns for ns in self.namespaces()],
            file=[f.obj for f in self._open_files() if f.kind is FileKind.USER_NS],
        )

    def _check_primers(self) -> None:
        """Every reserved fd belongs to a pending primer."""
        check_primers(self.link_primers(), self.tasks())

    def _check_rcu(self) -> None:
        """The pending RCU callbacks are exactly the frees the objects wait for."""
        owners = self._rcu.owners()
        waiting: list[object] = [ns for ns in self._namespaces if not ns.alive]
        waiting += [o for o in self._bpf_objects if isinstance(o, BpfProg) and not o.refcnt]
        if sorted(map(id, owners)) != sorted(map(id, waiting)):
            raise InvariantViolation(
                "RCU callbacks match what waits for a grace period",
                f"pending {self._rcu.pending}, waiting {waiting}",
            )
        if self._ns_cache.active != len(self._namespaces):
            raise InvariantViolation(
                "slab objects are owned",
                f"{self._ns_cache.active} namespace objects allocated, "
                f"{len(self._namespaces)} namespaces not yet freed",
            )
