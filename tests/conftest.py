"""Test configuration: Hypothesis profiles.

Select one with ``HYPOTHESIS_PROFILE=<name>``; the default is ``ci``, so the README's
test command is deterministic (and its coverage gate cannot depend on luck).

* ``ci``: derandomized (the same examples every run) and bounded, so CI stays well
  under its time budget.
* ``dev``: random, a moderate number of examples, for day-to-day work.
* ``fuzz``: long runs that hunt for rare interleavings; expect minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import bpfns

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _fixed_kernels_stay_consistent(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """After every test, every FIXED-behaviour Kernel it built must pass ``check()``.

    Tests that corrupt a kernel on purpose opt out with ``@pytest.mark.bpfns_corrupts``.
    """
    made: list[bpfns.Kernel] = []
    original = bpfns.Kernel.__attrs_post_init__

    def record(self: bpfns.Kernel) -> None:
        original(self)
        made.append(self)

    monkeypatch.setattr(bpfns.Kernel, "__attrs_post_init__", record)
    yield
    if request.node.get_closest_marker("bpfns_corrupts"):
        return
    for k in made:
        if k.behavior == bpfns.FIXED and not k.tainted:
            k.check()
