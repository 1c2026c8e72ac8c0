"""kernel/bpf/preload/bpf_preload_kern.c: the built-in BPF preload and its initcall order.

With ``CONFIG_BPF_PRELOAD_UMD=y`` (``Kernel(bpf_preload="builtin")``) the preload's
``late_initcall(load)`` loads the ``iterators`` skeleton at boot, as pid 1 running the
initcalls: one map (its ``.rodata``), two iterator programs (``dump_bpf_map``,
``dump_bpf_prog``) and their two iterator links, which the preload keeps
(``bpf_link_get_from_fd``) and bpffs shows as ``maps.debug`` and ``progs.debug``; every
fd is closed afterwards. The objects take the first ids of the initial namespace.

The RFC sets up ``init_bpf_ns``'s record cache, IDRs and locks in
``late_initcall(bpf_namespaces_init)``, and kernel/bpf/Makefile links ``preload/``
first, so the preload's first map reaches ``kmem_cache_alloc(NULL, ...)`` (D9,
the defects page of the docs): a NULL dereference in pid 1, which panics the boot. Fixed, the
namespace is initialised before any initcall can create an object.
"""

from __future__ import annotations

from ._bpf_object import BpfLink, bpf_obj_get
from ._errors import KernelBug
from ._sanitizer import BugKind
from ._task import TaskContext

__all__ = ["BPF_LINK_TYPE_ITER", "BPF_PROG_TYPE_TRACING", "PRELOAD_PINS", "bpf_preload_load"]

BPF_PROG_TYPE_TRACING = 26
BPF_LINK_TYPE_ITER = 4
#: What bpffs shows of the preload (``populate_bpffs``), in order.
PRELOAD_PINS = ("/sys/fs/bpf/maps.debug", "/sys/fs/bpf/progs.debug")


def bpf_preload_load(k: TaskContext) -> None:
    """The preload's ``late_initcall(load)``: load the iterators, keep their links.

    As posted (D9), the first ``bpf_alloc_obj_id`` dereferences ``init_bpf_ns``'s NULL
    ``obj_id_cachep``: the sanitizer reports it and, by default, raises
    :class:`bpfns.NullPointerDereference` from the Kernel constructor (the boot
    panics). With ``on_bug="record"`` bpfns notes the panic in dmesg and boots on
    without the preload.
    """
    if k.behavior.d9_late_initcall:
        try:
            k.sanitizer.report(
                "D9",
                BugKind.NULL_DEREF,
                "kmem_cache_alloc(NULL, GFP_KERNEL) in bpf_alloc_obj_id: the BPF preload's "
                "late_initcall runs before bpf_namespaces_init (linked after preload/) has "
                "set up init_bpf_ns.obj_id_cachep (boot with FIXED, d9_late_initcall=False or "
                "on_bug='record')",
                "bpf_alloc_obj_id",
                k.step,
            )
        except KernelBug:
            k.dmesg.append("Kernel panic - not syncing: Attempted to kill init!")
            raise
        k.dmesg.append("bpf_preload: the oops in pid 1 would panic the boot; booting without it")
        return
    task = k.init_task
    tracer = k.tracer
    if tracer is not None:  # kernel work at boot: not a call of the trace
        tracer.depth += 1
    try:
        rodata = task.map_create(name="iterators.rodat", value_size=64)
        progs = [
            task.prog_load(BPF_PROG_TYPE_TRACING, name, (rodata,))
            for name in ("dump_bpf_map", "dump_bpf_prog")
        ]
        links = [task.link_create(fd, BPF_LINK_TYPE_ITER) for fd in progs]
        for fd, path in zip(links, PRELOAD_PINS, strict=True):
            assert task.files is not None
            link: BpfLink = task.files.get(fd).obj
            bpf_obj_get(link, "preload")  # bpf_link_get_from_fd: the preload keeps it
            k.preloaded.append(link)
            k.bpffs.pin(link, path)  # populate_bpffs
        for fd in (rodata, *progs, *links):
            task.close(fd)
    finally:
        if tracer is not None:
            tracer.depth -= 1
