"""Open files and file tables: fs/file.c and fs/file_table.c, reduced to what BPF needs.

A :class:`File` is an open file description (``struct file``): BPF objects, nsfs files
and pidfds are all files, and an object lives as long as a file refers to it. Several
fds (``dup``, ``SCM_RIGHTS``, a copied file table) can share one File; the last
``fput`` releases the object. An :class:`FdTable` (``struct files_struct``) maps fds to
Files, hands out the lowest free fd (an :class:`bpfns.Ida`), and may be shared by
threads (``CLONE_FILES``).
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import BpfnsError
from ._idr import Ida

if TYPE_CHECKING:
    from ._kernel import Kernel

__all__ = ["FdTable", "File", "FileKind"]

#: ``RLIMIT_NOFILE``'s usual soft limit.
DEFAULT_NOFILE = 1024


class FileKind(enum.Enum):
    """What an open file refers to."""

    BPF_MAP = "bpf-map"
    BPF_PROG = "bpf-prog"
    BPF_LINK = "bpf-link"
    BPF_NS = "nsfs:bpf"
    USER_NS = "nsfs:user"
    PIDFD = "pidfd"

    def __repr__(self) -> str:
        return f"FileKind.{self.name}"


@attrs.define(eq=False)
class File:
    """``struct file``: ``count`` fds (in any tables) refer to this open file."""

    kind: FileKind
    obj: Any
    count: int = 1

    def fput(self, k: Kernel) -> None:
        """Drop one reference; the last one releases the object (``__fput``)."""
        self.count -= 1
        if self.count:
            return
        if self.kind is FileKind.BPF_NS:
            self.obj._put("file")
        elif self.kind is FileKind.USER_NS:
            self.obj.put()
        elif self.kind is not FileKind.PIDFD:
            self.obj._put(k, "file")


@attrs.define(eq=False)
class FdTable:
    """``struct files_struct``: fds of one or more tasks (``count`` sharers).

    >>> t = FdTable()
    >>> t.install(File(FileKind.PIDFD, None)), t.install(File(FileKind.PIDFD, None))
    (0, 1)
    """

    nofile: int = DEFAULT_NOFILE
    count: int = 1
    _fds: dict[int, File] = attrs.field(factory=dict)
    _ida: Ida = attrs.field(factory=Ida)

    def items(self) -> Iterator[tuple[int, File]]:
        """``(fd, file)`` pairs in fd order."""
        return iter(sorted(self._fds.items()))

    def __len__(self) -> int:
        return len(self._fds)

    def get(self, fd: int) -> File:
        """``fdget``: the File behind ``fd``.

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.
        """
        file = self._fds.get(fd)
        if file is None:
            raise BpfnsError(errno.EBADF, f"fd {fd} is not open in this task")
        return file

    def reserve(self) -> int:
        """``get_unused_fd_flags``: reserve the lowest free fd.

        Raises:
            BpfnsError: EMFILE if ``nofile`` fds are in use.
        """
        if len(self._ida) >= self.nofile:
            raise BpfnsError(errno.EMFILE, f"all {self.nofile} fds are in use; close some")
        return self._ida.alloc()

    def put_unused(self, fd: int) -> None:
        """``put_unused_fd``: give back a reserved fd."""
        self._ida.free(fd)

    def fd_install(self, fd: int, file: File) -> None:
        """``fd_install``: publish ``file`` at a reserved ``fd``."""
        self._fds[fd] = file

    def install(self, file: File) -> int:
        """Reserve the lowest free fd and install ``file`` there (it owns one reference).

        Raises:
            BpfnsError: EMFILE if the table is full (the caller still owns ``file``).
        """
        fd = self.reserve()
        self._fds[fd] = file
        return fd

    def detach(self, fd: int) -> File:
        """Remove ``fd`` from the table and return its File (the caller must fput it).

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.
        """
        file = self.get(fd)
        del self._fds[fd]
        self._ida.free(fd)
        return file

    def share(self) -> FdTable:
        """``CLONE_FILES``: one more task uses this table."""
        self.count += 1
        return self

    def copy(self) -> FdTable:
        """``dup_fd``: a new table with the same fds, each File referenced once more."""
        new = FdTable(nofile=self.nofile)
        for fd, file in self._fds.items():
            file.count += 1
            new._fds[fd] = file
            new._ida.alloc_range(fd, fd)
        return new

    def put(self, k: Kernel) -> None:
        """``put_files_struct``: the last user closes every fd, in fd order."""
        self.count -= 1
        if self.count:
            return
        for fd, _ in self.items():
            self.detach(fd).fput(k)

    def _check(self) -> None:
        """Assert the internal invariants."""
        self._ida._check()
        assert sorted(self._fds) == [fd for fd in self._ida.ids() if fd in self._fds]
        assert all(file.count > 0 for file in self._fds.values())
