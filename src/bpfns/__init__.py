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

from ._behavior import FIXED, RFC, Behavior
from ._bpf_namespace import (
    CLONE_NEWBPF,
    MAX_BPF_NS_LEVEL,
    PROC_BPF_INIT_INO,
    PROC_DYNAMIC_FIRST,
    Namespace,
    NsState,
    ObjType,
)
from ._errors import (
    BpfnsError,
    InvariantViolation,
    KernelBug,
    KernelWarning,
    UninitializedRead,
    UseAfterFree,
)
from ._fault import FaultInjector, FaultSite
from ._idr import INT_MAX, U32_MAX, Ida, Idr, c_int
from ._kernel import Kernel, Snapshot
from ._obj_id import ObjId, ObjIdEntry
from ._sanitizer import BugKind, Report
from ._ucount import Ucounts, UcountType, UserNamespace

__version__ = "0.1.0"

__all__ = [
    "CLONE_NEWBPF",
    "FIXED",
    "INT_MAX",
    "MAX_BPF_NS_LEVEL",
    "PROC_BPF_INIT_INO",
    "PROC_DYNAMIC_FIRST",
    "RFC",
    "U32_MAX",
    "Behavior",
    "BpfnsError",
    "BugKind",
    "FaultInjector",
    "FaultSite",
    "Ida",
    "Idr",
    "InvariantViolation",
    "Kernel",
    "KernelBug",
    "KernelWarning",
    "Namespace",
    "NsState",
    "ObjId",
    "ObjIdEntry",
    "ObjType",
    "Report",
    "Snapshot",
    "UcountType",
    "Ucounts",
    "UninitializedRead",
    "UseAfterFree",
    "UserNamespace",
    "c_int",
]
