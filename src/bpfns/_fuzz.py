"""``bpfns fuzz``: run :class:`bpfns.testing.BpfnsMachine` until a time or example budget.

Each worker runs batches of examples, each batch with its own seed drawn from the run's
seed, and prints progress to stderr after every batch. All workers share one Hypothesis
example database (a directory), so a failure one worker finds is replayed first by the
others and by later runs. On a failure the shrunk program is written as a runnable
Python script next to a JSON record of the run (configuration, seeds, the error and
Hypothesis's ``@reproduce_failure`` blob) and the event trace of the shrunk program
(JSON Lines, for ``bpfns show`` and :func:`bpfns.replay`), and the command exits 1.

For campaigns across machines, point every machine at one shared database: Hypothesis's
:class:`~hypothesis.database.DirectoryBasedExampleDatabase` works on a network file
system, and any :class:`~hypothesis.database.ExampleDatabase` (for example a Redis one
from ``hypothesis[redis]``) can be used by subclassing and setting ``settings.database``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import IO, Any

import attrs

from ._behavior import Behavior
from ._trace import Trace

__all__ = ["FuzzConfig", "run_fuzz"]

BATCH = 25


@attrs.frozen
class FuzzConfig:
    """What to fuzz and for how long (the options of ``bpfns fuzz``)."""

    behavior: Behavior
    seconds: float | None = None
    examples: int | None = None
    seed: int = 0
    id_end: int = 6
    max_level: int = 3
    workers: int = 1
    out: Path = Path()
    database: Path | None = None


@attrs.define
class _Stats:
    examples: int = 0
    steps: int = 0


def _machine(config: FuzzConfig, stats: _Stats) -> type[Any]:
    from hypothesis.stateful import invariant  # noqa: PLC0415 - the hypothesis extra

    from .testing import BpfnsMachine  # noqa: PLC0415

    class FuzzMachine(BpfnsMachine):
        behavior = config.behavior
        id_end = config.id_end
        max_level = config.max_level

        def __init__(self) -> None:
            super().__init__()
            stats.examples += 1

        @invariant()
        def count_step(self) -> None:
            stats.steps += 1

    return FuzzMachine


def _script(config: FuzzConfig, program: str) -> str:
    return (
        "# A failure found by `bpfns fuzz`; run it with python to reproduce.\n"
        "from bpfns import Behavior\n"
        "from bpfns.testing import BpfnsMachine\n\n\n"
        "class FuzzMachine(BpfnsMachine):\n"
        f"    behavior = {config.behavior!r}\n"
        f"    id_end = {config.id_end}\n"
        f"    max_level = {config.max_level}\n\n\n"
        f"{program}\n"
    )


def _trace_of(config: FuzzConfig, program: str) -> Trace:
    """Run the shrunk ``program`` (Hypothesis's own output) on a traced kernel."""
    from .testing import BpfnsMachine  # noqa: PLC0415 - the hypothesis extra

    class FuzzMachine(BpfnsMachine):
        behavior = config.behavior
        id_end = config.id_end
        max_level = config.max_level
        trace = True

    scope: dict[str, Any] = {"FuzzMachine": FuzzMachine}
    # The program is the text Hypothesis printed for this very failure, not user input;
    # it fails part-way, as it did when it was found.
    with contextlib.suppress(Exception):
        exec(program, scope)
    state = scope["state"]  # the program's first line: state = FuzzMachine()
    assert isinstance(state, FuzzMachine)
    return state.k.trace


def _program(notes: list[str]) -> str:
    """The runnable part of Hypothesis's report, without the step counter's calls."""
    # Hypothesis heads the program "Falsifying example:" (before 6.170) or "Failing test
    # case: <state machine>"; it always runs from "state = ..." to "state.teardown()".
    text = "\n".join(notes)
    start = text.index("state = ")
    body = text[start : text.index("state.teardown()", start)] + "state.teardown()"
    return "\n".join(line for line in body.splitlines() if "count_step()" not in line)


def fuzz_worker(config: FuzzConfig, worker: int, stderr: IO[str]) -> int:
    """One worker: batches until the budget is spent; 1 if a failure was found."""
    from hypothesis import seed as hypothesis_seed  # noqa: PLC0415
    from hypothesis import settings  # noqa: PLC0415
    from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: PLC0415
    from hypothesis.stateful import run_state_machine_as_test  # noqa: PLC0415

    stats = _Stats()
    rng = random.Random(f"{config.seed}/{worker}")
    database = DirectoryBasedExampleDatabase(str(config.database or config.out / ".bpfns-fuzz-db"))
    machine = _machine(config, stats)
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if config.seconds is not None and elapsed >= config.seconds:
            return 0
        if config.examples is not None and stats.examples >= config.examples:
            return 0
        batch_seed = rng.getrandbits(64)
        budget = BATCH if config.examples is None else config.examples - stats.examples
        try:
            run_state_machine_as_test(
                hypothesis_seed(batch_seed)(machine),
                settings=settings(
                    max_examples=min(BATCH, budget),
                    database=database,
                    deadline=None,
                    report_multiple_bugs=False,
                ),
            )
        except Exception as e:
            _report(config, worker, batch_seed, e, stats, start, stderr)
            return 1
        stderr.write(
            f"[worker {worker}] examples {stats.examples} steps {stats.steps} "
            f"elapsed {time.monotonic() - start:.1f}s failures 0\n"
        )


def _report(
    config: FuzzConfig,
    worker: int,
    batch_seed: int,
    error: Exception,
    stats: _Stats,
    start: float,
    stderr: IO[str],
) -> None:
    notes = list(getattr(error, "__notes__", []))
    program = _program(notes)
    stem = config.out / f"bpfns-fuzz-{config.seed}-{worker}"
    config.out.mkdir(parents=True, exist_ok=True)
    script = stem.with_suffix(".py")
    script.write_text(_script(config, program))
    blob = next((n for n in notes if "reproduce_failure" in n), None)
    trace_path = stem.with_suffix(".jsonl")
    _trace_of(config, program).to_jsonl(trace_path)
    record = {
        "behavior": attrs.asdict(config.behavior),
        "defects": list(config.behavior.defects()),
        "id_end": config.id_end,
        "max_level": config.max_level,
        "seed": config.seed,
        "worker": worker,
        "batch_seed": batch_seed,
        "error": f"{type(error).__name__}: {error}",
        "program": program.splitlines(),
        "reproduce_failure": blob,
        "trace": trace_path.name,
        "examples": stats.examples,
        "steps": stats.steps,
        "seconds": round(time.monotonic() - start, 3),
    }
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    stderr.write(
        f"[worker {worker}] examples {stats.examples} steps {stats.steps} "
        f"elapsed {record['seconds']}s failures 1\n"
        f"FAILURE: {record['error']}\n{program}\n"
        f"wrote {script}, {stem.with_suffix('.json')} and the trace {trace_path}\n"
    )


def _pool_worker(args: tuple[FuzzConfig, int]) -> int:  # pragma: no cover - child process
    config, worker = args
    return fuzz_worker(config, worker, sys.stderr)


def run_fuzz(config: FuzzConfig, stderr: IO[str]) -> int:
    """Run ``config.workers`` workers; returns 1 if any found a failure, else 0."""
    if config.workers == 1:
        return fuzz_worker(config, 0, stderr)
    per_worker = config
    if config.examples is not None:
        per_worker = attrs.evolve(config, examples=-(-config.examples // config.workers))
    context = multiprocessing.get_context("spawn")
    with context.Pool(config.workers) as pool:
        results = pool.map(_pool_worker, [(per_worker, w) for w in range(config.workers)])
    return max(results)
