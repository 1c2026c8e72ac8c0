"""The sanitizer: KASAN/KMSAN-style reports for memory the posted C code must not touch.

The simulator knows, for every slab object and namespace, whether it is live, which
allocation last wrote it and whether its memory has been reused. Where the RFC's code
would read or write freed or never-initialised memory, the operation calls
:meth:`Sanitizer.report` *before* doing so. The report is appended to
:attr:`bpfns.Kernel.reports` (always, tracing or not). With ``on_bug="raise"`` (the
default) the matching :class:`bpfns.KernelBug` subclass is raised at once, like a kernel
running with ``panic_on_warn``; with ``on_bug="record"`` the operation goes on with the
consequence the C code would have (for example removing another object's id).

Semantic reports (D6: a wrong number returned, no memory touched) are recorded, never
raised.
"""

from __future__ import annotations

import enum
from typing import Literal

import attrs

from ._errors import (
    KernelBug,
    NullPointerDereference,
    SlabOutOfBounds,
    UninitializedRead,
    UseAfterFree,
)
from ._trace import SanitizerReport, Tracer

__all__ = ["BugKind", "OnBug", "Report", "Sanitizer", "bug_of"]

OnBug = Literal["raise", "record"]


class BugKind(enum.Enum):
    """What kind of fault a :class:`Report` describes (the sanitizer's headline)."""

    def __repr__(self) -> str:
        return f"BugKind.{self.name}"

    USE_AFTER_FREE = "slab-use-after-free"
    UNINIT_VALUE = "uninit-value"
    NULL_DEREF = "null-ptr-deref"
    OUT_OF_BOUNDS = "slab-out-of-bounds"
    SEMANTIC = "semantic"


_RAISES: dict[BugKind, type[KernelBug]] = {
    BugKind.USE_AFTER_FREE: UseAfterFree,
    BugKind.UNINIT_VALUE: UninitializedRead,
    BugKind.NULL_DEREF: NullPointerDereference,
    BugKind.OUT_OF_BOUNDS: SlabOutOfBounds,
}


def bug_of(report: Report) -> KernelBug:
    """The :class:`bpfns.KernelBug` a memory-bug ``report`` raises (not a semantic one)."""
    return _RAISES[report.kind](report)


@attrs.frozen
class Report:
    """One sanitizer finding.

    Attributes:
        defect: the defect it belongs to (``"D1"``, ``"D2"``, ``"D6"``), or
            None for misuse of the simulator itself (reading a freed ObjId handle).
        kind: the :class:`BugKind`.
        what: what was accessed and why it is wrong.
        where: the kernel function doing the access, e.g. ``"bpf_free_obj_id"``.
        step: the kernel's operation counter when it happened (:attr:`Kernel.step`).
    """

    defect: str | None
    kind: BugKind
    what: str
    where: str
    step: int

    def describe(self) -> str:
        """A one-line, KASAN-like headline.

        >>> Report("D2", BugKind.USE_AFTER_FREE, "idr_remove on freed ns", "f", 3).describe()
        'BUG: KASAN: slab-use-after-free in f (D2, step 3): idr_remove on freed ns'
        """
        tool = "KMSAN" if self.kind is BugKind.UNINIT_VALUE else "KASAN"
        if self.kind is BugKind.SEMANTIC:
            tool = "bpfns"
        defect = f"{self.defect}, " if self.defect else ""
        return (
            f"BUG: {tool}: {self.kind.value} in {self.where} ({defect}step {self.step}): "
            f"{self.what}"
        )


@attrs.define
class Sanitizer:
    """Collects :class:`Report` records and raises for memory bugs when asked to."""

    on_bug: OnBug = "raise"
    reports: list[Report] = attrs.field(factory=list)
    tracer: Tracer | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.on_bug not in ("raise", "record"):
            raise ValueError(f"on_bug must be 'raise' or 'record', not {self.on_bug!r}")

    @property
    def tainted(self) -> bool:
        """Whether any memory bug (not a semantic one) has been reported."""
        return any(r.kind is not BugKind.SEMANTIC for r in self.reports)

    def report(self, defect: str | None, kind: BugKind, what: str, where: str, step: int) -> None:
        """Record a finding; raise its :class:`KernelBug` for a memory bug if asked to."""
        rep = Report(defect, kind, what, where, step)
        self.reports.append(rep)
        if self.tracer is not None:
            self.tracer.emit(SanitizerReport(self.tracer.step, defect, kind.value, what, where))
        if kind is not BugKind.SEMANTIC and self.on_bug == "raise":
            raise bug_of(rep)
