"""``bpfns.run``: a real program as a simulated task, its ``bpf()`` answered by bpfns.

The program runs natively, with a seccomp filter (:mod:`bpfns._seccomp`) that stops
its ``bpf()`` calls and the few path syscalls that show BPF objects; a thread of the
caller's process answers them from the simulated kernel (:mod:`bpfns._supervisor`),
while the caller's thread waits for the program as :func:`subprocess.run` does. See the
how-to "Run your real tool in a simulated BPF namespace".
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._args import INT_MAX, INT_MIN, check_int
from ._bpf_object import BPF_FILE_KINDS
from ._errors import KernelBug
from ._seccomp import Listener, unavailable
from ._supervisor import Placeholders, Supervisor
from ._task import Task

__all__ = ["RunResult", "run"]

#: The launcher script (run as a file: a fresh interpreter that imports only what it needs).
_LAUNCHER = str(Path(__file__).with_name("_launch.py"))


class RunResult(subprocess.CompletedProcess[Any]):
    """:class:`subprocess.CompletedProcess`, with what the simulated kernel did.

    ``calls`` counts the ``bpf()`` commands answered, by name (``"BPF_MAP_GET_NEXT_ID"``);
    ``reports`` holds the oopses the program's calls hit (:class:`bpfns.KernelBug`, RFC
    behaviour), each of which killed it.
    """

    def __init__(
        self,
        args: Sequence[str],
        returncode: int,
        stdout: Any,
        stderr: Any,
        calls: dict[str, int],
        reports: Sequence[KernelBug],
    ) -> None:
        super().__init__(list(args), returncode, stdout, stderr)
        self.calls = dict(calls)
        self.reports = tuple(reports)

    @property
    def answered(self) -> int:
        """The number of ``bpf()`` calls bpfns answered."""
        return sum(self.calls.values())


def _check_args(task: Task, argv: Sequence[str], pass_fds: Sequence[int]) -> list[str]:
    """Validate before anything runs.

    Raises:
        TypeError, ValueError: for a bad task, argv or pass_fds.
        FileNotFoundError: if ``argv[0]`` is not a program on ``PATH``.
        RuntimeError: where seccomp user notification is not available.
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a bpfns.Task, not {type(task).__name__}")
    if not task.alive:
        raise ValueError(f"{task!r} has exited; run as a live task")
    if (
        not isinstance(argv, Sequence)
        or isinstance(argv, str)
        or not all(isinstance(a, str) for a in argv)
    ):
        raise TypeError(
            f"argv must be a list of str such as ['bpftool', 'map', 'list'], not {argv!r}"
        )
    if not argv:
        raise ValueError("argv is empty: name the program to run")
    if not isinstance(pass_fds, Sequence) or isinstance(pass_fds, str):
        raise TypeError(f"pass_fds must be a sequence of fds, not {type(pass_fds).__name__}")
    assert task.files is not None
    open_fds = dict(task.files.items())
    for fd in pass_fds:
        check_int("pass_fds[]", fd, INT_MIN, INT_MAX, "int")
        if 0 <= fd <= 2:
            raise ValueError(
                f"pass_fds: fd {fd} would replace the program's stdin/stdout/stderr; "
                f"move it first, e.g. task.dup2({fd}, 10)"
            )
        file = open_fds.get(fd)
        if file is None or file.kind not in BPF_FILE_KINDS:
            raise ValueError(
                f"pass_fds: fd {fd} is not a BPF object open in {task!r} "
                f"(open: {sorted(open_fds) or 'none'})"
            )
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(2, f"no program {argv[0]!r} on PATH", argv[0])
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"bpfns run cannot supervise a program here: {reason}")
    return list(argv)


def run(
    task: Task,
    argv: Sequence[str],
    *,
    pass_fds: Sequence[int] = (),
    input: Any = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    **popen_kwargs: Any,
) -> RunResult:
    """Run the real program ``argv`` as a new task forked from ``task``.

    The program's ``bpf()`` calls go to the simulated kernel, as ``task.clone()`` would
    make them: in ``task``'s BPF namespace, with its credentials. It starts with no
    BPF fds but ``pass_fds`` (fds of ``task``, at the same numbers); the new task exits
    when the program does (and with it any process the program left running, whose
    ``bpf()`` calls fail with ENOSYS from then on). Everything else the program does
    runs natively. ``input``, ``capture_output``, ``timeout``, ``check`` and the other
    keywords are :func:`subprocess.run`'s (``text``, ``env``, ``cwd``, ``stdout``...).

    Models what ``__sys_bpf`` (kernel/bpf/syscall.c) gives a process of the simulated
    namespace; the commands answered are listed in the how-to "Run your real tool in a
    simulated BPF namespace".

    Raises:
        TypeError, ValueError: for a bad ``task``, ``argv`` or ``pass_fds``.
        FileNotFoundError: if ``argv[0]`` is not a program on ``PATH``.
        RuntimeError: where seccomp user notification is not available (the reason).
        subprocess.TimeoutExpired, subprocess.CalledProcessError: as
            :func:`subprocess.run` (on a timeout the program is killed first).

    >>> import bpfns
    >>> k = bpfns.Kernel(bpfns.FIXED)
    >>> _ = k.init_task.map_create(name="counts")
    >>> r = bpfns.run(k.init_task, ["bpftool", "map", "list"], capture_output=True, text=True)
    >>> print(r.stdout.splitlines()[0], r.calls["BPF_MAP_GET_NEXT_ID"])
    1: array  name counts  flags 0x0 2
    """
    args = _check_args(task, argv, pass_fds)
    if input is not None:
        popen_kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        popen_kwargs["stdout"] = popen_kwargs["stderr"] = subprocess.PIPE
    child = task.clone(0, name=os.path.basename(args[0])[:15] or "run")
    placeholders = Placeholders()
    assert child.files is not None
    open_fds = dict(child.files.items())
    moves = [(placeholders.of(open_fds[fd]).fd, fd) for fd in pass_fds]
    try:
        proc, listener = _start(args, moves, popen_kwargs)
    except BaseException:  # the program never ran: unwind the fork and the memfds
        placeholders.close()
        child.exit()
        raise
    sup = Supervisor(listener, child, proc.pid, placeholders)
    try:
        out, err = _supervise(sup, proc, input, timeout)
    finally:
        listener.close()
        for task_left in list(sup.tasks.values()):
            sup.exit_task(task_left)
        sup.tasks.clear()
        placeholders.close()
    result = RunResult(args, proc.returncode, out, err, sup.calls, sup.reports)
    if check and result.returncode:
        raise subprocess.CalledProcessError(result.returncode, args, out, err)
    return result


def _start(
    args: list[str], moves: list[tuple[int, int]], popen_kwargs: dict[str, Any]
) -> tuple[subprocess.Popen[Any], Listener]:
    """Start the launcher (:mod:`bpfns._launch`) and take the listener it sends.

    Raises:
        OSError: if the interpreter cannot be started.
        RuntimeError: as :func:`_receive_listener`.
    """
    ours, theirs = socket.socketpair()
    with ours:
        with theirs:
            launcher = [sys.executable, "-E", "-s", _LAUNCHER, str(theirs.fileno())]
            launcher += [f"{src}:{dst}" for src, dst in moves]
            proc = subprocess.Popen(
                [*launcher, "--", *args],
                pass_fds=(theirs.fileno(), *(src for src, _ in moves)),
                **popen_kwargs,
            )
        return proc, _receive_listener(ours, proc)


def _receive_listener(channel: socket.socket, proc: subprocess.Popen[Any]) -> Listener:
    """The listener fd the launcher sends (:mod:`bpfns._launch`).

    Raises:
        RuntimeError: if the launcher could not install the filter, or died first.
    """
    message, fds, _, _ = socket.recv_fds(channel, 256, 1)
    if message == b"L" and len(fds) == 1:
        return Listener(fds[0])
    for fd in fds:  # pragma: no cover - the launcher sends a listener or nothing
        os.close(fd)
    proc.wait()
    why = message[1:].decode(errors="replace") if message.startswith(b"E") else "no listener"
    raise RuntimeError(
        f"the program could not be put under seccomp ({why}; exit {proc.returncode})"
    )


def _supervise(
    sup: Supervisor,
    proc: subprocess.Popen[Any],
    input: Any,
    timeout: float | None,
) -> tuple[Any, Any]:
    """Answer ``sup``'s notifications on a thread while this one waits for ``proc``.

    Raises:
        subprocess.TimeoutExpired: after killing ``proc``.
        Exception: what the supervisor thread raised (``proc`` is killed).
    """
    wake_r, wake_w = os.pipe()  # the waiting thread's "the program has exited"
    failed: list[BaseException] = []

    def serve() -> None:
        poller = select.poll()
        poller.register(sup.listener.fd, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        try:
            while True:
                for fd, events in poller.poll():
                    # The program has exited, or (POLLHUP) no process uses the filter.
                    if fd == wake_r or not events & select.POLLIN:
                        return
                    n = sup.listener.recv()
                    if n is not None:  # pragma: no branch - None only in a race
                        sup.handle(n)
        except BaseException as err:  # re-raised by the waiting thread
            failed.append(err)
            sup.listener.close()  # every process still in a notified call gets ENOSYS
            proc.kill()

    server = threading.Thread(target=serve, name="bpfns-supervisor", daemon=True)
    server.start()
    try:
        out, err = proc.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    finally:
        os.write(wake_w, b"x")
        server.join()
        os.close(wake_r)
        os.close(wake_w)
    if failed:
        raise failed[0]
    sup.sync()
    return out, err
