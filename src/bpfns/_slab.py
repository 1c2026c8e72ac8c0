"""The slab allocator model: kmem_cache objects with LIFO reuse and no zeroing.

What matters for the RFC's defects is what the C code finds in memory:

* ``kmem_cache_alloc`` returns the most recently freed object of its cache first (the
  per-CPU freelist is LIFO) and does **not** clear it, so an ``bpf_obj_id`` record
  starts with the ``numbers[]`` of its previous user (D1, rfc.md section 3);
* ``kmem_cache_zalloc`` (namespaces) clears it;
* a freed object stays addressable: a stale pointer to it reads whatever the next user
  wrote (D2).

A :class:`Slot` is one object's memory; handles (:class:`bpfns.ObjId`,
:class:`bpfns.Namespace`) remember the slot and the generation they were allocated in,
which is how the sanitizer tells a live access from a use-after-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["KmemCache", "Slot"]


@attrs.define(eq=False)
class Slot:
    """The memory of one slab object.

    Attributes:
        addr: a fake address, unique within the Kernel.
        mem: the object's payload (for ``bpf_obj_id``: the ``numbers[]`` array).
        level: the ``level`` field of a ``bpf_obj_id`` record.
        gen: how many times this memory has been allocated.
        live: whether it is allocated now.
        owner: the handle that allocated it last (live or not).
    """

    addr: int
    mem: list[Any]
    level: int = 0
    gen: int = 0
    live: bool = False
    owner: object = None


@attrs.define(eq=False)
class KmemCache:
    """A ``struct kmem_cache`` of fixed-size objects.

    ``size`` is the number of payload entries per object. Allocation and free are O(1).

    >>> addrs = iter(range(100))
    >>> cache = KmemCache("bpf_2", 2, lambda: next(addrs))
    >>> a = cache.alloc(owner="first"); a.mem[0] = "stale"
    >>> cache.free(a)
    >>> b = cache.alloc(owner="second")
    >>> b is a, b.mem[0], cache.active
    (True, 'stale', 1)
    """

    name: str
    size: int
    _next_addr: Callable[[], int] = attrs.field(repr=False)
    _freelist: list[Slot] = attrs.field(factory=list, repr=False)
    active: int = 0
    total: int = 0

    def alloc(self, owner: object, *, zero: bool = False) -> Slot:
        """``kmem_cache_alloc`` (or ``kmem_cache_zalloc`` with ``zero=True``)."""
        if self._freelist:
            slot = self._freelist.pop()
            if zero:
                slot.mem[:] = [None] * self.size
        else:
            slot = Slot(self._next_addr(), [None] * self.size)
            self.total += 1
        slot.gen += 1
        slot.live = True
        slot.owner = owner
        self.active += 1
        return slot

    def free(self, slot: Slot) -> None:
        """``kmem_cache_free``: the memory keeps its contents and is reused first."""
        assert slot.live, f"double free of {self.name} object at {slot.addr:#x}"
        slot.live = False
        self.active -= 1
        self._freelist.append(slot)

    def _check(self) -> None:
        """Assert the internal invariants."""
        assert self.active + len(self._freelist) == self.total
        assert not any(slot.live for slot in self._freelist)
        assert len({id(slot) for slot in self._freelist}) == len(self._freelist)
