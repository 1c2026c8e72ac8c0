"""Every invariant of a simulated world, checked in one place: :meth:`bpfns.Kernel.check`.

Two kinds of check compose here:

* each data structure's own ``_check()`` (sortedcontainers style): IDRs and their radix
  trees, slab caches, the inode-number IDA, namespaces, id records, user namespaces,
  fd tables, bpffs, RCU, link primers, the tracer. An AssertionError from one becomes
  ``InvariantViolation("data structures", ...)``.
* the invariants *between* structures, which no structure can check alone: ids and
  their records, refcounts against the holders found in the world, ucount charges,
  inode numbers, tasks and their tables, BPF objects, primers and pending RCU frees.

Each function raises :class:`bpfns.InvariantViolation` naming the invariant and what
broke it; :func:`check_kernel` runs them all, in that order.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ._bpf_namespace import PROC_DYNAMIC_FIRST, Namespace, ObjType
from ._bpf_object import BPF_FILE_KINDS, BpfLink, BpfMap, BpfObject, BpfProg, object_holds
from ._errors import InvariantViolation
from ._files import FdTable, File, FileKind
from ._idr import idr_tree
from ._obj_id import ObjId, record_of
from ._task import TaskContext
from ._ucount import Ucounts, all_ucounts, check_user_namespaces

__all__ = ["check_kernel", "live_obj_ids", "open_files"]


def check_kernel(k: TaskContext) -> None:
    """Every invariant of the world of ``k``, structures first.

    Raises:
        InvariantViolation: naming the first broken invariant.
    """
    handles = live_obj_ids(k)  # one walk of every IDR, shared by the checks below
    check_structures(k, handles)
    check_tasks(k)
    check_ids(k, handles)
    check_ns_refcounts(k, handles)
    check_ucounts(k)
    check_user_namespaces(
        k.init_user_ns.registry,
        cred=[t.cred.user_ns for t in k.live_tasks.values()],
        bpf_ns=[ns.user_ns for ns in _namespaces(k)],
        file=[f.obj for f in open_files(k) if f.kind is FileKind.USER_NS],
    )
    check_primers(k)
    check_rcu(k)
    check_objects(k)


def _namespaces(k: TaskContext) -> list[Namespace]:
    return [k.init_ns, *k.live_namespaces]


def _tables(k: TaskContext) -> list[FdTable]:
    """The distinct file tables of the live tasks."""
    return list(
        {id(t.files): t.files for t in k.live_tasks.values() if t.files is not None}.values()
    )


def open_files(k: TaskContext) -> list[File]:
    """Every distinct open File in every live task's table."""
    seen = {id(f): f for table in _tables(k) for _, f in table.items()}
    return list(seen.values())


def live_obj_ids(k: TaskContext) -> list[ObjId]:
    """Every id record handle reachable from an IDR (each once).

    Raises:
        InvariantViolation: if an IDR holds a NULL entry (only pid IDRs do).
    """
    seen: dict[int, ObjId] = {}
    for ns in _namespaces(k):
        for idr in ns.idr:
            for i, handle in idr_tree(idr).iter_items(0):  # every allocated id, NULL or not
                if handle is None:
                    raise InvariantViolation(
                        "no NULL entries", f"{ns.label()} holds a NULL entry at id {i}"
                    )
                seen[id(handle)] = handle
    return list(seen.values())


def check_structures(k: TaskContext, handles: list[ObjId]) -> None:
    """Each structure's own ``_check()``, in one loop (``handles``: :func:`live_obj_ids`)."""
    structures: list[Any] = [k.inum_ida, *k.caches(), k.init_user_ns.registry, k.rcu, k.bpffs]
    structures += [k.netdevs, k.btf_idr]
    structures += list(k.primers)
    structures += _namespaces(k)
    structures += [record_of(h) for h in handles]
    structures += _tables(k)
    if k.tracer is not None:
        structures.append(k.tracer)
    for structure in structures:
        try:
            structure._check()  # the one call of every structure's private _check()
        except AssertionError as exc:
            raise InvariantViolation("data structures", str(exc) or repr(exc)) from exc


def check_tasks(k: TaskContext) -> None:
    """Tasks are whole, nsproxy and table counts equal their users, file counts their fds."""
    tasks = list(k.live_tasks.values())
    nsproxy_users: Counter[int] = Counter()
    table_users: Counter[int] = Counter()
    for t in tasks:
        if t.nsproxy is None or t.files is None or not t.alive:
            raise InvariantViolation("live tasks are whole", f"{t!r} lost its nsproxy or files")
        nsproxy_users[id(t.nsproxy)] += 1
        table_users[id(t.files)] += 1
        if k.pid_idr.find(t.pid) is not t:
            raise InvariantViolation("pids map to their tasks", f"pid {t.pid}")
    for t in tasks:
        assert t.nsproxy is not None and t.files is not None
        if t.nsproxy.count != nsproxy_users[id(t.nsproxy)]:
            raise InvariantViolation(
                "nsproxy counts equal their tasks", f"{t!r}: count {t.nsproxy.count}"
            )
        if t.files.count != table_users[id(t.files)]:
            raise InvariantViolation(
                "file tables counted by their tasks", f"{t!r}: count {t.files.count}"
            )
    file_refs: Counter[int] = Counter()
    files: dict[int, File] = {}
    for table in _tables(k):
        for _, file in table.items():
            file_refs[id(file)] += 1
            files[id(file)] = file
    for key, file in files.items():
        if file.count != file_refs[key]:
            raise InvariantViolation(
                "file counts equal their fds", f"{file!r}: count {file.count} != {file_refs[key]}"
            )
    if len(k.pid_idr) != len(tasks):
        raise InvariantViolation("pids map to their tasks", "a pid outlived its task")


def check_ids(k: TaskContext, handles: list[ObjId]) -> None:
    """Every IDR entry is a live record with that id at that level, and vice versa."""
    live = sum(c.active for c in k.obj_id_caches.values())
    for h in handles:
        if not h.live:
            raise InvariantViolation(
                "IDR entries point to live records",
                f"a freed record is still in an IDR: {h!r}",
            )
        rec = record_of(h)  # numbers[], read from the record's arrays (deepest first)
        numbers = zip(reversed(rec.nrs), reversed(rec.nss), strict=True)
        for level, (nr, ns) in enumerate(numbers):
            if ns is None or nr is None or ns.level != level:
                raise InvariantViolation("ids at every level", f"{h!r} level {level}")
            if ns.alive and idr_tree(ns.idr[h.type]).get(nr) is not h:
                raise InvariantViolation(
                    "every live id present at each level",
                    f"{h!r} is missing from {ns.label()} as {nr}",
                )
            if not ns.alive and not k.behavior.d2_obj_id_unpinned:
                raise InvariantViolation(
                    "nothing live references a dead namespace", f"{h!r} references {ns!r}"
                )
    if len(handles) != live:
        raise InvariantViolation(
            "root sees every live object",
            f"{live} id records are allocated but {len(handles)} are reachable from "
            "the IDRs (a record lost its ids, or was leaked)",
        )
    for ns in _namespaces(k):
        for type_ in ObjType:
            for nr, h in ns.idr[type_]:
                rec = record_of(h)
                i = rec.level - ns.level
                if h.type is not type_ or i < 0 or (rec.nrs[i], rec.nss[i]) != (nr, ns):
                    raise InvariantViolation(
                        "ids unique per (namespace, type)",
                        f"{ns.label()} {type_.name} {nr} -> {h!r}",
                    )


def check_ns_refcounts(k: TaskContext, handles: list[ObjId]) -> None:
    """Every namespace's references equal the children, records, nsproxies and files found."""
    children: Counter[int] = Counter()
    for ns in k.live_namespaces:
        if ns.alive and ns.parent is not None:
            children[id(ns.parent)] += 1
    pins: Counter[int] = Counter()
    if not k.behavior.d2_obj_id_unpinned:
        for h in handles:
            pins[id(h.ns)] += 1
    nsproxies: Counter[int] = Counter()
    for nsproxy in {id(t.nsproxy): t.nsproxy for t in k.live_tasks.values() if t.nsproxy}.values():
        nsproxies[id(nsproxy.bpf_ns)] += 1
    files: Counter[int] = Counter()
    for file in open_files(k):
        if file.kind is FileKind.BPF_NS:
            files[id(file.obj)] += 1
    for ns in k.live_namespaces:
        want = {
            "child": children[id(ns)],
            "obj_id": pins[id(ns)],
            "nsproxy": nsproxies[id(ns)],
            "file": files[id(ns)],
        }
        got = {key: ns.holders.get(key, 0) for key in want}
        if got != want:
            raise InvariantViolation(
                "refcounts equal their holders", f"{ns!r}: counted {got}, found {want}"
            )


def check_ucounts(k: TaskContext) -> None:
    """The namespace ucounts are charged once per namespace not yet freed; inums allocated."""
    expected: Counter[tuple[int, int]] = Counter()
    for ns in k.live_namespaces:
        it: Ucounts | None = ns.ucounts
        assert it is not None  # every namespace but init is charged
        while it is not None:
            expected[(id(it.ns), it.uid)] += 1
            it = it.ns.ucounts
    for uc in all_ucounts(k.init_user_ns):
        want = expected[(id(uc.ns), uc.uid)]
        if uc.counts[k.ns_ucount] != want:
            raise InvariantViolation(
                "ucounts equal live namespaces",
                f"user ns level {uc.ns.level} uid {uc.uid}: "
                f"{uc.counts[k.ns_ucount]} charged, {want} namespaces",
            )
    inums = sorted(ns.inum - PROC_DYNAMIC_FIRST for ns in k.live_namespaces if ns.alive)
    if inums != k.inum_ida.ids():
        raise InvariantViolation(
            "inode numbers distinct and allocated",
            f"live namespaces {inums}, allocated {k.inum_ida.ids()}",
        )


def check_primers(k: TaskContext) -> None:
    """Every reserved fd of a live task's table belongs to a pending primer.

    (Each primer checks its own invariants, its task alive among them: ``_check``.)
    """
    reserved = {(id(p.task.files), p.fd) for p in k.primers}
    for table in _tables(k):
        stray = [fd for fd in table.reserved() if (id(table), fd) not in reserved]
        if stray:
            raise InvariantViolation(
                "reserved fds belong to pending primers", f"fds {stray} of a file table"
            )


def check_rcu(k: TaskContext) -> None:
    """The pending RCU callbacks are exactly the frees the objects wait for."""
    owners = k.rcu.owners()
    waiting: list[object] = [ns for ns in k.live_namespaces if not ns.alive]
    waiting += [o for o in k.objects if isinstance(o, BpfProg) and not o.refcnt]
    if sorted(map(id, owners)) != sorted(map(id, waiting)):
        raise InvariantViolation(
            "RCU callbacks match what waits for a grace period",
            f"pending {k.rcu.pending}, waiting {waiting}",
        )
    if k.ns_cache.active != len(k.live_namespaces):
        raise InvariantViolation(
            "slab objects are owned",
            f"{k.ns_cache.active} namespace objects allocated, "
            f"{len(k.live_namespaces)} namespaces not yet freed",
        )


def _expected_holders(k: TaskContext) -> dict[int, Counter[str]]:
    """Count, from the world, who holds a reference on each BPF object."""
    expected: dict[int, Counter[str]] = {id(obj): Counter() for obj in k.objects}
    held = [f.obj for f in open_files(k) if f.kind in BPF_FILE_KINDS]
    for obj in [*held, *k.bpffs.objects()]:
        if id(obj) not in expected:
            raise InvariantViolation("referenced objects are live", f"{obj!r} was forgotten")
    for obj in held:
        expected[id(obj)]["file"] += 1
    for obj in k.bpffs.objects():
        expected[id(obj)]["pin"] += 1
    for obj in k.preloaded:
        expected[id(obj)]["preload"] += 1
    for f in open_files(k):
        if f.kind is FileKind.PERF_EVENT and f.obj.prog is not None:
            expected[id(f.obj.prog)]["perf_event"] += 1
    for obj in k.objects:
        for other, holder in object_holds(obj):
            expected[id(other)][holder] += 1
        if isinstance(obj, BpfLink) and obj.refcnt and not obj.id:
            expected[id(obj)]["file"] += 1  # primed, not settled: the primer's anon file
    return expected


def check_objects(k: TaskContext) -> None:
    """BPF objects: refcounts equal their holders, ids match their records."""
    expected = _expected_holders(k)
    for obj in k.objects:
        got = +Counter(obj.holders)
        if got != +expected[id(obj)] or obj.refcnt != sum(obj.holders.values()):
            raise InvariantViolation(
                "object refcounts equal their holders",
                f"{obj!r}: counted {dict(got)}, found {dict(+expected[id(obj)])}",
            )
        if obj.refcnt and not (isinstance(obj, BpfLink) and not obj.id):
            _check_ids_of(k, obj)  # not freed (RCU pending), nor a primed link
    for nr, btf in k.btf_idr:
        if btf not in k.objects or btf.id != nr:
            raise InvariantViolation("BTF ids belong to live BTF objects", f"btf_idr {nr}")
    check_offload(k)
    for ns in _namespaces(k):
        for type_ in ObjType:
            for nr, handle in ns.idr[type_]:
                if isinstance(handle.obj, BpfObject) and handle.obj not in k.objects:
                    raise InvariantViolation(
                        "ids belong to live objects", f"{ns.label()} {type_.name} {nr}"
                    )


def _check_ids_of(k: TaskContext, obj: BpfObject) -> None:
    """A live object's ids: its record's (BTF: the global IDR's; none once offload-destroyed)."""
    if not obj.NAMESPACED:
        if not obj.id or k.btf_idr.find(obj.id) is not obj or obj.obj_id is not None:
            raise InvariantViolation("BTF objects own their global ids", f"{obj!r}")
        return
    if isinstance(obj, BpfMap) and obj.ifindex and obj.netdev is None:
        if obj.id or (obj.obj_id is not None and obj.obj_id.live):
            raise InvariantViolation("an offloaded map whose device is gone has no ids", repr(obj))
        return
    rec = obj.obj_id
    if rec is None or rec.obj is not obj or not rec.live or obj.id != rec.nr():
        raise InvariantViolation(
            "objects own their ids", f"{obj!r}: id record {rec!r} does not match"
        )


def check_offload(k: TaskContext) -> None:
    """Offloaded maps and their devices point at each other; the devices are registered."""
    bound = {id(m): m for dev in k.netdevs.devices.values() for m in dev.offloaded}
    for obj in k.objects:
        if isinstance(obj, BpfMap) and obj.netdev is not None:
            dev = obj.netdev
            if k.netdevs.lookup(dev.ifindex) is not dev or obj not in dev.offloaded:
                raise InvariantViolation("offloaded maps are bound to their device", repr(obj))
            bound.pop(id(obj))
    if bound:
        raise InvariantViolation(
            "devices hold only their live offloaded maps", f"{list(bound.values())}"
        )
