"""SVG pictures, as plain strings: a namespace tree and an "id ruler" per IDR.

Pure Python, no graphviz and no JavaScript: the strings are well-formed XML (the tests
parse them) and every piece of user text is escaped. A notebook shows them with
``IPython.display.SVG(...)``; :meth:`Namespace._repr_html_` embeds the tree.

* :func:`tree_svg`: one box per live namespace (label, level, live ids per type),
  children below their parent, edges between them.
* :func:`ruler_svg`: the id space ``[0, end)`` of one IDR as a bar: allocated ids as
  ticks, the cursor as a marker, and the wrap point (where ``alloc_cyclic`` goes back to
  ``start``), so cyclic allocation and wrap-around can be seen.
"""

from __future__ import annotations

from html import escape

from ._args import check_instance, check_int
from ._bpf_namespace import Namespace, ObjType
from ._idr import Idr

__all__ = ["ruler_svg", "svg_doc", "svg_text", "tree_svg"]

_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 190, 58, 24, 40


def svg_text(x: float, y: float, body: str, size: int = 12, anchor: str = "middle") -> str:
    """A ``<text>`` element in monospace, ``body`` escaped."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-family="monospace" font-size="{size}" '
        f'text-anchor="{anchor}">{escape(body)}</text>'
    )


def svg_doc(width: float, height: float, body: list[str], title: str) -> str:
    """An ``<svg>`` document of ``body``'s elements, with an escaped ``<title>``."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
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


def tree_svg(root: Namespace) -> str:
    """The namespace tree under ``root`` as an SVG string (``IPython.display.SVG``).

    A picture, not a kernel function: the hierarchy ``copy_bpfns`` builds, one box per
    live namespace with its label, level and (up to 8) live map and program ids.

    >>> from bpfns import Kernel
    >>> k = Kernel()
    >>> _ = k.init_ns.create_child(name="child_a")
    >>> svg = tree_svg(k.init_ns)
    >>> svg.startswith("<svg") and "child_a : level 1" in svg
    True

    Raises:
        TypeError, ValueError: if ``root`` is not a live Namespace.
    """
    check_instance("root", root, Namespace, "a bpfns.Namespace")
    if not root.alive:
        raise ValueError(f"root: {root!r} is {root.state.value}; draw a live namespace")
    pos, width, height = _layout(root)
    pad = 10
    body: list[str] = []
    for ns, (x, y) in pos.items():
        if ns is not root and ns.parent in pos:
            px, py = pos[ns.parent]
            body.append(
                f'<line x1="{px + _BOX_W / 2 + pad:.1f}" y1="{py + _BOX_H + pad:.1f}" '
                f'x2="{x + _BOX_W / 2 + pad:.1f}" y2="{y + pad:.1f}" stroke="#555"/>'
            )
    for ns, (x, y) in pos.items():
        cx = x + _BOX_W / 2 + pad
        body.append(
            f'<g class="ns" data-inum="{ns.inum}"><rect x="{x + pad:.1f}" y="{y + pad:.1f}" '
            f'width="{_BOX_W}" height="{_BOX_H}" rx="6" fill="#eef4fb" stroke="#2c5d8f"/>'
        )
        body.append(svg_text(cx, y + pad + 18, f"{ns.label()} : level {ns.level}", 12))
        for row, type_ in enumerate((ObjType.MAP, ObjType.PROG)):
            ids = " ".join(str(nr) for nr, _ in list(ns.idr[type_])[:8]) or "-"
            body.append(svg_text(cx, y + pad + 34 + 14 * row, f"{type_.name.lower()}s {ids}", 10))
        body.append("</g>")
    return svg_doc(width + 2 * pad, height + 2 * pad, body, f"namespace tree of {root.label()}")


def ruler_svg(idr: Idr, end: int, start: int = 1, width: int = 640) -> str:
    """The ids ``[0, end)`` of ``idr``: allocated ids, the cursor and the wrap point.

    A picture of ``idr_alloc_cyclic`` (kernel.md A.4): the filled ticks are allocated
    ids, the red marker is the cursor (``idr_next``, where the next search starts) and
    the dashed line is ``start``, where the search wraps when nothing above the cursor
    is free.

    Raises:
        ValueError: if ``end`` is not above ``start`` or the ruler would not fit
            (``end`` above 4096: draw a small id space, as tests use), or ``width``
            is not within [100, 10000].
        TypeError: if ``idr`` is not an Idr or a number is not an int.

    >>> from bpfns import Idr
    >>> idr = Idr()
    >>> for _ in range(3):
    ...     _ = idr.alloc_cyclic("x", 1, 8)
    >>> svg = ruler_svg(idr, 8)
    >>> svg.count('class="id allocated"'), 'class="cursor"' in svg
    (3, True)
    """
    check_instance("idr", idr, Idr, "a bpfns.Idr")
    end = check_int("end", end, 0, 4096, "")
    start = check_int("start", start, 0, 4096, "")
    width = check_int("width", width, 100, 10_000, "")
    if not 0 <= start < end <= 4096:
        raise ValueError(f"ruler_svg draws 0 <= start < end <= 4096, not [{start}, {end})")
    left, top, bar = 20, 24, 20
    step = (width - 2 * left) / end
    body = [
        f'<rect x="{left}" y="{top}" width="{width - 2 * left}" height="{bar}" '
        'fill="#f4f4f4" stroke="#999"/>'
    ]
    allocated = set(idr.ids())
    for nr in range(end):
        x = left + nr * step
        kind = "allocated" if nr in allocated else "free"
        fill = "#2c5d8f" if nr in allocated else "none"
        if nr in allocated or end <= 64:
            body.append(
                f'<rect class="id {kind}" data-id="{nr}" x="{x:.2f}" y="{top}" '
                f'width="{max(step - 1, 0.5):.2f}" height="{bar}" fill="{fill}"/>'
            )
    cursor = idr.cursor if idr.cursor < end else start
    cx = left + cursor * step + step / 2
    body.append(
        f'<polygon class="cursor" data-id="{cursor}" points="{cx:.2f},{top + bar + 2} '
        f'{cx - 6:.2f},{top + bar + 12} {cx + 6:.2f},{top + bar + 12}" fill="#c0392b"/>'
    )
    wx = left + start * step
    body.append(
        f'<line class="wrap" x1="{wx:.2f}" y1="{top - 6}" x2="{wx:.2f}" y2="{top + bar + 6}" '
        'stroke="#27ae60" stroke-dasharray="3,2"/>'
    )
    body.append(svg_text(width - left, top - 8, f"ids 0 .. {end - 1}", 10, "end"))
    body.append(svg_text(wx + 3, top - 8, f"wrap to {start}", 10, "start"))
    body.append(svg_text(cx, top + bar + 24, f"cursor {idr.cursor}", 10))
    title = f"id ruler: {len(allocated)} of {end} ids allocated, cursor {idr.cursor}"
    return svg_doc(width, top + bar + 32, body, title)
