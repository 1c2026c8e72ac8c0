"""BpfnsMachine steps per second (FIXED, invariants on) against the size of the world.

Each machine starts with N live maps in the initial namespace, held by a task outside
the machine's bundles, and then runs ordinary steps. Invariant checks touch only what a
step touched, so the rate should not fall with N. Target: the rate at 100,000 objects
within 2x of the rate at 10 (exit 1 otherwise). ``--quick`` runs tiny sizes only, to
check the script still works.
"""

from __future__ import annotations

import argparse
import sys
import time

from hypothesis import settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from bpfns import FIXED
from bpfns.testing import BpfnsMachine


def steps_per_second(live: int, examples: int, steps: int) -> float:
    clock = {"steps": 0, "time": 0.0, "last": 0.0}

    class Sized(BpfnsMachine):
        behavior = FIXED
        id_end = 0x7FFFFFFF
        initial_objects = live
        check_at_teardown = False

        @invariant()
        def tick(self) -> None:
            now = time.perf_counter()
            if clock["last"]:
                clock["time"] += now - clock["last"]
                clock["steps"] += 1
            clock["last"] = now

        def teardown(self) -> None:
            clock["last"] = 0.0

    run_state_machine_as_test(
        Sized,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            database=None,
            deadline=None,
            derandomize=True,
        ),
    )
    return clock["steps"] / clock["time"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes; no target check")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [10, 1_000, 100_000]
    examples, steps = (3, 20) if args.quick else (3, 200)
    steps_per_second(sizes[0], examples, steps)  # warm up caches and imports
    rates = {}
    for n in sizes:
        started = time.perf_counter()
        rates[n] = steps_per_second(n, examples, steps)
        print(f"  ({n} objects: {time.perf_counter() - started:.1f} s)", flush=True)
    for n, rate in rates.items():
        print(f"fuzz throughput, {n:>7} live objects: {rate:8.0f} steps/s", flush=True)
    ratio = rates[sizes[0]] / rates[sizes[-1]]
    verdict = "PASS" if ratio <= 2.0 else "FAIL"
    print(f"rate at {sizes[0]} / rate at {sizes[-1]}: {ratio:.2f} (target <= 2.00) {verdict}")
    return 0 if args.quick or ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
