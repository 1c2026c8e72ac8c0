"""The ``bpfns`` command (console script and ``python -m bpfns``).

``bpfns demo`` builds the seed's hierarchy (init; child_a, child_b; child_b_a,
child_b_b), gives a map, a program and a link ids in child_b_b, and prints the tree, the
ids of each object at its three levels, and what every namespace sees.

``bpfns fuzz`` runs :class:`bpfns.testing.BpfnsMachine` (needs the ``hypothesis``
extra); see :mod:`bpfns._fuzz`.

Exit codes: 0 success, 1 a failure was found, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    p_fuzz = sub.add_parser(
        "fuzz",
        help="run the BpfnsMachine; exit 1 and write the shrunk program on a failure",
        description="Fuzz id allocation with bpfns.testing.BpfnsMachine. Progress goes to "
        "stderr; a failure is written as a runnable script and a JSON record.",
    )
    p_fuzz.add_argument("--behavior", choices=sorted(BEHAVIORS), default="fixed")
    budget = p_fuzz.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=_positive(float), help="time budget (default 60)")
    budget.add_argument("--examples", type=_positive(int), help="example budget")
    p_fuzz.add_argument("--seed", type=int, default=0)
    p_fuzz.add_argument("--id-end", type=_positive(int), default=6, help="ids 1..N-1")
    p_fuzz.add_argument("--max-level", type=_positive(int), default=3)
    p_fuzz.add_argument("--workers", type=_positive(int), default=1)
    p_fuzz.add_argument("--out", type=Path, default=Path(), help="where failures go")
    p_fuzz.add_argument("--database", type=Path, default=None, help="shared example db dir")
    p_conf = sub.add_parser(
        "conformance",
        help="compare bpfns with the running kernel (root, Linux 6.14+)",
        description="Run seeded pid-namespace scenarios and bpf() id sequences on the live "
        "kernel and on bpfns; print scenario, events and mismatches; exit 1 on a mismatch.",
    )
    p_conf.add_argument("--seed", type=int, default=0)
    p_conf.add_argument("--scenarios", type=_positive(int), default=10)
    return parser


def _conformance(args: argparse.Namespace) -> int:
    from .conformance import run_table, unavailable  # noqa: PLC0415

    reason = unavailable()
    if reason is not None:
        sys.stderr.write(f"bpfns conformance cannot run here: {reason}; nothing was checked\n")
        return 2
    rows = run_table(args.seed, int(args.scenarios))
    width = max(len(row.scenario) for row in rows)
    sys.stdout.write(f"{'scenario':<{width}}  {'events':>7}  mismatches\n")
    for row in rows:
        sys.stdout.write(f"{row.scenario:<{width}}  {row.events:>7}  {row.mismatches:>10}\n")
    total = sum(row.mismatches for row in rows)
    sys.stdout.write(f"{sum(row.events for row in rows)} events, {total} mismatches\n")
    return 1 if total else 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _fuzz(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("hypothesis") is None:
        sys.stderr.write("bpfns fuzz needs Hypothesis: pip install 'bpfns[hypothesis]'\n")
        return 2
    from ._fuzz import FuzzConfig, run_fuzz  # noqa: PLC0415 - needs the extra

    if args.id_end < 2 or args.max_level > 32:
        sys.stderr.write("bpfns fuzz: --id-end must be >= 2 and --max-level <= 32\n")
        return 2
    config = FuzzConfig(
        behavior=BEHAVIORS[args.behavior],
        seconds=args.seconds or (None if args.examples else 60.0),
        examples=args.examples,
        seed=args.seed,
        id_end=args.id_end,
        max_level=args.max_level,
        workers=args.workers,
        out=args.out,
        database=args.database,
    )
    return run_fuzz(config, sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bpfns`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "fuzz":
        return _fuzz(args)
    if args.command == "conformance":
        return _conformance(args)
    out: list[str] = []
    code = demo(args.behavior, args.seed, out)
    sys.stdout.write("\n".join(out) + "\n")
    return code
