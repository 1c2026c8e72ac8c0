"""The ``bpfns`` command (console script and ``python -m bpfns``).

``bpfns demo`` builds the seed's hierarchy (init; child_a, child_b; child_b_a,
child_b_b), gives a map, a program and a link ids in child_b_b, and prints the tree, the
ids of each object at its three levels, and what every namespace sees.

Exit codes: 0 success, 1 a failure was found, 2 usage error.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

from ._behavior import FIXED, RFC
from ._bpf_namespace import Namespace, ObjType
from ._kernel import Kernel
from ._render import render_obj_id, render_tree

__all__ = ["main"]

BEHAVIORS = {"rfc": RFC, "fixed": FIXED}


def build_seed_world(k: Kernel) -> dict[str, Namespace]:
    """The seed's hierarchy: init -> child_a, child_b; child_b -> child_b_a, child_b_b."""
    child_a = k.init_ns.create_child(name="child_a")
    child_b = k.init_ns.create_child(name="child_b")
    return {
        "init_bpf_ns": k.init_ns,
        "child_a": child_a,
        "child_b": child_b,
        "child_b_a": child_b.create_child(name="child_b_a"),
        "child_b_b": child_b.create_child(name="child_b_b"),
    }


def demo(behavior: str, seed: int | None, out: list[str]) -> int:
    """Run the demo, appending its lines to ``out``; returns the exit code."""
    k = Kernel(BEHAVIORS[behavior])
    world = build_seed_world(k)
    rng = random.Random(seed)
    # Objects that existed before the container started, so that the levels differ.
    for type_ in ObjType:
        for _ in range(rng.randint(1, 5) if seed is not None else 2 + type_):
            k.alloc_obj_id(k.init_ns, f"host {type_.name.lower()}", type_)
        for _ in range(rng.randint(0, 3) if seed is not None else 1):
            k.alloc_obj_id(world["child_b"], f"child_b {type_.name.lower()}", type_)
    made = {t: k.alloc_obj_id(world["child_b_b"], f"{t.name.lower()}", t) for t in ObjType}
    out.append(f"bpfns demo: behaviour {behavior.upper()}, defects {k.behavior.defects()}")
    out.append("")
    out.append("Namespace tree (live ids per type in each namespace):")
    out.append(render_tree(k.init_ns))
    for type_, obj_id in made.items():
        out.append("")
        out.append(f"The {type_.name.lower()} created in child_b_b has one id per level:")
        out.append(render_obj_id(obj_id))
    out.append("")
    out.append("What each namespace sees of the three objects (0 = not visible):")
    for name, ns in world.items():
        seen = ", ".join(f"{t.name.lower()} {o.nr_ns(ns)}" for t, o in made.items())
        wrong = not ns.is_ancestor_of(world["child_b_b"]) and made[ObjType.MAP].nr_ns(ns)
        note = "   <- D6: another branch's numbers" if wrong else ""
        out.append(f"  {name:<12} {seen}{note}")
    k.check()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpfns", description="Simulate hierarchical BPF namespaces (the 2023 RFC)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="build the seed's namespace tree and show its ids")
    p_demo.add_argument("--behavior", choices=sorted(BEHAVIORS), default="rfc")
    p_demo.add_argument("--seed", type=int, default=None, help="vary the pre-existing objects")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bpfns`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    out: list[str] = []
    code = demo(args.behavior, args.seed, out)
    sys.stdout.write("\n".join(out) + "\n")
    return code
