"""Map elements: ``BPF_MAP_{UPDATE,LOOKUP,DELETE}_ELEM`` and map-in-map (kernel/bpf/map_in_map.c).

bpfns keeps what the id model needs of a map's contents: integer keys and values for
arrays and hashes, and, for ``BPF_MAP_TYPE_ARRAY_OF_MAPS`` / ``HASH_OF_MAPS``, inner maps.
An outer map holds a reference on each inner map (``bpf_map_fd_get_ptr``), dropped when
the element is replaced or deleted, or the outer map is freed.

A lookup on a map-in-map returns the inner map's id. The RFC leaves
``bpf_map_fd_sys_lookup_elem`` alone, so that id is the **global** ``map->id`` whatever
namespace asks (D20: the patch leaves it "unchanged and still global"); fixed, it is the id in
the caller's namespace, 0 if the caller cannot see the inner map.
"""

from __future__ import annotations

import errno

from ._args import INT_MAX, INT_MIN, check_int
from ._bpf_object import (
    BpfMap,
    SyscallTask,
    bpf_obj_get,
    bpf_obj_id_vnr,
    bpf_obj_put,
    fdget,
    syscall,
)
from ._errors import BpfnsError
from ._files import FileKind

__all__ = ["BPF_ANY", "BPF_EXIST", "BPF_NOEXIST", "MapElemCommands", "bpf_map_meta_alloc"]

BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2
_ARRAY_LIKE = (2, 12)  # BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS


def _map_of(task: SyscallTask, fd: int, what: str) -> BpfMap:
    """``fdget`` + ``__bpf_map_get``: the map behind ``fd`` (EBADF, EINVAL)."""
    check_int(what, fd, INT_MIN, INT_MAX, "int")
    file = fdget(task, fd)
    if file.kind is not FileKind.BPF_MAP:
        raise BpfnsError(errno.EINVAL, f"{what} {fd} is a {file.kind.value}, not a bpf-map")
    m: BpfMap = file.obj
    return m


def bpf_map_meta_alloc(task: SyscallTask, inner_map_fd: int | None) -> tuple[int, int, int, int]:
    """``bpf_map_meta_alloc``: the inner-map template of a new map-in-map.

    The template is a copy (map type, key size, value size, max entries): the new map
    holds no reference on the map it was made from.

    Raises:
        BpfnsError: EBADF or EINVAL for an ``inner_map_fd`` that is not a map; EINVAL
            for a map-in-map as the inner map (one level only) or no inner map at all.
    """
    if inner_map_fd is None:
        raise BpfnsError(errno.EBADF, "a map-in-map needs inner_map_fd (a template map)")
    inner = _map_of(task, inner_map_fd, "inner_map_fd")
    if inner.inner_meta is not None:
        raise BpfnsError(errno.EINVAL, "a map-in-map cannot hold map-in-maps (one level)")
    return (inner.map_type, inner.key_size, inner.value_size, inner.max_entries)


def _key(m: BpfMap, key: int) -> int:
    return check_int("key", key, 0, 2 ** (8 * min(m.key_size, 8)) - 1, f"{m.key_size}-byte key")


def _elements(m: BpfMap) -> dict[int, int | BpfMap]:
    """The map's elements (an empty table until the first update)."""
    if m.elements is None:
        m.elements = {}
    return m.elements


def _check_slot(m: BpfMap, key: int, flags: int) -> None:
    """The flag rules of an update: arrays have every slot, hashes a capacity."""
    if m.map_type in _ARRAY_LIKE:
        if key >= m.max_entries:
            raise BpfnsError(errno.E2BIG, f"key {key} >= max_entries {m.max_entries}")
        if flags == BPF_NOEXIST and m.map_type == 2:
            raise BpfnsError(errno.EEXIST, "BPF_NOEXIST: every array element exists")
        return
    present = key in _elements(m)
    if flags == BPF_NOEXIST and present:
        raise BpfnsError(errno.EEXIST, f"BPF_NOEXIST: key {key} exists")
    if flags == BPF_EXIST and not present:
        raise BpfnsError(errno.ENOENT, f"BPF_EXIST: no key {key}")
    if not present and len(_elements(m)) >= m.max_entries:
        raise BpfnsError(errno.E2BIG, f"the map is full ({m.max_entries} entries)")


class MapElemCommands:
    """The element commands, as methods of :class:`bpfns.Task` (libbpf names)."""

    __slots__ = ()

    @syscall("bpf(BPF_MAP_UPDATE_ELEM)")
    def map_update_elem(self: SyscallTask, fd: int, key: int, value: int, flags: int = 0) -> None:
        """``BPF_MAP_UPDATE_ELEM``: set ``key`` to ``value`` (a map-in-map: an inner map fd).

        For a map-in-map the inner map must match the template (type, key and value
        size, max entries: ``bpf_map_meta_equal``); the element holds a reference on it
        and the one it replaces is put.

        Raises:
            BpfnsError: EBADF/EINVAL for an fd that is not a map; EINVAL for flags other
                than BPF_ANY/BPF_NOEXIST/BPF_EXIST, or an inner map that does not match;
                E2BIG for a key past an array's end or a full hash; EEXIST/ENOENT as the
                flags ask.
            TypeError, ValueError: for a key or value that does not fit its size.

        >>> from bpfns import Kernel, BPF_MAP_TYPE_ARRAY_OF_MAPS
        >>> t = Kernel().init_task
        >>> inner = t.map_create()
        >>> outer = t.map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, inner_map_fd=inner)
        >>> t.map_update_elem(outer, 0, inner); t.map_lookup_elem(outer, 0)
        1
        """
        m = _map_of(self, fd, "fd")
        key = _key(m, key)
        flags = check_int("flags", flags, 0, 2**64 - 1, "u64")
        if flags > BPF_EXIST:
            raise BpfnsError(errno.EINVAL, f"flags {flags:#x}: BPF_ANY, BPF_NOEXIST or BPF_EXIST")
        if m.inner_meta is None:
            value = check_int("value", value, 0, 2 ** (8 * min(m.value_size, 8)) - 1, "value")
            _check_slot(m, key, flags)
            _elements(m)[key] = value
            return
        inner = _map_of(self, value, "value")
        meta = (inner.map_type, inner.key_size, inner.value_size, inner.max_entries)
        if inner.inner_meta is not None or meta != m.inner_meta:
            raise BpfnsError(
                errno.EINVAL,
                f"inner map {meta} does not match the template {m.inner_meta} "
                "(type, key_size, value_size, max_entries)",
            )
        _check_slot(m, key, flags)
        bpf_obj_get(inner, "outer")
        elements = _elements(m)
        old = elements.get(key)
        elements[key] = inner
        if isinstance(old, BpfMap):
            bpf_obj_put(old, "outer")

    @syscall("bpf(BPF_MAP_LOOKUP_ELEM)")
    def map_lookup_elem(self: SyscallTask, fd: int, key: int) -> int:
        """``BPF_MAP_LOOKUP_ELEM``: the value at ``key``; for a map-in-map, the inner map's id.

        That id is the global one as posted (``bpf_map_fd_sys_lookup_elem`` returns
        ``map->id``: D20); fixed, it is the id in the caller's namespace, 0 if the
        caller cannot see the inner map. An array reads 0 at a key never written.

        Raises:
            BpfnsError: EBADF/EINVAL for an fd that is not a map; ENOENT for a missing
                key (or an empty map-in-map slot).
            TypeError, ValueError: for a key that does not fit the key size.

        >>> from bpfns import Kernel, CLONE_NEWBPF, BPF_MAP_TYPE_ARRAY_OF_MAPS
        >>> k = Kernel()
        >>> _ = k.init_task.map_create()
        >>> c = k.init_task.clone(CLONE_NEWBPF)
        >>> inner = c.map_create()                              # id 1 in c, 2 in init
        >>> outer = c.map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, inner_map_fd=inner)
        >>> c.map_update_elem(outer, 0, inner)
        >>> c.map_lookup_elem(outer, 0)                         # D20: the global id
        2
        """
        m = _map_of(self, fd, "fd")
        key = _key(m, key)
        if m.map_type in _ARRAY_LIKE and key >= m.max_entries:
            raise BpfnsError(errno.ENOENT, f"key {key} >= max_entries {m.max_entries}")
        value = _elements(m).get(key)
        if value is None:
            if m.map_type == 2:
                return 0
            raise BpfnsError(errno.ENOENT, f"no element at key {key}")
        if isinstance(value, BpfMap):
            if self.kernel.behavior.d20_lookup_global_ids:
                return value.id
            return bpf_obj_id_vnr(self.kernel, value, "bpf_map_fd_sys_lookup_elem")
        return value

    @syscall("bpf(BPF_MAP_DELETE_ELEM)")
    def map_delete_elem(self: SyscallTask, fd: int, key: int) -> None:
        """``BPF_MAP_DELETE_ELEM``: remove ``key`` (a map-in-map puts the inner map).

        Raises:
            BpfnsError: EBADF/EINVAL for an fd that is not a map; EINVAL on an array
                (its elements cannot be deleted); ENOENT for a missing key.
            TypeError, ValueError: for a key that does not fit the key size.

        >>> from bpfns import Kernel, BPF_MAP_TYPE_HASH
        >>> t = Kernel().init_task
        >>> h = t.map_create(BPF_MAP_TYPE_HASH, max_entries=4)
        >>> t.map_update_elem(h, 7, 1); t.map_delete_elem(h, 7); t.map_lookup_elem(h, 7)
        Traceback (most recent call last):
        bpfns.BpfnsError: [ENOENT: No such file or directory] no element at key 7
        """
        m = _map_of(self, fd, "fd")
        key = _key(m, key)
        if m.map_type == 2:
            raise BpfnsError(errno.EINVAL, "array elements cannot be deleted")
        value = _elements(m).pop(key, None)
        if value is None:
            raise BpfnsError(errno.ENOENT, f"no element at key {key}")
        if isinstance(value, BpfMap):
            bpf_obj_put(value, "outer")
