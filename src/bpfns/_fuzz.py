"""``bpfns fuzz``: run :class:`bpfns.testing.BpfnsMachine` until a time or example budget.

Each worker runs batches of examples, each batch with its own seed drawn from the run's
seed (random unless given; the summary prints it, so a run can be repeated), and prints
progress to stderr after every batch. All workers share one Hypothesis example
database: a directory (:class:`~hypothesis.database.DirectoryBasedExampleDatabase`, by
default ``OUT/.bpfns-fuzz-db``; it works on a network file system) or a Redis server
(``redis://HOST:PORT``, :class:`~hypothesis.extra.redis.RedisExampleDatabase`, the
``redis`` extra). A worker's first batch replays the saved failures (Hypothesis's
``reuse`` phase), its later batches explore.

A failure is shrunk by Hypothesis and written as a runnable Python script next to a
JSON record of the run (configuration, seeds, the error and Hypothesis's
``@reproduce_failure`` blob) and the event trace of the shrunk program (JSON Lines, for
``bpfns show`` and :func:`bpfns.replay`). Without ``keep_going`` the run stops at the
first failure; with it, every worker goes on until the budget is spent and the
failures are deduplicated by what failed (:func:`failure_key`). The summary on stdout
gives examples, steps, distinct failures, the seed and the time; the exit code is 1 if
anything failed.

The time budget is a deadline from the start of the run, the start-up of worker
processes included. Hypothesis is never interrupted (an interrupted example would make
the saved database inconsistent): near the deadline a worker sizes its batches from the
time its examples took so far, so a clean run stops within about one example of the
deadline. A failure is always shrunk before it is reported, and shrinking (a few
seconds per distinct failure) may run past the deadline.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import random
import re
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Any

import attrs

from ._behavior import Behavior
from ._errors import InvariantViolation, KernelBug
from ._trace import Trace

__all__ = ["FuzzConfig", "FuzzSummary", "failure_key", "open_database", "run_fuzz"]

#: The most examples in one batch (one Hypothesis run), and the first batch's size.
BATCH = 25
FIRST_BATCH = 5
#: The extra that provides the Redis database (and its install command from a checkout).
REDIS_HINT = "pip install -e '.[redis]' (from a checkout; from an index: bpfns[redis])"


@attrs.frozen
class FuzzConfig:
    """What to fuzz and for how long (the options of ``bpfns fuzz``).

    ``seed=None`` draws a random seed (see :func:`run_fuzz`); ``database`` is a
    directory or ``redis://HOST:PORT[/DB]`` (None: ``out/.bpfns-fuzz-db``).
    """

    behavior: Behavior
    seconds: float | None = None
    examples: int | None = None
    seed: int | None = None
    id_end: int = 6
    max_level: int = 3
    workers: int = 1
    out: Path = Path()
    database: str | None = None
    keep_going: bool = False


@attrs.frozen
class Failure:
    """One failure a worker found: what failed and the shrunk program that shows it."""

    key: str
    error: str
    program: str
    reproduce_failure: str | None
    worker: int
    batch_seed: int


@attrs.define
class _Stats:
    examples: int = 0
    steps: int = 0


@attrs.frozen
class WorkerResult:
    """What one worker did (sent back to the parent process)."""

    examples: int
    steps: int
    failures: tuple[Failure, ...]


@attrs.frozen
class FuzzSummary:
    """A whole run: its totals and the distinct failures, in the order found.

    ``examples`` counts every run of the machine, the shrinker's included.
    """

    seed: int
    examples: int
    steps: int
    failures: tuple[Failure, ...]
    seconds: float

    def text(self) -> str:
        """The summary line ``bpfns fuzz`` prints on stdout, then one line per failure."""
        lines = [
            f"bpfns fuzz: {self.examples} examples, {self.steps} steps, "
            f"{len(self.failures)} distinct failures, seed {self.seed}, "
            f"{self.seconds:.1f}s (repeat with --seed {self.seed})"
        ]
        lines.extend(f"  {failure.key}" for failure in self.failures)
        return "\n".join(lines) + "\n"


_NUMBER = re.compile(r"\b(?:0x[0-9a-f]+|\d+)\b")


def failure_key(error: BaseException) -> str:
    """What failed, without the numbers of one example: the deduplication key.

    A kernel bug is its defect and kind (``KernelBug D1 uninit-value``), a broken
    invariant its name; anything else is its type and the first line of its message
    with every number as ``N``. Two shrunk programs that break the same invariant count
    once.

    >>> failure_key(ValueError("ns 4026531840: id 3 listed twice"))
    'ValueError: ns N: id N listed twice'
    """
    if isinstance(error, KernelBug):
        return f"KernelBug {error.report.defect} {error.report.kind.value}"
    if isinstance(error, InvariantViolation):
        return f"InvariantViolation {error.invariant!r}"
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {_NUMBER.sub('N', first)}"


def open_database(spec: str | None, out: Path) -> Any:
    """The Hypothesis example database ``spec`` names: a directory, or a Redis URL.

    Raises:
        ModuleNotFoundError: for ``redis://`` without the ``redis`` package (the
            message gives :data:`REDIS_HINT`).
        ConnectionError: if the Redis server does not answer a ping.

    >>> open_database(None, Path("out"))
    DirectoryBasedExampleDatabase(PosixPath('out/.bpfns-fuzz-db'))
    """
    from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: PLC0415

    if spec is not None and spec.startswith("redis://"):
        try:
            from hypothesis.extra.redis import RedisExampleDatabase  # noqa: PLC0415
            from redis import Redis  # noqa: PLC0415
            from redis.exceptions import RedisError  # noqa: PLC0415
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(f"--database {spec} needs redis: {REDIS_HINT}") from e
        client = Redis.from_url(spec)
        try:
            client.ping()
        except RedisError as e:
            raise ConnectionError(
                f"--database {spec}: cannot reach the Redis server ({e}); start it, or "
                "check the host and port"
            ) from e
        return RedisExampleDatabase(client)
    return DirectoryBasedExampleDatabase(spec or str(out / ".bpfns-fuzz-db"))


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
    """The runnable part of Hypothesis's report, without the step counter's calls.

    Empty when the report has none: Hypothesis itself failed (a health check, a flaky
    example), not the machine.
    """
    # Hypothesis heads the program "Falsifying example:" (before 6.170) or "Failing test
    # case: <state machine>"; it always runs from "state = ..." to "state.teardown()".
    text = "\n".join(notes)
    start = text.find("state = ")
    if start < 0 or "state.teardown()" not in text[start:]:
        return ""
    body = text[start : text.index("state.teardown()", start)] + "state.teardown()"
    return "\n".join(line for line in body.splitlines() if "count_step()" not in line)


def _failures(error: Exception, worker: int, batch_seed: int) -> list[Failure]:
    """The failures in what Hypothesis raised (a group when it reports several bugs)."""
    errors = list(error.exceptions) if isinstance(error, ExceptionGroup) else [error]
    found = []
    for each in errors:
        notes = list(getattr(each, "__notes__", []))
        found.append(
            Failure(
                key=failure_key(each),
                error=f"{type(each).__name__}: {each}",
                program=_program(notes),
                reproduce_failure=next((n for n in notes if "reproduce_failure" in n), None),
                worker=worker,
                batch_seed=batch_seed,
            )
        )
    return found


def _batch(
    machine: type[Any], batch_seed: int, worker: int, examples: int, **options: Any
) -> list[Failure]:
    """One Hypothesis run of ``examples`` examples; the failures it reported."""
    from hypothesis import seed as hypothesis_seed  # noqa: PLC0415
    from hypothesis import settings  # noqa: PLC0415
    from hypothesis.stateful import run_state_machine_as_test  # noqa: PLC0415

    try:
        run_state_machine_as_test(
            hypothesis_seed(batch_seed)(machine),
            # Hypothesis's own defaults, not the loaded profile: a profile that
            # derandomizes (as test suites' CI profiles do) would repeat one batch.
            settings=settings(
                settings.get_profile("default"), max_examples=examples, deadline=None, **options
            ),
        )
    except Exception as e:
        return _failures(e, worker, batch_seed)
    return []


@attrs.frozen
class Budget:
    """When a run started and when it must stop (``time.time()``, shared by workers)."""

    start: float
    deadline: float | None


def batch_size(budget: Budget, stats_examples: int, left: int | None, now: float) -> int:
    """How many examples the next batch runs (at least 1).

    At most :data:`BATCH`, what is ``left``, and what fits before the deadline at the
    pace so far.

    >>> batch_size(Budget(0.0, 10.0), 100, None, now=9.5)  # 0.095 s each, 0.5 s left
    5
    """
    size = BATCH if left is None else min(BATCH, left)
    if budget.deadline is not None:
        if stats_examples == 0:
            return min(size, FIRST_BATCH)
        pace = (now - budget.start) / stats_examples
        size = min(size, int((budget.deadline - now) / pace))
    return max(1, size)


def fuzz_worker(config: FuzzConfig, worker: int, budget: Budget, stderr: IO[str]) -> WorkerResult:
    """One worker: batches until the budget is spent (or the first failure)."""
    from hypothesis import Phase  # noqa: PLC0415

    assert config.seed is not None  # run_fuzz resolved it
    stats = _Stats()
    rng = random.Random(f"{config.seed}/{worker}")
    database = open_database(config.database, config.out)
    machine = _machine(config, stats)
    found: dict[str, Failure] = {}
    options: dict[str, Any] = {"database": database, "report_multiple_bugs": config.keep_going}
    while config.examples is None or stats.examples < config.examples:
        now = time.time()
        if options.get("phases") and budget.deadline is not None and now >= budget.deadline:
            break  # (the first batch, the replay of saved failures, always runs)
        left = None if config.examples is None else config.examples - stats.examples
        size = batch_size(budget, stats.examples, left, now)
        batch_seed = rng.getrandbits(64)
        for failure in _batch(machine, batch_seed, worker, size, **options):
            found.setdefault(failure.key, failure)
        # The first batch replayed the database's failures; the later ones explore.
        options["phases"] = [Phase.generate, Phase.target, Phase.shrink]
        stderr.write(
            f"[worker {worker}] examples {stats.examples} steps {stats.steps} "
            f"elapsed {time.time() - budget.start:.1f}s failures {len(found)}\n"
        )
        if found and not config.keep_going:
            break
    return WorkerResult(stats.examples, stats.steps, tuple(found.values()))


def _write(config: FuzzConfig, index: int, failure: Failure, stderr: IO[str]) -> None:
    """The failure's JSON record, and its script and trace: ``bpfns-fuzz-<seed>-<index>.*``."""
    stem = config.out / f"bpfns-fuzz-{config.seed}-{index}"
    config.out.mkdir(parents=True, exist_ok=True)
    record = {
        "behavior": attrs.asdict(config.behavior),
        "defects": list(config.behavior.defects()),
        "id_end": config.id_end,
        "max_level": config.max_level,
        "seed": config.seed,
        "worker": failure.worker,
        "batch_seed": failure.batch_seed,
        "key": failure.key,
        "error": failure.error,
        "program": failure.program.splitlines(),
        "reproduce_failure": failure.reproduce_failure,
        "trace": None,
    }
    wrote = [stem.with_suffix(".json")]
    if failure.program:  # (none when Hypothesis itself failed: the record says how)
        script, trace_path = stem.with_suffix(".py"), stem.with_suffix(".jsonl")
        script.write_text(_script(config, failure.program))
        _trace_of(config, failure.program).to_jsonl(trace_path)
        record["trace"] = trace_path.name
        wrote = [script, wrote[0], trace_path]
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    stderr.write(
        f"FAILURE {index}: {failure.error}\n{failure.program}\n"
        f"wrote {', '.join(map(str, wrote))}\n"
    )


def _pool_worker(args: tuple[FuzzConfig, int, Budget]) -> WorkerResult:  # pragma: no cover
    config, worker, budget = args  # (a child process: covered by the parent's result)
    return fuzz_worker(config, worker, budget, sys.stderr)


def run_fuzz(config: FuzzConfig, stdout: IO[str], stderr: IO[str]) -> FuzzSummary:
    """Run ``config.workers`` workers; write each distinct failure; print the summary.

    A ``seed`` of None is drawn at random (and printed); ``seconds`` is a deadline from
    this call, start-up of the worker processes included.

    Raises:
        ModuleNotFoundError, ConnectionError: for a Redis ``database`` that cannot be
            used (see :func:`open_database`), before any worker starts.

    >>> import io, bpfns
    >>> out = io.StringIO()
    >>> summary = run_fuzz(FuzzConfig(bpfns.FIXED, examples=2, seed=7), out, io.StringIO())
    >>> summary.failures, summary.seed, out.getvalue().startswith("bpfns fuzz: 2 examples")
    ((), 7, True)
    """
    if config.seed is None:
        config = attrs.evolve(config, seed=secrets.randbits(32))
    open_database(config.database, config.out)  # an unreachable one fails here, once
    start = time.time()
    budget = Budget(start, None if config.seconds is None else start + config.seconds)
    if config.workers == 1:
        results = [fuzz_worker(config, 0, budget, stderr)]
    else:
        per_worker = config
        if config.examples is not None:
            per_worker = attrs.evolve(config, examples=-(-config.examples // config.workers))
        context = multiprocessing.get_context("spawn")
        jobs = [(per_worker, w, budget) for w in range(config.workers)]
        with context.Pool(config.workers) as pool:
            results = pool.map(_pool_worker, jobs)
    distinct: dict[str, Failure] = {}
    for result in results:
        for failure in result.failures:
            distinct.setdefault(failure.key, failure)
    for index, failure in enumerate(distinct.values()):
        _write(config, index, failure, stderr)
    assert config.seed is not None
    summary = FuzzSummary(
        seed=config.seed,
        examples=sum(r.examples for r in results),
        steps=sum(r.steps for r in results),
        failures=tuple(distinct.values()),
        seconds=time.time() - start,
    )
    stdout.write(summary.text())
    return summary
