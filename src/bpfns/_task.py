"""Tasks: kernel/fork.c, kernel/nsproxy.c and kernel/exit.c as far as BPF namespaces need.

A :class:`Task` has credentials (:class:`bpfns.Cred`), an ``nsproxy`` whose ``bpf_ns`` is
its BPF namespace (per task, like the network namespace: semantics §2.1), and a file table.

* :meth:`Task.clone` follows ``copy_process``: flag checks, ``copy_creds`` (a new user
  namespace with CLONE_NEWUSER), the file table, then ``copy_namespaces`` (CAP_SYS_ADMIN
  in the child's user namespace, else EPERM; ``copy_bpfns``). clone3 passes all 64 flag
  bits; the legacy ``clone()`` only the low 32, so CLONE_NEWBPF is silently dropped.
* :meth:`Task.unshare` moves the caller itself into the new namespace at once.
* :meth:`Task.setns` on a BPF namespace fd is EOPNOTSUPP (semantics §2.2, D18).
* :meth:`Task.exit` drops the nsproxy before the last file references go (the final
  ``fput`` runs as task work after ``exit_task_namespaces``), which is what makes D8
  reachable.
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar

import attrs

from ._args import (
    INT_MAX,
    INT_MIN,
    U32_MAX,
    check_bool,
    check_int,
    check_label,
    check_ns_name,
    check_str,
)
from ._bpf_namespace import (
    CLONE_NEWBPF,
    Namespace,
    Nsproxy,
    create_bpf_namespace,
    get_bpfns,
    put_bpfns,
)
from ._bpf_object import BPF_FILE_KINDS, BpfContext, fput, object_fdinfo, put_files, syscall
from ._btf import BtfCommands
from ._capability import ALL_CAPS, Cap, Cred, cap_capable
from ._errors import BpfnsError, KernelBug
from ._fault import FaultSite
from ._files import FdTable, File, FileKind
from ._idr import Idr, idr_alloc_cyclic, idr_remove
from ._map_in_map import MapElemCommands
from ._nsfs import (
    CLONE3_NEVER,
    CLONE3_OK,
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEW_STD,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VM,
    CSIGNAL,
    NsfsCommands,
    einval,
    task_lock_name,
)
from ._perf import PerfCommands
from ._policy import PID_MAX_LIMIT
from ._syscall import BpfCommands
from ._trace import TaskCreated, Tracer, traced
from ._ucount import (
    UcountType,
    UserNamespace,
    create_user_ns,
    get_user_ns,
    live_user_ns,
    put_user_ns,
)

__all__ = [
    "CLONE_FILES",
    "CLONE_NEWUSER",
    "CLONE_SIGHAND",
    "CLONE_THREAD",
    "CLONE_VM",
    "Task",
    "TaskContext",
    "make_task_dead",
]

#: The flags that make ``copy_namespaces`` build a new nsproxy (CLONE_NEWUSER does not).
_CLONE_NEW_NSPROXY = (CLONE_NEW_STD & ~CLONE_NEWUSER) | CLONE_NEWBPF
#: ``check_unshare_flags``: what unshare() accepts (patch 01 adds CLONE_NEWBPF).
_UNSHARE_OK = (
    (CLONE_THREAD | CLONE_FS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES | CLONE_SYSVSEM)
    | CLONE_NEW_STD
    | CLONE_NEWBPF
)

_SYSCTLS = {
    "user.max_bpf_namespaces": UcountType.BPF_NAMESPACES,
    "user.max_user_namespaces": UcountType.USER_NAMESPACES,
}


@attrs.define(eq=False, repr=False)
class TaskContext(BpfContext):
    """The kernel context with the task layer's state (see :mod:`bpfns._context`).

    Attributes:
        live_tasks: the live tasks, by pid.
        pid_idr: the pids (``alloc_pid``: cyclic, from 1).
        init_task: the first task (pid 1), in the initial namespaces with every cap.
    """

    live_tasks: dict[int, Task] = attrs.field(init=False, factory=dict)
    pid_idr: Idr = attrs.field(init=False, factory=Idr)
    init_task: Task = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        get_user_ns(self.init_user_ns, "cred")
        init_cred = Cred(0, self.init_user_ns, ALL_CAPS)
        self.init_task = self._new_task(init_cred, Nsproxy(self.init_ns), FdTable(), 0, "init")

    def _new_task(
        self, cred: Cred, nsproxy: Nsproxy, files: FdTable, tgid: int, name: str | None
    ) -> Task:
        """Give a new task a pid (``alloc_pid``: cyclic, from 1) and register it."""
        task = Task(self, 0, tgid, cred, nsproxy, files, name)
        task.pid = idr_alloc_cyclic(self.pid_idr, task, 1, PID_MAX_LIMIT - 1)
        task.tgid = tgid or task.pid
        self.live_tasks[task.pid] = task
        if self.tracer is not None:
            self.tracer.emit(TaskCreated(self.tracer.step, self.tracer.ref(task), task.pid))
        return task

    def _release_task(self, task: Task) -> None:
        """``release_task``: the pid is free again."""
        idr_remove(self.pid_idr, task.pid)
        del self.live_tasks[task.pid]

    def _own_task(self, task: object, what: str) -> Task:
        """``task`` if it is a live Task of this kernel; ``what`` names the argument.

        Raises:
            TypeError: if ``task`` is not a Task.
            ValueError: if it belongs to another Kernel or has exited.
        """
        if not isinstance(task, Task):
            raise TypeError(f"{what} must be a bpfns.Task, not {type(task).__name__}")
        if task.kernel is not self:
            raise ValueError(f"{what}: {task!r} belongs to another Kernel")
        if not task.alive:
            raise ValueError(f"{what}: {task!r} has exited; use a live task")
        return task

    def find_task(self, pid: int) -> Task:
        """``find_task_by_vpid``: the live task with global pid ``pid``.

        Raises:
            BpfnsError: ESRCH if no live task has that pid.
            TypeError, ValueError: if ``pid`` is not a pid.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> k.find_task(1) is k.init_task
        True
        """
        check_int("pid", pid, 0, INT_MAX, "pid_t")
        task = self.live_tasks.get(pid)
        if task is None:
            raise BpfnsError(errno.ESRCH, f"no live task with pid {pid}")
        return task


@attrs.define(eq=False, repr=False)
class Task(BpfCommands, MapElemCommands, BtfCommands, PerfCommands, NsfsCommands):
    """A simulated task (``struct task_struct``).

    Get the first one from :attr:`bpfns.Kernel.init_task` and make more with
    :meth:`clone`. The BPF commands (``map_create``, ``prog_load``, ...) are methods
    too: each runs as this task, so ids are allocated in and seen from this task's
    BPF namespace.

    Attributes:
        pid: the global pid. ``tgid`` is the thread-group (process) id.
        cred: the task's credentials.
        nsproxy: the namespaces, None once the task has exited.
        files: the file table, None once the task has exited.
    """

    kernel: TaskContext
    pid: int
    tgid: int
    cred: Cred
    nsproxy: Nsproxy | None
    files: FdTable | None
    name: str | None = None
    alive: bool = True
    #: ``PF_EXITING``: ``do_exit`` has started (an oops now is a recursive fault).
    _exiting: bool = attrs.field(default=False, init=False)
    #: the kernel's tracer (fixed when the kernel is built): what ``@traced`` reads
    _tracer: Tracer | None = attrs.field(init=False, repr=False)
    _trace_kind: ClassVar[str] = "task"

    def __attrs_post_init__(self) -> None:
        self._tracer = self.kernel.tracer

    def __repr__(self) -> str:
        where = "exited" if self.nsproxy is None else self.nsproxy.bpf_ns.label()
        name = f" {self.name!r}" if self.name else ""
        return f"<Task pid={self.pid}{name} euid={self.cred.euid} bpf_ns={where}>"

    def _repr_html_(self) -> str:
        """Notebooks: the task and its open files."""
        from ._render import task_html  # noqa: PLC0415 - rendering imports this module

        return task_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's terminal: the task and its open files."""
        files = [] if cycle or self.files is None else list(self.files.items())
        lines = [repr(self), *(f"  fd {fd}: {f.kind.value} {f.obj!r}" for fd, f in files)]
        p.text("\n".join(lines))

    # -- helpers --------------------------------------------------------------------

    @property
    def bpf_ns(self) -> Namespace:
        """``current->nsproxy->bpf_ns``: the task's BPF namespace.

        Raises:
            ValueError: if the task has exited.
        """
        self._require_alive()
        assert self.nsproxy is not None
        return self.nsproxy.bpf_ns

    def _require_alive(self) -> None:
        if not self.alive:
            raise ValueError(f"{self!r} has exited; use a live task")

    def capable(self, cap: Cap) -> bool:
        """``capable(cap)``: the capability in the initial user namespace.

        Raises:
            TypeError: if ``cap`` is not a :class:`bpfns.Cap`.

        >>> from bpfns import Kernel, Cap
        >>> Kernel().init_task.capable(Cap.CAP_BPF)
        True
        """
        return cap_capable(self.cred, self.kernel.init_user_ns, _cap(cap))

    def ns_capable(self, ns: UserNamespace, cap: Cap) -> bool:
        """``ns_capable(ns, cap)`` (``cap_capable``, security/commoncap.c).

        >>> from bpfns import Kernel, Cap, CLONE_NEWUSER
        >>> k = Kernel()
        >>> user = k.init_task.clone(); user.set_euid(1000)
        >>> child = user.clone(CLONE_NEWUSER)
        >>> child.ns_capable(child.cred.user_ns, Cap.CAP_SYS_ADMIN)
        True
        >>> child.capable(Cap.CAP_SYS_ADMIN)
        False

        Raises:
            TypeError: if ``ns`` is not a UserNamespace or ``cap`` not a Cap.
            ValueError: if ``ns`` belongs to another Kernel or was freed.
        """
        target = live_user_ns(ns, "ns", self.kernel.init_user_ns)
        return cap_capable(self.cred, target, _cap(cap))

    def find_vpid(self, pid: int) -> Task:
        """``find_task_by_vpid``: the live task with ``pid`` as this task sees it.

        bpfns has one pid space (no pid namespaces for tasks), so that is the task with
        that global pid.

        Raises:
            BpfnsError: ESRCH if no live task has ``pid``.
            TypeError, ValueError: if ``pid`` is not a pid.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.find_vpid(t.clone().pid).pid
        2
        """
        return self.kernel.find_task(pid)

    def _oops(self) -> None:
        """An oops in a syscall of this task: ``make_task_dead`` (see :func:`syscall`)."""
        make_task_dead(self)

    def _fdget(self, fd: int) -> File:
        """``fdget``: the open file behind ``fd`` in this task's table.

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.
            TypeError, ValueError: if ``fd`` is not a C int.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t._fdget(t.map_create()).kind
        FileKind.BPF_MAP
        """
        check_int("fd", fd, INT_MIN, INT_MAX, "int")
        assert self.files is not None
        return self.files.get(fd)

    def thread_group(self) -> list[Task]:
        """The live tasks of this task's process (``tgid``), this one included.

        >>> from bpfns import Kernel, CLONE_THREAD, CLONE_SIGHAND, CLONE_VM
        >>> t = Kernel().init_task.clone()
        >>> thread = t.clone(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
        >>> [x.pid for x in t.thread_group()]
        [2, 3]
        """
        return [t for t in self.kernel.live_tasks.values() if t.tgid == self.tgid]

    # -- credentials ----------------------------------------------------------------

    @traced
    def drop_capabilities(self, *caps: Cap) -> None:
        """Remove ``caps`` from the effective set (``capset``/``commit_creds``).

        >>> from bpfns import Kernel, Cap
        >>> t = Kernel().init_task.clone()
        >>> t.drop_capabilities(Cap.CAP_SYS_ADMIN); t.capable(Cap.CAP_SYS_ADMIN)
        False
        """
        self._require_alive()
        self.cred = self.cred.without(caps)

    @traced
    def set_euid(self, euid: int) -> None:
        """Change the effective uid (``setresuid(-1, euid, -1)``), as if permitted.

        As ``cap_emulate_setxuid`` does, leaving euid 0 clears the effective
        capabilities and returning to 0 restores the full set.

        Raises:
            TypeError, ValueError: if ``euid`` is not a uid.

        >>> from bpfns import Kernel, Cap
        >>> t = Kernel().init_task.clone()
        >>> t.set_euid(1000); t.capable(Cap.CAP_BPF)
        False
        """
        self._require_alive()
        euid = check_int("euid", euid, 0, U32_MAX - 1, "uid")
        caps = self.cred.caps
        if self.cred.euid == 0 and euid != 0:
            caps = frozenset()
        elif self.cred.euid != 0 and euid == 0:
            caps = ALL_CAPS
        self.cred = attrs.evolve(self.cred, euid=euid, caps=caps)

    # -- clone, unshare, setns, exit --------------------------------------------------

    @syscall("clone")
    def clone(
        self,
        flags: int = 0,
        *,
        legacy: bool = False,
        name: str | None = None,
        ns_name: str | None = None,
    ) -> Task:
        """``clone3`` (default) or, with ``legacy=True``, ``clone``: a new child task.

        ``CLONE_NEWBPF`` gives the child a new BPF namespace under this task's;
        ``CLONE_NEWUSER`` a new user namespace owned by this task's euid, in which the
        child has every capability; ``CLONE_THREAD|CLONE_SIGHAND|CLONE_VM`` a thread
        (it may later unshare into another BPF namespace than its siblings);
        ``CLONE_FILES`` shares the file table, otherwise the child gets a copy.

        ``name`` labels the task and ``ns_name`` a BPF namespace the call creates (in
        :meth:`bpfns.Namespace.tree` and ``bpfns show``); the kernel has neither.

        ``copy_process`` order: the flag checks, ``dup_task_struct``, ``copy_creds``,
        ``copy_files``, ``copy_namespaces``; a failure undoes the earlier steps in
        reverse order, so nothing changes.

        Raises:
            BpfnsError: EINVAL for flags clone3 does not know (``clone3_args_valid``:
                bits above the known ones, the exit-signal byte, CLONE_DETACHED), and
                for invalid flag combinations (CLONE_THREAD without
                CLONE_SIGHAND, CLONE_SIGHAND without CLONE_VM, CLONE_THREAD with
                CLONE_NEWUSER or CLONE_NEWPID; with D19 fixed, CLONE_NEWUSER with
                CLONE_NEWBPF); EPERM without CAP_SYS_ADMIN in the child's user namespace
                when a namespace is created; ENOMEM when an injected allocation fails;
                the errors of ``copy_bpfns`` and ``create_user_ns``.
            ValueError: if the task has exited, or ``ns_name`` is empty or contains
                ``/`` (namespace names are path labels); TypeError/ValueError for bad
                flags.
            TypeError: if ``name`` or ``ns_name`` is neither a str nor None, or
                ``legacy`` is not a bool.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> k.init_task.clone(CLONE_NEWBPF, ns_name="ctr").bpf_ns.label()
        'ctr'
        >>> child = k.init_task.clone(CLONE_NEWBPF)
        >>> child.bpf_ns.level, k.init_task.clone(CLONE_NEWBPF, legacy=True).bpf_ns.level
        (1, 0)
        """
        k = self.kernel
        flags = check_int("flags", flags, 0, 2**64 - 1, "u64")
        if check_bool("legacy", legacy):
            # clone(unsigned long flags, ...): the low 32 bits, less the exit signal
            flags &= 0xFFFFFFFF & ~CSIGNAL
        elif flags & ~CLONE3_OK or flags & CLONE3_NEVER:  # clone3_args_valid
            bad = flags & (~CLONE3_OK | CLONE3_NEVER)
            raise einval(
                f"clone3 does not accept flags {bad:#x} (clone3_args_valid); the exit "
                "signal and CLONE_DETACHED are not clone3 flags"
            )
        label = check_label("name", name)
        ns_label = check_ns_name("ns_name", ns_name)
        self._check_clone_flags(flags)
        k.faults.inject(FaultSite.TASK)
        cred = self._copy_creds(flags)
        try:
            files = self._copy_files(flags)
            try:
                nsproxy = self._copy_namespaces(flags, cred, ns_label)
            except BpfnsError:
                put_files(files)
                raise
        except BpfnsError:
            put_user_ns(cred.user_ns, "cred")
            raise
        tgid = self.tgid if flags & CLONE_THREAD else 0
        return k._new_task(cred, nsproxy, files, tgid, label)

    def _copy_creds(self, flags: int) -> Cred:
        """``copy_creds``: the child's cred, holding a reference on its user namespace.

        With CLONE_NEWUSER it is a new cred owning a new user namespace
        (``create_user_ns``); otherwise ``self.cred``, with one more reference.
        """
        cred = self.cred
        if not flags & CLONE_NEWUSER:
            get_user_ns(cred.user_ns, "cred")
            return cred
        return Cred(cred.euid, create_user_ns(cred.user_ns, cred.euid, "cred"), ALL_CAPS)

    def _copy_files(self, flags: int) -> FdTable:
        """``copy_files``: share the table (CLONE_FILES) or ``dup_fd`` a copy."""
        assert self.files is not None
        return self.files.share() if flags & CLONE_FILES else self._dup_fd()

    def _dup_fd(self) -> FdTable:
        """``dup_fd``: a copy of this task's file table (an allocation that can fail)."""
        assert self.files is not None
        self.kernel.faults.inject(FaultSite.FILES)
        return self.files.copy()

    def _check_clone_flags(self, flags: int) -> None:
        """The flag checks of ``copy_process`` (kernel/fork.c) that matter here."""
        if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
            raise einval("CLONE_THREAD needs CLONE_SIGHAND (and CLONE_VM)")
        if flags & CLONE_SIGHAND and not flags & CLONE_VM:
            raise einval("CLONE_SIGHAND needs CLONE_VM")
        if flags & CLONE_THREAD and flags & (CLONE_NEWUSER | CLONE_NEWPID):
            raise einval("a thread cannot get a new user or pid namespace")
        self._check_d19(flags)

    def _check_d19(self, flags: int) -> None:
        both = CLONE_NEWUSER | CLONE_NEWBPF
        if flags & both == both and not self.kernel.behavior.d19_newuser_newbpf_allowed:
            raise einval(
                "CLONE_NEWUSER|CLONE_NEWBPF: a BPF namespace owned by a new user namespace "
                "grants nothing (D19); create the BPF namespace from the owning user "
                "namespace with CAP_SYS_ADMIN instead"
            )

    def _copy_namespaces(self, flags: int, cred: Cred, ns_name: str | None) -> Nsproxy:
        """``copy_namespaces``: share the nsproxy, or build one (``create_new_namespaces``)."""
        assert self.nsproxy is not None
        old = self.nsproxy
        k = self.kernel
        if k.behavior.d14_clone_flag_above_bit_31:  # copy_namespaces(unsigned long flags)
            flags = k.ulong(flags)
        if not flags & _CLONE_NEW_NSPROXY:
            old.count += 1
            return old
        if not cap_capable(cred, cred.user_ns, Cap.CAP_SYS_ADMIN):
            raise BpfnsError(
                errno.EPERM,
                "creating a namespace needs CAP_SYS_ADMIN in the owning user namespace; "
                "keep the capability or add CLONE_NEWUSER",
            )
        self.kernel.faults.inject(FaultSite.NSPROXY)
        return Nsproxy(self._copy_bpfns(flags, cred, old.bpf_ns, ns_name))

    def _copy_bpfns(
        self, flags: int, cred: Cred, old: Namespace, ns_name: str | None
    ) -> Namespace:
        if not flags & CLONE_NEWBPF:
            get_bpfns(old, "nsproxy")
            return old
        return create_bpf_namespace(
            self.kernel, cred.user_ns, old, cred.euid, ns_name, holder="nsproxy"
        )

    @syscall("unshare")
    def unshare(self, flags: int, *, ns_name: str | None = None) -> None:
        """``unshare``: the caller itself moves into new namespaces at once.

        With ``CLONE_NEWBPF`` the new BPF namespace is a child of the current one and the
        caller is in it when the call returns (semantics §2.2); objects it created before
        keep their ids, which it now sees as 0. ``CLONE_NEWUSER`` first gives the caller
        a new user namespace it owns (the process must be single-threaded).
        ``CLONE_FILES`` gives the caller its own copy of a shared file table.
        ``ns_name`` labels a new BPF namespace, as for :meth:`clone`.

        ``ksys_unshare`` order: the flag checks, ``unshare_fd``, ``unshare_userns``,
        ``unshare_nsproxy_namespaces``, then the switch; a failure puts what was built.

        Raises:
            BpfnsError: EINVAL for flags ``unshare`` does not accept (on a 32-bit
                kernel with D14, CLONE_NEWBPF itself: the flag does not fit), for
                CLONE_NEWUSER in a multi-threaded process, and (D19 fixed) for
                CLONE_NEWUSER|CLONE_NEWBPF; EPERM without CAP_SYS_ADMIN in the (possibly
                new) user namespace; ENOMEM when an injected allocation fails; the
                errors of ``copy_bpfns``. Nothing changes on failure.
            TypeError, ValueError: for bad flags; TypeError for an ``ns_name`` that is
                neither a str nor None.
            ValueError: with CLONE_FILES while this task is inside BPF_LINK_CREATE (a
                :class:`bpfns.LinkPrimer` of it is pending); settle or clean it up first.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> t = Kernel().init_task.clone()
        >>> t.unshare(CLONE_NEWBPF); t.bpf_ns.level
        1
        """
        flags = check_int("flags", flags, 0, 2**64 - 1, "unsigned long")
        ns_label = check_ns_name("ns_name", ns_name)
        k = self.kernel
        if k.behavior.d14_clone_flag_above_bit_31 and k.ulong(flags) != flags:
            raise einval(
                f"unshare({flags:#x}): a 32-bit kernel's unsigned long cannot hold flag "
                f"bits above bit 31 ({flags & ~0xFFFFFFFF:#x}: CLONE_NEWBPF is 0x400000000, "
                "D14); unshare cannot create a BPF namespace there"
            )
        if flags & ~_UNSHARE_OK:
            raise einval(f"unshare does not accept flags {flags & ~_UNSHARE_OK:#x}")
        if flags & CLONE_FILES:
            self._require_no_primer("unshare(CLONE_FILES)")
        if flags & CLONE_NEWUSER and len(self.thread_group()) > 1:
            raise einval("unshare(CLONE_NEWUSER) needs a single-threaded process")
        self._check_d19(flags)
        files, cred, nsproxy = self._unshare_build(flags, ns_label)
        if nsproxy is self.nsproxy:
            nsproxy.count -= 1  # nothing new: keep the old one
        else:
            self._switch_nsproxy(nsproxy)
        if cred is not self.cred:
            put_user_ns(self.cred.user_ns, "cred")
            self.cred = cred
        if files is not None:
            old_files, self.files = self.files, files
            assert old_files is not None
            put_files(old_files)

    def _unshare_build(
        self, flags: int, ns_name: str | None
    ) -> tuple[FdTable | None, Cred, Nsproxy]:
        """``unshare_fd``, ``unshare_userns``, ``unshare_nsproxy_namespaces``; undone on error.

        Returns the new file table (None if the current one stays), the cred (new with
        CLONE_NEWUSER, else ``self.cred``) and the nsproxy (``self.nsproxy`` with one
        more reference when nothing new is needed).
        """
        assert self.files is not None
        shared = flags & CLONE_FILES and self.files.count > 1  # only then is it copied
        files = self._dup_fd() if shared else None
        try:
            cred = self._copy_creds(CLONE_NEWUSER) if flags & CLONE_NEWUSER else self.cred
            try:
                return files, cred, self._copy_namespaces(flags, cred, ns_name)
            except BpfnsError:
                if cred is not self.cred:
                    put_user_ns(cred.user_ns, "cred")
                raise
        except BpfnsError:
            if files is not None:
                put_files(files)
            raise

    def _switch_nsproxy(self, new: Nsproxy | None) -> None:
        """``switch_task_namespaces``: install ``new`` under task_lock, put the old one.

        ``free_nsproxy`` frees the nsproxy at once (no RCU grace period), then puts its
        namespaces.
        """
        smp = self.kernel.smp
        if smp is None:  # a sequential kernel: no lock name to build
            old, self.nsproxy = self.nsproxy, new
        else:
            lock = task_lock_name(self)
            smp.spin_lock(lock, f"task_lock({self.pid}): switch_task_namespaces")
            old, self.nsproxy = self.nsproxy, new
            smp.spin_unlock(lock, f"task_unlock({self.pid})")
            smp.preempt("put_nsproxy")
        assert old is not None, "a task switches namespaces at most once after exit"
        old.count -= 1
        if not old.count:  # free_nsproxy
            old.freed = True
            if smp is not None:
                smp.note(f"free_nsproxy of task {self.pid} (kfree, no grace period)")
            put_bpfns(old.bpf_ns, "nsproxy")

    @syscall("exit")
    def exit(self) -> None:
        """``do_exit``: drop the namespaces, then the files, then the credentials.

        ``exit_task_namespaces`` sets ``nsproxy = NULL`` before the final ``fput`` of
        the task's files runs as task work, so a BPF object released then is released
        by a task without namespaces (D8).

        In RFC behaviour that release can oops (D8): the sanitizer raises, and the task
        dies there, as the kernel's recursive-fault path leaves it ("Fixing recursive
        fault but reboot is needed!" in :attr:`bpfns.Kernel.dmesg`): it is gone from
        :meth:`bpfns.Kernel.tasks`, and whatever it had not released yet stays held
        (:meth:`bpfns.Kernel.leftovers` lists it).

        Raises:
            ValueError: if the task has already exited, or is inside BPF_LINK_CREATE (a
                :class:`bpfns.LinkPrimer` of it is pending: a task exits only between
                its syscalls; settle or clean up the primer first).

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> t = Kernel().init_task.clone(CLONE_NEWBPF)
        >>> ns = t.bpf_ns
        >>> t.exit(); ns.state
        NsState.DESTROYED
        """
        self._require_no_primer("exit")
        self._exiting = True
        self._do_exit()

    def _do_exit(self) -> None:
        """The body of ``do_exit`` (also what ``make_task_dead`` runs after an oops)."""
        k = self.kernel
        self._switch_nsproxy(None)
        files, self.files = self.files, None
        assert files is not None
        put_files(files)
        put_user_ns(self.cred.user_ns, "cred")
        self.alive = False
        k._release_task(self)

    def _require_no_primer(self, what: str) -> None:
        for primer in self.kernel.primers:
            if primer.task is self:
                raise ValueError(
                    f"{what}: {self!r} is inside BPF_LINK_CREATE ({primer!r} is pending); "
                    "call settle() or cleanup() on it first"
                )

    # -- procfs and nsfs ------------------------------------------------------------

    @syscall("pidfd_open")
    def pidfd_open(self, pid: int) -> int:
        """``pidfd_open(pid)``: an fd referring to a process (for ``setns``).

        Raises:
            BpfnsError: ESRCH if no live task has ``pid``; EMFILE; ENOMEM when an
                injected allocation fails.
            TypeError, ValueError: if ``pid`` is not a pid.

        >>> from bpfns import Kernel
        >>> k = Kernel()
        >>> child = k.init_task.clone()
        >>> k.init_task.pidfd_open(child.pid)
        0
        """
        k = self.kernel
        target = k.find_task(pid)
        k.faults.inject(FaultSite.FILE)
        assert self.files is not None
        return self.files.install(File(FileKind.PIDFD, target))

    # -- fs/file.c, net/core/scm.c, fs/proc/fd.c: file operations ------------------------

    @syscall("close")
    def close(self, fd: int) -> None:
        """``close(fd)``: the last reference to a BPF object frees it and its ids.

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.
            TypeError, ValueError: if ``fd`` is not a C int.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.close(t.map_create())
        >>> t.map_get_next_id(0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        bpfns.BpfnsError: [ENOENT: ...
        """
        if not (fd.__class__ is int and INT_MIN <= fd <= INT_MAX):  # else: checked
            fd = check_int("fd", fd, INT_MIN, INT_MAX, "int")
        assert self.files is not None
        fput(self.files.detach(fd))

    @syscall("dup2")
    def dup2(self, oldfd: int, newfd: int) -> int:
        """``dup2(oldfd, newfd)`` (fs/file.c ``do_dup2``): ``newfd`` refers to ``oldfd``'s file.

        Whatever ``newfd`` held is closed first (its last reference frees the object);
        ``dup2(fd, fd)`` only checks ``fd``. :func:`bpfns.run` mirrors a real process's
        fds with it.

        Raises:
            BpfnsError: EBADF if ``oldfd`` is not open or ``newfd`` is negative or not
                below ``RLIMIT_NOFILE``; EBUSY if ``newfd`` is reserved by a call in
                flight (``get_unused_fd_flags``).
            TypeError, ValueError: if an fd is not a C int.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> fd = t.map_create()
        >>> t.dup2(fd, 7); t.close(fd)
        7
        >>> t.map_get_next_id(0)  # fd 7 still holds the map
        1
        """
        check_int("oldfd", oldfd, INT_MIN, INT_MAX, "int")
        check_int("newfd", newfd, INT_MIN, INT_MAX, "int")
        assert self.files is not None
        file = self.files.get(oldfd)
        if oldfd == newfd:
            return newfd
        old = self.files.replace(newfd, file)
        file.count += 1
        if old is not None:
            fput(old)
        return newfd

    @syscall("sendmsg(SCM_RIGHTS)")
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
        check_int("fd", fd, INT_MIN, INT_MAX, "int")
        receiver = self.kernel._own_task(to, "to")
        file = self._fdget(fd)
        assert receiver.files is not None
        new_fd = receiver.files.install(file)
        file.count += 1
        return new_fd

    @syscall("read(/proc/pid/fdinfo)")
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
        check_int("fd", fd, INT_MIN, INT_MAX, "int")
        file = self.kernel._own_task(owner, "owner")._fdget(fd)
        rows: list[tuple[str, object]] = [("pos", 0), ("flags", "02000002")]
        if file.kind in BPF_FILE_KINDS:
            rows += object_fdinfo(file.obj)
        return "".join(f"{key}:\t{value}\n" for key, value in rows)

    # -- sysctl ---------------------------------------------------------------------

    @traced
    def read_sysctl(self, name: str) -> int:
        """Read ``/proc/sys/user/max_*_namespaces`` of this task's user namespace.

        Raises:
            TypeError, ValueError: for a name that is not a known sysctl, or an exited
                task.

        >>> from bpfns import Kernel
        >>> Kernel(ucount_max=7).init_task.read_sysctl("user.max_bpf_namespaces")
        7
        """
        kind = self._sysctl(name)
        self._require_alive()
        return self.cred.user_ns.get_max(kind)

    @traced
    def write_sysctl(self, name: str, value: int) -> None:
        """Write ``/proc/sys/user/max_*_namespaces`` of this task's user namespace.

        Raises:
            BpfnsError: EPERM without CAP_SYS_RESOURCE in that user namespace; EINVAL
                outside ``[0, INT_MAX]``.
            TypeError, ValueError: for an unknown name, a value that is not an int, or
                an exited task.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.write_sysctl("user.max_bpf_namespaces", 3); t.read_sysctl("user.max_bpf_namespaces")
        3
        """
        kind = self._sysctl(name)
        number = check_int("value", value, -(2**63), 2**63 - 1, "long")
        self._require_alive()
        if not cap_capable(self.cred, self.cred.user_ns, Cap.CAP_SYS_RESOURCE):
            raise BpfnsError(
                errno.EPERM, f"{name} is read-only without CAP_SYS_RESOURCE in its user namespace"
            )
        self.cred.user_ns.set_max(kind, number)

    @staticmethod
    def _sysctl(name: str) -> UcountType:
        found = _SYSCTLS.get(check_str("name", name))
        if found is None:
            raise ValueError(f"unknown sysctl name={name!r}; known: {sorted(_SYSCTLS)}")
        return found


def _cap(cap: object) -> Cap:
    """``cap`` if it is a :class:`Cap` member; TypeError otherwise."""
    if cap.__class__ is Cap:
        return cap
    raise TypeError(f"cap must be a bpfns.Cap member (e.g. Cap.CAP_BPF), not {cap!r}")


def make_task_dead(task: Task) -> None:
    """``make_task_dead``: what a raised :class:`bpfns.KernelBug` leaves of the task.

    The kernel kills the task that oopsed. If it was not exiting yet, ``do_exit`` runs
    for it (its files are closed, its namespaces and credentials put). If it oopsed
    while exiting (D8), or oopses again during that exit, this is the recursive-fault
    path: the task is dead at once and the rest of its exit never runs, so what it still
    held stays held until "reboot". A second oops is recorded in
    :attr:`bpfns.Kernel.reports`; the caller sees the first.
    """
    if not task.alive:
        return
    if not task._exiting:
        task._exiting = True
        try:
            task._do_exit()
            return
        except KernelBug:
            pass  # it oopsed again during that exit: the recursive-fault path below
    k = task.kernel  # do_exit did not finish: the task is still registered
    k.dmesg.append("Fixing recursive fault but reboot is needed!")
    task.alive = False
    k._release_task(task)
