"""Kernel(trace=True): the events of each action, JSON Lines, and replay."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree

import attrs
import pytest
from hypothesis import settings

import bpfns
from bpfns import (
    CLONE_NEWBPF,
    FIXED,
    RFC,
    FaultSite,
    IdAlloc,
    IdFree,
    Kernel,
    ObjType,
    ReplayMismatchError,
    Return,
    Rollback,
    TraceError,
    load_trace,
    replay,
    replay_steps,
)
from bpfns.testing import BpfnsMachine

MAP = ObjType.MAP


def kinds(k: Kernel, step: int) -> list[str]:
    return [e.kind for e in k.trace if e.step == step]


def test_tracing_is_off_by_default() -> None:
    with pytest.raises(ValueError, match=r"Kernel\(trace=True\)"):
        _ = Kernel().trace
    with pytest.raises(TypeError, match="trace must be True or False"):
        Kernel(trace=1)  # type: ignore[arg-type]


def test_construction_events() -> None:
    k = Kernel(FIXED, id_end=9, trace=True)
    header = k.trace[0]
    assert isinstance(header, bpfns.KernelCreated)
    assert header.behavior == attrs.asdict(FIXED) and header.id_end == 9
    assert [e.kind for e in k.trace] == ["kernel", "ns_created", "task_created"]
    assert k.trace.steps == 0 and k.trace.calls() == []


def test_an_allocation_is_one_event_per_level_deepest_first_with_cursors() -> None:
    k = Kernel(FIXED, trace=True)
    child = k.init_ns.create_child()
    k.alloc_obj_id(k.init_ns, "host", MAP)
    oid = k.alloc_obj_id(child, "m", MAP)
    allocs = [e for e in k.trace if isinstance(e, IdAlloc) and e.step == 3]
    assert [(e.level, e.ns, e.nr, e.cursor_before, e.cursor_after) for e in allocs] == [
        (1, "ns1", 1, 0, 2),
        (0, "ns0", 2, 2, 3),
    ]
    k.free_obj_id(oid, MAP)
    frees = [e for e in k.trace if isinstance(e, IdFree)]
    assert [(e.oid, e.level, e.nr) for e in frees] == [("oid1", 1, 1), ("oid1", 0, 2)]
    assert kinds(k, 4) == ["enter", "id_free", "id_free", "return"]


def test_a_failed_allocation_records_rollback_and_errno() -> None:
    k = Kernel(FIXED, id_end=3, trace=True)
    child = k.init_ns.create_child()
    for name in "ab":
        k.alloc_obj_id(k.init_ns, name, MAP)
    with pytest.raises(bpfns.BpfnsError):
        k.alloc_obj_id(child, "c", MAP)
    assert kinds(k, 4) == ["enter", "id_alloc", "rollback", "id_free", "return"]
    rollback = next(e for e in k.trace if isinstance(e, Rollback))
    assert (rollback.failed_level, rollback.errno) == (0, "ENOSPC")
    ret = k.trace[-1]
    assert isinstance(ret, Return)
    assert (ret.error, ret.errno, ret.result) == ("BpfnsError", "ENOSPC", None)


def test_namespace_lifetime_rcu_faults_and_reports() -> None:
    k = Kernel(RFC, on_bug="record", trace=True)
    child = k.init_ns.create_child(name="c")
    oid = k.alloc_obj_id(child, "m", MAP)
    child.put()  # D2: the record does not pin child
    assert kinds(k, 3) == ["enter", "ns_destroyed", "return"]
    assert k.synchronize_rcu() == 1
    assert kinds(k, 4) == ["enter", "rcu_callback", "ns_freed", "return"]
    k.free_obj_id(oid, MAP)
    reports = [e for e in k.trace if isinstance(e, bpfns.SanitizerReport)]
    assert reports and {r.defect for r in reports} == {"D2"}
    assert len(reports) == len(k.reports)
    k.faults.fail_nth(1, [FaultSite.INUM])
    with pytest.raises(bpfns.BpfnsError):
        k.init_ns.create_child()
    assert kinds(k, 7) == ["enter", "fault_injected", "return"]
    assert k.trace.calls()[5].args == [1, {"list": [{"enum": "FaultSite", "name": "INUM"}]}]


def test_text_and_jsonl(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    k.init_ns.create_child(name="c")
    lines = k.trace.text().splitlines()
    assert len(lines) == len(k.trace)
    assert "create_child" in lines[3] and lines[3].split()[:2] == ["1", "enter"]
    buf = io.StringIO()
    k.trace.to_jsonl(buf)
    k.trace.to_jsonl(tmp_path / "t.jsonl")
    assert buf.getvalue() == (tmp_path / "t.jsonl").read_text() == k.trace.dumps()
    assert [json.loads(line)["kind"] for line in buf.getvalue().splitlines()] == [
        e.kind for e in k.trace
    ]


def test_hot_commands_record_the_call_as_written() -> None:
    """map_create and close are traced as every command is: the call as written.

    The arguments are recorded as they were passed (positional stay positional), so a
    replay makes the same call; failures are recorded as any call's are.
    """
    k = Kernel(trace=True)
    t = k.init_task
    fd = t.map_create(2, "m", value_size=8)
    with pytest.raises(TypeError):
        t.map_create(key_size=4.0)  # type: ignore[arg-type]
    t.close(fd)
    enters = [e for e in k.trace if isinstance(e, bpfns.Enter)]
    assert [(e.op, e.args, e.kwargs) for e in enters] == [
        ("map_create", [2, "m"], {"value_size": 8}),
        ("map_create", [], {"key_size": 4.0}),
        ("close", [fd], {}),
    ]
    returns = [e for e in k.trace if isinstance(e, Return)]
    assert [(r.result, r.error) for r in returns] == [
        (fd, None),
        (None, "TypeError"),
        (None, None),
    ]
    assert kinds(k, 1) == ["enter", "id_alloc", "return"]
    assert replay(k.trace).snapshot() == k.snapshot()


# -- replay ------------------------------------------------------------------------------


def busy_world(k: Kernel) -> list[bpfns.Snapshot]:
    """A scenario touching every traced layer; the snapshot after each step."""
    shots = [k.snapshot()]

    def step(value: object = None) -> object:
        shots.append(k.snapshot())
        return value

    init = k.init_task
    child = step(init.clone(CLONE_NEWBPF, name="ctr"))
    assert isinstance(child, bpfns.Task)
    m = step(child.map_create(name="m", key_size=8))
    assert isinstance(m, int)
    p = step(child.prog_load(name="p", maps=(m,)))
    assert isinstance(p, int)
    step(child.link_create(p))
    step(init.map_create(name="host"))
    step(child.obj_pin(m, "/sys/fs/bpf/m"))
    step(child.close(m))
    step(init.map_get_next_id(0))
    with pytest.raises(bpfns.BpfnsError):
        init.map_get_fd_by_id(99)
    step()
    step(k.alloc_obj_id(k.init_ns, object(), ObjType.LINK))
    step(child.obj_get_info_by_fd(p))
    step(k.init_user_ns.create_child(owner=1000))
    step(child.exit())
    step(k.synchronize_rcu())
    return shots


def test_replay_rebuilds_the_same_world_at_every_step(tmp_path: Path) -> None:
    k = Kernel(FIXED, trace=True)
    shots = busy_world(k)
    path = tmp_path / "busy.jsonl"
    k.trace.to_jsonl(path)
    steps = list(replay_steps(path))
    assert [call.step if call else 0 for call, _ in steps] == list(range(len(shots)))
    again = steps[-1][1]
    assert again.snapshot() == k.snapshot()
    assert again.trace.dumps() == path.read_text()
    for n, shot in enumerate(shots):
        assert replay(path, until=n).snapshot() == shot


def test_replay_of_a_sanitized_rfc_run() -> None:
    k = Kernel(RFC, on_bug="record", trace=True)
    child = k.init_ns.create_child()
    oid = k.alloc_obj_id(child, "m", MAP)
    child.put()
    k.synchronize_rcu()
    with pytest.raises(ValueError, match="double free"):
        k.free_obj_id(oid, MAP) or k.free_obj_id(oid, MAP)
    with pytest.raises(ValueError, match="freed"):
        _ = oid.numbers  # a read of a freed handle is misuse: no event, no report
    assert k.trace[-1].kind == "return"
    again = replay(k.trace)
    assert [r.describe() for r in again.reports] == [r.describe() for r in k.reports]


def test_replay_of_a_raising_sanitizer() -> None:
    k = Kernel(RFC, trace=True)
    child = k.init_ns.create_child()
    oid = k.alloc_obj_id(child, "m", MAP)
    child.put()
    k.synchronize_rcu()  # the namespace's memory is freed: the free below reads it
    with pytest.raises(bpfns.UseAfterFree):
        k.free_obj_id(oid, MAP)
    assert replay(k.trace).tainted


class TracedMachine(BpfnsMachine):
    """Every example's trace must replay to the same world."""

    trace = True
    id_end = 4


TestTracedMachine = TracedMachine.TestCase
TestTracedMachine.settings = settings(max_examples=40, deadline=None)


# -- bad traces --------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path) -> list[dict[str, object]]:
    k = Kernel(FIXED, trace=True)
    child = k.init_ns.create_child(name="c")
    k.alloc_obj_id(child, "m", MAP)
    return [json.loads(line) for line in k.trace.dumps().splitlines()]


def write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def line_of(rows: list[dict[str, object]], kind: str, nth: int = 0) -> int:
    return [i for i, r in enumerate(rows) if r["kind"] == kind][nth]


def edit(rows: list[dict[str, object]], i: int, **changes: object) -> list[object]:
    out: list[object] = [dict(r) for r in rows]
    row = out[i]
    assert isinstance(row, dict)
    for key, value in changes.items():
        if value is KeyError:
            del row[key]
        else:
            row[key] = value
    return out


FORMAT_ERRORS = {
    "not json": (lambda r: [*r[:2], "{oops", *r[3:]], 3, "not JSON"),
    "not an object": (lambda r: [*r[:2], "[1]", *r[3:]], 3, "JSON object"),
    "unknown kind": (lambda r: edit(r, 2, kind="boom"), 3, "unknown event kind 'boom'"),
    "missing field": (lambda r: edit(r, 1, inum=KeyError), 2, "missing fields ['inum']"),
    "extra field": (lambda r: edit(r, 1, evil=1), 2, "unexpected fields ['evil']"),
    "wrong type": (lambda r: edit(r, 1, level="0"), 2, "field 'level' must be int"),
    "bool for int": (lambda r: edit(r, 1, level=True), 2, "field 'level' must be int"),
    "bad dict": (lambda r: edit(r, 0, behavior={"d1": 1}), 1, "field 'behavior'"),
    "no header": (lambda r: r[1:], 1, "starts with its 'kernel' event"),
    "two headers": (lambda r: [*r[:2], r[0], *r[2:]], 3, "a second 'kernel' event"),
    "format": (lambda r: edit(r, 0, format=1), 1, "trace format 1"),
    "step order": (lambda r: edit(r, 4, step=7), 5, "step 7 out of order"),
    "return without enter": (lambda r: edit(r, 5, op="put"), 6, "without its enter"),
    "enter inside a call": (lambda r: [*r[:4], r[3], *r[4:]], 5, "never returned"),
    "never returns": (lambda r: r[:-1], 9, "never returned"),
}


@pytest.mark.parametrize("case", sorted(FORMAT_ERRORS))
def test_malformed_traces_name_the_line_and_run_nothing(
    case: str, good: list[dict[str, object]], tmp_path: Path
) -> None:
    mutate, line, message = FORMAT_ERRORS[case]
    path = write(tmp_path, mutate(good))
    with pytest.raises(TraceError) as info:
        replay(path)
    assert info.value.line == line
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert not isinstance(info.value, ReplayMismatchError)


def enter_with(rows: list[dict[str, object]], n: int, **changes: object) -> list[object]:
    return edit(rows, line_of(rows, "enter", n), **changes)


CALL_ERRORS = {
    "unknown target": ({"target": "ns9"}, "unknown call target 'ns9'"),
    "private method": ({"op": "_destroy"}, "Namespace._destroy is not a call"),
    "dunder": ({"op": "__init__"}, "Namespace.__init__ is not a call"),
    "unknown ref": ({"kwargs": {"user_ns": {"ref": "userns7"}}}, "unknown reference"),
    "raw list": ({"args": [[1]]}, "must be written {'list'"),
    "unknown enum": ({"args": [{"enum": "os", "name": "system"}]}, "unknown enum member"),
    "unknown member": ({"args": [{"enum": "ObjType", "name": "X"}]}, "unknown enum member"),
    "odd dict": ({"args": [{"eval": "1"}]}, "cannot decode argument"),
    "private kwarg": ({"kwargs": {"_nested": True}}, r"private arguments \['_nested'\]"),
}


@pytest.mark.parametrize("case", sorted(CALL_ERRORS))
def test_calls_are_data(case: str, good: list[dict[str, object]], tmp_path: Path) -> None:
    changes, message = CALL_ERRORS[case]
    rows = enter_with(good, 0, **changes)
    if "op" in changes:
        rows = edit(rows, line_of(good, "return"), op=changes["op"])  # type: ignore[arg-type]
    with pytest.raises(TraceError, match=message) as info:
        replay(write(tmp_path, rows))
    assert info.value.line == line_of(good, "enter") + 1


def test_header_must_build_a_kernel(good: list[dict[str, object]], tmp_path: Path) -> None:
    behavior = dict(good[0]["behavior"])  # type: ignore[call-overload]
    del behavior["d2_obj_id_unpinned"]
    with pytest.raises(TraceError, match="exactly the switches"):
        replay(write(tmp_path, edit(good, 0, behavior=behavior)))
    with pytest.raises(TraceError, match="cannot build the kernel: id_end=1"):
        replay(write(tmp_path, edit(good, 0, id_end=1)))


def test_an_edited_id_is_a_mismatch_naming_its_line(
    good: list[dict[str, object]], tmp_path: Path
) -> None:
    i = line_of(good, "id_alloc", 1)
    with pytest.raises(ReplayMismatchError) as info:
        replay(write(tmp_path, edit(good, i, nr=5)))
    assert info.value.line == i + 1
    assert '"nr": 5' in info.value.message and '"nr": 1' in info.value.message


def test_missing_and_extra_events_are_mismatches(
    good: list[dict[str, object]], tmp_path: Path
) -> None:
    i = line_of(good, "id_alloc", 1)
    with pytest.raises(ReplayMismatchError, match=r"the trace records .*return.*did \{") as info:
        replay(write(tmp_path, good[:i] + good[i + 1 :]))
    assert info.value.line == i + 1
    with pytest.raises(ReplayMismatchError, match="did more than the trace records"):
        replay(write(tmp_path, [good[0], good[1], *good[3:]]))  # no task_created
    extra = {"kind": "rcu_callback", "step": 0, "what": "x"}
    with pytest.raises(ReplayMismatchError, match="did nothing more") as info:
        replay(write(tmp_path, [*good[:3], extra, *good[3:]]))
    assert info.value.line == 4


def test_replay_argument_errors() -> None:
    with pytest.raises(TypeError, match=r"trace file name or a bpfns\.Trace"):
        replay(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="until=-1"):
        replay(Kernel(trace=True).trace, until=-1)
    with pytest.raises(TraceError, match="<trace>:1"):
        replay(bpfns.Trace([]))


def test_load_trace_reads_what_to_jsonl_wrote(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    k.init_ns.create_child(name="c").put()
    path = tmp_path / "t.jsonl"
    k.trace.to_jsonl(path)
    loaded = load_trace(path)
    assert loaded.events == k.trace.events and loaded.steps == 2


def test_trace_reprs() -> None:
    k = Kernel(trace=True)
    k.init_ns.create_child(name="<b>&c")
    assert repr(k.trace) == f"<Trace {len(k.trace)} events, 1 steps>"
    page = k.trace._repr_html_()
    root = ElementTree.fromstring(page)
    rows = root.findall(".//tr")[1:]
    assert [r[1].text for r in rows] == [e.kind for e in k.trace]
    assert "&lt;b&gt;&amp;c" in page and "<b>" not in page
    short = ElementTree.fromstring(k.trace._repr_html_(limit=2))
    assert len(short.findall(".//tr")) == 3
    assert short.find("p").text == f"... {len(k.trace) - 2} more events; see Trace.text()"  # type: ignore[union-attr]
    lines: list[str] = []

    class Printer:
        def text(self, s: str) -> None:
            lines.append(s)

    k.trace._repr_pretty_(Printer(), cycle=False)
    k.trace._repr_pretty_(Printer(), cycle=True)
    assert lines == [k.trace.text(), repr(k.trace)]


def test_tracer_check_names_what_is_broken() -> None:
    k = Kernel(trace=True)
    k.init_ns.create_child()
    tracer = k.tracer
    assert tracer is not None
    tracer._check()
    tracer.depth = 1
    with pytest.raises(AssertionError, match="never returned"):
        tracer._check()
    tracer.depth = 0
    tracer.step = 7
    with pytest.raises(AssertionError, match="trace ends at step 1"):
        tracer._check()
    tracer.step = 1
    del tracer.trace.events[-1]  # the Return of step 1
    tracer.trace.events.append(bpfns.NsFreed(1, "ns1"))
    with pytest.raises(
        AssertionError, match=r"<trace>:\d+: step 1 \(create_child\) never returned"
    ):
        tracer._check()
