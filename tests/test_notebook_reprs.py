"""Notebook and IPython reprs: parseable HTML, escaped text, a plain-text fallback."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from bpfns import CLONE_NEWBPF, FIXED, Idr, Kernel, ObjType


class Printer:
    """The part of IPython's RepresentationPrinter that the reprs use."""

    def __init__(self) -> None:
        self.out = ""

    def text(self, s: str) -> None:
        self.out += s


def pretty(obj: Any, cycle: bool = False) -> str:
    p = Printer()
    obj._repr_pretty_(p, cycle)
    return p.out


def html(obj: Any) -> ET.Element:
    return ET.fromstring(obj._repr_html_())


def world() -> tuple[Kernel, Any]:
    k = Kernel()
    evil = k.init_ns.create_child(name="<b>&evil<b>")
    k.alloc_obj_id(evil, "m", ObjType.MAP)
    return k, evil


def test_namespace_html_is_a_tree_with_a_text_fallback() -> None:
    k, evil = world()
    root = html(k.init_ns)
    items = root.findall(".//li")
    assert [li.get("data-inum") for li in items] == [str(k.init_ns.inum), str(evil.inum)]
    codes = [c.text for c in root.iter("code")]
    assert codes[1] == "<b>&evil<b> : level = 1  (maps 1)"  # escaped, then parsed back
    (pre,) = root.iter("pre")
    assert pre.text == k.init_ns.tree()
    # A trusted notebook hides the text picture of this tree (and nothing else) with
    # CSS; an untrusted one strips <style> and shows it.
    (style,) = root.iter("style")
    assert style.text == ".bpfns-tree > .bpfns-text {display: none}"
    assert pre.get("class") == "bpfns-text" and root.get("class") == "bpfns-tree"
    assert "<b>" not in k.init_ns._repr_html_()
    assert pretty(k.init_ns) == k.init_ns.tree()
    assert pretty(k.init_ns, cycle=True) == repr(k.init_ns)


def test_kernel_reprs() -> None:
    k, _ = world()
    root = html(k)
    assert root.get("class") == "bpfns-kernel"
    assert root.find("p/code").text == repr(k)  # type: ignore[union-attr]
    assert pretty(k).splitlines()[0] == repr(k)
    assert pretty(k, cycle=True) == repr(k)


def test_obj_id_reprs() -> None:
    k, evil = world()
    oid = k.alloc_obj_id(evil, "x", ObjType.PROG)
    cells = [[td.text for td in tr] for tr in html(oid).iter("tr")]
    assert cells == [
        ["level", "namespace", "id"],
        ["0", "init_bpf_ns", "1"],
        ["1", "<b>&evil<b>", "1"],
    ]
    assert pretty(oid) == oid.table()
    k.free_obj_id(oid, ObjType.PROG)
    assert oid._repr_html_() == "&lt;ObjId PROG freed&gt;"
    assert pretty(oid) == "<ObjId PROG freed>"


def test_task_reprs() -> None:
    k = Kernel(FIXED)
    t = k.init_task.clone(CLONE_NEWBPF, name="<t>")
    t.map_create(name="m")
    root = html(t)
    assert root.find("p/code").text == repr(t)  # type: ignore[union-attr]
    assert [td.text for td in root.iter("td")][:2] == ["0", "bpf-map"]
    lines = pretty(t).splitlines()
    assert lines == [repr(t), "  fd 0: bpf-map <BpfMap 'm' id=1 refcnt=1>"]
    assert pretty(t, cycle=True) == repr(t)
    t.exit()
    assert [td.text for td in html(t).iter("td")] == []


def test_idr_reprs() -> None:
    idr = Idr()
    for _ in range(3):
        idr.alloc_cyclic("x", 1, 100)
    root = html(idr)
    assert root.find("pre").text == repr(idr)  # type: ignore[union-attr]
    assert root.find("{http://www.w3.org/2000/svg}svg") is not None
    assert pretty(idr) == repr(idr)
    idr.cursor = 70
    ruler = html(idr).find("{http://www.w3.org/2000/svg}svg")
    assert ruler is not None
    # The ruler reaches past the cursor: ids 1 .. 70 (the range starts where ids do).
    assert "of 70 ids" in (ruler.find("{http://www.w3.org/2000/svg}title").text or "")  # type: ignore[union-attr]
