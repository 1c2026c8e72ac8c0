"""The slab allocator model: kmem_cache objects with LIFO reuse and no zeroing.

What matters for the RFC's defects is what the C code finds in memory:

* ``kmem_cache_alloc`` returns the most recently freed object of its cache first (the
  per-CPU freelist is LIFO) and does **not** clear it, so an ``bpf_obj_id`` record
  starts with the ``numbers[]`` of its previous user (D1);
* ``kmem_cache_zalloc`` (namespaces) clears it;
* a freed object stays addressable: a stale pointer to it reads whatever the next user
  wrote (D2).

A :class:`Slot` is one object's memory; handles (:class:`bpfns.ObjId`,
:class:`bpfns.Namespace`) remember the slot and the generation they were allocated in,
which is how the sanitizer tells a live access from a use-after-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["KmemCache", "SlabObject", "Slot"]


class SlabObject(Protocol):
    """What :class:`KmemCache` needs of the objects it hands out."""

    addr: int

    @property
    def live(self) -> bool:
        """Whether the object is allocated."""

    def claim(self, owner: object) -> None:
        """Mark the object allocated to ``owner``."""

    def release(self) -> None:
        """Mark the object free (its contents stay)."""

    def zero(self) -> None:
        """Clear the payload (``kmem_cache_zalloc``)."""


class Slot:
    """The memory of one slab object with a plain payload.

    Attributes:
        addr: a fake address, unique within the Kernel.
        mem: the object's payload, ``size`` entries.
        level: the ``level`` field of a ``bpf_obj_id`` record.
        gen: how many times this memory has been allocated.
        live: whether it is allocated now.
        owner: the handle that allocated it last (live or not).
    """

    __slots__ = ("addr", "gen", "level", "live", "mem", "owner")

    def __init__(self, addr: int, size: int) -> None:
        self.addr = addr
        self.mem: list[Any] = [None] * size
        self.level = 0
        self.gen = 0
        self.live = False
        self.owner: object = None

    def claim(self, owner: object) -> None:
        """A new generation, allocated to ``owner``."""
        self.gen += 1
        self.live = True
        self.owner = owner

    def release(self) -> None:
        """Free; ``owner`` still names the last one."""
        self.live = False

    def zero(self) -> None:
        """Clear the payload."""
        self.mem[:] = [None] * len(self.mem)

    def __repr__(self) -> str:
        return f"<Slot {self.addr:#x} gen={self.gen} live={self.live}>"


S = TypeVar("S", bound=SlabObject)


class KmemCache(Generic[S]):
    """A ``struct kmem_cache`` of fixed-size objects.

    ``size`` is the number of payload entries per object; ``new`` builds an object's
    memory from ``(addr, size)`` (:class:`Slot` unless told otherwise). Allocation and
    free are O(1). ``bpf_alloc_obj_id`` and ``bpf_free_obj_id`` inline both (they pop
    and push :attr:`freelist` themselves).

    >>> addrs = iter(range(100))
    >>> cache = KmemCache("bpf_2", 2, lambda: next(addrs))
    >>> a = cache.alloc(owner="first"); a.mem[0] = "stale"
    >>> cache.free(a)
    >>> b = cache.alloc(owner="second")
    >>> b is a, b.mem[0], cache.active
    (True, 'stale', 1)
    """

    __slots__ = ("_freelist", "_new", "_next_addr", "name", "size", "strays", "total")

    def __init__(
        self,
        name: str,
        size: int,
        next_addr: Callable[[], int],
        new: Callable[[int, int], S] = Slot,  # type: ignore[assignment]
    ) -> None:
        self.name = name
        self.size = size
        self._next_addr = next_addr
        self._new = new
        self._freelist: list[S] = []
        #: how many objects were ever created
        self.total = 0
        #: addresses of free objects of *another* cache that a ``kmem_cache_free`` with
        #: the wrong cache pointer put on this one's free list (:meth:`free_stray`)
        self.strays: set[int] = set()

    def __repr__(self) -> str:
        return f"<KmemCache {self.name} size={self.size} active={self.active}>"

    @property
    def freelist(self) -> list[S]:
        """The free objects, the most recently freed last (:meth:`alloc` reuses it first).

        ``bpf_alloc_obj_id``'s fast form pops a record from it and ``bpf_free_obj_id``'s
        pushes one back, doing exactly what :meth:`alloc` and :meth:`free` do (the
        record's ``owner`` is its ``live`` flag).
        """
        return self._freelist

    @property
    def active(self) -> int:
        """How many objects are allocated now."""
        return self.total - len(self._freelist)

    def alloc(self, owner: object, *, zero: bool = False) -> S:
        """``kmem_cache_alloc`` (or ``kmem_cache_zalloc`` with ``zero=True``)."""
        if self._freelist:
            slot = self._freelist.pop()
            if self.strays:
                self.strays.discard(slot.addr)
            if zero:
                slot.zero()
        else:
            slot = self._new(self._next_addr(), self.size)
            self.total += 1
        slot.claim(owner)
        return slot

    def free(self, slot: S) -> None:
        """``kmem_cache_free``: the memory keeps its contents and is reused first."""
        assert slot.live, f"double free of {self.name} object at {slot.addr:#x}"
        slot.release()
        self._freelist.append(slot)

    def free_stray(self, slot: S) -> None:
        """``kmem_cache_free(this, slot)`` for an object of another cache.

        Without ``CONFIG_SLAB_FREELIST_HARDENED`` nothing checks: the object joins this
        cache's free list (and a later :meth:`alloc` hands it out at this cache's size).
        """
        self.free(slot)
        self.strays.add(slot.addr)

    def _check(self) -> None:
        """Assert the internal invariants."""
        assert self.strays <= {slot.addr for slot in self._freelist}, "a stray is not free"
        assert 0 <= self.active <= self.total
        assert not any(slot.live for slot in self._freelist)
        assert len({id(slot) for slot in self._freelist}) == len(self._freelist)
