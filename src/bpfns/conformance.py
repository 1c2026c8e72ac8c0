"""Kernel conformance: run the same scenario on the running kernel and on bpfns.

The pid driver (:func:`run_pid_scenario`) builds nested pid namespaces with
``unshare(CLONE_NEWPID)`` and ``fork``, sets each namespace's ``pid_max`` through
``/proc/sys/kernel/pid_max`` (per namespace since Linux 6.14), spawns and reaps
processes, and reads every new process's ``NSpid`` line. The very same steps run on
:class:`bpfns.pidns.PidKernel`, and every number is compared (:func:`compare`).

The whole scenario lives in a fresh pid namespace, so no other process on the machine
allocates pids there; the host's own level (shared with the whole system) is not
compared. Each namespace is served by its init process (pid 1 there), which forks and
reaps on command; a namespace is created by a helper process that unshares and forks
the new init. Every pid the kernel hands out, helpers included, is an event.

The BPF driver (:func:`run_bpf_scenario`) creates and closes maps and programs with the
raw ``bpf()`` syscall (ctypes) and checks that bpfns's level-0 allocator, started from
the kernel's live ids and cursor, predicts every id.

Everything cleans up after itself (the scenario's root init is killed, which kills the
whole tree; fds are closed) and refuses to start, with a reason, where it cannot run:
see :func:`unavailable`.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import random
import signal
import struct
from collections.abc import Iterator
from typing import Any

import attrs

from ._args import INT_MAX
from ._errors import BpfnsError
from ._obj_id import ObjId
from .pidns import PidKernel

__all__ = [
    "PID_RULES",
    "BpfResult",
    "Event",
    "Mismatch",
    "Step",
    "compare",
    "generate_pid_scenario",
    "parse_nspid",
    "run_bpf_scenario",
    "run_pid_rules",
    "run_pid_scenario",
    "run_table",
    "simulate_pid_rules",
    "simulate_pid_scenario",
    "unavailable",
]

CLONE_NEWPID = 0x20000000
MIN_KERNEL = (6, 14)


@attrs.frozen
class Step:
    """One scenario step, run the same way on the kernel and on bpfns.

    ``op`` is ``"newns"`` (a child of namespace ``ns``), ``"setmax"`` (pid_max of
    ``ns`` := ``arg``), ``"spawn"`` (``arg`` processes in ``ns``) or ``"reap"`` (the
    ``arg``-th live process of ``ns``, modulo their number).
    """

    op: str
    ns: int
    arg: int = 0


@attrs.frozen
class Event:
    """What one side observed: a pid (numbers from the scenario root down), or an error."""

    op: str
    ns: int
    numbers: tuple[int, ...] = ()
    error: str | None = None


@attrs.frozen
class Mismatch:
    """An event where the kernel and bpfns disagree."""

    index: int
    kernel: Event
    bpfns: Event


def unavailable() -> str | None:
    """Why the live drivers cannot run here, or None if they can."""
    if platform.system() != "Linux":
        return "not Linux"
    if os.geteuid() != 0:
        return "not root (unshare(CLONE_NEWPID) and bpf() need it)"
    release = platform.release().split("-")[0].split(".")
    version = tuple(int(part) for part in release[:2] if part.isdigit())
    if version < MIN_KERNEL:
        return f"kernel {platform.release()} is older than 6.14 (no per-namespace pid_max)"
    return _probe()


def _probe() -> str | None:
    """Try the two things the drivers need: unshare(CLONE_NEWPID) (in a child) and bpf()."""
    child = os.fork()
    if child == 0:  # pragma: no cover - child process
        code = 1
        try:
            _unshare_newpid()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return "unshare(CLONE_NEWPID) is refused here (a container without CAP_SYS_ADMIN?)"
    try:
        bpf = _Bpf()
        os.close(bpf.map_create())
    except (OSError, RuntimeError) as e:
        return f"bpf() is refused here: {e}"
    return None


def generate_pid_scenario(seed: int, rounds: int = 40) -> list[Step]:
    """A seeded scenario: 2-4 nested levels, small pid_max values, spawn/reap rounds.

    Small pid_max values force wrap-around to 300 and full namespaces (EAGAIN); reaps
    pick processes both below and above 300.
    """
    rng = random.Random(seed)
    steps: list[Step] = [Step("setmax", 0, rng.randint(330, 460))]
    levels = rng.randint(2, 4)
    for level in range(1, levels):
        steps.append(Step("newns", level - 1))
        if rng.random() < 0.7:
            steps.append(Step("setmax", level, rng.randint(305, 420)))
    for _ in range(rounds):
        ns = rng.randrange(levels)
        steps.append(Step("spawn", ns, rng.randint(5, 40)))
        for _ in range(rng.randint(3, 35)):
            steps.append(Step("reap", rng.randrange(levels), rng.randint(0, 10**6)))
        if rng.random() < 0.05:
            steps.append(Step("setmax", rng.randrange(levels), rng.choice([300, 4194305])))
    return steps


# -- the simulation side -----------------------------------------------------------------


def simulate_pid_scenario(steps: list[Step]) -> list[Event]:
    """Run ``steps`` on :class:`bpfns.pidns.PidKernel`; the events the model predicts."""
    sim = _Sim()
    events = [sim.fork(0)]  # the root's init
    for step in steps:
        events += sim.step(step)
    return events


@attrs.define
class _Sim:
    pk: PidKernel = attrs.field(factory=PidKernel)
    spaces: list[Any] = attrs.field(init=False)
    live: list[list[Any]] = attrs.field(factory=lambda: [[]])
    dead: set[int] = attrs.field(factory=set)
    helpers: list[Any] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.spaces = [self.pk.root]

    def fork(self, index: int, helper: bool = False) -> Event:
        try:
            pid = self.pk.alloc_pid(self.spaces[index])
        except BpfnsError as e:
            return Event("fork", index, error=e.errorcode)
        (self.helpers if helper else self.live[index]).append(pid)
        return Event("fork", index, tuple(n.nr for n in pid.numbers))

    def step(self, step: Step) -> list[Event]:
        if step.ns in self.dead:
            return []
        handler: Any = getattr(self, "do_" + step.op)
        result: list[Event] = handler(step)
        return result

    def do_setmax(self, step: Step) -> list[Event]:
        try:
            self.pk.set_pid_max(self.spaces[step.ns], step.arg)
        except BpfnsError as e:
            return [Event("setmax", step.ns, error=e.errorcode)]
        return [Event("setmax", step.ns)]

    def do_spawn(self, step: Step) -> list[Event]:
        return [self.fork(step.ns) for _ in range(step.arg)]

    def do_reap(self, step: Step) -> list[Event]:
        leaves = self.live[step.ns][1:]  # never the init
        if not leaves:
            return []
        pid = leaves[step.arg % len(leaves)]
        self.live[step.ns].remove(pid)
        numbers = tuple(n.nr for n in pid.numbers)
        self.pk.free_pid(pid)
        return [Event("reap", step.ns, numbers)]

    def do_newns(self, step: Step) -> list[Event]:
        helper = self.fork(step.ns, helper=True)  # the helper that unshares
        if helper.error is not None:
            return [helper]
        self.spaces.append(self.pk.create_namespace(self.spaces[step.ns]))
        self.live.append([])
        init = self.fork(len(self.spaces) - 1)
        if init.error is not None:
            self.dead.add(len(self.spaces) - 1)
        return [helper, init]


def compare(kernel: list[Event], model: list[Event]) -> list[Mismatch]:
    """Every position where the two event lists differ (a length difference counts)."""
    out = [
        Mismatch(i, a, b) for i, (a, b) in enumerate(zip(kernel, model, strict=False)) if a != b
    ]
    missing = Event("missing", -1)
    for i in range(min(len(kernel), len(model)), max(len(kernel), len(model))):
        out.append(
            Mismatch(
                i,
                kernel[i] if i < len(kernel) else missing,
                model[i] if i < len(model) else missing,
            )
        )
    return out


# -- the live side --------------------------------------------------------------------------


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _unshare_newpid() -> None:  # pragma: no cover - runs in a child process
    if _libc().unshare(CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def parse_nspid(status: str) -> list[int]:
    r"""The numbers of the ``NSpid:`` line of a ``/proc/<pid>/status`` text, viewer's first.

    :meth:`bpfns.pidns.PidKernel.nspid` formats the same line (fs/proc/array.c ``task_state``).

    Raises:
        ValueError: if the text has no NSpid line.

    >>> parse_nspid("Name:\tsh\nNSpid:\t5000\t42\t1\n")
    [5000, 42, 1]
    """
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    raise ValueError("no NSpid line in this /proc/<pid>/status text")


def _nspid() -> list[int]:
    with open("/proc/self/status") as status:
        return parse_nspid(status.read())


def _send(fd: int, obj: object) -> None:
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _lines(fd: int) -> Iterator[Any]:
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


def _child(report: int, body: Any) -> None:  # pragma: no cover - runs in a child process
    """Run ``body`` in a forked child; never return into the caller's code."""
    try:
        body(report)
    finally:
        os._exit(0)


def _leaf(report: int) -> None:  # pragma: no cover - runs in a child process
    _send(report, {"nspid": _nspid()})
    os.close(report)
    while True:
        signal.pause()


@attrs.define
class _Link:
    """Command and response pipes to one namespace's init."""

    cmd: int
    resp: Iterator[Any]

    def call(self, msg: dict[str, Any]) -> Any:
        _send(self.cmd, msg)
        return next(self.resp)


def _fork_reporting(body: Any) -> tuple[int, Any] | str:  # pragma: no cover - in the inits
    """Fork a child running ``body(report_fd)``; return (pid, its first report) or an errno."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(r)
        os.close(w)
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        _child(w, body)
    os.close(w)
    reports = _lines(r)
    first = next(reports)
    return pid, (first, reports, r)


@attrs.define
class _Init:  # pragma: no cover - runs as pid 1 of a scenario namespace
    """The server loop of a namespace's init: spawn, reap, setmax, newns, forward."""

    index: int
    offset: int
    children: list[tuple[int, tuple[int, ...]]] = attrs.field(factory=list)
    routes: dict[int, _Link] = attrs.field(factory=dict)

    def serve(self, cmd: int, resp: int) -> None:
        for msg in _lines(cmd):
            _send(resp, self.handle(msg))

    def handle(self, msg: dict[str, Any]) -> Any:
        if msg["ns"] != self.index:
            link = self.routes[msg["ns"]]
            answer = link.call(msg)
            if msg["op"] == "newns":
                self.routes[msg["new"]] = link
            return answer
        return getattr(self, "op_" + msg["op"])(msg)

    def event(
        self, op: str, numbers: list[int] | tuple[int, ...] = (), error: str | None = None
    ) -> dict[str, Any]:
        return {"op": op, "ns": self.index, "numbers": list(numbers), "error": error}

    def op_setmax(self, msg: dict[str, Any]) -> list[Any]:
        try:
            with open("/proc/sys/kernel/pid_max", "w") as f:
                f.write(str(msg["arg"]))
        except OSError as e:
            return [self.event("setmax", error=errno.errorcode[e.errno or 0])]
        return [self.event("setmax")]

    def fork_leaf(self) -> dict[str, Any]:
        got = _fork_reporting(_leaf)
        if isinstance(got, str):
            return self.event("fork", error=got)
        pid, (first, _, r) = got
        os.close(r)
        numbers = tuple(first["nspid"][self.offset :])
        self.children.append((pid, numbers))
        return self.event("fork", numbers)

    def op_spawn(self, msg: dict[str, Any]) -> list[Any]:
        return [self.fork_leaf() for _ in range(msg["arg"])]

    def op_reap(self, msg: dict[str, Any]) -> list[Any]:
        if not self.children:
            return []
        pid, numbers = self.children.pop(msg["arg"] % len(self.children))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return [self.event("reap", numbers)]

    def op_newns(self, msg: dict[str, Any]) -> list[Any]:
        cmd_r, cmd_w = os.pipe()
        resp_r, resp_w = os.pipe()
        new, offset = msg["new"], self.offset

        def helper(report: int) -> None:
            _send(report, {"nspid": _nspid()})
            _unshare_newpid()
            got = _fork_reporting(lambda r2: _new_init(r2, new, offset, cmd_r, resp_w))
            if isinstance(got, str):
                _send(report, {"error": got})
            else:
                _send(report, got[1][0])
            while True:
                signal.pause()

        got = _fork_reporting(helper)
        os.close(cmd_r)
        os.close(resp_w)
        if isinstance(got, str):
            return [self.event("fork", error=got)]
        _, (first, reports, _) = got
        events = [self.event("fork", first["nspid"][self.offset :])]
        second = next(reports)
        if "error" in second:
            events.append({"op": "fork", "ns": new, "numbers": [], "error": second["error"]})
        else:
            events.append(
                {"op": "fork", "ns": new, "numbers": second["nspid"][offset:], "error": None}
            )
            self.routes[new] = _Link(cmd_w, _lines(resp_r))
        return events


def _new_init(
    report: int, index: int, offset: int, cmd: int, resp: int
) -> None:  # pragma: no cover
    _send(report, {"nspid": _nspid()})
    os.close(report)
    _Init(index, offset).serve(cmd, resp)


def run_pid_scenario(steps: list[Step]) -> list[Event]:
    """Run ``steps`` on the live kernel, inside a fresh pid namespace; the observed events.

    Raises:
        RuntimeError: if :func:`unavailable` gives a reason.
    """
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"the live pid driver cannot run here: {reason}")
    offset = len(_nspid())
    cmd_r, cmd_w = os.pipe()
    resp_r, resp_w = os.pipe()
    report_r, report_w = os.pipe()
    launcher = os.fork()
    if launcher == 0:  # pragma: no cover - child: unshare, then fork the root init
        try:
            _unshare_newpid()
            init = os.fork()
            if init == 0:
                _new_init(report_w, 0, offset, cmd_r, resp_w)
            os.waitpid(init, 0)
        finally:
            os._exit(0)
    for fd in (cmd_r, resp_w, report_w):
        os.close(fd)
    root = next(_lines(report_r), None)
    if root is None:  # the launcher could not build the root namespace
        os.waitpid(launcher, 0)
        for fd in (cmd_w, resp_r, report_r):
            os.close(fd)
        raise RuntimeError("could not create the scenario's pid namespace")
    root = root["nspid"]
    os.close(report_r)
    link = _Link(cmd_w, _lines(resp_r))
    events = [Event("fork", 0, tuple(root[offset:]))]
    spaces = 1
    try:
        for step in steps:
            msg = {"op": step.op, "ns": step.ns, "arg": step.arg}
            if step.op == "newns":
                msg["new"] = spaces
                spaces += 1
            for e in link.call(msg):
                events.append(Event(e["op"], e["ns"], tuple(e["numbers"]), e["error"]))
    finally:
        os.kill(root[offset - 1], signal.SIGKILL)  # pid 1 of the scenario: the whole tree
        os.waitpid(launcher, 0)
        os.close(cmd_w)
        os.close(resp_r)
    return events


# -- the pid rules: set_tid, and ENOMEM after the init's exit ------------------------------

#: ``clone3`` (the same number on x86_64 and aarch64) and ``sizeof(struct clone_args)``.
_NR_CLONE3 = 435
_CLONE_ARGS = struct.Struct("11Q")
#: What :func:`run_pid_rules` does, in order: (label, set_tid or None for a plain fork).
PID_RULES: tuple[tuple[str, tuple[int, ...] | None], ...] = (
    ("set_tid [5] before the init", (5,)),
    ("set_tid [1]: the init", (1,)),
    ("set_tid [5]", (5,)),
    ("set_tid [5] again", (5,)),
    ("set_tid [0]", (0,)),
    ("fork", None),
    ("fork after the init exited", None),
)


def simulate_pid_rules() -> list[Event]:
    """:data:`PID_RULES` on :class:`bpfns.pidns.PidKernel`: what the model predicts.

    The events name the innermost pid (the scenario namespace's), or the errno.

    >>> [e.error or e.numbers[0] for e in simulate_pid_rules()]
    ['EINVAL', 1, 5, 'EEXIST', 'EINVAL', 2, 'ENOMEM']
    """
    pk = PidKernel()
    ns = pk.create_namespace(pk.root)
    events: list[Event] = []
    pids: list[ObjId] = []
    for i, (label, set_tid) in enumerate(PID_RULES):
        if i == len(PID_RULES) - 1:  # the init exits: its namespace's processes go first
            for pid in reversed(pids):
                pk.free_pid(pid)
        try:
            pid = pk.alloc_pid(ns, set_tid or ())
        except BpfnsError as e:
            events.append(Event(label, 1, error=e.errorcode))
            continue
        pids.append(pid)
        events.append(Event(label, 1, (pid.numbers[-1].nr,)))
    return events


def _clone3(set_tid: tuple[int, ...] | None) -> int:  # pragma: no cover - in the children
    """``clone3`` with ``set_tid`` (a plain fork for None); the pid, or -errno."""
    if set_tid is None:
        try:
            return os.fork()
        except OSError as e:
            return -(e.errno or 0)
    tids = (ctypes.c_int * len(set_tid))(*set_tid)
    set_tid_ptr = ctypes.addressof(tids)
    raw = _CLONE_ARGS.pack(0, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, set_tid_ptr, len(tids), 0)
    args = ctypes.create_string_buffer(raw, len(raw))
    libc = _libc()
    ret: int = libc.syscall(_NR_CLONE3, args, ctypes.c_size_t(len(raw)))
    return -ctypes.get_errno() if ret < 0 else ret


def _rule(report: int, label: str, set_tid: tuple[int, ...] | None) -> int:  # pragma: no cover
    """Run one rule; a child pauses (to keep its pid) until the init kills it."""
    pid = _clone3(set_tid)
    if pid == 0:
        if os.getpid() == 1:
            return 0  # the init: the caller goes on as it
        while True:
            signal.pause()
    if pid < 0:
        _send(report, {"op": label, "error": errno.errorcode.get(-pid, str(-pid))})
    elif set_tid != (1,):
        _send(report, {"op": label, "pid": pid})
    return pid


def _pid_rules_launcher(report: int) -> None:  # pragma: no cover - in a child process
    _unshare_newpid()
    first, init_rule, *middle, last = PID_RULES
    _rule(report, *first)
    init = _rule(report, *init_rule)
    if init == 0:  # the init: its own pid is the event, then the rules inside
        _send(report, {"op": init_rule[0], "pid": os.getpid()})
        children = [pid for pid in (_rule(report, *r) for r in middle) if pid > 0]
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os._exit(0)
    if init > 0:
        os.waitpid(init, 0)  # zap_pid_ns_processes has run: PIDNS_ADDING is clear
    pid = _rule(report, *last)
    if pid > 0:
        os.waitpid(pid, 0)


def run_pid_rules() -> list[Event]:
    """:data:`PID_RULES` on the live kernel, in a fresh pid namespace; the observed events.

    A launcher unshares a pid namespace and asks clone3 for exact pids (``set_tid``)
    before and after the namespace has an init; the init asks for more and forks; once
    the init has exited, the launcher (whose ``pid_ns_for_children`` is still that
    namespace) forks once more, which the kernel refuses with ENOMEM
    (``zap_pid_ns_processes`` cleared PIDNS_ADDING).

    Raises:
        RuntimeError: if :func:`unavailable` gives a reason.
    """
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"the live pid driver cannot run here: {reason}")
    r, w = os.pipe()
    launcher = os.fork()
    if launcher == 0:  # pragma: no cover - child
        os.close(r)
        _child(w, _pid_rules_launcher)
    os.close(w)
    got = list(_lines(r))
    os.close(r)
    os.waitpid(launcher, 0)
    return [Event(e["op"], 1, () if "pid" not in e else (e["pid"],), e.get("error")) for e in got]


# -- the BPF driver ------------------------------------------------------------------------

_NR_BPF = {"x86_64": 321, "aarch64": 280}
_MAP_CREATE, _PROG_LOAD, _GET_INFO = 0, 5, 15
_NEXT_ID = {"map": 12, "prog": 11, "link": 31}
_RAW_TRACEPOINT_OPEN = 17
_PROG_SOCKET_FILTER, _PROG_RAW_TRACEPOINT = 1, 17
# r0 = 0; exit
_INSNS = bytes.fromhex("b700000000000000" + "9500000000000000")


class _Bpf:
    """The raw bpf() syscall through ctypes (no compiled dependency)."""

    def __init__(self) -> None:
        machine = platform.machine()
        if machine not in _NR_BPF:
            raise RuntimeError(f"no bpf() syscall number known for {machine}")
        self.nr = _NR_BPF[machine]
        self.libc = _libc()
        self.keep: list[Any] = []

    def call(self, cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
        ret = int(self.libc.syscall(self.nr, cmd, attr, len(attr)))
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
        return ret

    @staticmethod
    def attr(*fields: tuple[int, str, int]) -> ctypes.Array[ctypes.c_char]:
        buf = ctypes.create_string_buffer(256)
        for offset, fmt, value in fields:
            struct.pack_into(fmt, buf, offset, value)
        return buf

    def map_create(self) -> int:
        return self.call(
            _MAP_CREATE, self.attr((0, "I", 2), (4, "I", 4), (8, "I", 4), (12, "I", 1))
        )

    def prog_load(self, prog_type: int = _PROG_SOCKET_FILTER) -> int:
        insns = ctypes.create_string_buffer(_INSNS, len(_INSNS))
        license_ = ctypes.create_string_buffer(b"GPL")
        self.keep += [insns, license_]
        attr = self.attr(
            (0, "I", prog_type),
            (4, "I", 2),
            (8, "Q", ctypes.addressof(insns)),
            (16, "Q", ctypes.addressof(license_)),
        )
        return self.call(_PROG_LOAD, attr)

    def link_create(self, prog_fd: int) -> int:
        name = ctypes.create_string_buffer(b"sys_enter")
        self.keep.append(name)
        return self.call(
            _RAW_TRACEPOINT_OPEN, self.attr((0, "Q", ctypes.addressof(name)), (8, "I", prog_fd))
        )

    def info_id(self, fd: int) -> int:
        info = ctypes.create_string_buffer(256)
        self.call(
            _GET_INFO,
            self.attr((0, "I", fd), (4, "I", 64), (8, "Q", ctypes.addressof(info))),
        )
        return int(struct.unpack_from("I", info, 4)[0])

    def ids(self, kind: str) -> list[int]:
        out: list[int] = []
        cur = 0
        while True:
            attr = self.attr((0, "I", cur))
            try:
                self.call(_NEXT_ID[kind], attr)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    return out
                raise
            cur = int(struct.unpack_from("I", attr, 4)[0])
            out.append(cur)


@attrs.frozen
class BpfResult:
    """One BPF scenario: how many ids were predicted, and the mismatches."""

    kind: str
    events: int
    mismatches: tuple[tuple[int, int, int], ...]  # (index, kernel id, bpfns id)


def run_bpf_scenario(kind: str, seed: int, operations: int = 200) -> BpfResult:
    """Create and close ``kind`` objects (``map``, ``prog``, ``link``) on the live kernel.

    A probe object reveals the kernel's cursor; a bpfns :class:`~bpfns.Idr` starts with
    the kernel's live ids and that cursor, and must predict every later id. Another
    process creating objects of the same type at the same time shows up as mismatches.

    Raises:
        RuntimeError: if :func:`unavailable` gives a reason, or bpf() is refused.
    """
    from ._idr import Idr  # noqa: PLC0415

    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"the live bpf driver cannot run here: {reason}")
    bpf = _Bpf()
    rng = random.Random(seed)
    fds: list[tuple[int, int, list[int]]] = []  # (id, fd, fds to close with it)

    def create() -> tuple[int, list[int]]:
        if kind == "map":
            fd = bpf.map_create()
            return fd, [fd]
        if kind == "prog":
            fd = bpf.prog_load()
            return fd, [fd]
        prog = bpf.prog_load(_PROG_RAW_TRACEPOINT)
        link = bpf.link_create(prog)
        return link, [link, prog]

    try:
        probe_fd, probe_close = create()
        probe = bpf.info_id(probe_fd)
        fds.append((probe, probe_fd, probe_close))
        idr = Idr()
        for live_id in bpf.ids(kind):
            idr.alloc(live_id, live_id, live_id + 1)
        idr.cursor = probe + 1
        mismatches = []
        events = 0
        for index in range(operations):
            if fds and rng.random() < 0.45:
                gone, _, to_close = fds.pop(rng.randrange(len(fds)))
                for fd in to_close:
                    os.close(fd)
                idr.remove(gone)
                continue
            fd, to_close = create()
            got = bpf.info_id(fd)
            want = idr.alloc_cyclic(got, 1, INT_MAX)
            events += 1
            if got != want:
                mismatches.append((index, got, want))
                idr.remove(want)  # resync: the kernel's id is the truth from here on
                idr.remove(got)
                idr.alloc(got, got, got + 1)
                idr.cursor = got + 1
            fds.append((got, fd, to_close))
    finally:
        for _, _, to_close in fds:
            for fd in to_close:
                os.close(fd)
    return BpfResult(kind, events, tuple(mismatches))


@attrs.frozen
class Row:
    """One line of the ``bpfns conformance`` table."""

    scenario: str
    events: int
    mismatches: int


def run_table(seed: int, scenarios: int, rounds: int = 80) -> list[Row]:
    """Run ``scenarios`` seeded pid scenarios and one BPF scenario per object type.

    Raises:
        RuntimeError: if :func:`unavailable` gives a reason.
    """
    rows = []
    for i in range(scenarios):
        steps = generate_pid_scenario(seed + i, rounds)
        live = run_pid_scenario(steps)
        rows.append(
            Row(
                f"pid seed {seed + i}", len(live), len(compare(live, simulate_pid_scenario(steps)))
            )
        )
    live = run_pid_rules()
    rows.append(Row("pid set_tid, ENOMEM", len(live), len(compare(live, simulate_pid_rules()))))
    for kind in ("map", "prog", "link"):
        result = run_bpf_scenario(kind, seed)
        rows.append(Row(f"bpf {kind} ids", result.events, len(result.mismatches)))
    return rows
