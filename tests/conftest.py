"""Test configuration: Hypothesis profiles.

Select one with ``HYPOTHESIS_PROFILE=<name>``; CI (``CI=true``) defaults to ``ci``,
everything else to ``dev``.

* ``ci``: derandomized (the same examples every run) and bounded, so CI stays well
  under its time budget.
* ``dev``: random, a moderate number of examples, for day-to-day work.
* ``fuzz``: long runs that hunt for rare interleavings; expect minutes.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)
