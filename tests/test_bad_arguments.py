"""Every public callable, every class of bad argument: a clear error, and nothing changed.

For each public method and function of bpfns (the catalogue below; a test checks that
it lists every one), each parameter gets each class of bad value its kind admits: the
wrong type, None, a bool, a negative number, 2**31, 2**63, an object of another Kernel,
a dead namespace, an exited task, a freed user namespace or ObjId, a closed fd. The call
must then either raise TypeError, ValueError or BpfnsError, whose message names the
argument (TypeError, ValueError), leaving the world as it was except for what the kernel
itself leaves behind (the docs table "What a failed call leaves behind"); or, only for
a value that is valid for its C type, succeed. No call may raise anything else (KeyError,
AttributeError, AssertionError, IndexError, RecursionError, ...).

The rule the sweep enforces is the one of bpfns._args: an int argument takes an int
(an IntEnum too), never a bool; a str argument takes a str (a subclass too).
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import bpfns
import bpfns.pidns
from bpfns import (
    CLONE_NEWBPF,
    FIXED,
    BpfnsError,
    Cap,
    FaultSite,
    Ida,
    Idr,
    Kernel,
    KernelWarning,
    ObjType,
    Snapshot,
    TraceError,
    UcountType,
)
from helpers import assert_atomic

INT_MAX = 2**31 - 1


class Label(str):
    """A str subclass: every str parameter takes it as its plain value."""

    __slots__ = ()


class Four(enum.IntEnum):
    """An int subclass: valid wherever an int is."""

    FOUR = 4


# -- the world every case starts from ---------------------------------------------------


@attrs.define
class World:
    """A FIXED kernel with one of everything, live and dead, and another Kernel."""

    k: Kernel
    other: Kernel
    tmp: Path
    task: bpfns.Task
    dead_task: bpfns.Task
    ns: bpfns.Namespace
    dead_ns: bpfns.Namespace
    user_ns: bpfns.UserNamespace
    freed_user_ns: bpfns.UserNamespace
    oid: bpfns.ObjId
    freed_oid: bpfns.ObjId
    primer: bpfns.LinkPrimer
    map_fd: int
    prog_fd: int
    link_fd: int
    ns_fd: int
    closed_fd: int
    idr: Idr
    ida: Ida
    trace: bpfns.Trace
    trace_path: Path
    pk: bpfns.pidns.PidKernel
    pid: bpfns.ObjId
    perf_fd: int
    rawtp_prog_fd: int
    netdev: int

    def state(self) -> Snapshot:
        """What a refused call must leave unchanged."""
        return self.k.snapshot()


def make_world(tmp: Path) -> World:
    k = Kernel(FIXED)
    other = Kernel(FIXED)
    task = k.init_task.clone(CLONE_NEWBPF, name="t")
    dead = k.init_task.clone()
    dead.exit()
    ns = k.init_ns.create_child(name="held")
    dead_ns = k.init_ns.create_child()
    dead_ns.put()
    user_ns = k.init_user_ns.create_child(owner=1000)
    freed_user_ns = k.init_user_ns.create_child(owner=1001)
    freed_user_ns.put()
    oid = k.alloc_obj_id(ns, "raw", ObjType.MAP)
    freed_oid = k.alloc_obj_id(ns, "gone", ObjType.PROG)
    k.free_obj_id(freed_oid, ObjType.PROG)
    map_fd = task.map_create(name="m")
    prog_fd = task.prog_load(name="p", maps=(map_fd,))
    link_fd = task.link_create(prog_fd)
    ns_fd = task.open_proc_ns()
    perf_fd = task.perf_event_open("sys_enter")
    task.perf_event_set_bpf(perf_fd, prog_fd)
    rawtp_prog_fd = task.prog_load(bpfns.BPF_PROG_TYPE_RAW_TRACEPOINT)
    task.btf_load("b")
    netdev = k.register_netdev()
    closed_fd = task.map_create()
    task.close(closed_fd)
    task.obj_pin(map_fd, "/sys/fs/bpf/pinned")
    primer_task = k.init_task.clone()
    primer = primer_task.link_prime(primer_task.prog_load())
    idr = Idr()
    idr.alloc_cyclic("a", 1, 8)
    ida = Ida()
    ida.alloc()
    traced = Kernel(FIXED, trace=True)
    traced.init_ns.create_child(name="c")
    trace_path = tmp / "t.jsonl"
    traced.trace.to_jsonl(trace_path)
    pk = bpfns.pidns.PidKernel()
    pid = pk.alloc_pid(pk.root)
    return World(
        k, other, tmp, task, dead, ns, dead_ns, user_ns, freed_user_ns, oid, freed_oid,
        primer, map_fd, prog_fd, link_fd, ns_fd, closed_fd, idr, ida, traced.trace,
        trace_path, pk, pid, perf_fd, rawtp_prog_fd, netdev,
    )  # fmt: skip


# -- kinds of parameters, and their bad values -----------------------------------------

#: C integer kinds: the values a C caller can pass.
RANGES = {
    "int": (-(2**31), INT_MAX),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "ulong": (0, 2**64 - 1),
    "uid": (0, 2**32 - 2),
    "pid": (0, INT_MAX),
    "id>=0": (0, INT_MAX),
    "count": (1, 2**63 - 1),
    "steps": (0, 2**63 - 1),
    "long": (-(2**63), 2**63 - 1),
    "any int": (-(2**4000), 2**4000),
}


@attrs.frozen
class Bad:
    """One bad value for one parameter: what it is, and whether it is valid in C."""

    label: str
    value: Any
    may_succeed: bool = False


def int_values(kind: str, optional: bool = False) -> list[Bad]:
    lo, hi = RANGES[kind]
    wrong = [Bad("str", "7"), Bad("None", None, optional), Bad("bool", True)]
    wrong.append(Bad("float", 1.5))
    numbers = [Bad(f"{n}", n, lo <= n <= hi) for n in (-1, 2**31, 2**63)]
    return [*wrong, *numbers, Bad("IntEnum", Four.FOUR, lo <= 4 <= hi)]


def bad_values(kind: str, w: World) -> list[Bad]:
    """The bad values of a parameter of ``kind`` (the world supplies the objects)."""
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind in RANGES:
        return int_values(kind, optional)
    strs = [Bad("int", 5), Bad("None", None, optional), Bad("bool", True), Bad("bytes", b"x")]
    strs.append(Bad("str subclass", Label("x"), True))  # taken as its plain value
    foreign_oid = w.other.alloc_obj_id(w.other.init_ns, "x", ObjType.MAP)
    other_enum = FaultSite.INUM if kind != "site" else ObjType.MAP
    table: dict[str, list[Bad]] = {
        "fd": [*int_values("int"), Bad("closed fd", w.closed_fd)],
        "str": strs,
        "task": [
            Bad("str", "t"),
            Bad("None", None),
            Bad("foreign task", w.other.init_task),
            Bad("exited task", w.dead_task),
        ],
        "any task": [Bad("str", "t"), Bad("None", None), Bad("exited task", w.dead_task)],
        "argv": [
            Bad("str", "true"),
            Bad("None", None),
            Bad("empty", []),
            Bad("int item", ["true", 1]),
            Bad("bytes item", [b"true"]),
        ],
        "pass_fds": [
            Bad("str", "3"),
            Bad("None", None),
            Bad("not open", [77]),
            Bad("not an int", ["x"]),
            Bad("out of range", [2**40]),
            Bad("not a bpf fd", [w.ns_fd]),
        ],
        "ns": [
            Bad("str", "n"),
            Bad("None", None),
            Bad("dead ns", w.dead_ns),
            Bad("foreign ns", w.other.init_ns),
        ],
        "userns": [
            Bad("str", "u"),
            Bad("None", None, optional),
            Bad("int", 0),
            Bad("foreign userns", w.other.init_user_ns),
            Bad("freed", w.freed_user_ns),
        ],
        "oid": [
            Bad("str", "o"),
            Bad("None", None, optional),
            Bad("foreign oid", foreign_oid),
            Bad("freed oid", w.freed_oid),
        ],
        "enum": [
            Bad("str", "MAP"),
            Bad("None", None),
            Bad("bool", True),
            Bad("int", 7),
            Bad("other enum", other_enum),
        ],
        "sites": [Bad("str", "INUM"), Bad("ints", [1]), Bad("int", 5)],
        "probability": [
            Bad("str", "x"),
            Bad("None", None),
            Bad("bool", True),
            Bad("nan", math.nan),
            Bad("negative", -0.1),
            Bad("2", 2.0),
        ],
        "maps": [
            Bad("dict", {}),
            Bad("str", "ab"),
            Bad("floats", (1.5,)),
            Bad("None", None),
            Bad("set", {w.map_fd}),
            Bad("bools", (True,)),
        ],
        "bool": [Bad("int", 1), Bad("None", None), Bad("str", "yes")],
        "source": [
            Bad("int", 5),
            Bad("None", None),
            Bad("missing", w.tmp / "missing.jsonl"),
            Bad("a directory", w.tmp),
            Bad("/dev/zero", Path("/dev/zero")),
        ],
        "out": [
            Bad("int", 5),
            Bad("None", None),
            Bad("a directory", w.tmp),
            Bad("missing directory", w.tmp / "no" / "t.jsonl"),
        ],
        "idr": [Bad("str", "i"), Bad("None", None), Bad("Ida", w.ida)],
        "history": [Bad("dict", {1: "burned"}), Bad("str", "x"), Bad("None", None, optional)],
        "trace": [Bad("str", "t"), Bad("None", None), Bad("list", [])],
        "ns or ref": [Bad("int", 5), Bad("None", None), Bad("untraced ns", w.ns)],
        "snapshot": [Bad("str", "s"), Bad("None", None)],
    }
    for alias in ("label", "path", "name", "sysctl", "objname"):
        table[alias] = strs
    for alias in ("objtype", "cap", "site", "ucount"):
        table[alias] = table["enum"]
    table["any ns"] = [*table["ns"][:3], Bad("foreign ns", w.other.init_ns, True)]
    return table[kind]


# -- the catalogue ----------------------------------------------------------------------


@attrs.frozen
class Case:
    """A public callable: how to call it validly, and the kinds of its parameters."""

    name: str
    call: Callable[..., object]
    valid: Callable[[World], dict[str, Any]]
    kinds: dict[str, str]
    #: the name the docs table knows the call by (for what a failure may leave)
    op: str = ""
    state: Callable[[World], object] | None = None


def _task(w: World) -> bpfns.Task:
    return w.task


def _k(w: World) -> Kernel:
    return w.k


def cases() -> list[Case]:
    T = Case  # noqa: N806 - short, the table below is long
    idr_state: Callable[[World], object] = lambda w: (w.idr.ids(), w.idr.cursor)  # noqa: E731
    ida_state: Callable[[World], object] = lambda w: w.ida.ids()  # noqa: E731
    return [
        # Kernel
        T("Kernel.copy_bpfns", lambda w, **a: w.k.copy_bpfns(**a),
          lambda w: {"flags": CLONE_NEWBPF, "user_ns": w.k.init_user_ns, "old_ns": w.ns,
                     "euid": 0, "name": "x"},
          {"flags": "u64", "user_ns": "userns", "old_ns": "ns", "euid": "uid",
           "name": "label?"}),
        T("Kernel.alloc_obj_id", lambda w, **a: w.k.alloc_obj_id(**a),
          lambda w: {"ns": w.ns, "obj": "o", "type": ObjType.MAP},
          {"ns": "ns", "type": "objtype"}),
        T("Kernel.free_obj_id", lambda w, **a: w.k.free_obj_id(**a),
          lambda w: {"obj_id": w.oid, "type": ObjType.MAP},
          {"obj_id": "oid", "type": "objtype"}),
        T("Kernel.translate", lambda w, **a: w.k.translate(**a),
          lambda w: {"type": ObjType.MAP, "nr": 1, "from_ns": w.ns, "to_ns": w.k.init_ns},
          {"type": "objtype", "nr": "id>=0", "from_ns": "ns", "to_ns": "ns"}),
        T("Kernel.find_task", lambda w, **a: w.k.find_task(**a), lambda w: {"pid": 1},
          {"pid": "pid"}),
        T("Kernel.register_netdev", lambda w, **a: w.k.register_netdev(**a),
          lambda w: {"name": None}, {"name": "str?"}),
        T("Kernel.unregister_netdev", lambda w, **a: w.k.unregister_netdev(**a),
          lambda w: {"ifindex": w.netdev}, {"ifindex": "int"}),
        T("Task.find_vpid", lambda w, **a: w.task.find_vpid(**a), lambda w: {"pid": 1},
          {"pid": "pid"}),
        # Task: credentials and namespaces
        T("Task.capable", lambda w, **a: w.task.capable(**a), lambda w: {"cap": Cap.CAP_BPF},
          {"cap": "cap"}),
        T("Task.ns_capable", lambda w, **a: w.task.ns_capable(**a),
          lambda w: {"ns": w.user_ns, "cap": Cap.CAP_BPF}, {"ns": "userns", "cap": "cap"}),
        T("Task.drop_capabilities", lambda w, caps: w.task.drop_capabilities(caps),
          lambda w: {"caps": Cap.CAP_PERFMON}, {"caps": "cap"}),
        T("Task.set_euid", lambda w, **a: w.task.set_euid(**a), lambda w: {"euid": 0},
          {"euid": "uid"}),
        T("Task.clone", lambda w, **a: w.task.clone(**a),
          lambda w: {"flags": 0, "legacy": False, "name": None, "ns_name": None},
          {"flags": "u64", "legacy": "bool", "name": "label?", "ns_name": "label?"}, "clone"),
        T("Task.unshare", lambda w, **a: w.task.unshare(**a),
          lambda w: {"flags": 0, "ns_name": None}, {"flags": "u64", "ns_name": "label?"},
          "unshare"),
        T("Task.setns", lambda w, **a: w.task.setns(**a),
          lambda w: {"fd": w.ns_fd, "nstype": 0}, {"fd": "fd", "nstype": "int"}, "setns"),
        T("Task.proc_ns_link", lambda w, **a: w.task.proc_ns_link(**a),
          lambda w: {"kind": "bpf"}, {"kind": "str"}),
        T("Task.open_proc_ns", lambda w, **a: w.task.open_proc_ns(**a),
          lambda w: {"pid": None}, {"pid": "pid?"}),
        T("Task.ns_ioctl", lambda w, **a: w.task.ns_ioctl(**a),
          lambda w: {"fd": w.ns_fd, "request": bpfns.NS_GET_NSTYPE},
          {"fd": "fd", "request": "u32"}),
        T("Task.pidfd_open", lambda w, **a: w.task.pidfd_open(**a), lambda w: {"pid": 1},
          {"pid": "pid"}),
        T("Task.read_sysctl", lambda w, **a: w.task.read_sysctl(**a),
          lambda w: {"name": "user.max_bpf_namespaces"}, {"name": "sysctl"}),
        T("Task.write_sysctl", lambda w, **a: w.task.write_sysctl(**a),
          lambda w: {"name": "user.max_bpf_namespaces", "value": 9},
          {"name": "sysctl", "value": "long"}),
        # Task: bpf() commands
        T("Task.map_create", lambda w, **a: w.task.map_create(**a),
          lambda w: {"map_type": 2, "name": "m", "key_size": 4, "value_size": 4,
                     "max_entries": 1, "map_ifindex": 0},
          {"map_type": "u32", "name": "objname", "key_size": "u32", "value_size": "u32",
           "max_entries": "u32", "map_ifindex": "u32"}, "map_create"),
        T("Task.map_update_elem", lambda w, **a: w.task.map_update_elem(**a),
          lambda w: {"fd": w.map_fd, "key": 0, "value": 1, "flags": 0},
          {"fd": "fd", "key": "u32", "value": "u32", "flags": "u64"}),
        T("Task.map_lookup_elem", lambda w, **a: w.task.map_lookup_elem(**a),
          lambda w: {"fd": w.map_fd, "key": 0}, {"fd": "fd", "key": "u32"}),
        T("Task.map_delete_elem", lambda w, **a: w.task.map_delete_elem(**a),
          lambda w: {"fd": w.map_fd, "key": 0}, {"fd": "fd", "key": "u32"}),
        T("Task.btf_load", lambda w, **a: w.task.btf_load(**a), lambda w: {"name": "b"},
          {"name": "str"}, "btf_load"),
        T("Task.btf_get_next_id", lambda w, **a: w.task.btf_get_next_id(**a),
          lambda w: {"start_id": 0}, {"start_id": "u32"}),
        T("Task.btf_get_fd_by_id", lambda w, **a: w.task.btf_get_fd_by_id(**a),
          lambda w: {"id": 1}, {"id": "u32"}),
        T("Task.perf_event_open", lambda w, **a: w.task.perf_event_open(**a),
          lambda w: {"tracepoint": "tp"}, {"tracepoint": "str"}),
        T("Task.perf_event_set_bpf", lambda w, **a: w.task.perf_event_set_bpf(**a),
          lambda w: {"perf_fd": w.perf_fd, "prog_fd": w.prog_fd},
          {"perf_fd": "fd", "prog_fd": "fd"}),
        T("Task.raw_tracepoint_open", lambda w, **a: w.task.raw_tracepoint_open(**a),
          lambda w: {"tracepoint": "tp", "prog_fd": w.rawtp_prog_fd},
          {"tracepoint": "str", "prog_fd": "fd"}, "raw_tracepoint_open"),
        T("Task.task_fd_query", lambda w, **a: w.task.task_fd_query(**a),
          lambda w: {"pid": w.task.pid, "fd": w.perf_fd}, {"pid": "pid", "fd": "u32"}),
        T("Task.prog_load", lambda w, **a: w.task.prog_load(**a),
          lambda w: {"prog_type": 2, "name": "p", "maps": (w.map_fd,)},
          {"prog_type": "u32", "name": "objname", "maps": "maps"}, "prog_load"),
        T("Task.link_prime", lambda w, **a: w.task.link_prime(**a),
          lambda w: {"prog_fd": w.prog_fd, "link_type": 7},
          {"prog_fd": "fd", "link_type": "u32"}, "link_prime"),
        T("Task.link_create", lambda w, **a: w.task.link_create(**a),
          lambda w: {"prog_fd": w.prog_fd, "link_type": 7},
          {"prog_fd": "fd", "link_type": "u32"}, "link_create"),
        T("Task.close", lambda w, **a: w.task.close(**a), lambda w: {"fd": w.link_fd},
          {"fd": "fd"}),
        T("Task.dup2", lambda w, **a: w.task.dup2(**a),
          lambda w: {"oldfd": w.map_fd, "newfd": 60}, {"oldfd": "fd", "newfd": "int"}, "dup2"),
        T("run", lambda w, **a: bpfns.run(**a),
          lambda w: {"task": w.task, "argv": ["true"], "pass_fds": (w.map_fd,)},
          {"task": "any task", "argv": "argv", "pass_fds": "pass_fds"}),
        T("Task.send_fd", lambda w, **a: w.task.send_fd(**a),
          lambda w: {"fd": w.map_fd, "to": w.k.init_task}, {"fd": "fd", "to": "task"}),
        T("Task.obj_pin", lambda w, **a: w.task.obj_pin(**a),
          lambda w: {"fd": w.map_fd, "path": "/sys/fs/bpf/new"}, {"fd": "fd", "path": "path"}),
        T("Task.obj_get", lambda w, **a: w.task.obj_get(**a),
          lambda w: {"path": "/sys/fs/bpf/pinned"}, {"path": "path"}),
        T("Task.unlink", lambda w, **a: w.task.unlink(**a),
          lambda w: {"path": "/sys/fs/bpf/pinned"}, {"path": "path"}),
        *(
            T(f"Task.{kind}_get_next_id", lambda w, kind=kind, **a: getattr(
                w.task, f"{kind}_get_next_id")(**a), lambda w: {"start_id": 0},
              {"start_id": "u32"})
            for kind in ("map", "prog", "link")
        ),
        T("Task.map_get_fd_by_id", lambda w, **a: w.task.map_get_fd_by_id(**a),
          lambda w: {"id": 1, "open_flags": 0}, {"id": "u32", "open_flags": "u32"}),
        T("Task.prog_get_fd_by_id", lambda w, **a: w.task.prog_get_fd_by_id(**a),
          lambda w: {"id": 1}, {"id": "u32"}),
        T("Task.link_get_fd_by_id", lambda w, **a: w.task.link_get_fd_by_id(**a),
          lambda w: {"id": 1}, {"id": "u32"}),
        T("Task.obj_get_info_by_fd", lambda w, **a: w.task.obj_get_info_by_fd(**a),
          lambda w: {"fd": w.map_fd}, {"fd": "fd"}),
        T("Task.read_fdinfo", lambda w, **a: w.task.read_fdinfo(**a),
          lambda w: {"owner": w.task, "fd": w.map_fd}, {"owner": "task", "fd": "fd"}),
        # Namespace, UserNamespace, ObjId
        T("Namespace.create_child", lambda w, **a: w.ns.create_child(**a),
          lambda w: {"user_ns": None, "euid": 0, "name": None},
          {"user_ns": "userns?", "euid": "uid", "name": "label?"}, "create_child"),
        T("Namespace.is_ancestor_of", lambda w, **a: w.k.init_ns.is_ancestor_of(**a),
          lambda w: {"other": w.ns}, {"other": "ns"}),
        T("UserNamespace.contains", lambda w, **a: w.k.init_user_ns.contains(**a),
          lambda w: {"other": w.user_ns}, {"other": "userns"}),
        T("UserNamespace.get_max", lambda w, **a: w.user_ns.get_max(**a),
          lambda w: {"kind": UcountType.BPF_NAMESPACES}, {"kind": "ucount"}),
        T("UserNamespace.set_max", lambda w, **a: w.user_ns.set_max(**a),
          lambda w: {"kind": UcountType.BPF_NAMESPACES, "value": 3},
          {"kind": "ucount", "value": "long"}),
        T("UserNamespace.count", lambda w, **a: w.user_ns.count(**a),
          lambda w: {"kind": UcountType.BPF_NAMESPACES, "uid": 0},
          {"kind": "ucount", "uid": "uid"}),
        T("UserNamespace.create_child", lambda w, **a: w.user_ns.create_child(**a),
          lambda w: {"owner": 0}, {"owner": "uid"}),
        T("ObjId.nr_ns", lambda w, **a: w.oid.nr_ns(**a), lambda w: {"ns": w.ns},
          {"ns": "ns"}),
        # FaultInjector
        T("FaultInjector.fail_nth", lambda w, **a: w.k.faults.fail_nth(**a),
          lambda w: {"n": 3, "sites": None}, {"n": "count", "sites": "sites"}),
        T("FaultInjector.fail_randomly", lambda w, **a: w.k.faults.fail_randomly(**a),
          lambda w: {"probability": 0.0, "sites": None, "seed": 0},
          {"probability": "probability", "sites": "sites", "seed": "long"}),
        T("FaultInjector.should_fail", lambda w, **a: w.k.faults.should_fail(**a),
          lambda w: {"site": FaultSite.INUM}, {"site": "site"}),
        T("FaultInjector.inject", lambda w, **a: w.k.faults.inject(**a),
          lambda w: {"site": FaultSite.INUM}, {"site": "site"}),
        # IDR and IDA (lib/idr.c)
        T("Idr.alloc_u32", lambda w, **a: w.idr.alloc_u32("p", **a),
          lambda w: {"nextid": 0, "max": 9}, {"nextid": "u32", "max": "ulong"}, "",
          idr_state),
        T("Idr.alloc", lambda w, **a: w.idr.alloc("p", **a), lambda w: {"start": 0, "end": 9},
          {"start": "int", "end": "int"}, "", idr_state),
        T("Idr.alloc_cyclic", lambda w, **a: w.idr.alloc_cyclic("p", **a),
          lambda w: {"start": 1, "end": 9}, {"start": "int", "end": "int"}, "", idr_state),
        *(
            T(f"Idr.{op}", lambda w, op=op, **a: getattr(w.idr, op)(**a),
              lambda w: {"id": 1}, {"id": kind}, "", idr_state)
            for op, kind in (("find", "ulong"), ("get_next", "id>=0"), ("remove", "ulong"))
        ),
        T("Idr.replace", lambda w, **a: w.idr.replace("q", **a), lambda w: {"id": 1},
          {"id": "ulong"}, "", idr_state),
        T("Idr.cursor", lambda w, cursor: setattr(w.idr, "cursor", cursor),
          lambda w: {"cursor": 3}, {"cursor": "u32"}, "", idr_state),
        *(
            T(f"Ida.{op}", lambda w, op=op, **a: getattr(w.ida, op)(**a),
              lambda w, params=params: dict.fromkeys(params, 5),
              dict.fromkeys(params, "u32"), "", ida_state)
            for op, params in (
                ("alloc_range", ("min", "max")),
                ("alloc_min", ("min",)),
                ("alloc_max", ("max",)),
                ("free", ("id",)),
                ("find_first_range", ("min", "max")),
                ("exists", ("id",)),
            )
        ),
        T("Ida.simple_get", lambda w, **a: w.ida.simple_get(**a),
          lambda w: {"start": 5, "end": 9}, {"start": "u32", "end": "u32"}, "", ida_state),
        # traces, pictures, values
        T("load_trace", lambda w, **a: bpfns.load_trace(**a),
          lambda w: {"path": w.trace_path}, {"path": "source"}),
        T("replay", lambda w, **a: bpfns.replay(**a),
          lambda w: {"source": w.trace, "until": None}, {"source": "source", "until": "steps?"}),
        T("replay_steps", lambda w, **a: list(bpfns.replay_steps(**a)),
          lambda w: {"source": w.trace}, {"source": "source"}),
        T("Trace.to_jsonl", lambda w, **a: w.trace.to_jsonl(**a),
          lambda w: {"path": w.tmp / "out.jsonl"}, {"path": "out"}),
        T("tree_svg", lambda w, **a: bpfns.tree_svg(**a),
          lambda w: {"root": w.k.init_ns, "highlight": w.oid},
          {"root": "any ns", "highlight": "oid?"}),
        T("ruler_svg", lambda w, **a: bpfns.ruler_svg(**a),
          lambda w: {"idr": w.idr, "end": 8, "start": 1, "width": 640, "history": None},
          {"idr": "idr", "end": "id>=0", "start": "id>=0", "width": "id>=0",
           "history": "history?"}),
        T("id_history", lambda w, **a: bpfns.id_history(**a),
          lambda w: {"trace": w.trace, "ns": "ns1", "type": ObjType.MAP},
          {"trace": "trace", "ns": "ns or ref", "type": "objtype"}),
        T("view", lambda w, **a: bpfns.view(**a), lambda w: {"trace": w.trace, "limit": 300},
          {"trace": "source", "limit": "count"}),
        T("TraceView.save", lambda w, **a: bpfns.view(w.trace).save(**a),
          lambda w: {"path": w.tmp / "v.html"}, {"path": "out"}),
        T("c_int", lambda w, **a: bpfns.c_int(**a), lambda w: {"value": 5},
          {"value": "any int"}),
        T("Snapshot.changed", lambda w, **a: w.k.snapshot().changed(**a),
          lambda w: {"other": w.k.snapshot()}, {"other": "snapshot"}),
        T("Snapshot.unexpected", lambda w, **a: w.k.snapshot().unexpected(**a),
          lambda w: {"after": w.k.snapshot(), "call": "clone"},
          {"after": "snapshot", "call": "str"}),
        T("Cred.without", lambda w, caps: w.task.cred.without(caps),
          lambda w: {"caps": (Cap.CAP_BPF,)}, {"caps": "sites"}),
        # the pid flavour
        T("PidKernel.create_namespace", lambda w, **a: w.pk.create_namespace(**a),
          lambda w: {"parent": w.pk.root}, {"parent": "ns"}),
        T("PidKernel.set_pid_max", lambda w, **a: w.pk.set_pid_max(**a),
          lambda w: {"ns": w.pk.root, "value": 400}, {"ns": "ns", "value": "long"}),
        T("PidKernel.pid_max", lambda w, **a: w.pk.pid_max(**a), lambda w: {"ns": w.pk.root},
          {"ns": "ns"}),
        T("PidKernel.alloc_pid", lambda w, **a: w.pk.alloc_pid(**a),
          lambda w: {"ns": w.pk.root, "set_tid": ()}, {"ns": "ns", "set_tid": "maps"}),
        T("PidKernel.nspid", lambda w, **a: w.pk.nspid(**a),
          lambda w: {"pid": w.pid, "ns": w.pk.root}, {"pid": "oid", "ns": "ns"}),
        T("PidKernel.free_pid", lambda w, **a: w.pk.free_pid(**a), lambda w: {"pid": w.pid},
          {"pid": "oid"}),
        T("PidKernel.find_pid", lambda w, **a: w.pk.find_pid(**a),
          lambda w: {"ns": w.pk.root, "nr": 1}, {"ns": "ns", "nr": "ulong"}),
    ]  # fmt: skip


CASES = {case.name: case for case in cases()}

#: Public callables without arguments (each is called once on the world, below).
NO_ARGUMENTS = {
    "Kernel": ["synchronize_rcu", "rcu_read_lock", "rcu_read_unlock", "snapshot", "check",
               "leftovers", "teardown", "tasks", "namespaces", "bpf_objects", "link_primers",
               "user_namespaces", "slabinfo"],
    "Task": ["thread_group", "exit"],
    "Namespace": ["get", "put", "ancestors", "children", "tree", "label"],
    "UserNamespace": ["get", "put", "ancestors"],
    "ObjId": ["nr", "table"],
    "LinkPrimer": ["settle", "cleanup"],
    "FaultInjector": ["disarm"],
    "Idr": ["destroy", "ids", "is_empty"],
    "Ida": ["alloc", "find_first", "destroy", "ids", "is_empty"],
    "Trace": ["dumps", "text", "calls"],
    "Event": ["to_json"],
    "Report": ["describe"],
    "Snapshot": ["without_cursors"],
    "Behavior": ["defects"],
}  # fmt: skip


def _public_callables() -> Iterator[str]:
    """``Class.method`` and ``function`` for every public callable bpfns exports."""
    for name in bpfns.__all__:
        obj = getattr(bpfns, name)
        if inspect.isfunction(obj):
            yield name
        elif (
            inspect.isclass(obj)
            and obj.__module__.startswith("bpfns")
            and not issubclass(obj, BaseException | enum.Enum)
        ):
            for attr, value in vars(obj).items():
                if attr.startswith("_") or not (callable(value) or isinstance(value, property)):
                    continue
                if isinstance(value, property) and value.fset is None:
                    continue  # a read-only view: called by test_views_never_raise_internals
                yield f"{name}.{attr}"
    for attr in vars(bpfns.pidns.PidKernel):
        if not attr.startswith("_") and callable(getattr(bpfns.pidns.PidKernel, attr)):
            yield f"PidKernel.{attr}"


def test_the_catalogue_lists_every_public_callable() -> None:
    listed = set(CASES)
    listed |= {f"{cls}.{m}" for cls, methods in NO_ARGUMENTS.items() for m in methods}
    missing = sorted(set(_public_callables()) - listed)
    assert missing == [], f"add these to the catalogue of tests/test_bad_arguments.py: {missing}"


def _sweep() -> list[tuple[str, str, int]]:
    """Every (callable, parameter, bad value) triple, by index into bad_values."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = make_world(Path(tmp))
        return [
            (case.name, param, i)
            for case in CASES.values()
            for param, kind in case.kinds.items()
            for i in range(len(bad_values(kind, probe)))
        ]


SWEEP = _sweep()
_FORBIDDEN = (KeyError, AttributeError, AssertionError, IndexError, RecursionError)


@pytest.mark.parametrize(("name", "param", "index"), SWEEP)
def test_a_bad_argument_is_refused_cleanly(
    name: str, param: str, index: int, tmp_path: Path
) -> None:
    case = CASES[name]
    w = make_world(tmp_path)
    bad = bad_values(case.kinds[param], w)[index]
    args = {**case.valid(w), param: bad.value}
    state = case.state or World.state
    before = state(w)
    try:
        with warnings.catch_warnings():  # a WARN the kernel prints is not a failure
            warnings.simplefilter("ignore", KernelWarning)
            case.call(w, **args)
    except _FORBIDDEN as err:  # pragma: no cover - what this test exists to catch
        pytest.fail(f"{name}({param}={bad.label}) raised {err!r}, an internal exception")
    except (TypeError, ValueError, BpfnsError, OSError) as err:
        if isinstance(err, OSError) and not isinstance(err, BpfnsError):
            assert case.kinds[param] == "out", f"{name}({param}={bad.label}): {err!r}"
        elif isinstance(err, TraceError):  # a file that is not a trace: it names the file
            assert str(bad.value) in str(err), f"{name}({param}={bad.label}): {err!r}"
        elif not isinstance(err, BpfnsError):
            named = param in str(err) or ("fd" in param and "fd" in str(err))
            assert named, f"{name}({param}={bad.label}): {err!r} does not name {param!r}"
        if case.state is None:
            assert_atomic(w.k, before, case.op)  # type: ignore[arg-type]
        else:
            assert state(w) == before, f"{name}({param}={bad.label}) changed the state"
    else:
        assert bad.may_succeed, f"{name}({param}={bad.label}) accepted {bad.value!r}"
    if not w.k.tainted:
        w.k.check()


def test_the_sweep_is_large(tmp_path: Path) -> None:
    """The numbers the closing note of issue 12 reports."""
    assert len(CASES) >= 75
    assert len(SWEEP) >= 800
    w = make_world(tmp_path)
    labels = {b.label for kind in ("u32", "fd", "task", "ns", "userns", "oid") for b in
              bad_values(kind, w)}  # fmt: skip
    assert {"str", "None", "bool", "-1", str(2**31), str(2**63), "foreign task", "dead ns",
            "exited task", "closed fd", "freed oid", "freed"} <= labels  # fmt: skip


def test_views_never_raise_internals(tmp_path: Path) -> None:
    """Every argument-free public callable and read-only property, on a live world."""
    w = make_world(tmp_path)
    targets = {
        "Kernel": w.k, "Task": w.task, "Namespace": w.ns, "UserNamespace": w.user_ns,
        "ObjId": w.oid, "LinkPrimer": w.primer, "FaultInjector": w.k.faults, "Idr": w.idr,
        "Ida": w.ida, "Trace": w.trace, "Snapshot": w.k.snapshot(), "Behavior": FIXED,
        "Event": w.trace[0], "Report": bpfns.Report(None, bpfns.BugKind.SEMANTIC, "w", "f", 1),
    }  # fmt: skip
    for cls, methods in NO_ARGUMENTS.items():
        for method in methods:
            if (cls, method) in {("Kernel", "teardown"), ("Task", "exit")}:
                continue  # they end the world: run last
            if (cls, method) == ("LinkPrimer", "cleanup"):
                w.k.init_task.link_prime(w.k.init_task.prog_load()).cleanup()
                continue
            result = getattr(targets[cls], method)()
            if inspect.isgenerator(result):
                list(result)
    for name in bpfns.__all__:
        cls = getattr(bpfns, name)
        if name in targets:
            for attr, value in vars(cls).items():
                if isinstance(value, property) and not attr.startswith("_"):
                    with contextlib.suppress(TypeError, ValueError):  # e.g. Kernel.trace
                        getattr(targets[name], attr)
    w.task.exit()
    w.k.teardown()
    w.k.check()
