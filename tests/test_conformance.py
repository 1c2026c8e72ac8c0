"""bpfns.conformance: the live kernel and bpfns agree (skipped where it cannot run)."""

from __future__ import annotations

import itertools
import platform

import pytest

from bpfns import conformance
from bpfns._cli import main
from bpfns.conformance import (
    Event,
    Mismatch,
    Step,
    compare,
    generate_pid_scenario,
    run_bpf_scenario,
    run_pid_scenario,
    simulate_pid_scenario,
    unavailable,
)

REASON = unavailable()
live = pytest.mark.skipif(REASON is not None, reason=f"live kernel driver: {REASON}")
# The live scenarios read the machine's global BPF ids: another worker making maps at
# the same time would be a mismatch. One xdist worker runs this whole module.
pytestmark = pytest.mark.xdist_group("live-kernel")


def test_scenarios_are_seeded_and_varied() -> None:
    a, b = generate_pid_scenario(3), generate_pid_scenario(3)
    assert a == b
    assert a != generate_pid_scenario(4)
    ops = {s.op for s in a}
    assert ops == {"setmax", "newns", "spawn", "reap"}


def test_simulation_reaches_wrap_full_namespaces_and_both_sides_of_300() -> None:
    events = simulate_pid_scenario(generate_pid_scenario(0, rounds=80))
    assert len(events) > 1000
    assert any(e.error == "EAGAIN" for e in events)
    reaped = [e.numbers[-1] for e in events if e.op == "reap"]
    assert any(nr < 300 for nr in reaped)
    assert any(nr >= 300 for nr in reaped)
    forked = [e.numbers[-1] for e in events if e.op == "fork" and not e.error and e.ns == 1]
    assert any(b < a for a, b in itertools.pairwise(forked))  # a wrap


def test_simulation_of_a_namespace_whose_init_cannot_fork() -> None:
    steps = [Step("setmax", 0, 302), Step("spawn", 0, 300), Step("newns", 0)]
    events = simulate_pid_scenario(steps)
    assert events[-1] == Event("fork", 0, error="EAGAIN")  # no room for the helper
    steps = [Step("setmax", 0, 302), Step("spawn", 0, 299), Step("newns", 0)]
    steps += [Step("spawn", 1, 1), Step("reap", 1, 0), Step("setmax", 1, 400)]
    events = simulate_pid_scenario(steps)
    assert events[-1] == Event("fork", 1, error="EAGAIN")  # the new init found no pid
    assert len(events) == 1 + 1 + 299 + 2  # later steps in the dead namespace do nothing


def test_simulation_setmax_and_empty_reap() -> None:
    events = simulate_pid_scenario([Step("reap", 0, 5), Step("setmax", 0, 300)])
    assert events[1:] == [Event("setmax", 0, error="EINVAL")]


def test_compare() -> None:
    a = [Event("fork", 0, (1,)), Event("fork", 0, (2,))]
    b = [Event("fork", 0, (1,)), Event("fork", 0, (3,)), Event("fork", 0, (4,))]
    assert compare(a, a) == []
    got = compare(a, b)
    assert got[0] == Mismatch(1, a[1], b[1])
    assert got[1] == Mismatch(2, Event("missing", -1), b[2])
    assert compare(b, a)[1] == Mismatch(2, b[2], Event("missing", -1))


@pytest.mark.parametrize(
    ("attr", "value", "reason"),
    [
        ("system", "Darwin", "not Linux"),
        ("release", "6.8.0-generic", "older than 6.14"),
    ],
)
def test_unavailable_reasons(
    monkeypatch: pytest.MonkeyPatch, attr: str, value: str, reason: str
) -> None:
    monkeypatch.setattr(platform, attr, lambda: value)
    monkeypatch.setattr(conformance.os, "geteuid", lambda: 0)
    found = unavailable()
    assert found is not None
    assert reason in found
    with pytest.raises(RuntimeError, match=reason):
        run_pid_scenario([])
    with pytest.raises(RuntimeError, match=reason):
        run_bpf_scenario("map", 0)
    assert main(["conformance", "--scenarios", "1"]) == 2


def test_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(conformance.os, "geteuid", lambda: 1000)
    assert "not root" in (unavailable() or "")


def test_unknown_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "pdp11")
    with pytest.raises(RuntimeError, match="pdp11"):
        conformance._Bpf()


@live
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_live_pid_namespaces_match(seed: int) -> None:
    steps = generate_pid_scenario(seed, rounds=60)
    kernel = run_pid_scenario(steps)
    assert len(kernel) > 1000
    assert compare(kernel, simulate_pid_scenario(steps)) == []


@live
@pytest.mark.parametrize("kind", ["map", "prog", "link"])
def test_live_bpf_ids_match(kind: str) -> None:
    result = run_bpf_scenario(kind, seed=3, operations=120)
    assert result.events > 50
    assert result.mismatches == ()


@live
def test_bpf_errors_are_oserrors() -> None:
    bpf = conformance._Bpf()
    with pytest.raises(OSError, match="bpf"):
        bpf.info_id(987654)


@live
def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--scenarios", "1", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["scenario", "events", "mismatches"]
    assert "pid seed 5" in out
    assert "pid set_tid, ENOMEM" in out
    assert "bpf link ids" in out
    assert out.rstrip().endswith(" 0 mismatches")


def test_cli_exits_1_on_a_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(conformance, "unavailable", lambda: None)
    rows = [conformance.Row("pid seed 0", 10, 2)]
    monkeypatch.setattr(conformance, "run_table", lambda seed, scenarios: rows)
    assert main(["conformance"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("10 events, 2 mismatches")


@live
def test_bpf_next_id_errors_other_than_enoent_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    bpf = conformance._Bpf()
    monkeypatch.setitem(conformance._NEXT_ID, "map", 9999)  # not a bpf() command: EINVAL
    with pytest.raises(OSError, match="Invalid argument"):
        bpf.ids("map")


def test_lines_ends_at_eof() -> None:
    r, w = conformance.os.pipe()
    conformance._send(w, {"a": 1})
    conformance._send(w, [2])
    conformance.os.close(w)
    assert list(conformance._lines(r)) == [{"a": 1}, [2]]
    conformance.os.close(r)


@live
def test_a_concurrent_allocation_shows_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creating a map mid-run is one mismatch; the driver resyncs."""
    original = conformance._Bpf.map_create
    calls = {"n": 0}
    outsiders: list[int] = []

    def map_create(self: conformance._Bpf) -> int:
        calls["n"] += 1
        if calls["n"] == 5:
            outsiders.append(original(self))  # someone else's map, made just before ours
        return original(self)

    monkeypatch.setattr(conformance._Bpf, "map_create", map_create)
    try:
        result = run_bpf_scenario("map", seed=4, operations=40)
    finally:
        for fd in outsiders:
            conformance.os.close(fd)
    assert len(result.mismatches) == 1
    _, kernel_id, bpfns_id = result.mismatches[0]
    assert kernel_id == bpfns_id + 1


@live
def test_probe_reports_a_refused_unshare(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(conformance, "_unshare_newpid", refuse)
    assert "unshare(CLONE_NEWPID) is refused" in (unavailable() or "")
    monkeypatch.setattr(conformance, "unavailable", lambda: None)
    with pytest.raises(RuntimeError, match="could not create"):
        run_pid_scenario([])


@live
def test_probe_reports_a_refused_bpf(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: conformance._Bpf) -> int:
        raise OSError(1, "bpf(0): Operation not permitted")

    monkeypatch.setattr(conformance._Bpf, "map_create", refuse)
    assert "bpf() is refused" in (unavailable() or "")


@live
def test_live_pid_rules_match() -> None:
    """set_tid (kernel rules §C.2) and ENOMEM once the init has exited (C.6), on the kernel."""
    live = conformance.run_pid_rules()
    assert [e.error or e.numbers[0] for e in live] == [
        "EINVAL", 1, 5, "EEXIST", "EINVAL", 2, "ENOMEM",
    ]  # fmt: skip
    assert compare(live, conformance.simulate_pid_rules()) == []


def test_pid_rules_refuse_where_the_driver_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conformance, "unavailable", lambda: "not here")
    with pytest.raises(RuntimeError, match="not here"):
        conformance.run_pid_rules()


def test_the_model_once_allocated_after_the_init_exited() -> None:
    """The rule the live scenario checks is the model's: the last event is ENOMEM."""
    events = conformance.simulate_pid_rules()
    assert events[-1] == conformance.Event("fork after the init exited", 1, error="ENOMEM")
    assert [e.op for e in events] == [label for label, _ in conformance.PID_RULES]
