"""The bpfns command: `bpfns demo` prints a real tree with real ids from the model."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import bpfns
from bpfns import Kernel, load_trace
from bpfns._cli import find_namespace, main


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
    assert "D6" not in fixed.split("How each namespace numbers")[1]


def test_demo_seed_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "demo", "--seed", "7") == run(capsys, "demo", "--seed", "7")
    assert run(capsys, "demo", "--seed", "7") != run(capsys, "demo", "--seed", "8")


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["nonsense"], ["demo", "--behavior", "linux"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error:" in err and "--help)" in err, err


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


def test_demo_lists_what_each_namespace_walks(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "demo")
    rows = dict(re.findall(r"^  (\w+) +(maps \[.*)$", out, flags=re.MULTILINE))
    assert rows["init_bpf_ns"] == "maps [1 2 3 4]   progs [1 2 3 4 5]   links [1 2 3 4 5 6]"
    assert rows["child_b"] == "maps [1 2]   progs [1 2]   links [1 2]"
    assert rows["child_b_b"] == "maps [1]   progs [1]   links [1]"
    assert rows["child_a"] == rows["child_b_a"] == "maps []   progs []   links []"


@pytest.fixture
def demo_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "demo.jsonl"
    out = run(capsys, "demo", "--behavior", "fixed", "--trace", str(path))
    assert f"bpfns show {path} --ns /child_b/child_b_b" in out
    return path


def test_show_lists_objects_with_the_ids_a_namespace_sees(
    demo_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "show", str(demo_trace), "--ns", "/child_b/child_b_b")
    assert out.splitlines()[1:] == [
        "map show",
        "1: array  name m  flags 0x0  # id 4 in init_bpf_ns",
        "    key 4B  value 4B  max_entries 1",
        "prog show",
        "1: kprobe  name p  # id 5 in init_bpf_ns",
        "    map_ids 1",
        "link show",
        "1: perf_event  prog 1  # id 6 in init_bpf_ns",
    ]
    child_b = run(capsys, "show", str(demo_trace), "--ns", "init_bpf_ns/child_b")
    assert re.findall(r"^(\d): array  name (\w+)", child_b, flags=re.MULTILINE) == [
        ("1", "b_map0"),
        ("2", "m"),
    ]
    assert "map_ids 2" in child_b  # the container's program uses child_b's map 2
    root = run(capsys, "show", str(demo_trace))
    assert root.startswith("# init_bpf_ns (level 0) at step ")
    assert "#" not in root.split("\n", 1)[1]  # ids in init need no comment


def test_show_at_a_step(demo_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = load_trace(demo_trace).steps
    early = run(capsys, "show", str(demo_trace), "--step", "5")
    assert early.splitlines() == [
        f"# init_bpf_ns (level 0) at step 5 of {steps}",
        "map show",
        "1: array  name host_map0  flags 0x0",
        "    key 4B  value 4B  max_entries 1",
        "prog show",
        "link show",
    ]
    assert "map show\nprog show\nlink show" in run(capsys, "show", str(demo_trace), "--step", "0")


def test_replay_command(demo_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "replay", str(demo_trace))
    steps, events = load_trace(demo_trace).steps, len(load_trace(demo_trace))
    assert out.startswith(f"{demo_trace}: {steps} steps, {events} events replayed")
    assert "        child_b_b : level = 2" in out


def test_trace_commands_exit_codes(
    demo_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = demo_trace.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*lines[:3], '{"kind": "boom"}', *lines[4:]]) + "\n")
    edited = tmp_path / "edited.jsonl"
    i = next(n for n, line in enumerate(lines) if '"id_alloc"' in line)
    edited.write_text(
        "\n".join([*lines[:i], lines[i].replace('"nr": 1', '"nr": 9'), *lines[i + 1 :]])
    )
    cases = [
        (["replay", str(bad)], 2, f"{bad}:4: unknown event kind 'boom'"),
        (["show", str(bad)], 2, "unknown event kind"),
        (["replay", str(edited)], 1, f"the replay differs from the trace: {edited}:{i + 1}:"),
        (["show", str(bad), "--html", str(tmp_path / "v.html")], 2, "unknown event kind"),
        (["show", str(edited), "--html", str(tmp_path / "v.html")], 1, "the replay differs"),
        (["replay", str(tmp_path / "missing.jsonl")], 2, "cannot use"),
        (["show", str(demo_trace), "--step", "9999"], 2, "has steps 0 to"),
        (
            ["show", str(demo_trace), "--ns", "/child_b/nope"],
            2,
            "no namespace 'nope' under /child_b",
        ),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["show", str(demo_trace), "--step", "-1"])
    assert info.value.code == 2


@pytest.mark.parametrize("command", ["demo", "show", "replay", "fuzz", "conformance"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: bpfns {command}")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["fuzz", "--seconds", "nan"], "must be a positive number"),
        (["fuzz", "--seconds", "inf"], "must be a positive number"),
        (["fuzz", "--seconds", "-1"], "must be a positive number"),
        (["fuzz", "--seconds", "soon"], "not a number"),
        (["fuzz", "--workers", "100000"], "must be at most"),
        (["fuzz", "--workers", "0"], "must be a positive number"),
        (["show", "t.jsonl", "--step", "-1"], "must be a number >= 0"),
        (["demo", "--trace", "/nonexistent/dir/x.jsonl"], "does not exist"),
        (["demo", "--trace", "/"], "is a directory"),
        (["fuzz", "--out", "/etc/hostname/sub"], "is not a directory"),
        (["fuzz", "--database", "/etc/hostname"], "is not a directory"),
    ],
)
def test_options_are_checked_before_any_work(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran
    assert words in captured.err and captured.err.count("\n") == 1


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["replay", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "exit codes:" in out and "2  the command could not run as asked" in out


def test_demo_that_cannot_write_its_trace_exits_2_keeping_its_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--trace", "/proc/version"]) == 2  # even root cannot write it
    out = capsys.readouterr().out
    assert "child_b_b : level = 2" in out
    assert out.rstrip().splitlines()[-1].startswith("bpfns demo: cannot write the trace")


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("demo", ["(default: rfc)"]),
        ("fuzz", ["(default: fixed)", "(default: None)", "(default: 3)", "(default: 1)"]),
        ("conformance", ["(default: 0)", "(default: 10)"]),
        ("explore", ["(default: rfc)", "(default: 2)"]),
    ],
)
def test_help_shows_every_default(
    command: str, shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """demo and explore default to rfc, fuzz to fixed: the help must say which."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps long lines
    for text in shown:
        assert text in out


@pytest.mark.parametrize("command", ["demo", "show", "replay", "fuzz", "conformance", "explore"])
def test_every_option_has_help_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("options:", "positional")))
    end = next(i for i, line in enumerate(lines) if line.startswith("exit codes:"))
    entries = [line for line in lines[start:end] if line.startswith("  ") and line.strip()]
    bare = [e for e in entries if e.lstrip().startswith("-") and "  " not in e.strip()]
    # an option's help may wrap onto the next line; one with no help is alone and last
    for i, entry in enumerate(entries):
        if entry in bare and (i + 1 == len(entries) or entries[i + 1].lstrip().startswith("-")):
            raise AssertionError(f"bpfns {command}: {entry.strip()} has no help text")


def test_ambiguous_namespace_path_lists_the_candidates() -> None:
    k = Kernel()
    a = k.init_ns.create_child(name="dup")
    b = k.init_ns.create_child(name="dup")
    with pytest.raises(ValueError, match="ambiguous") as info:
        find_namespace(k, "/dup")
    assert repr(a) in str(info.value) and repr(b) in str(info.value)
    a.create_child(name="x")
    with pytest.raises(ValueError, match="no namespace 'y' under /"):
        find_namespace(k, "/y")


def test_testing_without_hypothesis_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n    import bpfns.testing\n"
        "except ModuleNotFoundError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "bpfns.testing needs Hypothesis" in out and "pip install -e '.[hypothesis]'" in out


def test_show_html_writes_the_viewer(
    demo_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "view.html"
    out = run(capsys, "show", str(demo_trace), "--html", str(out_file))
    steps = load_trace(demo_trace).steps
    assert out == f"wrote {out_file}: steps 0 to {steps}; open it in a browser\n"
    page = out_file.read_text()
    assert page.startswith("<!doctype html>") and 'id="bpfns-data"' in page
    assert page == bpfns.view(demo_trace, limit=100_000).html  # the one viewer
