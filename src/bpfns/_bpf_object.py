"""BPF objects: ``struct bpf_map``, ``struct bpf_prog``, ``struct bpf_link`` (include/linux/bpf.h).

Each holds its level-0 id (``map->id`` ...) and, since RFC patch 08-10, its id record
(``obj_id``). Objects are refcounted by files, bpffs pins, programs (their used maps)
and links (their program); the last reference frees the ids at once (rfc.md 2.3
"Callers"), and a program's maps go after an RCU grace period. The records returned to
userspace (``bpf_*_info``, audit records) are here too; the commands that create and use
objects are in :mod:`bpfns._syscall`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, ClassVar

import attrs

from ._bpf_namespace import ObjType
from ._errors import InvariantViolation
from ._files import FdTable, File, FileKind
from ._obj_id import ObjId, free_obj_id
from ._trace import Tracer, traced

if TYPE_CHECKING:
    from ._kernel import Kernel
    from ._task import Task

__all__ = [
    "AuditRecord",
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProg",
    "LinkInfo",
    "LinkPrimer",
    "MapInfo",
    "ProgInfo",
    "check_objects",
    "check_primers",
    "object_info",
]

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_KPROBE = 2
BPF_LINK_TYPE_PERF_EVENT = 7
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_OBJ_NAME_LEN = 16

_KIND_OF = {ObjType.MAP: FileKind.BPF_MAP, ObjType.PROG: FileKind.BPF_PROG}
_KIND_OF[ObjType.LINK] = FileKind.BPF_LINK


# -- objects --------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class BpfObject:
    """What maps, programs and links share: ids and a reference count.

    Attributes:
        id: ``map->id`` / ``prog->aux->id`` / ``link->id``: the level-0 id, 0 once freed
            (and, for a link, until it is settled).
        obj_id: the :class:`bpfns.ObjId` record, None once freed.
        refcnt: the reference count.
        holders: who holds the references: ``{"file": 2, "pin": 1}`` (files, pins,
            programs, links; a holder whose references are gone may stay at 0).
    """

    TYPE: ClassVar[ObjType]
    kernel: Kernel
    name: str
    id: int = 0
    obj_id: ObjId | None = None
    refcnt: int = 0
    holders: dict[str, int] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} id={self.id} refcnt={self.refcnt}>"

    @property
    def live(self) -> bool:
        """Whether references remain."""
        return self.refcnt > 0

    def _get(self, holder: str) -> None:
        self.refcnt += 1
        self.holders[holder] = self.holders.get(holder, 0) + 1

    def _put(self, k: Kernel, holder: str) -> None:
        self.holders[holder] -= 1
        self.refcnt -= 1
        if not self.refcnt:
            self._free(k)

    def _free_id(self, k: Kernel) -> None:
        """``if (x->id) { bpf_free_obj_id(x->obj_id, type); x->id = 0; }`` (patch 05).

        bpfns has no path that frees an object without ids (the offload path of D5 is
        not modelled), so the test always holds here.
        """
        assert self.id
        assert self.obj_id is not None
        free_obj_id(k, self.obj_id, self.TYPE, _nested=True)
        self.id = 0
        self.obj_id = None

    def _free(self, k: Kernel) -> None:
        """The last reference is gone: free the ids (``bpf_map_free_id``), then the object."""
        self._free_id(k)
        k._bpf_objects.pop(self, None)


@attrs.define(eq=False, repr=False)
class BpfMap(BpfObject):
    """``struct bpf_map``."""

    TYPE: ClassVar[ObjType] = ObjType.MAP
    map_type: int = BPF_MAP_TYPE_ARRAY
    key_size: int = 4
    value_size: int = 4
    max_entries: int = 1


@attrs.define(eq=False, repr=False)
class BpfProg(BpfObject):
    """``struct bpf_prog`` with its ``aux``: type, used maps, creator."""

    TYPE: ClassVar[ObjType] = ObjType.PROG
    prog_type: int = BPF_PROG_TYPE_KPROBE
    used_maps: tuple[BpfMap, ...] = ()
    created_by_uid: int = 0

    def _free(self, k: Kernel) -> None:
        """``bpf_prog_put_deferred``: audit UNLOAD, free the ids, RCU-free the prog."""
        k._audit(self, "UNLOAD")
        self._free_id(k)
        k._rcu.call_rcu(lambda: self._free_rcu(k), f"bpf_prog_free({self.name})", owner=self)

    def _free_rcu(self, k: Kernel) -> None:
        """After the grace period: ``free_used_maps``."""
        for m in self.used_maps:
            m._put(k, "prog")
        k._bpf_objects.pop(self, None)


@attrs.define(eq=False, repr=False)
class BpfLink(BpfObject):
    """``struct bpf_link``: holds a reference on its program."""

    TYPE: ClassVar[ObjType] = ObjType.LINK
    prog: BpfProg | None = None
    link_type: int = BPF_LINK_TYPE_PERF_EVENT

    def _free(self, k: Kernel) -> None:
        """``bpf_link_free``: free the ids, then release the program."""
        super()._free(k)
        assert self.prog is not None
        self.prog._put(k, "link")


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

    task: Task
    link: BpfLink
    fd: int
    id: int
    obj_id: ObjId
    done: bool = False
    _trace_kind: ClassVar[str] = "primer"

    def __attrs_post_init__(self) -> None:
        self.link.kernel._primers[self] = None

    @property
    def _tracer(self) -> Tracer | None:
        return self.link.kernel._tracer

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
        self.link.id, self.link.obj_id = self.id, self.obj_id
        self._files().fd_install(self.fd, File(FileKind.BPF_LINK, self.link))
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
        k = self.link.kernel
        self._finish("cleanup")
        with self.task._enter("bpf_link_cleanup"):
            free_obj_id(k, self.obj_id, ObjType.LINK, _nested=True)
            self._files().put_unused(self.fd)
            self.link.holders["file"] = 0
            self.link.refcnt = 0
            k._bpf_objects.pop(self.link, None)
            assert self.link.prog is not None
            self.link.prog._put(k, "link")

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
        del self.link.kernel._primers[self]

    def _check(self) -> None:
        """Assert the invariants of a pending primer."""
        assert self.task.alive, "primers belong to live tasks (its task was killed)"
        assert not self.done
        assert self._files().is_reserved(self.fd), f"fd {self.fd} is not reserved"
        assert self.link.id == 0 and self.link.obj_id is None, "published before settle"
        assert self.obj_id.live and self.obj_id.obj is self.link and self.obj_id.nr() == self.id
        assert self.link.holders.get("file") == 1, "the primer's anon file owns a reference"


def object_info(k: Kernel, obj: BpfObject) -> MapInfo | ProgInfo | LinkInfo:
    if isinstance(obj, BpfMap):
        return MapInfo(
            k._vnr(obj), obj.map_type, obj.key_size, obj.value_size, obj.max_entries, obj.name
        )
    if isinstance(obj, BpfProg):
        map_ids = tuple(k._vnr(m) for m in obj.used_maps)
        return ProgInfo(k._vnr(obj), obj.prog_type, obj.name, map_ids, obj.created_by_uid)
    assert isinstance(obj, BpfLink)
    assert obj.prog is not None
    return LinkInfo(k._vnr(obj), obj.link_type, k._vnr(obj.prog))


def _expected_holders(k: Kernel) -> dict[int, Counter[str]]:
    """Count, from the world, who holds a reference on each BPF object."""
    expected: dict[int, Counter[str]] = {id(obj): Counter() for obj in k._bpf_objects}
    held = [f.obj for f in k._open_files() if f.kind in _KIND_OF.values()]
    for obj in [*held, *k.bpffs.objects()]:
        if id(obj) not in expected:
            raise InvariantViolation("referenced objects are live", f"{obj!r} was forgotten")
    for obj in held:
        expected[id(obj)]["file"] += 1
    for obj in k.bpffs.objects():
        expected[id(obj)]["pin"] += 1
    for obj in k._bpf_objects:
        if isinstance(obj, BpfProg):
            for m in obj.used_maps:
                expected[id(m)]["prog"] += 1
        elif isinstance(obj, BpfLink) and obj.refcnt:
            assert obj.prog is not None
            expected[id(obj.prog)]["link"] += 1
            if not obj.id:  # primed, not settled: the primer's anon file
                expected[id(obj)]["file"] += 1
    return expected


def check_objects(k: Kernel) -> None:
    """Invariants of BPF objects: refcounts equal holders, ids match their records."""
    expected = _expected_holders(k)
    for obj in k._bpf_objects:
        got = +Counter(obj.holders)
        if got != +expected[id(obj)] or obj.refcnt != sum(obj.holders.values()):
            raise InvariantViolation(
                "object refcounts equal their holders",
                f"{obj!r}: counted {dict(got)}, found {dict(+expected[id(obj)])}",
            )
        if not obj.refcnt or (isinstance(obj, BpfLink) and not obj.id):
            continue  # freed (RCU pending) or a primed link: no published id
        rec = obj.obj_id
        if rec is None or rec.obj is not obj or not rec.live or obj.id != rec.nr():
            raise InvariantViolation(
                "objects own their ids", f"{obj!r}: id record {rec!r} does not match"
            )
    for ns in k.namespaces():
        for type_ in ObjType:
            for nr, handle in ns.idr[type_]:
                if isinstance(handle.obj, BpfObject) and handle.obj not in k._bpf_objects:
                    raise InvariantViolation(
                        "ids belong to live objects", f"{ns.label()} {type_.name} {nr}"
                    )


def check_primers(primers: list[LinkPrimer], tasks: list[Task]) -> None:
    """Every reserved fd of a live task's table belongs to a pending primer.

    (Each primer checks its own invariants, its task alive among them: ``_check``.)

    Raises:
        InvariantViolation: naming the reserved fds no primer owns.
    """
    reserved = {(id(p.task.files), p.fd) for p in primers}
    tables = {id(t.files): t.files for t in tasks if t.files is not None}
    for key, table in tables.items():
        stray = [fd for fd in table.reserved() if (key, fd) not in reserved]
        if stray:
            raise InvariantViolation(
                "reserved fds belong to pending primers", f"fds {stray} of a file table"
            )
