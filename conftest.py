"""The bpftool doctests skip where they cannot run, except under CI.

``bpfns.run``'s doctest and the how-to's run a real bpftool: on a machine without it
or without seccomp user notification they skip; CI installs bpftool, and there they
must run.
"""

from __future__ import annotations

import os
import shutil

import pytest

_NEEDS_BPFTOOL = ("bpfns._run.run", "run-real-tools.md")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the bpftool doctests skipped where they cannot run (never under CI)."""
    from bpfns._seccomp import unavailable  # noqa: PLC0415 - after the plugins load

    why = "no bpftool" if shutil.which("bpftool") is None else unavailable()
    if why is None or os.environ.get("CI"):
        return
    for item in items:
        if any(name in item.nodeid for name in _NEEDS_BPFTOOL):
            item.add_marker(pytest.mark.skip(reason=f"needs bpftool and seccomp: {why}"))
