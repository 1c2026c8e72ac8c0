"""The HTML and SVG output in a real browser (headless Chromium, where installed).

CI machines need not have a browser: the test skips there. On a machine with Debian's
``chromium`` package it renders the notebook reprs and the SVG pictures and reads back,
from the browser itself, what a reader would see.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfns import CLONE_NEWBPF, Kernel, ObjType, ruler_svg, tree_svg

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine")

PROBE = """
<script>
const q = (s) => document.querySelector(s);
const box = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
document.getElementById("out").textContent = JSON.stringify({
  fallback: getComputedStyle(q(".bpfns-tree > .bpfns-text")).display,
  tree_items: document.querySelectorAll(".bpfns-tree li").length,
  labels: [...document.querySelectorAll(".bpfns-tree code")].map((c) => c.textContent),
  svg_boxes: [...document.querySelectorAll("svg")].map(box),
  svg_texts: [...document.querySelectorAll("svg text")].map((t) => t.textContent),
  objid_rows: document.querySelectorAll(".bpfns-objid tr").length,
});
</script>
"""


def render(tmp_path: Path, body: str) -> dict[str, object]:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><body>{body}<pre id=out></pre>{PROBE}")
    assert BROWSER is not None
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, flags=re.DOTALL)
    assert found is not None, done.stdout[-2000:]
    result: dict[str, object] = json.loads(
        found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    )
    return result


def test_reprs_and_pictures_in_a_browser(tmp_path: Path) -> None:
    k = Kernel(id_end=8)
    ctr = k.init_task.clone(CLONE_NEWBPF, ns_name="<ctr & co>")
    fd = ctr.map_create(name="m")
    assert ctr.files is not None
    obj_id = ctr.files.get(fd).obj.obj_id
    seen = render(
        tmp_path,
        k._repr_html_()
        + obj_id._repr_html_()
        + tree_svg(k.init_ns)
        + ruler_svg(k.init_ns.idr[ObjType.MAP], 8),
    )
    assert seen["fallback"] == "none"  # the text picture is hidden where CSS applies
    assert seen["tree_items"] == 2
    assert seen["labels"] == [
        "init_bpf_ns : level = 0  (maps 1)",
        "<ctr & co> : level = 1  (maps 1)",
    ]
    assert seen["objid_rows"] == 3  # a header and two levels
    boxes = seen["svg_boxes"]
    assert isinstance(boxes, list) and len(boxes) == 2
    assert all(w > 100 and h > 40 for w, h in boxes)
    texts = seen["svg_texts"]
    assert isinstance(texts, list)
    assert "<ctr & co> : level 1" in texts and "cursor 2" in texts and "wrap to 1" in texts
