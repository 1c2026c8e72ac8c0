"""``bpfns run [options] -- PROGRAM``: worlds, namespaces, credentials, exit codes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import bpfns
from bpfns._cli import main
from bpfns._seccomp import unavailable

pytestmark = pytest.mark.skipif(
    unavailable() is not None and not __import__("os").environ.get("CI"),
    reason="no seccomp user notification",
)
needs_bpftool = pytest.mark.skipif(
    shutil.which("bpftool") is None and not __import__("os").environ.get("CI"),
    reason="no bpftool",
)


@needs_bpftool
def test_demo_world_from_a_container(capfd: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["run", "--demo", "--ns", "/child_b/child_b_b", "--", "bpftool", "-j", "map", "list"]
    )
    out = capfd.readouterr().out
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["m"]
    assert main(["run", "--demo", "--", "bpftool", "-j", "map", "list"]) == 0
    names = [m["name"] for m in json.loads(capfd.readouterr().out)]
    assert names == ["host_map0", "host_map1", "b_map0", "m"]


@needs_bpftool
def test_credentials(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--demo", "--uid", "1000", "--", "bpftool", "map", "list"]) != 0
    assert "Operation not permitted" in capfd.readouterr().err
    assert main(["run", "--demo", "--caps", "CAP_BPF", "--", "bpftool", "map", "list"]) != 0
    capfd.readouterr()  # listing ids needs CAP_SYS_ADMIN in the initial namespace
    assert (
        main(["run", "--demo", "--caps", "sys_admin,CAP_BPF", "--", "bpftool", "map", "list"]) == 0
    )
    assert main(["run", "--caps", "none", "--", "true"]) == 0


def test_exit_codes(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--", "sh", "-c", "exit 7"]) == 7
    assert main(["run", "--", "sh", "-c", "kill -TERM $$"]) == 128 + 15
    assert main(["run"]) == 2
    assert main(["run", "--", "bpfns-no-such-program"]) == 2
    assert "no program" in capfd.readouterr().err
    assert main(["run", "--ns", "/nowhere", "--", "true"]) == 2
    assert "no namespace 'nowhere'" in capfd.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["run", "--caps", "CAP_FLY", "--", "true"])
    assert bad.value.code == 2 and "unknown capability" in capfd.readouterr().err


def test_refused_where_seccomp_cannot(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("bpfns._run.unavailable", lambda: "not on this kernel")
    assert main(["run", "--", "true"]) == 2
    assert "not on this kernel" in capfd.readouterr().err


def test_world_from_a_trace_and_the_session_trace(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    world = tmp_path / "world.jsonl"
    k = bpfns.Kernel(bpfns.FIXED, trace=True)
    t = k.init_task.clone(bpfns.CLONE_NEWBPF, ns_name="lone")
    t.obj_pin(t.map_create(name="kept"), "/sys/fs/bpf/kept")
    t.exit()  # the namespace lives on (the pin), with no task in it
    k.trace.to_jsonl(world)
    assert main(["run", "--world", str(world), "--behavior", "rfc", "--", "true"]) == 2
    assert main(["run", "--world", str(world), "--ns", "/lone", "--", "true"]) == 2
    assert "no live task in /lone" in capfd.readouterr().err
    session = tmp_path / "session.jsonl"
    script = "from bpfns.conformance import _Bpf; _Bpf().map_create()"
    argv = [
        "run",
        "--world",
        str(world),
        "--trace",
        str(session),
        "--",
        sys.executable,
        "-c",
        script,
    ]
    assert main(argv) == 0
    replayed = bpfns.replay(session)
    assert replayed.bpffs.paths() == ["/sys/fs/bpf/kept"]
    assert replayed.init_ns.idr[bpfns.ObjType.MAP].cursor == 3  # the session's map had id 2
    assert main(["run", "--world", str(tmp_path / "missing.jsonl"), "--", "true"]) == 2


def test_an_oops_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    script = "from bpfns.conformance import _Bpf; _Bpf().prog_load()"
    assert main(["run", "--behavior", "rfc", "--", sys.executable, "-c", script]) == 0
    err = capfd.readouterr().err
    assert "oopsed" in err and "(D8" in err
