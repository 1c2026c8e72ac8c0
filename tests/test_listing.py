"""render_listing: bpftool-like output of what one namespace sees."""

from __future__ import annotations

from bpfns import CLONE_NEWBPF, FIXED, Kernel, ObjType
from bpfns._render import render_listing


def test_ids_are_the_viewers_and_invisible_maps_are_zero() -> None:
    k = Kernel(FIXED)
    host = k.init_task
    ctr = host.clone(CLONE_NEWBPF, ns_name="ctr")
    host_map = host.map_create(name="hostmap", key_size=8, max_entries=4)
    passed = host.send_fd(host_map, ctr)  # the container holds the host's map
    own = ctr.map_create(name="own")
    ctr.prog_load(name="p", maps=(passed, own))
    out = render_listing(ctr.bpf_ns).splitlines()
    assert out == [
        "map show",
        "1: array  name own  flags 0x0  # id 2 in init_bpf_ns",
        "    key 4B  value 4B  max_entries 1",
        "prog show",
        "1: kprobe  name p  # id 1 in init_bpf_ns",
        "    map_ids 0,1",  # the host map has no id in ctr
        "link show",
    ]
    assert "    key 8B  value 4B  max_entries 4" in render_listing(k.init_ns)
    assert "    map_ids 1,2" in render_listing(k.init_ns)


def test_payloads_of_alloc_obj_id_show_their_repr() -> None:
    k = Kernel()
    child = k.init_ns.create_child(name="c")
    k.alloc_obj_id(child, "a raw id", ObjType.LINK)
    assert render_listing(child).splitlines()[-1] == "1: 'a raw id'  # id 1 in init_bpf_ns"
    assert render_listing(k.init_ns).splitlines()[-1] == "1: 'a raw id'"
