"""bpfns: hierarchical BPF namespaces, simulated.

A pure-Python model of the 2023 RFC "bpf: Introduce BPF namespace" (13 patches, never
merged): a tree of namespaces, one cyclic IDR per object type in each, an id per level
for every object, refcounted namespaces. :data:`RFC` reproduces the patch as posted,
defects included (a sanitizer reports its memory bugs the way KASAN would); :data:`FIXED`
is the corrected design.

>>> import bpfns
>>> k = bpfns.Kernel()
>>> child = k.init_ns.create_child()
>>> oid = k.alloc_obj_id(child, "map", bpfns.ObjType.MAP)
>>> oid.nr_ns(child), oid.nr()
(1, 1)
"""

from . import pidns
from ._args import INT_MAX, U32_MAX
from ._behavior import FIXED, RFC, Behavior
from ._bpf_namespace import (
    CLONE_NEWBPF,
    MAX_BPF_NS_LEVEL,
    PROC_BPF_INIT_INO,
    PROC_DYNAMIC_FIRST,
    Namespace,
    Nsproxy,
    NsState,
    ObjIdEntry,
    ObjType,
)
from ._bpf_object import (
    BPF_F_RDONLY,
    BPF_F_WRONLY,
    BPF_LINK_TYPE_PERF_EVENT,
    BPF_LINK_TYPE_RAW_TRACEPOINT,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_PROG_TYPE_KPROBE,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BpfLink,
    BpfMap,
    BpfObject,
    BpfProg,
    PerfEvent,
)
from ._bpf_uapi import AuditRecord, BtfInfo, LinkInfo, MapInfo, ProgInfo
from ._bpffs import BPFFS_ROOT
from ._btf import BpfBtf
from ._capability import Cap, Cred
from ._errors import (
    ENOTSUPP,
    BpfnsError,
    InvariantViolation,
    KernelBug,
    KernelWarning,
    NullPointerDereference,
    SlabOutOfBounds,
    UninitializedRead,
    UseAfterFree,
)
from ._fault import FaultInjector, FaultSite
from ._files import FileKind
from ._idr import Ida, Idr, c_int
from ._kernel import Kernel
from ._link import LinkPrimer
from ._map_in_map import BPF_ANY, BPF_EXIST, BPF_NOEXIST
from ._netdev import Netdev
from ._nsfs import (
    CLONE_FILES,
    CLONE_NEWUSER,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    NS_GET_NSTYPE,
    NS_GET_PARENT,
    NS_GET_USERNS,
)
from ._obj_id import ObjId
from ._perf import BPF_FD_TYPE_RAW_TRACEPOINT, BPF_FD_TYPE_TRACEPOINT, TaskFdQuery
from ._replay import load_trace, replay, replay_steps
from ._run import RunResult, run
from ._sanitizer import BugKind, Report
from ._snapshot import FAILED_CALL_LEAVES, LeftBehind, Leftover, Snapshot
from ._svg import IdHistory, id_history, ruler_svg, tree_svg
from ._task import Task
from ._trace import (
    Enter,
    Event,
    FaultInjected,
    IdAlloc,
    IdFree,
    KernelCreated,
    NsCreated,
    NsDestroyed,
    NsFreed,
    RcuCallback,
    ReplayMismatchError,
    Return,
    Rollback,
    SanitizerReport,
    TaskCreated,
    Trace,
    TraceError,
)
from ._ucount import Ucounts, UcountType, UserNamespace
from ._viewer import TraceView, view

__version__ = "0.1.0"

__all__ = [
    "BPFFS_ROOT",
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_FD_TYPE_RAW_TRACEPOINT",
    "BPF_FD_TYPE_TRACEPOINT",
    "BPF_F_RDONLY",
    "BPF_F_WRONLY",
    "BPF_LINK_TYPE_PERF_EVENT",
    "BPF_LINK_TYPE_RAW_TRACEPOINT",
    "BPF_MAP_TYPE_ARRAY",
    "BPF_MAP_TYPE_ARRAY_OF_MAPS",
    "BPF_MAP_TYPE_HASH",
    "BPF_MAP_TYPE_HASH_OF_MAPS",
    "BPF_NOEXIST",
    "BPF_PROG_TYPE_KPROBE",
    "BPF_PROG_TYPE_RAW_TRACEPOINT",
    "CLONE_FILES",
    "CLONE_NEWBPF",
    "CLONE_NEWUSER",
    "CLONE_SIGHAND",
    "CLONE_THREAD",
    "CLONE_VM",
    "ENOTSUPP",
    "FAILED_CALL_LEAVES",
    "FIXED",
    "INT_MAX",
    "MAX_BPF_NS_LEVEL",
    "NS_GET_NSTYPE",
    "NS_GET_PARENT",
    "NS_GET_USERNS",
    "PROC_BPF_INIT_INO",
    "PROC_DYNAMIC_FIRST",
    "RFC",
    "U32_MAX",
    "AuditRecord",
    "Behavior",
    "BpfBtf",
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProg",
    "BpfnsError",
    "BtfInfo",
    "BugKind",
    "Cap",
    "Cred",
    "Enter",
    "Event",
    "FaultInjected",
    "FaultInjector",
    "FaultSite",
    "FileKind",
    "IdAlloc",
    "IdFree",
    "IdHistory",
    "Ida",
    "Idr",
    "InvariantViolation",
    "Kernel",
    "KernelBug",
    "KernelCreated",
    "KernelWarning",
    "LeftBehind",
    "Leftover",
    "LinkInfo",
    "LinkPrimer",
    "MapInfo",
    "Namespace",
    "Netdev",
    "NsCreated",
    "NsDestroyed",
    "NsFreed",
    "NsState",
    "Nsproxy",
    "NullPointerDereference",
    "ObjId",
    "ObjIdEntry",
    "ObjType",
    "PerfEvent",
    "ProgInfo",
    "RcuCallback",
    "ReplayMismatchError",
    "Report",
    "Return",
    "Rollback",
    "RunResult",
    "SanitizerReport",
    "SlabOutOfBounds",
    "Snapshot",
    "Task",
    "TaskCreated",
    "TaskFdQuery",
    "Trace",
    "TraceError",
    "TraceView",
    "UcountType",
    "Ucounts",
    "UninitializedRead",
    "UseAfterFree",
    "UserNamespace",
    "c_int",
    "id_history",
    "load_trace",
    "pidns",
    "replay",
    "replay_steps",
    "ruler_svg",
    "run",
    "tree_svg",
    "view",
]
