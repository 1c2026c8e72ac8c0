"""The pid-namespace flavour of the core: the same classes, with ``alloc_pid``'s policy.

kernel rules §C is the reference. A :class:`PidKernel` is a :class:`bpfns.Kernel`
whose namespaces allocate with :class:`PidPolicy` instead of the BPF one: per-namespace
``pid_max`` (exclusive), the RESERVED_PIDS floor of 300 once a level's cursor has
passed 300, deepest level first, EAGAIN when any level is full (the deeper levels are
rolled back without restoring their cursors; the innermost cursor is reset to 0 if it
holds no pid), NULL placeholders published with ``idr_replace``. This flavour is what
:mod:`bpfns.conformance` compares with the running kernel.

>>> pk = PidKernel()
>>> inner = pk.create_namespace(pk.root)
>>> pid = pk.alloc_pid(inner)
>>> [n.nr for n in pid.numbers]
[1, 1]

``set_tid`` (clone3's exact pids, innermost first) and the PIDNS_ADDING state are
modelled: freeing a namespace's init (its pid 1: the init exited and was reaped,
``zap_pid_ns_processes``) clears PIDNS_ADDING, and every later :meth:`PidKernel.alloc_pid`
with that namespace innermost fails with ENOMEM. The root is ``init_pid_ns``'s twin:
inode number 0xEFFFFFFC, refcount 2, record caches ``pid`` and ``pid_<level + 1>``.
:meth:`PidKernel.nspid` formats the ``NSpid:`` line of ``/proc/<pid>/status``. Not
modelled: pid types other than PIDTYPE_PID, and ``set_tid``'s capability check (the
model's caller is privileged).
"""

from __future__ import annotations

import errno

import attrs

from ._args import check_int
from ._behavior import FIXED
from ._bpf_namespace import CLONE_NEWBPF, Namespace, ObjType, live_namespace
from ._errors import BpfnsError
from ._kernel import Kernel
from ._obj_id import ObjId
from ._policy import PID_MAX_LIMIT, PID_MAX_MIN, RESERVED_PIDS, PidPolicy
from ._ucount import UcountType

__all__ = ["PID_MAX_LIMIT", "PROC_PID_INIT_INO", "RESERVED_PIDS", "PidKernel", "PidPolicy"]

#: ``PROC_PID_INIT_INO``: the initial pid namespace's inode (include/uapi/linux/nsfs.h).
PROC_PID_INIT_INO = 0xEFFFFFFC
#: ``MAX_PID_NS_LEVEL``: clone3 refuses a longer ``set_tid``.
_MAX_PID_NS_LEVEL = 32

_PIDS = ObjType.MAP  # a pid namespace has one IDR; bpfns keeps it in slot 0


@attrs.define(eq=False, repr=False)
class _PidCore(Kernel):
    """A Kernel whose namespaces are pid namespaces."""

    ns_ucount = UcountType.PID_NAMESPACES
    #: ``init_pid_ns``: ``ns.count = 2``, inode 0xEFFFFFFC (kernel/pid.c)
    init_ns_count = 2
    init_ns_inum = PROC_PID_INIT_INO
    #: ``create_pid_cachep``: ``"pid_%u"`` of ``level + 1`` (level 0 uses "pid")
    cache_name = "pid_{}"

    def _new_policy(self) -> PidPolicy:
        return PidPolicy()


@attrs.define(eq=False)
class PidKernel:
    """Pid namespaces on the shared core (``alloc_pid``, ``free_pid``, ``pid_max``).

    ``root`` is a fresh pid namespace: cursor 0, ``pid_max`` 4194304 (what a new
    namespace gets since 6.14).
    """

    core: Kernel = attrs.field(factory=lambda: _PidCore(FIXED), repr=False)

    def __attrs_post_init__(self) -> None:
        _policy(self.root).child_reaper = True  # init_pid_ns.child_reaper = &init_task

    @property
    def root(self) -> Namespace:
        """The root pid namespace of this model."""
        return self.core.init_ns

    def create_namespace(self, parent: Namespace) -> Namespace:
        """``create_pid_namespace(user_ns, parent)``: a child with its own IDR and pid_max.

        Raises:
            BpfnsError: ENOSPC above level 32.
            TypeError, ValueError: for a namespace of another kernel or a dead one.

        >>> pk = PidKernel()
        >>> pk.create_namespace(pk.root).level
        1
        """
        live = live_namespace(parent, "parent", self.core)
        return self.core.copy_bpfns(CLONE_NEWBPF, live.user_ns, live)

    def set_pid_max(self, ns: Namespace, value: int) -> None:
        """Write ``/proc/sys/kernel/pid_max`` as seen from ``ns`` (6.14+: per namespace).

        Raises:
            BpfnsError: EINVAL outside ``[301, 4194304]``.
            TypeError, ValueError: for a bad namespace or a non-int value.

        >>> pk = PidKernel()
        >>> ns = pk.create_namespace(pk.root)
        >>> pk.set_pid_max(ns, 400); pk.pid_max(ns)
        400
        """
        live = live_namespace(ns, "ns", self.core)
        value = check_int("value", value, -(2**63), 2**63 - 1, "long")
        if not PID_MAX_MIN <= value <= PID_MAX_LIMIT:
            raise BpfnsError(
                errno.EINVAL, f"pid_max={value} is outside [{PID_MAX_MIN}, {PID_MAX_LIMIT}]"
            )
        _policy(live).pid_max = value

    def pid_max(self, ns: Namespace) -> int:
        """Read ``/proc/sys/kernel/pid_max`` of ``ns``.

        >>> pk = PidKernel()
        >>> pk.pid_max(pk.root)
        4194304
        """
        return _policy(live_namespace(ns, "ns", self.core)).pid_max

    def alloc_pid(self, ns: Namespace, set_tid: tuple[int, ...] = ()) -> ObjId:
        """``alloc_pid(ns, set_tid)``: a pid, one number per level (``numbers[0]``: the root's).

        ``set_tid`` (clone3) asks for exact numbers, innermost level first:
        ``set_tid[0]`` in ``ns``, ``set_tid[1]`` in its parent, ... (``alloc_pid``, kernel/pid.c);
        an exact number does not move the cursor. A pid numbered 1 in ``ns`` makes it
        the namespace's init (``child_reaper``).

        Raises:
            BpfnsError: EAGAIN if any level has no free pid below its pid_max (the
                deeper levels' cursors stay advanced, as in the kernel); ENOMEM if the
                init of ``ns`` has exited (PIDNS_ADDING is clear); for ``set_tid``:
                EINVAL if it is longer than ``ns.level + 1`` or 32, or an entry is
                outside ``[1, pid_max)`` or is not 1 in a namespace without an init,
                EEXIST if that number is taken.
            TypeError, ValueError: for a bad namespace or ``set_tid``.

        >>> pk = PidKernel()
        >>> ns = pk.create_namespace(pk.root)
        >>> pk.set_pid_max(ns, 301)
        >>> [pk.alloc_pid(ns).numbers[1].nr for _ in range(3)]
        [1, 2, 3]
        >>> pk.alloc_pid(ns, set_tid=(42,)).numbers[1].nr
        42
        """
        live = live_namespace(ns, "ns", self.core)
        if not isinstance(set_tid, tuple | list):
            raise TypeError(f"set_tid must be a tuple of pids, not {type(set_tid).__name__}")
        tids = [check_int("set_tid[]", tid, -(2**31), 2**31 - 1, "pid_t") for tid in set_tid]
        if len(tids) > _MAX_PID_NS_LEVEL or len(tids) > live.level + 1:
            raise BpfnsError(
                errno.EINVAL,
                f"set_tid has {len(tids)} entries; {live.label()} has {live.level + 1} levels",
            )
        levels = list(live.ancestors())  # innermost first, as set_tid is
        for level_ns, tid in zip(levels, tids, strict=False):
            _policy(level_ns).requested = tid
        try:
            pid = self.core.alloc_obj_id(live, object(), _PIDS)
        finally:
            for level_ns in levels:
                _policy(level_ns).requested = None
        if pid.numbers[-1].nr == 1:  # copy_process: is_child_reaper
            _policy(live).child_reaper = True
        return pid

    def nspid(self, pid: ObjId, ns: Namespace) -> str:
        r"""The ``NSpid:`` line of ``/proc/<pid>/status`` read in a procfs of ``ns``.

        One tab-separated field per level from the viewer's down to the pid's own,
        the viewer's number first (fs/proc/array.c ``task_state``).

        Raises:
            BpfnsError: ENOENT if ``pid`` has no number in ``ns`` (the task is not in
                that procfs).
            TypeError, ValueError: for a freed pid or a bad namespace.

        >>> pk = PidKernel()
        >>> inner = pk.create_namespace(pk.create_namespace(pk.root))
        >>> pid = pk.alloc_pid(inner)
        >>> pk.nspid(pid, pk.root), pk.nspid(pid, inner)
        ('NSpid:\t1\t1\t1', 'NSpid:\t1')
        """
        live = live_namespace(ns, "ns", self.core)
        numbers = self._live_pid(pid).numbers
        if live.level >= len(numbers) or numbers[live.level].ns is not live:
            raise BpfnsError(errno.ENOENT, f"pid {pid!r} is not visible in {live.label()}")
        return "NSpid:" + "".join(f"\t{n.nr}" for n in numbers[live.level :])

    def free_pid(self, pid: ObjId) -> None:
        """``free_pid``: every number of ``pid`` is free at once.

        Raises:
            TypeError, ValueError: for something that is not a live pid of this model.

        >>> pk = PidKernel()
        >>> pid = pk.alloc_pid(pk.root)
        >>> pk.free_pid(pid); pk.find_pid(pk.root, 1) is None
        True
        """
        pid = self._live_pid(pid)
        if pid.numbers[-1].nr == 1:  # the init: zap_pid_ns_processes ran at its exit
            _policy(pid.ns).adding = False  # disable_pid_allocation
        self.core.free_obj_id(pid, _PIDS)

    def _live_pid(self, pid: object) -> ObjId:
        """``pid`` if it is a live pid of this model."""
        if not isinstance(pid, ObjId):
            raise TypeError(
                f"pid must be a pid of this model (an ObjId), not {type(pid).__name__}"
            )
        if not pid.live:
            raise ValueError(f"pid: {pid!r} was freed already; free a pid once")
        if pid.ns.kernel is not self.core:
            raise ValueError(f"pid: {pid!r} belongs to another PidKernel")
        return pid

    def find_pid(self, ns: Namespace, nr: int) -> ObjId | None:
        """``find_pid_ns(nr, ns)``: the published pid numbered ``nr`` in ``ns``, or None.

        >>> pk = PidKernel()
        >>> pid = pk.alloc_pid(pk.root)
        >>> pk.find_pid(pk.root, 1) is pid
        True
        """
        live = live_namespace(ns, "ns", self.core)
        found: ObjId | None = live.idr[_PIDS].find(check_int("nr", nr, 0, 2**64 - 1, "pid_t"))
        return found


def _policy(ns: Namespace) -> PidPolicy:
    """The :class:`PidPolicy` of a namespace of this flavour."""
    policy = ns.policy
    assert isinstance(policy, PidPolicy)
    return policy
