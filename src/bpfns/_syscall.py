"""kernel/bpf/syscall.c after RFC patches 05 and 08-11: the bpf() commands.

The objects themselves (maps, programs, links and their refcounts) are in
:mod:`bpfns._bpf_object`.

Specification: rfc.md 2.3 ("Callers"), 2.5 (what userspace sees) and the defects D3, D8.
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
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ._args import check_int, check_str
from ._bpf_namespace import Namespace, ObjType
from ._bpf_object import (
    _KIND_OF,
    BPF_F_RDONLY,
    BPF_F_WRONLY,
    BPF_LINK_TYPE_PERF_EVENT,
    BPF_MAP_TYPE_ARRAY,
    BPF_OBJ_NAME_LEN,
    BPF_PROG_TYPE_KPROBE,
    BpfLink,
    BpfMap,
    BpfObject,
    BpfProg,
    LinkInfo,
    LinkPrimer,
    MapInfo,
    ProgInfo,
    object_info,
)
from ._capability import Cap, Cred
from ._errors import BpfnsError, KernelBug
from ._fault import FaultSite
from ._files import FdTable, File, FileKind
from ._idr import INT_MAX, INT_MIN, U32_MAX
from ._obj_id import KernelObjId, ObjId, alloc_obj_id, free_obj_id
from ._sanitizer import BugKind
from ._trace import Tracer, replayable, traced

if TYPE_CHECKING:
    from ._kernel import Kernel
    from ._task import Nsproxy, Task

__all__ = ["BpfCommands", "vnr_namespace"]

#: ``bpf_capable()`` holds for a cred in the initial user namespace with one of these.
_BPF_CAPS = frozenset({Cap.CAP_BPF, Cap.CAP_SYS_ADMIN})
#: A non-empty name ``bpf_obj_name_cpy`` accepts (see :func:`_check_name`).
_NAME = re.compile(rf"[A-Za-z0-9_.]{{1,{BPF_OBJ_NAME_LEN - 1}}}")
#: Enum members as module constants: ``ObjType.MAP`` costs a class lookup per read.
_MAP, _MAP_FILE = ObjType.MAP, FileKind.BPF_MAP
_BPF_OBJECT, _FILE = FaultSite.BPF_OBJECT, FaultSite.FILE


def _oops(task: object) -> None:
    """``make_task_dead`` for the inline syscall paths (a raised KernelBug kills the task)."""
    from ._task import make_task_dead  # noqa: PLC0415 - _task imports this module

    make_task_dead(task)  # type: ignore[arg-type]


# -- the commands ---------------------------------------------------------------------


class BpfCommands:
    """The ``bpf()`` commands, as methods of :class:`bpfns.Task` (libbpf names)."""

    __slots__ = ()

    if TYPE_CHECKING:
        kernel: Kernel
        cred: Cred
        nsproxy: Nsproxy | None
        files: FdTable | None
        pid: int
        alive: bool

        def _fdget(self, fd: int) -> File: ...
        def capable(self, cap: Cap) -> bool: ...
        @property
        def bpf_ns(self) -> Namespace: ...
        @property
        def _tracer(self) -> Tracer | None: ...

    # -- helpers --------------------------------------------------------------------

    def _task(self) -> Task:
        return self  # type: ignore[return-value]

    def _enter(self, name: str) -> AbstractContextManager[None]:
        """Enter syscall ``name`` as this task (``current``, one step; see Kernel)."""
        return self.kernel._syscall(self._task(), name)

    def _bpf_capable(self, what: str) -> None:
        """``bpf_capable()``: CAP_BPF or CAP_SYS_ADMIN (unprivileged BPF is disabled)."""
        if not (self.capable(Cap.CAP_BPF) or self.capable(Cap.CAP_SYS_ADMIN)):
            raise BpfnsError(
                errno.EPERM, f"{what} needs CAP_BPF or CAP_SYS_ADMIN in the init user namespace"
            )

    def _bpfns_gate(self, what: str) -> None:
        """Patch 11: ``capable(CAP_SYS_ADMIN) || bpfns_capable()``, else EPERM."""
        if self.capable(Cap.CAP_SYS_ADMIN):
            return
        if not self.bpf_ns.is_init and self.capable(Cap.CAP_BPF):
            return  # bpfns_capable()
        raise BpfnsError(
            errno.EPERM,
            f"{what} needs CAP_SYS_ADMIN, or CAP_BPF inside a non-init bpf namespace",
        )

    def _bpf_file(self, fd: int, kinds: tuple[FileKind, ...] | None = None) -> File:
        file = self._fdget(fd)
        allowed = kinds or (FileKind.BPF_MAP, FileKind.BPF_PROG, FileKind.BPF_LINK)
        if file.kind not in allowed:
            names = "/".join(kind.value for kind in allowed)
            raise BpfnsError(errno.EINVAL, f"fd {fd} is a {file.kind.value}, not a {names}")
        return file

    def _alloc_ids(self, obj: BpfObject, d3: Callable[[], int]) -> int | None:
        """``bpf_alloc_obj_id`` in the caller's namespace; D3 returns 0 on failure."""
        k = self.kernel
        try:
            obj_id = alloc_obj_id(k, self.bpf_ns, obj, obj.TYPE, _nested=True)
        except BpfnsError:
            if k.behavior.d3_create_returns_zero:
                return d3()
            raise
        obj.obj_id, obj.id = obj_id, obj_id.nr()
        return None

    def _install(self, obj: BpfObject) -> int:
        """``bpf_*_new_fd``: on EMFILE or ENOMEM the object is put (its ids freed)."""
        assert self.files is not None
        try:
            self.kernel.faults.inject(_FILE)
            return self.files.install(File(_KIND_OF[obj.TYPE], obj))
        except BpfnsError:
            obj._put(self.kernel, "file")
            raise

    def _map_create_args(
        self,
        map_type: object,
        name: object,
        key_size: object,
        value_size: object,
        max_entries: object,
    ) -> tuple[int, str, int, int, int]:
        """The argument checks of ``BPF_MAP_CREATE``, in order; the checked values.

        Types and ranges first (TypeError, ValueError: what no C caller can pass), then
        what the kernel checks: ``bpf_capable()`` (EPERM), the name (EINVAL), the sizes
        (EINVAL). ``map_create`` runs this whenever its one-line test of the common case
        is not sure, so both accept exactly the same calls.
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
        self._bpf_capable("BPF_MAP_CREATE")
        _check_name(checked_name)
        if not all(checked[1:]):
            raise BpfnsError(errno.EINVAL, "key_size, value_size and max_entries must be > 0")
        return checked[0], checked_name, checked[1], checked[2], checked[3]

    # -- creation -------------------------------------------------------------------

    @replayable
    def map_create(
        self,
        map_type: int = BPF_MAP_TYPE_ARRAY,
        name: str = "",
        key_size: int = 4,
        value_size: int = 4,
        max_entries: int = 1,
    ) -> int:
        """``BPF_MAP_CREATE`` (libbpf ``bpf_map_create``): a new map; returns its fd.

        The map gets an id in the caller's namespace and every ancestor.

        Raises:
            BpfnsError: EPERM without CAP_BPF/CAP_SYS_ADMIN; EINVAL for a name longer
                than 15 characters or zero sizes; ENOSPC/ENOMEM if the ids cannot be
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
        # The common case is one pass with no helper calls (figure 3 of
        # benchmarks/run.py): the trace hand-off, the syscall context, the capability
        # and argument checks are inline. Anything unusual runs the helpers that explain
        # it.
        k = self.kernel
        tracer = k._tracer
        if tracer is not None and not tracer.depth:
            given = {"map_type": map_type, "name": name, "key_size": key_size}
            given.update(value_size=value_size, max_entries=max_entries)
            return tracer.call_explicit(BpfCommands.map_create, self, given)
        if not self.alive:
            raise ValueError(f"bpf(BPF_MAP_CREATE): {self!r} has exited; use a live task")
        k._step += 1
        previous, k._current = k._current, self  # type: ignore[assignment]
        try:
            cred = self.cred
            if not (
                cred.user_ns is k.init_user_ns
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
                and 0 <= map_type <= U32_MAX
            ):
                map_type, name, key_size, value_size, max_entries = self._map_create_args(
                    map_type, name, key_size, value_size, max_entries
                )
            faults = k.faults
            if faults.armed:
                faults.inject(_BPF_OBJECT)  # map->ops->map_alloc
            # id 0, no record yet, one reference: the file's (the fields in order)
            new = BpfMap(
                k, name, 0, None, 1, {"file": 1}, map_type, key_size, value_size, max_entries
            )
            assert self.nsproxy is not None
            try:
                obj_id = alloc_obj_id(k, self.nsproxy.bpf_ns, new, _MAP, _nested=True)
            except BpfnsError:
                if k.behavior.d3_create_returns_zero:
                    return 0  # D3: the map is freed, userspace is told fd 0
                raise
            new.obj_id = obj_id
            new.id = obj_id._slot.nrs[-1]  # type: ignore[assignment]  # bpf_obj_id_nr
            k._bpf_objects[new] = None
            assert self.files is not None
            try:
                if faults.armed:
                    faults.inject(_FILE)  # anon_inode_getfd
                return self.files.install(File(_MAP_FILE, new))
            except BpfnsError:  # EMFILE or ENOMEM: bpf_map_put frees the ids again
                new._put(k, "file")
                raise
        except KernelBug:
            _oops(self)
            raise
        finally:
            k._current = previous

    @traced
    def prog_load(
        self, prog_type: int = BPF_PROG_TYPE_KPROBE, name: str = "", maps: tuple[int, ...] = ()
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
        with self._enter("bpf(BPF_PROG_LOAD)"):
            prog_type = check_int("prog_type", prog_type, 0, U32_MAX, "u32")
            name = check_str("name", name)
            if not isinstance(maps, tuple | list):
                raise TypeError(f"maps must be a tuple of map fds, not {type(maps).__name__}")
            fds = [check_int("maps[]", fd, INT_MIN, INT_MAX, "int") for fd in maps]
            self._bpf_capable("BPF_PROG_LOAD")
            _check_name(name)
            used: list[BpfMap] = []
            for fd in fds:
                m = self._bpf_file(fd, (FileKind.BPF_MAP,)).obj
                if m not in used:
                    used.append(m)
            k.faults.inject(_BPF_OBJECT)  # bpf_prog_alloc
            prog = BpfProg(k, name, prog_type=prog_type, used_maps=tuple(used))
            prog.created_by_uid = self.cred.euid
            for m in used:  # bpf_map_inc for each used map (verifier)
                m._get("prog")
            prog._get("file")

            def d3() -> int:
                for m in used:
                    m._put(k, "prog")
                return 0

            try:
                failed = self._alloc_ids(prog, d3)
            except BpfnsError:
                d3()
                raise
            if failed is not None:
                return failed
            k._bpf_objects[prog] = None
            k._audit(prog, "LOAD")
            return self._install(prog)

    @traced
    def link_prime(self, prog_fd: int, link_type: int = BPF_LINK_TYPE_PERF_EVENT) -> LinkPrimer:
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
        bpfns._errors.BpfnsError: [EAGAIN: ...
        >>> t.obj_get_info_by_fd(primer.settle()).id
        1
        """
        k = self.kernel
        task = self._task()
        with self._enter("bpf(BPF_LINK_CREATE)"):
            check_int("prog_fd", prog_fd, INT_MIN, INT_MAX, "int")
            link_type = check_int("link_type", link_type, 0, U32_MAX, "u32")
            prog: BpfProg = self._bpf_file(prog_fd, (FileKind.BPF_PROG,)).obj
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
            prog._get("link")
            link._get("file")  # the primer's anon file owns the first reference
            k._bpf_objects[link] = None
            return LinkPrimer(task, link, fd, obj_id.nr(), obj_id)

    @traced
    def link_create(self, prog_fd: int, link_type: int = BPF_LINK_TYPE_PERF_EVENT) -> int:
        """``BPF_LINK_CREATE`` (libbpf ``bpf_link_create``): prime, attach, settle.

        Raises:
            BpfnsError: as :meth:`link_prime`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.obj_get_info_by_fd(t.link_create(t.prog_load())).prog_id
        1
        """
        return self.link_prime(prog_fd, link_type).settle()

    # -- files ----------------------------------------------------------------------

    @replayable
    def close(self, fd: int) -> None:
        """``close(fd)``: the last reference to a BPF object frees it and its ids.

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.close(t.map_create())
        >>> t.map_get_next_id(0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        bpfns._errors.BpfnsError: [ENOENT: ...
        """
        k = self.kernel  # inline, as map_create
        tracer = k._tracer
        if tracer is not None and not tracer.depth:
            return tracer.call(BpfCommands.close, self, (fd,), {})
        if not self.alive:
            raise ValueError(f"close: {self!r} has exited; use a live task")
        k._step += 1
        previous, k._current = k._current, self  # type: ignore[assignment]
        try:
            if not (fd.__class__ is int and INT_MIN <= fd <= INT_MAX):
                fd = check_int("fd", fd, INT_MIN, INT_MAX, "int")
            assert self.files is not None
            self.files.detach(fd).fput(k)
        except KernelBug:
            _oops(self)
            raise
        finally:
            k._current = previous

    @traced
    def send_fd(self, fd: int, to: Task) -> int:
        """Pass ``fd`` to task ``to`` over a unix socket (``SCM_RIGHTS``); returns its new fd.

        The receiver gets another reference to the same open file; this is one way an
        object crosses namespaces (D6) and outlives its own (D2).

        Raises:
            BpfnsError: EBADF if ``fd`` is not open; EMFILE if the receiver is full.
            TypeError, ValueError: if ``to`` is not a live Task of this Kernel.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> a, b = k.init_task.clone(CLONE_NEWBPF), k.init_task.clone(CLONE_NEWBPF)
        >>> b.obj_get_info_by_fd(a.send_fd(a.map_create(), b)).id  # D6: a's number, in b
        1
        """
        k = self.kernel
        with self._enter("sendmsg(SCM_RIGHTS)"):
            check_int("fd", fd, INT_MIN, INT_MAX, "int")
            receiver = k._own_task(to, "to")
            file = self._fdget(fd)
            assert receiver.files is not None
            new_fd = receiver.files.install(file)
            file.count += 1
            return new_fd

    @traced
    def obj_pin(self, fd: int, path: str) -> None:
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
        k = self.kernel
        with self._enter("bpf(BPF_OBJ_PIN)"):
            check_int("fd", fd, INT_MIN, INT_MAX, "int")
            check_str("path", path)
            obj: BpfObject = self._bpf_file(fd).obj
            k.bpffs.pin(obj, path)

    @traced
    def obj_get(self, path: str) -> int:
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
        with self._enter("bpf(BPF_OBJ_GET)"):
            obj = k.bpffs.lookup(path)
            k.faults.inject(_FILE)
            assert self.files is not None
            fd = self.files.install(File(_KIND_OF[obj.TYPE], obj))
            obj._get("file")
            return fd

    @traced
    def unlink(self, path: str) -> None:
        """``unlink`` a bpffs pin: drops the pin's reference.

        Raises:
            BpfnsError: ENOENT if nothing is pinned there; EPERM outside bpffs.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> fd = t.map_create(); t.obj_pin(fd, "/sys/fs/bpf/m"); t.close(fd)
        >>> t.unlink("/sys/fs/bpf/m"); t.kernel.bpffs.paths()
        []
        """
        k = self.kernel
        with self._enter("unlink"):
            k.bpffs.unlink(path)

    # -- ids --------------------------------------------------------------------------

    def _get_next_id(self, type_: ObjType, start_id: int) -> int:
        """``bpf_obj_get_next_id``: the first id above ``start_id`` in the caller's ns."""
        cmd = f"BPF_{type_.name}_GET_NEXT_ID"
        with self._enter(f"bpf({cmd})"):
            check_int("start_id", start_id, 0, U32_MAX, "u32")
            if start_id >= INT_MAX:
                raise BpfnsError(errno.EINVAL, f"{cmd}: start_id {start_id} >= INT_MAX")
            self._bpfns_gate(cmd)
            found = self.bpf_ns.idr[type_].get_next(start_id + 1)
            if found is None:
                raise BpfnsError(errno.ENOENT, f"{cmd}: no id above {start_id}; the walk is done")
            return found[0]

    @traced
    def map_get_next_id(self, start_id: int) -> int:
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
        return self._get_next_id(ObjType.MAP, start_id)

    @traced
    def prog_get_next_id(self, start_id: int) -> int:
        """``BPF_PROG_GET_NEXT_ID``; see :meth:`map_get_next_id`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.prog_load(); t.prog_get_next_id(0)
        1
        """
        return self._get_next_id(ObjType.PROG, start_id)

    @traced
    def link_get_next_id(self, start_id: int) -> int:
        """``BPF_LINK_GET_NEXT_ID``; see :meth:`map_get_next_id`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.link_create(t.prog_load()); t.link_get_next_id(0)
        1
        """
        return self._get_next_id(ObjType.LINK, start_id)

    def _get_fd_by_id(self, type_: ObjType, id_: int, open_flags: int = 0) -> int:
        k = self.kernel
        cmd = f"BPF_{type_.name}_GET_FD_BY_ID"
        with self._enter(f"bpf({cmd})"):
            check_int("id", id_, 0, U32_MAX, "u32")
            check_int("open_flags", open_flags, 0, U32_MAX, "u32")
            if open_flags & ~(BPF_F_RDONLY | BPF_F_WRONLY) or (
                open_flags == BPF_F_RDONLY | BPF_F_WRONLY
            ):
                raise BpfnsError(errno.EINVAL, f"{cmd}: invalid open_flags {open_flags:#x}")
            self._bpfns_gate(cmd)
            handle = self.bpf_ns.idr[type_].find(id_) if id_ else None
            if handle is None:
                raise BpfnsError(
                    errno.ENOENT, f"{cmd}: no {type_.name.lower()} {id_} in this bpf namespace"
                )
            obj = _object_of(handle, type_, cmd, id_)
            if not obj.id:  # a primed, unsettled link (bpf_link_by_id)
                raise BpfnsError(errno.EAGAIN, f"{cmd}: link {id_} is not settled yet; retry")
            k.faults.inject(_FILE)
            assert self.files is not None
            fd = self.files.install(File(_KIND_OF[type_], obj))
            obj._get("file")
            return fd

    @traced
    def map_get_fd_by_id(self, id: int, open_flags: int = 0) -> int:
        """``BPF_MAP_GET_FD_BY_ID``: an fd for map ``id`` of the caller's namespace.

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
        return self._get_fd_by_id(ObjType.MAP, id, open_flags)

    @traced
    def prog_get_fd_by_id(self, id: int) -> int:
        """``BPF_PROG_GET_FD_BY_ID``; ENOENT for id 0. See :meth:`map_get_fd_by_id`.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.prog_load(name="p")
        >>> t.obj_get_info_by_fd(t.prog_get_fd_by_id(1)).name
        'p'
        """
        return self._get_fd_by_id(ObjType.PROG, id)

    @traced
    def link_get_fd_by_id(self, id: int) -> int:
        """``BPF_LINK_GET_FD_BY_ID``; EAGAIN for a primed link that is not settled.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.link_create(t.prog_load())
        >>> t.obj_get_info_by_fd(t.link_get_fd_by_id(1)).id
        1
        """
        return self._get_fd_by_id(ObjType.LINK, id)

    # -- introspection ------------------------------------------------------------------

    @traced
    def obj_get_info_by_fd(self, fd: int) -> MapInfo | ProgInfo | LinkInfo:
        """``BPF_OBJ_GET_INFO_BY_FD``: info with ids as seen from the caller's namespace.

        Raises:
            BpfnsError: EBADF if ``fd`` is not open; EINVAL if it is not a BPF object.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> _ = k.init_task.map_create()
        >>> c.obj_get_info_by_fd(c.map_create(name="mine"))
        MapInfo(id=1, type=2, key_size=4, value_size=4, max_entries=1, name='mine')
        """
        k = self.kernel
        with self._enter("bpf(BPF_OBJ_GET_INFO_BY_FD)"):
            return object_info(k, self._bpf_file(fd).obj)

    @traced
    def read_fdinfo(self, owner: Task, fd: int) -> str:
        """Read ``/proc/<owner>/fdinfo/<fd>``: ids are ``vnr`` in the **reader's** namespace.

        Raises:
            BpfnsError: EBADF (ENOENT in procfs) if ``owner`` has no such fd.
            TypeError, ValueError: if ``owner`` is not a live Task of this Kernel.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> _ = k.init_task.map_create()
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> fd = c.map_create()
        >>> print(k.init_task.read_fdinfo(c, fd).splitlines()[-1].expandtabs(1))
        map_id: 2
        >>> print(c.read_fdinfo(c, fd).splitlines()[-1].expandtabs(1))
        map_id: 1
        """
        k = self.kernel
        with self._enter("read(/proc/pid/fdinfo)"):
            check_int("fd", fd, INT_MIN, INT_MAX, "int")
            file = k._own_task(owner, "owner")._fdget(fd)
            return _fdinfo(k, file)


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


def _fdinfo(k: Kernel, file: File) -> str:
    obj = file.obj
    rows: list[tuple[str, object]] = [("pos", 0), ("flags", "02000002")]
    if isinstance(obj, BpfMap):
        rows += [
            ("map_type", obj.map_type),
            ("key_size", obj.key_size),
            ("value_size", obj.value_size),
            ("max_entries", obj.max_entries),
            ("map_id", k._vnr(obj)),
        ]
    elif isinstance(obj, BpfProg):
        rows += [("prog_type", obj.prog_type), ("prog_id", k._vnr(obj))]
    elif isinstance(obj, BpfLink):
        assert obj.prog is not None
        rows += [("link_type", obj.link_type), ("link_id", k._vnr(obj))]
        rows.append(("prog_id", k._vnr(obj.prog)))
    return "".join(f"{key}:\t{value}\n" for key, value in rows)


def vnr_namespace(k: Kernel, what: str) -> Namespace | None:
    """``current->nsproxy->bpf_ns`` for ``bpf_obj_id_vnr``, with the D8 check.

    Outside any task's call (kernel code run from :meth:`bpfns.Kernel.synchronize_rcu`
    or the bpffs object directly), current is a kernel thread, which lives in the
    initial namespaces: the id is the global one. An exiting task has no nsproxy: as
    posted (D8) that is a NULL dereference the sanitizer reports, and the id reads 0 if
    it goes on; fixed, the id is the global one.
    """
    cur = k._current
    if cur is None:
        return k.init_ns
    if cur.nsproxy is not None:
        return cur.nsproxy.bpf_ns
    if not k.behavior.d8_vnr_without_nsproxy:
        return k.init_ns
    k._sanitizer.report(
        "D8",
        BugKind.NULL_DEREF,
        f"{what}: bpf_obj_id_vnr read current->nsproxy->bpf_ns, but task {cur.pid} has "
        "already dropped its nsproxy (exit_task_namespaces runs before the last fput)",
        what,
        k._step,
    )
    return None
