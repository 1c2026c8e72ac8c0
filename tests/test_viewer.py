"""The step-through viewer without a browser: its data, its notebook form, its limits.

tests/test_browser.py drives the page itself in headless Chromium.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import attrs
import pytest

import bpfns
from bpfns import Kernel, ObjType


def data_of(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="bpfns-data">(.*?)</script>', page)
    assert found is not None
    result: dict[str, object] = json.loads(found.group(1))
    return result


def traced(steps: int) -> Kernel:
    k = Kernel(trace=True)
    child = k.init_ns.create_child(name="<c>")
    for i in range(steps - 1):
        k.alloc_obj_id(child, f"m{i}", ObjType.MAP)
    return k


def test_every_step_is_drawn_and_pictures_are_stored_once() -> None:
    k = traced(6)
    page = bpfns.view(k.trace)
    assert (page.steps, page.truncated) == (6, False)
    data = data_of(page.html)
    steps = data["steps"]
    assert isinstance(steps, list)
    assert [s["step"] for s in steps] == list(range(7))
    pictures = data["pictures"]
    assert isinstance(pictures, list) and len(pictures) == len(set(pictures))
    assert steps[2]["call"] == "kernel0.alloc_obj_id(<c>, 'm0', MAP)"
    assert steps[2]["events"][-1] == "-> oid0"
    assert steps[2]["focus"] == "<c> (level 1)"
    assert "<c>" not in page.html.split('id="bpfns-data">', 1)[1].split("</script>")[0]


def test_a_failed_call_and_a_rollback_are_shown() -> None:
    k = Kernel(bpfns.FIXED, trace=True, id_end=2)
    child = k.init_ns.create_child(name="c")
    k.alloc_obj_id(k.init_ns, "full", ObjType.MAP)
    with pytest.raises(bpfns.BpfnsError):
        k.alloc_obj_id(child, "x", ObjType.MAP)
    steps = data_of(bpfns.view(k.trace).html)["steps"]
    assert isinstance(steps, list)
    assert steps[3]["events"] == [
        "map id 1 at level 1 (c): cursor 0 -> 2",
        "rollback: level 0 failed with ENOSPC",
        "map id 1 removed at level 1 (c)",
        "-> ENOSPC",
    ]


def test_limit_truncates_and_says_so(tmp_path: Path) -> None:
    k = traced(8)
    path = tmp_path / "t.jsonl"
    k.trace.to_jsonl(path)
    page = bpfns.view(path, limit=3)
    assert (page.steps, page.truncated) == (3, True)
    assert "pass a larger <code>limit</code>" in page.html
    saved = page.save(tmp_path / "v.html")
    assert saved.read_text(encoding="utf-8") == page.html
    with pytest.raises(ValueError, match="limit"):
        bpfns.view(path, limit=0)
    with pytest.raises(TypeError, match=r"a bpfns\.Trace or a path"):
        bpfns.view(42)  # type: ignore[arg-type]


def test_notebooks_get_the_viewer_for_traces_longer_than_a_few_steps() -> None:
    short, long = traced(3), traced(bpfns._trace.VIEW_FROM + 2)
    assert short.trace._repr_html_().startswith('<div class="bpfns-trace"><table>')
    frame = long.trace._repr_html_()
    assert frame.startswith('<iframe class="bpfns-view"')
    srcdoc = unescape(re.search(r'srcdoc="(.*?)"', frame, flags=re.DOTALL).group(1))  # type: ignore[union-attr]
    assert srcdoc == bpfns.view(long.trace).html
    assert repr(bpfns.view(long.trace)) == f"TraceView(steps={long.trace.steps}, truncated=False)"
    # A trace that does not replay (edited by hand) is shown as its table.
    broken = bpfns.Trace(list(long.trace.events))
    i = next(n for n, e in enumerate(broken.events) if isinstance(e, bpfns.IdAlloc))
    event = broken.events[i]
    assert isinstance(event, bpfns.IdAlloc)
    broken.events[i] = attrs.evolve(event, nr=99)
    assert broken._repr_html_().startswith('<div class="bpfns-trace"><table>')


def test_a_step_that_touches_a_freed_namespace_focuses_on_a_live_one() -> None:
    # D2, recorded: the free walks a namespace that is already gone.
    k = Kernel(trace=True, on_bug="record")
    child = k.init_ns.create_child(name="gone")
    record = k.alloc_obj_id(child, "m", ObjType.MAP)
    child.put()
    k.synchronize_rcu()
    k.free_obj_id(record, ObjType.MAP)
    steps = data_of(bpfns.view(k.trace).html)["steps"]
    assert isinstance(steps, list)
    assert steps[-1]["events"][0] == "map id 1 removed at level 1 (gone)"
    assert steps[-1]["focus"] == "init_bpf_ns (level 0)"
    assert k.tainted
