"""SVG pictures: well-formed XML, the right structure, escaped text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

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


def test_ruler_marks_ids_cursor_and_wrap() -> None:
    idr = Idr()
    for _ in range(5):
        idr.alloc_cyclic("x", 1, 8)  # 1..5
    idr.remove(2)
    root = parse(ruler_svg(idr, 8))
    allocated = [
        int(r.get("data-id", "-1")) for r in root.iter() if "allocated" in r.get("class", "")
    ]
    assert allocated == [1, 3, 4, 5]
    free = [int(r.get("data-id", "-1")) for r in root.iter() if r.get("class") == "id free"]
    assert free == [0, 2, 6, 7]
    (cursor,) = [e for e in root.iter() if e.get("class") == "cursor"]
    assert cursor.get("data-id") == "6"
    assert [e for e in root.iter() if e.get("class") == "wrap"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ["ids 0 .. 7", "wrap to 1", "cursor 6"]
    assert "wrap to 3" in [t.text for t in parse(ruler_svg(idr, 8, start=3)).iter(f"{SVG}text")]


def test_ruler_after_the_wrap_and_for_a_large_space() -> None:
    idr = Idr()
    idr.cursor = 9
    idr.alloc_cyclic("x", 1, 8)  # the cursor is past the end: wraps to 1
    root = parse(ruler_svg(idr, 8))
    (cursor,) = [e for e in root.iter() if e.get("class") == "cursor"]
    assert cursor.get("data-id") == "2"
    wide = parse(ruler_svg(idr, 1000))
    assert not [e for e in wide.iter() if e.get("class") == "id free"]  # only allocated
    idr.cursor = 5000
    assert parse(ruler_svg(idr, 1000)).find(f"{SVG}polygon").get("data-id") == "1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("start", "end", "named"), [(1, 1, "ruler_svg"), (0, 5000, "end"), (-1, 3, "start")]
)
def test_ruler_rejects_what_it_cannot_draw(start: int, end: int, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ruler_svg(Idr(), end, start)
