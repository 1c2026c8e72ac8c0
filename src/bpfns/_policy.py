"""Allocation policies: how one namespace level picks an id (the only per-flavour rule).

The namespace tree, the IDRs, the id records and the deepest-first walk with rollback
are shared by every flavour of namespace. What differs is one level's allocation:

* :class:`ObjIdPolicy` (BPF namespaces, semantics §2.3): ``idr_alloc_cyclic(obj, 1, end)``;
  the object pointer is stored at once.
* :class:`PidPolicy` (pid namespaces, kernel rules §C.2): ``idr_alloc_cyclic(NULL, pid_min,
  pid_max)`` with ``pid_min`` 300 once the cursor has passed RESERVED_PIDS, a NULL
  placeholder published by ``idr_replace`` when every level succeeded, ENOSPC reported as
  EAGAIN, and the innermost cursor reset to 0 after a rollback if that namespace holds no
  published pid.
"""

from __future__ import annotations

import errno

import attrs

from ._args import INT_MAX
from ._errors import BpfnsError
from ._idr import Idr, idr_alloc_cyclic

__all__ = ["PID_MAX_LIMIT", "RESERVED_PIDS", "ObjIdPolicy", "PidPolicy"]

RESERVED_PIDS = 300
#: ``PID_MAX_LIMIT`` on 64-bit (kernel rules §C.1); the initial pid namespace's bound.
PID_MAX_LIMIT = 4 * 1024 * 1024
PID_MAX_MIN = RESERVED_PIDS + 1


@attrs.frozen
class ObjIdPolicy:
    """BPF object ids: ``idr_alloc_cyclic(obj, 1, end)`` (``end`` exclusive)."""

    end: int
    placeholder = False
    caller = "bpf_alloc_obj_id"
    #: A BPF namespace always takes new objects (no PIDNS_ADDING state).
    adding = True

    @property
    def arm_limit(self) -> int:
        """The largest id :meth:`alloc` hands out: the IDRs' ``arm_limit``."""
        return self.end - 1

    def alloc(self, idr: Idr, ptr: object) -> int:
        """One level of ``bpf_alloc_obj_id``."""
        return idr_alloc_cyclic(idr, ptr, 1, self.end - 1)

    def after_rollback(self, idr: Idr) -> None:
        """Nothing: the posted code leaves every cursor where it was."""


@attrs.define
class PidPolicy:
    """Pid numbers of one pid namespace: ``alloc_pid``'s rules for that level.

    Attributes:
        pid_max: this namespace's ``/proc/sys/kernel/pid_max`` (exclusive bound).
        adding: ``pid_allocated & PIDNS_ADDING``: the namespace takes new pids. Its
            init's exit clears it (``disable_pid_allocation``), for good.
        child_reaper: whether the namespace has had its init (a pid numbered 1 in it).
        requested: the exact pid ``set_tid`` asks of this level for the allocation in
            progress, or None (``alloc_pid`` reads it once).
    """

    pid_max: int = PID_MAX_LIMIT
    adding: bool = True
    child_reaper: bool = False
    requested: int | None = None
    placeholder = True
    caller = "alloc_pid"
    #: ``pid_max`` can change, so the IDRs arm any leaf (their own bounds check holds).
    arm_limit = INT_MAX

    def alloc(self, idr: Idr, ptr: object) -> int:
        """One level of ``alloc_pid``: a NULL placeholder; ENOSPC becomes EAGAIN.

        With a ``set_tid`` entry for this level (:attr:`requested`) the number is exact
        (``idr_alloc(tid, tid + 1)``, the cursor untouched): EINVAL outside
        ``[1, pid_max)`` or, other than 1, before the namespace has an init; EEXIST if
        it is taken.
        """
        del ptr  # published later with idr_replace
        tid, self.requested = self.requested, None
        if tid is not None:
            return self._alloc_exact(idr, tid)
        pid_min = RESERVED_PIDS if idr.cursor > RESERVED_PIDS else 1
        try:
            return idr_alloc_cyclic(idr, None, pid_min, self.pid_max - 1)
        except BpfnsError as e:
            raise BpfnsError(
                errno.EAGAIN,
                f"no free pid in [{pid_min}, {self.pid_max}); fork fails with EAGAIN "
                "(reap a process or raise pid_max)",
            ) from e

    def _alloc_exact(self, idr: Idr, tid: int) -> int:
        """The ``set_tid`` branch of one level of ``alloc_pid``."""
        if not 1 <= tid < self.pid_max:
            raise BpfnsError(errno.EINVAL, f"set_tid {tid} is outside [1, {self.pid_max})")
        if tid != 1 and not self.child_reaper:
            raise BpfnsError(
                errno.EINVAL,
                f"set_tid {tid}: a namespace without an init takes only pid 1 first",
            )
        try:
            return idr.alloc(None, tid, tid + 1)
        except BpfnsError:
            raise BpfnsError(errno.EEXIST, f"set_tid {tid}: that pid is taken") from None

    def after_rollback(self, idr: Idr) -> None:
        """``idr_set_cursor(&ns->idr, 0)`` if the innermost namespace has no pid."""
        if idr.is_empty():
            idr.cursor = 0
