"""BPF objects: ``struct bpf_map``, ``struct bpf_prog``, ``struct bpf_link`` (include/linux/bpf.h).

Each holds its level-0 id (``map->id`` ...) and, since RFC patch 08-10, its id record
(``obj_id``). Objects are refcounted by files, bpffs pins, programs (their used maps)
and links (their program); the last reference frees the ids at once (rfc.md 2.3
"Callers"), and a program's maps go after an RCU grace period. The records returned to
userspace (``bpf_*_info``, audit records) are here too; the commands that create and use
objects are in :mod:`bpfns._syscall`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

import attrs

from ._bpf_namespace import Namespace, NsContext, Nsproxy, ObjType, put_bpfns
from ._bpffs import Bpffs
from ._capability import Cap, Cred
from ._errors import KernelBug
from ._files import FdTable, File, FileKind
from ._obj_id import IDR_LOCK, ObjId, free_obj_id
from ._sanitizer import BugKind
from ._trace import Tracer, replayable, traced
from ._ucount import put_user_ns

__all__ = [
    "BPF_FILE_KINDS",
    "OBJECT_TYPES",
    "AuditRecord",
    "BpfContext",
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProg",
    "CurrentTask",
    "LinkInfo",
    "LinkPrimer",
    "MapInfo",
    "ProgInfo",
    "SyscallTask",
    "bpf_audit_prog",
    "bpf_file",
    "bpf_obj_free",
    "bpf_obj_get",
    "bpf_obj_id_vnr",
    "bpf_obj_inc_not_zero",
    "bpf_obj_put",
    "fput",
    "id_seen_from",
    "object_fdinfo",
    "object_holds",
    "object_info",
    "object_listing",
    "put_files",
    "register",
    "release_file",
    "syscall",
    "vnr_namespace",
]

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_KPROBE = 2
BPF_LINK_TYPE_PERF_EVENT = 7
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_OBJ_NAME_LEN = 16
#: ``link_idr_lock``: bpf_link_settle publishes ``link->id`` under it.
LINK_LOCK = IDR_LOCK[ObjType.LINK]

# -- the kernel context of the object layer --------------------------------------------


class CurrentTask(Protocol):
    """``current`` as kernel code below the task layer reads it (``struct task_struct``).

    :class:`bpfns.Task` is one. The object layer reads the pid (audit records, reports)
    and the namespaces (``bpf_obj_id_vnr``), and enters a syscall as the task
    (:func:`syscall`); an oops in it kills the task (``_oops``, ``make_task_dead``).
    """

    @property
    def kernel(self) -> BpfContext: ...
    @property
    def _tracer(self) -> Tracer | None: ...
    @property
    def pid(self) -> int: ...
    @property
    def alive(self) -> bool: ...
    @property
    def nsproxy(self) -> Nsproxy | None: ...
    @property
    def files(self) -> FdTable | None: ...
    def _oops(self) -> None: ...


class SyscallTask(CurrentTask, Protocol):
    """What the syscalls read of the task that makes them: :class:`bpfns.Task` is one.

    The bpf() commands (:mod:`bpfns._syscall`) and the nsfs operations
    (:mod:`bpfns._nsfs`) are methods of Task typed against this, so that their modules
    need not import the task layer.
    """

    @property
    def tgid(self) -> int: ...
    @property
    def cred(self) -> Cred: ...
    @property
    def bpf_ns(self) -> Namespace: ...
    def capable(self, cap: Cap) -> bool: ...
    def _fdget(self, fd: int) -> File: ...


_T = TypeVar("_T", bound=CurrentTask)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def syscall(
    name: str,
) -> Callable[[Callable[Concatenate[_T, _P], _R]], Callable[Concatenate[_T, _P], _R]]:
    """The entry of syscall ``name``: what every command of :class:`bpfns.Task` runs in.

    The one definition of a syscall's entry and exit: a top-level call is recorded if
    the kernel traces (as :func:`bpfns._trace.traced` does); then the task must be
    alive (else ValueError, naming ``name``), the call counts one step, the task is
    ``current`` until it returns, and an oops (a raised :class:`bpfns.KernelBug`) kills
    the task (``make_task_dead``) before the caller sees it. On simulated CPUs the
    entry is a preemption point.
    """

    def decorate(fn: Callable[Concatenate[_T, _P], _R]) -> Callable[Concatenate[_T, _P], _R]:
        @functools.wraps(fn)
        def entry(task: _T, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            tracer = task._tracer
            if tracer is not None and not tracer.depth:
                return tracer.call(entry, task, args, kwargs)
            if not task.alive:
                raise ValueError(f"{name}: {task!r} has exited; use a live task")
            k = task.kernel
            if k.smp is not None:  # user space runs up to here: another CPU may run first
                k.smp.preempt(f"enter {name}")
            k.step += 1
            previous, k.current = k.current, task
            try:
                return fn(task, *args, **kwargs)
            except KernelBug:
                task._oops()  # the oops kills the task that hit it
                raise
            finally:
                k.current = previous

        return replayable(entry)

    return decorate


@attrs.define(eq=False, repr=False)
class BpfContext(NsContext):
    """The kernel context with the BPF-object layer's state (see :mod:`bpfns._context`).

    Attributes:
        objects: every BPF object not yet freed, in creation order.
        primers: the pending link primers (BPF_LINK_CREATE between prime and settle).
        bpffs: the BPF filesystem (its pins).
        audit_log: the ``AUDIT_BPF`` records, oldest first.
        current: the task whose syscall is running, None outside any (a kernel thread:
            an RCU callback, the bpffs object directly).
    """

    objects: dict[BpfObject, None] = attrs.field(init=False, factory=dict)
    primers: dict[LinkPrimer, None] = attrs.field(init=False, factory=dict)
    bpffs: Bpffs[BpfObject] = attrs.field(init=False, factory=lambda: Bpffs(_pin, _unpin))
    audit_log: list[AuditRecord] = attrs.field(init=False, factory=list)
    current: CurrentTask | None = attrs.field(init=False, default=None)


def vnr_namespace(k: BpfContext, what: str) -> Namespace | None:
    """``current->nsproxy->bpf_ns`` for ``bpf_obj_id_vnr``, with the D8 check.

    Outside any task's call (kernel code run from :meth:`bpfns.Kernel.synchronize_rcu`
    or the bpffs object directly), current is a kernel thread, which lives in the
    initial namespaces: the id is the global one. An exiting task has no nsproxy: as
    posted (D8) that is a NULL dereference the sanitizer reports, and the id reads 0 if
    it goes on; fixed, the id is the global one.
    """
    cur = k.current
    if cur is None:
        return k.init_ns
    nsproxy = cur.nsproxy
    if nsproxy is not None:
        return nsproxy.bpf_ns
    if not k.behavior.d8_vnr_without_nsproxy:
        return k.init_ns
    k.sanitizer.report(
        "D8",
        BugKind.NULL_DEREF,
        f"{what}: bpf_obj_id_vnr read current->nsproxy->bpf_ns, but task {cur.pid} has "
        "already dropped its nsproxy (exit_task_namespaces runs before the last fput)",
        what,
        k.step,
    )
    return None


def bpf_obj_id_vnr(k: BpfContext, obj: BpfObject, what: str = "bpf_obj_id_vnr") -> int:
    """``bpf_obj_id_vnr(obj->obj_id)``: the id in ``current``'s namespace (D6, D8).

    0 for an object whose ``obj_id`` is still NULL: on simulated CPUs, a lookup can
    find an object before its creator has written it (D7's benign window).
    """
    ns = vnr_namespace(k, what)
    obj_id = obj.obj_id
    return 0 if ns is None or obj_id is None else obj_id.nr_ns(ns)


def bpf_audit_prog(k: BpfContext, prog: BpfProg, op: str) -> None:
    """``bpf_audit_prog``: an AUDIT_BPF record with ``prog-id=vnr``.

    ``pid`` is the task running the code, 0 for a kernel thread (no current task).
    """
    prog_id = bpf_obj_id_vnr(k, prog, "bpf_audit_prog")
    pid = 0 if k.current is None else k.current.pid
    k.audit_log.append(AuditRecord(op, prog_id, pid))


# -- objects --------------------------------------------------------------------------

#: The object-type registry: every registered :class:`BpfObject` class, by its ObjType.
OBJECT_TYPES: dict[ObjType, type[BpfObject]] = {}
#: The file kinds of BPF objects, in ObjType order (derived from the registry).
BPF_FILE_KINDS: list[FileKind] = []

_O = TypeVar("_O", bound="type[BpfObject]")


def register(cls: _O) -> _O:
    """Register a BPF object type: its ``TYPE`` and ``FILE_KIND`` name its id space and files.

    Everything that depends on the object types reads the registry: the file kinds a
    bpf() command accepts, the file a new fd refers to, ``BPF_OBJ_GET_INFO_BY_FD``,
    fdinfo, the bpftool-like listing and the invariant checks. Each namespace has one
    IDR per :class:`ObjType`. Adding a type is this class plus its syscalls (see the
    model page of the docs).

    Raises:
        ValueError: if the ObjType or file kind is already registered.
    """
    if cls.TYPE in OBJECT_TYPES or cls.FILE_KIND in BPF_FILE_KINDS:
        raise ValueError(f"{cls.__name__}: {cls.TYPE!r} or {cls.FILE_KIND!r} is registered")
    OBJECT_TYPES[cls.TYPE] = cls
    BPF_FILE_KINDS.append(cls.FILE_KIND)
    return cls


@attrs.define(eq=False, repr=False)
class BpfObject:
    """What maps, programs and links share: ids and a reference count.

    A subclass declares its place in the registry (:func:`register`): ``TYPE``, its id
    space; ``FILE_KIND``, the kind of file its fds are; and four hooks, which the
    functions of this module call: ``_info`` (its ``bpf_*_info``, :func:`object_info`),
    ``_fdinfo_rows`` (:func:`object_fdinfo`), ``_held`` (the references it holds on
    other objects, :func:`object_holds`), ``_listing`` (its bpftool line,
    :func:`object_listing`); and what its last reference frees (``_free``).

    Attributes:
        id: ``map->id`` / ``prog->aux->id`` / ``link->id``: the level-0 id, 0 once freed
            (and, for a link, until it is settled).
        obj_id: the :class:`bpfns.ObjId` record, None once freed.
        refcnt: the reference count.
        holders: who holds the references: ``{"file": 2, "pin": 1}`` (files, pins,
            programs, links; a holder whose references are gone may stay at 0).
        freed: the object's memory was freed (by its last reference, or directly by the
            error path of its creation); an access through a reference someone still
            holds is a use-after-free the sanitizer reports.
    """

    TYPE: ClassVar[ObjType]
    FILE_KIND: ClassVar[FileKind]
    kernel: BpfContext
    name: str
    id: int = 0
    obj_id: ObjId | None = None
    refcnt: int = 0
    holders: dict[str, int] = attrs.field(factory=dict)
    freed: bool = attrs.field(default=False, kw_only=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} id={self.id} refcnt={self.refcnt}>"

    @property
    def live(self) -> bool:
        """Whether references remain."""
        return self.refcnt > 0

    def _info(self) -> MapInfo | ProgInfo | LinkInfo:
        """``bpf_*_get_info_by_fd``: the record userspace gets, ids as ``current`` sees them."""
        raise NotImplementedError  # pragma: no cover - every registered type has one

    def _fdinfo_rows(self) -> list[tuple[str, object]]:
        """``bpf_*_show_fdinfo``: the rows after ``pos`` and ``flags``, ids as ``vnr``."""
        raise NotImplementedError  # pragma: no cover - every registered type has one

    def _held(self) -> list[tuple[BpfObject, str]]:
        """The references this object holds on others, as ``(object, holder)`` pairs."""
        return []

    def _listing(self, seen: Callable[[BpfObject], int]) -> str:
        """The bpftool-like description after the id (``seen`` gives another's id)."""
        raise NotImplementedError  # pragma: no cover - every registered type has one

    def _free_id(self) -> None:
        """``if (x->id) { bpf_free_obj_id(x->obj_id, type); x->id = 0; }`` (patch 05).

        bpfns has no path that frees an object without ids (the offload path of D5 is
        not modelled), so the test always holds here.
        """
        assert self.id
        assert self.obj_id is not None
        free_obj_id(self.kernel, self.obj_id, self.TYPE, _nested=True)
        self.id = 0
        self.obj_id = None

    def _free(self) -> None:
        """The last reference is gone: free the ids (``bpf_map_free_id``), then the object."""
        self._free_id()
        bpf_obj_free(self, "its last reference")


def bpf_obj_free(obj: BpfObject, by: str) -> None:
    """The object's memory goes back to the allocator (``by`` says who freed it)."""
    k = obj.kernel
    obj.freed = True
    k.objects.pop(obj, None)
    if k.smp is not None:
        k.smp.note(f"free {obj!r} ({by})")


def _use(obj: BpfObject, access: str) -> None:
    """Report an ``access`` through a reference to ``obj`` after its memory was freed.

    Only an object freed directly by its creator's error path can be reached so: that
    is D7 (a concurrent lookup took a reference while the ids were half published).
    """
    k = obj.kernel
    k.sanitizer.report(
        "D7",
        BugKind.USE_AFTER_FREE,
        f"{access} on {type(obj).__name__} {obj.name!r}, freed directly by the error path "
        "of its creation after a concurrent GET_FD_BY_ID took a reference (publication "
        "level by level is not atomic)",
        access,
        k.step,
    )


def bpf_obj_get(obj: BpfObject, holder: str) -> None:
    """``bpf_map_inc`` / ``bpf_prog_inc`` / ``bpf_link_inc``: a reference held by ``holder``."""
    smp = obj.kernel.smp
    if smp is not None:  # only a race leaves a reference to a freed object (D7)
        smp.preempt(f"get {obj!r}")
        if obj.freed:
            _use(obj, "bpf_obj_inc")
    _inc(obj, holder)


def bpf_obj_inc_not_zero(obj: BpfObject, holder: str) -> bool:
    """``bpf_map_inc_not_zero`` & co: a reference, unless the last one is already gone.

    The test and the increment are one atomic operation (no preemption point between
    them). Returns whether the reference was taken.
    """
    smp = obj.kernel.smp
    if smp is not None:
        smp.preempt(f"inc_not_zero {obj!r}")
    if not obj.refcnt:
        return False
    _inc(obj, holder)
    return True


def _inc(obj: BpfObject, holder: str) -> None:
    """The increment itself: one more reference, and who holds it."""
    obj.refcnt += 1
    obj.holders[holder] = obj.holders.get(holder, 0) + 1


def _pin(obj: BpfObject) -> None:
    bpf_obj_get(obj, "pin")


def _unpin(obj: BpfObject) -> None:
    bpf_obj_put(obj, "pin")


def bpf_obj_put(obj: BpfObject, holder: str) -> None:
    """``bpf_map_put`` / ``bpf_prog_put`` / ``bpf_link_put``: the last one frees the object."""
    smp = obj.kernel.smp
    if smp is not None:  # only a race leaves a reference to a freed object (D7)
        smp.preempt(f"put {obj!r}")
        if obj.freed:
            _use(obj, "bpf_obj_put")
            return  # the memory is not the object's any more: nothing to release
    obj.holders[holder] -= 1
    obj.refcnt -= 1
    if not obj.refcnt:
        obj._free()


@register
@attrs.define(eq=False, repr=False)
class BpfMap(BpfObject):
    """``struct bpf_map``."""

    TYPE: ClassVar[ObjType] = ObjType.MAP
    FILE_KIND: ClassVar[FileKind] = FileKind.BPF_MAP
    map_type: int = BPF_MAP_TYPE_ARRAY
    key_size: int = 4
    value_size: int = 4
    max_entries: int = 1

    def _info(self) -> MapInfo:
        """``bpf_map_get_info_by_fd``."""
        vnr = bpf_obj_id_vnr(self.kernel, self)
        return MapInfo(
            vnr, self.map_type, self.key_size, self.value_size, self.max_entries, self.name
        )

    def _fdinfo_rows(self) -> list[tuple[str, object]]:
        """``bpf_map_show_fdinfo``."""
        return [
            ("map_type", self.map_type),
            ("key_size", self.key_size),
            ("value_size", self.value_size),
            ("max_entries", self.max_entries),
            ("map_id", bpf_obj_id_vnr(self.kernel, self)),
        ]

    def _listing(self, seen: Callable[[BpfObject], int]) -> str:
        """``bpftool map show``: type, name, sizes."""
        kind = _MAP_TYPES.get(self.map_type, f"type {self.map_type}")
        return (
            f"{kind}  name {self.name}  flags 0x0\n"
            f"    key {self.key_size}B  value {self.value_size}B  max_entries {self.max_entries}"
        )


@register
@attrs.define(eq=False, repr=False)
class BpfProg(BpfObject):
    """``struct bpf_prog`` with its ``aux``: type, used maps, creator."""

    TYPE: ClassVar[ObjType] = ObjType.PROG
    FILE_KIND: ClassVar[FileKind] = FileKind.BPF_PROG
    prog_type: int = BPF_PROG_TYPE_KPROBE
    used_maps: tuple[BpfMap, ...] = ()
    created_by_uid: int = 0

    def _info(self) -> ProgInfo:
        """``bpf_prog_get_info_by_fd``: every ``map_ids`` entry is ``vnr`` too."""
        k = self.kernel
        map_ids = tuple(bpf_obj_id_vnr(k, m) for m in self.used_maps)
        vnr = bpf_obj_id_vnr(k, self)
        return ProgInfo(vnr, self.prog_type, self.name, map_ids, self.created_by_uid)

    def _fdinfo_rows(self) -> list[tuple[str, object]]:
        """``bpf_prog_show_fdinfo``."""
        return [("prog_type", self.prog_type), ("prog_id", bpf_obj_id_vnr(self.kernel, self))]

    def _held(self) -> list[tuple[BpfObject, str]]:
        """Each used map (``bpf_map_inc`` by the verifier)."""
        return [(m, "prog") for m in self.used_maps]

    def _listing(self, seen: Callable[[BpfObject], int]) -> str:
        """``bpftool prog show``: type, name, used maps."""
        kind = _PROG_TYPES.get(self.prog_type, f"type {self.prog_type}")
        maps = ",".join(str(seen(m)) for m in self.used_maps)
        return f"{kind}  name {self.name}" + (f"\n    map_ids {maps}" if maps else "")

    def _free(self) -> None:
        """``bpf_prog_put_deferred``: audit UNLOAD, free the ids, RCU-free the prog."""
        k = self.kernel
        bpf_audit_prog(k, self, "UNLOAD")
        self._free_id()
        k.rcu.call_rcu(self._free_rcu, f"bpf_prog_free({self.name})", owner=self)

    def _free_rcu(self) -> None:
        """After the grace period: ``free_used_maps``."""
        for m in self.used_maps:
            bpf_obj_put(m, "prog")
        bpf_obj_free(self, "bpf_prog_free after a grace period")


@register
@attrs.define(eq=False, repr=False)
class BpfLink(BpfObject):
    """``struct bpf_link``: holds a reference on its program."""

    TYPE: ClassVar[ObjType] = ObjType.LINK
    FILE_KIND: ClassVar[FileKind] = FileKind.BPF_LINK
    prog: BpfProg | None = None
    link_type: int = BPF_LINK_TYPE_PERF_EVENT

    def _prog(self) -> BpfProg:
        assert self.prog is not None  # a link has its program until it is freed
        return self.prog

    def _info(self) -> LinkInfo:
        """``bpf_link_get_info_by_fd``: ``prog_id`` is ``vnr`` too."""
        k = self.kernel
        return LinkInfo(bpf_obj_id_vnr(k, self), self.link_type, bpf_obj_id_vnr(k, self._prog()))

    def _fdinfo_rows(self) -> list[tuple[str, object]]:
        """``bpf_link_show_fdinfo``."""
        k = self.kernel
        return [
            ("link_type", self.link_type),
            ("link_id", bpf_obj_id_vnr(k, self)),
            ("prog_id", bpf_obj_id_vnr(k, self._prog())),
        ]

    def _held(self) -> list[tuple[BpfObject, str]]:
        """Its program, while the link is live."""
        return [(self._prog(), "link")] if self.refcnt else []

    def _listing(self, seen: Callable[[BpfObject], int]) -> str:
        """``bpftool link show``: type and program."""
        kind = _LINK_TYPES.get(self.link_type, f"type {self.link_type}")
        return f"{kind}  prog {seen(self._prog())}"

    def _free(self) -> None:
        """``bpf_link_free``: free the ids, then release the program."""
        super()._free()
        bpf_obj_put(self._prog(), "link")


_MAP_TYPES = {1: "hash", 2: "array"}
_PROG_TYPES = {1: "socket_filter", 2: "kprobe", 17: "raw_tracepoint"}
_LINK_TYPES = {1: "raw_tracepoint", 7: "perf_event"}


def object_info(obj: BpfObject) -> MapInfo | ProgInfo | LinkInfo:
    """``bpf_obj_get_info_by_fd``'s record of ``obj``, its ids as ``current`` sees them."""
    if obj.freed:
        _use(obj, "bpf_obj_get_info_by_fd")
    return obj._info()


def object_fdinfo(obj: BpfObject) -> list[tuple[str, object]]:
    """``bpf_*_show_fdinfo``: the fdinfo rows of ``obj`` after ``pos`` and ``flags``."""
    if obj.freed:
        _use(obj, "bpf_obj_show_fdinfo")
    return obj._fdinfo_rows()


def object_holds(obj: BpfObject) -> list[tuple[BpfObject, str]]:
    """The references ``obj`` holds on other objects, as ``(object, holder)`` pairs."""
    return obj._held()


def id_seen_from(ns: Namespace, obj: BpfObject) -> int:
    """The id of ``obj`` in ``ns``: 0 if not visible there (no D6 shortcut)."""
    assert obj.obj_id is not None  # a map used by a live prog, a link's prog: both live
    numbers = obj.obj_id.numbers
    entry = numbers[ns.level] if ns.level < len(numbers) else None
    return entry.nr if entry is not None and entry.ns is ns else 0


def object_listing(obj: BpfObject, ns: Namespace) -> str:
    """``bpftool <type> show``'s description of ``obj`` after its id, as ``ns`` sees it."""
    return obj._listing(lambda other: id_seen_from(ns, other))


def bpf_file(obj: BpfObject) -> File:
    """A new file for ``obj`` (``anon_inode_getfile``), of its registered kind."""
    return File(obj.FILE_KIND, obj)


def release_file(file: File) -> None:
    """``__fput``: what the last reference to ``file`` releases (``f_op->release``)."""
    kind = file.kind
    if kind in BPF_FILE_KINDS:
        bpf_obj_put(file.obj, "file")
    elif kind is FileKind.BPF_NS:
        put_bpfns(file.obj, "file")
    elif kind is FileKind.USER_NS:
        put_user_ns(file.obj, "file")


def fput(file: File) -> None:
    """``fput``: drop one reference to ``file``; the last one releases what it refers to."""
    if file.fput():
        release_file(file)


def put_files(files: FdTable) -> None:
    """``put_files_struct``: the last user closes every fd (see :meth:`FdTable.put`)."""
    files.put(release_file)


# -- records returned to userspace ----------------------------------------------------


@attrs.frozen
class MapInfo:
    """``struct bpf_map_info`` (the fields bpfns models); ``id`` is ``vnr``."""

    id: int
    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str


@attrs.frozen
class ProgInfo:
    """``struct bpf_prog_info``; ``id`` and every ``map_ids`` entry are ``vnr``."""

    id: int
    type: int
    name: str
    map_ids: tuple[int, ...]
    created_by_uid: int


@attrs.frozen
class LinkInfo:
    """``struct bpf_link_info``; ``id`` and ``prog_id`` are ``vnr``."""

    id: int
    type: int
    prog_id: int


@attrs.frozen
class AuditRecord:
    """An ``AUDIT_BPF`` record: ``prog-id=<vnr> op=LOAD|UNLOAD`` (rfc.md 2.5).

    ``pid`` is the task that ran the code (the loader, or the last releaser).
    """

    op: str
    prog_id: int
    pid: int


@attrs.define(eq=False, repr=False)
class LinkPrimer:
    """``struct bpf_link_primer``: a BPF_LINK_CREATE between its prime and its settle.

    :meth:`bpfns.Task.link_prime` reserved ``fd`` in the task's file table and gave the
    link its ids (the global one is ``id``); the link is findable but not published.
    Finish it with :meth:`settle` (attachment succeeded) or :meth:`cleanup` (it
    failed). Until then the task is inside that syscall: it cannot exit or unshare
    its file table, and :meth:`bpfns.Kernel.link_primers` lists the primer.

    Attributes:
        task: the task making the call; its file table holds the reserved ``fd``
            (the task cannot change its table until the call is finished).
        link: the new :class:`bpfns.BpfLink`.
        done: whether :meth:`settle` or :meth:`cleanup` ran.
    """

    task: CurrentTask
    link: BpfLink
    fd: int
    id: int
    obj_id: ObjId
    done: bool = False
    _trace_kind: ClassVar[str] = "primer"

    def __attrs_post_init__(self) -> None:
        self.link.kernel.primers[self] = None

    @property
    def _tracer(self) -> Tracer | None:
        return self.link.kernel.tracer

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        return f"<LinkPrimer pid={self.task.pid} fd={self.fd} id={self.id} {state}>"

    @traced
    def settle(self) -> int:
        """``bpf_link_settle``: publish ``link->id`` and install the fd; returns the fd.

        Raises:
            ValueError: if the primer was already settled or cleaned up, or its task
                was killed by an oops before it could finish.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> primer = t.link_prime(t.prog_load())
        >>> t.obj_get_info_by_fd(primer.settle()).id
        1
        """
        self._finish("settle")
        smp = self.link.kernel.smp
        if smp is not None:
            smp.spin_lock(LINK_LOCK, f"spin_lock_bh({LINK_LOCK}): bpf_link_settle")
        self.link.id, self.link.obj_id = self.id, self.obj_id
        if smp is not None:
            smp.spin_unlock(LINK_LOCK, f"spin_unlock_bh({LINK_LOCK}): link {self.id} settled")
        self._files().fd_install(self.fd, bpf_file(self.link))
        return self.fd

    @traced
    def cleanup(self) -> None:
        """``bpf_link_cleanup``: attachment failed; free the id, the fd and the link.

        Raises:
            ValueError: as :meth:`settle`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> primer = t.link_prime(t.prog_load())
        >>> primer.cleanup(); t.kernel.link_primers()
        []
        """
        self._finish("cleanup")
        _bpf_link_cleanup(self.task, self)

    def _files(self) -> FdTable:
        """The task's file table (a live task has one)."""
        assert self.task.files is not None
        return self.task.files

    def _finish(self, what: str) -> None:
        """Check that the call can finish, then mark it finished (nothing before)."""
        if self.done:
            raise ValueError(f"LinkPrimer.{what}: this link was already settled or cleaned up")
        if not self.task.alive:
            raise ValueError(
                f"LinkPrimer.{what}: {self.task!r}, which primed this link, was killed by an "
                "oops inside BPF_LINK_CREATE; nothing can finish the call (the kernel is "
                "tainted)"
            )
        self.done = True
        del self.link.kernel.primers[self]

    def _check(self) -> None:
        """Assert the invariants of a pending primer."""
        assert self.task.alive, "primers belong to live tasks (its task was killed)"
        assert not self.done
        assert self._files().is_reserved(self.fd), f"fd {self.fd} is not reserved"
        assert self.link.id == 0 and self.link.obj_id is None, "published before settle"
        assert self.obj_id.live and self.obj_id.obj is self.link and self.obj_id.nr() == self.id
        assert self.link.holders.get("file") == 1, "the primer's anon file owns a reference"


@syscall("bpf_link_cleanup")
def _bpf_link_cleanup(task: CurrentTask, primer: LinkPrimer) -> None:
    """The kernel side of :meth:`LinkPrimer.cleanup`, run as ``task``."""
    k = task.kernel
    free_obj_id(k, primer.obj_id, ObjType.LINK, _nested=True)
    primer._files().put_unused(primer.fd)
    primer.link.holders["file"] = 0
    primer.link.refcnt = 0
    bpf_obj_free(primer.link, "bpf_link_cleanup")
    bpf_obj_put(primer.link._prog(), "link")
