"""The layered design: kernel contexts, the object-type registry, structure checks, reprs."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

import bpfns
from bpfns import FIXED, FaultInjector, FaultSite, FileKind, InvariantViolation, Kernel, ObjType
from bpfns._bpf_namespace import NsContext
from bpfns._bpf_object import (
    BPF_FILE_KINDS,
    OBJECT_TYPES,
    BpfContext,
    BpfMap,
    BpfObject,
    register,
)
from bpfns._context import KernelContext
from bpfns._files import FdTable, File
from bpfns._obj_id import record_of
from bpfns._task import TaskContext

SRC = Path(bpfns.__file__).parent
#: The modules above the Task layer, which may use Kernel and Task.
ABOVE = {"__init__.py", "_kernel.py", "_cli.py", "_fuzz.py", "_replay.py", "pidns.py"}
ABOVE |= {"conformance.py", "__main__.py", "_supervisor.py", "_run.py"}  # drive Tasks


def test_a_kernel_is_its_context_layer_by_layer() -> None:
    k = Kernel()
    for layer in (KernelContext, NsContext, BpfContext, TaskContext):
        assert isinstance(k, layer)
    # each layer's state is there once the kernel is built
    assert k.init_ns.kernel is k and k.init_task.kernel is k and k.step == 0
    assert [ns.level for ns in k.namespaces()] == [0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"behavior": "rfc"}, TypeError, "behavior must be a bpfns.Behavior"),
        ({"id_end": 1}, ValueError, "id_end"),
        ({"trace": "yes"}, TypeError, "trace must be True or False"),
        ({"max_level": 33}, ValueError, "max_level"),
    ],
)
def test_the_lowest_context_checks_its_configuration(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        KernelContext(**kwargs)  # type: ignore[arg-type]


def test_lower_layers_never_import_kernel_or_task() -> None:
    """No module below the task layer imports Kernel or Task, not even for typing."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name in ABOVE or "testing" in path.parts or "concurrency" in path.parts:
            continue  # bpfns.testing and bpfns.concurrency sit above the Kernel
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("_kernel", "_task"):
                names = {a.name for a in node.names}
                if names & {"Kernel", "Task"}:
                    offenders.append(f"{path.name}: {sorted(names)}")
    assert offenders == []


def _defined_here(tree: ast.AST) -> set[str]:
    """The private names a module defines (functions, classes, attributes it assigns)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def test_no_module_reads_another_modules_private_state_of_the_kernel() -> None:
    """``k._something`` of another module's context appears nowhere: that state is public."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        mine = _defined_here(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in mine
                and isinstance(node.value, ast.Name | ast.Attribute)
                and ast.unparse(node.value) in ("k", "kernel", "self.kernel", "task.kernel")
                and node.attr != "_tracer"
            ):
                offenders.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def test_the_registry_is_where_object_types_are_known() -> None:
    assert set(OBJECT_TYPES) == set(ObjType)
    namespaced = [OBJECT_TYPES[t].FILE_KIND for t in ObjType]
    assert [*namespaced, FileKind.BTF] == BPF_FILE_KINDS  # BTF: registered, no ObjType
    k = Kernel()
    child = k.init_ns.create_child()
    assert len(child.idr) == len(ObjType)  # one IDR per registered id space
    t = k.init_task
    fds = [t.map_create(), t.prog_load()]
    fds.append(t.link_create(fds[1]))
    fds.append(t.btf_load())
    kinds = [t._fdget(fd).kind for fd in fds]
    assert kinds == BPF_FILE_KINDS  # each new fd is its type's registered kind


def test_registering_a_taken_type_is_refused() -> None:
    @attrs.define(eq=False, repr=False)
    class Another(BpfObject):
        TYPE: ClassVar[ObjType] = ObjType.MAP
        FILE_KIND: ClassVar[FileKind] = FileKind.PIDFD

    with pytest.raises(
        ValueError, match=r"Another: ObjType\.MAP or FileKind\.PIDFD is registered"
    ):
        register(Another)
    assert OBJECT_TYPES[ObjType.MAP] is BpfMap and FileKind.PIDFD not in BPF_FILE_KINDS


def test_reprs_are_python_where_the_state_allows() -> None:
    faults = FaultInjector()
    assert repr(faults) == "FaultInjector()" and isinstance(eval(repr(faults)), FaultInjector)
    faults.fail_nth(3, sites=[FaultSite.INUM])
    assert repr(faults) == "<FaultInjector fail_nth(3) sites=['INUM'] injected=[]>"
    faults.fail_randomly(0.5, seed=1)
    assert repr(faults).startswith("<FaultInjector fail_randomly(0.5)")
    faults.disarm()
    faults.fail_nth(1)
    assert faults.should_fail(FaultSite.OBJ_ID)
    assert repr(faults) == "<FaultInjector disarmed injected=[FaultSite.OBJ_ID]>"
    table = FdTable()
    assert repr(table) == "FdTable()" and isinstance(eval(repr(table)), FdTable)
    assert repr(FdTable(nofile=8)) == "FdTable(nofile=8)"
    table.install(File(FileKind.PIDFD, None))
    table.reserve()
    assert repr(table) == "<FdTable {0: pidfd} reserved=[1] count=1>"


def test_bpffs_shows_its_pins() -> None:
    k = Kernel()
    t = k.init_task
    t.obj_pin(t.map_create(), "/sys/fs/bpf/m")
    assert repr(k.bpffs) == "<Bpffs ['/sys/fs/bpf/m']>"


def _corrupt_bpffs(k: Kernel) -> None:
    k.bpffs._pins["/tmp/x"] = BpfMap(k, "m")


def _corrupt_rcu(k: Kernel) -> None:
    k.rcu.call_rcu(None, "not callable", owner=k.init_ns)  # type: ignore[arg-type]


def _corrupt_record(k: Kernel) -> None:
    oid = k.alloc_obj_id(k.init_ns.create_child(), "x", ObjType.MAP)
    record_of(oid).nrs[0] = 0  # an id that cannot be


@pytest.mark.bpfns_corrupts
@pytest.mark.parametrize("corrupt", [_corrupt_bpffs, _corrupt_rcu, _corrupt_record])
def test_each_structure_checks_itself(corrupt: object) -> None:
    k = Kernel(FIXED)
    k.check()
    corrupt(k)  # type: ignore[operator]
    with pytest.raises(InvariantViolation, match="data structures"):
        k.check()
