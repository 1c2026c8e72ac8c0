"""The README's example runs as written."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example() -> None:
    result = doctest.testfile(
        str(README), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted >= 8
    assert result.failed == 0


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    lines = README.read_text().splitlines()
    start = lines.index("```console")
    end = lines.index("```", start)
    commands = lines[start + 1 : end]
    assert len(commands) == 2
    assert "bpfns demo" in commands[0]
    assert "pytest" in commands[1]
