"""kernel/bpf/syscall.c after RFC patches 05 and 08-11: the bpf() commands.

The objects themselves (maps, programs, links and their refcounts) are in
:mod:`bpfns._bpf_object`.

Specification: semantics §2.3 ("Callers"), 2.5 (what userspace sees) and the defects D3, D8.
Names follow libbpf (``bpf_map_create``, ``bpf_prog_load``, ``bpf_link_create``, ...).

* Every object gets its ids with ``bpf_alloc_obj_id`` in the **caller's** namespace, and
  ``map->id``/``prog->aux->id``/``link->id`` hold the level-0 id.
* Every id userspace sees is ``vnr``: translated to the namespace of the task making the
  call (or reading the fdinfo), subject to D6.
* Objects are refcounted by files, bpffs pins, programs (their used maps) and links
  (their program). The last reference frees the ids at once; a program's used maps are
  released after an RCU grace period.
* Links are created in two phases: :meth:`BpfCommands.link_prime` allocates the id (the
  object is findable but ``link->id`` is still 0, so GET_FD_BY_ID says EAGAIN), and
  :meth:`LinkPrimer.settle` publishes it.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from typing import TypeVar

from ._args import INT_MAX, INT_MIN, U32_MAX, check_int, check_str
from ._bpf_namespace import ObjType
from ._bpf_object import (
    BPF_F_RDONLY,
    BPF_F_WRONLY,
    BPF_FILE_KINDS,
    BPF_LINK_TYPE_PERF_EVENT,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_OBJ_NAME_LEN,
    BPF_PROG_TYPE_KPROBE,
    MAP_IN_MAP_TYPES,
    BpfLink,
    BpfMap,
    BpfObject,
    BpfProg,
    SyscallTask,
    bpf_audit_prog,
    bpf_file,
    bpf_obj_free,
    bpf_obj_get,
    bpf_obj_inc_not_zero,
    bpf_obj_put,
    fdget,
    map_offload_bind,
    object_info,
    syscall,
)
from ._bpf_uapi import BtfInfo, LinkInfo, MapInfo, ProgInfo
from ._capability import Cap
from ._errors import BpfnsError
from ._fault import FaultSite
from ._files import File, FileKind
from ._link import LinkPrimer
from ._map_in_map import bpf_map_meta_alloc
from ._obj_id import (
    IDR_LOCK,
    KernelObjId,
    ObjId,
    alloc_obj_id,
    bpf_obj_id_nr,
    free_obj_id,
    publication_deferred,
    publish_obj_id,
)
from ._offload import bpf_map_offload_map_alloc
from ._trace import traced

__all__ = ["BpfCommands", "BpfTask", "bpf_capable", "bpfns_gate"]

#: ``bpf_capable()`` holds for a cred in the initial user namespace with one of these.
_BPF_CAPS = frozenset({Cap.CAP_BPF, Cap.CAP_SYS_ADMIN})
#: A non-empty name ``bpf_obj_name_cpy`` accepts (see :func:`_check_name`).
_NAME = re.compile(rf"[A-Za-z0-9_.]{{1,{BPF_OBJ_NAME_LEN - 1}}}")
_BPF_OBJECT, _FILE = FaultSite.BPF_OBJECT, FaultSite.FILE


#: What the bpf() commands read of their task.
BpfTask = SyscallTask


# -- what the commands share ------------------------------------------------------------


def bpf_capable(task: BpfTask, what: str) -> None:
    """``bpf_capable()``: CAP_BPF or CAP_SYS_ADMIN (unprivileged BPF is disabled)."""
    if not (task.capable(Cap.CAP_BPF) or task.capable(Cap.CAP_SYS_ADMIN)):
        raise BpfnsError(
            errno.EPERM, f"{what} needs CAP_BPF or CAP_SYS_ADMIN in the init user namespace"
        )


def bpfns_gate(task: BpfTask, what: str) -> None:
    """Patch 11: ``capable(CAP_SYS_ADMIN) || bpfns_capable()``, else EPERM."""
    if task.capable(Cap.CAP_SYS_ADMIN):
        return
    if not task.bpf_ns.is_init and task.capable(Cap.CAP_BPF):
        return  # bpfns_capable()
    raise BpfnsError(
        errno.EPERM,
        f"{what} needs CAP_SYS_ADMIN, or CAP_BPF inside a non-init bpf namespace",
    )


def _bpf_file(task: BpfTask, fd: int, kinds: tuple[FileKind, ...] | None = None) -> File:
    """``fdget`` of a BPF object's fd (of one of ``kinds``, any BPF kind by default)."""
    check_int("fd", fd, INT_MIN, INT_MAX, "int")
    file = fdget(task, fd)
    allowed = kinds or tuple(BPF_FILE_KINDS)
    if file.kind not in allowed:
        names = "/".join(kind.value for kind in allowed)
        raise BpfnsError(errno.EINVAL, f"fd {fd} is a {file.kind.value}, not a {names}")
    return file


def _info_file(task: BpfTask, fd: int) -> File:
    """``bpf_obj_get_info_by_fd``'s ``fdget``: EBADFD, not EBADF, for an fd not open."""
    try:
        return _bpf_file(task, fd)
    except BpfnsError as err:
        if err.errno != errno.EBADF:
            raise
        raise BpfnsError(errno.EBADFD, f"fd {fd} is not open in this task") from None


def _alloc_ids(task: BpfTask, obj: BpfObject, d3: Callable[[], int] | None) -> int | None:
    """``bpf_alloc_obj_id`` in the caller's namespace, then ``id = bpf_obj_id_nr``.

    On failure the object is freed directly (``map->ops->map_free``,
    ``__bpf_prog_put_noref``), not through its refcount: as posted (D7) a concurrent
    lookup may have taken a reference meanwhile. As posted (D3) the command then
    returns 0, which this returns, after ``d3()`` undoes what the command did first
    (None: nothing to undo); FIXED raises the error. With D7 fixed on simulated CPUs the
    ids are published only once ``id`` and ``obj_id`` are written.
    """
    k = task.kernel
    nsproxy = task.nsproxy
    assert nsproxy is not None  # a task in a syscall is alive
    try:
        obj_id = alloc_obj_id(k, nsproxy.bpf_ns, obj, obj.TYPE, _nested=True)
    except BpfnsError:
        bpf_obj_free(obj, "the error path of its creation")
        if k.behavior.d3_create_returns_zero:
            return 0 if d3 is None else d3()
        raise
    obj.obj_id, obj.id = obj_id, bpf_obj_id_nr(obj_id)
    if k.smp is not None and publication_deferred(k):  # a sequential kernel: no call
        publish_obj_id(k, obj_id)
    k.objects[obj] = None
    return None


def _install(task: BpfTask, obj: BpfObject) -> int:
    """``bpf_*_new_fd``: on EMFILE or ENOMEM the object is put (its ids freed)."""
    assert task.files is not None
    k = task.kernel
    try:
        faults = k.faults
        if faults.armed:
            faults.inject(_FILE)  # anon_inode_getfd
        if k.smp is not None:
            k.smp.preempt("fd_install")
        return task.files.install(File(obj.FILE_KIND, obj))  # bpf_file, inline
    except BpfnsError:
        bpf_obj_put(obj, "file")
        raise


def _map_create_args(
    task: BpfTask,
    map_type: object,
    name: object,
    key_size: object,
    value_size: object,
    max_entries: object,
) -> tuple[int, str, int, int, int]:
    """The argument checks of ``BPF_MAP_CREATE``, in order; the checked values.

    Types and ranges first (TypeError, ValueError: what no C caller can pass), then
    what the kernel checks: ``bpf_capable()`` (EPERM), the name (EINVAL), the sizes
    (EINVAL). ``map_create`` runs this whenever :func:`_map_create_common` is not
    sure, so both accept exactly the same calls.
    """
    checked_name = check_str("name", name)
    checked = [
        check_int(label, value, 0, U32_MAX, "u32")
        for label, value in (
            ("map_type", map_type),
            ("key_size", key_size),
            ("value_size", value_size),
            ("max_entries", max_entries),
        )
    ]
    bpf_capable(task, "BPF_MAP_CREATE")
    _check_name(checked_name)
    if not all(checked[1:]):
        raise BpfnsError(errno.EINVAL, "key_size, value_size and max_entries must be > 0")
    return checked[0], checked_name, checked[1], checked[2], checked[3]


def _map_create_common(
    task: BpfTask,
    map_type: object,
    name: object,
    key_size: object,
    value_size: object,
    max_entries: object,
    map_ifindex: object,
    inner_map_fd: object,
) -> bool:
    """Whether :func:`_map_create_args` would accept these arguments unchanged. O(1).

    The precheck of the common case: plain ints and a plain str in range, a cred in
    the initial user namespace with CAP_BPF or CAP_SYS_ADMIN (where ``capable()`` is
    exactly "the cred holds the cap"), a host map (no ``map_ifindex``) of a type below
    the map-in-map ones, no ``inner_map_fd``. False means "not sure": the caller runs
    the full check, which raises or returns the checked values; this never raises.
    """
    cred = task.cred
    return bool(
        cred.user_ns is task.kernel.init_user_ns
        and not _BPF_CAPS.isdisjoint(cred.caps)
        and name.__class__ is str
        and (not name or _NAME.fullmatch(name))
        and key_size.__class__ is int
        and 0 < key_size <= U32_MAX
        and value_size.__class__ is int
        and 0 < value_size <= U32_MAX
        and max_entries.__class__ is int
        and 0 < max_entries <= U32_MAX
        and map_type.__class__ is int
        and 0 <= map_type < BPF_MAP_TYPE_ARRAY_OF_MAPS
        and map_ifindex.__class__ is int
        and not map_ifindex
        and inner_map_fd is None
    )


def _map_alloc(
    task: BpfTask,
    checked: tuple[int, str, int, int, int],
    map_ifindex: object,
    inner_map_fd: object,
) -> BpfMap:
    """``find_and_alloc_map`` off the common case: the type's own checks, then the map.

    ``checked`` is what :func:`_map_create_args` returned; then come the offload and
    map-in-map checks, in the kernel's order.
    """
    ifindex = check_int("map_ifindex", map_ifindex, 0, U32_MAX, "u32")
    inner_fd = None
    if inner_map_fd is not None:
        inner_fd = check_int("inner_map_fd", inner_map_fd, INT_MIN, INT_MAX, "int")
    type_, checked_name, key, value, entries = checked
    meta = None
    if type_ in MAP_IN_MAP_TYPES:  # fd_*_map_alloc_check, then bpf_map_meta_alloc
        if value != 4:
            raise BpfnsError(errno.EINVAL, "a map-in-map's value_size is 4 (an inner map fd)")
        meta = bpf_map_meta_alloc(task, inner_fd)
    if ifindex:
        bpf_map_offload_map_alloc(task, type_, ifindex)
    k = task.kernel
    if k.faults.armed:
        k.faults.inject(_BPF_OBJECT)  # map->ops->map_alloc
    m = BpfMap(k, checked_name, 0, None, 1, {"file": 1}, type_, key, value, entries, ifindex)
    m.inner_meta = meta
    return m


def _get_next_id(task: BpfTask, type_: ObjType, start_id: int) -> int:
    """``bpf_obj_get_next_id``: the first id above ``start_id`` in the caller's ns."""
    cmd = f"BPF_{type_.name}_GET_NEXT_ID"
    check_int("start_id", start_id, 0, U32_MAX, "u32")
    if start_id >= INT_MAX:
        raise BpfnsError(errno.EINVAL, f"{cmd}: start_id {start_id} >= INT_MAX")
    bpfns_gate(task, cmd)
    smp = task.kernel.smp
    lock = IDR_LOCK[type_]
    if smp is not None:
        smp.spin_lock(lock, f"spin_lock_bh({lock}): idr_get_next")
    found = task.bpf_ns.idr[type_].get_next(start_id + 1)
    if smp is not None:
        smp.spin_unlock(lock, f"spin_unlock_bh({lock})")
    if found is None:
        raise BpfnsError(errno.ENOENT, f"{cmd}: no id above {start_id}; the walk is done")
    return found[0]


def _get_fd_by_id(task: BpfTask, type_: ObjType, id_: int, open_flags: int = 0) -> int:
    """``bpf_*_get_fd_by_id``: a new fd for object ``id_`` of the caller's namespace.

    Under the type's IDR lock: ``idr_find``, then (a link) EAGAIN while ``link->id`` is
    0, then ``inc_not_zero`` (ENOENT if the last reference is already gone). The fd is
    made after the unlock; if that fails, the reference is put again.
    """
    k = task.kernel
    cmd = f"BPF_{type_.name}_GET_FD_BY_ID"
    check_int("id", id_, 0, U32_MAX, "u32")
    check_int("open_flags", open_flags, 0, U32_MAX, "u32")
    if open_flags & ~(BPF_F_RDONLY | BPF_F_WRONLY):  # BPF_OBJ_FLAG_MASK
        raise BpfnsError(errno.EINVAL, f"{cmd}: unknown open_flags {open_flags:#x}")
    bpfns_gate(task, cmd)
    if open_flags == BPF_F_RDONLY | BPF_F_WRONLY:  # bpf_get_file_flag, after the gate
        raise BpfnsError(errno.EINVAL, f"{cmd}: open_flags RDONLY|WRONLY is contradictory")
    smp = k.smp
    lock = IDR_LOCK[type_]
    if smp is not None:
        smp.spin_lock(lock, f"spin_lock_bh({lock}): idr_find({id_})")
    try:
        obj = _lookup(task, type_, id_, cmd)
    finally:
        if smp is not None:
            smp.spin_unlock(lock, f"spin_unlock_bh({lock})")
    try:
        k.faults.inject(_FILE)
        if smp is not None:
            smp.preempt("fd_install")
        assert task.files is not None
        return task.files.install(bpf_file(obj))
    except BpfnsError:
        bpf_obj_put(obj, "file")
        raise


def _lookup(task: BpfTask, type_: ObjType, id_: int, cmd: str) -> BpfObject:
    """``idr_find`` + ``inc_not_zero`` (the lookup's critical section); the object."""
    handle = task.bpf_ns.idr[type_].find(id_) if id_ else None
    if handle is None:
        raise BpfnsError(
            errno.ENOENT, f"{cmd}: no {type_.name.lower()} {id_} in this bpf namespace"
        )
    obj = _object_of(handle, type_, cmd, id_)
    if type_ is ObjType.LINK and not obj.id:  # a primed, unsettled link (bpf_link_by_id)
        raise BpfnsError(errno.EAGAIN, f"{cmd}: link {id_} is not settled yet; retry")
    if not bpf_obj_inc_not_zero(obj, "file"):  # the last reference is already gone
        raise BpfnsError(
            errno.ENOENT, f"{cmd}: {type_.name.lower()} {id_} is being freed (refcount 0)"
        )
    return obj


# -- the commands ---------------------------------------------------------------------


class BpfCommands:
    """The ``bpf()`` commands, as methods of :class:`bpfns.Task` (libbpf names).

    Each method runs as ``self`` (a :class:`BpfTask`), inside
    :meth:`bpfns.Task.enter_kernel`.
    """

    __slots__ = ()

    # -- creation -------------------------------------------------------------------

    @syscall("bpf(BPF_MAP_CREATE)")
    def map_create(
        self: BpfTask,
        map_type: int = BPF_MAP_TYPE_ARRAY,
        name: str = "",
        key_size: int = 4,
        value_size: int = 4,
        max_entries: int = 1,
        *,
        map_ifindex: int = 0,
        inner_map_fd: int | None = None,
    ) -> int:
        """``BPF_MAP_CREATE`` (libbpf ``bpf_map_create``): a new map; returns its fd.

        The map gets an id in the caller's namespace and every ancestor. A non-zero
        ``map_ifindex`` offloads it to that network device
        (:meth:`bpfns.Kernel.register_netdev`; unregistering the device destroys its
        maps' ids, D5). A map-in-map (``BPF_MAP_TYPE_ARRAY_OF_MAPS``, ``HASH_OF_MAPS``)
        takes its inner-map template from ``inner_map_fd`` (value size 4: an fd).

        Raises:
            BpfnsError: EPERM without CAP_BPF/CAP_SYS_ADMIN; EINVAL for a name longer
                than 15 characters or zero sizes; for an offloaded map: EPERM without
                CAP_SYS_ADMIN, EINVAL for a type other than hash or array or an unknown
                ifindex, EOPNOTSUPP for ``lo``; for a map-in-map: EINVAL unless
                ``value_size`` is 4, EBADF/EINVAL for a bad ``inner_map_fd`` or a
                map-in-map as template; ENOSPC/ENOMEM if the ids cannot be
                allocated (FIXED) -- as posted the call instead **returns 0** and frees
                the map (D3); EMFILE if the file table is full, or ENOMEM when an
                injected allocation fails (after the ids: they were allocated and freed
                again, and their cursors stay advanced).
            TypeError, ValueError: for an argument of the wrong type or out of its C
                range (an ``int`` subclass such as an IntEnum, or a ``str`` subclass,
                is taken as its plain value).

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.obj_get_info_by_fd(t.map_create(name="counters")).id
        1
        """
        k = self.kernel
        if _map_create_common(
            self, map_type, name, key_size, value_size, max_entries, map_ifindex, inner_map_fd
        ):
            if k.faults.armed:
                k.faults.inject(_BPF_OBJECT)  # map->ops->map_alloc
            # id 0, no record yet, one reference: the file's (the fields in order)
            new = BpfMap(
                k, name, 0, None, 1, {"file": 1}, map_type, key_size, value_size, max_entries
            )
        else:
            checked = _map_create_args(self, map_type, name, key_size, value_size, max_entries)
            new = _map_alloc(self, checked, map_ifindex, inner_map_fd)
        failed = _alloc_ids(self, new, None)  # D3: the map is freed, fd 0
        if failed is not None:
            return failed
        if new.ifindex:
            dev = k.netdevs.lookup(new.ifindex)
            assert dev is not None  # checked by _map_alloc; a syscall does not yield
            map_offload_bind(new, dev)
        return _install(self, new)

    @syscall("bpf(BPF_PROG_LOAD)")
    def prog_load(
        self: BpfTask,
        prog_type: int = BPF_PROG_TYPE_KPROBE,
        name: str = "",
        maps: tuple[int, ...] = (),
    ) -> int:
        """``BPF_PROG_LOAD`` (libbpf ``bpf_prog_load``): a program using ``maps`` (fds).

        The program takes a reference on each used map (released after an RCU grace
        period once the program is freed). An ``AUDIT_BPF`` LOAD record is written with
        ``prog-id`` as seen from the loader's namespace.

        Raises:
            BpfnsError: EPERM without CAP_BPF/CAP_SYS_ADMIN; EBADF/EINVAL for a map fd
                that is not open or not a map; EINVAL for a bad name; ENOSPC/ENOMEM if
                the ids cannot be allocated (FIXED) -- as posted the call **returns 0**
                (D3); ENOMEM when an injected allocation fails; EMFILE if the file table
                is full (after the ids, the program is unloaded: LOAD and UNLOAD
                records, ids allocated and freed, map references dropped after the next
                grace period).
            TypeError, ValueError: for arguments of the wrong type; ``maps`` is a tuple
                or list of fds.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> m = t.map_create(name="counts")
        >>> info = t.obj_get_info_by_fd(t.prog_load(name="probe", maps=(m,)))
        >>> info.id, info.map_ids
        (1, (1,))
        """
        k = self.kernel
        prog_type = check_int("prog_type", prog_type, 0, U32_MAX, "u32")
        name = check_str("name", name)
        if not isinstance(maps, tuple | list):
            raise TypeError(f"maps must be a tuple of map fds, not {type(maps).__name__}")
        fds = [check_int("maps[]", fd, INT_MIN, INT_MAX, "int") for fd in maps]
        bpf_capable(self, "BPF_PROG_LOAD")
        _check_name(name)
        used: list[BpfMap] = []
        for fd in fds:
            m = _bpf_file(self, fd, (FileKind.BPF_MAP,)).obj
            if m not in used:
                used.append(m)
        k.faults.inject(_BPF_OBJECT)  # bpf_prog_alloc
        prog = BpfProg(k, name, prog_type=prog_type, used_maps=tuple(used))
        for m in used:  # bpf_map_inc for each used map (verifier)
            bpf_obj_get(m, "prog")
        bpf_obj_get(prog, "file")

        def d3() -> int:
            for m in used:
                bpf_obj_put(m, "prog")
            return 0

        try:
            failed = _alloc_ids(self, prog, d3)
        except BpfnsError:
            d3()
            raise
        if failed is not None:
            return failed
        bpf_audit_prog(k, prog, "LOAD")
        return _install(self, prog)

    @syscall("bpf(BPF_LINK_CREATE)")
    def link_prime(
        self: BpfTask, prog_fd: int, link_type: int = BPF_LINK_TYPE_PERF_EVENT
    ) -> LinkPrimer:
        """``bpf_link_prime``: reserve an fd and allocate the link's ids, not yet published.

        Until :meth:`LinkPrimer.settle`, the link is in the IDRs but ``link->id`` is 0:
        ``link_get_fd_by_id`` on its id gives EAGAIN. :meth:`LinkPrimer.cleanup` is the
        attach-failure path.

        Raises:
            BpfnsError: EBADF/EINVAL for a ``prog_fd`` that is not a program; EMFILE;
                ENOSPC/ENOMEM if the ids cannot be allocated (the fd is given back);
                ENOMEM when an injected allocation fails (after the ids, they are
                freed again).
            TypeError, ValueError: if ``prog_fd`` or ``link_type`` is not an int in range.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> primer = t.link_prime(t.prog_load())
        >>> t.link_get_fd_by_id(1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        bpfns.BpfnsError: [EAGAIN: ...
        >>> t.obj_get_info_by_fd(primer.settle()).id
        1
        """
        k = self.kernel
        check_int("prog_fd", prog_fd, INT_MIN, INT_MAX, "int")
        link_type = check_int("link_type", link_type, 0, U32_MAX, "u32")
        prog: BpfProg = _bpf_file(self, prog_fd, (FileKind.BPF_PROG,)).obj
        assert self.files is not None
        k.faults.inject(_BPF_OBJECT)  # the link's kzalloc
        fd = self.files.reserve()
        link = BpfLink(k, prog.name, prog=prog, link_type=link_type)
        try:
            obj_id = alloc_obj_id(k, self.bpf_ns, link, ObjType.LINK, _nested=True)
            try:
                k.faults.inject(_FILE)  # anon_inode_getfile
            except BpfnsError:
                free_obj_id(k, obj_id, ObjType.LINK, _nested=True)
                raise
        except BpfnsError:
            self.files.put_unused(fd)
            raise
        bpf_obj_get(prog, "link")
        bpf_obj_get(link, "file")  # the primer's anon file owns the first reference
        if publication_deferred(k):
            publish_obj_id(k, obj_id)
        k.objects[link] = None
        return LinkPrimer(self, link, fd, obj_id.nr(), obj_id)

    @traced
    def link_create(self: BpfTask, prog_fd: int, link_type: int = BPF_LINK_TYPE_PERF_EVENT) -> int:
        """``BPF_LINK_CREATE`` (libbpf ``bpf_link_create``): prime, attach, settle.

        Raises:
            BpfnsError: as :meth:`link_prime`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.obj_get_info_by_fd(t.link_create(t.prog_load())).prog_id
        1
        """
        return BpfCommands.link_prime(self, prog_fd, link_type).settle()

    # -- bpffs ----------------------------------------------------------------------

    @syscall("bpf(BPF_OBJ_PIN)")
    def obj_pin(self: BpfTask, fd: int, path: str) -> None:
        """``BPF_OBJ_PIN``: pin the object behind ``fd`` in bpffs at ``path``.

        The pin holds a reference: the object outlives every fd and task, and its
        namespace (D2). bpffs is one flat mount at ``/sys/fs/bpf/``.

        Raises:
            BpfnsError: EBADF/EINVAL for an fd that is not a BPF object; EPERM for a
                path outside ``/sys/fs/bpf/``; EEXIST if the path is taken.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> fd = t.map_create()
        >>> t.obj_pin(fd, "/sys/fs/bpf/m"); t.close(fd)
        >>> t.map_get_next_id(0)  # the pin keeps it
        1
        """
        check_int("fd", fd, INT_MIN, INT_MAX, "int")
        check_str("path", path)
        obj: BpfObject = _bpf_file(self, fd).obj
        self.kernel.bpffs.pin(obj, path)

    @syscall("bpf(BPF_OBJ_GET)")
    def obj_get(self: BpfTask, path: str) -> int:
        """``BPF_OBJ_GET``: a new fd for the object pinned at ``path``.

        There is no namespace check: a pin made in another namespace opens fine, and its
        ids then read as 0 or, with D6, another branch's number (D20).

        Raises:
            BpfnsError: ENOENT if nothing is pinned there; EPERM outside bpffs; EMFILE.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.obj_pin(t.map_create(name="pinned"), "/sys/fs/bpf/p")
        >>> t.obj_get_info_by_fd(t.obj_get("/sys/fs/bpf/p")).name
        'pinned'
        """
        k = self.kernel
        obj = k.bpffs.lookup(path)
        k.faults.inject(_FILE)
        assert self.files is not None
        fd = self.files.install(bpf_file(obj))
        bpf_obj_get(obj, "file")
        return fd

    @syscall("unlink")
    def unlink(self: BpfTask, path: str) -> None:
        """``unlink`` a bpffs pin: drops the pin's reference.

        Raises:
            BpfnsError: ENOENT if nothing is pinned there; EPERM outside bpffs.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> fd = t.map_create(); t.obj_pin(fd, "/sys/fs/bpf/m"); t.close(fd)
        >>> t.unlink("/sys/fs/bpf/m"); t.kernel.bpffs.paths()
        []
        """
        self.kernel.bpffs.unlink(path)

    # -- ids --------------------------------------------------------------------------

    @syscall("bpf(BPF_MAP_GET_NEXT_ID)")
    def map_get_next_id(self: BpfTask, start_id: int) -> int:
        """``BPF_MAP_GET_NEXT_ID``: the next map id above ``start_id`` in the caller's ns.

        Raises:
            BpfnsError: EINVAL if ``start_id >= INT_MAX``; EPERM unless CAP_SYS_ADMIN,
                or CAP_BPF in a non-init namespace (patch 11); ENOENT past the last id.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> _ = k.init_task.map_create()
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> _ = c.map_create()
        >>> k.init_task.map_get_next_id(1), c.map_get_next_id(0)
        (2, 1)
        """
        return _get_next_id(self, ObjType.MAP, start_id)

    @syscall("bpf(BPF_PROG_GET_NEXT_ID)")
    def prog_get_next_id(self: BpfTask, start_id: int) -> int:
        """``BPF_PROG_GET_NEXT_ID``; see :meth:`map_get_next_id`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.prog_load(); t.prog_get_next_id(0)
        1
        """
        return _get_next_id(self, ObjType.PROG, start_id)

    @syscall("bpf(BPF_LINK_GET_NEXT_ID)")
    def link_get_next_id(self: BpfTask, start_id: int) -> int:
        """``BPF_LINK_GET_NEXT_ID``; see :meth:`map_get_next_id`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.link_create(t.prog_load()); t.link_get_next_id(0)
        1
        """
        return _get_next_id(self, ObjType.LINK, start_id)

    @syscall("bpf(BPF_MAP_GET_FD_BY_ID)")
    def map_get_fd_by_id(self: BpfTask, id: int, open_flags: int = 0) -> int:
        """``BPF_MAP_GET_FD_BY_ID``: an fd for map ``id`` of the caller's namespace.

        The checks run in the kernel's order: the flag mask (EINVAL), the capability
        (EPERM), then ``bpf_get_file_flag`` (EINVAL for RDONLY|WRONLY).

        Raises:
            BpfnsError: EINVAL for bad ``open_flags``; EPERM as
                :meth:`map_get_next_id`; ENOENT if the caller's namespace has no such map
                (lookups never leave it); EMFILE.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.map_create(name="m")
        >>> t.obj_get_info_by_fd(t.map_get_fd_by_id(1)).name
        'm'
        """
        return _get_fd_by_id(self, ObjType.MAP, id, open_flags)

    @syscall("bpf(BPF_PROG_GET_FD_BY_ID)")
    def prog_get_fd_by_id(self: BpfTask, id: int) -> int:
        """``BPF_PROG_GET_FD_BY_ID``; ENOENT for id 0. See :meth:`map_get_fd_by_id`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.prog_load(name="p")
        >>> t.obj_get_info_by_fd(t.prog_get_fd_by_id(1)).name
        'p'
        """
        return _get_fd_by_id(self, ObjType.PROG, id)

    @syscall("bpf(BPF_LINK_GET_FD_BY_ID)")
    def link_get_fd_by_id(self: BpfTask, id: int) -> int:
        """``BPF_LINK_GET_FD_BY_ID``; EAGAIN for a primed link that is not settled.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.link_create(t.prog_load())
        >>> t.obj_get_info_by_fd(t.link_get_fd_by_id(1)).id
        1
        """
        return _get_fd_by_id(self, ObjType.LINK, id)

    # -- introspection ------------------------------------------------------------------

    @syscall("bpf(BPF_OBJ_GET_INFO_BY_FD)")
    def obj_get_info_by_fd(self: BpfTask, fd: int) -> MapInfo | ProgInfo | LinkInfo | BtfInfo:
        """``BPF_OBJ_GET_INFO_BY_FD``: info with ids as seen from the caller's namespace.

        Raises:
            BpfnsError: EBADFD (as the kernel gives here, not EBADF) if ``fd`` is not
                open; EINVAL if it is not a BPF object.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> _ = k.init_task.map_create()
        >>> c.obj_get_info_by_fd(c.map_create(name="mine"))
        MapInfo(id=1, type=2, key_size=4, value_size=4, max_entries=1, name='mine', ifindex=0)
        """
        return object_info(_info_file(self, fd).obj)

    def map_get_info_by_fd(self: BpfTask, fd: int) -> MapInfo:
        """``bpf_map_get_info_by_fd`` (libbpf): :meth:`obj_get_info_by_fd` of a map fd.

        The same command with a ``struct bpf_map_info``; the return type is
        :class:`MapInfo`, so ``.name`` type-checks (``LinkInfo`` has none, as in the
        kernel).

        Raises:
            BpfnsError: as :meth:`obj_get_info_by_fd`.
            TypeError: if ``fd`` is not a map (say which getter fits).

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.map_get_info_by_fd(t.map_create(name="m")).name
        'm'
        """
        return _info_as(self, fd, MapInfo, "map")

    def prog_get_info_by_fd(self: BpfTask, fd: int) -> ProgInfo:
        """``bpf_prog_get_info_by_fd`` (libbpf): :meth:`obj_get_info_by_fd` of a prog fd.

        Raises:
            BpfnsError: as :meth:`obj_get_info_by_fd`.
            TypeError: if ``fd`` is not a program.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.prog_get_info_by_fd(t.prog_load(maps=(t.map_create(),))).map_ids
        (1,)
        """
        return _info_as(self, fd, ProgInfo, "prog")

    def link_get_info_by_fd(self: BpfTask, fd: int) -> LinkInfo:
        """``bpf_link_get_info_by_fd`` (libbpf): :meth:`obj_get_info_by_fd` of a link fd.

        Raises:
            BpfnsError: as :meth:`obj_get_info_by_fd`.
            TypeError: if ``fd`` is not a link.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.link_get_info_by_fd(t.link_create(t.prog_load())).prog_id
        1
        """
        return _info_as(self, fd, LinkInfo, "link")

    def btf_get_info_by_fd(self: BpfTask, fd: int) -> BtfInfo:
        """``bpf_btf_get_info_by_fd`` (libbpf): :meth:`obj_get_info_by_fd` of a BTF fd.

        Raises:
            BpfnsError: as :meth:`obj_get_info_by_fd`.
            TypeError: if ``fd`` is not a BTF object.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.btf_get_info_by_fd(t.btf_load(name="vmlinux")).name
        'vmlinux'
        """
        return _info_as(self, fd, BtfInfo, "btf")


_I = TypeVar("_I", MapInfo, ProgInfo, LinkInfo, BtfInfo)
_INFO_KINDS: dict[type[object], str] = {
    MapInfo: "map",
    ProgInfo: "prog",
    LinkInfo: "link",
    BtfInfo: "btf",
}


def _info_as(task: BpfTask, fd: int, kind: type[_I], want: str) -> _I:
    """``obj_get_info_by_fd`` narrowed to one info type (libbpf's typed getters)."""
    info = object_info(_info_file(task, fd).obj)
    if isinstance(info, kind):
        return info
    got = _INFO_KINDS[type(info)]
    raise TypeError(
        f"fd {fd} is a {got}, not a {want}: call {got}_get_info_by_fd({fd}), or "
        f"obj_get_info_by_fd({fd}) for any kind"
    )


def _object_of(handle: object, type_: ObjType, cmd: str, id_: int) -> BpfObject:
    """The BPF object behind an IDR entry a lookup found.

    Raises:
        ValueError: if the entry is not an object made by a bpf() command (an id
            allocated with :meth:`bpfns.Kernel.alloc_obj_id`): there is nothing to open.
    """
    obj = handle.obj if isinstance(handle, ObjId) else None
    if isinstance(handle, KernelObjId) and isinstance(obj, BpfObject) and obj.TYPE is type_:
        return obj
    raise ValueError(
        f"{cmd}: {type_.name.lower()} id {id_} was allocated with Kernel.alloc_obj_id "
        f"for {obj!r}, not by a bpf() command; only objects made by map_create, "
        "prog_load or link_create can be opened by id"
    )


def _check_name(name: str) -> None:
    """``bpf_obj_name_cpy``: at most 15 characters, each ASCII alphanumeric, ``_`` or ``.``.

    The kernel tests bytes with its own ``isalnum``. A ``str`` reaches it as UTF-8, and
    every non-ASCII character then has a byte in 0x80-0xBF, which that ``isalnum``
    rejects: so exactly the ASCII names pass.
    """
    if name and not _NAME.fullmatch(name):
        raise BpfnsError(
            errno.EINVAL,
            f"name {name!r}: at most {BPF_OBJ_NAME_LEN - 1} characters from [A-Za-z0-9_.] "
            "(BPF_OBJ_NAME_LEN)",
        )
