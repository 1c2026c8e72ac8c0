"""Text pictures of the simulated world: the namespace tree and an object's ids per level.

Plain text, so they print in a terminal, a doctest or a classroom handout. The layout
follows the seed diagram of the RFC discussion: ``<name> : level = <n>``, children
indented under their parent.
"""

from __future__ import annotations

from html import escape

from ._bpf_namespace import Namespace, NsContext, ObjType
from ._bpf_object import BpfObject, CurrentTask, object_listing
from ._idr import Idr
from ._obj_id import ObjId

__all__ = [
    "idr_html",
    "kernel_html",
    "obj_id_html",
    "render_listing",
    "render_obj_id",
    "render_tree",
    "task_html",
    "tree_html",
]

_INDENT = "    "


def _ids(ns: Namespace) -> str:
    parts = []
    for type_ in ObjType:
        ids = [str(nr) for nr, _ in ns.idr[type_]]
        if ids:
            parts.append(f"{type_.name.lower()}s {' '.join(ids)}")
    return "; ".join(parts)


def render_tree(root: Namespace) -> str:
    """The subtree under ``root``, one namespace per line, with live ids per type.

    >>> from bpfns import Kernel
    >>> k = Kernel()
    >>> _ = k.init_ns.create_child(name="child_a")
    >>> print(render_tree(k.init_ns))
    init_bpf_ns : level = 0  [bpf:[4026531833]]
        child_a : level = 1  [bpf:[4026531840], refcount 1]
    """
    lines: list[str] = []

    def walk(ns: Namespace, depth: int) -> None:
        ref = "" if ns.is_init else f", refcount {ns.refcount}"
        ids = _ids(ns)
        line = f"{_INDENT * depth}{ns.label()} : level = {ns.level}  [bpf:[{ns.inum}]{ref}]"
        lines.append(line + (f"  {ids}" if ids else ""))
        for child in ns.children():
            walk(child, depth + 1)

    walk(root, 0)
    return "\n".join(lines)


def _show(ns: Namespace, nr: int, obj_id: ObjId) -> str:
    obj = obj_id.obj
    where = f"  # id {obj_id.nr()} in init_bpf_ns" if not ns.is_init else ""
    if isinstance(obj, BpfObject):
        first, _, rest = object_listing(obj, ns).partition("\n")
        return f"{nr}: {first}{where}" + (f"\n{rest}" if rest else "")
    return f"{nr}: {obj!r}{where}"


def render_listing(ns: Namespace) -> str:
    """``bpftool map show``, ``prog show`` and ``link show`` as seen from ``ns``.

    Ids are the ones ``ns`` sees (its own IDRs, as ``BPF_*_GET_NEXT_ID`` walks them);
    a comment gives each object's id in ``init_bpf_ns``. Objects made with
    :meth:`bpfns.Kernel.alloc_obj_id` show their payload's repr.

    >>> from bpfns import CLONE_NEWBPF, Kernel
    >>> k = Kernel()
    >>> t = k.init_task.clone(CLONE_NEWBPF, ns_name="ctr")
    >>> _ = k.init_task.map_create(name="host")
    >>> _ = t.map_create(name="mine")
    >>> print(render_listing(t.bpf_ns))
    map show
    1: array  name mine  flags 0x0  # id 2 in init_bpf_ns
        key 4B  value 4B  max_entries 1
    prog show
    link show
    """
    lines: list[str] = []
    for type_ in ObjType:
        lines.append(f"{type_.name.lower()} show")
        lines += [_show(ns, nr, obj_id) for nr, obj_id in ns.idr[type_]]
    return "\n".join(lines)


def render_obj_id(obj_id: ObjId) -> str:
    """A table of an object's id at every level, root first.

    >>> from bpfns import Kernel, ObjType
    >>> k = Kernel()
    >>> oid = k.alloc_obj_id(k.init_ns.create_child(name="c"), "m", ObjType.MAP)
    >>> print(render_obj_id(oid))
    level  namespace    id
        0  init_bpf_ns   1
        1  c             1
    """
    entries = obj_id.numbers
    width = max(len("namespace"), *(len(e.ns.label()) for e in entries))
    rows = [f"level  {'namespace':<{width}}  id"]
    rows += [f"{i:>5}  {e.ns.label():<{width}}  {e.nr:>2}" for i, e in enumerate(entries)]
    return "\n".join(rows)


# -- HTML (notebooks) ----------------------------------------------------------------------

_UL = 'style="list-style:none;margin:0;padding-left:1.4em;border-left:1px solid #9ab"'


def _fallback(text: str) -> str:
    """The plain-text picture, shown as is where a notebook strips styles (untrusted)."""
    return f'<pre class="bpfns-text">{escape(text)}</pre>'


def tree_html(root: Namespace) -> str:
    """The tree under ``root`` as nested lists (CSS only, inline) plus a text fallback.

    >>> from bpfns import Kernel
    >>> k = Kernel()
    >>> _ = k.init_ns.create_child(name="<a>")
    >>> "&lt;a&gt; : level = 1" in tree_html(k.init_ns)
    True
    """

    def node(ns: Namespace) -> str:
        ids = _ids(ns)
        label = f"{ns.label()} : level = {ns.level}" + (f"  ({ids})" if ids else "")
        kids = "".join(node(child) for child in ns.children())
        sub = f"<ul {_UL}>{kids}</ul>" if kids else ""
        return f'<li data-inum="{ns.inum}"><code>{escape(label)}</code>{sub}</li>'

    # A trusted notebook applies the <style> and shows the CSS tree only; an untrusted
    # one strips it, and the text picture shows under the plain nested list.
    return (
        f'<div class="bpfns-tree"><style>.bpfns-tree > .bpfns-text {{display: none}}</style>'
        f"<ul {_UL}>{node(root)}</ul>{_fallback(render_tree(root))}</div>"
    )


def obj_id_html(obj_id: ObjId) -> str:
    """An ObjId's numbers as an HTML table (level, namespace, id)."""
    rows = "".join(
        f"<tr><td>{i}</td><td>{escape(e.ns.label())}</td><td>{e.nr}</td></tr>"
        for i, e in enumerate(obj_id.numbers)
    )
    head = "<tr><th>level</th><th>namespace</th><th>id</th></tr>"
    return f'<table class="bpfns-objid">{head}{rows}</table>'


def task_html(task: CurrentTask) -> str:
    """A task: pid, euid, namespace, and its open files."""
    files = task.files.items() if task.files is not None else iter(())
    rows = "".join(
        f"<tr><td>{fd}</td><td>{escape(f.kind.value)}</td><td>{escape(repr(f.obj))}</td></tr>"
        for fd, f in files
    )
    head = f"<p><code>{escape(repr(task))}</code></p>"
    return f'<div class="bpfns-task">{head}<table>{rows}</table></div>'


def idr_html(idr: Idr, end: int = 64) -> str:
    """An Idr: its repr and the id ruler (SVG) from 1 to past ``end``, the cursor and the ids."""
    from ._svg import ruler_svg  # noqa: PLC0415 - the SVG module imports this one's types

    shown = max(end, idr.cursor, *(idr.ids()[-1:] or [0])) + 1
    return f'<div class="bpfns-idr">{_fallback(repr(idr))}{ruler_svg(idr, shown)}</div>'


def kernel_html(k: NsContext) -> str:
    """A kernel: its repr and its namespace tree."""
    head = f"<p><code>{escape(repr(k))}</code></p>"
    return f'<div class="bpfns-kernel">{head}{tree_html(k.init_ns)}</div>'
