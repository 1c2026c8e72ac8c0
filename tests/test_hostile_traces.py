"""Hostile trace files: each is a TraceError naming the file and line, and `bpfns` exits 2.

A trace is data from anywhere. Whatever a file holds, ``bpfns.load_trace`` and
``bpfns.replay`` raise :class:`bpfns.TraceError` (never a raw ValueError, RecursionError,
UnicodeDecodeError or OSError), read at most one bounded line at a time, and the CLI
prints one line and exits 2. Names from a trace reach the terminal escaped. Together
with tests/test_trace.py's malformed-file cases this is the corpus the closing note of
issue 12 counts.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from bpfns import FIXED, Kernel, ReplayMismatchError, TraceError, load_trace, replay
from bpfns._cli import main
from bpfns._replay import MAX_DEPTH, MAX_LINE_BYTES, QUOTE_MAX


@pytest.fixture
def good(tmp_path: Path) -> list[str]:
    """The lines of a small valid trace: a namespace, a map, a free."""
    k = Kernel(FIXED, trace=True)
    child = k.init_ns.create_child(name="c")
    k.alloc_obj_id(child, "m", bpfns_map())
    return k.trace.dumps().splitlines()


def bpfns_map() -> object:
    from bpfns import ObjType  # noqa: PLC0415

    return ObjType.MAP


def header_then(lines: list[str], *more: str) -> str:
    """The good trace's header, then ``more`` lines (a hostile line 2, say)."""
    return "\n".join([lines[0], *more]) + "\n"


def a_call(target: str, op: str, args: list[object]) -> Callable[[list[str]], str]:
    """Construction events, then one call ``target.op(*args)`` (line 4) that returns."""
    enter = {"kind": "enter", "step": 1, "target": target, "op": op, "args": args}
    done = {"kind": "return", "step": 1, "op": op, "result": None, "error": None}
    return lambda g: header_then(
        g, *g[1:3], json.dumps({**enter, "kwargs": {}}), json.dumps({**done, "errno": None})
    )


def header_with(**fields: object) -> Callable[[list[str]], str]:
    """The good header with ``fields`` changed, alone."""
    return lambda g: json.dumps({**json.loads(g[0]), **fields}) + "\n"


def freed(step: object) -> str:
    """An ``ns_freed`` event whose step is the raw JSON text ``step``."""
    return f'{{"kind": "ns_freed", "step": {step}, "ns": "ns0"}}'


@attrs.frozen
class Hostile:
    """A hostile file made from the good trace's lines; the line and words of its error."""

    make: Callable[[list[str]], bytes | str]
    line: int
    words: str


CALL_4 = 4  # a_call's line
HOSTILE: dict[str, Hostile] = {
    "empty file": Hostile(lambda g: "", 1, "starts with its 'kernel' event"),
    "a blank line": Hostile(lambda g: header_then(g, ""), 2, "not JSON"),
    "4301-digit number": Hostile(lambda g: header_then(g, freed("9" * 4301)), 2, "JSON value"),
    "deep nesting": Hostile(
        lambda g: header_then(g, "[" * 100_000 + "]" * 100_000), 2, f"deeper than {MAX_DEPTH}"
    ),
    "nesting one deeper than allowed": Hostile(
        lambda g: header_then(g, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)), 2, "deeper"
    ),
    "brackets in a string are not nesting": Hostile(
        lambda g: header_then(g, json.dumps({"kind": "x", "s": "[" * 100})), 2, "kind 'x'"
    ),
    "invalid UTF-8": Hostile(
        lambda g: header_then(g, freed(0)).encode() + b"\xff\n", 3, "not UTF-8"
    ),
    "invalid UTF-8 in the header": Hostile(
        lambda g: b"\xc3\x28" + header_then(g).encode(), 1, "not UTF-8"
    ),
    "NUL bytes": Hostile(lambda g: header_then(g, "\x00" * 10), 2, "not JSON"),
    "a JSON array": Hostile(lambda g: header_then(g, "[1, 2]"), 2, "must be a JSON object"),
    "a JSON string": Hostile(lambda g: header_then(g, '"x"'), 2, "must be a JSON object"),
    "no kind": Hostile(lambda g: header_then(g, '{"step": 0}'), 2, "kind None"),
    "kind is a number": Hostile(lambda g: header_then(g, '{"kind": 7}'), 2, "kind 7"),
    "extra field": Hostile(
        lambda g: header_then(g, freed(0)[:-1] + ', "x": 1}'), 2, "unexpected fields ['x']"
    ),
    "bool for an int": Hostile(lambda g: header_then(g, freed("true")), 2, "'step' must be int"),
    "NaN for an int": Hostile(lambda g: header_then(g, freed("NaN")), 2, "'step' must be int"),
    "1e999 for an int": Hostile(lambda g: header_then(g, freed("1e999")), 2, "must be int"),
    "header with a huge id_end": Hostile(header_with(id_end=2**70), 1, "cannot build"),
    "header with on_bug panic": Hostile(header_with(on_bug="panic"), 1, "cannot build"),
    "header missing a switch": Hostile(header_with(behavior={}), 1, "behavior must set"),
    "header not first": Hostile(
        lambda g: "\n".join([g[1], g[0], *g[2:]]) + "\n", 1, "starts with its 'kernel' event"
    ),
    "event outside a call": Hostile(
        lambda g: "\n".join([*g, freed(2)]) + "\n", 11, "outside any call"
    ),
    "an unknown foreign kind": Hostile(
        a_call("ns0", "create_child", [{"foreign": "spaceship"}]), CALL_4, "foreign kind"
    ),
    "a bigint that is not hex": Hostile(
        a_call("task0", "close", [{"bigint": "zz"}]), CALL_4, "a bigint is a hex string"
    ),
    "an opaque number": Hostile(
        a_call("task0", "close", [{"opaque": 5}]), CALL_4, "an opaque value is a string"
    ),
    "an unhashable set": Hostile(
        a_call("faults0", "fail_nth", [1, {"set": [{"ref": "faults0"}]}]), CALL_4, "unhashable"
    ),
    "a list that is not a list": Hostile(
        a_call("task0", "close", [{"list": 3}]), CALL_4, "holds a JSON array"
    ),
    "a method that is not a call": Hostile(
        a_call("kernel0", "check", []), CALL_4, "is not a call a trace may make"
    ),
    "an enum without a name": Hostile(
        a_call("task0", "close", [{"enum": "ObjType"}]), CALL_4, "cannot decode"
    ),
}


def write(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "hostile.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_a_trace_error_naming_the_line(
    case: str, good: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE[case]
    line, words = hostile.line, hostile.words
    path = write(tmp_path, hostile.make(good))
    with pytest.raises(TraceError) as info:
        replay(path)
    assert not isinstance(info.value, ReplayMismatchError)
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)[:300]
    assert words in str(info.value)
    assert len(str(info.value)) < 1000  # never the hostile content itself
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["/dev/zero", "a directory", "a FIFO", "missing"])
def test_files_that_are_not_traces(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = {"/dev/zero": Path("/dev/zero"), "a directory": tmp_path}.get(kind)
    if kind == "a FIFO":
        path = tmp_path / "fifo"
        os.mkfifo(path)  # opening it would block: it must be refused before open()
    elif kind == "missing":
        path = tmp_path / "missing.jsonl"
    assert path is not None
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert str(info.value).startswith(f"{path}: ")
    for command in ("replay", "show"):
        assert main([command, str(path)]) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """A 100 MB line gave a 100 MB message and a 633 MB peak; now both are bounded."""
    path = tmp_path / "huge.jsonl"
    with path.open("w") as out:
        out.write('{"kind": "kernel", "step": 0, "x": "')
        chunk = "a" * (1 << 20)
        for _ in range(16):  # 16 MiB on one line
            out.write(chunk)
        out.write('"}\n')
    tracemalloc.start()
    with pytest.raises(TraceError) as info:
        load_trace(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert f"longer than {MAX_LINE_BYTES} bytes" in str(info.value)
    assert str(info.value).startswith(f"{path}:1: ")
    assert peak < 4 * MAX_LINE_BYTES  # one bounded line, not the file


def test_a_line_at_the_limit_is_read(good: list[str], tmp_path: Path) -> None:
    header = json.loads(good[0])
    pad = MAX_LINE_BYTES - len(json.dumps({**header, "x": ""}))
    line = json.dumps({**header, "x": "a" * pad})
    assert len(line) == MAX_LINE_BYTES
    with pytest.raises(TraceError, match="unexpected fields"):  # parsed, then refused
        load_trace(write(tmp_path, line + "\n"))


def test_crlf_line_endings_are_read(good: list[str], tmp_path: Path) -> None:
    path = write(tmp_path, "\r\n".join(good) + "\r\n")
    assert load_trace(path).steps == 2


def test_mismatch_messages_are_cut(good: list[str], tmp_path: Path) -> None:
    rows = [json.loads(line) for line in good]
    i = next(n for n, row in enumerate(rows) if row["kind"] == "ns_created" and row["step"])
    rows[i]["name"] = "x" * 100_000  # what the replay does differs, at length
    path = write(tmp_path, "".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ReplayMismatchError) as info:
        replay(path)
    assert len(str(info.value)) < 3 * QUOTE_MAX + 300
    assert "more characters" in str(info.value)


def test_control_characters_reach_the_terminal_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = Kernel(FIXED, trace=True)
    k.init_ns.create_child(name="evil\x1b]0;owned\x07\x1b[2J")
    path = tmp_path / "t.jsonl"
    k.trace.to_jsonl(path)
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;owned\\x07\\x1b[2J" in out
    assert main(["show", str(path), "--ns", "/nope\x1b[2J"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err


def test_the_corpus_is_large() -> None:
    assert len(HOSTILE) + 4 + 4 >= 35  # with the file kinds, huge/limit/CRLF/cut cases
