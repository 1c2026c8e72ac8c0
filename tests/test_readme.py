"""The README's example runs as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from mypy import api

import bpfns

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


def _python_source(markdown: str) -> str:
    """The README's doctest examples as one Python module (the ``>>>``/``...`` lines)."""
    lines = ["import bpfns", "from bpfns import *  # noqa: F403"]
    for block in doctest.DocTestParser().get_examples(markdown):
        lines.extend(block.source.splitlines())
    return "\n".join(lines) + "\n"


def test_readme_code_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    # Common user code must type-check without casts: the README's examples are that
    # code (an info's .name, a namespace's ids, the tree helpers).
    source = tmp_path / "readme_examples.py"
    source.write_text(_python_source(README.read_text()))
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--disable-error-code=no-untyped-call", str(source)]
    )
    assert status == 0, out + err


def test_typed_info_getters_narrow_or_say_which_fits() -> None:
    t = bpfns.Kernel().init_task
    m = t.map_create(name="m")
    p = t.prog_load(name="p", maps=(m,))
    link = t.link_create(p)
    assert t.map_get_info_by_fd(m) == t.obj_get_info_by_fd(m)
    assert t.prog_get_info_by_fd(p).map_ids == (1,)
    assert t.link_get_info_by_fd(link).prog_id == 1
    wrong = rf"fd {m} is a map, not a prog: call map_get_info_by_fd\({m}\)"
    with pytest.raises(TypeError, match=wrong):
        t.prog_get_info_by_fd(m)
    with pytest.raises(TypeError, match=r"is a link, not a map"):
        t.map_get_info_by_fd(link)
    with pytest.raises(TypeError, match=r"is a prog, not a btf"):
        t.btf_get_info_by_fd(p)
    with pytest.raises(TypeError, match=r"is a map, not a link"):
        t.link_get_info_by_fd(m)
    with pytest.raises(bpfns.BpfnsError, match="EBADF"):
        t.map_get_info_by_fd(99)
