"""The bpfns command: `bpfns demo` prints a real tree with real ids from the model."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys

import pytest

from bpfns._cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_demo_prints_the_seed_tree(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "demo")
    names = re.findall(r"^( *)(\w+) : level = (\d)", out, flags=re.MULTILINE)
    assert [(len(indent) // 4, name, int(level)) for indent, name, level in names] == [
        (0, "init_bpf_ns", 0),
        (1, "child_a", 1),
        (1, "child_b", 1),
        (2, "child_b_a", 2),
        (2, "child_b_b", 2),
    ]


def test_demo_shows_three_levels_per_object(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "demo")
    tables = re.findall(
        r"^\s+0\s+init_bpf_ns\s+(\d+)\n\s+1\s+child_b\s+(\d+)\n\s+2\s+child_b_b\s+(\d+)$",
        out,
        flags=re.MULTILINE,
    )
    assert len(tables) == 3  # map, prog, link
    # Default world: init has 2, 3, 4 host objects and child_b one of each type first.
    assert [tuple(map(int, t)) for t in tables] == [(4, 2, 1), (5, 2, 1), (6, 2, 1)]


def test_demo_marks_d6_only_in_rfc(capsys: pytest.CaptureFixture[str]) -> None:
    rfc = run(capsys, "demo", "--behavior", "rfc")
    fixed = run(capsys, "demo", "--behavior", "fixed")
    assert "child_a      map 2, prog 2, link 2   <- D6" in rfc
    assert "child_a      map 0, prog 0, link 0\n" in fixed
    assert "D6" not in fixed.split("What each namespace sees")[1]


def test_demo_seed_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "demo", "--seed", "7") == run(capsys, "demo", "--seed", "7")
    assert run(capsys, "demo", "--seed", "7") != run(capsys, "demo", "--seed", "8")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["nonsense"], ["demo", "--behavior", "linux"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "usage: bpfns" in capsys.readouterr().err


def test_python_dash_m(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["bpfns", "demo"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("bpfns", run_name="__main__")
    assert info.value.code == 0
    assert "init_bpf_ns : level = 0" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bpfns", "demo", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--behavior" in done.stdout


def test_importing_main_does_not_run_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib  # noqa: PLC0415

    importlib.import_module("bpfns.__main__")
    assert capsys.readouterr().out == ""
