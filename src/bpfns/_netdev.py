"""net/core/dev.c, as far as offloaded BPF maps need: network devices and their ifindex.

A simulated kernel has one network namespace (``init_net``) with the loopback device
``lo`` at ifindex 1, as every kernel boots. :meth:`bpfns.Kernel.register_netdev` adds a
device that can offload BPF maps (a netdevsim-like driver with ``ndo_bpf``);
:meth:`bpfns.Kernel.unregister_netdev` removes one, which destroys the maps offloaded
to it (``bpf_offload_dev_netdev_unregister``, :mod:`bpfns._offload`). Indexes come from
``dev_index_reserve``: the lowest free index above the last one handed out, wrapping.
"""

from __future__ import annotations

import attrs

__all__ = ["LOOPBACK_IFINDEX", "Netdev", "NetdevTable"]

#: ``LOOPBACK_IFINDEX``: ``lo`` is always ifindex 1.
LOOPBACK_IFINDEX = 1
#: ifindex is an ``int``: ``dev_index_reserve`` hands out ``[1, INT_MAX]``.
_IFINDEX_MAX = 2**31 - 1


@attrs.define(eq=False)
class Netdev:
    """``struct net_device``: a name, an ifindex, and the maps offloaded to it.

    Attributes:
        name: the interface name.
        ifindex: the device's index in ``init_net``.
        offload: whether the driver has ``ndo_bpf`` (every registered device; not ``lo``).
        offloaded: the maps bound to this device (``ondev->maps``), oldest first.
    """

    name: str
    ifindex: int
    offload: bool = True
    offloaded: dict[object, None] = attrs.field(factory=dict, repr=False)


@attrs.define(eq=False)
class NetdevTable:
    """The network devices of ``init_net``, by ifindex (``dev_index_head``).

    >>> table = NetdevTable()
    >>> table.register("sim0").ifindex, table.lookup(1).name
    (2, 'lo')
    """

    devices: dict[int, Netdev] = attrs.field(init=False, factory=dict)
    #: ``net->ifindex``: the last index handed out; the next search starts above it.
    last: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self.register("lo", offload=False)

    def register(self, name: str, *, offload: bool = True) -> Netdev:
        """``register_netdevice``: a new device at the next free ifindex. O(devices)."""
        index = self.last
        while True:
            index = index + 1 if index < _IFINDEX_MAX else 1
            if index not in self.devices:
                break
        self.last = index
        dev = Netdev(name, index, offload)
        self.devices[index] = dev
        return dev

    def lookup(self, ifindex: int) -> Netdev | None:
        """``__dev_get_by_index(&init_net, ifindex)``: the device, or None. O(1)."""
        return self.devices.get(ifindex)

    def names(self) -> set[str]:
        """The names in use."""
        return {dev.name for dev in self.devices.values()}

    def remove(self, dev: Netdev) -> None:
        """``unlist_netdevice``: the device leaves the table."""
        del self.devices[dev.ifindex]

    def _check(self) -> None:
        """Assert the invariants: indexes match, ``lo`` is there, names are unique."""
        assert all(i == dev.ifindex and 0 < i <= _IFINDEX_MAX for i, dev in self.devices.items())
        assert self.devices[LOOPBACK_IFINDEX].name == "lo"
        assert len(self.names()) == len(self.devices), "two devices share a name"
        assert not any(dev.offloaded for dev in self.devices.values() if not dev.offload)
