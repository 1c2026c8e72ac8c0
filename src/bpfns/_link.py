"""The link primer of kernel/bpf/syscall.c: ``bpf_link_prime``, ``_settle``, ``_cleanup``.

BPF_LINK_CREATE makes a link in two phases. :meth:`bpfns.Task.link_prime` reserves an
fd and gives the link its ids (it is findable, but ``link->id`` is still 0, so
GET_FD_BY_ID says EAGAIN); :meth:`LinkPrimer.settle` publishes ``link->id`` and
installs the fd, or :meth:`LinkPrimer.cleanup` undoes it all (the attachment failed).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ._bpf_namespace import ObjType
from ._bpf_object import (
    LINK_LOCK,
    BpfLink,
    CurrentTask,
    bpf_file,
    bpf_obj_free,
    bpf_obj_put,
    syscall,
)
from ._files import FdTable
from ._obj_id import ObjId, free_obj_id
from ._trace import Tracer, traced

__all__ = ["LinkPrimer"]


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
    prog = primer.link.prog
    assert prog is not None  # a link has its program until it is freed
    bpf_obj_put(prog, "link")
