"""`bpfns fuzz`: budgets, progress, failure files, workers, usage errors."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

import bpfns
from bpfns._cli import main


def test_fixed_runs_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fuzz", "--examples", "30", "--out", str(tmp_path), "--seed", "3"])
    assert code == 0
    err = capsys.readouterr().err
    assert "[worker 0] examples 30 steps" in err
    assert "failures 0" in err
    assert not list(tmp_path.glob("bpfns-fuzz-*"))


def test_seconds_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--seconds", "0.3", "--out", str(tmp_path)]) == 0
    assert "elapsed" in capsys.readouterr().err


def test_rfc_failure_writes_a_runnable_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fuzz", "--behavior", "rfc", "--examples", "400", "--id-end", "4"]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "failures 1" in err
    assert "FAILURE:" in err
    script = tmp_path / "bpfns-fuzz-0-0.py"
    record = json.loads((tmp_path / "bpfns-fuzz-0-0.json").read_text())
    assert record["defects"] == list(bpfns.RFC.defects())
    assert record["program"][0] == "state = FuzzMachine()"
    assert "count_step" not in script.read_text()
    with pytest.raises(Exception) as info:  # noqa: PT011 - whatever the machine found
        runpy.run_path(str(script))
    assert type(info.value).__name__ in record["error"]
    trace = tmp_path / record["trace"]
    assert f"the trace {trace}" in err
    world = bpfns.replay(trace)  # the failing program, replayed call by call
    assert world.trace.dumps() == trace.read_text()
    assert world.trace.steps > 0


def test_workers_share_a_database(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    common = ["--behavior", "rfc", "--id-end", "4", "--database", str(db)]
    first = ["fuzz", "--examples", "400", "--workers", "2", "--out", str(tmp_path / "first")]
    assert main([*first, *common]) == 1
    err = capfd.readouterr().err
    assert "[worker 0]" in err or "[worker 1]" in err
    assert list((tmp_path / "first").glob("bpfns-fuzz-0-*.py"))
    assert [p for p in db.rglob("*") if p.is_file()]  # the failures were saved
    # A later run, whatever its seed, replays the saved failures first.
    again = tmp_path / "again"
    assert main(["fuzz", "--examples", "400", "--seed", "99", "--out", str(again), *common]) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["fuzz", "--seconds", "0"],
        ["fuzz", "--seconds", "1", "--examples", "1"],
        ["fuzz", "--workers", "-1"],
        ["fuzz", "--behavior", "linux"],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_bad_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--id-end", "1"]) == 2
    assert main(["fuzz", "--max-level", "40"]) == 2
    assert "--id-end must be >= 2" in capsys.readouterr().err


def test_missing_hypothesis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert main(["fuzz", "--examples", "1"]) == 2
    assert "pip install 'bpfns[hypothesis]'" in capsys.readouterr().err


def test_workers_with_a_time_budget(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--seconds", "0.5", "--workers", "2", "--out", str(tmp_path)]) == 0
    err = capfd.readouterr().err
    assert "[worker 0]" in err
    assert "[worker 1]" in err
