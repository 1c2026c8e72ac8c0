r"""The ``bpfns`` command (console script and ``python -m bpfns``).

``bpfns demo`` builds the seed's hierarchy (init; child_a, child_b; child_b_a,
child_b_b), gives a map, a program and a link ids in child_b_b, and prints the tree, the
ids of each object at its three levels, and what every namespace sees.

``bpfns show TRACE`` lists what a namespace sees at a step of a trace (bpftool's
``map show``, ``prog show``, ``link show``); ``bpfns replay TRACE`` re-runs a trace
and checks every id (:func:`bpfns.replay`).

``bpfns fuzz`` runs :class:`bpfns.testing.BpfnsMachine` (needs the ``hypothesis``
extra); see :mod:`bpfns._fuzz`.

``bpfns explore SCENARIO`` explores a race of :mod:`bpfns.concurrency.scenarios` on
simulated CPUs and prints the shortest failing schedule as a swimlane; ``bpfns explore
--list`` lists the catalogue.

Exit codes: 0 success, 1 a failure was found (a replay that differs, a fuzz failure, a
conformance mismatch), 2 the command could not run as asked (a bad option or path, a file
that is not a valid trace); a one-line reason goes to stderr, never a traceback.

What a trace file holds reaches the terminal escaped: control characters are printed as
``\x1b`` and the like, so that a hostile namespace name cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NoReturn, TypeVar

from ._behavior import FIXED, RFC
from ._bpf_namespace import CLONE_NEWBPF, Namespace, ObjType
from ._bpf_object import BpfObject
from ._capability import Cap
from ._errors import HYPOTHESIS_HINT, BpfnsError
from ._kernel import Kernel
from ._render import render_listing, render_obj_id, render_tree
from ._replay import load_trace, replay
from ._run import run
from ._task import Task
from ._trace import ReplayMismatchError, TraceError
from ._viewer import view

__all__ = ["main"]

BEHAVIORS = {"rfc": RFC, "fixed": FIXED}

_T = TypeVar("_T")

#: The most fuzz workers a run may start: a few per CPU (more only thrash).
MAX_WORKERS = 4 * (os.cpu_count() or 1)

EXIT_CODES = """exit codes:
  0  success
  1  a failure was found (the replay differs, a fuzz failure, a conformance mismatch)
  2  the command could not run as asked (bad option or path, not a valid trace)"""

#: C0 and C1 control characters and DEL, except the newline and the tab of our own output.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    r"""``text`` with every control character escaped, for a terminal.

    >>> terminal_safe("ns\x1b[31m\tok\n")
    'ns\\x1b[31m\tok\n'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _write(stream: IO[str], text: str) -> None:
    """Write ``text`` to ``stream`` with its control characters escaped."""
    stream.write(terminal_safe(text))


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        _write(sys.stderr, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_seed_world(k: Kernel) -> dict[str, Task]:
    """The seed's hierarchy, one task in each namespace, by ``clone(CLONE_NEWBPF)``.

    init -> child_a, child_b; child_b -> child_b_a, child_b_b. The keys are the
    namespaces' names; ``world[name].bpf_ns`` is the namespace.
    """
    init = k.init_task
    child_a = init.clone(CLONE_NEWBPF, name="a", ns_name="child_a")
    child_b = init.clone(CLONE_NEWBPF, name="b", ns_name="child_b")
    return {
        "init_bpf_ns": init,
        "child_a": child_a,
        "child_b": child_b,
        "child_b_a": child_b.clone(CLONE_NEWBPF, name="b_a", ns_name="child_b_a"),
        "child_b_b": child_b.clone(CLONE_NEWBPF, name="b_b", ns_name="child_b_b"),
    }


def _make_objects(task: Task, counts: Sequence[int], label: str) -> None:
    """``counts`` maps, programs and links; the links attach the first program."""
    maps, progs, links = counts
    for i in range(maps):
        task.map_create(name=f"{label}_map{i}")
    prog_fds = [task.prog_load(name=f"{label}_prog{i}") for i in range(progs or links > 0)]
    for _ in range(links):
        task.link_create(prog_fds[0])


def build_demo_world(
    k: Kernel, seed: int | None
) -> tuple[dict[str, Task], dict[ObjType, BpfObject]]:
    """The demo's world in ``k``: the seed's tree, host objects, and child_b_b's three.

    Returns the tasks by namespace name and child_b_b's map, program and link.
    """
    world = build_seed_world(k)
    rng = random.Random(seed)
    # Objects that existed before the container started, so that the levels differ.
    host = [rng.randint(1, 5) for _ in ObjType] if seed is not None else [2, 3, 4]
    mid = [rng.randint(0, 3) for _ in ObjType] if seed is not None else [1, 1, 1]
    _make_objects(world["init_bpf_ns"], host, "host")
    _make_objects(world["child_b"], mid, "b")
    ctr = world["child_b_b"]
    map_fd = ctr.map_create(name="m")
    prog_fd = ctr.prog_load(name="p", maps=(map_fd,))
    link_fd = ctr.link_create(prog_fd)
    assert ctr.files is not None
    made = {
        t: ctr.files.get(fd).obj for t, fd in zip(ObjType, (map_fd, prog_fd, link_fd), strict=True)
    }
    return world, made


def demo(behavior: str, seed: int | None, out: list[str], trace: Path | None = None) -> int:
    """Run the demo, appending its lines to ``out``; returns the exit code."""
    k = Kernel(BEHAVIORS[behavior], trace=trace is not None)
    world, made = build_demo_world(k, seed)
    ctr = world["child_b_b"]
    out.append(f"bpfns demo: behaviour {behavior.upper()}, defects {k.behavior.defects()}")
    out.append("")
    out.append("Namespace tree (live ids per type in each namespace):")
    out.append(render_tree(k.init_ns))
    for type_, obj in made.items():
        out.append("")
        out.append(f"The {type_.name.lower()} created in child_b_b has one id per level:")
        assert isinstance(obj, BpfObject) and obj.obj_id is not None
        out.append(render_obj_id(obj.obj_id))
    out.append("")
    out.append("What each namespace lists (BPF_*_GET_NEXT_ID, as `bpftool map list` walks it):")
    for name, task in world.items():
        seen = "   ".join(f"{kind}s [{' '.join(map(str, _walk(task, kind)))}]" for kind in KINDS)
        out.append(f"  {name:<12} {seen}")
    out.append("")
    out.append("How each namespace numbers child_b_b's three objects (0 = not visible):")
    for name, task in world.items():
        ns = task.bpf_ns
        ids = {t: o.obj_id.nr_ns(ns) for t, o in made.items() if o.obj_id is not None}
        seen = ", ".join(f"{t.name.lower()} {nr}" for t, nr in ids.items())
        wrong = not ns.is_ancestor_of(ctr.bpf_ns) and ids[ObjType.MAP]
        note = "   <- D6: another branch's numbers" if wrong else ""
        out.append(f"  {name:<12} {seen}{note}")
    k.check()
    if trace is not None:
        try:
            k.trace.to_jsonl(trace)
        except OSError as err:
            out.append("")
            out.append(f"bpfns demo: cannot write the trace to {trace}: {err.strerror or err}")
            return 2
        out.append("")
        out.append(f"Trace written to {trace}; list what child_b_b sees with")
        out.append(f"  bpfns show {trace} --ns /child_b/child_b_b")
    return 0


KINDS = ("map", "prog", "link")


def _walk(task: Task, kind: str) -> list[int]:
    """``<kind>_get_next_id`` from 0 until ENOENT, as bpftool walks the ids."""
    get_next = getattr(task, f"{kind}_get_next_id")
    ids: list[int] = []
    while True:
        try:
            ids.append(get_next(ids[-1] if ids else 0))
        except BpfnsError:
            return ids


def find_namespace(k: Kernel, path: str) -> Namespace:
    """The live namespace at ``path``: ``/`` is init, ``/child_b/child_b_b`` by labels.

    Names are labels, and two siblings may share one; a path that reaches such a pair
    is ambiguous.

    Raises:
        ValueError: naming the children that do exist where a step of the path fails,
            or the candidates where it is ambiguous.
    """
    ns = k.init_ns
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == ns.label():
        parts = parts[1:]
    walked = ""
    for part in parts:
        kids = [child for child in ns.children() if child.label() == part]
        if not kids:
            there = ", ".join(child.label() for child in ns.children()) or "no live children"
            raise ValueError(f"no namespace {part!r} under {walked or '/'} ({there})")
        if len(kids) > 1:
            found = ", ".join(repr(child) for child in kids)
            raise ValueError(
                f"{walked}/{part} is ambiguous: {len(kids)} namespaces have that name "
                f"({found}); name them apart when you create them"
            )
        ns, walked = kids[0], f"{walked}/{part}"
    return ns


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Help with each option's default shown, and the epilog's exit codes kept as written."""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bpfns",
        description="Simulate hierarchical BPF namespaces (the 2023 RFC).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(
        name: str, summary: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description or summary,
            epilog=EXIT_CODES,
            formatter_class=_HelpFormatter,
        )

    p_demo = command("demo", "build the seed's namespace tree and show its ids")
    p_demo.add_argument(
        "--behavior", choices=sorted(BEHAVIORS), default="rfc", help="the RFC as posted, or fixed"
    )
    p_demo.add_argument("--seed", type=int, default=None, help="vary the pre-existing objects")
    p_demo.add_argument(
        "--trace", type=_new_file, default=None, help="write the event trace to this file"
    )
    p_show = command(
        "show",
        "list the objects a namespace sees in a trace (like bpftool)",
        "Replay TRACE (up to --step) and list the maps, programs and links "
        "visible from the namespace at --ns, with the ids that namespace sees.",
    )
    p_show.add_argument("trace", type=Path, help="a JSON Lines trace (Kernel(trace=True))")
    p_show.add_argument("--ns", default="/", help="namespace path, e.g. /child_b/child_b_b")
    p_show.add_argument(
        "--step", type=_positive(int, zero=True), help="a step number >= 0 (None: the last)"
    )
    p_show.add_argument(
        "--html",
        type=_new_file,
        default=None,
        metavar="OUT.html",
        help="write the step-through viewer of the whole trace to this file (opens in any "
        "browser, offline) instead of listing",
    )
    p_replay = command(
        "replay",
        "re-run a trace and check that every id matches",
        "Rebuild the world TRACE describes on a fresh kernel; exit 1 if the "
        "replay differs from the trace, 2 if the file is not a valid trace.",
    )
    p_replay.add_argument("trace", type=Path, help="a JSON Lines trace (Kernel(trace=True))")
    p_fuzz = command(
        "fuzz",
        "run the BpfnsMachine; exit 1 and write the shrunk program on a failure",
        "Fuzz id allocation with bpfns.testing.BpfnsMachine. Progress goes to "
        "stderr; a failure is written as a runnable script and a JSON record.",
    )
    p_fuzz.add_argument(
        "--behavior",
        choices=sorted(BEHAVIORS),
        default="fixed",
        help="fixed: find bpfns's bugs; rfc: find the RFC's defects",
    )
    budget = p_fuzz.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=_positive(float), help="time budget (None: 60)")
    budget.add_argument("--examples", type=_positive(int), help="example budget")
    p_fuzz.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the run's seed (None: a random one, printed in the summary to repeat the run)",
    )
    p_fuzz.add_argument(
        "--keep-going",
        action="store_true",
        help="do not stop at the first failure: collect every distinct one until the budget",
    )
    p_fuzz.add_argument("--id-end", type=_positive(int), default=6, help="ids 1..N-1")
    p_fuzz.add_argument(
        "--max-level", type=_positive(int), default=3, help="the deepest namespace level"
    )
    p_fuzz.add_argument(
        "--workers",
        type=_positive(int, most=MAX_WORKERS),
        default=1,
        help=f"worker processes, at most {MAX_WORKERS} (4 per CPU)",
    )
    p_fuzz.add_argument("--out", type=_directory, default=Path(), help="where failures go")
    p_fuzz.add_argument(
        "--database",
        type=_database,
        default=None,
        help="the shared Hypothesis example database: a directory or redis://HOST:PORT "
        "(None: OUT/.bpfns-fuzz-db)",
    )
    p_conf = command(
        "conformance",
        "compare bpfns with the running kernel (root, Linux 6.14+)",
        "Run seeded pid-namespace scenarios and bpf() id sequences on the live "
        "kernel and on bpfns; print scenario, events and mismatches; exit 1 on a mismatch.",
    )
    p_conf.add_argument("--seed", type=int, default=0, help="the first scenario's seed")
    p_conf.add_argument(
        "--scenarios", type=_positive(int), default=10, help="how many pid scenarios"
    )
    p_run = command(
        "run",
        "run a real program (bpftool...) with its bpf() calls answered by bpfns",
        "Run PROGRAM natively as a new simulated task in the namespace at --ns; every "
        "bpf() call it makes is answered by the simulated kernel (seccomp user "
        "notification, Linux 5.14+ on x86_64). Exits with PROGRAM's exit code (128+N "
        "if signal N killed it); 2 if it could not be run.",
    )
    world = p_run.add_mutually_exclusive_group()
    world.add_argument(
        "--world", type=Path, metavar="TRACE.jsonl", help="start from the world a trace built"
    )
    world.add_argument("--demo", action="store_true", help="start from the demo's world")
    p_run.add_argument(
        "--behavior",
        choices=sorted(BEHAVIORS),
        default=None,
        help="the RFC as posted, or fixed (None: rfc; a --world trace has its own)",
    )
    p_run.add_argument("--ns", default="/", help="namespace path, e.g. /child_b/child_b_b")
    p_run.add_argument("--uid", type=_positive(int, zero=True), help="the effective uid")
    p_run.add_argument(
        "--caps",
        type=_caps,
        default=None,
        help="the capabilities to keep, comma-separated (CAP_BPF,CAP_PERFMON) or 'none' "
        "(None: the task's own)",
    )
    p_run.add_argument(
        "--trace", type=_new_file, default=None, help="write the session's trace to this file"
    )
    p_run.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    p_explore = command(
        "explore",
        "explore the interleavings of a race scenario on simulated CPUs",
        "Run a scenario of bpfns.concurrency.scenarios under every schedule with at "
        "most --bound preemptions, and print the shortest failing schedule as a "
        "swimlane diagram; exit 1 if a schedule fails.",
    )
    p_explore.add_argument("scenario", nargs="?", help="a scenario name (see --list)")
    p_explore.add_argument("--list", action="store_true", help="list the scenarios")
    p_explore.add_argument(
        "--behavior", choices=sorted(BEHAVIORS), default="rfc", help="the RFC as posted, or fixed"
    )
    p_explore.add_argument(
        "--bound", type=_positive(int, zero=True), default=2, help="the preemption bound"
    )
    return parser


def _explore(args: argparse.Namespace) -> int:
    from .concurrency import scenarios  # noqa: PLC0415 - only this command needs it

    if args.scenario is None and not args.list:
        sys.stderr.write("bpfns explore: name a scenario (bpfns explore --list shows them)\n")
        return 2
    if args.list:
        width = max(len(s.name) for s in scenarios.CATALOGUE)
        sys.stdout.write(f"{'scenario':<{width}}  {'rfc':<14} {'fixed':<8} what\n")
        for s in scenarios.CATALOGUE:
            rfc, fixed = s.expect["rfc"], s.expect["fixed"]
            sys.stdout.write(f"{s.name:<{width}}  {rfc:<14} {fixed:<8} {s.title}\n")
        return 0
    try:
        scenario = scenarios.get(args.scenario)
    except ValueError as err:
        _write(sys.stderr, f"bpfns explore: {err}\n")
        return 2
    check = scenario.check(args.behavior, preemption_bound=int(args.bound))
    result = check.result
    sys.stdout.write(
        f"# {scenario.name} ({args.behavior}): {scenario.title}\n"
        f"{result.schedules} schedules, exhaustive={result.exhaustive}, "
        f"{len(result.failures)} failing; expected {scenario.expect[args.behavior]}, "
        f"got {check.verdict}\n"
    )
    if check.observed is not None:
        sys.stdout.write(f"{scenario.observation}: {'seen' if check.observed else 'never'}\n")
    if result.failures:
        run = result.shortest()
        _write(sys.stdout, f"\nshortest failing schedule:\n{run.swimlane()}\n")
        return 1
    return 0


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


def _positive(
    kind: type[int] | type[float], *, zero: bool = False, most: int | None = None
) -> Callable[[str], float]:
    """An argparse type: a finite number > 0 (>= 0 with ``zero``), at most ``most``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        least = "a number >= 0" if zero else "a positive number"
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {least}, not {text}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _new_file(text: str) -> Path:
    """An argparse type: a file to write, in a directory that exists (checked first)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; name a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {path.parent} does not exist")
    return path


def _directory(text: str) -> Path:
    """An argparse type: a directory that exists, or whose nearest existing part is one."""
    path = Path(text)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is not a directory")
    return path


def _database(value: str) -> str:
    """``--database``: a Redis URL as given, or a directory (see :func:`_directory`)."""
    if value.startswith("redis://"):
        return value
    if "://" in value:
        raise argparse.ArgumentTypeError(f"{value}: a directory or redis://HOST:PORT")
    return str(_directory(value))


def _fuzz(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("hypothesis") is None:
        sys.stderr.write(f"bpfns fuzz needs Hypothesis: {HYPOTHESIS_HINT}\n")
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
        keep_going=args.keep_going,
    )
    try:
        summary = run_fuzz(config, sys.stdout, sys.stderr)
    except (ModuleNotFoundError, ConnectionError) as e:  # redis:// that cannot be used
        sys.stderr.write(f"bpfns fuzz: {e}\n")
        return 2
    return 1 if summary.failures else 0


def _on_trace(path: Path, use: Callable[[], _T]) -> _T | int:
    """``use()`` of the trace at ``path``, or the exit code of its error (printed).

    1 for a replay that differs from the trace, 2 for a file that is no valid trace.
    """
    try:
        return use()
    except ReplayMismatchError as err:
        _write(sys.stderr, f"bpfns: the replay differs from the trace: {err}\n")
        return 1
    except (TraceError, OSError) as err:
        _write(sys.stderr, f"bpfns: cannot use {path}: {err}\n")
        return 2


def _replayed(path: Path, step: int | None) -> tuple[Kernel, int] | int:
    """Replay ``path`` up to ``step``: the world and the trace's length, or an exit code."""

    def rebuild() -> tuple[Kernel, int] | int:
        trace = load_trace(path)
        if step is not None and step > trace.steps:
            _write(sys.stderr, f"bpfns: {path} has steps 0 to {trace.steps}, not {step}\n")
            return 2
        return replay(trace, until=step), trace.steps

    return _on_trace(path, rebuild)


def _show_html(args: argparse.Namespace) -> int:
    """``bpfns show TRACE --html OUT``: the viewer page (see :func:`bpfns.view`)."""
    page = _on_trace(args.trace, lambda: view(args.trace, limit=100_000))
    if isinstance(page, int):
        return page
    page.save(args.html)
    _write(sys.stdout, f"wrote {args.html}: steps 0 to {page.steps}; open it in a browser\n")
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.html is not None:
        return _show_html(args)
    result = _replayed(args.trace, args.step)
    if isinstance(result, int):
        return result
    k, steps = result
    try:
        ns = find_namespace(k, args.ns)
    except ValueError as err:
        _write(sys.stderr, f"bpfns show: {err}\n")
        return 2
    step = steps if args.step is None else args.step
    _write(sys.stdout, f"# {ns.label()} (level {ns.level}) at step {step} of {steps}\n")
    _write(sys.stdout, render_listing(ns) + "\n")
    return 0


def _replay(args: argparse.Namespace) -> int:
    result = _replayed(args.trace, None)
    if isinstance(result, int):
        return result
    k, steps = result
    _write(
        sys.stdout,
        f"{args.trace}: {steps} steps, {len(k.trace)} events replayed; every id matches\n",
    )
    _write(sys.stdout, render_tree(k.init_ns) + "\n")
    return 0


def _caps(text: str) -> frozenset[Cap]:
    """``CAP_BPF,CAP_PERFMON`` (or ``none``) as a set of capabilities."""
    if text.strip().lower() == "none":
        return frozenset()
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    known = {cap.name: cap for cap in Cap}
    wrong = [name for name in names if name not in known and f"CAP_{name}" not in known]
    if wrong:
        raise argparse.ArgumentTypeError(
            f"unknown capability {', '.join(wrong)} (known: {', '.join(known)}, or none)"
        )
    return frozenset(known.get(name) or known[f"CAP_{name}"] for name in names)


def _run_world(args: argparse.Namespace) -> Kernel | int:
    """The kernel ``bpfns run`` starts from (or an exit code, printed)."""
    if args.world is None:
        k = Kernel(BEHAVIORS[args.behavior or "rfc"], trace=args.trace is not None)
        if args.demo:
            build_demo_world(k, None)
        return k
    if args.behavior is not None:
        _write(sys.stderr, "bpfns run: --behavior: a --world trace fixes its own behaviour\n")
        return 2
    result = _replayed(args.world, None)
    return result if isinstance(result, int) else result[0]


def _run_task(k: Kernel, args: argparse.Namespace) -> Task | int:
    """The task ``bpfns run`` forks the program from: in ``--ns``, with the credentials."""
    try:
        ns = find_namespace(k, args.ns)
    except ValueError as err:
        _write(sys.stderr, f"bpfns run: {err}\n")
        return 2
    base = next((t for t in k.tasks() if t.bpf_ns is ns), None)
    if base is None:
        _write(sys.stderr, f"bpfns run: no live task in {args.ns} to fork the program from\n")
        return 2
    task = base.clone(0, name="bpfns-run")
    if args.uid is not None:
        task.set_euid(args.uid)
    if args.caps is not None:
        task.drop_capabilities(*(cap for cap in Cap if cap not in args.caps))
    return task


def _run(args: argparse.Namespace) -> int:
    """``bpfns run``: PROGRAM as a simulated task (:func:`bpfns.run`)."""
    argv = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not argv:
        _write(sys.stderr, "bpfns run: name the program to run: bpfns run -- bpftool map list\n")
        return 2
    k = _run_world(args)
    if isinstance(k, int):
        return k
    task = _run_task(k, args)
    if isinstance(task, int):
        return task
    try:
        result = run(task, argv)
    except FileNotFoundError as err:
        _write(sys.stderr, f"bpfns run: {err.strerror}\n")
        return 2
    except RuntimeError as err:
        _write(sys.stderr, f"bpfns run: {err}\n")
        return 2
    finally:
        task.exit()
    for bug in result.reports:
        _write(sys.stderr, f"bpfns run: the program's bpf() call oopsed: {bug}\n")
    if not result.reports:  # after an oops the RFC's kernel is what the oops left
        k.check()
    if args.trace is not None:
        k.trace.to_jsonl(args.trace)
    code = result.returncode
    return 128 - code if code < 0 else code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bpfns`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    commands = {
        "fuzz": _fuzz,
        "conformance": _conformance,
        "show": _show,
        "replay": _replay,
        "explore": _explore,
        "run": _run,
    }
    if args.command in commands:
        return commands[args.command](args)
    out: list[str] = []
    code = demo(args.behavior, args.seed, out, args.trace)
    sys.stdout.write("\n".join(out) + "\n")
    return code
