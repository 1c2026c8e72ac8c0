"""kernel/bpf/offload.c: maps offloaded to a network device, and what unregistering it does.

``BPF_MAP_CREATE`` with ``map_ifindex`` binds the map to a device
(``bpf_map_offload_map_alloc``). When the device is unregistered,
``__bpf_map_offload_destroy`` runs for each of its maps while userspace may still hold
their fds: it calls ``bpf_map_free_id`` (the ids are freed and ``map->id`` is zeroed) and
unbinds the map. The RFC's ``bpf_map_free_id`` does not clear ``map->obj_id``, so a later
``BPF_OBJ_GET_INFO_BY_FD`` or fdinfo read of a still-open fd dereferences the freed
record (D5, see the defects page of the docs); fixed, it is cleared and the id reads
0. Programs are not affected: since 2023 the offload destroy no longer frees program ids.
"""

from __future__ import annotations

import errno

from ._bpf_object import BpfContext, BpfMap, SyscallTask, bpf_obj_free_id, map_offload_unbind
from ._capability import Cap
from ._errors import BpfnsError
from ._netdev import Netdev

__all__ = ["OFFLOAD_MAP_TYPES", "bpf_map_offload_map_alloc", "unregister_netdev"]

#: ``bpf_map_offload_map_alloc`` offloads only arrays and hashes.
OFFLOAD_MAP_TYPES = (1, 2)  # BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY


def bpf_map_offload_map_alloc(task: SyscallTask, map_type: int, ifindex: int) -> Netdev:
    """The checks of ``bpf_map_offload_map_alloc``, in order; the device to bind to.

    Raises:
        BpfnsError: EPERM without CAP_SYS_ADMIN; EINVAL for a map type other than
            hash or array, or no device with that ifindex; EOPNOTSUPP for a device
            without BPF offload (``lo``).
    """
    if not task.capable(Cap.CAP_SYS_ADMIN):
        raise BpfnsError(errno.EPERM, "an offloaded map needs CAP_SYS_ADMIN")
    if map_type not in OFFLOAD_MAP_TYPES:
        raise BpfnsError(
            errno.EINVAL, f"map_type {map_type} cannot be offloaded (only hash and array)"
        )
    dev = task.kernel.netdevs.lookup(ifindex)
    if dev is None:
        raise BpfnsError(
            errno.EINVAL,
            f"map_ifindex {ifindex}: no such network device (register one with "
            "Kernel.register_netdev)",
        )
    if not dev.offload:
        raise BpfnsError(errno.EOPNOTSUPP, f"{dev.name} has no BPF offload (no ndo_bpf)")
    return dev


def map_offload_destroy(m: BpfMap) -> None:
    """``__bpf_map_offload_destroy``: free the ids and unbind (D5: ``obj_id`` dangles)."""
    d5 = m.kernel.behavior.d5_offload_obj_id_dangling
    bpf_obj_free_id(m, clear_obj_id=not d5)
    map_offload_unbind(m)


def unregister_netdev(k: BpfContext, dev: Netdev) -> None:
    """``unregister_netdevice``: destroy every map offloaded to ``dev``, then remove it."""
    for m in list(dev.offloaded):
        assert isinstance(m, BpfMap)
        map_offload_destroy(m)
    k.netdevs.remove(dev)
