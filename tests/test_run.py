"""``bpfns.run``: real programs (Debian's bpftool, a C client, hostile Python targets)
with their ``bpf()`` calls answered by the simulated kernel.

CI installs bpftool and gcc (.ci/run); there a missing one is a failure, not a skip.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import bpfns
from bpfns import CLONE_NEWBPF, FIXED, RFC, Behavior, Kernel, ObjType, Task
from bpfns._cli import build_seed_world
from bpfns._seccomp import unavailable
from bpfns.conformance import unavailable as live_unavailable

pytest_plugins = ["pytester"]

TARGETS = Path(__file__).parent / "targets"
RAW = str(TARGETS / "raw.py")
CI = bool(os.environ.get("CI"))
BPFTOOL = shutil.which("bpftool")

pytestmark = pytest.mark.skipif(
    unavailable() is not None and not CI, reason=f"no seccomp user notification: {unavailable()}"
)
needs_bpftool = pytest.mark.skipif(BPFTOOL is None and not CI, reason="no bpftool")
BEHAVIORS = pytest.mark.parametrize("behavior", [RFC, FIXED], ids=["rfc", "fixed"])


def bpftool(task: Task, *args: str) -> Any:
    """``bpftool -j ARGS`` run as a fork of ``task``: its JSON."""
    r = bpfns.run(task, ["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    assert r.answered > 0
    return json.loads(r.stdout)


def raw(task: Task, scenario: str, *args: str, **kwargs: Any) -> dict[str, int]:
    """A scenario of tests/targets/raw.py run as a fork of ``task``."""
    r = bpfns.run(
        task, [sys.executable, RAW, scenario, *args], capture_output=True, text=True, **kwargs
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def walk(task: Task, kind: str) -> list[dict[str, Any]]:
    """What the Task API lists, in bpftool's JSON words."""
    out: list[dict[str, Any]] = []
    start = 0
    while True:
        try:
            start = getattr(task, f"{kind}_get_next_id")(start)
        except bpfns.BpfnsError:
            return out
        fd = getattr(task, f"{kind}_get_fd_by_id")(start)
        info = task.obj_get_info_by_fd(fd)
        task.close(fd)
        row: dict[str, Any] = {"id": info.id}
        if isinstance(info, bpfns.MapInfo | bpfns.ProgInfo):
            row["name"] = info.name
        if isinstance(info, bpfns.ProgInfo):
            row["map_ids"] = list(info.map_ids)
        if isinstance(info, bpfns.LinkInfo):
            row["prog_id"] = info.prog_id
        out.append(row)


def seed_world(behavior: Behavior) -> tuple[Kernel, dict[str, Task]]:
    k = Kernel(behavior)
    world = build_seed_world(k)
    for i in range(2):
        world["init_bpf_ns"].map_create(name=f"host{i}")
    world["child_b"].map_create(name="b0")
    bb = world["child_b_b"]
    m = bb.map_create(name="m")
    bb.link_create(bb.prog_load(name="p", maps=(m,)))
    return k, world


@needs_bpftool
@BEHAVIORS
@pytest.mark.parametrize("where", ["init_bpf_ns", "child_b", "child_b_b", "child_a"])
def test_bpftool_lists_what_the_namespace_sees(behavior: Behavior, where: str) -> None:
    k, world = seed_world(behavior)
    task = world[where]
    maps = bpftool(task, "map", "list")
    assert [{"id": m["id"], "name": m.get("name", "")} for m in maps] == walk(task, "map")
    progs = bpftool(task, "prog", "list")
    got = [{"id": p["id"], "name": p["name"], "map_ids": p.get("map_ids", [])} for p in progs]
    assert got == walk(task, "prog")
    links = bpftool(task, "link", "list")
    assert [{"id": x["id"], "prog_id": x["prog_id"]} for x in links] == walk(task, "link")
    assert len(maps) == {"init_bpf_ns": 4, "child_b": 2, "child_b_b": 1, "child_a": 0}[where]
    k.check()


@needs_bpftool
def test_bpftool_show_pin_and_show_pinned() -> None:
    k, world = seed_world(FIXED)
    bb = world["child_b_b"]
    assert bpftool(bb, "map", "show", "id", "1")["name"] == "m"
    r = bpfns.run(bb, ["bpftool", "map", "pin", "id", "1", "/sys/fs/bpf/m"], capture_output=True)
    assert r.returncode == 0 and k.bpffs.paths() == ["/sys/fs/bpf/m"]
    assert r.calls["BPF_OBJ_PIN"] == 1
    assert bpftool(bb, "map", "show", "pinned", "/sys/fs/bpf/m")["id"] == 1
    missing = bpfns.run(bb, ["bpftool", "map", "show", "id", "9"], capture_output=True, text=True)
    assert missing.returncode != 0 and "No such file" in missing.stderr
    k.check()


@needs_bpftool
@BEHAVIORS
def test_d6_through_the_real_bpftool(behavior: Behavior) -> None:
    """A pin of child_b_b opened from child_a: as posted, child_b's number (D6, D20)."""
    k, world = seed_world(behavior)
    bb, a = world["child_b_b"], world["child_a"]
    bb.obj_pin(bb.map_get_fd_by_id(1), "/sys/fs/bpf/m")
    shown = bpftool(a, "map", "show", "pinned", "/sys/fs/bpf/m")["id"]
    assert shown == a.obj_get_info_by_fd(a.obj_get("/sys/fs/bpf/m")).id
    assert shown == (2 if behavior.d6_nr_ns_unchecked else 0)  # child_b numbers it 2
    # A sibling's fd passed in: the same through a raw client.
    fd = a.dup2(bb.send_fd(bb.map_get_fd_by_id(1), a), 10)
    assert raw(a, "info", str(fd), pass_fds=(fd,)) == {str(fd): shown}
    with pytest.raises(ValueError, match="stdin/stdout/stderr"):
        bpfns.run(a, ["true"], pass_fds=(0,))
    k.check()


def _differences(lines: list[str]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for line in lines:
        what, value = line.split()
        ids.setdefault(what, []).append(int(value))
    return {what: [b - a for a, b in itertools.pairwise(v)] for what, v in ids.items()}


@pytest.fixture(scope="module")
def ids_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = shutil.which("cc")
    if cc is None and not CI:
        pytest.skip("no C compiler")
    binary = tmp_path_factory.mktemp("cc") / "ids"
    subprocess.run([cc or "cc", str(TARGETS / "ids.c"), "-o", str(binary)], check=True)
    return str(binary)


@pytest.mark.bpfns_corrupts  # as posted, the exit oopses (D8); checked when fixed
@BEHAVIORS
def test_c_client_sees_level_0_ids(ids_client: str, behavior: Behavior) -> None:
    k = Kernel(behavior)
    r = bpfns.run(k.init_task, [ids_client], capture_output=True, text=True, check=True)
    lines = r.stdout.split()
    assert " ".join(lines) == ("map 1 map 2 map 3 map 4 prog 1 prog 2 link 1 next 3 next 4")
    assert r.calls["BPF_MAP_CREATE"] == 4 and r.calls["BPF_RAW_TRACEPOINT_OPEN"] == 1
    k.synchronize_rcu()  # the maps a program used go after a grace period
    if behavior.d8_vnr_without_nsproxy:  # as posted, the exit's last fput oopses (D8)
        assert [b.report.defect for b in r.reports] == ["D8"]
        return
    assert r.reports == () and k.bpf_objects() == []  # the exit released it all
    k.check()


@pytest.mark.xdist_group("live-kernel")
@pytest.mark.skipif(live_unavailable() is not None, reason=f"live bpf(): {live_unavailable()}")
def test_c_client_gives_the_live_kernels_id_differences(ids_client: str) -> None:
    live = subprocess.run([ids_client], capture_output=True, text=True, check=True).stdout
    sim = bpfns.run(Kernel(FIXED).init_task, [ids_client], capture_output=True, text=True)
    pairs = [line.split() for line in live.splitlines()]
    live_lines = [" ".join(p) for p in pairs if p[0] != "next"]
    sim_lines = [line for line in sim.stdout.splitlines() if not line.startswith("next")]
    assert _differences(live_lines) == _differences(sim_lines)


@pytest.mark.xdist_group("live-kernel")
@pytest.mark.skipif(live_unavailable() is not None, reason=f"live bpf(): {live_unavailable()}")
def test_hostile_target_gets_the_live_kernels_errnos() -> None:
    k = Kernel(FIXED)
    sim = raw(k.init_task, "hostile")
    live = json.loads(
        subprocess.run(
            [sys.executable, RAW, "hostile"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert {key: live[key] for key in sim if key != "map"} == {
        k_: v for k_, v in sim.items() if k_ != "map"
    }
    k.check()


def test_hostile_target_cannot_hurt_the_supervisor() -> None:
    k = Kernel(FIXED)
    got = raw(k.init_task, "hostile")
    E = errno  # noqa: N806 - short for the table below
    assert got["null_attr"] == got["kernel_pointer"] == -E.EFAULT
    assert got["huge_size"] == got["page_plus_one"] == got["dirty_tail"] == -E.E2BIG
    assert got["clean_tail"] == -E.ENOENT  # a larger attr with a zero tail is fine
    assert got["unknown_cmd"] == got["negative_cmd"] == got["unsupported_cmd"] == -E.EINVAL
    assert got["check_attr"] == got["name_without_nul"] == -E.EINVAL
    assert got["zero_insns"] == got["too_many_insns"] == got["size_first"] == -E.E2BIG
    assert got["bad_insns"] == got["bad_license"] == -E.EFAULT
    assert got["info_bad_pointer"] == got["pin_bad_path"] == -E.EFAULT
    assert got["info_huge_len"] == -E.E2BIG
    assert got["info_minus_one"] == got["info_after_close"] == -E.EBADFD
    assert got["info_stdout"] == -E.EINVAL  # open, but not a BPF object
    assert got["pin_long_path"] == -E.ENAMETOOLONG
    assert got["next_id_readonly_attr"] == -E.EFAULT  # no write through FOLL_FORCE
    assert got["id_after_close"] == -E.ENOENT  # the close behind our back freed the map
    assert k.bpf_objects() == [] and k.bpffs.paths() == []
    k.check()


def test_fds_follow_dup_fork_scm_rights_and_exit() -> None:
    k = Kernel(FIXED)
    got = raw(k.init_task, "fds")
    assert got["a_id"] == got["dup_id"] == got["fdinfo_map_id"] == got["child_b_id"] == 1
    assert got["b_still"] == 1 and got["readlink"] == 1
    assert got["c_id"] == got["child_c_id"] == 2  # c lived on in the child alone
    assert got["d_from_child"] == 3  # made by the child, passed up to the parent
    assert got["after_child"] == -errno.ENOENT  # and died with it
    assert got["statfs_type"] == 0xCAFE4A11  # BPF_FS_MAGIC
    assert k.bpf_objects() == [] and len(k.tasks()) == 1
    k.check()


def test_threads_orphans_and_native_paths() -> None:
    k = Kernel(FIXED)
    assert raw(k.init_task, "threads")["id"] == 1
    assert raw(k.init_task, "orphan")["grandchild_id"] == 2
    paths = raw(k.init_task, "paths")
    assert paths["readlink_zero"] == -1 and paths["readlink_zero_errno"] == errno.EINVAL
    assert paths["readlink_short"] == 4 and paths["readlink_short_is"] == 1
    assert paths["readlinkat"] == len("anon_inode:bpf-map")
    assert paths["readlink_stdin_native"] == paths["fdinfo_native"] == 1
    assert paths["open_bad_pointer_errno"] == errno.EFAULT
    assert paths["statfs_native_is_bpffs"] == 0 and paths["fdinfo_by_pid"] == 1
    assert paths["statfs_bad_pointer"] == paths["readlink_bad_pointer"] == -1
    assert paths["fdinfo_untracked_native"] == 1  # another process's fdinfo: real procfs
    assert k.bpf_objects() == []
    k.check()


def test_emfile_in_the_target_unwinds_the_new_map() -> None:
    k = Kernel(FIXED)
    before = k.snapshot()
    got = raw(k.init_task, "emfile")
    assert got == {"create": -errno.EMFILE, "next_id": -errno.ENOENT, "fdinfo": -errno.EMFILE}
    assert k.bpf_objects() == []
    assert k.init_ns.idr[ObjType.MAP].cursor == 3  # the id was allocated, then freed
    del before
    k.check()


@pytest.mark.bpfns_corrupts  # the RFC kernel after its oops
def test_d1_and_d3_reach_the_real_program() -> None:
    """A full id space: as posted the oops (D1) kills the program; without D1 the
    create returns 0 (D3); fixed, ENOSPC."""
    rfc = Kernel(RFC, id_end=2)
    r = bpfns.run(rfc.init_task, [sys.executable, RAW, "d3"], capture_output=True)
    assert r.returncode == -9 and [b.report.defect for b in r.reports] == ["D1"]
    no_d1 = Kernel(attrs.evolve(RFC, d1_rollback_at_failed_level=False), id_end=2)
    got = raw(no_d1.init_task, "d3")
    assert got["0"] >= 3 and got["1"] == got["2"] == 0  # 0: an fd the program never got
    fixed = Kernel(FIXED, id_end=2)
    got = raw(fixed.init_task, "d3")
    assert got["0"] >= 3 and got["1"] == got["2"] == -errno.ENOSPC
    fixed.check()


@pytest.mark.bpfns_corrupts  # the RFC kernel after its oops
def test_d8_when_the_program_exits_holding_a_program() -> None:
    k = Kernel(RFC)
    t = k.init_task.clone(CLONE_NEWBPF)
    code = "from bpfns.conformance import _Bpf; print(_Bpf().prog_load())"
    r = bpfns.run(t, [sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and [type(b).__name__ for b in r.reports] == [
        "NullPointerDereference"
    ]
    assert "D8" in str(r.reports[0])
    fixed = Kernel(FIXED)
    r = bpfns.run(
        fixed.init_task.clone(CLONE_NEWBPF), [sys.executable, "-c", code], capture_output=True
    )
    fixed.synchronize_rcu()
    assert r.reports == () and fixed.bpf_objects() == []
    fixed.check()


def test_the_conformance_driver_runs_under_bpfns() -> None:
    """bpfns.conformance's raw driver predicts the simulated kernel as it does the live one."""
    k = Kernel(FIXED)
    code = (
        "from bpfns.conformance import run_bpf_scenario as r\n"
        "print([len(r(kind, 3, 40).mismatches) for kind in ('map', 'prog', 'link')])"
    )
    r = bpfns.run(k.init_task, [sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[0, 0, 0]", r.stderr
    assert r.answered > 100
    k.check()


def test_the_session_replays() -> None:
    k = Kernel(FIXED, trace=True)
    raw(k.init_task, "fds")
    again = bpfns.replay(k.trace)
    assert again.trace.dumps() == k.trace.dumps()


def test_subprocess_keywords() -> None:
    k = Kernel(FIXED)
    r = bpfns.run(k.init_task, ["cat"], input=b"hi", capture_output=True)
    assert r.stdout == b"hi" and r.answered == 0 and r.calls == {}
    with pytest.raises(subprocess.CalledProcessError):
        bpfns.run(k.init_task, ["false"], check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        bpfns.run(k.init_task, ["sleep", "5"], timeout=0.2)
    with pytest.raises(FileNotFoundError, match="no program"):
        bpfns.run(k.init_task, ["bpfns-no-such-program"])
    assert len(k.tasks()) == 1
    k.check()


def test_unavailable_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "cannot read" in str(unavailable(tmp_path / "missing"))
    (tmp_path / "actions").write_text("kill_process kill_thread trap errno log allow\n")
    assert "no user_notif" in str(unavailable(tmp_path / "actions"))
    monkeypatch.setattr("bpfns._run.unavailable", lambda: "no seccomp here")
    k = Kernel()
    with pytest.raises(RuntimeError, match="no seccomp here"):
        bpfns.run(k.init_task, ["true"])
    assert len(k.tasks()) == 1


#: What ``clone`` then ``exit`` leaves behind (the pid and step counters move on).
CHANGED_BY_A_FORK_AND_EXIT: list[str] = []


def test_a_launcher_that_cannot_filter_is_a_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bpfns._run._LAUNCHER", str(TARGETS / "no_filter.py"))
    k = Kernel()
    t = k.init_task
    t.dup2(t.map_create(), 10)
    before = k.snapshot()
    with pytest.raises(RuntimeError, match="could not be put under seccomp"):
        bpfns.run(t, ["true"], pass_fds=(10,))
    assert k.tasks() == [t]  # the fork is unwound
    assert before.changed(k.snapshot()) == CHANGED_BY_A_FORK_AND_EXIT
    k.check()


def test_a_supervisor_failure_kills_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, n: object) -> None:
        raise ZeroDivisionError("supervisor bug")

    monkeypatch.setattr("bpfns._supervisor.Supervisor.handle", broken)
    k = Kernel(FIXED)
    with pytest.raises(ZeroDivisionError):
        bpfns.run(k.init_task, [sys.executable, RAW, "d3"], capture_output=True)


def test_a_dead_supervisor_gives_enosys(tmp_path: Path) -> None:
    """The supervisor (``bpfns run``) is killed: the program's bpf() fails, never hangs."""
    out = tmp_path / "out"
    script = (
        "import ctypes, os, signal, time\n"
        "os.kill(os.getppid(), signal.SIGKILL); time.sleep(0.3)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "attr = ctypes.create_string_buffer(16)\n"
        "ret = libc.syscall(321, 12, attr, 12)\n"
        "os.write(1, str(ctypes.get_errno() if ret < 0 else 0).encode())\n"
    )  # not open(): openat is a notified call too, so it fails with ENOSYS now
    with out.open("w") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "bpfns", "run", "--", sys.executable, "-c", script],
            stdout=stdout,
            timeout=30,
            check=False,
        )
    assert proc.returncode == -9
    for _ in range(100):
        if out.exists() and out.read_text():
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert out.read_text() == str(errno.ENOSYS)


@needs_bpftool
def test_the_how_tos_pytest_example_passes(pytester: pytest.Pytester) -> None:
    howto = Path(__file__).resolve().parent.parent / "docs/howto/run-real-tools.md"
    section = howto.read_text().split("## 2. From a test", 1)[1]
    block = section.split("```python\nimport json", 1)[1].split("```", 1)[0]
    pytester.makepyfile("import json" + block)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        result = pytester.runpytest_inprocess("-p", "pytest_bpfns", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_command_and_memory_edges() -> None:
    k = Kernel(FIXED)
    got = raw(k.init_task, "more")
    assert got["prog_name_without_nul"] == got["other_link"] == -errno.EINVAL
    assert got["pin_flags"] == got["get_with_fd"] == -errno.EINVAL
    assert got["perf_link"] >= 3 and got["raw_tp_no_name"] >= 3 and got["map_in_map"] >= 3
    assert got["info_zero_len"] == 0  # nothing to copy is no fault
    assert got["map_ids_bad_pointer"] == -errno.EFAULT
    assert got["next_id_across_mappings"] == 0 and got["next_id_value"] == 1
    assert got["attr_cut_by_unmapped_page"] == -errno.EFAULT
    k.synchronize_rcu()
    assert k.bpf_objects() == []
    k.check()


def test_a_map_on_the_stdio_fds() -> None:
    k = Kernel(FIXED)
    assert raw(k.init_task, "low_fds") == {"b": 3, "b_id": 2, "zero_id": 1}
    k.check()


def test_pass_fds_share_one_placeholder() -> None:
    k = Kernel(FIXED)
    t = k.init_task
    fd = t.map_create(name="given")
    t.dup2(fd, 10)
    t.dup2(fd, 11)
    assert raw(t, "info", "10", "11", pass_fds=(10, 11)) == {"10": 1, "11": 1}
    assert dict(t.files.items())[10].count == 3  # the program's references went with it
    k.check()


def test_id_valid_is_false_for_a_non_listener() -> None:
    from bpfns._seccomp import Listener  # noqa: PLC0415

    fd = os.open("/dev/null", os.O_RDONLY)
    listener = Listener(fd)
    assert listener.id_valid(1) is False
    listener.close()
    listener.close()  # twice is harmless
    assert listener.fd == -1
