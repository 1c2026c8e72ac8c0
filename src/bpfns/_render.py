"""Text pictures of the simulated world: the namespace tree and an object's ids per level.

Plain text, so they print in a terminal, a doctest or a classroom handout. The layout
follows the seed diagram of the RFC discussion: ``<name> : level = <n>``, children
indented under their parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._bpf_namespace import Namespace, ObjType

if TYPE_CHECKING:
    from ._obj_id import ObjId

__all__ = ["render_obj_id", "render_tree"]

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
