"""The HTML and SVG output in a real browser (headless Chromium, where installed).

CI machines need not have a browser: the test skips there. On a machine with Debian's
``chromium`` package it renders the notebook reprs and the SVG pictures and reads back,
from the browser itself, what a reader would see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import bpfns
from bpfns import CLONE_NEWBPF, Kernel, ObjType, ruler_svg, tree_svg
from bpfns._cli import build_seed_world

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

# CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
pytestmark = pytest.mark.skipif(
    BROWSER is None and not os.environ.get("CI"),
    reason="no chromium on this machine (Debian: apt-get install chromium)",
)

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
    assert BROWSER is not None, "no chromium: .ci/run installs it (apt-get install chromium)"
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


LEGIBILITY = """
<script>
const svgs = [...document.querySelectorAll("svg")];
document.getElementById("out").textContent = JSON.stringify({
  widths: svgs.map((s) => s.getBoundingClientRect().width),
  smallest: Math.min(...svgs.flatMap((s) => [...s.querySelectorAll("text")].map(
    (t) => parseFloat(t.getAttribute("font-size")) * t.getScreenCTM().a))),
  labels: svgs.map((s) => s.getAttribute("aria-label")),
  descs: svgs.map((s) => (s.querySelector("desc") || {}).textContent || ""),
});
</script>
"""


def dump(tmp_path: Path, page_html: str, name: str = "page.html", fragment: str = "") -> str:
    page = tmp_path / name
    page.write_text(page_html)
    assert BROWSER is not None, "no chromium: .ci/run installs it (apt-get install chromium)"
    done = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=900,1200",
            "--dump-dom",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def probed(dom: str) -> dict[str, object]:
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found is not None, dom[-2000:]
    result: dict[str, object] = json.loads(
        found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    )
    return result


def test_pictures_are_legible_at_notebook_width_and_say_what_they_show(tmp_path: Path) -> None:
    k = Kernel(trace=True, id_end=12)
    tasks = build_seed_world(k)
    fd = tasks["child_b_b"].map_create(name="mine")
    files = tasks["child_b_b"].files
    assert files is not None
    mine = files.get(fd).obj
    body = (
        tree_svg(k, highlight=mine)
        + ruler_svg(k.init_ns.idr[ObjType.MAP], 12)
        + ruler_svg(k.init_ns.idr[ObjType.MAP], 10**6)
    )
    # A notebook's output area: about 860 px wide.
    seen = probed(
        dump(
            tmp_path,
            f"<!doctype html><meta charset=utf-8><body style='width:860px'>"
            f"{body}<pre id=out></pre>{LEGIBILITY}",
        )
    )
    widths = seen["widths"]
    assert isinstance(widths, list) and all(w <= 860 for w in widths)
    smallest = seen["smallest"]
    assert isinstance(smallest, float | int) and smallest >= 12  # px, as the reader sees it
    labels, descs = seen["labels"], seen["descs"]
    assert isinstance(labels, list) and isinstance(descs, list)
    assert all(labels) and all(descs)  # every picture has a text alternative
    assert "1 in child_b_b" in descs[0] and "invisible in child_a" in descs[0]


VIEWER_PROBE = """
<script>
const shown = () => ({
  where: document.getElementById("where").textContent,
  call: document.getElementById("call").textContent,
  events: [...document.querySelectorAll("#events li")].map((li) => li.textContent),
  boxes: [...document.querySelectorAll("#tree g.ns")].map((g) =>
    [...g.querySelectorAll("text")].map((t) => t.textContent)),
  rulers: document.querySelectorAll("#rulers svg").length,
  focus: document.getElementById("focus").textContent,
});
const first = shown();
bpfnsShow(STEP);
const at = shown();
document.getElementById("next").click();
const next = shown();
document.body.insertAdjacentHTML("beforeend", "<pre id=out></pre>");
document.getElementById("out").textContent = JSON.stringify({first, at, next});
</script>
"""


def _boxes_of(world: Kernel) -> list[list[str]]:
    """What each namespace box of the viewer's tree must say at this step."""
    out = []
    for ns in world.namespaces():
        rows = [f"{ns.label()} : level {ns.level}"]
        for type_ in (ObjType.MAP, ObjType.PROG, ObjType.LINK):
            ids = " ".join(str(nr) for nr, _ in list(ns.idr[type_])[:8]) or "-"
            rows.append(f"{type_.name.lower()}s {ids}")
        out.append(rows)
    return sorted(out)


def test_the_viewer_in_a_browser_shows_what_replay_rebuilds(tmp_path: Path) -> None:
    k = Kernel(trace=True, id_end=8)
    build_seed_world(k)
    trace = k.trace
    page = bpfns.view(trace).html
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # no network
    assert trace.steps >= 3
    for step in (0, trace.steps // 2, trace.steps - 1):
        dom = dump(
            tmp_path, page.replace("</body>", VIEWER_PROBE.replace("STEP", str(step)) + "</body>")
        )
        seen = probed(dom)
        at, nxt = seen["at"], seen["next"]
        assert isinstance(at, dict) and isinstance(nxt, dict)
        assert at["where"] == f"step {step} of {trace.steps}"
        boxes = [[t for t in box if not t.endswith(" here")] for box in at["boxes"]]
        assert sorted(boxes) == _boxes_of(bpfns.replay(trace, until=step))
        assert at["rulers"] == 3
        assert nxt["where"] == f"step {step + 1} of {trace.steps}"
        after = [[t for t in box if not t.endswith(" here")] for box in nxt["boxes"]]
        assert sorted(after) == _boxes_of(bpfns.replay(trace, until=step + 1))
        call = trace.calls()[step]  # the call of step + 1
        assert f".{call.op}(" in str(nxt["call"])
    # The address picks the step too: #step=N.
    dom = dump(
        tmp_path,
        page.replace("</body>", VIEWER_PROBE.replace("STEP", "window.bpfnsStep") + "</body>"),
        fragment=f"#step={trace.steps - 1}",
    )
    first = probed(dom)["first"]
    assert isinstance(first, dict) and first["where"] == f"step {trace.steps - 1} of {trace.steps}"


def test_a_traced_allocation_in_the_viewer_shows_every_level_and_its_cursor(
    tmp_path: Path,
) -> None:
    k = Kernel(trace=True)
    k.init_ns.create_child(name="b").create_child(name="bb")
    bb = k.namespaces()[-1]
    k.alloc_obj_id(k.init_ns, "host", ObjType.MAP)
    k.alloc_obj_id(bb, "mine", ObjType.MAP)
    page = bpfns.view(k.trace).html
    seen = probed(
        dump(tmp_path, page.replace("</body>", VIEWER_PROBE.replace("STEP", "4") + "</body>"))
    )
    at = seen["at"]
    assert isinstance(at, dict)
    assert at["events"][:3] == [
        "map id 1 at level 2 (bb): cursor 0 -> 2",
        "map id 1 at level 1 (b): cursor 0 -> 2",
        "map id 2 at level 0 (init_bpf_ns): cursor 2 -> 3",
    ]
    assert at["focus"] == "bb (level 2)"
    badges = [t for box in at["boxes"] for t in box if t.endswith(" here")]
    assert sorted(badges) == ["map id 1 here", "map id 1 here", "map id 2 here"]
