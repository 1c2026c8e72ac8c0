"""fs/nsfs.c and fs/proc/namespaces.c: namespace files, and ``setns`` on them (kernel/nsproxy.c).

``/proc/<pid>/ns/bpf`` is a symlink ``bpf:[inum]``; opening it gives an nsfs file that
holds a reference on the namespace (``bpfns_get``/``bpfns_put``). The ioctls of an nsfs
fd ask for the namespace's type, parent and owner; the RFC's ``bpfns_operations`` has no
``get_parent`` and no ``owner`` op (D10). ``setns`` on a BPF namespace is refused
(semantics §2.2, D18).
"""

from __future__ import annotations

import errno

from ._args import INT_MAX, INT_MIN, U32_MAX, check_int, check_str
from ._bpf_namespace import CLONE_NEWBPF, Namespace, get_bpfns
from ._bpf_object import CurrentTask, SyscallTask, syscall
from ._errors import BpfnsError
from ._fault import FaultSite
from ._files import File, FileKind
from ._idr import c_int
from ._sanitizer import BugKind
from ._ucount import get_user_ns

__all__ = [
    "CLONE3_NEVER",
    "CLONE3_OK",
    "CLONE_FILES",
    "CLONE_NEWUSER",
    "CLONE_NEW_STD",
    "CLONE_SIGHAND",
    "CLONE_THREAD",
    "CLONE_VM",
    "CSIGNAL",
    "NS_GET_NSTYPE",
    "NS_GET_PARENT",
    "NS_GET_USERNS",
    "NsfsCommands",
    "bpfns_get",
    "einval",
    "task_lock_name",
]

#: ``ioctl`` requests on an nsfs fd (include/uapi/linux/nsfs.h).
NS_GET_USERNS = 0xB701
NS_GET_PARENT = 0xB702
NS_GET_NSTYPE = 0xB703

#: The clone flags (include/uapi/linux/sched.h); CLONE_NEWBPF is the RFC's.
CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000
CLONE_SYSVSEM = 0x00040000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
#: The exit-signal byte of the legacy clone() flags, and clone3's flags it must not set.
CSIGNAL = 0x000000FF
CLONE_DETACHED = 0x00400000
CLONE_CLEAR_SIGHAND = 0x100000000
CLONE_INTO_CGROUP = 0x200000000
#: ``clone3_args_valid``: every flag clone3 knows (CLONE_LEGACY_FLAGS, the two u64-only
#: flags, and the RFC's CLONE_NEWBPF).
CLONE3_OK = 0xFFFFFFFF | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP | CLONE_NEWBPF
#: The flags a clone3 caller must leave clear (the exit signal has its own field).
CLONE3_NEVER = CLONE_DETACHED | (CSIGNAL & ~CLONE_NEWTIME)
#: Every CLONE_NEW* flag the kernel knows before the RFC (``check_setns_flags``).
CLONE_NEW_STD = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWTIME
)


#: What the nsfs operations read of their task.
NsfsTask = SyscallTask


def einval(why: str) -> BpfnsError:
    """The EINVAL a flag or type check of clone, unshare or setns refuses with."""
    return BpfnsError(errno.EINVAL, why)


def task_lock_name(task: CurrentTask) -> str:
    """The name of ``task_lock(task)`` (``task->alloc_lock``) on simulated CPUs."""
    return f"task_lock({task.pid})"


def bpfns_get(target: CurrentTask) -> Namespace:
    """``bpfns_operations.get``: a reference on ``target``'s BPF namespace (holder "file").

    As posted (D11) it reads ``target->nsproxy`` under ``rcu_read_lock``; but
    ``free_nsproxy`` frees the nsproxy at once, so a concurrent exit or unshare of the
    target can free it before the load (the sanitizer reports the read of the freed
    nsproxy), or drop the namespace to zero between the load and the ``refcount_inc``
    (refcount_t's "addition on 0", see :func:`bpfns._bpf_namespace.get_bpfns`). Fixed:
    under ``task_lock(target)``, which ``switch_task_namespaces`` also takes.

    Raises:
        BpfnsError: ENOENT if the target has already dropped its namespaces (exiting),
            or (recorded D11) the reference could not be taken.
    """
    k = target.kernel
    smp = k.smp
    d11 = k.behavior.d11_nsproxy_under_rcu
    lock = task_lock_name(target) if smp is not None else ""
    if smp is not None:
        if d11:
            smp.rcu_read_lock()
        else:
            smp.spin_lock(lock, f"task_lock({target.pid})")
    nsproxy = target.nsproxy
    ns = None
    if nsproxy is not None:
        if smp is not None:
            smp.preempt(f"nsproxy->bpf_ns of task {target.pid}")
        if nsproxy.freed:
            k.sanitizer.report(
                "D11",
                BugKind.USE_AFTER_FREE,
                f"bpfns_get read nsproxy->bpf_ns of task {target.pid} after free_nsproxy freed "
                "it: rcu_read_lock does not protect an nsproxy (it is not RCU-freed)",
                "bpfns_get",
                k.step,
            )
        elif get_bpfns(nsproxy.bpf_ns, "file", race="D11"):
            ns = nsproxy.bpf_ns
    if smp is not None:
        if d11:
            smp.rcu_read_unlock()
        else:
            smp.spin_unlock(lock, f"task_unlock({target.pid})")
    if ns is None:
        raise BpfnsError(errno.ENOENT, f"task {target.pid} has no namespaces any more (exiting)")
    return ns


class NsfsCommands:
    """The nsfs operations and ``setns``, as methods of :class:`bpfns.Task`."""

    __slots__ = ()

    @syscall("open(/proc/pid/ns/bpf)")
    def open_proc_ns(self: NsfsTask, pid: int | None = None) -> int:
        """``open("/proc/<pid>/ns/bpf")``: an fd holding a reference on that namespace.

        ``pid`` defaults to this task. Closing the fd drops the reference
        (``bpfns_get``/``bpfns_put``), so the fd keeps an emptied namespace alive.

        Raises:
            BpfnsError: ENOENT if no live task has ``pid`` (there is no
                ``/proc/<pid>`` directory); EMFILE if the file table is
                full; ENOMEM when an injected allocation fails; ENOENT if the task is
                exiting on another simulated CPU (see :func:`bpfns._nsfs.bpfns_get`).
            TypeError, ValueError: if ``pid`` is not None or a pid.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> t = k.init_task.clone(CLONE_NEWBPF)
        >>> fd = k.init_task.open_proc_ns(t.pid)
        >>> t.exit(); t.nsproxy is None, k.namespaces()[1].alive
        (True, True)
        """
        k = self.kernel
        try:
            target = self if pid is None else self.find_vpid(pid)
        except BpfnsError:  # proc_pid_lookup finds no such directory
            raise BpfnsError(
                errno.ENOENT, f"/proc/{pid}/ns/bpf: no such file (no live task has pid {pid})"
            ) from None
        files = self.files
        assert files is not None
        fd = files.reserve()  # get_unused_fd_flags comes before the path walk
        try:
            k.faults.inject(FaultSite.FILE)
            ns = bpfns_get(target)
        except BpfnsError:
            files.put_unused(fd)
            raise
        files.fd_install(fd, File(FileKind.BPF_NS, ns))
        return fd

    @syscall("setns")
    def setns(self: NsfsTask, fd: int, nstype: int = 0) -> None:
        """``setns``: join the namespace behind ``fd``; for a BPF namespace, refused.

        ``nstype`` is a C ``int``: CLONE_NEWBPF does not fit and is truncated to 0, as
        the C compiler does. On an nsfs fd of a BPF namespace, a non-zero type is EINVAL
        (a type mismatch) and 0 reaches ``bpfns_install``, which logs
        ``setns not supported for bpf namespace`` to :attr:`bpfns.Kernel.dmesg` and
        returns EOPNOTSUPP (semantics §2.2, D18). On a pidfd, ``check_setns_flags`` refuses
        CLONE_NEWBPF (and 0, and unknown bits) with EINVAL.

        Raises:
            BpfnsError: EOPNOTSUPP, EINVAL or EBADF as above (EOPNOTSUPP leaves its
                dmesg line, as the kernel does).
            ValueError: for a pidfd with flags of namespaces bpfns does not simulate.
            TypeError, ValueError: if ``fd`` or ``nstype`` is not an int in range.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> t.setns(t.open_proc_ns())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        bpfns.BpfnsError: [EOPNOTSUPP: ...
        """
        k = self.kernel
        check_int("fd", fd, INT_MIN, INT_MAX, "int")
        nstype = c_int(check_int("nstype", nstype, INT_MIN, 2**64 - 1, "int"))
        file = self._fdget(fd)
        if file.kind is FileKind.PIDFD:
            if not nstype or nstype & ~CLONE_NEW_STD:
                raise einval(f"setns(pidfd, {nstype:#x}): invalid namespace flags")
            raise ValueError(
                "bpfns simulates BPF and user namespaces only; setns through a pidfd "
                "cannot join a BPF namespace (CLONE_NEWBPF is rejected)"
            )
        if file.kind is not FileKind.BPF_NS:
            raise einval(f"fd {fd} is not a namespace file")
        if nstype:
            raise einval(f"nstype {nstype:#x} does not match a bpf namespace")
        k.dmesg.append("setns not supported for bpf namespace")
        raise BpfnsError(
            errno.EOPNOTSUPP,
            "setns is not supported for bpf namespaces (semantics §2.2); create the task "
            "in the namespace with clone3(CLONE_NEWBPF) instead",
        )

    def proc_ns_link(self: NsfsTask, kind: str = "bpf") -> str:
        """``readlink /proc/<pid>/ns/bpf``: ``bpf:[<inum>]``.

        Raises:
            TypeError: if ``kind`` is not a str.
            ValueError: for another namespace kind (only ``"bpf"`` is simulated), or
                an exited task.

        >>> from bpfns import Kernel
        >>> Kernel().init_task.proc_ns_link("bpf")
        'bpf:[4026531833]'
        """
        if check_str("kind", kind) != "bpf":
            raise ValueError(f"bpfns simulates /proc/<pid>/ns/bpf only, not kind={kind!r}")
        return f"bpf:[{self.bpf_ns.inum}]"

    @syscall("ioctl(nsfs)")
    def ns_ioctl(self: NsfsTask, fd: int, request: int) -> int:
        """``ioctl`` on an nsfs fd of a BPF namespace.

        ``NS_GET_NSTYPE`` returns CLONE_NEWBPF; ``NS_GET_PARENT`` is EINVAL (the RFC
        gives no ``get_parent`` op); ``NS_GET_USERNS`` runs ``open_related_ns``: it
        reserves an fd, then calls the missing ``owner`` op: as posted that is a
        NULL-pointer call (D10), reported by the sanitizer; with D10 fixed it returns a
        new fd for the owner user namespace if that is the caller's user namespace or a
        descendant of it (``ns_get_owner`` walks up from the owner looking for the
        caller's); else EPERM, and the fd is given back. On a 32-bit kernel
        (``Kernel(word_size=32)``) with D14, ``NS_GET_NSTYPE``'s ``long`` holds
        CLONE_NEWBPF truncated: 0.

        Raises:
            BpfnsError: EBADF; ENOTTY for an unknown request or a non-nsfs fd; EINVAL;
                EMFILE (checked before the owner); EPERM as above.
            TypeError, ValueError: if ``fd`` or ``request`` is not an int in range.

        >>> from bpfns import Kernel, NS_GET_NSTYPE
        >>> t = Kernel().init_task
        >>> hex(t.ns_ioctl(t.open_proc_ns(), NS_GET_NSTYPE))
        '0x400000000'
        """
        k = self.kernel
        check_int("fd", fd, INT_MIN, INT_MAX, "int")
        request = check_int("request", request, 0, U32_MAX, "unsigned int")
        file = self._fdget(fd)
        if file.kind is not FileKind.BPF_NS:
            raise BpfnsError(errno.ENOTTY, f"fd {fd} is not an nsfs file")
        ns: Namespace = file.obj
        if request == NS_GET_NSTYPE:  # the ioctl returns a long (D14: 0 on 32-bit)
            if k.behavior.d14_clone_flag_above_bit_31:
                return k.ulong(CLONE_NEWBPF)
            return CLONE_NEWBPF
        if request == NS_GET_PARENT:
            raise einval("bpf namespaces have no get_parent operation")
        if request != NS_GET_USERNS:
            raise BpfnsError(errno.ENOTTY, f"unknown nsfs ioctl {request:#x}")
        assert self.files is not None
        new_fd = self.files.reserve()  # open_related_ns: the fd first
        if k.behavior.d10_missing_owner_op:
            k.sanitizer.report(
                "D10",
                BugKind.NULL_DEREF,
                "ns_get_owner called bpfns_operations.owner, which is NULL",
                "ns_ioctl",
                k.step,
            )
            self.files.put_unused(new_fd)
            return 0  # record mode: the oops killed the call; nothing was returned
        try:
            if not self.cred.user_ns.contains(ns.user_ns):  # ns_get_owner's walk up
                raise BpfnsError(
                    errno.EPERM,
                    "NS_GET_USERNS: the owner user namespace is not yours nor below yours "
                    "(ns_get_owner walks up from the owner and never met your user namespace)",
                )
            k.faults.inject(FaultSite.FILE)  # path_from_stashed: the owner's nsfs file
        except BpfnsError:
            self.files.put_unused(new_fd)
            raise
        get_user_ns(ns.user_ns, "file")
        self.files.fd_install(new_fd, File(FileKind.USER_NS, ns.user_ns))
        return new_fd
