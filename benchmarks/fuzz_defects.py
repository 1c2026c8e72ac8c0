"""How fast BpfnsMachine finds each defect of the posted RFC.

For each defect the machine runs against FIXED with only that defect switched on, with
fixed seeds and without shrinking, until the first failure. Prints the median number
of examples and seconds to the first failure, and checks the failure is the expected
one. ``--quick`` uses one seed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import attrs
from hypothesis import Phase, seed, settings
from hypothesis.stateful import run_state_machine_as_test

from bpfns import FIXED, InvariantViolation, KernelBug
from bpfns.testing import BpfnsMachine

DEFECTS = {
    "D1": ("d1_rollback_at_failed_level", 4, "UninitializedRead"),
    "D2": ("d2_obj_id_unpinned", 6, "UseAfterFree"),
    "D3": ("d3_create_returns_zero", 4, "D3: a create whose id allocation failed returns 0"),
    "D6": ("d6_nr_ns_unchecked", 6, "ancestor visibility"),
}


def first_failure(switch: str, end: int, seed_value: int) -> tuple[int, float, str]:
    made = [0]

    class Only(BpfnsMachine):
        behavior = attrs.evolve(FIXED, **{switch: True})
        id_end = end

        def __init__(self) -> None:
            super().__init__()
            made[0] += 1

    start = time.perf_counter()
    try:
        run_state_machine_as_test(
            seed(seed_value)(Only),
            settings=settings(
                max_examples=20_000, phases=[Phase.generate], database=None, deadline=None
            ),
        )
    except InvariantViolation as e:
        return made[0], time.perf_counter() - start, e.invariant
    except KernelBug as e:
        return made[0], time.perf_counter() - start, type(e).__name__
    return made[0], time.perf_counter() - start, "not found"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed per defect")
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(7))
    failed = False
    for defect, (switch, end, expected) in DEFECTS.items():
        runs = [first_failure(switch, end, s) for s in seeds]
        found = all(kind == expected for _, _, kind in runs)
        failed |= not found
        examples = statistics.median(n for n, _, _ in runs)
        seconds = statistics.median(t for _, t, _ in runs)
        print(
            f"{defect}: median {examples:6.1f} examples, {seconds:6.2f} s to the first "
            f"failure over {len(seeds)} seeds ({expected}) {'PASS' if found else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
