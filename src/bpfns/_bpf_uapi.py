"""include/uapi/linux/bpf.h: the records the ``bpf()`` commands return to userspace.

Values (``attrs.frozen``), as far as the id model needs their fields. Every id in them
is ``vnr`` (the caller's namespace's number), except BTF's, which is global.
"""

from __future__ import annotations

import attrs

__all__ = ["AuditRecord", "BtfInfo", "LinkInfo", "MapInfo", "ProgInfo"]


@attrs.frozen
class MapInfo:
    """``struct bpf_map_info`` (the fields bpfns models); ``id`` is ``vnr``.

    ``ifindex`` is the device of an offloaded map (0 for a host map).
    """

    id: int
    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str
    ifindex: int = 0


@attrs.frozen
class BtfInfo:
    """``struct bpf_btf_info`` (the fields bpfns models); ``id`` is the global id."""

    id: int
    name: str
    kernel_btf: bool = False


@attrs.frozen
class ProgInfo:
    """``struct bpf_prog_info``; ``id`` and every ``map_ids`` entry are ``vnr``."""

    id: int
    type: int
    name: str
    map_ids: tuple[int, ...]
    created_by_uid: int


@attrs.frozen
class LinkInfo:
    """``struct bpf_link_info``; ``id`` and ``prog_id`` are ``vnr``."""

    id: int
    type: int
    prog_id: int


@attrs.frozen
class AuditRecord:
    """An ``AUDIT_BPF`` record: ``prog-id=<vnr> op=LOAD|UNLOAD`` (semantics §2.5).

    ``pid`` is the task that ran the code (the loader, or the last releaser).
    """

    op: str
    prog_id: int
    pid: int
