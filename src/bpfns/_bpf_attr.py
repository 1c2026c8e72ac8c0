"""include/uapi/linux/bpf.h as bytes: ``union bpf_attr`` and the info structs.

What :func:`bpfns.run` reads from and writes to a real program's memory, laid out as
the uapi header of Linux 6.1 lays it out on a 64-bit machine (little-endian; the
header Debian 12's ``linux-libc-dev``, libbpf 1.1 and bpftool 7.1 are built with).
Pure functions over ``bytes``: the supervisor does the memory access.

The size rules are kernel/bpf/syscall.c's:

* ``bpf_check_uarg_tail_zero``: a struct larger than the kernel's is accepted only if
  every byte past the kernel's size is zero (else E2BIG); more than a page is E2BIG.
* ``CHECK_ATTR``: the bytes after a command's last field must be zero (else EINVAL).
* an info struct shorter than the kernel's is honoured: only ``info_len`` bytes are
  written back, and ``info_len`` is set to what was written.
"""

from __future__ import annotations

import enum
import errno
import struct
from collections.abc import Callable

from ._bpf_uapi import BtfInfo, LinkInfo, MapInfo, ProgInfo
from ._errors import BpfnsError

__all__ = [
    "ATTR_SIZE",
    "INFO_SIZES",
    "PAGE_SIZE",
    "BpfCmd",
    "attr_fields",
    "check_attr",
    "insn_map_fds",
    "pack_info",
    "tail_zero",
]

#: The kernel refuses a ``bpf_attr`` or an info struct larger than a page.
PAGE_SIZE = 4096

#: ``sizeof(union bpf_attr)`` in Linux 6.1.
ATTR_SIZE = 144

#: ``sizeof`` of the info structs: ``bpf_map_info``, ``bpf_prog_info``,
#: ``bpf_link_info``, ``bpf_btf_info``.
INFO_SIZES: dict[type[object], int] = {MapInfo: 88, ProgInfo: 232, LinkInfo: 48, BtfInfo: 32}

#: ``BPF_COMPLEXITY_LIMIT_INSNS``: the most instructions a privileged load may have.
MAX_INSNS = 1_000_000


class BpfCmd(enum.IntEnum):
    """``enum bpf_cmd``: every command number of Linux 6.1 (not all are answered)."""

    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_ATTACH = 8
    PROG_DETACH = 9
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    PROG_QUERY = 16
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    TASK_FD_QUERY = 20
    MAP_LOOKUP_AND_DELETE_ELEM = 21
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    MAP_LOOKUP_BATCH = 24
    MAP_LOOKUP_AND_DELETE_BATCH = 25
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27
    LINK_CREATE = 28
    LINK_UPDATE = 29
    LINK_GET_FD_BY_ID = 30
    LINK_GET_NEXT_ID = 31
    ENABLE_STATS = 32
    ITER_CREATE = 33
    LINK_DETACH = 34
    PROG_BIND_MAP = 35


#: Per command: ``(name, offset, struct format)`` of each field bpfns reads, and the
#: end of the command's last field (``offsetofend(union bpf_attr, <LAST_FIELD>)``).
_FIELDS: dict[BpfCmd, tuple[tuple[tuple[str, int, str], ...], int]] = {
    BpfCmd.MAP_CREATE: (
        (
            ("map_type", 0, "I"),
            ("key_size", 4, "I"),
            ("value_size", 8, "I"),
            ("max_entries", 12, "I"),
            ("map_flags", 16, "I"),
            ("inner_map_fd", 20, "i"),
            ("map_name", 28, "16s"),
            ("map_ifindex", 44, "I"),
        ),
        72,  # map_extra
    ),
    BpfCmd.PROG_LOAD: (
        (
            ("prog_type", 0, "I"),
            ("insn_cnt", 4, "I"),
            ("insns", 8, "Q"),
            ("license", 16, "Q"),
            ("prog_name", 48, "16s"),
            ("fd_array", 120, "Q"),
        ),
        140,  # core_relo_rec_size
    ),
    BpfCmd.OBJ_PIN: ((("pathname", 0, "Q"), ("bpf_fd", 8, "i"), ("file_flags", 12, "I")), 16),
    BpfCmd.OBJ_GET: ((("pathname", 0, "Q"), ("bpf_fd", 8, "i"), ("file_flags", 12, "I")), 16),
    BpfCmd.MAP_GET_NEXT_ID: ((("start_id", 0, "I"),), 8),
    BpfCmd.PROG_GET_NEXT_ID: ((("start_id", 0, "I"),), 8),
    BpfCmd.LINK_GET_NEXT_ID: ((("start_id", 0, "I"),), 8),
    BpfCmd.MAP_GET_FD_BY_ID: ((("id", 0, "I"), ("open_flags", 8, "I")), 12),
    BpfCmd.PROG_GET_FD_BY_ID: ((("id", 0, "I"), ("open_flags", 8, "I")), 12),
    BpfCmd.LINK_GET_FD_BY_ID: ((("id", 0, "I"),), 4),
    BpfCmd.OBJ_GET_INFO_BY_FD: (
        (("bpf_fd", 0, "i"), ("info_len", 4, "I"), ("info", 8, "Q")),
        16,
    ),
    BpfCmd.LINK_CREATE: (
        (("prog_fd", 0, "i"), ("target_fd", 4, "i"), ("attach_type", 8, "I"), ("flags", 12, "I")),
        48,  # the largest member of the link_create union (kprobe_multi)
    ),
    BpfCmd.RAW_TRACEPOINT_OPEN: ((("name", 0, "Q"), ("prog_fd", 8, "i")), 12),
}

#: The commands bpfns answers, in the docs' order.
SUPPORTED = tuple(_FIELDS)

#: Where a GET_NEXT_ID command writes ``next_id``, and OBJ_GET_INFO_BY_FD ``info_len``.
NEXT_ID_OFFSET = 4
INFO_LEN_OFFSET = 4


def tail_zero(size: int, kernel_size: int, read_tail: Callable[[int, int], bytes]) -> None:
    """``bpf_check_uarg_tail_zero``: a user struct of ``size`` bytes against the kernel's.

    ``read_tail(offset, length)`` reads the user's bytes past ``kernel_size`` (it raises
    EFAULT for memory it cannot read).

    Raises:
        BpfnsError: E2BIG if ``size`` is over a page, or larger than ``kernel_size``
            with a non-zero byte past it; EFAULT from ``read_tail``.

    >>> tail_zero(152, ATTR_SIZE, lambda offset, n: bytes(n))
    >>> tail_zero(152, ATTR_SIZE, lambda offset, n: b"x" * n)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bpfns.BpfnsError: [E2BIG: ...] 152 bytes given, the kernel knows 144 and the rest ...
    """
    if size > PAGE_SIZE:
        raise BpfnsError(errno.E2BIG, f"{size} bytes is more than a page ({PAGE_SIZE})")
    if size > kernel_size and any(read_tail(kernel_size, size - kernel_size)):
        raise BpfnsError(
            errno.E2BIG,
            f"{size} bytes given, the kernel knows {kernel_size} and the rest is not zero",
        )


def check_attr(cmd: BpfCmd, attr: bytes) -> None:
    """``CHECK_ATTR(cmd)``: the bytes after ``cmd``'s last field must be zero.

    Raises:
        BpfnsError: EINVAL if one is not.

    >>> check_attr(BpfCmd.MAP_GET_NEXT_ID, bytes(12))
    >>> check_attr(BpfCmd.MAP_GET_NEXT_ID, bytes(8) + b"x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bpfns.BpfnsError: [EINVAL: ...] BPF_MAP_GET_NEXT_ID: the bytes after its last field ...
    """
    end = _FIELDS[cmd][1]
    if any(attr[end:]):
        raise BpfnsError(
            errno.EINVAL,
            f"BPF_{cmd.name}: the bytes after its last field (offset {end}) must be zero",
        )


def attr_fields(cmd: BpfCmd, attr: bytes) -> dict[str, int | bytes]:
    """The fields of ``cmd`` that bpfns reads, from an attr of up to :data:`ATTR_SIZE`.

    A short attr reads as zero-padded, as the kernel's ``memset`` + ``copy_from_user``.

    >>> attr_fields(BpfCmd.MAP_GET_FD_BY_ID, (7).to_bytes(4, "little"))
    {'id': 7, 'open_flags': 0}
    """
    padded = attr.ljust(ATTR_SIZE, b"\0")
    return {
        name: struct.unpack_from("<" + fmt, padded, offset)[0]
        for name, offset, fmt in _FIELDS[cmd][0]
    }


def c_string(raw: bytes) -> str | None:
    """A NUL-terminated name field (``bpf_obj_name_cpy``), or None if it has no NUL.

    >>> c_string(b"counts" + bytes(10)), c_string(b"x" * 16)
    ('counts', None)
    """
    end = raw.find(b"\0")
    return None if end < 0 else raw[:end].decode("latin-1")


#: ``BPF_LD | BPF_IMM | BPF_DW``: the first half of a 16-byte ``ld_imm64``.
_LD_IMM64 = 0x18
#: ``src_reg`` of an ``ld_imm64`` whose ``imm`` is a map fd, or an index of ``fd_array``.
_PSEUDO_MAP_FD = (1, 2)  # BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE
_PSEUDO_MAP_IDX = (5, 6)  # BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE


def insn_map_fds(insns: bytes, fd_array: Callable[[int], int]) -> list[int]:
    """The map fds a program's ``ld_imm64`` instructions name, in order.

    As the verifier's ``resolve_pseudo_ldimm64`` finds them; ``fd_array(i)`` reads
    entry ``i`` of ``attr.fd_array``.

    Raises:
        BpfnsError: EINVAL for an ``ld_imm64`` cut off by the end of the program.

    >>> ld = bytes([0x18, 0x11]) + bytes(2) + (5).to_bytes(4, "little") + bytes(8)
    >>> insn_map_fds(ld, lambda i: -1)
    [5]
    """
    fds: list[int] = []
    pc = 0
    while pc < len(insns):
        code, regs = insns[pc], insns[pc + 1]
        if code != _LD_IMM64:
            pc += 8
            continue
        if pc + 16 > len(insns):
            raise BpfnsError(errno.EINVAL, f"insn {pc // 8}: ld_imm64 without its second half")
        imm = int.from_bytes(insns[pc + 4 : pc + 8], "little", signed=True)
        src = regs >> 4
        if src in _PSEUDO_MAP_FD:
            fds.append(imm)
        elif src in _PSEUDO_MAP_IDX:
            fds.append(fd_array(imm))
        pc += 16
    return fds


def _name16(name: str) -> bytes:
    return name.encode("latin-1")[:15].ljust(16, b"\0")


def pack_info(
    info: MapInfo | ProgInfo | LinkInfo | BtfInfo,
    user: bytes,
    write_array: Callable[[int, bytes], None],
) -> bytes:
    """The info struct for ``info``, as ``bpf_<kind>_get_info_by_fd`` fills it.

    ``user`` is what the caller passed (the kernel reads a program's and a link's
    struct first: ``nr_map_ids``/``map_ids`` and ``tp_name`` come from it);
    ``write_array(address, data)`` writes ``map_ids`` into the caller's memory. The
    result has the kernel's full size; the caller writes back ``info_len`` bytes of it.
    Fields bpfns does not model read as zero (``tag``, ``load_time``, the jited and
    xlated sizes, BTF ids, ``map_flags``).

    Raises:
        BpfnsError: EFAULT from ``write_array``.
    """
    size = INFO_SIZES[type(info)]
    user = user[:size].ljust(size, b"\0")
    if isinstance(info, MapInfo):
        out = bytearray(size)
        struct.pack_into(
            "<5I", out, 0, info.type, info.id, info.key_size, info.value_size, info.max_entries
        )
        out[24:40] = _name16(info.name)
        struct.pack_into("<I", out, 40, info.ifindex)
        return bytes(out)
    if isinstance(info, ProgInfo):
        out = bytearray(size)
        want, address = struct.unpack_from("<IQ", user, 52)
        ids = info.map_ids[: min(want, len(info.map_ids))]
        if ids and address:
            write_array(address, struct.pack(f"<{len(ids)}I", *ids))
        struct.pack_into("<II", out, 0, info.type, info.id)
        struct.pack_into("<IIQ", out, 48, info.created_by_uid, len(info.map_ids), address)
        out[64:80] = _name16(info.name)
        return bytes(out)
    if isinstance(info, LinkInfo):
        out = bytearray(user)
        struct.pack_into("<III", out, 0, info.type, info.id, info.prog_id)
        return bytes(out)
    out = bytearray(size)
    struct.pack_into("<I", out, 12, info.id)
    struct.pack_into("<I", out, 28, int(info.kernel_btf))
    return bytes(out)
