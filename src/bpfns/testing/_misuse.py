"""Calls no C caller could make, for :meth:`bpfns.testing.BpfnsMachine.misuse`.

Each one passes a task of the machine's Kernel something wrong: an object of another
Kernel, a value of the wrong type, a number outside its C type, an fd that is not open.
bpfns must refuse each with TypeError, ValueError or a BpfnsError (EBADF) and change
nothing; a traced kernel records the refused call, and its trace must still replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._bpf_namespace import CLONE_NEWBPF, ObjType
from .._capability import Cap
from .._kernel import Kernel
from .._task import Task

__all__ = ["MISUSES", "run_misuse"]

_Misuse = Callable[[Task, Kernel], object]


def _kernel(t: Task) -> Kernel:
    """The Kernel ``t`` belongs to (a task's context is its Kernel)."""
    k = t.kernel
    assert isinstance(k, Kernel)
    return k


def _bad(value: object) -> Any:
    """``value``, passed where its type is wrong on purpose."""
    return value


#: The refused calls: what each passes, and how.
MISUSES: tuple[tuple[str, _Misuse], ...] = (
    ("send_fd to a task of another Kernel", lambda t, o: t.send_fd(0, o.init_task)),
    ("read_fdinfo of another Kernel's task", lambda t, o: t.read_fdinfo(o.init_task, 0)),
    ("close of an fd beyond a C int", lambda t, o: t.close(2**31)),
    ("close of an fd that is not open", lambda t, o: t.close(999)),
    ("prog_load(maps={})", lambda t, o: t.prog_load(maps=_bad({}))),
    ("map_create(key_size=True)", lambda t, o: t.map_create(key_size=True)),
    ("clone(1.5)", lambda t, o: t.clone(_bad(1.5))),
    ("ns_capable in another Kernel", lambda t, o: t.ns_capable(o.init_user_ns, Cap.CAP_BPF)),
    (
        "copy_bpfns with another Kernel's user namespace",
        lambda t, o: _kernel(t).copy_bpfns(CLONE_NEWBPF, o.init_user_ns, t.bpf_ns),
    ),
    ('setns(0, "x")', lambda t, o: t.setns(0, _bad("x"))),
    (
        "translate into another Kernel's namespace",
        lambda t, o: _kernel(t).translate(ObjType.MAP, 1, t.bpf_ns, o.init_ns),
    ),
    ("clone(ns_name=7)", lambda t, o: t.clone(CLONE_NEWBPF, ns_name=_bad(7))),
)


def run_misuse(which: int, task: Task, other: Kernel) -> BaseException | None:
    """Make misuse number ``which`` as ``task``; the exception it raised, or None."""
    error: BaseException | None = None
    try:
        MISUSES[which][1](task, other)
    except Exception as err:  # what is raised is for the machine to judge
        error = err
    return error
