"""kernel/bpf/syscall.c ``__sys_bpf`` for a real program, over seccomp user notification.

A real program's ``bpf()`` calls are answered from a simulated task.

A :class:`Supervisor` receives every ``bpf()``, ``open``/``openat``, ``readlink``/
``readlinkat`` and ``statfs`` a target makes (:mod:`bpfns._seccomp`) and either answers
it from the simulated kernel or lets it run natively:

* ``bpf()``: the kernel's size rules and ``union bpf_attr`` layout
  (:mod:`bpfns._bpf_attr`), then the :class:`bpfns.Task` method of the command; a
  command bpfns does not answer gets EINVAL, as an unknown one does.
* fds: each simulated BPF file is a *placeholder* in the target, a sealed memfd
  installed with ``SECCOMP_IOCTL_NOTIF_ADDFD``, at the same number the simulated task
  has it. Before answering, the supervisor compares every tracked process's real fds
  with its simulated table (:meth:`Supervisor.sync`): a placeholder ``dup``-ed, passed
  over a UNIX socket or inherited by ``fork`` is installed there too (``dup2``), one
  that was closed is closed (the last one frees the object), a process that has gone
  exits.
* ``/proc/<pid>/fdinfo/<fd>`` of a placeholder opens the simulated fdinfo text;
  ``readlink`` of ``/proc/<pid>/fd/<fd>`` gives ``anon_inode:bpf-map`` and the like;
  ``statfs`` of ``/sys/fs/bpf`` (and what is pinned there) says bpffs. Every other path
  runs natively.

The target is untrusted: its memory is read through ``/proc/<tid>/mem`` in bounded
pieces (EFAULT for what cannot be read), and nothing read is acted on before
``SECCOMP_IOCTL_NOTIF_ID_VALID`` says the syscall is still the target's.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeAlias

import attrs

from ._bpf_attr import (
    ATTR_SIZE,
    INFO_LEN_OFFSET,
    INFO_SIZES,
    MAX_INSNS,
    NEXT_ID_OFFSET,
    SUPPORTED,
    BpfCmd,
    attr_fields,
    c_string,
    check_attr,
    insn_map_fds,
    pack_info,
    tail_zero,
)
from ._bpf_object import BPF_LINK_TYPE_PERF_EVENT, BPF_LINK_TYPE_RAW_TRACEPOINT
from ._bpffs import BPFFS_ROOT
from ._errors import BpfnsError, KernelBug
from ._files import File, FileKind
from ._seccomp import Listener, Notification
from ._task import Task

__all__ = ["Placeholders", "Supervisor"]

PATH_MAX = 4096
_PAGE = 4096
#: ``BPF_FS_MAGIC`` (include/uapi/linux/magic.h), for ``statfs``.
BPF_FS_MAGIC = 0xCAFE4A11
_STATFS = struct.Struct("<7q2i3q4q")  # struct statfs, x86_64: 120 bytes
#: ``BPF_PERF_EVENT``: the one LINK_CREATE attach type bpfns answers.
BPF_PERF_EVENT = 41
_O_ACCMODE, _O_CLOEXEC = 0o3, 0o2000000
_MAP_IN_MAP = (12, 13)  # BPF_MAP_TYPE_ARRAY_OF_MAPS, HASH_OF_MAPS
#: The anon-inode names ``readlink`` shows for each kind (fs/anon_inodes.c callers).
ANON_NAMES = {
    FileKind.BPF_MAP: "bpf-map",
    FileKind.BPF_PROG: "bpf-prog",
    FileKind.BPF_LINK: "bpf_link",
    FileKind.BTF: "btf",
}
_PROC_FD = re.compile(r"/proc/(self|thread-self|\d+)/(fd|fdinfo)/(\d+)")


@attrs.define
class Memory:
    """``/proc/<tid>/mem`` of a target stopped in a syscall: ``copy_{from,to}_user``."""

    fd: int
    pid: int

    def read(self, address: int, size: int) -> bytes:
        """``copy_from_user``: exactly ``size`` bytes at ``address``.

        Raises:
            BpfnsError: EFAULT if any of them cannot be read.
        """
        if size == 0:
            return b""
        try:
            data = os.pread(self.fd, size, address)
        except (OSError, OverflowError) as err:
            raise BpfnsError(errno.EFAULT, f"cannot read {size} bytes at {address:#x}") from err
        if len(data) != size:
            raise BpfnsError(errno.EFAULT, f"only {len(data)} of {size} bytes at {address:#x}")
        return data

    def write(self, address: int, data: bytes) -> None:
        """``copy_to_user``: only into memory the target may write itself.

        ``/proc/<pid>/mem`` writes read-only pages too (``FOLL_FORCE``), so the
        target's mappings (``/proc/<pid>/maps``) are checked first.

        Raises:
            BpfnsError: EFAULT if the bytes cannot all be written.
        """
        if not data:
            return
        if not self._writable(address, len(data)):
            raise BpfnsError(errno.EFAULT, f"{len(data)} bytes at {address:#x} are not writable")
        try:
            written = os.pwrite(self.fd, data, address)
        except (OSError, OverflowError) as err:  # pragma: no cover - unmapped since the check
            raise BpfnsError(
                errno.EFAULT, f"cannot write {len(data)} bytes at {address:#x}"
            ) from err
        if written != len(data):  # pragma: no cover - as above
            raise BpfnsError(errno.EFAULT, f"only {written} of {len(data)} bytes at {address:#x}")

    def _writable(self, address: int, size: int) -> bool:
        """Whether ``[address, address + size)`` lies in writable mappings of the target."""
        try:
            with open(f"/proc/{self.pid}/maps", encoding="ascii", errors="replace") as maps:
                ranges = [line.split(None, 2)[:2] for line in maps]
        except OSError:  # pragma: no cover - the target died in its syscall
            return False
        end = address + size
        for span, perms in ranges:
            start, stop = (int(x, 16) for x in span.split("-"))
            if start <= address < stop:
                if "w" not in perms:
                    return False
                address = stop
                if address >= end:
                    return True
        return False

    def string(self, address: int, limit: int = PATH_MAX) -> str:
        """``strncpy_from_user``: the NUL-terminated string at ``address``.

        Read a page at a time, so that a string that ends before an unmapped page is
        read.

        Raises:
            BpfnsError: EFAULT for unreadable memory; ENAMETOOLONG if there is no NUL
                in ``limit`` bytes.
        """
        out = b""
        while len(out) < limit:
            chunk = min(_PAGE - (address + len(out)) % _PAGE, limit - len(out))
            piece = self.read(address + len(out), chunk)
            end = piece.find(b"\0")
            if end >= 0:
                return (out + piece[:end]).decode("utf-8", "surrogateescape")
            out += piece
        raise BpfnsError(errno.ENAMETOOLONG, f"no NUL in the {limit} bytes at {address:#x}")


@attrs.define(eq=False)
class Placeholder:
    """The supervisor's fd of the memfd that stands for one simulated ``File``."""

    fd: int
    file: File
    key: tuple[int, int]  # (st_dev, st_ino) of the memfd


@attrs.define(eq=False)
class Placeholders:
    """The memfds standing for simulated files, found by file and by inode."""

    by_key: dict[tuple[int, int], Placeholder] = attrs.field(factory=dict)
    by_file: dict[File, Placeholder] = attrs.field(factory=dict)

    def of(self, file: File) -> Placeholder:
        """The placeholder of ``file``: an empty memfd made on first use."""
        found = self.by_file.get(file)
        if found is not None:
            return found
        fd = os.memfd_create(f"bpfns:{ANON_NAMES[file.kind]}", os.MFD_CLOEXEC)
        st = os.fstat(fd)
        made = Placeholder(fd, file, (st.st_dev, st.st_ino))
        self.by_key[made.key] = made
        self.by_file[file] = made
        return made

    def drop_released(self) -> None:
        """Close the placeholders whose simulated file has no reference left."""
        for ph in [ph for ph in self.by_file.values() if ph.file.count <= 0]:
            os.close(ph.fd)
            del self.by_key[ph.key], self.by_file[ph.file]

    def close(self) -> None:
        """Close every placeholder (the run is over)."""
        for ph in self.by_file.values():
            os.close(ph.fd)
        self.by_key.clear()
        self.by_file.clear()


@attrs.frozen
class Answered:
    """A handler's answer when it has responded itself (``ADDFD`` with ``SEND``)."""


ANSWERED = Answered()

#: What a handler answers: the syscall's value, a text to open as a new fd,
#: :data:`ANSWERED`, or None to let the syscall run natively.
Answer: TypeAlias = int | bytes | Answered | None


@attrs.define(eq=False)
class Supervisor:
    """The simulated side of one :func:`bpfns.run`: tasks, placeholders, counts.

    ``tasks`` maps the tgid of each tracked process to its simulated task; the
    target's is ``root``. ``calls`` counts the ``bpf()`` commands answered, by name
    (``BPF_MAP_CREATE``); ``reports`` collects the oopses the target's calls hit.
    """

    listener: Listener
    root: Task
    root_pid: int
    placeholders: Placeholders = attrs.field(factory=Placeholders)
    tasks: dict[int, Task] = attrs.field(factory=dict)
    calls: Counter[str] = attrs.field(factory=Counter)
    reports: list[KernelBug] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.tasks[self.root_pid] = self.root

    # -- the two-way fd mirror -------------------------------------------------------------

    def _real_fds(self, tgid: int) -> dict[int, File] | None:
        """The placeholders open in process ``tgid``, by fd; None if it has gone."""
        try:
            names = os.listdir(f"/proc/{tgid}/fd")
        except OSError:
            return None
        out: dict[int, File] = {}
        for name in names:
            try:
                st = os.stat(f"/proc/{tgid}/fd/{name}")
            except OSError:  # pragma: no cover - closed between listdir and stat
                continue
            ph = self.placeholders.by_key.get((st.st_dev, st.st_ino))
            if ph is not None:
                out[int(name)] = ph.file
        return out

    def _holder(self, file: File) -> tuple[Task, int] | None:
        """A tracked task that has ``file`` open, and its fd there."""
        held = (
            (task, fd)
            for task in self.tasks.values()
            if task.files is not None
            for fd, open_file in task.files.items()
            if open_file is file
        )
        return next(held, None)

    def sync(self) -> None:
        """Make every tracked task's simulated fds what its process really has open.

        Installs first (``dup2``, or ``SCM_RIGHTS`` from another task), then closes,
        then the exits of processes that have gone: a file moving between processes
        is never released on the way.
        """
        self._discover()
        real = {tgid: self._real_fds(tgid) for tgid in self.tasks}
        for tgid, fds in real.items():
            if fds is not None and self.tasks[tgid].alive:  # not one an oops killed
                self._install(self.tasks[tgid], fds)
        for tgid, fds in real.items():
            task = self.tasks[tgid]
            if fds is not None and task.alive:
                assert task.files is not None
                for fd in [fd for fd, _ in task.files.items() if fd not in fds]:
                    task.close(fd)
        for tgid, fds in real.items():
            if fds is None:
                self.exit_task(self.tasks.pop(tgid))
        self.placeholders.drop_released()

    def _discover(self) -> None:
        """Track the processes the tracked ones have forked since the last sync.

        Each gets a fork of its parent's simulated task, taken before the parent's
        own fds are synced: what the parent closed after the fork is still the child's.
        O(processes on the machine): every ``/proc/<pid>/stat`` is read for its parent.
        """
        children: dict[int, list[int]] = {}
        for pid, ppid in _parents().items():
            children.setdefault(ppid, []).append(pid)
        queue = list(self.tasks)
        while queue:
            tgid = queue.pop()
            for child in sorted(children.get(tgid, ())):
                if child not in self.tasks and self.tasks[tgid].alive:
                    self.tasks[child] = self.tasks[tgid].clone(0, name=f"pid{child}")
                    queue.append(child)

    def _install(self, task: Task, fds: dict[int, File]) -> None:
        assert task.files is not None
        for fd, file in sorted(fds.items()):
            if dict(task.files.items()).get(fd) is file:
                continue
            holder = self._holder(file)
            if holder is None:  # pragma: no cover - a placeholder always has a holder
                continue
            owner, owner_fd = holder
            if owner is task:
                task.dup2(owner_fd, fd)
                continue
            moved = owner.send_fd(owner_fd, task)
            if moved != fd:  # pragma: no branch - equal only if the lowest free fd is fd
                task.dup2(moved, fd)
                task.close(moved)

    def exit_task(self, task: Task) -> None:
        """``do_exit`` of a task whose process has gone; an oops is a report."""
        if not task.alive:
            return
        try:
            task.exit()
        except KernelBug as bug:
            self.reports.append(bug)

    def task_of(self, pid: int) -> Task:
        """The simulated task of thread ``pid``: its process's, forked on first sight.

        A process the target forked is tracked by :meth:`sync` (a fork of its
        parent's task); one seen first here was reparented, and forks the target's.
        """
        tgid = _ids(pid)[0]
        task = self.tasks.get(tgid)
        if task is None:
            # sync() has tracked every child of a tracked process: this one was
            # reparented before its first call (its parent exited), so it forks the root.
            task = self.root.clone(0, name=f"pid{tgid}")
            self.tasks[tgid] = task
        return task

    # -- one notification ----------------------------------------------------------------

    def handle(self, n: Notification) -> None:
        """Answer one stopped syscall (or let it continue)."""
        try:
            mem_fd = os.open(f"/proc/{n.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # pragma: no cover - the target died since the notification
            self.listener.respond(n.id, error=errno.ESRCH)
            return
        try:
            if not self.listener.id_valid(n.id):  # pragma: no cover - it died meanwhile
                return
            self._answer(n, Memory(mem_fd, n.pid))
        finally:
            os.close(mem_fd)

    def _answer(self, n: Notification, mem: Memory) -> None:
        handler = _HANDLERS[n.syscall]
        try:
            answer = handler(self, n, mem)
        except BpfnsError as err:
            self.placeholders.drop_released()
            self.listener.respond(n.id, error=err.errno or errno.EINVAL)
            return
        if answer is None:
            self.listener.continue_(n.id)
        elif isinstance(answer, int):
            self.listener.respond(n.id, value=answer)
        elif isinstance(answer, bytes):
            self._send_text(n, answer)

    def _send_text(self, n: Notification, text: bytes) -> None:
        """Answer an ``open`` with a new read-only, sealed memfd holding ``text``."""
        fd = os.memfd_create("bpfns:fdinfo", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.write(fd, text)
            os.lseek(fd, 0, os.SEEK_SET)
            fcntl.fcntl(
                fd,
                fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL,
            )
            try:
                self.listener.add_fd(n.id, fd)
            except OSError as err:
                self.listener.respond(n.id, error=err.errno or errno.EMFILE)
        finally:
            os.close(fd)

    # -- bpf() ------------------------------------------------------------------------------

    def _bpf(self, n: Notification, mem: Memory) -> Answer:
        cmd_nr, uattr, size = _c_int(n.args[0]), n.args[1], n.args[2] & 0xFFFFFFFF
        tail_zero(size, ATTR_SIZE, lambda offset, length: mem.read(uattr + offset, length))
        attr = mem.read(uattr, min(size, ATTR_SIZE))
        try:
            cmd = BpfCmd(cmd_nr)
        except ValueError:
            cmd = None
        if cmd not in SUPPORTED:
            raise BpfnsError(
                errno.EINVAL,
                f"bpf() command {cmd_nr} is not one bpfns answers (see the how-to's list)",
            )
        assert cmd is not None
        check_attr(cmd, attr)
        self.sync()
        task = self.task_of(n.pid)
        f = attr_fields(cmd, attr)
        self.calls[f"BPF_{cmd.name}"] += 1
        try:
            return _BPF[cmd](self, task, n, mem, uattr, f)
        except KernelBug as bug:  # the oops kills the task; its process dies with it
            self.reports.append(bug)
            os.kill(n.pid, signal.SIGKILL)
            self.listener.respond(n.id, error=errno.EFAULT)
            return ANSWERED

    def fdget(self, task: Task, n: Notification, *fds: int) -> None:
        """``fdget`` as the real process sees its fds, before the simulated one.

        An fd that the process has open but that is no simulated object (a pipe, a
        regular file) is EINVAL, as the kernel gives for a file that is not BPF; one
        not open at all is left to the simulated call (EBADF).

        Raises:
            BpfnsError: EINVAL for such an fd.
        """
        assert task.files is not None
        sim = dict(task.files.items())
        tgid = _ids(n.pid)[0]
        for fd in fds:
            if fd not in sim and fd >= 0 and os.path.lexists(f"/proc/{tgid}/fd/{fd}"):
                raise BpfnsError(errno.EINVAL, f"fd {fd} is open, but not a BPF object")

    def bpf_fd(self, task: Task, n: Notification, make: Callable[[], int]) -> int | Answered:
        """Run ``make`` (a command that returns a new fd) and put that fd in the target.

        The simulated fd moves to the number the target's kernel gives the placeholder.
        A result that is not a new fd (D3's 0) is returned as it is.
        """
        assert task.files is not None
        before = {fd for fd, _ in task.files.items()}
        fd = make()
        now = dict(task.files.items())
        if fd in before or fd not in now:
            return fd
        ph = self.placeholders.of(now[fd])
        try:
            real = self.listener.add_fd(n.id, ph.fd)
        except OSError as err:  # EMFILE in the target, or it has gone: unwind
            task.close(fd)
            self.placeholders.drop_released()
            raise BpfnsError(err.errno or errno.EMFILE, "the target cannot take the fd") from err
        if real != fd:
            task.dup2(fd, real)
            task.close(fd)
        return ANSWERED  # by add_fd

    # -- paths -----------------------------------------------------------------------------

    def proc_fd(self, pid: int, path: str, what: str) -> tuple[Task, int, File] | None:
        """``(owner task, fd, file)`` of ``/proc/<p>/<what>/<fd>``, if that is a placeholder.

        None for any other path, or a process that is not tracked.
        """
        m = _PROC_FD.fullmatch(path)
        if m is None or m.group(2) != what:
            return None
        who, fd = m.group(1), int(m.group(3))
        tgid = _ids(pid)[0] if who in ("self", "thread-self") else int(who)
        self.sync()
        owner = self.tasks.get(tgid)
        if owner is None or not owner.alive:
            return None
        assert owner.files is not None
        file = dict(owner.files.items()).get(fd)
        if file is None or file not in self.placeholders.by_file:
            return None
        return owner, fd, file


def _ids(pid: int) -> tuple[int, int]:
    """``(Tgid, PPid)`` of thread ``pid``, from ``/proc/<pid>/status``."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["Tgid"]), int(fields["PPid"])
    except (OSError, KeyError, ValueError):  # pragma: no cover - it died meanwhile
        return pid, 0


def _parents() -> dict[int, int]:
    """``{pid: ppid}`` of every process (``/proc/<pid>/stat``, field 4)."""
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                data = stat.read()
        except OSError:  # pragma: no cover - it exited between listdir and open
            continue
        out[int(name)] = int(data[data.rindex(b")") + 2 :].split()[1])
    return out


def _c_int(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# -- the bpf() commands: (supervisor, task, notification, memory, uattr, fields) -> answer


def _map_create(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    name = c_string(f["map_name"])
    if name is None:
        raise BpfnsError(errno.EINVAL, "map_name has no NUL in its 16 bytes")
    inner = f["inner_map_fd"] if f["map_type"] in _MAP_IN_MAP else None
    if inner is not None:
        s.fdget(t, n, inner)
    return s.bpf_fd(
        t,
        n,
        lambda: t.map_create(
            f["map_type"],
            name,
            f["key_size"],
            f["value_size"],
            f["max_entries"],
            map_ifindex=f["map_ifindex"],
            inner_map_fd=inner,
        ),
    )


def _prog_load(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    # The order of Linux 6.4 and later: the size, the instructions, then the license.
    count = f["insn_cnt"]
    if not 0 < count <= MAX_INSNS:
        raise BpfnsError(errno.E2BIG, f"insn_cnt {count}: a program has 1 to {MAX_INSNS} insns")
    insns = mem.read(f["insns"], count * 8)
    mem.string(f["license"], 128)  # strncpy_from_bpfptr(license): EFAULT
    name = c_string(f["prog_name"])
    if name is None:
        raise BpfnsError(errno.EINVAL, "prog_name has no NUL in its 16 bytes")
    fd_array = f["fd_array"]
    maps = insn_map_fds(
        insns, lambda i: _c_int(int.from_bytes(mem.read(fd_array + 4 * i, 4), "little"))
    )
    s.fdget(t, n, *maps)
    return s.bpf_fd(t, n, lambda: t.prog_load(f["prog_type"], name, tuple(maps)))


def _link_create(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    if f["attach_type"] != BPF_PERF_EVENT:
        raise BpfnsError(
            errno.EINVAL,
            f"attach_type {f['attach_type']}: bpfns answers BPF_PERF_EVENT (41) links; "
            "use BPF_RAW_TRACEPOINT_OPEN for a raw tracepoint",
        )
    s.fdget(t, n, f["prog_fd"])
    return s.bpf_fd(t, n, lambda: t.link_create(f["prog_fd"], BPF_LINK_TYPE_PERF_EVENT))


def _raw_tp_open(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    if f["name"]:
        mem.string(f["name"], 128)
    s.fdget(t, n, f["prog_fd"])
    return s.bpf_fd(t, n, lambda: t.link_create(f["prog_fd"], BPF_LINK_TYPE_RAW_TRACEPOINT))


def _obj_pin(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    if f["file_flags"]:
        raise BpfnsError(errno.EINVAL, "BPF_OBJ_PIN takes no file_flags")
    path = mem.string(f["pathname"])
    s.fdget(t, n, f["bpf_fd"])
    t.obj_pin(f["bpf_fd"], path)
    return 0


def _obj_get(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    if f["bpf_fd"] or f["file_flags"] & ~0x18:  # BPF_F_RDONLY | BPF_F_WRONLY
        raise BpfnsError(errno.EINVAL, "BPF_OBJ_GET: bpf_fd must be 0, file_flags RDONLY/WRONLY")
    path = mem.string(f["pathname"])
    return s.bpf_fd(t, n, lambda: t.obj_get(path))


def _next_id(kind: str) -> Callable[..., Answer]:
    def answer(
        s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
    ) -> Answer:
        next_id = getattr(t, f"{kind}_get_next_id")(f["start_id"])
        mem.write(uattr + NEXT_ID_OFFSET, struct.pack("<I", next_id))
        return 0

    return answer


def _fd_by_id(kind: str) -> Callable[..., Answer]:
    def answer(
        s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
    ) -> Answer:
        if kind == "map":
            return s.bpf_fd(t, n, lambda: t.map_get_fd_by_id(f["id"], f["open_flags"]))
        return s.bpf_fd(t, n, lambda: getattr(t, f"{kind}_get_fd_by_id")(f["id"]))

    return answer


def _info(
    s: Supervisor, t: Task, n: Notification, mem: Memory, uattr: int, f: dict[str, Any]
) -> Answer:
    s.fdget(t, n, f["bpf_fd"])
    info = t.obj_get_info_by_fd(f["bpf_fd"])
    size = INFO_SIZES[type(info)]
    address, asked = f["info"], f["info_len"]
    tail_zero(asked, size, lambda offset, length: mem.read(address + offset, length))
    length = min(asked, size)
    user = mem.read(address, length)
    packed = pack_info(info, user, mem.write)
    mem.write(address, packed[:length])
    mem.write(uattr + INFO_LEN_OFFSET, struct.pack("<I", length))
    return 0


_BPF: dict[BpfCmd, Callable[..., Answer]] = {
    BpfCmd.MAP_CREATE: _map_create,
    BpfCmd.PROG_LOAD: _prog_load,
    BpfCmd.LINK_CREATE: _link_create,
    BpfCmd.RAW_TRACEPOINT_OPEN: _raw_tp_open,
    BpfCmd.OBJ_PIN: _obj_pin,
    BpfCmd.OBJ_GET: _obj_get,
    BpfCmd.MAP_GET_NEXT_ID: _next_id("map"),
    BpfCmd.PROG_GET_NEXT_ID: _next_id("prog"),
    BpfCmd.LINK_GET_NEXT_ID: _next_id("link"),
    BpfCmd.MAP_GET_FD_BY_ID: _fd_by_id("map"),
    BpfCmd.PROG_GET_FD_BY_ID: _fd_by_id("prog"),
    BpfCmd.LINK_GET_FD_BY_ID: _fd_by_id("link"),
    BpfCmd.OBJ_GET_INFO_BY_FD: _info,
}


# -- the path syscalls ----------------------------------------------------------------------


def _open(s: Supervisor, n: Notification, mem: Memory) -> Answer:
    """``open(path, flags)`` / ``openat(dirfd, path, flags)``: fdinfo of a placeholder."""
    path_at, flags = (n.args[0], n.args[1]) if n.syscall == "open" else (n.args[1], n.args[2])
    try:
        path = mem.string(path_at)
    except BpfnsError:
        return None  # the kernel gives its own EFAULT / ENAMETOOLONG
    if flags & _O_ACCMODE != os.O_RDONLY:
        return None
    found = s.proc_fd(n.pid, path, "fdinfo")
    if found is None:
        return None
    owner, fd, _ = found
    reader = s.task_of(n.pid)
    return reader.read_fdinfo(owner, fd).encode()


def _readlink(s: Supervisor, n: Notification, mem: Memory) -> Answer:
    """``readlink(path, buf, size)`` / ``readlinkat``: a placeholder's anon-inode name."""
    path_at, buf, size = n.args[0:3] if n.syscall == "readlink" else n.args[1:4]
    try:
        path = mem.string(path_at)
    except BpfnsError:
        return None
    found = s.proc_fd(n.pid, path, "fd")
    if found is None:
        return None
    size = _c_int(size)
    if size <= 0:
        raise BpfnsError(errno.EINVAL, "readlink: bufsiz must be positive")
    target = f"anon_inode:{ANON_NAMES[found[2].kind]}".encode()[:size]
    mem.write(buf, target)
    return len(target)


def _statfs(s: Supervisor, n: Notification, mem: Memory) -> Answer:
    """``statfs(path, buf)``: bpffs for ``/sys/fs/bpf`` and what is pinned in it."""
    try:
        path = mem.string(n.args[0])
    except BpfnsError:
        return None
    root = BPFFS_ROOT.rstrip("/")
    if path.rstrip("/") != root and path not in s.root.kernel.bpffs.paths():
        return None
    stats = _STATFS.pack(BPF_FS_MAGIC, _PAGE, 0, 0, 0, 0, 0, 0, 0, 255, _PAGE, 0, 0, 0, 0, 0)
    mem.write(n.args[1], stats)
    return 0


_HANDLERS: dict[str, Callable[[Supervisor, Notification, Memory], Answer]] = {
    "bpf": Supervisor._bpf,
    "open": _open,
    "openat": _open,
    "readlink": _readlink,
    "readlinkat": _readlink,
    "statfs": _statfs,
}
