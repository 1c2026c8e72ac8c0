"""One simulated machine: ``bpfns.Kernel`` ties the namespace tree, ids, slabs and RCU together.

Every piece of mutable state lives in a Kernel instance; two Kernels share nothing. A
Kernel is the last of the kernel-context classes (:mod:`bpfns._context`): its state is
defined, layer by layer, by the modules that own it, and this class is the public face.
"""

from __future__ import annotations

import errno
import inspect
import re
from typing import Any, ClassVar

import attrs

from ._args import INT_MAX, INT_MIN, check_int, check_str
from ._behavior import FIXED, RFC
from ._bpf_namespace import Namespace, ObjType, copy_bpfns, live_namespace, obj_type
from ._bpf_object import (
    BpfObject,
    object_holds,
)
from ._checker import check_kernel, live_obj_ids
from ._errors import BpfnsError
from ._link import LinkPrimer
from ._netdev import LOOPBACK_IFINDEX
from ._obj_id import alloc_obj_id, free_obj_id
from ._offload import unregister_netdev
from ._preload import bpf_preload_load
from ._sanitizer import Report
from ._slab import KmemCache
from ._snapshot import Leftover, Snapshot, World, find_leftovers, take_snapshot
from ._task import Task, TaskContext
from ._trace import Trace, Tracer, traced
from ._ucount import UserNamespace, all_ucounts

__all__ = ["Kernel"]


@attrs.define(eq=False, repr=False)
class Kernel(TaskContext):
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

    Attributes:
        reports: every sanitizer :class:`bpfns.Report`, oldest first.
        tainted: whether a memory bug was reported.
        rcu_pending: the ``call_rcu`` callbacks waiting for :meth:`synchronize_rcu`.
        trace: the recorded events (``Kernel(trace=True)``).

    After these come the attributes of the kernel-context classes this class extends,
    layer by layer (see "Layers and the kernel context" on the model page of the docs):
    ``init_task``, ``init_ns``, ``bpffs``, ``faults``, ``dmesg``, ``audit_log`` and the
    rest. Read them freely, but change the world through calls.

    Raises:
        TypeError, ValueError: for an argument of the wrong type or out of range.

    >>> k = Kernel()
    >>> child = k.init_ns.create_child()
    >>> oid = k.alloc_obj_id(child, "my map", ObjType.MAP)
    >>> [(e.ns.level, e.nr) for e in oid.numbers]
    [(0, 1), (1, 1)]
    """

    _trace_kind: ClassVar[str] = "kernel"

    def __attrs_post_init__(self) -> None:
        """Boot: the layers' state, then the late initcalls (the BPF preload, if built in)."""
        super().__attrs_post_init__()
        if self.bpf_preload == "builtin":
            bpf_preload_load(self)

    def __repr__(self) -> str:
        preset = {RFC: "RFC", FIXED: "FIXED"}.get(self.behavior)
        return (
            f"<Kernel behavior={preset or self.behavior.defects()} id_end={self.id_end} "
            f"namespaces={len(self.live_namespaces) + 1} step={self.step}>"
        )

    def _repr_html_(self) -> str:
        """Notebooks: the kernel's repr and its namespace tree."""
        from ._render import kernel_html  # noqa: PLC0415 - rendering imports this module

        return kernel_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: the repr and the tree."""
        p.text(repr(self) if cycle else f"{self!r}\n{self.init_ns.tree()}")

    @property
    def _tracer(self) -> Tracer | None:
        """What ``@traced`` reads (the context's ``tracer``)."""
        return self.tracer

    def tasks(self) -> list[Task]:
        """The live tasks, by pid.

        >>> k = Kernel()
        >>> _ = k.init_task.clone()
        >>> [t.pid for t in k.tasks()]
        [1, 2]
        """
        return [self.live_tasks[pid] for pid in sorted(self.live_tasks)]

    # -- public views ---------------------------------------------------------------

    @property
    def trace(self) -> Trace:
        """The recorded events (see :mod:`bpfns` tracing and :func:`bpfns.replay`).

        Raises:
            ValueError: if this kernel was built without ``trace=True``.

        >>> k = Kernel(trace=True)
        >>> k.trace[0].kind, k.trace[1].kind
        ('kernel', 'ns_created')
        """
        if self.tracer is None:
            raise ValueError("this Kernel does not trace; build it with Kernel(trace=True)")
        return self.tracer.trace

    @property
    def reports(self) -> list[Report]:
        """Every sanitizer :class:`bpfns.Report`, oldest first (kept with tracing off)."""
        return self.sanitizer.reports

    @property
    def tainted(self) -> bool:
        """Whether a memory bug was reported: the simulated kernel's state is suspect."""
        return self.sanitizer.tainted

    @property
    def rcu_pending(self) -> tuple[str, ...]:
        """The ``call_rcu`` callbacks waiting for :meth:`synchronize_rcu`."""
        return self.rcu.pending

    def bpf_objects(self) -> list[BpfObject]:
        """Every BPF object not yet freed (maps, programs, links), in creation order.

        An object whose last reference is gone but whose final free waits for a grace
        period (a program) is listed, with ``refcnt`` 0, until :meth:`synchronize_rcu`.

        >>> k = Kernel()
        >>> _ = k.init_task.map_create(name="m")
        >>> k.bpf_objects()
        [<BpfMap 'm' id=1 refcnt=1>]
        """
        return list(self.objects)

    def link_primers(self) -> list[LinkPrimer]:
        """The pending :class:`bpfns.LinkPrimer` records (BPF_LINK_CREATE in progress).

        >>> k = Kernel()
        >>> t = k.init_task
        >>> primer = t.link_prime(t.prog_load())
        >>> k.link_primers()
        [<LinkPrimer pid=1 fd=1 id=1 pending>]
        """
        return list(self.primers)

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
        rest = sorted(self.live_namespaces, key=lambda ns: (ns.level, ns.inum))
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
        (semantics §2.2); the parent is ``old_ns`` itself. ``euid`` is the caller's
        effective uid, charged in ``max_bpf_namespaces``. The caller owns one reference
        on the result; drop it with :meth:`Namespace.put`.

        Raises:
            BpfnsError: EINVAL if ``user_ns`` is not ``old_ns``'s owner or a descendant;
                ENOSPC above ``max_level`` or when ``max_bpf_namespaces`` is exhausted at
                any ancestor user namespace; ENOMEM when an injected allocation fails.
                Nothing changes, except that a per-level id cache created on the way
                stays (the kernel never destroys those caches).
            TypeError, ValueError: for arguments of the wrong type, of another
                Kernel, a dead ``old_ns`` or a freed ``user_ns``, or a ``name`` that is
                empty or contains ``/`` (checked before anything is charged or
                allocated).

        >>> from bpfns import CLONE_NEWBPF
        >>> k = Kernel()
        >>> ns = k.copy_bpfns(CLONE_NEWBPF, k.init_user_ns, k.init_ns)
        >>> ns.parent is k.init_ns, ns.level
        (True, 1)
        """
        return copy_bpfns(self, flags, user_ns, old_ns, euid, name)

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
        type_ = obj_type(type)
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

    # -- network devices ------------------------------------------------------------

    @traced
    def register_netdev(self, name: str | None = None) -> int:
        """``register_netdev``: a network device that can offload BPF maps; its ifindex.

        The device is netdevsim-like: its driver has ``ndo_bpf``, so
        ``map_create(..., map_ifindex=ifindex)`` offloads a hash or array map to it.
        ``name`` defaults to ``sim<N>``. ``lo`` (ifindex 1) exists from boot and has no
        BPF offload.

        Raises:
            TypeError: if ``name`` is not a str or None.
            ValueError: if the name is empty, contains ``/`` or whitespace, is longer
                than 15 characters (IFNAMSIZ) or is taken.

        >>> k = Kernel()
        >>> k.register_netdev(), k.register_netdev("eth1")
        (2, 3)
        """
        taken = self.netdevs.names()
        if name is None:
            name = next(f"sim{i}" for i in range(len(taken) + 1) if f"sim{i}" not in taken)
        check_str("name", name)
        if not 0 < len(name) < 16 or any(c == "/" or c.isspace() for c in name):
            raise ValueError(
                f"netdev name {name!r}: 1 to 15 characters, no '/' or whitespace (IFNAMSIZ)"
            )
        if name in taken:
            raise ValueError(f"netdev name {name!r} is taken; pick another")
        self.step += 1
        return self.netdevs.register(name).ifindex

    @traced
    def unregister_netdev(self, ifindex: int) -> None:
        r"""``unregister_netdev``: remove a device; its offloaded maps lose their ids.

        Each map bound to the device gets ``__bpf_map_offload_destroy``: its ids are
        freed and ``map->id`` is zeroed while fds may still refer to it. As posted
        (D5) ``map->obj_id`` keeps pointing at the freed record, and the next
        ``obj_get_info_by_fd`` or fdinfo read of such an fd is a use-after-free; fixed,
        the id reads 0. ``obj_get_info_by_fd`` then fails with ENODEV either way.

        Raises:
            TypeError, ValueError: if ``ifindex`` is not an int, names no device, or
                names ``lo`` (which the kernel never unregisters).

        >>> from bpfns import BPF_MAP_TYPE_HASH, FIXED
        >>> k = Kernel(FIXED)
        >>> dev = k.register_netdev()
        >>> fd = k.init_task.map_create(BPF_MAP_TYPE_HASH, map_ifindex=dev)
        >>> k.unregister_netdev(dev)
        >>> "map_id:\t0" in k.init_task.read_fdinfo(k.init_task, fd)
        True
        """
        check_int("ifindex", ifindex, INT_MIN, INT_MAX, "int")
        dev = self.netdevs.lookup(ifindex)
        if dev is None:
            raise ValueError(f"unregister_netdev: no device has ifindex {ifindex}")
        if ifindex == LOOPBACK_IFINDEX:
            raise ValueError("unregister_netdev: lo is never unregistered")
        self.step += 1
        unregister_netdev(self, dev)

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
        self.step += 1
        return self.rcu.synchronize()

    def rcu_read_lock(self) -> None:
        """``rcu_read_lock``: begin a read-side critical section, as kernel code does.

        What a reader of RCU-protected memory (a BPF program, a lookup) runs in: until
        the matching :meth:`rcu_read_unlock`, a grace period cannot end, so
        :meth:`synchronize_rcu` on another simulated CPU waits (and the memory an RCU
        callback would free, such as a destroyed namespace, stays valid). Not recorded
        in a trace, and not a step.

        >>> k = Kernel()
        >>> k.rcu_read_lock(); k.rcu_read_unlock()
        """
        self.rcu.read_lock()

    def rcu_read_unlock(self) -> None:
        """``rcu_read_unlock``: end the innermost read-side critical section.

        Raises:
            ValueError: on a sequential kernel, without a matching :meth:`rcu_read_lock`.

        >>> Kernel().rcu_read_unlock()
        Traceback (most recent call last):
        ValueError: rcu_read_unlock: no read-side section is open; lock first
        """
        self.rcu.read_unlock()

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
        return take_snapshot(self._world(), self.slabinfo(), tuple(self.inum_ida.ids()))

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
        raw = [h for h in live_obj_ids(self) if not isinstance(h.obj, BpfObject)]
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
            boot_objects=self._boot_objects(),
            netdevs=tuple((i, dev.name) for i, dev in self.netdevs.devices.items()),
            btf_ids=tuple(self.btf_idr.ids()),
            btf_cursor=self.btf_idr.cursor,
        )

    def _boot_objects(self) -> list[BpfObject]:
        """The built-in preload's links and everything they hold (a fresh kernel's too)."""
        seen: dict[BpfObject, None] = {}
        todo = list(self.preloaded)
        while todo:
            obj = todo.pop()
            if obj not in seen and obj.refcnt:
                seen[obj] = None
                todo += [other for other, _ in object_holds(obj)]
        return list(seen)

    def slabinfo(self) -> list[tuple[str, int]]:
        """``/proc/slabinfo``, reduced: ``(cache, objects allocated)`` for every cache.

        >>> Kernel().slabinfo()
        [('bpf_namespace', 0), ('pid', 0)]
        """
        caches: list[KmemCache[Any]] = self.caches()
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

        >>> from bpfns import CLONE_NEWBPF
        >>> k = Kernel(FIXED)
        >>> child = k.init_task.clone(CLONE_NEWBPF)
        >>> _ = child.map_create()
        >>> k.teardown(); k.leftovers(), len(k.namespaces())
        ([], 1)
        """
        for primer in list(self.primers):
            if primer.task.alive:
                primer.cleanup()
        if self.init_task.alive:  # bpffs is unmounted: every pin is dropped
            for path in self.bpffs.paths():
                self.init_task.unlink(path)
        for task in reversed(self.tasks()):
            task.exit()
        while self.rcu.pending:
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
        check_kernel(self)


_SECTION = re.compile(r"^Attributes:\n((?:    .*\n|\n(?=    ))*)", re.MULTILINE)


def _attributes_section(doc: str | None) -> str:
    """The entries of a Google-style ``Attributes:`` section (cleaned, 4-space indent)."""
    found = _SECTION.search(inspect.cleandoc(doc or "") + "\n")
    return found.group(1) if found else ""


def _with_layer_attributes(cls: type) -> str:
    """``cls``'s docstring with each kernel-context layer's attributes in its section.

    ``help(bpfns.Kernel)`` and the API reference then document every public attribute
    where a reader looks (slotted attrs classes cannot carry per-attribute docstrings),
    while each layer keeps its own list next to its fields.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    own = _attributes_section(doc)
    layers = "".join(_attributes_section(base.__doc__) for base in cls.__mro__[1:])
    return doc.replace(own, own + layers, 1)


Kernel.__doc__ = _with_layer_attributes(Kernel)
