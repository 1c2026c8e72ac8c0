"""The ``union bpf_attr`` and info-struct layouts and size rules of ``bpfns run``.

The offsets are checked against the machine's own ``<linux/bpf.h>`` (compiled with the
system C compiler, which CI installs), so a layout typo fails here, not in bpftool.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from bpfns import BpfnsError, BtfInfo, LinkInfo, MapInfo, ProgInfo
from bpfns._bpf_attr import (
    ATTR_SIZE,
    INFO_SIZES,
    PAGE_SIZE,
    SUPPORTED,
    BpfCmd,
    attr_fields,
    c_string,
    check_attr,
    insn_map_fds,
    pack_info,
    tail_zero,
)

CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(
    CC is None and not os.environ.get("CI"), reason="no C compiler (CI installs gcc)"
)

#: (C expression, what bpfns uses): offsets and sizes bpfns reads and writes.
LAYOUT = {
    "sizeof(union bpf_attr)": ATTR_SIZE,
    "sizeof(struct bpf_map_info)": INFO_SIZES[MapInfo],
    "sizeof(struct bpf_prog_info)": INFO_SIZES[ProgInfo],
    "sizeof(struct bpf_link_info)": INFO_SIZES[LinkInfo],
    "sizeof(struct bpf_btf_info)": INFO_SIZES[BtfInfo],
    "offsetof(struct bpf_map_info, id)": 4,
    "offsetof(struct bpf_map_info, max_entries)": 16,
    "offsetof(struct bpf_map_info, name)": 24,
    "offsetof(struct bpf_map_info, ifindex)": 40,
    "offsetof(struct bpf_prog_info, created_by_uid)": 48,
    "offsetof(struct bpf_prog_info, nr_map_ids)": 52,
    "offsetof(struct bpf_prog_info, map_ids)": 56,
    "offsetof(struct bpf_prog_info, name)": 64,
    "offsetof(struct bpf_link_info, prog_id)": 8,
    "offsetof(struct bpf_btf_info, id)": 12,
    "offsetof(struct bpf_btf_info, kernel_btf)": 28,
    "offsetof(union bpf_attr, next_id)": 4,
    "offsetof(union bpf_attr, open_flags)": 8,
    "offsetof(union bpf_attr, info.info_len)": 4,
    "offsetof(union bpf_attr, info.info)": 8,
    "offsetof(union bpf_attr, link_create.attach_type)": 8,
    "offsetof(union bpf_attr, raw_tracepoint.prog_fd)": 8,
    "offsetofend(union bpf_attr, map_extra)": 72,
    "offsetofend(union bpf_attr, core_relo_rec_size)": 140,
    "offsetofend(union bpf_attr, file_flags)": 16,
}
#: Each field bpfns reads, by the header's name for it.
FIELD_NAMES = {"id": "start_id", "bpf_fd": "bpf_fd"}


def _c_fields() -> dict[str, int]:
    """Every field of :data:`bpfns._bpf_attr._FIELDS`, as ``offsetof`` expressions."""
    from bpfns._bpf_attr import _FIELDS  # noqa: PLC0415 - the table under test

    out = {}
    for cmd, (fields, _) in _FIELDS.items():
        prefix = {
            BpfCmd.OBJ_GET_INFO_BY_FD: "info.",
            BpfCmd.LINK_CREATE: "link_create.",
            BpfCmd.RAW_TRACEPOINT_OPEN: "raw_tracepoint.",
        }.get(cmd, "")
        for name, offset, _fmt in fields:
            c_name = name if cmd is BpfCmd.OBJ_GET_INFO_BY_FD else FIELD_NAMES.get(name, name)
            out[f"offsetof(union bpf_attr, {prefix}{c_name})"] = offset
    return out


@needs_cc
def test_layout_is_the_system_headers(tmp_path: Path) -> None:
    expected = LAYOUT | _c_fields()
    lines = "\n".join(f'  printf("%zu\\n", (size_t)({expr}));' for expr in expected)
    source = tmp_path / "layout.c"
    source.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/bpf.h>\n"
        "#define offsetofend(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))\n"
        f"int main(void) {{\n{lines}\n  return 0;\n}}\n"
    )
    binary = tmp_path / "layout"
    subprocess.run([CC or "cc", str(source), "-o", str(binary)], check=True)
    got = subprocess.run([binary], check=True, capture_output=True, text=True).stdout.split()
    assert dict(zip(expected, map(int, got), strict=True)) == expected


def test_tail_zero_rules() -> None:
    reads: list[tuple[int, int]] = []

    def zeros(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return bytes(length)

    tail_zero(ATTR_SIZE, ATTR_SIZE, zeros)
    tail_zero(8, ATTR_SIZE, zeros)
    assert reads == []  # nothing past the kernel's size to read
    tail_zero(PAGE_SIZE, ATTR_SIZE, zeros)
    assert reads == [(ATTR_SIZE, PAGE_SIZE - ATTR_SIZE)]
    with pytest.raises(BpfnsError) as big:
        tail_zero(PAGE_SIZE + 1, ATTR_SIZE, zeros)
    assert big.value.errno == errno.E2BIG
    with pytest.raises(BpfnsError) as dirty:
        tail_zero(ATTR_SIZE + 1, ATTR_SIZE, lambda offset, n: b"\1")
    assert dirty.value.errno == errno.E2BIG


def test_check_attr_after_the_last_field() -> None:
    check_attr(BpfCmd.MAP_CREATE, bytes(72) + bytes(ATTR_SIZE - 72))
    with pytest.raises(BpfnsError) as err:
        check_attr(BpfCmd.MAP_CREATE, bytes(72) + b"\1")
    assert err.value.errno == errno.EINVAL
    check_attr(BpfCmd.LINK_GET_FD_BY_ID, b"\xff" * 4)  # the id itself may be anything


def test_attr_fields_read_short_attrs_as_zero_padded() -> None:
    attr = struct.pack("<IIII", 1, 4, 8, 16) + bytes(12) + b"name\0"
    fields = attr_fields(BpfCmd.MAP_CREATE, attr)
    assert (fields["map_type"], fields["key_size"], fields["value_size"]) == (1, 4, 8)
    assert fields["max_entries"] == 16 and fields["map_ifindex"] == 0
    assert c_string(bytes(fields["map_name"])) == "name"  # type: ignore[arg-type]
    assert attr_fields(BpfCmd.OBJ_GET_INFO_BY_FD, struct.pack("<i", -1))["bpf_fd"] == -1


def _ld_imm64(src: int, imm: int) -> bytes:
    return bytes([0x18, src << 4]) + bytes(2) + struct.pack("<i", imm) + bytes(8)


def test_insn_map_fds_finds_fd_and_fd_array_maps() -> None:
    exit_ = bytes([0x95]) + bytes(7)
    insns = _ld_imm64(1, 7) + exit_ + _ld_imm64(2, 8) + _ld_imm64(5, 1) + _ld_imm64(0, 9) + exit_
    assert insn_map_fds(insns, lambda i: [30, 31][i]) == [7, 8, 31]
    with pytest.raises(BpfnsError) as cut:
        insn_map_fds(exit_ + _ld_imm64(1, 7)[:8], lambda i: 0)
    assert cut.value.errno == errno.EINVAL


def test_pack_map_info_honours_nothing_but_the_info() -> None:
    info = MapInfo(id=3, type=2, key_size=4, value_size=8, max_entries=9, name="m", ifindex=1)
    out = pack_info(info, b"\xff" * 88, lambda a, d: pytest.fail("a map has no arrays"))
    assert len(out) == 88
    assert struct.unpack_from("<5I", out) == (2, 3, 4, 8, 9)
    assert out[24:40] == b"m" + bytes(15) and struct.unpack_from("<I", out, 40) == (1,)
    assert not any(out[44:])  # what bpfns does not model reads as zero


def test_pack_prog_info_writes_at_most_nr_map_ids() -> None:
    info = ProgInfo(id=5, type=1, name="p", map_ids=(4, 6, 9), created_by_uid=1000)
    written: list[tuple[int, bytes]] = []
    user = bytearray(232)
    struct.pack_into("<IQ", user, 52, 2, 0x1000)
    out = pack_info(info, bytes(user), lambda a, d: written.append((a, d)))
    assert written == [(0x1000, struct.pack("<2I", 4, 6))]
    assert struct.unpack_from("<IIQ", out, 48) == (1000, 3, 0x1000)  # the real count
    assert struct.unpack_from("<II", out) == (1, 5) and out[64:65] == b"p"
    count_only = pack_info(info, bytes(232), lambda a, d: pytest.fail("no buffer given"))
    assert struct.unpack_from("<I", count_only, 52) == (3,)


def test_pack_link_and_btf_info() -> None:
    user = bytearray(48)
    user[16:24] = struct.pack("<Q", 0xABC)  # tp_name: the kernel keeps what it was given
    out = pack_info(LinkInfo(id=2, type=7, prog_id=5), bytes(user), lambda a, d: None)
    assert struct.unpack_from("<IIIxxxxQ", out) == (7, 2, 5, 0xABC)
    btf = pack_info(BtfInfo(id=4, name="x", kernel_btf=True), bytes(32), lambda a, d: None)
    assert struct.unpack_from("<I", btf, 12) == (4,) and struct.unpack_from("<I", btf, 28) == (1,)


def test_the_how_to_lists_exactly_the_supported_commands() -> None:
    howto = Path(__file__).resolve().parent.parent / "docs/howto/run-real-tools.md"
    table = howto.read_text().split("**The `bpf()` commands answered**", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `BPF_")]
    listed = {name for row in rows for name in re.findall(r"`(BPF_[A-Z_]+)`", row.split("|")[1])}
    assert listed == {f"BPF_{cmd.name}" for cmd in SUPPORTED}
    assert len(SUPPORTED) == 13
