"""BPF objects: ``struct bpf_map``, ``struct bpf_prog``, ``struct bpf_link`` (include/linux/bpf.h).

Each holds its level-0 id (``map->id`` ...) and, since RFC patch 08-10, its id record
(``obj_id``). Objects are refcounted by files, bpffs pins, programs (their used maps)
and links (their program); the last reference frees the ids at once (semantics §2.3
"Callers"), and a program's maps go after an RCU grace period. The records returned to
userspace (``bpf_*_info``, audit records) are here too; the commands that create and use
objects are in :mod:`bpfns._syscall`.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

import attrs

from ._bpf_namespace import Namespace, NsContext, Nsproxy, ObjType, put_bpfns
from ._bpf_uapi import AuditRecord, BtfInfo, LinkInfo, MapInfo, ProgInfo
from ._bpffs import Bpffs
from ._capability import Cap, Cred
from ._errors import BpfnsError, KernelBug
from ._files import FdTable, File, FileKind
from ._idr import Idr
from ._netdev import Netdev, NetdevTable
from ._obj_id import IDR_LOCK, ObjId, free_obj_id, stale_nr_ns
from ._sanitizer import BugKind
from ._trace import Tracer, replayable
from ._ucount import put_user_ns

if TYPE_CHECKING:
    from ._link import LinkPrimer

__all__ = [
    "BPF_FILE_KINDS",
    "BPF_MAP_TYPE_ARRAY_OF_MAPS",
    "BPF_MAP_TYPE_HASH_OF_MAPS",
    "LINK_LOCK",
    "MAP_IN_MAP_TYPES",
    "OBJECT_TYPES",
    "BpfContext",
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProg",
    "CurrentTask",
    "PerfEvent",
    "SyscallTask",
    "bpf_audit_prog",
    "bpf_file",
    "bpf_obj_free",
    "bpf_obj_free_id",
    "bpf_obj_get",
    "bpf_obj_id_vnr",
    "bpf_obj_inc_not_zero",
    "bpf_obj_put",
    "fdget",
    "fput",
    "id_seen_from",
    "map_offload_bind",
    "map_offload_unbind",
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
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
BPF_MAP_TYPE_HASH_OF_MAPS = 13
#: The map-in-map types: their values are inner maps (``bpf_map_meta_alloc``).
MAP_IN_MAP_TYPES = (BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS)
BPF_PROG_TYPE_KPROBE = 2
BPF_LINK_TYPE_RAW_TRACEPOINT = 1
BPF_LINK_TYPE_PERF_EVENT = 7
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
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
    def find_vpid(self, pid: int) -> SyscallTask: ...


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
        netdevs: the network devices (``lo`` and those of
            :meth:`bpfns.Kernel.register_netdev`), which offloaded maps bind to.
        btf_idr: the global BTF ids (BTF is not namespaced; :mod:`bpfns._btf`).
        preloaded: the links the built-in BPF preload keeps (``Kernel(bpf_preload=
            "builtin")``; :mod:`bpfns._preload`), each holding a "preload" reference.
    """

    objects: dict[BpfObject, None] = attrs.field(init=False, factory=dict)
    primers: dict[LinkPrimer, None] = attrs.field(init=False, factory=dict)
    bpffs: Bpffs[BpfObject] = attrs.field(init=False, factory=lambda: Bpffs(_pin, _unpin))
    audit_log: list[AuditRecord] = attrs.field(init=False, factory=list)
    current: CurrentTask | None = attrs.field(init=False, default=None)
    netdevs: NetdevTable = attrs.field(init=False, factory=NetdevTable)
    btf_idr: Idr = attrs.field(init=False, factory=Idr)
    preloaded: list[BpfObject] = attrs.field(init=False, factory=list)


def fdget(task: CurrentTask, fd: int) -> File:
    """``fdget(fd)`` in ``task``'s file table: the open file (``fd`` already checked).

    Raises:
        BpfnsError: EBADF if ``fd`` is not open.
    """
    files = task.files
    assert files is not None  # a task in a syscall (or queried by one) is alive
    return files.get(fd)


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
    if ns is None or obj_id is None:
        return 0
    if obj_id.live:
        return obj_id.nr_ns(ns)
    k.sanitizer.report(  # only the offload destroy leaves a freed record behind (D5)
        "D5",
        BugKind.USE_AFTER_FREE,
        f"{what} read {type(obj).__name__} {obj.name!r}'s obj_id, which "
        "__bpf_map_offload_destroy freed when its netdev went away without clearing "
        "map->obj_id",
        what,
        k.step,
    )
    return stale_nr_ns(obj_id, ns)


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
    IDR per :class:`ObjType`. A type with ``NAMESPACED = False`` (BTF) has no
    ObjType: its ids come from a global IDR of its own, and only its file kind is
    registered. Adding a type is this class plus its syscalls (see the model page of
    the docs).

    Raises:
        ValueError: if the ObjType or file kind is already registered.
    """
    if cls.FILE_KIND in BPF_FILE_KINDS or (cls.NAMESPACED and cls.TYPE in OBJECT_TYPES):
        what = f"{cls.TYPE!r} or " if cls.NAMESPACED else ""
        raise ValueError(f"{cls.__name__}: {what}{cls.FILE_KIND!r} is registered")
    if cls.NAMESPACED:
        OBJECT_TYPES[cls.TYPE] = cls
        cls.KIND = cls.TYPE.name
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
    #: Whether each namespace numbers objects of this type (an IDR per ObjType).
    NAMESPACED: ClassVar[bool] = True
    #: The type's name in snapshots and reports: the ObjType's, or ``"BTF"``.
    KIND: ClassVar[str]
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

    def _info(self) -> MapInfo | ProgInfo | LinkInfo | BtfInfo:
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

    def _free(self) -> None:
        """The last reference is gone: free the ids (``bpf_map_free_id``), then the object."""
        bpf_obj_free_id(self)
        bpf_obj_free(self, "its last reference")


def bpf_obj_free_id(obj: BpfObject, *, clear_obj_id: bool = True) -> None:
    """``if (x->id) { bpf_free_obj_id(x->obj_id, type); x->id = 0; }`` (patch 05).

    An offloaded map whose device went away had its ids freed already (its ``id`` is
    0). ``clear_obj_id=False`` is the posted ``bpf_map_free_id`` on that path, which
    leaves ``obj_id`` pointing at the freed record (D5); on the last reference the
    object goes too, so bpfns drops the pointer.
    """
    if not obj.id:
        obj.obj_id = None
        return
    assert obj.obj_id is not None
    free_obj_id(obj.kernel, obj.obj_id, obj.TYPE, _nested=True)
    obj.id = 0
    if clear_obj_id:
        obj.obj_id = None


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
    #: ``map_ifindex`` at creation: 0 for a host map, else offloaded (for good).
    ifindex: int = 0
    #: ``offmap->netdev``: the device of an offloaded map, None once it went away.
    netdev: Netdev | None = None
    #: ``map->inner_map_meta`` of a map-in-map: the inner maps' (type, key_size,
    #: value_size, max_entries); None for other maps.
    inner_meta: tuple[int, int, int, int] | None = None
    #: The elements by key: ints, or a map-in-map's inner maps (see
    #: :mod:`bpfns._map_in_map`); None until the first update (most maps never get one).
    elements: dict[int, int | BpfMap] | None = attrs.field(default=None, repr=False)

    def _info(self) -> MapInfo:
        """``bpf_map_get_info_by_fd``; an offloaded map whose device is gone: ENODEV."""
        vnr = bpf_obj_id_vnr(self.kernel, self)
        if self.ifindex and self.netdev is None:  # bpf_map_offload_info_fill
            raise BpfnsError(
                errno.ENODEV,
                f"map {self.name!r} was offloaded to ifindex {self.ifindex}, which is gone",
            )
        return MapInfo(
            vnr,
            self.map_type,
            self.key_size,
            self.value_size,
            self.max_entries,
            self.name,
            0 if self.netdev is None else self.netdev.ifindex,
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

    def _held(self) -> list[tuple[BpfObject, str]]:
        """A map-in-map's inner maps (``bpf_map_fd_get_ptr``)."""
        elements = self.elements
        if not elements:
            return []
        return [(v, "outer") for v in elements.values() if isinstance(v, BpfMap)]

    def _free(self) -> None:
        """``bpf_map_put``'s last reference: the device, and a map-in-map's inner maps.

        An offloaded map leaves its device; a map-in-map puts its inner maps
        (``map_fd_put_ptr``).
        """
        bpf_obj_free_id(self)  # BpfObject._free, inline: the close of every map runs it
        bpf_obj_free(self, "its last reference")
        if self.netdev is not None:  # bpf_map_offload_map_free
            map_offload_unbind(self)
        if self.elements:
            for inner, holder in self._held():
                bpf_obj_put(inner, holder)
            self.elements = None

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
        bpf_obj_free_id(self)
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
    #: A raw tracepoint link's tracepoint (``BPF_RAW_TRACEPOINT_OPEN``), else "".
    tp_name: str = ""

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


def map_offload_bind(m: BpfMap, dev: Netdev) -> None:
    """``list_add_tail(&offmap->offloads, &ondev->maps)``: ``m`` is offloaded to ``dev``."""
    dev.offloaded[m] = None
    m.netdev = dev


def map_offload_unbind(m: BpfMap) -> None:
    """``list_del_init(&offmap->offloads); offmap->netdev = NULL``."""
    assert m.netdev is not None
    del m.netdev.offloaded[m]
    m.netdev = None


def object_info(obj: BpfObject) -> MapInfo | ProgInfo | LinkInfo | BtfInfo:
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
    elif kind is FileKind.PERF_EVENT and file.obj.prog is not None:  # perf_event_free_bpf_prog
        bpf_obj_put(file.obj.prog, "perf_event")


def fput(file: File) -> None:
    """``fput``: drop one reference to ``file``; the last one releases what it refers to."""
    if file.fput():
        release_file(file)


def put_files(files: FdTable) -> None:
    """``put_files_struct``: the last user closes every fd (see :meth:`FdTable.put`)."""
    files.put(release_file)


@attrs.define(eq=False)
class PerfEvent:
    """``struct perf_event`` of a tracepoint, as far as BPF attaches to it.

    Attributes:
        tracepoint: the tracepoint's name (what ``BPF_TASK_FD_QUERY`` reports).
        prog: the program attached with ``PERF_EVENT_IOC_SET_BPF`` (a reference held by
            the event), or None.
    """

    tracepoint: str
    prog: BpfProg | None = None
