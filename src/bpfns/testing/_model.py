"""The reference model: the same semantics as bpfns, written as plainly as possible.

Plain dicts of ids and an int cursor per (namespace, type), linear scans, explicit
reference counts. It shares no code with the simulator on purpose: :class:`BpfnsMachine`
compares the two at every step, so a bug has to be made twice, the same way, to hide.

It models the corrected design (FIXED): every id the model hands out is what a viewer
should see. Run against :data:`bpfns.RFC`, the machine reports where the posted patch
differs.
"""

from __future__ import annotations

import attrs

__all__ = ["ENOMEM", "ENOSPC", "RefModel", "RefNs", "RefObj"]

ENOSPC = "ENOSPC"
ENOMEM = "ENOMEM"
_INT_MAX = 0x7FFFFFFF
_TYPES = 3


@attrs.define(eq=False)
class RefNs:
    """A namespace: its parent, level, and per type a dict of ids and a cursor."""

    parent: RefNs | None
    level: int
    ids: list[dict[int, RefObj]] = attrs.field(factory=lambda: [{} for _ in range(_TYPES)])
    cursor: list[int] = attrs.field(factory=lambda: [0] * _TYPES)

    def chain(self) -> list[RefNs]:
        """This namespace and its ancestors, deepest first."""
        out: list[RefNs] = []
        ns: RefNs | None = self
        while ns is not None:
            out.append(ns)
            ns = ns.parent
        return out


@attrs.define(eq=False)
class RefObj:
    """A map, program or link: its number in each namespace that sees it, and its refs."""

    type: int
    numbers: list[tuple[RefNs, int]]  # deepest first
    refs: int = 1
    maps: list[RefObj] = attrs.field(factory=list)
    prog: RefObj | None = None
    #: False for a link between ``link_prime`` and ``settle``: lookups say EAGAIN.
    settled: bool = True


@attrs.define
class RefModel:
    """Ids and lifetimes, the simple way.

    ``end`` is the exclusive upper bound of object ids (``Kernel(id_end=...)``).
    """

    end: int
    pending: list[list[RefObj]] = attrs.field(factory=list)
    cache_levels: set[int] = attrs.field(factory=lambda: {0})

    def _take(self, ns: RefNs, t: int) -> int | None:
        """One level of cyclic allocation: lowest free id from the cursor, then wrap."""
        ids = ns.ids[t]
        first = ns.cursor[t]
        if first < 1 or first > _INT_MAX:
            first = 1
        for candidate in range(first, self.end):
            if candidate not in ids:
                return candidate
        if first > 1:
            for candidate in range(1, self.end):
                if candidate not in ids:
                    return candidate
        return None

    def create(self, ns: RefNs, t: int, fail_at: int = 0) -> RefObj | str:
        """Give a new object ids at every level, deepest first; or an error name.

        ``fail_at`` makes the n-th allocation of this call fail with ENOMEM (1 = the id
        record, 2 = the deepest level's IDR node, ...), as the kernel's order has them.
        """
        if fail_at == 1:
            return ENOMEM
        obj = RefObj(t, [])
        for step, level in enumerate(ns.chain(), start=2):
            nr = None if fail_at == step else self._take(level, t)
            if nr is None:
                for taken, got in obj.numbers:
                    del taken.ids[t][got]
                return ENOMEM if fail_at == step else ENOSPC
            level.ids[t][nr] = obj
            level.cursor[t] = nr + 1
            obj.numbers.append((level, nr))
        return obj

    def get(self, obj: RefObj) -> None:
        """Take a reference."""
        obj.refs += 1

    def put(self, obj: RefObj) -> list[RefObj]:
        """Drop a reference; returns the objects freed now (ids gone)."""
        obj.refs -= 1
        if obj.refs:
            return []
        for ns, nr in obj.numbers:
            del ns.ids[obj.type][nr]
        freed = [obj]
        if obj.maps:
            self.pending.append(obj.maps)
        if obj.prog is not None:
            freed += self.put(obj.prog)
        return freed

    def grace_period(self) -> list[RefObj]:
        """Run the RCU frees: programs release their maps."""
        batch, self.pending = self.pending, []
        freed: list[RefObj] = []
        for maps in batch:
            for m in maps:
                freed += self.put(m)
        return freed

    @staticmethod
    def vnr(obj: RefObj, viewer: RefNs) -> int:
        """The id ``viewer`` sees, 0 when the object is not in its subtree."""
        for ns, nr in obj.numbers:
            if ns is viewer:
                return nr
        return 0

    @staticmethod
    def listing(ns: RefNs, t: int, start: int, limit: int) -> list[int]:
        """GET_NEXT_ID from ``start``: the next ``limit`` ids above it, ascending."""
        return sorted(nr for nr in ns.ids[t] if nr > start)[:limit]
