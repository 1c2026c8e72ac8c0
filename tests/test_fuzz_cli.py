"""`bpfns fuzz`: budgets, progress, summary, failure files, workers, databases, errors."""

from __future__ import annotations

import io
import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import hypothesis.errors
import pytest

import bpfns
from bpfns._cli import main
from bpfns._fuzz import Budget, FuzzConfig, batch_size, failure_key, open_database, run_fuzz
from bpfns.testing import BpfnsMachine

SUMMARY = re.compile(
    r"^bpfns fuzz: (\d+) examples, (\d+) steps, (\d+) distinct failures, seed (\d+), "
    r"([\d.]+)s \(repeat with --seed \4\)$",
    re.MULTILINE,
)


def test_fixed_runs_clean_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["fuzz", "--examples", "30", "--out", str(tmp_path), "--seed", "3"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "[worker 0] examples 30 steps" in err
    assert "failures 0" in err
    assert not list(tmp_path.glob("bpfns-fuzz-*"))
    found = SUMMARY.search(out)
    assert found is not None, out
    examples, steps, failures, seed = map(int, found.groups()[:4])
    assert (examples, failures, seed) == (30, 0, 3)
    assert f"steps {steps} " in err  # the summary adds up what the workers reported


def test_the_default_seed_is_random_and_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = set()
    for _ in range(3):
        assert main(["fuzz", "--examples", "1", "--out", str(tmp_path)]) == 0
        found = SUMMARY.search(capsys.readouterr().out)
        assert found is not None
        seeds.add(int(found.group(4)))
    assert len(seeds) == 3  # 32 random bits each: a repeat is a 1-in-10^9 event


def test_seconds_budget_is_a_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    assert main(["fuzz", "--seconds", "1.5", "--out", str(tmp_path)]) == 0
    took = time.monotonic() - start
    out, err = capsys.readouterr()
    assert "elapsed" in err
    found = SUMMARY.search(out)
    assert found is not None
    assert 1.5 <= float(found.group(5)) <= took + 0.05  # printed to 0.1 s
    # No timing assertion beyond the budget itself (the machine may be slow): the
    # batches near the deadline are sized by batch_size, tested exactly below.


def test_batch_size_fits_the_deadline() -> None:
    assert batch_size(Budget(0.0, None), 0, None, now=5.0) == 25
    assert batch_size(Budget(0.0, None), 0, 3, now=5.0) == 3
    assert batch_size(Budget(0.0, 10.0), 0, None, now=0.1) == 5  # no pace yet
    assert batch_size(Budget(0.0, 10.0), 10, None, now=1.0) == 25  # 0.1 s each, 9 s left
    assert batch_size(Budget(0.0, 10.0), 90, None, now=9.0) == 10
    assert batch_size(Budget(0.0, 10.0), 1, None, now=9.9) == 1  # never 0


def test_failure_keys_ignore_the_numbers_of_one_example() -> None:
    a = bpfns.InvariantViolation("ids are unique", "ns 4026531840 has id 3 twice")
    b = bpfns.InvariantViolation("ids are unique", "ns 4026531841 has id 7 twice")
    assert failure_key(a) == failure_key(b) == "InvariantViolation 'ids are unique'"
    assert failure_key(ValueError("ns 1: id 3")) == failure_key(ValueError("ns 2: id 4"))
    assert failure_key(ValueError("ns 1: id 3")) == "ValueError: ns N: id N"
    assert failure_key(ValueError("")) == "ValueError: "


def test_rfc_failure_writes_a_runnable_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fuzz", "--behavior", "rfc", "--examples", "400", "--id-end", "4", "--seed", "0"]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "failures 1" in err
    assert "FAILURE 0:" in err
    found = SUMMARY.search(out)
    assert found is not None
    assert found.group(3) == "1"  # stops at the first failure without --keep-going
    script = tmp_path / "bpfns-fuzz-0-0.py"
    record = json.loads((tmp_path / "bpfns-fuzz-0-0.json").read_text())
    assert record["defects"] == list(bpfns.RFC.defects())
    assert record["program"][0] == "state = FuzzMachine()"
    assert "count_step" not in script.read_text()
    with pytest.raises(Exception) as info:  # noqa: PT011 - whatever the machine found
        runpy.run_path(str(script))
    assert type(info.value).__name__ in record["error"]
    assert record["key"] in out  # the summary lists what failed
    trace = tmp_path / record["trace"]
    assert f"{trace}" in err
    world = bpfns.replay(trace)  # the failing program, replayed call by call
    assert world.trace.dumps() == trace.read_text()
    assert world.trace.steps > 0


def test_workers_share_a_database(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    common = ["--behavior", "rfc", "--id-end", "4", "--database", str(db)]
    first = ["fuzz", "--examples", "400", "--workers", "2", "--seed", "0"]
    first += ["--out", str(tmp_path / "first")]
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
    assert "pip install -e '.[hypothesis]'" in capsys.readouterr().err


def test_workers_with_a_time_budget(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--seconds", "0.5", "--workers", "2", "--out", str(tmp_path)]) == 0
    err = capfd.readouterr().err
    assert "[worker 0]" in err
    assert "[worker 1]" in err


def test_keep_going_collects_distinct_failures(tmp_path: Path) -> None:
    # Two defects that are quick to find and to shrink (the RFC's all fifteen take
    # a minute): D3 and D8, on top of the fixed design.
    behavior = attrs.evolve(bpfns.FIXED, d3_create_returns_zero=True, d8_vnr_without_nsproxy=True)
    config = FuzzConfig(
        behavior, examples=40, seed=1, id_end=3, max_level=2, keep_going=True, out=tmp_path
    )
    out = io.StringIO()
    summary = run_fuzz(config, out, io.StringIO())
    keys = [f.key for f in summary.failures]
    assert sorted(keys) == [
        "InvariantViolation 'D3: a create whose id allocation failed returns 0'",
        "KernelBug D8 null-ptr-deref",
    ]
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("bpfns-fuzz-1-*.json"))]
    assert [r["key"] for r in records] == keys
    for key in keys:
        assert f"  {key}" in out.getvalue()
    for record in records:  # every one shrunk to a short runnable program
        assert record["program"][0] == "state = FuzzMachine()"
        assert len(record["program"]) < 15
    assert SUMMARY.search(out.getvalue()) is not None


def test_d3_is_named_by_the_model() -> None:
    # Found by `bpfns fuzz --behavior rfc --keep-going --seed 1`: the model called the
    # RFC's D3 (map_create returns 0 when its id allocation fails) a plain mismatch.
    for behavior, fails in ((bpfns.RFC, True), (bpfns.FIXED, False)):

        class Machine(BpfnsMachine):
            id_end = 4
            max_level = 3

        Machine.behavior = behavior
        state = Machine()
        task = state.boot()
        if fails:
            with pytest.raises(bpfns.InvariantViolation, match="D3: a create whose id"):
                state.map_create_failing(n=1, task=task)
        else:
            state.map_create_failing(n=1, task=task)
        state.teardown()


def test_database_directory_is_replayed_by_a_later_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    common = ["fuzz", "--behavior", "rfc", "--id-end", "4", "--database", str(db)]
    assert main([*common, "--examples", "400", "--seed", "0", "--out", str(tmp_path / "a")]) == 1
    assert [p for p in db.rglob("*") if p.is_file()]
    capsys.readouterr()
    # One example is not enough to find it by exploring; the replay finds it first.
    assert main([*common, "--examples", "1", "--seed", "5", "--out", str(tmp_path / "b")]) == 1
    assert "1 distinct failures" in capsys.readouterr().out


def test_database_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--database", "http://example.org/db"])
    assert "a directory or redis://HOST:PORT" in capsys.readouterr().err


def test_redis_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "hypothesis.extra.redis", raising=False)
    assert main(["fuzz", "--examples", "1", "--database", "redis://127.0.0.1:1"]) == 2
    assert "pip install -e '.[redis]'" in capsys.readouterr().err


REDIS = shutil.which("redis-server")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, for this test only."""
    if REDIS is None:
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a failure
            pytest.fail("CI has no redis-server; .ci/run should have installed it")
        pytest.skip("no redis-server on this machine (Debian: apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.025)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_redis_database_shares_failures_between_runs(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    database = open_database(redis_url, tmp_path)
    assert type(database).__name__ == "RedisExampleDatabase"
    common = ["fuzz", "--behavior", "rfc", "--id-end", "4", "--database", redis_url]
    # Two workers find and save failures in the one server...
    first = [*common, "--examples", "400", "--workers", "2", "--seed", "0"]
    assert main([*first, "--out", str(tmp_path / "a")]) == 1
    assert database.redis.dbsize() > 0
    capsys.readouterr()
    # ...and another "machine" (another run, another seed, one example) replays them.
    again = [*common, "--examples", "1", "--seed", "9", "--out", str(tmp_path / "b")]
    assert main(again) == 1
    assert "1 distinct failures" in capsys.readouterr().out
    assert list((tmp_path / "b").glob("bpfns-fuzz-9-0.py"))


def test_a_failure_of_hypothesis_itself_is_reported_without_a_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise hypothesis.errors.Flaky("Inconsistent results from replaying a test case")

    monkeypatch.setattr("hypothesis.stateful.run_state_machine_as_test", fail)
    assert main(["fuzz", "--examples", "1", "--seed", "2", "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "1 distinct failures" in out and "  Flaky: Inconsistent results" in out
    record = json.loads((tmp_path / "bpfns-fuzz-2-0.json").read_text())
    assert record["program"] == [] and record["trace"] is None
    assert not list(tmp_path.glob("bpfns-fuzz-2-0.py"))  # nothing to run
    assert f"wrote {tmp_path / 'bpfns-fuzz-2-0.json'}\n" in err


def test_an_unreachable_redis_server_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["fuzz", "--examples", "1", "--database", f"redis://127.0.0.1:{port}"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"redis://127.0.0.1:{port}: cannot reach the Redis server" in err
    assert not list(tmp_path.glob("bpfns-fuzz-*"))  # no "failure" was invented
