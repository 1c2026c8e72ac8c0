"""Concurrency: the RFC's locks, RCU and races, explored deterministically.

:func:`explore` runs a program's system calls on simulated CPUs under every schedule
within a preemption bound (or under PCT's random ones), and reports the runs that
failed; :func:`replay` re-runs one :class:`Schedule`. :mod:`bpfns.concurrency.scenarios`
is a catalogue of the races of the design, with their expected outcomes under RFC and
FIXED. The model is on the concurrency page of the docs.
"""

from __future__ import annotations

from ._explore import ExploreResult, Run, Schedule, explore, replay
from ._scheduler import Deadlock, Lane, SchedulerStalled

__all__ = [
    "Deadlock",
    "ExploreResult",
    "Lane",
    "Run",
    "Schedule",
    "SchedulerStalled",
    "explore",
    "replay",
]
