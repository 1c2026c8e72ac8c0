"""SVG pictures: well-formed XML, the right structure, escaped text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import bpfns
from bpfns import Idr, Kernel, ObjType, ruler_svg, tree_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def test_tree_has_a_box_per_namespace_and_an_edge_per_child() -> None:
    k = Kernel()
    a = k.init_ns.create_child(name="child_a")
    b = k.init_ns.create_child(name="child_b")
    b.create_child(name="child_b_a")
    k.alloc_obj_id(b, "m", ObjType.MAP)
    root = parse(tree_svg(k.init_ns))
    boxes = root.findall(f"{SVG}g")
    assert sorted(int(g.get("data-inum", "0")) for g in boxes) == sorted(
        ns.inum for ns in k.namespaces()
    )
    assert len(root.findall(f"{SVG}line")) == 3
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "child_b : level 1" in texts
    assert "maps 1" in texts
    assert a.label() == "child_a"


def test_tree_escapes_user_text() -> None:
    k = Kernel()
    k.init_ns.create_child(name='<script>alert("x")<script> & co')
    svg = tree_svg(k.init_ns)
    assert "<script>" not in svg
    texts = [t.text for t in parse(svg).iter(f"{SVG}text")]
    assert '<script>alert("x")<script> & co : level 1' in texts


def cells(root: ET.Element) -> list[tuple[str, str]]:
    """(state, id or lo-hi) of every cell of a ruler, left to right."""
    out = []
    for r in root.iter(f"{SVG}rect"):
        cls = r.get("class", "").split()
        if cls[:1] == ["id"]:
            where = r.get("data-id") or f"{r.get('data-lo')}-{r.get('data-hi')}"
            out.append((cls[1], where))
    return out


def test_ruler_numbers_ids_from_the_range_start_and_marks_cursor_and_wrap() -> None:
    idr = Idr()
    for _ in range(5):
        idr.alloc_cyclic("x", 1, 8)  # 1..5
    idr.remove(2)
    root = parse(ruler_svg(idr, 8))
    assert cells(root) == [
        ("taken", "1"),
        ("passed", "2"),  # free, and the cursor passed it (no history: freed or burned)
        ("taken", "3"),
        ("taken", "4"),
        ("taken", "5"),
        ("never", "6"),
        ("never", "7"),
    ]
    (cursor,) = [e for e in root.iter() if e.get("class") == "cursor"]
    assert cursor.get("data-id") == "6"
    assert [e for e in root.iter() if e.get("class") == "wrap"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[:7] == ["1", "2", "3", "4", "5", "6", "7"]  # every cell is numbered
    assert "ids 1 .. 7" in texts and "wrap to 1" in texts and "cursor 6" in texts
    assert "ids 0 .. 7" not in texts  # id 0 is never drawn when the range starts at 1
    legend = [e.get("class") for e in root.iter() if "legend" in e.get("class", "")]
    assert legend == ["legend taken", "legend never", "legend passed"]
    assert "free, cursor passed" in texts
    from_3 = parse(ruler_svg(idr, 8, start=3))
    assert [c[1] for c in cells(from_3)] == ["3", "4", "5", "6", "7"]
    assert "wrap to 3" in [t.text for t in from_3.iter(f"{SVG}text")]


def test_ruler_with_a_history_tells_freed_burned_and_never_used_apart() -> None:
    k = Kernel(bpfns.FIXED, trace=True, id_end=6)
    child = k.init_ns.create_child(name="c")
    held = [k.alloc_obj_id(k.init_ns, n, ObjType.MAP) for n in "abcde"]  # level 0 full
    for _ in range(2):  # two rollbacks: the child's ids 1 and 2 are burned
        with pytest.raises(bpfns.BpfnsError, match="ENOSPC"):
            k.alloc_obj_id(child, "x", ObjType.MAP)
    k.free_obj_id(held[1], ObjType.MAP)  # level 0 id 2: freed
    kept = k.alloc_obj_id(child, "y", ObjType.MAP)  # child id 3, level 0 id 2 again
    k.free_obj_id(held[3], ObjType.MAP)  # level 0 id 4: freed
    init_history = bpfns.id_history(k.trace, k.init_ns, ObjType.MAP)
    child_history = bpfns.id_history(k.trace, child, ObjType.MAP)
    assert init_history == bpfns.IdHistory(freed=frozenset({4}))
    assert child_history == bpfns.IdHistory(burned=frozenset({1, 2}))
    child_ruler = parse(ruler_svg(child.idr[ObjType.MAP], 6, history=child_history))
    assert cells(child_ruler) == [
        ("burned", "1"),
        ("burned", "2"),
        ("taken", "3"),
        ("never", "4"),
        ("never", "5"),
    ]
    init_ruler = parse(ruler_svg(k.init_ns.idr[ObjType.MAP], 6, history=init_history))
    assert [c[0] for c in cells(init_ruler)] == ["taken", "taken", "taken", "freed", "taken"]
    desc = init_ruler.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "4 taken, 1 freed" in desc.text and "taken: 1-3, 5" in desc.text
    assert kept.nr() == 2
    with pytest.raises(ValueError, match="does not trace"):
        bpfns.id_history(k.trace, Kernel().init_ns, ObjType.MAP)
    assert bpfns.id_history(k.trace, "ns1", ObjType.MAP) == child_history  # by reference
    with pytest.raises(TypeError, match=r"history must be a bpfns\.IdHistory"):
        ruler_svg(child.idr[ObjType.MAP], 6, history={1: "burned"})  # type: ignore[arg-type]


def test_ruler_after_the_wrap_and_for_a_large_space() -> None:
    idr = Idr()
    idr.cursor = 9
    idr.alloc_cyclic("x", 1, 8)  # the cursor is past the end: wraps to 1
    root = parse(ruler_svg(idr, 8))
    (cursor,) = [e for e in root.iter() if e.get("class") == "cursor"]
    assert cursor.get("data-id") == "2"
    idr.cursor = 5000
    assert parse(ruler_svg(idr, 1000)).find(f"{SVG}polygon").get("data-id") == "1"  # type: ignore[union-attr]


def test_a_million_ids_compress_into_runs_and_stay_numbered() -> None:
    idr = Idr()
    for _ in range(40):
        idr.alloc_cyclic("x", 1, 10**6)
    for nr in range(1, 41, 3):
        idr.remove(nr)
    idr.cursor = 500_000
    root = parse(ruler_svg(idr, 10**6))
    shown = cells(root)
    assert len(shown) < 60  # not a million cells
    assert ("passed", "40-499999") in shown and ("never", "500000-999999") in shown
    taken = {int(c[1]) for c in shown if c[0] == "taken"}
    assert taken == set(idr.ids())  # short runs keep one cell per id
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "40-499999" in texts and "500000-999999" in texts  # the long runs are labelled
    assert "ids 1 .. 999999" in texts


@pytest.mark.parametrize(
    ("start", "end", "named"), [(1, 1, "ruler_svg"), (5, 3, "ruler_svg"), (-1, 3, "start")]
)
def test_ruler_rejects_what_it_cannot_draw(start: int, end: int, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ruler_svg(Idr(), end, start)


def test_tree_draws_links_and_one_object_at_every_level_of_its_chain() -> None:
    k = Kernel()
    host = k.init_task
    host.map_create()  # so that the numbers differ between levels
    b = host.clone(bpfns.CLONE_NEWBPF, ns_name="child_b")
    a = host.clone(bpfns.CLONE_NEWBPF, ns_name="child_a")
    bb = b.clone(bpfns.CLONE_NEWBPF, ns_name="child_b_b")
    b.map_create()
    fd = bb.map_create(name="mine")
    bb.link_create(bb.prog_load())
    assert bb.files is not None
    mine = bb.files.get(fd).obj
    for highlight in (mine, mine.obj_id, (ObjType.MAP, 3)):
        root = parse(tree_svg(k, highlight=highlight))
        boxes = {g.get("data-inum"): g for g in root.iter(f"{SVG}g")}
        badges = {
            inum: [t.text for t in g.iter(f"{SVG}text") if t.get("class") == "badge"]
            for inum, g in boxes.items()
        }
        expected = {e.ns.inum: e.nr for e in mine.obj_id.numbers}
        assert expected == {k.init_ns.inum: 3, b.bpf_ns.inum: 2, bb.bpf_ns.inum: 1}
        for inum, texts in badges.items():
            nr = expected.get(int(inum or 0))
            assert texts == ([] if nr is None else [f"map id {nr} here"])
        hidden = {int(i or 0) for i, g in boxes.items() if "hidden" in (g.get("class") or "")}
        assert hidden == {a.bpf_ns.inum}  # the only namespace that cannot see it
        desc = root.find(f"{SVG}desc")
        assert desc is not None and desc.text is not None
        assert "id 3 in init_bpf_ns, 2 in child_b, 1 in child_b_b" in desc.text
        assert "invisible in child_a" in desc.text
    texts = [t.text for t in parse(tree_svg(k.init_ns)).iter(f"{SVG}text")]
    assert "links 1" in texts and "progs 1" in texts and "maps 1 2 3" in texts


def test_tree_highlight_refuses_what_names_no_live_object() -> None:
    k = Kernel()
    oid = k.alloc_obj_id(k.init_ns, "m", ObjType.MAP)
    with pytest.raises(TypeError, match=r"pass an ObjId .* or a \(bpfns.ObjType, global id\)"):
        tree_svg(k, highlight="m")
    with pytest.raises(ValueError, match="no live prog has global id 1"):
        tree_svg(k, highlight=(ObjType.PROG, 1))
    with pytest.raises(TypeError, match="highlight"):
        tree_svg(k, highlight=("MAP", 1))
    k.free_obj_id(oid, ObjType.MAP)
    with pytest.raises(ValueError, match="was freed"):
        tree_svg(k, highlight=oid)
    with pytest.raises(TypeError, match=r"a bpfns\.Namespace or a bpfns\.Kernel"):
        tree_svg(42)


def test_a_subtree_highlights_an_object_by_its_global_id() -> None:
    k = Kernel()
    k.alloc_obj_id(k.init_ns, "host", ObjType.MAP)
    b = k.init_ns.create_child(name="b")
    mine = k.alloc_obj_id(b.create_child(name="bb"), "mine", ObjType.MAP)
    root = parse(tree_svg(b, highlight=(ObjType.MAP, 2)))  # the subtree under b
    badges = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "badge"]
    assert badges == ["map id 1 here", "map id 1 here"]  # b and bb; init is not drawn
    assert mine.nr() == 2
