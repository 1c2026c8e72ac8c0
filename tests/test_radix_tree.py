"""The fast structures of issue 7 at their edges: tag cascades, the armed leaf, id records.

The Idr and Ida conformance and property tests cover the behaviour; these tests reach
the corners that random small id spaces do not: a full tag node, the top of the tag
tree, a slot taken behind the cursor's back, a record read and written as memory.
"""

from __future__ import annotations

import pytest

from bpfns import Idr, Kernel, ObjIdEntry, ObjType
from bpfns._radix_tree import _NODE_ALL, FREE, IdBitmap, LeafTags

MAP = ObjType.MAP


def test_leaf_tags_cascade_through_every_level_and_back() -> None:
    tags = LeafTags()
    for nodes in tags._levels:  # every leaf below 2**32 full but leaf 0 (made up)
        nodes[0] = _NODE_ALL ^ 1
    tags.add(0)
    assert all(nodes[0] == _NODE_ALL for nodes in tags._levels)
    assert tags.next_absent(0) == 1 << 32  # nothing free below 2**32
    tags.discard(0)
    assert all(nodes[0] == _NODE_ALL ^ 1 for nodes in tags._levels)
    assert tags.next_absent(0) == 0
    assert repr(LeafTags()) == "<LeafTags []>"


def test_a_full_tag_node_is_tagged_one_level_up_and_untagged_on_remove() -> None:
    idr = Idr._with_leaf_shift(0)  # one id per leaf: 256 ids fill a tag node
    assert [idr.alloc(i, 0, 0) for i in range(257)] == list(range(257))
    tags = idr._bits._full_leaves
    assert tags._levels[1] == {0: 1} and tags.runs() == [(0, 256)]
    assert idr.remove(7) == 7
    assert tags._levels[1] == {} and tags.next_absent(0) == 7
    idr._check()
    assert idr.alloc("again", 0, 0) == 7
    idr._check()


def test_tree_repr() -> None:
    bits = IdBitmap(shift=2)
    bits.take(0, 10, None)
    assert repr(bits) == "<IdBitmap shift=2 ids=1 cursor=0>"
    assert bits.get(1) is FREE


def test_an_id_taken_behind_the_cursors_back_is_skipped() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    k.alloc_obj_id(ns, "a", MAP)  # ids 1 and 1; both cursors at 2, in an armed leaf
    ns.idr[MAP].alloc("x", 2, 3)  # idr_alloc, not cyclic: takes the cursor's slot
    b = k.alloc_obj_id(ns, "b", MAP)
    assert b.numbers == (ObjIdEntry(2, k.init_ns), ObjIdEntry(3, ns))
    assert ns.idr[MAP].cursor == 4
    ns.idr[MAP]._check()


def test_freeing_an_id_below_the_armed_leaf() -> None:
    k = Kernel()
    first = k.alloc_obj_id(k.init_ns, "first", MAP)
    rest = [k.alloc_obj_id(k.init_ns, i, MAP) for i in range(300)]  # the cursor: leaf 1
    k.free_obj_id(first, MAP)
    idr = k.init_ns.idr[MAP]
    assert 1 not in idr and len(idr) == len(rest)
    idr._check()


def test_free_accepts_the_type_as_an_int() -> None:
    k = Kernel()
    oid = k.alloc_obj_id(k.init_ns, "m", MAP)
    k.free_obj_id(oid, 0)  # type: ignore[arg-type]
    assert not oid.live


def test_a_record_is_memory_read_and_written_as_numbers() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    oid = k.alloc_obj_id(ns, "m", MAP)
    rec = oid._slot
    assert rec.kernel is k and "live=True" in repr(rec)
    assert len(rec.mem) == 2
    assert list(rec.mem) == [ObjIdEntry(1, k.init_ns), ObjIdEntry(1, ns)]
    assert rec.mem[1:] == [ObjIdEntry(1, ns)]
    with pytest.raises(IndexError, match=r"levels 0\.\.1"):
        rec.mem[2]
    k.free_obj_id(oid, MAP)
    assert rec.nss is ns.path  # shared with the namespace until written
    rec.mem[1] = None  # copies the shared chain first
    rec.mem[0] = None
    assert list(rec.mem) == [None, None] and ns.path == (ns, k.init_ns)
    rec.zero()
    assert rec.nrs == [None, None] and "live=False" in repr(rec)


def test_slab_reprs() -> None:
    k = Kernel()
    ns = k.init_ns.create_child()
    assert repr(k.ns_cache) == "<KmemCache bpf_namespace size=0 active=1>"
    assert ns._slot is not None and repr(ns._slot).endswith("gen=1 live=True>")


def test_an_int_subclass_is_a_c_int() -> None:
    idr = Idr()
    assert idr.alloc("x", ObjType.PROG, 0) == 1  # an IntEnum member is an int
    idr._check()


def test_a_search_hops_over_a_full_armed_leaf() -> None:
    idr = Idr._with_leaf_shift(2)  # leaves of 4 ids
    assert [idr.alloc("a", 0, 0) for _ in range(4)] == [0, 1, 2, 3]  # leaf 0 full
    idr.cursor = 4
    assert [idr.alloc_cyclic("b", 1, 100) for _ in range(4)] == [4, 5, 6, 7]
    assert idr._bits._cur_k == 1  # leaf 1 armed, and full: it has no full tag
    assert idr.alloc("c", 0, 0) == 8
    idr._check()


def test_a_search_from_inside_the_armed_leaf_past_its_last_free_slot() -> None:
    """The armed leaf has free slots only below ``lo``: the search moves to the next leaf."""
    idr = Idr._with_leaf_shift(2)  # leaves of 4 ids: [0, 3], [4, 7], ...
    for _ in range(3):
        idr.alloc_cyclic("x", 1, 100)  # 1, 2, 3: the cursor's leaf [0, 3] is armed
    assert idr._bits._cur is not None and idr._bits._cur_base == 0
    assert idr.alloc("y", 1, 0) == 4  # id 0 is free, but below start
    assert idr.alloc("z", 0, 0) == 0
    idr._check()
