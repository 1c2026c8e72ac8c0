"""kernel/bpf/inode.c: the BPF filesystem, where pins keep objects alive.

One flat bpffs mount at ``/sys/fs/bpf/`` per Kernel. A pin holds a reference on its
object (``bpf_any_get``); unlinking it drops the reference (``bpf_any_put``). Pins are
not namespaced: the RFC leaves bpffs alone (rfc.md 2.5, D20), which is how an object
outlives the namespace that created it (D2).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import attrs

from ._errors import BpfnsError

if TYPE_CHECKING:
    from ._bpf_object import BpfObject
    from ._kernel import Kernel

__all__ = ["BPFFS_ROOT", "Bpffs"]

BPFFS_ROOT = "/sys/fs/bpf/"


def _check_path(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    if not path.startswith(BPFFS_ROOT) or len(path) == len(BPFFS_ROOT):
        raise BpfnsError(
            errno.EPERM, f"{path!r} is not a file on the bpf filesystem; use {BPFFS_ROOT}<name>"
        )
    return path


@attrs.define(eq=False)
class Bpffs:
    """The pins of one Kernel: path -> object."""

    kernel: Kernel
    _pins: dict[str, BpfObject] = attrs.field(factory=dict)

    def pin(self, obj: BpfObject, path: str) -> None:
        """``bpf_obj_pin_user``: take a reference and create ``path``."""
        if _check_path(path) in self._pins:
            raise BpfnsError(errno.EEXIST, f"{path} exists; unlink it or pick another name")
        obj._get("pin")
        self._pins[path] = obj

    def lookup(self, path: str) -> BpfObject:
        """``bpf_obj_get_user``'s lookup: the pinned object (the caller takes a ref)."""
        obj = self._pins.get(_check_path(path))
        if obj is None:
            raise BpfnsError(errno.ENOENT, f"nothing is pinned at {path}")
        return obj

    def unlink(self, path: str) -> None:
        """``bpf_free_inode``: remove the pin and drop its reference."""
        obj = self.lookup(path)
        del self._pins[path]
        obj._put(self.kernel, "pin")

    def paths(self) -> list[str]:
        """The pinned paths, sorted."""
        return sorted(self._pins)

    def items(self) -> list[tuple[str, BpfObject]]:
        """``(path, object)`` for every pin, by path."""
        return sorted(self._pins.items(), key=lambda item: item[0])

    def objects(self) -> list[BpfObject]:
        """The pinned objects (one entry per pin)."""
        return list(self._pins.values())
