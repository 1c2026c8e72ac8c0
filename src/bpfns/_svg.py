"""SVG pictures, as plain strings: a namespace tree and an "id ruler" per IDR.

Pure Python, no graphviz and no JavaScript: the strings are well-formed XML (the tests
parse them and render them in headless Chromium) and every piece of user text is
escaped. A notebook shows them with ``IPython.display.SVG(...)``;
:meth:`Namespace._repr_html_` embeds the tree, the step-through viewer both.

* :func:`tree_svg`: one box per live namespace (label, level, live map, program and
  link ids), children below their parent; ``highlight=`` one object draws its id at
  every level of its chain and greys out the namespaces that cannot see it.
* :func:`ruler_svg`: the id space ``[start, end)`` of one IDR as numbered cells, each
  taken, freed, burned (rolled back) or never used, long runs compressed, with the
  cursor and a legend, so cyclic allocation and wrap-around can be seen.

Every picture carries a text alternative: a ``<title>``, a ``<desc>`` that says what
it shows in words, and ``aria-label``. The text is at least 12 px at the size drawn,
and a picture wider than its container scales down only to the width of a notebook
(``min-width`` 720 px), so labels stay readable.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from html import escape

import attrs

from ._args import INT_MAX, check_instance, check_int
from ._bpf_namespace import Namespace, ObjType
from ._idr import Idr
from ._obj_id import ObjId
from ._trace import IdAlloc, IdFree, Rollback, Trace

__all__ = ["IdHistory", "id_history", "ruler_svg", "svg_doc", "svg_text", "tree_svg"]

_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 220, 96, 24, 44
_TYPES = (ObjType.MAP, ObjType.PROG, ObjType.LINK)
_INK, _GREY, _ACCENT = "#1f3b57", "#9aa5b1", "#c0392b"


def svg_text(
    x: float, y: float, body: str, size: int = 13, anchor: str = "middle", extra: str = ""
) -> str:
    """A ``<text>`` element in monospace, ``body`` escaped (``extra``: more attributes)."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-family="monospace" font-size="{size}" '
        f'text-anchor="{anchor}"{extra}>{escape(body)}</text>'
    )


def svg_doc(width: float, height: float, body: list[str], title: str, desc: str = "") -> str:
    """An ``<svg>`` document of ``body``'s elements with its text alternative.

    ``title`` (the name) and ``desc`` (what it shows, in words) are escaped; the
    ``aria-label`` repeats the title so screen readers announce it.
    """
    desc = desc or title
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title)}" '
        f'style="max-width:max(100%, 720px);height:auto">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>" + "".join(body) + "</svg>"
    )


def _layout(root: Namespace) -> tuple[dict[Namespace, tuple[float, float]], float, float]:
    """Tidy enough: leaves left to right, parents centred over their children."""
    pos: dict[Namespace, tuple[float, float]] = {}
    next_x = [0.0]

    def place(ns: Namespace, depth: int) -> float:
        kids = ns.children()
        y = depth * (_BOX_H + _GAP_Y)
        if not kids:
            x = next_x[0]
            next_x[0] += _BOX_W + _GAP_X
        else:
            xs = [place(kid, depth + 1) for kid in kids]
            x = (xs[0] + xs[-1]) / 2
        pos[ns] = (x, y)
        return x

    place(root, 0)
    width = max(next_x[0] - _GAP_X, _BOX_W)
    height = max(y for _, y in pos.values()) + _BOX_H
    return pos, width, height


def _highlighted(root: Namespace, highlight: object) -> ObjId | None:
    """The id record ``highlight`` names: an ObjId, a BPF object, or (type, global id).

    Raises:
        TypeError: for anything else.
        ValueError: for a freed record, or a (type, id) pair with no live object.
    """
    if highlight is None:
        return None
    if isinstance(highlight, tuple) and len(highlight) == 2:
        type_, nr = highlight
        check_instance("highlight[0]", type_, ObjType, "an ObjType")
        nr = check_int("highlight[1]", nr, 1, INT_MAX, "")
        init = root
        while init.parent is not None:
            init = init.parent
        handle = init.idr[type_].find(nr)
        if not isinstance(handle, ObjId):
            raise ValueError(
                f"highlight: no live {type_.name.lower()} has global id {nr}; pass the "
                "id the initial namespace shows (bpftool's on the host)"
            )
        return handle
    oid = getattr(highlight, "obj_id", highlight)
    if not isinstance(oid, ObjId):
        raise TypeError(
            "highlight: pass an ObjId (Kernel.alloc_obj_id's), a map, prog or link object, "
            f"or a (bpfns.ObjType, global id) pair, not {highlight!r}"
        )
    if not oid.live:
        raise ValueError("highlight: that id record was freed; highlight a live object")
    if oid.ns.kernel is not root.kernel:
        raise ValueError(
            "highlight: that object belongs to another Kernel than root; highlight one of "
            "the tree's objects"
        )
    return oid


def _tree_root(root: object) -> Namespace:
    """``root`` itself, or a Kernel's initial namespace."""
    ns = check_instance(
        "root", getattr(root, "init_ns", root), Namespace, "a bpfns.Namespace or a bpfns.Kernel"
    )
    if not ns.alive:
        raise ValueError(f"root: {ns!r} is {ns.state.value}; draw a live namespace")
    return ns


def tree_svg(root: object, highlight: object = None) -> str:
    """The namespace tree under ``root`` as an SVG string (``IPython.display.SVG``).

    A picture, not a kernel function: the hierarchy ``copy_bpfns`` builds, one box per
    live namespace with its label, level and (up to 8 per type) live map, program and
    link ids. ``root`` is a Namespace, or a Kernel for its whole tree.

    ``highlight`` picks one object: an :class:`bpfns.ObjId`, a map/prog/link object,
    or ``(ObjType, global id)``. Each namespace of its chain (the ``numbers[]`` of its
    record, from the initial namespace down to where it was created) gets a red border
    and a badge with the object's id *there*; every other namespace is greyed out: it
    cannot see the object. The ``<desc>`` says the same in words.

    Raises:
        TypeError, ValueError: if ``root`` is not a live Namespace or a Kernel, or
            ``highlight`` names no live object.

    >>> from bpfns import Kernel, ObjType
    >>> k = Kernel()
    >>> child = k.init_ns.create_child(name="child_a")
    >>> _ = k.alloc_obj_id(k.init_ns, "other", ObjType.MAP)
    >>> oid = k.alloc_obj_id(child, "mine", ObjType.MAP)
    >>> svg = tree_svg(k, highlight=oid)
    >>> "child_a : level 1" in svg, "map id 1 here" in svg, "map id 2 here" in svg
    (True, True, True)
    """
    ns_root = _tree_root(root)
    oid = _highlighted(ns_root, highlight)
    chain = {e.ns: e.nr for e in oid.numbers} if oid is not None else {}
    what = oid.type.name.lower() if oid is not None else ""
    pos, width, height = _layout(ns_root)
    pad = 12
    body: list[str] = []
    for ns, (x, y) in pos.items():
        if ns is not ns_root and ns.parent in pos:
            px, py = pos[ns.parent]
            lit = ns in chain and ns.parent in chain
            body.append(
                f'<line x1="{px + _BOX_W / 2 + pad:.1f}" y1="{py + _BOX_H + pad:.1f}" '
                f'x2="{x + _BOX_W / 2 + pad:.1f}" y2="{y + pad:.1f}" '
                f'stroke="{_ACCENT if lit else "#555"}" stroke-width="{3 if lit else 1.5}"/>'
            )
    for ns, (x, y) in pos.items():
        body.extend(_ns_box(ns, x + pad, y + pad, oid, chain.get(ns)))
    title = f"namespace tree of {ns_root.label()}"
    words = [f"{len(pos)} namespaces under {ns_root.label()}"]
    if oid is not None:
        seen = ", ".join(f"{nr} in {ns.label()}" for ns, nr in chain.items())
        hidden = [ns.label() for ns in pos if ns not in chain]
        words.append(f"the highlighted {what} has id {seen}")
        if hidden:
            words.append(f"it is invisible in {', '.join(hidden)}")
        title += f", {what} {oid.nr()} highlighted"
    return svg_doc(width + 2 * pad, height + 2 * pad, body, title, "; ".join(words) + ".")


def _ns_box(ns: Namespace, x: float, y: float, oid: ObjId | None, nr: int | None) -> list[str]:
    """One namespace's box: label, one row per object type, the highlight's badge."""
    grey = oid is not None and nr is None
    ink = _GREY if grey else _INK
    stroke = _ACCENT if nr is not None else ("#c8ced6" if grey else "#2c5d8f")
    fill = "#f7f8f9" if grey else "#eef4fb"
    cls = "ns" + (" hidden" if grey else "") + (" chain" if nr is not None else "")
    out = [
        f'<g class="{cls}" data-inum="{ns.inum}"><rect x="{x:.1f}" y="{y:.1f}" '
        f'width="{_BOX_W}" height="{_BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{3 if nr is not None else 1.5}"/>'
    ]
    cx = x + _BOX_W / 2
    fill_attr = f' fill="{ink}"'
    out.append(svg_text(cx, y + 20, f"{ns.label()} : level {ns.level}", 14, extra=fill_attr))
    for row, type_ in enumerate(_TYPES):
        ids = " ".join(str(n) for n, _ in list(ns.idr[type_])[:8]) or "-"
        out.append(
            svg_text(
                x + 12, y + 40 + 16 * row, f"{type_.name.lower()}s {ids}", 13, "start", fill_attr
            )
        )
    if oid is not None and nr is not None:
        out.append(
            svg_text(
                x + _BOX_W - 8,
                y + _BOX_H - 8,
                f"{oid.type.name.lower()} id {nr} here",
                13,
                "end",
                f' fill="{_ACCENT}" font-weight="bold" class="badge"',
            )
        )
    out.append("</g>")
    return out


@attrs.frozen
class IdHistory:
    """What a trace says happened to the ids of one IDR (see :func:`bpfns.id_history`).

    Attributes:
        freed: ids handed out to an object and freed since (by ``bpf_free_obj_id``).
        burned: ids taken during an allocation that failed at another level and were
            removed by the rollback: the cursor passed them, no caller ever got them.
    """

    freed: frozenset[int] = frozenset()
    burned: frozenset[int] = frozenset()


def id_history(trace: Trace, ns: Namespace | str, type: ObjType) -> IdHistory:
    """What ``trace`` says happened to the free ids of ``ns``'s IDR of ``type``.

    ``ns`` is a namespace of the traced kernel (or of a replay of its trace), or its
    reference in the trace (``"ns2"``). An id's latest event decides: removed by a
    rollback (``bpf_alloc_obj_id``'s error path) it is burned, removed by
    ``bpf_free_obj_id`` it is freed; allocated again, it is neither.

    Raises:
        ValueError: if ``ns`` belongs to a kernel that does not trace.
        TypeError: for arguments of the wrong type.

    >>> from bpfns import FIXED, Kernel, ObjType
    >>> k = Kernel(FIXED, trace=True, id_end=4)
    >>> child = k.init_ns.create_child()
    >>> a, b, c = (k.alloc_obj_id(k.init_ns, n, ObjType.MAP) for n in "abc")
    >>> try:
    ...     _ = k.alloc_obj_id(child, "d", ObjType.MAP)  # level 0 is full: rolled back
    ... except Exception:
    ...     pass
    >>> k.free_obj_id(b, ObjType.MAP)
    >>> id_history(k.trace, k.init_ns, ObjType.MAP)
    IdHistory(freed=frozenset({2}), burned=frozenset())
    >>> id_history(k.trace, child, ObjType.MAP)
    IdHistory(freed=frozenset(), burned=frozenset({1}))
    """
    check_instance("trace", trace, Trace, "a bpfns.Trace")
    check_instance("type", type, ObjType, "an ObjType")
    if isinstance(ns, Namespace):
        tracer = ns.kernel.tracer
        if tracer is None:
            raise ValueError(
                f"id_history: ns {ns.label()} belongs to a kernel that does not trace; "
                "make it with Kernel(trace=True), or replay a trace"
            )
        ref = tracer.ref(ns)
    else:
        ref = check_instance("ns", ns, str, "a bpfns.Namespace or a trace reference")
    rolled_back: set[str] = set()
    state: dict[int, str] = {}
    for event in trace:
        if isinstance(event, Rollback):
            rolled_back.add(event.oid)
        elif isinstance(event, IdAlloc | IdFree) and event.ns == ref and event.type == type.name:
            if isinstance(event, IdAlloc):
                state.pop(event.nr, None)
            else:
                state[event.nr] = "burned" if event.oid in rolled_back else "freed"
    return IdHistory(
        freed=frozenset(nr for nr, s in state.items() if s == "freed"),
        burned=frozenset(nr for nr, s in state.items() if s == "burned"),
    )


#: The states of an id on a ruler, their fill colour and their legend.
_STATES = {
    "taken": ("#2c5d8f", "taken"),
    "freed": ("#f0b429", "freed"),
    "burned": ("#c0392b", "burned (rolled back)"),
    "never": ("#ffffff", "never used"),
    "passed": ("#d5dbe1", "free, cursor passed"),
}
_RUN_MIN = 5  # a run of this many ids of one state, in a large ruler, is one cell
_EXACT = 64  # up to this many ids, every id gets its own cell


def _state(nr: int, taken: set[int], cursor: int, history: IdHistory | None) -> str:
    if nr in taken:
        return "taken"
    if history is None:
        return "passed" if nr < cursor else "never"
    if nr in history.burned:
        return "burned"
    return "freed" if nr in history.freed else "never"


def _runs(
    start: int, end: int, taken: set[int], cursor: int, history: IdHistory | None
) -> list[tuple[int, int, str]]:
    """``[start, end)`` as maximal runs ``(lo, hi, state)``, in O(used ids), not O(end)."""
    marks = set(taken) | {cursor}
    if history is not None:
        marks |= history.freed | history.burned
    points = sorted({start, end} | {p for m in marks for p in (m, m + 1) if start < p < end})
    runs: list[tuple[int, int, str]] = []
    for lo, nxt in itertools.pairwise(points):
        state = _state(lo, taken, cursor, history)
        if runs and runs[-1][2] == state and runs[-1][1] == lo - 1:
            runs[-1] = (runs[-1][0], nxt - 1, state)
        else:
            runs.append((lo, nxt - 1, state))
    return runs


def _cells(runs: Sequence[tuple[int, int, str]], exact: bool) -> list[tuple[int, int, str]]:
    """One cell per id, except (in a large ruler) runs of :data:`_RUN_MIN` ids or more."""
    cells: list[tuple[int, int, str]] = []
    for lo, hi, state in runs:
        if exact or hi - lo + 1 < _RUN_MIN:
            cells.extend((nr, nr, state) for nr in range(lo, hi + 1))
        else:
            cells.append((lo, hi, state))
    return cells


def ruler_svg(
    idr: Idr, end: int, start: int = 1, width: int = 720, history: IdHistory | None = None
) -> str:
    """The ids ``[start, end)`` of ``idr``: numbered cells, the cursor and a legend.

    A picture of ``idr_alloc_cyclic`` (lib/idr.c; see "The IDR" on the model page of
    the docs): a filled cell is a taken id, the red marker is the cursor (``idr_next``,
    where the next search starts), and the left edge is ``start``, where the search
    wraps when nothing above the cursor is free. With a ``history`` (from a trace,
    :func:`bpfns.id_history`) a free id is *freed* (handed out, then freed), *burned*
    (rolled back: the cursor passed it, nobody got it) or *never used*; without one,
    free ids are told apart only by the cursor (passed or not yet).

    Up to 64 ids every id has its cell. A larger space compresses each run of 5 or more
    ids of one state into one cell labelled ``lo-hi``, so a ruler of 10**6 ids with a
    few dozen taken stays readable; numbers are drawn where a cell is wide enough.

    Raises:
        ValueError: if ``end`` is not above ``start``, or ``width`` is not within
            [200, 10000].
        TypeError: if ``idr`` is not an Idr, a number is not an int, or ``history`` not
            an IdHistory.

    >>> from bpfns import Idr
    >>> idr = Idr()
    >>> for _ in range(3):
    ...     _ = idr.alloc_cyclic("x", 1, 8)
    >>> svg = ruler_svg(idr, 8)
    >>> svg.count('class="id taken"'), 'class="cursor"' in svg, "ids 1 .. 7" in svg
    (3, True, True)
    """
    check_instance("idr", idr, Idr, "a bpfns.Idr")
    end = check_int("end", end, 1, INT_MAX, "")
    start = check_int("start", start, 0, INT_MAX, "")
    width = check_int("width", width, 200, 10_000, "")
    if history is not None:
        check_instance("history", history, IdHistory, "a bpfns.IdHistory")
    if not start < end:
        raise ValueError(f"ruler_svg draws start < end, not [{start}, {end})")
    taken = {nr for nr in idr.ids() if start <= nr < end}
    cursor = idr.cursor if start <= idr.cursor < end else start
    cells = _cells(_runs(start, end, taken, cursor, history), end - start <= _EXACT)
    left, top, bar = 16, 30, 28
    # A cell's share of the width grows with its label (a run's ``lo-hi`` is longer).
    weights = [1.0 if lo == hi else max(2.5, 0.62 * len(_label(lo, hi))) for lo, hi, _ in cells]
    unit = (width - 2 * left) / sum(weights)
    body: list[str] = []
    x = float(left)
    cursor_x = float(left)
    for (lo, hi, state), weight in zip(cells, weights, strict=True):
        w = unit * weight
        colour = _STATES[state][0]
        ident = f'data-id="{lo}"' if lo == hi else f'data-lo="{lo}" data-hi="{hi}"'
        run = "" if lo == hi else " run"
        body.append(
            f'<rect class="id {state}{run}" {ident} x="{x:.2f}" y="{top}" '
            f'width="{max(w - 1, 0.5):.2f}" height="{bar}" fill="{colour}" stroke="#8a96a3" '
            'stroke-width="0.5"/>'
        )
        label = _label(lo, hi)
        if w >= 7.5 * len(label) + 4:
            ink = "#ffffff" if state in ("taken", "burned") else _INK
            body.append(svg_text(x + w / 2, top + bar / 2 + 4, label, 12, extra=f' fill="{ink}"'))
        if lo <= cursor <= hi:
            cursor_x = x + w * ((cursor - lo + 0.5) / (hi - lo + 1))
        x += w
    body.append(
        f'<polygon class="cursor" data-id="{cursor}" points="{cursor_x:.2f},{top + bar + 2} '
        f'{cursor_x - 7:.2f},{top + bar + 14} {cursor_x + 7:.2f},{top + bar + 14}" '
        f'fill="{_ACCENT}"/>'
    )
    body.append(
        f'<line class="wrap" x1="{left}" y1="{top - 6}" x2="{left}" y2="{top + bar + 6}" '
        'stroke="#27ae60" stroke-width="2" stroke-dasharray="3,2"/>'
    )
    body.append(svg_text(width - left, top - 10, f"ids {start} .. {end - 1}", 13, "end"))
    body.append(svg_text(left, top - 10, f"wrap to {start}", 13, "start"))
    body.append(svg_text(cursor_x, top + bar + 30, f"cursor {idr.cursor}", 13))
    states = [s for s in _STATES if any(c[2] == s for c in cells)]
    body.extend(_legend(states, left, top + bar + 44))
    counts = {s: sum(hi - lo + 1 for lo, hi, st in cells if st == s) for s in states}
    title = f"id ruler: {len(taken)} of {end - start} ids taken, cursor {idr.cursor}"
    desc = (
        f"ids {start} to {end - 1}: "
        + ", ".join(f"{counts[s]} {_STATES[s][1]}" for s in states)
        + f"; taken: {_ranges(sorted(taken)) or 'none'}; the next search starts at "
        f"{cursor} and wraps to {start}."
    )
    return svg_doc(width, top + bar + 66, body, title, desc)


def _label(lo: int, hi: int) -> str:
    """A cell's label: its id, or ``lo-hi`` for a run."""
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _legend(states: Iterable[str], x: float, y: float) -> list[str]:
    """A swatch and a label for each state drawn."""
    out = []
    for state in states:
        colour, words = _STATES[state]
        out.append(
            f'<rect class="legend {state}" x="{x:.1f}" y="{y:.1f}" width="14" height="14" '
            f'fill="{colour}" stroke="#8a96a3"/>'
        )
        out.append(svg_text(x + 19, y + 12, words, 13, "start"))
        x += 19 + 8 * len(words) + 18
    return out


def _ranges(ids: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7`` (the ``<desc>`` of a ruler)."""
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(parts)
