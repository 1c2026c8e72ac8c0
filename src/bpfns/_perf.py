"""Tracing attachments and ``BPF_TASK_FD_QUERY`` (kernel/events/core.c, kernel/bpf/syscall.c).

Two ways a program is attached to a tracepoint, each giving the attaching task an fd:

* a perf event (:meth:`PerfCommands.perf_event_open`) with the program set on it by
  ``ioctl(PERF_EVENT_IOC_SET_BPF)`` (:meth:`PerfCommands.perf_event_set_bpf`); the
  event holds a reference on the program until its file is released;
* a raw tracepoint link (``BPF_RAW_TRACEPOINT_OPEN``,
  :meth:`PerfCommands.raw_tracepoint_open`), a :class:`bpfns.BpfLink` with ids.

``BPF_TASK_FD_QUERY`` (:meth:`PerfCommands.task_fd_query`) asks what is attached behind
another task's fd. Patch 11 relaxes its gate with ``bpfns_capable()`` but does not filter
by namespace: a CAP_BPF task in a child namespace can query any task its pid namespace
shows (every task, in bpfns's one pid space), and the perf-event branch reports the
**global** program id while the raw tracepoint branch reports ``vnr`` (D13). Fixed, a
task outside the caller's BPF namespace subtree is not found, and both branches report
the id in the caller's namespace.
"""

from __future__ import annotations

import errno

import attrs

from ._args import INT_MAX, INT_MIN, U32_MAX, check_int, check_str
from ._bpf_object import (
    BPF_LINK_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BpfLink,
    BpfProg,
    PerfEvent,
    SyscallTask,
    bpf_obj_get,
    bpf_obj_id_vnr,
    fdget,
    syscall,
)
from ._errors import ENOTSUPP, BpfnsError
from ._fault import FaultSite
from ._files import File, FileKind
from ._syscall import BpfCommands, bpfns_gate
from ._trace import traced

__all__ = [
    "BPF_FD_TYPE_RAW_TRACEPOINT",
    "BPF_FD_TYPE_TRACEPOINT",
    "PerfCommands",
    "TaskFdQuery",
]

#: ``enum bpf_task_fd_type`` (include/uapi/linux/bpf.h).
BPF_FD_TYPE_RAW_TRACEPOINT = 0
BPF_FD_TYPE_TRACEPOINT = 1
#: ``BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE``: the other raw tracepoint program type.
_RAW_TP_WRITABLE = 24


@attrs.frozen
class TaskFdQuery:
    """What ``BPF_TASK_FD_QUERY`` writes back (``attr->task_fd_query``).

    Attributes:
        prog_id: the attached program's id (see D13 for which namespace's).
        fd_type: ``BPF_FD_TYPE_RAW_TRACEPOINT`` or ``BPF_FD_TYPE_TRACEPOINT``.
        buf: the tracepoint's name.
        probe_offset, probe_addr: 0 for tracepoints.
    """

    prog_id: int
    fd_type: int
    buf: str
    probe_offset: int = 0
    probe_addr: int = 0


def _prog_of(task: SyscallTask, prog_fd: int) -> BpfProg:
    check_int("prog_fd", prog_fd, INT_MIN, INT_MAX, "int")
    file = fdget(task, prog_fd)
    if file.kind is not FileKind.BPF_PROG:
        raise BpfnsError(errno.EINVAL, f"prog_fd {prog_fd} is a {file.kind.value}, not a bpf-prog")
    prog: BpfProg = file.obj
    return prog


def _tracepoint(name: object) -> str:
    name = check_str("tracepoint", name)
    if not name:
        raise BpfnsError(errno.EINVAL, "a tracepoint name is required (e.g. 'sys_enter')")
    return name


class PerfCommands:
    """The tracing attachments and ``BPF_TASK_FD_QUERY``, as methods of :class:`bpfns.Task`."""

    __slots__ = ()

    @syscall("perf_event_open")
    def perf_event_open(self: SyscallTask, tracepoint: str) -> int:
        """``perf_event_open`` of a tracepoint event: an fd a program can be attached to.

        bpfns does not model perf's own permission rules (``perf_event_paranoid``).

        Raises:
            BpfnsError: EINVAL for an empty name; EMFILE; ENOMEM when an injected
                allocation fails.
            TypeError: if ``tracepoint`` is not a str.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.perf_event_open("sched_switch")
        0
        """
        name = _tracepoint(tracepoint)
        self.kernel.faults.inject(FaultSite.FILE)
        assert self.files is not None
        return self.files.install(File(FileKind.PERF_EVENT, PerfEvent(name)))

    @syscall("ioctl(PERF_EVENT_IOC_SET_BPF)")
    def perf_event_set_bpf(self: SyscallTask, perf_fd: int, prog_fd: int) -> None:
        """``ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)``: attach a program to the event.

        The event holds a reference on the program until the event's file is released.

        Raises:
            BpfnsError: EBADF for an fd that is not open; ENOTTY if ``perf_fd`` is not a
                perf event; EINVAL if ``prog_fd`` is not a program; EEXIST if the event
                has a program already.
            TypeError, ValueError: if an fd is not an int.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> ev = t.perf_event_open("sched_switch")
        >>> t.perf_event_set_bpf(ev, t.prog_load()); t.task_fd_query(t.pid, ev).prog_id
        1
        """
        check_int("perf_fd", perf_fd, INT_MIN, INT_MAX, "int")
        file = self._fdget(perf_fd)
        if file.kind is not FileKind.PERF_EVENT:
            raise BpfnsError(errno.ENOTTY, f"fd {perf_fd} is not a perf event")
        event: PerfEvent = file.obj
        prog = _prog_of(self, prog_fd)
        if event.prog is not None:
            raise BpfnsError(errno.EEXIST, "the event has a program already")
        bpf_obj_get(prog, "perf_event")
        event.prog = prog

    @traced
    def raw_tracepoint_open(self: SyscallTask, tracepoint: str, prog_fd: int) -> int:
        """``BPF_RAW_TRACEPOINT_OPEN``: a raw tracepoint link (with ids) for a program.

        Raises:
            BpfnsError: EINVAL for an empty name or a program that is not a raw
                tracepoint program; EBADF/EINVAL for a bad ``prog_fd``; the errors of
                :meth:`bpfns.Task.link_create`.
            TypeError, ValueError: for arguments of the wrong type.

        >>> from bpfns import Kernel, BPF_PROG_TYPE_RAW_TRACEPOINT
        >>> t = Kernel().init_task
        >>> fd = t.raw_tracepoint_open("sys_enter", t.prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT))
        >>> t.task_fd_query(t.pid, fd).buf
        'sys_enter'
        """
        name = _tracepoint(tracepoint)
        prog = _prog_of(self, prog_fd)
        if prog.prog_type not in (BPF_PROG_TYPE_RAW_TRACEPOINT, _RAW_TP_WRITABLE):
            raise BpfnsError(
                errno.EINVAL, f"program type {prog.prog_type} cannot attach to a raw tracepoint"
            )
        primer = BpfCommands.link_prime(self, prog_fd, BPF_LINK_TYPE_RAW_TRACEPOINT)
        primer.link.tp_name = name
        return primer.settle()

    @syscall("bpf(BPF_TASK_FD_QUERY)")
    def task_fd_query(self: SyscallTask, pid: int, fd: int) -> TaskFdQuery:
        """``BPF_TASK_FD_QUERY``: what is attached behind task ``pid``'s ``fd``.

        As posted (D13) any task is found and a perf event reports the **global**
        program id (a raw tracepoint link reports ``vnr``); fixed, a task outside the
        caller's BPF namespace subtree is not found and both report ``vnr``.

        Raises:
            BpfnsError: EPERM unless CAP_SYS_ADMIN, or CAP_BPF in a non-init
                namespace; ENOENT if no such task (fixed: none in the caller's
                subtree) or the event has no program; EBADF if the task has no such
                fd; ENOTSUPP (524, the kernel's internal errno) for any other kind of
                file.
            TypeError, ValueError: if ``pid`` or ``fd`` is out of range.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> _ = k.init_task.prog_load()
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> ev = c.perf_event_open("sys_enter")
        >>> c.perf_event_set_bpf(ev, c.prog_load())
        >>> c.task_fd_query(c.pid, ev).prog_id                  # D13: global id 2
        2
        """
        check_int("pid", pid, 0, INT_MAX, "pid_t")
        check_int("fd", fd, 0, U32_MAX, "u32")
        bpfns_gate(self, "BPF_TASK_FD_QUERY")  # patch 11 relaxes it like the id lookups
        k = self.kernel
        d13 = k.behavior.d13_task_fd_query_unfiltered
        try:
            target = self.find_vpid(pid)
        except BpfnsError:
            raise BpfnsError(errno.ENOENT, f"BPF_TASK_FD_QUERY: no task {pid}") from None
        if not d13 and self.bpf_ns not in target.bpf_ns.ancestors():
            raise BpfnsError(
                errno.ENOENT,
                f"BPF_TASK_FD_QUERY: task {pid} is outside your bpf namespace subtree",
            )
        file = fdget(target, fd)
        obj = file.obj
        if file.kind is FileKind.BPF_LINK and obj.link_type == BPF_LINK_TYPE_RAW_TRACEPOINT:
            link: BpfLink = obj
            assert link.prog is not None
            vnr = bpf_obj_id_vnr(k, link.prog, "bpf_task_fd_query")
            return TaskFdQuery(vnr, BPF_FD_TYPE_RAW_TRACEPOINT, link.tp_name)
        if file.kind is not FileKind.PERF_EVENT:
            raise BpfnsError(ENOTSUPP, f"fd {fd} of task {pid} is no tracing attachment")
        event: PerfEvent = obj
        if event.prog is None:
            raise BpfnsError(errno.ENOENT, f"the perf event at fd {fd} has no program")
        if d13:  # bpf_get_perf_event_info: prog->aux->id
            prog_id = event.prog.id
        else:
            prog_id = bpf_obj_id_vnr(k, event.prog, "bpf_get_perf_event_info")
        return TaskFdQuery(prog_id, BPF_FD_TYPE_TRACEPOINT, event.tracepoint)
