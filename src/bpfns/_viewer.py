"""The step-through viewer: a trace as one self-contained, interactive HTML page.

:func:`view` replays a trace step by step (:func:`bpfns.replay_steps`) and, at each
step, draws what the world is then: the namespace tree with its ids (the object the
step allocated highlighted at every level of its chain), the call and what the kernel
did during it (every id, level by level, with the IDR cursor before and after), and
the id rulers of the namespace in focus (the one the step touched), with freed and
burned ids told apart by the trace (:func:`bpfns.id_history`).

The page needs no server, no network and no CDN: the pictures are inline SVG, the
steps one JSON document, and a few lines of JavaScript move between them (a slider,
step buttons, the arrow keys, and ``#step=N`` in the address). In a notebook,
:class:`TraceView` displays itself in an ``<iframe>`` that holds the page;
:attr:`TraceView.html` is the page itself (``bpfns show TRACE --html OUT.html``).
Pictures that repeat from one step to the next are stored once.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

import attrs

from ._args import check_int
from ._bpf_namespace import Namespace, ObjType
from ._obj_id import ObjId
from ._replay import replay_steps
from ._svg import id_history, ruler_svg, tree_svg
from ._trace import Enter, Event, IdAlloc, IdFree, NsCreated, Return, Rollback, Trace

__all__ = ["TraceView", "view"]

_TYPES = (ObjType.MAP, ObjType.PROG, ObjType.LINK)


@attrs.frozen
class TraceView:
    """The viewer of one trace (:func:`view`): the page, and how many steps it shows.

    Attributes:
        html: the self-contained HTML page.
        steps: the last step the page shows (0 is the new kernel).
        truncated: whether the trace has more steps than were drawn.
    """

    html: str = attrs.field(repr=False)
    steps: int
    truncated: bool = False

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (UTF-8) and return the path.

        Raises:
            TypeError: if ``path`` is not a file name.
            OSError: if the file cannot be written.

        >>> import pathlib, tempfile
        >>> from bpfns import Kernel
        >>> k = Kernel(trace=True)
        >>> _ = k.init_ns.create_child(name="c")
        >>> out = view(k.trace).save(pathlib.Path(tempfile.mkdtemp()) / "c.html")
        >>> out.read_text(encoding="utf-8").startswith("<!doctype html>")
        True
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a file name, not {type(path).__name__}")
        out = Path(path)
        out.write_text(self.html, encoding="utf-8")
        return out

    def _repr_html_(self) -> str:
        """Notebooks: the page in an ``<iframe>`` (its script runs in its own document)."""
        return (
            f'<iframe class="bpfns-view" title="bpfns trace viewer, steps 0 to {self.steps}" '
            f'srcdoc="{escape(self.html)}" style="width:100%;height:900px;border:1px solid #ccc">'
            "</iframe>"
        )


def _label(world: Any, ref: object) -> str:
    """A readable name for an encoded argument or result (a namespace by its label)."""
    if isinstance(ref, dict) and "ref" in ref:
        obj = world.tracer.objects.get(ref["ref"])
        return obj.label() if isinstance(obj, Namespace) else str(ref["ref"])
    if isinstance(ref, dict) and "enum" in ref:
        return str(ref["name"])
    return repr(ref)


def _call_text(world: Any, call: Enter) -> str:
    args = [_label(world, a) for a in call.args]
    args += [f"{key}={_label(world, value)}" for key, value in call.kwargs.items()]
    target = _label(world, {"ref": call.target})
    return f"{target}.{call.op}({', '.join(args)})"


def _event_text(world: Any, event: Event) -> str:
    """One line of what the kernel did during the step."""
    if isinstance(event, IdAlloc):
        ns = _label(world, {"ref": event.ns})
        return (
            f"{event.type.lower()} id {event.nr} at level {event.level} ({ns}): "
            f"cursor {event.cursor_before} -> {event.cursor_after}"
        )
    if isinstance(event, IdFree):
        ns = _label(world, {"ref": event.ns})
        return f"{event.type.lower()} id {event.nr} removed at level {event.level} ({ns})"
    if isinstance(event, Rollback):
        return f"rollback: level {event.failed_level} failed with {event.errno}"
    if isinstance(event, Return):
        if event.error is not None:
            return f"-> {event.errno or event.error}"
        return f"-> {_label(world, event.result)}"
    return Trace([event]).text().split(None, 1)[1]  # the trace's own line, without step


def _focus(world: Any, events: list[Event], previous: Namespace) -> Namespace:
    """The namespace the step touched: its deepest id event, or the one it created."""
    touched = [e for e in events if isinstance(e, IdAlloc | IdFree)]
    refs = [e.ns for e in sorted(touched, key=lambda e: -e.level)]
    refs += [e.ns for e in events if isinstance(e, NsCreated)]
    for ref in refs:
        ns = world.tracer.objects.get(ref)
        if isinstance(ns, Namespace) and ns.alive:
            return ns
    return previous if previous.alive else world.init_ns


def _highlight(world: Any, events: list[Event]) -> ObjId | None:
    """The object the step gave ids to, if it is still alive."""
    for event in events:
        if isinstance(event, IdAlloc):
            oid = world.tracer.objects.get(event.oid)
            if isinstance(oid, ObjId) and oid.live:
                return oid
    return None


class _Pictures:
    """Unique SVG strings, each stored once; a step refers to them by index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, svg: str) -> int:
        if svg not in self._index:
            self._index[svg] = len(self.items)
            self.items.append(svg)
        return self._index[svg]


def view(trace: Trace | str | Path, *, limit: int = 300) -> TraceView:
    """The step-through viewer of ``trace`` (a :class:`bpfns.Trace` or a JSON Lines file).

    Replays the trace (so a trace that does not replay is refused) and draws steps 0
    to ``limit`` at most. A picture, not a kernel function.

    Raises:
        TraceError, ReplayMismatchError: as :func:`bpfns.replay`.
        TypeError, ValueError: for a ``limit`` that is not an int in [1, 100000].

    >>> from bpfns import Kernel, ObjType
    >>> k = Kernel(trace=True)
    >>> child = k.init_ns.create_child(name="c")
    >>> _ = k.alloc_obj_id(child, "m", ObjType.MAP)
    >>> page = view(k.trace)
    >>> page.steps, "map id 1 at level 1 (c): cursor 0 -> 2" in page.html
    (2, True)
    """
    limit = check_int("limit", limit, 1, 100_000, "")
    if not isinstance(trace, Trace | str | Path):
        raise TypeError(f"trace must be a bpfns.Trace or a path, not {type(trace).__name__}")
    events_so_far: list[Event] = []
    pictures = _Pictures()
    steps: list[dict[str, Any]] = []
    focus: Namespace | None = None
    truncated = False
    source = trace if isinstance(trace, Trace) else Path(trace)
    for call, world in replay_steps(source):
        if call is not None and call.step > limit:
            truncated = True
            break
        produced = world.trace.events
        new = produced[len(events_so_far) :]
        events_so_far = list(produced)
        focus = _focus(world, new, focus or world.init_ns)
        history = Trace(events_so_far)
        tracer = world.tracer
        assert tracer is not None  # a replayed kernel traces
        rulers = [
            pictures.add(
                ruler_svg(
                    focus.idr[t],
                    world.id_end,
                    history=id_history(history, tracer.ref(focus), t),
                )
            )
            for t in _TYPES
        ]
        steps.append(
            {
                "step": 0 if call is None else call.step,
                "call": "the kernel boots" if call is None else _call_text(world, call),
                "events": [_event_text(world, e) for e in new if not isinstance(e, Enter)],
                "tree": pictures.add(tree_svg(world, highlight=_highlight(world, new))),
                "focus": f"{focus.label()} (level {focus.level})",
                "rulers": rulers,
            }
        )
    data = {"steps": steps, "pictures": pictures.items, "truncated": truncated}
    return TraceView(_page(data), steps[-1]["step"], truncated)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 12px; color: #1f3b57; }
#controls { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; }
#controls button { font-size: 16px; min-width: 40px; }
#slider { flex: 1; }
#where { font: 16px monospace; min-width: 12em; }
#call { font: 15px monospace; background: #eef4fb; padding: 6px 8px; }
#events { font: 14px monospace; margin: 4px 0 10px; padding-left: 20px; }
h2 { font-size: 16px; margin: 12px 0 4px; }
.ruler-name { font: 13px monospace; margin-top: 4px; }
"""

# The page's only code: show step i of the embedded data; buttons, slider, keys, #step=N.
_SCRIPT = """
const data = JSON.parse(document.getElementById("bpfns-data").textContent);
const $ = (id) => document.getElementById(id);
const last = data.steps.length - 1;
function bpfnsShow(i) {
  i = Math.max(0, Math.min(last, i));
  const s = data.steps[i];
  $("slider").value = i;
  $("where").textContent = "step " + s.step + " of " + data.steps[last].step;
  $("call").textContent = s.call;
  $("events").replaceChildren(...s.events.map((t) => {
    const li = document.createElement("li"); li.textContent = t; return li; }));
  $("tree").innerHTML = data.pictures[s.tree];
  $("focus").textContent = s.focus;
  $("rulers").innerHTML = s.rulers.map((r, k) =>
    '<div class="ruler-name">' + ["maps", "progs", "links"][k] + "</div>" +
    data.pictures[r]).join("");
  window.bpfnsStep = i;
}
$("slider").max = last;
$("first").onclick = () => bpfnsShow(0);
$("prev").onclick = () => bpfnsShow(window.bpfnsStep - 1);
$("next").onclick = () => bpfnsShow(window.bpfnsStep + 1);
$("end").onclick = () => bpfnsShow(last);
$("slider").oninput = (e) => bpfnsShow(Number(e.target.value));
document.addEventListener("keydown", (e) => {
  if (e.key === "ArrowLeft") bpfnsShow(window.bpfnsStep - 1);
  if (e.key === "ArrowRight") bpfnsShow(window.bpfnsStep + 1);
});
const asked = /step=(\\d+)/.exec(location.hash);
bpfnsShow(asked ? data.steps.findIndex((s) => s.step >= Number(asked[1])) : 0);
"""


def _page(data: dict[str, Any]) -> str:
    """The HTML document: controls, panels, the data as JSON, the script."""
    # "</" cannot end the JSON's <script> element early: every "<" is escaped in JSON.
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    more = (
        "<p>The trace has more steps than drawn; pass a larger <code>limit</code>.</p>"
        if data["truncated"]
        else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>bpfns trace viewer</title>"
        f"<style>{_STYLE}</style></head><body>"
        '<div id="controls" role="group" aria-label="steps">'
        '<button id="first" aria-label="first step">|&#x25C0;</button>'
        '<button id="prev" aria-label="previous step">&#x25C0;</button>'
        '<input id="slider" type="range" min="0" value="0" aria-label="step">'
        '<button id="next" aria-label="next step">&#x25B6;</button>'
        '<button id="end" aria-label="last step">&#x25B6;|</button>'
        '<span id="where" aria-live="polite"></span></div>'
        f'{more}<div id="call"></div><ul id="events"></ul>'
        '<h2>Namespaces and their ids</h2><div id="tree"></div>'
        '<h2>Id rulers of <span id="focus"></span></h2><div id="rulers"></div>'
        f'<script type="application/json" id="bpfns-data">{blob}</script>'
        f"<script>{_SCRIPT}</script></body></html>"
    )
