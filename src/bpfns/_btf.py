"""kernel/bpf/btf.c, as far as ids go: BTF objects on the global ``btf_idr``.

BTF is the one BPF object type the RFC does not namespace: ``struct bpf_namespace`` has
no BTF slot, so every BTF object has one id, from the global ``btf_idr``
(``idr_alloc_cyclic(&btf_idr, btf, 1, INT_MAX)`` under ``btf_idr_lock``), whatever
namespace loads or reads it. It enters the object-type registry
(:func:`bpfns._bpf_object.register`) as a type with no namespace IDR.

The commands keep the kernel's gates:

* ``BPF_BTF_LOAD`` needs ``bpf_capable()`` (CAP_BPF or CAP_SYS_ADMIN);
* ``BPF_BTF_GET_NEXT_ID`` goes through the same ``bpf_obj_get_next_id`` as maps,
  programs and links, which patch 11 relaxed to ``capable(CAP_SYS_ADMIN) ||
  bpfns_capable()``: a CAP_BPF task in any child namespace enumerates every BTF id on
  the host (D12). Fixed, BTF keeps the gate it had before the series: CAP_SYS_ADMIN;
* ``BPF_BTF_GET_FD_BY_ID`` needs CAP_SYS_ADMIN, before and after the series.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import ClassVar

import attrs

from ._args import INT_MAX, U32_MAX, check_int, check_str
from ._bpf_object import (
    BpfObject,
    SyscallTask,
    bpf_obj_free,
    bpf_obj_inc_not_zero,
    bpf_obj_put,
    register,
    syscall,
)
from ._bpf_uapi import BtfInfo
from ._capability import Cap
from ._errors import BpfnsError
from ._fault import FaultSite
from ._files import File, FileKind
from ._idr import idr_alloc_cyclic, idr_remove
from ._syscall import bpf_capable, bpfns_gate

__all__ = ["BTF_IDR_LOCK", "BpfBtf", "BtfCommands"]

#: ``btf_idr_lock``: one lock for the one, global, BTF IDR.
BTF_IDR_LOCK = "btf_idr_lock"


@register
@attrs.define(eq=False, repr=False)
class BpfBtf(BpfObject):
    """``struct btf``: a loaded BTF blob, with its global id (``btf->id``).

    ``obj_id`` stays None: no namespace numbers it.
    """

    NAMESPACED: ClassVar[bool] = False
    KIND: ClassVar[str] = "BTF"
    FILE_KIND: ClassVar[FileKind] = FileKind.BTF

    def _info(self) -> BtfInfo:
        """``btf_get_info_by_fd``: the global id (BTF is not namespaced)."""
        return BtfInfo(self.id, self.name)

    def _fdinfo_rows(self) -> list[tuple[str, object]]:
        """``bpf_btf_show_fdinfo``."""
        return [("btf_id", self.id)]

    def _listing(self, seen: Callable[[BpfObject], int]) -> str:
        """``bpftool btf show``: the name."""
        return f"name {self.name or '<anon>'}"

    def _free(self) -> None:
        """``btf_put``'s last reference: ``btf_free_id``, then the object."""
        k = self.kernel
        smp = k.smp
        if smp is not None:
            smp.spin_lock(BTF_IDR_LOCK, f"spin_lock_irqsave({BTF_IDR_LOCK}): btf_free_id")
        idr_remove(k.btf_idr, self.id)
        if smp is not None:
            smp.spin_unlock(BTF_IDR_LOCK, f"spin_unlock_irqrestore({BTF_IDR_LOCK})")
        self.id = 0
        bpf_obj_free(self, "its last reference")


def _btf_gate(task: SyscallTask, what: str) -> None:
    """``bpf_obj_get_next_id``'s gate for BTF: relaxed as posted (D12), else CAP_SYS_ADMIN."""
    if task.kernel.behavior.d12_btf_next_id_relaxed:
        bpfns_gate(task, what)  # patch 11's gate, on the global btf_idr
    elif not task.capable(Cap.CAP_SYS_ADMIN):
        raise BpfnsError(
            errno.EPERM,
            f"{what} needs CAP_SYS_ADMIN (BTF ids are global: the gate before the series)",
        )


class BtfCommands:
    """The BTF commands, as methods of :class:`bpfns.Task` (libbpf names)."""

    __slots__ = ()

    @syscall("bpf(BPF_BTF_LOAD)")
    def btf_load(self: SyscallTask, name: str = "") -> int:
        """``BPF_BTF_LOAD`` (libbpf ``bpf_btf_load``): a BTF object with a global id; its fd.

        The blob is not modelled (nothing is parsed); ``name`` labels it. The id comes
        from the global ``btf_idr``, the same in every namespace.

        Raises:
            BpfnsError: EPERM without CAP_BPF or CAP_SYS_ADMIN; ENOSPC when the global
                id space is full; ENOMEM when an injected allocation fails; EMFILE (the
                id is freed again, its cursor stays advanced).
            TypeError: if ``name`` is not a str.

        >>> from bpfns import Kernel, CLONE_NEWBPF
        >>> k = Kernel()
        >>> _ = k.init_task.btf_load("vmlinux")
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> c.obj_get_info_by_fd(c.btf_load("mine")).id     # global: 2 everywhere
        2
        """
        name = check_str("name", name)
        k = self.kernel
        bpf_capable(self, "BPF_BTF_LOAD")
        k.faults.inject(FaultSite.BPF_OBJECT)  # kzalloc(sizeof(*btf))
        btf = BpfBtf(k, name, refcnt=1, holders={"file": 1})
        smp = k.smp
        if smp is not None:
            smp.spin_lock(BTF_IDR_LOCK, f"spin_lock_bh({BTF_IDR_LOCK}): btf_alloc_id")
        try:
            btf.id = idr_alloc_cyclic(k.btf_idr, btf, 1, k.id_end - 1)
        except BpfnsError as err:
            bpf_obj_free(btf, "the error path of btf_new_fd")
            raise BpfnsError(err.errno or 0, f"btf_alloc_id: {err.strerror}") from None
        finally:
            if smp is not None:
                smp.spin_unlock(BTF_IDR_LOCK, f"spin_unlock_bh({BTF_IDR_LOCK})")
        k.objects[btf] = None
        try:
            k.faults.inject(FaultSite.FILE)  # anon_inode_getfd
            assert self.files is not None
            return self.files.install(File(FileKind.BTF, btf))
        except BpfnsError:
            bpf_obj_put(btf, "file")
            raise

    @syscall("bpf(BPF_BTF_GET_NEXT_ID)")
    def btf_get_next_id(self: SyscallTask, start_id: int) -> int:
        """``BPF_BTF_GET_NEXT_ID``: the next BTF id above ``start_id``, host-wide.

        The walk is over the global ``btf_idr``: from any namespace it lists every BTF
        object on the host. As posted (D12) a CAP_BPF task in a child namespace may
        walk it; fixed, only CAP_SYS_ADMIN may, as before the series.

        Raises:
            BpfnsError: EINVAL if ``start_id >= INT_MAX``; EPERM as above; ENOENT
                past the last id.
            TypeError, ValueError: if ``start_id`` is not a u32.

        >>> from bpfns import Kernel, CLONE_NEWBPF, Cap
        >>> k = Kernel()
        >>> _ = k.init_task.btf_load("host")
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> c.drop_capabilities(Cap.CAP_SYS_ADMIN)
        >>> c.btf_get_next_id(0)                            # D12: the host's BTF
        1
        """
        check_int("start_id", start_id, 0, U32_MAX, "u32")
        if start_id >= INT_MAX:
            raise BpfnsError(errno.EINVAL, f"BPF_BTF_GET_NEXT_ID: start_id {start_id} >= INT_MAX")
        _btf_gate(self, "BPF_BTF_GET_NEXT_ID")
        found = self.kernel.btf_idr.get_next(start_id + 1)
        if found is None:
            raise BpfnsError(errno.ENOENT, f"BPF_BTF_GET_NEXT_ID: no BTF id above {start_id}")
        return found[0]

    @syscall("bpf(BPF_BTF_GET_FD_BY_ID)")
    def btf_get_fd_by_id(self: SyscallTask, id: int) -> int:
        """``BPF_BTF_GET_FD_BY_ID``: an fd for BTF object ``id`` (any namespace's).

        Raises:
            BpfnsError: EPERM without CAP_SYS_ADMIN (the series does not relax it);
                ENOENT if no BTF object has that id; EMFILE.
            TypeError, ValueError: if ``id`` is not a u32.

        >>> from bpfns import Kernel
        >>> t = Kernel().init_task
        >>> _ = t.btf_load("vmlinux")
        >>> t.obj_get_info_by_fd(t.btf_get_fd_by_id(1)).name
        'vmlinux'
        """
        check_int("id", id, 0, U32_MAX, "u32")
        if not self.capable(Cap.CAP_SYS_ADMIN):
            raise BpfnsError(errno.EPERM, "BPF_BTF_GET_FD_BY_ID needs CAP_SYS_ADMIN")
        k = self.kernel
        btf = k.btf_idr.find(id) if id else None
        if btf is None or not bpf_obj_inc_not_zero(btf, "file"):
            raise BpfnsError(errno.ENOENT, f"BPF_BTF_GET_FD_BY_ID: no BTF object {id}")
        try:
            k.faults.inject(FaultSite.FILE)
            assert self.files is not None
            return self.files.install(File(FileKind.BTF, btf))
        except BpfnsError:
            bpf_obj_put(btf, "file")
            raise
