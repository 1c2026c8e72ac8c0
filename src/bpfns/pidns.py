"""The pid-namespace flavour of the core: the same classes, with ``alloc_pid``'s policy.

kernel.md section C is the reference. A :class:`PidKernel` is a :class:`bpfns.Kernel`
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

Not modelled: ``set_tid`` (clone3's exact pids), the PIDNS_ADDING state (a namespace
whose init exited refuses forks with ENOMEM), and pid types other than PIDTYPE_PID.
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

__all__ = ["PID_MAX_LIMIT", "RESERVED_PIDS", "PidKernel", "PidPolicy"]

_PIDS = ObjType.MAP  # a pid namespace has one IDR; bpfns keeps it in slot 0


@attrs.define(eq=False, repr=False)
class _PidCore(Kernel):
    """A Kernel whose namespaces are pid namespaces."""

    ns_ucount = UcountType.PID_NAMESPACES

    def _new_policy(self) -> PidPolicy:
        return PidPolicy()


@attrs.define(eq=False)
class PidKernel:
    """Pid namespaces on the shared core (``alloc_pid``, ``free_pid``, ``pid_max``).

    ``root`` is a fresh pid namespace: cursor 0, ``pid_max`` 4194304 (what a new
    namespace gets since 6.14).
    """

    core: Kernel = attrs.field(factory=lambda: _PidCore(FIXED), repr=False)

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
        policy = live.policy
        assert isinstance(policy, PidPolicy)
        policy.pid_max = value

    def pid_max(self, ns: Namespace) -> int:
        """Read ``/proc/sys/kernel/pid_max`` of ``ns``.

        >>> pk = PidKernel()
        >>> pk.pid_max(pk.root)
        4194304
        """
        policy = live_namespace(ns, "ns", self.core).policy
        assert isinstance(policy, PidPolicy)
        return policy.pid_max

    def alloc_pid(self, ns: Namespace) -> ObjId:
        """``alloc_pid(ns)``: a pid with one number per level; ``numbers[0]`` is the root's.

        Raises:
            BpfnsError: EAGAIN if any level has no free pid below its pid_max (the
                deeper levels' cursors stay advanced, as in the kernel).

        >>> pk = PidKernel()
        >>> ns = pk.create_namespace(pk.root)
        >>> pk.set_pid_max(ns, 301)
        >>> [pk.alloc_pid(ns).numbers[1].nr for _ in range(3)]
        [1, 2, 3]
        """
        return self.core.alloc_obj_id(ns, object(), _PIDS)

    def free_pid(self, pid: ObjId) -> None:
        """``free_pid``: every number of ``pid`` is free at once.

        Raises:
            TypeError, ValueError: for something that is not a live pid of this model.

        >>> pk = PidKernel()
        >>> pid = pk.alloc_pid(pk.root)
        >>> pk.free_pid(pid); pk.find_pid(pk.root, 1) is None
        True
        """
        if not isinstance(pid, ObjId):
            raise TypeError(
                f"pid must be a pid of this model (an ObjId), not {type(pid).__name__}"
            )
        if not pid.live:
            raise ValueError(f"pid: {pid!r} was freed already; free a pid once")
        if pid.ns.kernel is not self.core:
            raise ValueError(f"pid: {pid!r} belongs to another PidKernel")
        self.core.free_obj_id(pid, _PIDS)

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
