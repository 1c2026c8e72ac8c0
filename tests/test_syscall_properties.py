"""Random syscall sequences (FIXED): every call keeps check() true, every failure is atomic.

A failed call may leave behind only what the kernel leaves (the docs table "What a
failed call leaves behind", ``bpfns._snapshot.FAILED_CALL_LEAVES``): advanced IDR
cursors, and, when a freshly loaded program cannot get an fd (EMFILE), its LOAD/UNLOAD
audit records and its pending RCU free. Small id spaces, fd limits and depths make
failures common.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bpfns import CLONE_NEWBPF, FIXED, BpfnsError, Cap, Kernel, Task
from helpers import assert_atomic

FLAGS = st.sampled_from([0, CLONE_NEWBPF])


class SyscallMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.k = Kernel(FIXED)

    @initialize(id_end=st.integers(2, 5), nofile=st.integers(2, 6), level=st.integers(1, 3))
    def boot(self, id_end: int, nofile: int, level: int) -> None:
        self.k = Kernel(FIXED, id_end=id_end, max_level=level)
        assert self.k.init_task.files is not None
        self.k.init_task.files.nofile = nofile

    def call(self, fn: Callable[[], Any], name: str) -> Any:
        before = self.k.snapshot()
        try:
            return fn()
        except BpfnsError as e:
            event(f"{name}: {e.errorcode}")
            assert_atomic(self.k, before, name)
            return None

    def task(self, data: st.DataObject) -> Task:
        pid = data.draw(st.sampled_from([t.pid for t in self.k.tasks()]), label="pid")
        return self.k.find_task(pid)

    def fd(self, data: st.DataObject, t: Task) -> int:
        assert t.files is not None
        fds = [fd for fd, _ in t.files.items()] or [0]
        return data.draw(st.sampled_from([*fds, 99]), label="fd")

    @rule(data=st.data(), flags=FLAGS)
    def clone(self, data: st.DataObject, flags: int) -> None:
        self.call(lambda: self.task(data).clone(flags), "clone")

    @rule(data=st.data())
    def unshare(self, data: st.DataObject) -> None:
        self.call(lambda: self.task(data).unshare(CLONE_NEWBPF), "unshare")

    @rule(data=st.data())
    def exit(self, data: st.DataObject) -> None:
        t = self.task(data)
        if t is not self.k.init_task:
            t.exit()

    @rule(data=st.data())
    def drop_sys_admin(self, data: st.DataObject) -> None:
        t = self.task(data)
        if t is not self.k.init_task:
            t.drop_capabilities(Cap.CAP_SYS_ADMIN)

    @rule(data=st.data())
    def map_create(self, data: st.DataObject) -> None:
        self.call(self.task(data).map_create, "map_create")

    @rule(data=st.data())
    def prog_load(self, data: st.DataObject) -> None:
        t = self.task(data)
        maps = data.draw(st.lists(st.integers(0, 6), max_size=2), label="maps")
        self.call(lambda: t.prog_load(maps=tuple(maps)), "prog_load")

    @rule(data=st.data())
    def link_create(self, data: st.DataObject) -> None:
        t = self.task(data)
        self.call(lambda: t.link_create(self.fd(data, t)), "link_create")

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        t = self.task(data)
        self.call(lambda: t.close(self.fd(data, t)), "close")

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        t = self.task(data)
        self.call(lambda: t.send_fd(self.fd(data, t), self.task(data)), "send_fd")

    @rule(data=st.data(), path=st.sampled_from(["/sys/fs/bpf/a", "/sys/fs/bpf/b"]))
    def pin(self, data: st.DataObject, path: str) -> None:
        t = self.task(data)
        self.call(lambda: t.obj_pin(self.fd(data, t), path), "obj_pin")

    @rule(data=st.data(), path=st.sampled_from(["/sys/fs/bpf/a", "/sys/fs/bpf/b"]))
    def get_or_unlink(self, data: st.DataObject, path: str) -> None:
        t = self.task(data)
        if data.draw(st.booleans(), label="unlink"):
            self.call(lambda: t.unlink(path), "unlink")
        else:
            self.call(lambda: t.obj_get(path), "obj_get")

    @rule(data=st.data(), kind=st.sampled_from(["map", "prog", "link"]), nr=st.integers(0, 5))
    def by_id(self, data: st.DataObject, kind: str, nr: int) -> None:
        t = self.task(data)
        self.call(lambda: getattr(t, f"{kind}_get_next_id")(nr), "get_next_id")
        self.call(lambda: getattr(t, f"{kind}_get_fd_by_id")(nr), "get_fd_by_id")

    @rule(data=st.data())
    def info(self, data: st.DataObject) -> None:
        t = self.task(data)
        self.call(lambda: t.obj_get_info_by_fd(self.fd(data, t)), "info")

    @rule()
    def grace_period(self) -> None:
        self.k.synchronize_rcu()

    @invariant()
    def consistent(self) -> None:
        self.k.check()
        assert self.k.reports == []


TestSyscallMachine = SyscallMachine.TestCase
TestSyscallMachine.settings = settings(settings.default, stateful_step_count=25)
