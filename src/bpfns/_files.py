"""Open files and file tables: fs/file.c and fs/file_table.c, reduced to what BPF needs.

A :class:`File` is an open file description (``struct file``): BPF objects, nsfs files
and pidfds are all files, and an object lives as long as a file refers to it. Several
fds (``dup``, ``SCM_RIGHTS``, a copied file table) can share one File; the last
``fput`` releases the object. An :class:`FdTable` (``struct files_struct``) maps fds to
Files, hands out the lowest free fd (``alloc_fd``), and may be shared by
threads (``CLONE_FILES``).
"""

from __future__ import annotations

import enum
import errno
import heapq
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from ._errors import BpfnsError

__all__ = ["FdTable", "File", "FileKind"]

#: ``RLIMIT_NOFILE``'s usual soft limit.
DEFAULT_NOFILE = 1024


class FileKind(enum.Enum):
    """What an open file refers to."""

    BPF_MAP = "bpf-map"
    BPF_PROG = "bpf-prog"
    BPF_LINK = "bpf-link"
    BTF = "btf"
    PERF_EVENT = "perf_event"
    BPF_NS = "nsfs:bpf"
    USER_NS = "nsfs:user"
    PIDFD = "pidfd"

    def __repr__(self) -> str:
        return f"FileKind.{self.name}"


@attrs.define(eq=False)
class File:
    """``struct file``: ``count`` fds (in any tables) refer to this open file.

    What the last reference releases (``file->f_op->release``) depends on ``kind``; the
    layer that made the file runs it (:func:`bpfns._bpf_object.fput`).
    """

    kind: FileKind
    obj: Any
    count: int = 1

    def fput(self) -> bool:
        """Drop one reference; True if it was the last (the caller runs ``__fput``)."""
        self.count -= 1
        return not self.count


@attrs.define(eq=False)
class FdTable:
    """``struct files_struct``: fds of one or more tasks (``count`` sharers).

    New fds are the lowest free ones, as ``alloc_fd`` gives (fs/file.c): an fd is free
    when it is neither installed nor reserved, and ``alloc_fd`` fails with EMFILE when
    that lowest free fd is not below ``nofile`` (``RLIMIT_NOFILE``). The kernel finds
    it from the ``next_fd`` hint with a bitmap scan; here the free fds below the
    highest one ever in use are a heap, so every operation is O(log n) and the common
    one (close the fd just made, or make one above all others) is O(1).

    >>> t = FdTable()
    >>> t.install(File(FileKind.PIDFD, None)), t.install(File(FileKind.PIDFD, None))
    (0, 1)
    >>> t.detach(0).kind, t.install(File(FileKind.PIDFD, None))
    (FileKind.PIDFD, 0)
    """

    nofile: int = DEFAULT_NOFILE
    count: int = 1
    _fds: dict[int, File] = attrs.field(factory=dict)
    _reserved: set[int] = attrs.field(factory=set)
    _holes: list[int] = attrs.field(factory=list)  # heap: the free fds below _high
    _high: int = 0  # every fd from here up is free

    def __repr__(self) -> str:
        """``FdTable()`` (valid Python) while empty and unshared, else the fds it holds."""
        args = "" if self.nofile == DEFAULT_NOFILE else f"nofile={self.nofile}"
        if not self._fds and not self._reserved and self.count == 1:
            return f"FdTable({args})"
        fds = ", ".join(f"{fd}: {file.kind.value}" for fd, file in self.items())
        more = f" reserved={sorted(self._reserved)}" if self._reserved else ""
        return f"<FdTable {{{fds}}}{more} count={self.count}{' ' + args if args else ''}>"

    def items(self) -> Iterator[tuple[int, File]]:
        """``(fd, file)`` pairs in fd order."""
        return iter(sorted(self._fds.items()))

    def __len__(self) -> int:
        """The number of installed fds (reserved ones are not counted)."""
        return len(self._fds)

    def get(self, fd: int) -> File:
        """``fdget``: the File behind ``fd`` (a reserved fd has none yet).

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.
        """
        file = self._fds.get(fd)
        if file is None:
            raise BpfnsError(errno.EBADF, f"fd {fd} is not open in this task")
        return file

    def _alloc_fd(self) -> int:
        """``alloc_fd(0, nofile)``: take the lowest free fd; O(log n), O(1) above all."""
        holes = self._holes
        fd = holes[0] if holes else self._high
        if fd >= self.nofile:
            raise BpfnsError(
                errno.EMFILE,
                f"the lowest free fd is {fd} and RLIMIT_NOFILE is {self.nofile}; close some",
            )
        if holes:
            heapq.heappop(holes)
        else:
            self._high = fd + 1
        return fd

    def _free_fd(self, fd: int) -> None:
        """``__put_unused_fd``: ``fd`` is free again (it was open or reserved)."""
        if fd == self._high - 1:
            self._high = fd
        else:
            heapq.heappush(self._holes, fd)

    def reserve(self) -> int:
        """``get_unused_fd_flags``: reserve the lowest free fd.

        Raises:
            BpfnsError: EMFILE if the lowest free fd is not below ``nofile``.
        """
        fd = self._alloc_fd()
        self._reserved.add(fd)
        return fd

    def is_reserved(self, fd: int) -> bool:
        """Whether ``fd`` is reserved (``get_unused_fd_flags``) and not yet installed."""
        return fd in self._reserved

    def reserved(self) -> list[int]:
        """The reserved fds, ascending."""
        return sorted(self._reserved)

    def put_unused(self, fd: int) -> None:
        """``put_unused_fd``: give back a reserved fd."""
        self._reserved.remove(fd)
        self._free_fd(fd)

    def fd_install(self, fd: int, file: File) -> None:
        """``fd_install``: publish ``file`` at a reserved ``fd``."""
        self._reserved.remove(fd)
        self._fds[fd] = file

    def install(self, file: File) -> int:
        """Take the lowest free fd and install ``file`` there (it owns one reference).

        Raises:
            BpfnsError: EMFILE if the table is full (the caller still owns ``file``).
        """
        fd = self._alloc_fd()
        self._fds[fd] = file
        return fd

    def replace(self, fd: int, file: File) -> File | None:
        """``do_dup2``'s table update: install ``file`` at ``fd``; return what was there.

        The caller takes the reference ``fd`` now holds and fputs the returned File.
        O(log n) when ``fd`` was free below the high mark (a heap removal, O(n) worst).

        Raises:
            BpfnsError: EBADF if ``fd`` is negative or not below ``nofile``; EBUSY if
                ``fd`` is reserved.
        """
        if not 0 <= fd < self.nofile:
            raise BpfnsError(
                errno.EBADF, f"fd {fd} is outside 0..{self.nofile - 1} (RLIMIT_NOFILE)"
            )
        if fd in self._reserved:
            raise BpfnsError(errno.EBUSY, f"fd {fd} is reserved by a call in flight")
        old = self._fds.get(fd)
        if old is None:
            if fd >= self._high:
                for hole in range(self._high, fd):
                    heapq.heappush(self._holes, hole)
                self._high = fd + 1
            else:
                self._holes.remove(fd)
                heapq.heapify(self._holes)
        self._fds[fd] = file
        return old

    def detach(self, fd: int) -> File:
        """``file_close_fd``: remove ``fd`` and return its File (the caller must fput it).

        Raises:
            BpfnsError: EBADF if ``fd`` is not open.
        """
        file = self._fds.pop(fd, None)
        if file is None:
            raise BpfnsError(errno.EBADF, f"fd {fd} is not open in this task")
        self._free_fd(fd)
        return file

    def share(self) -> FdTable:
        """``CLONE_FILES``: one more task uses this table."""
        self.count += 1
        return self

    def copy(self) -> FdTable:
        """``dup_fd``: a new table with the same fds, each File referenced once more.

        Reserved fds are not copied (``dup_fd`` clears an fd that has no file yet).
        """
        new = FdTable(nofile=self.nofile)
        for fd, file in self._fds.items():
            file.count += 1
            new._fds[fd] = file
        new._high = max(self._fds, default=-1) + 1
        new._holes = [fd for fd in range(new._high) if fd not in new._fds]
        return new

    def put(self, release: Callable[[File], None]) -> None:
        """``put_files_struct``: the last user closes every fd, in fd order.

        ``release`` is ``__fput``, run for each file whose last reference that was, as
        soon as its fd is closed (:func:`bpfns._bpf_object.put_files` passes the object
        layer's). If it raises (an oops), the fds after it stay in the table.
        """
        self.count -= 1
        if self.count:
            return
        for fd, _ in self.items():
            file = self.detach(fd)
            if file.fput():
                release(file)

    def _check(self) -> None:
        """Assert the internal invariants.

        Every fd below ``_high`` is exactly one of installed, reserved or a hole; the
        holes form a heap.
        """
        holes = set(self._holes)
        assert len(holes) == len(self._holes), "an fd is free twice"
        heap = self._holes
        assert all(heap[(i - 1) // 2] <= heap[i] for i in range(1, len(heap))), "heap"
        used = self._fds.keys() | self._reserved
        assert not used & holes, "an fd is both used and free"
        assert not self._fds.keys() & self._reserved, "an fd is both installed and reserved"
        assert used | holes == set(range(self._high)), "fds below the high mark are lost"
        assert all(file.count > 0 for file in self._fds.values())
