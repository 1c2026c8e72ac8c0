"""Behaviour switches: the RFC as posted, the corrected design, and every mix in between.

Each switch names one defect by its D-number (the docs page "Defects D1-D20").
``True`` reproduces the posted patch; ``False`` is the fix the review (or the kernel's
own pid code) points to. :data:`RFC` has every switch on, :data:`FIXED` every switch
off; flip one with :func:`attrs.evolve`:

>>> import attrs
>>> only_d6_fixed = attrs.evolve(RFC, d6_nr_ns_unchecked=False)
>>> print(*only_d6_fixed.defects())
D1 D2 D3 D5 D7 D8 D9 D10 D11 D12 D13 D14 D19 D20
"""

from __future__ import annotations

import attrs

__all__ = ["FIXED", "RFC", "Behavior"]


@attrs.frozen
class Behavior:
    """Which defects of the posted RFC a :class:`bpfns.Kernel` reproduces.

    Attributes:
        d1_rollback_at_failed_level: D1 (semantics §2.3, step 4). When
            ``bpf_alloc_obj_id`` fails at level ``i``, the posted rollback loop
            ``for (; i <= ns->level; i++)`` starts at the failed index and so reads the
            never-written, non-zeroed ``numbers[i]``. Fixed: start at ``i + 1``, as
            ``alloc_pid`` does with ``while (++i <= ns->level)``.
        d2_obj_id_unpinned: D2. An id record does not hold a reference on its namespace,
            so an object that outlives the namespace later removes its ids from, and
            frees its record through, freed memory. Fixed: the record pins its deepest
            namespace (``get_bpfns`` at alloc, ``put_bpfns`` at free), as ``struct pid``
            pins ``numbers[level].ns``.
        d3_create_returns_zero: D3. When ``bpf_alloc_obj_id`` fails, ``map_create`` and
            ``bpf_prog_load`` jump to their cleanup without setting ``err``: the object
            is freed and the syscall returns 0. Fixed: the error is returned.
        d5_offload_obj_id_dangling: D5. When the netdev of an offloaded map goes away,
            ``__bpf_map_offload_destroy`` frees the id record and zeroes ``map->id`` but
            leaves ``map->obj_id`` pointing at the freed record, which a later
            ``BPF_OBJ_GET_INFO_BY_FD`` or fdinfo read dereferences (use-after-free).
            Fixed: ``map->obj_id`` is cleared too, and the id reads 0.
        d6_nr_ns_unchecked: D6 (semantics §2.4). ``bpf_obj_id_nr_ns`` returns
            ``numbers[ns->level].nr`` without checking ``numbers[ns->level].ns == ns``,
            so a sibling namespace sees another branch's number. Fixed: return 0 unless
            the namespace matches, as ``pid_nr_ns`` does.
        d7_publication_not_atomic: D7. ``bpf_alloc_obj_id`` publishes the object at
            each level under its own lock acquisition, deepest first, so a concurrent
            ``GET_FD_BY_ID`` in a deeper namespace can take a reference to an object
            whose allocation then fails at a higher level, and which its creator then
            frees directly (a use-after-free); the object is also findable while its
            ``id`` and ``obj_id`` are still 0. Fixed: ``alloc_pid``'s scheme, a NULL
            placeholder at every level and ``idr_replace`` once every level succeeded
            and the object's id fields are written. Only observable on simulated CPUs
            (:func:`bpfns.concurrency.explore`).
        d8_vnr_without_nsproxy: D8. ``bpf_obj_id_vnr`` dereferences
            ``current->nsproxy``, which an exiting task has already dropped when its
            last program reference goes (audit UNLOAD). Fixed: no crash; the id is the
            global one, as audit reported before the RFC.
        d9_late_initcall: D9. ``init_bpf_ns``'s record cache and IDRs are set up by a
            ``late_initcall`` linked after the BPF preload's; with the preload built in
            (``Kernel(bpf_preload="builtin")``) its maps reach
            ``kmem_cache_alloc(NULL, ...)``. Fixed: the namespace is set up first.
        d10_missing_owner_op: D10. ``bpfns_operations`` has no ``owner`` op, so
            ``ioctl(NS_GET_USERNS)`` calls a NULL function pointer. Fixed: it returns
            the owner user namespace.
        d11_nsproxy_under_rcu: D11. ``bpfns_get`` (opening ``/proc/<pid>/ns/bpf``)
            reads ``task->nsproxy`` under ``rcu_read_lock``, but ``free_nsproxy`` does
            not wait for a grace period: a concurrent exit or unshare of the task frees
            the nsproxy under the reader. Fixed: under ``task_lock``, as the other
            nsproxy-based namespaces do. Only observable on simulated CPUs.
        d12_btf_next_id_relaxed: D12. Patch 11 relaxes ``bpf_obj_get_next_id``, which
            also serves ``BPF_BTF_GET_NEXT_ID`` on the global ``btf_idr``: a CAP_BPF
            task in a child namespace enumerates every BTF id on the host. Fixed: BTF
            enumeration keeps the gate it had before the series, CAP_SYS_ADMIN.
        d13_task_fd_query_unfiltered: D13. ``BPF_TASK_FD_QUERY`` is relaxed by
            ``bpfns_capable`` but does not filter by BPF namespace, and its perf-event
            branch reports the global program id. Fixed: a task outside the caller's
            namespace subtree is not found (ENOENT) and both branches report ``vnr``.
        d14_clone_flag_above_bit_31: D14. ``CLONE_NEWBPF`` is ``0x400000000``: on a
            32-bit kernel (``Kernel(word_size=32)``) ``unshare(unsigned long)`` cannot
            express it (EINVAL), clone3's u64 flags are truncated on their way to
            ``copy_namespaces(unsigned long)`` (the child silently stays in its
            parent's namespace) and ``NS_GET_NSTYPE`` returns it truncated to 0.
            Fixed: the flag lives below bit 32, as ``CLONE_NEWTIME`` (0x80) does; bpfns
            keeps the one name :data:`bpfns.CLONE_NEWBPF` for it.
        d19_newuser_newbpf_allowed: D19. ``CLONE_NEWUSER|CLONE_NEWBPF`` is accepted
            (only ``ns_capable`` in the new user namespace is checked). Fixed: EINVAL,
            as the author promised for v2.
        d20_lookup_global_ids: D20 (one representative of the namespace-crossing
            lookups). ``BPF_MAP_LOOKUP_ELEM`` on a map-in-map returns the inner map's
            global ``map->id`` (``bpf_map_fd_sys_lookup_elem``), which the patch leaves
            alone. Fixed: the id in the caller's namespace, 0 if it cannot see it.
    """

    d1_rollback_at_failed_level: bool = True
    d2_obj_id_unpinned: bool = True
    d3_create_returns_zero: bool = True
    d5_offload_obj_id_dangling: bool = True
    d6_nr_ns_unchecked: bool = True
    d7_publication_not_atomic: bool = True
    d8_vnr_without_nsproxy: bool = True
    d9_late_initcall: bool = True
    d10_missing_owner_op: bool = True
    d11_nsproxy_under_rcu: bool = True
    d12_btf_next_id_relaxed: bool = True
    d13_task_fd_query_unfiltered: bool = True
    d14_clone_flag_above_bit_31: bool = True
    d19_newuser_newbpf_allowed: bool = True
    d20_lookup_global_ids: bool = True

    def defects(self) -> tuple[str, ...]:
        """The D-numbers this behaviour reproduces, in order.

        >>> FIXED.defects()
        ()
        >>> print(*RFC.defects())
        D1 D2 D3 D5 D6 D7 D8 D9 D10 D11 D12 D13 D14 D19 D20
        """
        return tuple(
            f"D{field.name[1:].split('_', 1)[0]}"
            for field in attrs.fields(Behavior)
            if getattr(self, field.name)
        )


#: The patch series exactly as posted: every defect present.
RFC = Behavior()

#: The corrected design: every defect fixed.
FIXED = Behavior(**{field.name: False for field in attrs.fields(Behavior)})
