"""The kernel context: the machine-wide state that every layer of one simulated kernel shares.

A real kernel's code reaches its machine through globals (``current``, the slab caches,
``init_user_ns``); bpfns has no module-level state, so every layer gets its machine as an
explicit, typed context instead. The context grows one class per layer, each adding the
state that its layer owns and defined in that layer's module::

    KernelContext        this module: behaviour, fault injector, tracer, sanitizer, RCU,
                         the operation counter, dmesg
      NsContext          bpfns._bpf_namespace: the namespaces, their slab caches, inums
        BpfContext       bpfns._bpf_object: the BPF objects, link primers, ``current``,
                         the audit log
          TaskContext    bpfns._task: the tasks and the pid IDR, bpffs, ``init_task``
            Kernel       bpfns._kernel: the public face

Code in a layer is typed against the context of its own layer, so that no module needs
``Kernel`` (or imports it for typing), and a layer cannot reach state that a higher one
owns. One :class:`bpfns.Kernel` is one context object: the id fast paths read it with
no indirection.

The attributes are the simulated kernel's internals, public to the package: read them
freely (``k.step``, ``k.sanitizer.reports``); assigning them is not supported, except
``behavior``, which a test may switch between calls.
"""

from __future__ import annotations

import attrs

from ._args import INT_MAX, check_int
from ._behavior import RFC, Behavior
from ._fault import FaultInjector
from ._rcu import Rcu
from ._sanitizer import OnBug, Sanitizer
from ._smp import Smp
from ._trace import Tracer
from ._ucount import DEFAULT_INIT_UCOUNT_MAX

__all__ = ["MAX_BPF_NS_LEVEL", "KernelContext"]

#: ``MAX_BPF_NS_LEVEL``: the deepest level a BPF namespace may have (32 in the RFC).
MAX_BPF_NS_LEVEL = 32


@attrs.define(eq=False, repr=False)
class KernelContext:
    """The lowest layer of the kernel context (see the module docstring).

    Attributes:
        behavior: the :class:`bpfns.Behavior` every defect switch is read from.
        id_end: ``idr_alloc_cyclic``'s ``end`` for object ids (exclusive).
        max_level: ``MAX_BPF_NS_LEVEL``.
        on_bug: what the sanitizer does with a memory bug (``"raise"``/``"record"``).
        ucount_max: the initial ``max_*_namespaces`` limits of ``init_user_ns``.
        faults: the :class:`bpfns.FaultInjector`.
        tracer: the tracer, or None when the kernel does not trace.
        sanitizer: the KASAN-style :class:`bpfns._sanitizer.Sanitizer`.
        rcu: the pending ``call_rcu`` callbacks.
        step: how many operations this kernel has run (reports carry it).
        dmesg: the kernel log, oldest line first.
        smp: the simulated CPUs, None for a sequential kernel (see :mod:`bpfns._smp`).
        word_size: 64, or 32 for a 32-bit kernel, whose ``unsigned long`` syscall
            arguments hold 32 bits (D14).
        bpf_preload: ``None`` (the default boot: no built-in BPF preload) or
            ``"builtin"`` (``CONFIG_BPF_PRELOAD_UMD=y``: the preload's initcall creates
            its iterator maps, programs and links at boot; D9).

    Raises:
        TypeError, ValueError: for a bad ``behavior``, ``id_end``, ``max_level``,
            ``ucount_max``, ``trace``, ``word_size`` or ``bpf_preload``.

    >>> ctx = KernelContext(id_end=4)
    >>> ctx.step, ctx.tracer, ctx.faults.armed
    (0, None, False)
    """

    behavior: Behavior = attrs.field(default=RFC)
    id_end: int = attrs.field(default=INT_MAX, kw_only=True)
    max_level: int = attrs.field(default=MAX_BPF_NS_LEVEL, kw_only=True)
    on_bug: OnBug = attrs.field(default="raise", kw_only=True)
    ucount_max: int = attrs.field(default=DEFAULT_INIT_UCOUNT_MAX, kw_only=True)
    _trace_on: bool = attrs.field(default=False, kw_only=True, alias="trace")
    word_size: int = attrs.field(default=64, kw_only=True)
    bpf_preload: str | None = attrs.field(default=None, kw_only=True)
    faults: FaultInjector = attrs.field(init=False, factory=FaultInjector)
    tracer: Tracer | None = attrs.field(init=False, default=None)
    sanitizer: Sanitizer = attrs.field(init=False)
    rcu: Rcu = attrs.field(init=False, factory=Rcu)
    step: int = attrs.field(init=False, default=0)
    dmesg: list[str] = attrs.field(init=False, factory=list)
    smp: Smp | None = attrs.field(init=False, default=None)
    _next_addr: int = attrs.field(init=False, default=0xFFFF888000000000)

    def __attrs_post_init__(self) -> None:
        """Check the configuration and build the machine-wide parts, tracer included.

        Each layer's ``__attrs_post_init__`` runs its parent layer's first, so that a
        layer finds the state of the layers below it ready.
        """
        if not isinstance(self.behavior, Behavior):
            raise TypeError(f"behavior must be a bpfns.Behavior, not {self.behavior!r}")
        self.id_end = check_int("id_end", self.id_end, 2, INT_MAX, "int")
        self.max_level = check_int("max_level", self.max_level, 0, MAX_BPF_NS_LEVEL, "int")
        self.ucount_max = check_int("ucount_max", self.ucount_max, 0, INT_MAX, "int")
        if not isinstance(self._trace_on, bool):
            raise TypeError(f"trace must be True or False, not {self._trace_on!r}")
        if self.word_size.__class__ is not int or self.word_size not in (32, 64):
            raise ValueError(f"word_size must be 64 or 32 (bits), not {self.word_size!r}")
        if self.bpf_preload not in (None, "builtin"):
            raise ValueError(
                f"bpf_preload must be None or 'builtin' (CONFIG_BPF_PRELOAD_UMD=y), "
                f"not {self.bpf_preload!r}"
            )
        tracer = self.tracer = Tracer() if self._trace_on else None
        self.sanitizer = Sanitizer(self.on_bug, tracer=tracer)
        self.faults.tracer = tracer
        self.rcu.tracer = tracer

    def smp_init(self, smp: Smp) -> None:
        """``smp_init``: bring up the simulated CPUs; from now on the code reports to ``smp``.

        Each layer that keeps a fast path which has no preemption points turns it off
        (the id walks of a namespace), so that an explored kernel runs the careful path
        the C code's locking follows.

        Raises:
            ValueError: if the kernel already has its CPUs.
        """
        if self.smp is not None:
            raise ValueError("smp_init: this kernel already has its simulated CPUs")
        self.smp = smp
        self.rcu.smp = smp

    def ulong(self, value: int) -> int:
        """``value`` as the kernel's ``unsigned long`` holds it: the low 32 bits on 32-bit."""
        return value if self.word_size == 64 else value & 0xFFFFFFFF

    def _alloc_addr(self) -> int:
        """A fresh simulated kernel address for a new slab object (what reports print)."""
        self._next_addr += 0x100
        return self._next_addr
