"""Behaviour switches: the RFC as posted, the corrected design, and every mix in between.

Each switch names one defect of rfc.md section 3 by its D-number. ``True`` reproduces the
posted patch; ``False`` is the fix the review (or the kernel's own pid code) points to.
:data:`RFC` has every switch on, :data:`FIXED` every switch off; flip one with
:func:`attrs.evolve`:

>>> import attrs
>>> only_d6_fixed = attrs.evolve(RFC, d6_nr_ns_unchecked=False)
>>> only_d6_fixed.defects()
('D1', 'D2', 'D3', 'D7', 'D8', 'D10', 'D11', 'D19')
"""

from __future__ import annotations

import attrs

__all__ = ["FIXED", "RFC", "Behavior"]


@attrs.frozen
class Behavior:
    """Which defects of the posted RFC a :class:`bpfns.Kernel` reproduces.

    Attributes:
        d1_rollback_at_failed_level: D1 (rfc.md 2.3 step 5, section 3). When
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
        d6_nr_ns_unchecked: D6 (rfc.md 2.4). ``bpf_obj_id_nr_ns`` returns
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
        d10_missing_owner_op: D10. ``bpfns_operations`` has no ``owner`` op, so
            ``ioctl(NS_GET_USERNS)`` calls a NULL function pointer. Fixed: it returns
            the owner user namespace.
        d11_nsproxy_under_rcu: D11. ``bpfns_get`` (opening ``/proc/<pid>/ns/bpf``)
            reads ``task->nsproxy`` under ``rcu_read_lock``, but ``free_nsproxy`` does
            not wait for a grace period: a concurrent exit or unshare of the task frees
            the nsproxy under the reader. Fixed: under ``task_lock``, as the other
            nsproxy-based namespaces do. Only observable on simulated CPUs.
        d19_newuser_newbpf_allowed: D19. ``CLONE_NEWUSER|CLONE_NEWBPF`` is accepted
            (only ``ns_capable`` in the new user namespace is checked). Fixed: EINVAL,
            as the author promised for v2.
    """

    d1_rollback_at_failed_level: bool = True
    d2_obj_id_unpinned: bool = True
    d3_create_returns_zero: bool = True
    d6_nr_ns_unchecked: bool = True
    d7_publication_not_atomic: bool = True
    d8_vnr_without_nsproxy: bool = True
    d10_missing_owner_op: bool = True
    d11_nsproxy_under_rcu: bool = True
    d19_newuser_newbpf_allowed: bool = True

    def defects(self) -> tuple[str, ...]:
        """The D-numbers this behaviour reproduces, in order.

        >>> FIXED.defects(), RFC.defects()
        ((), ('D1', 'D2', 'D3', 'D6', 'D7', 'D8', 'D10', 'D11', 'D19'))
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
