"""The first program of a target of :func:`bpfns.run`, before it execs the real one.

``python -E -s .../bpfns/_launch.py SOCK SRC:DST... -- ARGV...`` (a script, so that the
target does not import the whole package before its exec): install the seccomp filter
(:func:`bpfns._seccomp.install_filter`), pass the listener fd to the supervisor over the
UNIX socket ``SOCK``, move each placeholder fd ``SRC`` to ``DST`` (the numbers the
simulated task has them at), close ``SOCK`` and exec ``ARGV``. A fresh interpreter, so
that no thread of the supervisor's process runs between ``fork`` and ``exec``.

Exit codes before the exec: 126 if the filter cannot be installed (the supervisor is
told why), 127 if ``ARGV[0]`` cannot be run.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Sequence

if __package__:  # pragma: no cover - imported as bpfns._launch (the docs, a reader)
    from ._seccomp import install_filter
else:  # pragma: no cover - run as a script, as bpfns.run starts it: no package import
    from _seccomp import install_filter  # type: ignore[import-not-found,no-redef]


def launch(
    sock: int, moves: Sequence[tuple[int, int]], argv: Sequence[str]
) -> None:  # pragma: no cover - runs in the target, which execs before coverage could save
    """Install the filter, hand over the listener, put the fds in place, exec ``argv``."""
    with socket.socket(fileno=sock) as channel:
        try:
            listener = install_filter()
        except OSError as err:
            channel.sendall(f"E{err.errno} {err.strerror}".encode())
            os._exit(126)
        socket.send_fds(channel, [b"L"], [listener])
    os.close(listener)
    high = [fcntl.fcntl(src, fcntl.F_DUPFD, 1024) for src, _ in moves]
    for src in {src for src, _ in moves}:  # one placeholder may go to several fds
        os.close(src)
    for tmp, (_, dst) in zip(high, moves, strict=True):
        os.dup2(tmp, dst)
        os.close(tmp)
    try:
        os.execvp(argv[0], list(argv))
    except OSError as err:
        sys.stderr.write(f"bpfns run: {argv[0]}: {err.strerror}\n")
        os._exit(127)


def main(args: Sequence[str]) -> None:  # pragma: no cover - as launch
    """Parse ``SOCK SRC:DST... -- ARGV...`` and :func:`launch`."""
    split = list(args).index("--")
    moves = [(int(a), int(b)) for a, b in (m.split(":") for m in args[1:split])]
    launch(int(args[0]), moves, args[split + 1 :])


if __name__ == "__main__":  # pragma: no cover - as launch
    main(sys.argv[1:])
