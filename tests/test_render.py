"""Text rendering of the namespace tree and of an object's ids."""

from __future__ import annotations

from bpfns import Kernel, ObjType


def test_tree_lists_children_and_ids() -> None:
    k = Kernel()
    a = k.init_ns.create_child(name="a")
    b = a.create_child(name="b")
    k.alloc_obj_id(b, "m", ObjType.MAP)
    k.alloc_obj_id(b, "p", ObjType.PROG)
    k.alloc_obj_id(b, "p2", ObjType.PROG)
    assert k.init_ns.tree().splitlines() == [
        "init_bpf_ns : level = 0  [bpf:[4026531833]]  maps 1; progs 1 2",
        "    a : level = 1  [bpf:[4026531840], refcount 2]  maps 1; progs 1 2",
        "        b : level = 2  [bpf:[4026531841], refcount 1]  maps 1; progs 1 2",
    ]
    assert a.tree().splitlines()[0].startswith("a : level = 1")


def test_obj_id_table() -> None:
    k = Kernel()
    k.alloc_obj_id(k.init_ns, "host", ObjType.LINK)
    long_name = k.init_ns.create_child(name="a rather long name")
    oid = k.alloc_obj_id(long_name, "l", ObjType.LINK)
    assert oid.table().splitlines() == [
        "level  namespace           id",
        "    0  init_bpf_ns          2",
        "    1  a rather long name   1",
    ]
