"""kernel/seccomp.c from user space: a filter that notifies, and the listener's ioctls.

The filter hands chosen syscalls to a supervisor (``SECCOMP_RET_USER_NOTIF``).

The real machine's kernel runs this; bpfns only builds the filter and speaks the
listener's protocol (include/uapi/linux/seccomp.h, x86_64):

* the target sets ``no_new_privs`` and installs the filter with
  ``SECCOMP_FILTER_FLAG_NEW_LISTENER``, which returns the listener fd;
* ``SECCOMP_IOCTL_NOTIF_RECV`` gives the supervisor one stopped syscall
  (``struct seccomp_notif``), ``SECCOMP_IOCTL_NOTIF_SEND`` its result or
  ``SECCOMP_USER_NOTIF_FLAG_CONTINUE`` (run it natively), ``SECCOMP_IOCTL_NOTIF_ADDFD``
  with ``SECCOMP_ADDFD_FLAG_SEND`` installs an fd in the target and returns it as the
  result, atomically; ``SECCOMP_IOCTL_NOTIF_ID_VALID`` says whether the target is still
  in that syscall (so that what was read from its memory belongs to it);
* when the listener closes (the supervisor exits or dies), every pending and later
  notified syscall fails with ENOSYS: the target never hangs.

Only this module calls ``ioctl`` and ``seccomp``: :mod:`bpfns._supervisor` uses a
:class:`Listener`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import platform
import struct
import sys
from pathlib import Path

import attrs

__all__ = ["Listener", "Notification", "filter_program", "install_filter", "unavailable"]

#: x86_64 syscall numbers the filter hands to the supervisor (arch/x86/entry/syscalls).
SYSCALLS = {"bpf": 321, "openat": 257, "open": 2, "readlink": 89, "readlinkat": 267, "statfs": 137}
_NR_SECCOMP = 317
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
_PR_SET_NO_NEW_PRIVS = 38
_RET_ALLOW = 0x7FFF0000
_RET_USER_NOTIF = 0x7FC00000
_RET_ERRNO = 0x00050000

_NOTIF = struct.Struct("<QII iI Q 6Q")  # seccomp_notif: id, pid, flags, seccomp_data
_RESP = struct.Struct("<QqiI")  # seccomp_notif_resp: id, val, error, flags
_ADDFD = struct.Struct("<QIIII")  # seccomp_notif_addfd: id, flags, srcfd, newfd, newfd_flags
_IOCTL_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
_IOCTL_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
_IOCTL_ID_VALID = 0x40082102  # _IOW('!', 2, __u64)
_IOCTL_ADDFD = 0x40182103  # _IOW('!', 3, struct seccomp_notif_addfd)
_FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE
_ADDFD_FLAG_SEND = 2  # SECCOMP_ADDFD_FLAG_SEND

_ACTIONS = Path("/proc/sys/kernel/seccomp/actions_avail")


def unavailable(actions: Path = _ACTIONS) -> str | None:
    """Why this machine cannot run a target under bpfns, or None if it can.

    Needs Linux on x86_64 and a kernel whose seccomp offers ``user_notif`` (5.14+ for
    ``SECCOMP_ADDFD_FLAG_SEND``); ``actions`` is where the kernel lists its actions.

    >>> unavailable(Path("/nonexistent")) is not None
    True
    """
    if sys.platform != "linux":  # pragma: no cover - the suite runs on Linux
        return f"seccomp user notification is Linux-only (this is {sys.platform})"
    if platform.machine() != "x86_64":  # pragma: no cover - the suite runs on x86_64
        return f"bpfns run knows the x86_64 syscall numbers only (this is {platform.machine()})"
    try:
        avail = actions.read_text().split()
    except OSError as err:
        return f"cannot read {actions} ({err.strerror}): no seccomp in this kernel"
    if "user_notif" not in avail:
        return f"this kernel's seccomp has no user_notif action ({actions}: {' '.join(avail)})"
    return None


def filter_program() -> bytes:
    """The classic-BPF filter: notify :data:`SYSCALLS`, allow the rest.

    A syscall of another ABI (32-bit ``int 0x80``, x32) fails with ENOSYS, so that the
    real ``bpf()`` cannot be reached around the supervisor.

    >>> len(filter_program()) // 8  # sock_filter instructions
    14
    """
    ld_arch = (0x20, 0, 0, 4)  # BPF_LD|BPF_W|BPF_ABS seccomp_data.arch
    ld_nr = (0x20, 0, 0, 0)  # seccomp_data.nr
    nrs = list(SYSCALLS.values())
    n = len(nrs)
    prog: list[tuple[int, int, int, int]] = [
        ld_arch,
        (0x15, 1, 0, _AUDIT_ARCH_X86_64),  # JEQ: skip the ENOSYS jump
        (0x05, 0, 0, n + 4),  # BPF_JA to RET ERRNO
        ld_nr,
        (0x35, n + 2, 0, _X32_SYSCALL_BIT),  # JGE: x32 -> RET ERRNO
    ]
    for i, nr in enumerate(nrs):
        prog.append((0x15, n - i, 0, nr))  # JEQ nr -> RET USER_NOTIF
    prog += [
        (0x06, 0, 0, _RET_ALLOW),
        (0x06, 0, 0, _RET_USER_NOTIF),
        (0x06, 0, 0, _RET_ERRNO | errno.ENOSYS),
    ]
    return b"".join(struct.pack("<HBBI", *insn) for insn in prog)


def install_filter() -> int:  # pragma: no cover - runs in the target, before its exec
    """In the target: set ``no_new_privs`` and install :func:`filter_program`.

    Returns the listener fd (``SECCOMP_FILTER_FLAG_NEW_LISTENER``).

    Raises:
        OSError: with the kernel's errno if ``prctl`` or ``seccomp`` refuses.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
    code = filter_program()
    insns = ctypes.create_string_buffer(code, len(code))
    fprog = ctypes.create_string_buffer(
        struct.pack("<HxxxxxxQ", len(code) // 8, ctypes.addressof(insns))
    )
    libc.syscall.restype = ctypes.c_long
    fd = int(
        libc.syscall(
            _NR_SECCOMP,
            _SECCOMP_SET_MODE_FILTER,
            _SECCOMP_FILTER_FLAG_NEW_LISTENER,
            fprog,
        )
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(err)}")
    return fd


@attrs.frozen
class Notification:
    """``struct seccomp_notif``: one syscall a target is stopped in."""

    id: int
    pid: int
    nr: int
    args: tuple[int, ...]

    @property
    def syscall(self) -> str:
        """The syscall's name (one of :data:`SYSCALLS`)."""
        return next(name for name, nr in SYSCALLS.items() if nr == self.nr)


@attrs.define
class Listener:
    """The supervisor's end of a seccomp filter: one fd, and the four ioctls."""

    fd: int

    def recv(self) -> Notification | None:
        """``SECCOMP_IOCTL_NOTIF_RECV``: the next stopped syscall.

        None if the target left it before it could be received (ENOENT), or a signal
        interrupted the wait.
        """
        buf = bytearray(_NOTIF.size)
        try:
            fcntl.ioctl(self.fd, _IOCTL_RECV, buf)
        except (InterruptedError, FileNotFoundError):  # pragma: no cover - a race
            return None
        id_, pid, _flags, nr, _arch, _ip, *args = _NOTIF.unpack(buf)
        return Notification(id_, pid, nr, tuple(args))

    def id_valid(self, id_: int) -> bool:
        """``SECCOMP_IOCTL_NOTIF_ID_VALID``: is the target still in syscall ``id_``?"""
        try:
            fcntl.ioctl(self.fd, _IOCTL_ID_VALID, struct.pack("<Q", id_))
        except OSError:
            return False
        return True

    def respond(self, id_: int, value: int = 0, error: int = 0) -> None:
        """``SECCOMP_IOCTL_NOTIF_SEND``: the syscall returns ``value``, or ``-error``.

        A target that has gone (ENOENT) is no error: nobody waits for the answer.
        """
        self._send(_RESP.pack(id_, value if not error else 0, -error, 0))

    def continue_(self, id_: int) -> None:
        """``SECCOMP_USER_NOTIF_FLAG_CONTINUE``: run the syscall natively."""
        self._send(_RESP.pack(id_, 0, 0, _FLAG_CONTINUE))

    def _send(self, resp: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):  # the target has gone
            fcntl.ioctl(self.fd, _IOCTL_SEND, bytearray(resp))

    def add_fd(self, id_: int, srcfd: int) -> int:
        """``SECCOMP_IOCTL_NOTIF_ADDFD`` with ``SECCOMP_ADDFD_FLAG_SEND``.

        Installs a copy of the supervisor's ``srcfd`` in the target (lowest free fd)
        and makes it the syscall's result, atomically. Returns the target's fd.

        Raises:
            OSError: EMFILE if the target's table is full; ENOENT if it has gone.
        """
        return int(
            fcntl.ioctl(
                self.fd, _IOCTL_ADDFD, bytearray(_ADDFD.pack(id_, _ADDFD_FLAG_SEND, srcfd, 0, 0))
            )
        )

    def close(self) -> None:
        """Close the listener: the target's notified syscalls fail with ENOSYS from now.

        Closing twice is harmless.
        """
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
