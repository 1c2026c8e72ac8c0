"""kernel/bpf/inode.c: the BPF filesystem, where pins keep objects alive.

One flat bpffs mount at ``/sys/fs/bpf/`` per Kernel. A pin holds a reference on its
object (``bpf_any_get``); unlinking it drops the reference (``bpf_any_put``). Pins are
not namespaced: the RFC leaves bpffs alone (semantics §2.5, D20), which is how an object
outlives the namespace that created it (D2).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs

from ._errors import BpfnsError

__all__ = ["BPFFS_ROOT", "Bpffs"]

BPFFS_ROOT = "/sys/fs/bpf/"

ObjT = TypeVar("ObjT")


def _check_path(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    if not path.startswith(BPFFS_ROOT) or len(path) == len(BPFFS_ROOT):
        raise BpfnsError(
            errno.EPERM, f"{path!r} is not a file on the bpf filesystem; use {BPFFS_ROOT}<name>"
        )
    return path


@attrs.define(eq=False)
class Bpffs(Generic[ObjT]):
    """The pins of one Kernel: path -> object.

    ``get`` and ``put`` are the object layer's ``bpf_any_get`` and ``bpf_any_put``: a
    pin holds one reference on its object, taken by :meth:`pin` and dropped by
    :meth:`unlink`.

    >>> refs = []
    >>> fs = Bpffs(refs.append, refs.remove)
    >>> fs.pin("map", "/sys/fs/bpf/m"); fs.lookup("/sys/fs/bpf/m"), refs
    ('map', ['map'])
    >>> fs.unlink("/sys/fs/bpf/m"); fs.paths(), refs
    ([], [])
    """

    _get: Callable[[ObjT], object]
    _put: Callable[[ObjT], object]
    _pins: dict[str, ObjT] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return f"<Bpffs {self.paths()}>"

    def pin(self, obj: ObjT, path: str) -> None:
        """``bpf_obj_pin_user``: take a reference on ``obj`` and create ``path``.

        Raises:
            BpfnsError: EPERM outside ``/sys/fs/bpf/``; EEXIST if ``path`` is taken.
            TypeError: if ``path`` is not a str.
        """
        if _check_path(path) in self._pins:
            raise BpfnsError(errno.EEXIST, f"{path} exists; unlink it or pick another name")
        self._get(obj)
        self._pins[path] = obj

    def lookup(self, path: str) -> ObjT:
        """``bpf_obj_get_user``'s lookup: the pinned object (the caller takes a ref).

        Raises:
            BpfnsError: ENOENT if nothing is pinned there; EPERM outside bpffs.
        """
        obj = self._pins.get(_check_path(path))
        if obj is None:
            raise BpfnsError(errno.ENOENT, f"nothing is pinned at {path}")
        return obj

    def unlink(self, path: str) -> None:
        """``bpf_free_inode``: remove the pin and drop its reference.

        Raises:
            BpfnsError: as :meth:`lookup`.
        """
        obj = self.lookup(path)
        del self._pins[path]
        self._put(obj)

    def paths(self) -> list[str]:
        """The pinned paths, sorted."""
        return sorted(self._pins)

    def items(self) -> list[tuple[str, ObjT]]:
        """``(path, object)`` for every pin, by path."""
        return sorted(self._pins.items(), key=lambda item: item[0])

    def objects(self) -> list[ObjT]:
        """The pinned objects (one entry per pin)."""
        return list(self._pins.values())

    def _check(self) -> None:
        """Assert the invariants: every path is a bpffs path."""
        for path in self._pins:
            assert path.startswith(BPFFS_ROOT) and path != BPFFS_ROOT, f"pin at {path!r}"
