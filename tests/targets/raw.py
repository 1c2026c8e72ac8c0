"""Target programs for tests/test_run.py: raw ``bpf()`` through ctypes, no bpfns import.

``python raw.py SCENARIO`` prints one JSON object: what each step returned (an fd, an
id, or ``-errno``). The scenarios are hostile (bad pointers, sizes, commands) or play
with fds behind the supervisor's back (close, dup, fork, SCM_RIGHTS).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket
import struct
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR_BPF = 321
MAP_CREATE, PROG_LOAD, OBJ_PIN, MAP_GET_NEXT_ID, MAP_GET_FD_BY_ID, INFO = 0, 5, 6, 12, 14, 15
ATTR = 144
keep: list[object] = []


def raw(cmd: int, address: int, size: int) -> int:
    """bpf(cmd, address, size): the result, or -errno."""
    ret = libc.syscall(NR_BPF, ctypes.c_int(cmd), ctypes.c_void_p(address), ctypes.c_uint(size))
    return int(ret) if ret >= 0 else -ctypes.get_errno()


def buf(data: bytes, size: int = ATTR) -> ctypes.Array[ctypes.c_char]:
    b = ctypes.create_string_buffer(data.ljust(size, b"\0"), size)
    keep.append(b)
    return b


def bpf(cmd: int, data: bytes, size: int = ATTR) -> int:
    return raw(cmd, ctypes.addressof(buf(data, size)), size)


def pages(size: int, prot: int) -> int:
    """The address of ``size`` bytes of new anonymous memory (``mmap``)."""
    mmap_ = libc.mmap
    mmap_.restype = ctypes.c_void_p
    mmap_.argtypes = [ctypes.c_void_p, ctypes.c_size_t] + [ctypes.c_int] * 3 + [ctypes.c_long]
    return int(mmap_(None, size, prot, 0x22, -1, 0))  # MAP_PRIVATE | MAP_ANONYMOUS


def map_create(name: bytes = b"m") -> int:
    return bpf(MAP_CREATE, struct.pack("<4I", 2, 4, 4, 1) + bytes(12) + name.ljust(16, b"\0"))


def info_id(fd: int) -> int:
    info = buf(b"", 88)
    ret = bpf(INFO, struct.pack("<iIQ", fd, 88, ctypes.addressof(info)))
    return ret if ret < 0 else struct.unpack_from("<I", info.raw, 4)[0]


def hostile() -> dict[str, int]:
    out: dict[str, int] = {}
    out["null_attr"] = raw(MAP_GET_NEXT_ID, 0, 12)
    out["kernel_pointer"] = raw(MAP_GET_NEXT_ID, 0xFFFF_FFFF_FFFF_0000, 12)
    out["huge_size"] = bpf(MAP_GET_NEXT_ID, b"", 1 << 20)
    out["page_plus_one"] = bpf(MAP_GET_NEXT_ID, b"", 4097)
    out["dirty_tail"] = bpf(MAP_GET_NEXT_ID, bytes(199) + b"\1", 200)  # past any kernel's
    out["clean_tail"] = bpf(MAP_GET_NEXT_ID, b"", 200)
    out["unknown_cmd"] = bpf(999, b"")
    out["negative_cmd"] = bpf(-1, b"")
    out["unsupported_cmd"] = bpf(1, b"")  # BPF_MAP_LOOKUP_ELEM
    out["check_attr"] = bpf(MAP_GET_NEXT_ID, bytes(8) + b"\1")
    out["name_without_nul"] = map_create(b"a" * 16)
    lic = buf(b"GPL")
    out["zero_insns"] = bpf(PROG_LOAD, struct.pack("<IIQQ", 1, 0, 8, ctypes.addressof(lic)))
    out["too_many_insns"] = bpf(
        PROG_LOAD, struct.pack("<IIQQ", 1, 2_000_000, 8, ctypes.addressof(lic))
    )
    out["size_first"] = bpf(PROG_LOAD, struct.pack("<II", 1, 0))  # E2BIG before the license
    out["bad_insns"] = bpf(PROG_LOAD, struct.pack("<IIQQ", 1, 1_000_000, 8, ctypes.addressof(lic)))
    out["bad_license"] = bpf(PROG_LOAD, struct.pack("<IIQQ", 1, 2, 8, 16))
    fd = map_create()
    out["map"] = fd
    out["info_bad_pointer"] = bpf(INFO, struct.pack("<iIQ", fd, 88, 64))
    out["info_huge_len"] = bpf(INFO, struct.pack("<iIQ", fd, 1 << 20, ctypes.addressof(buf(b""))))
    out["info_minus_one"] = info_id(-1)
    out["info_stdout"] = info_id(1)
    out["pin_bad_path"] = bpf(OBJ_PIN, struct.pack("<QI", 8, fd))
    long_path = buf(b"/sys/fs/bpf/" + b"x" * 5000, 5100)
    out["pin_long_path"] = bpf(OBJ_PIN, struct.pack("<QI", ctypes.addressof(long_path), fd))
    ro_page = pages(4096, 1)  # PROT_READ
    out["next_id_readonly_attr"] = raw(MAP_GET_NEXT_ID, ro_page, 12)
    os.close(fd)  # behind the supervisor's back
    out["info_after_close"] = info_id(fd)
    out["id_after_close"] = bpf(MAP_GET_NEXT_ID, b"")
    return out


def fds() -> dict[str, int]:
    out: dict[str, int] = {}
    a = map_create(b"a")
    out["a_id"] = info_id(a)
    b = os.dup(a)
    os.close(a)
    out["dup_id"] = info_id(b)
    with open(f"/proc/self/fdinfo/{b}") as fdinfo:
        out["fdinfo_map_id"] = int(
            next(line for line in fdinfo if line.startswith("map_id")).split()[1]
        )
    out["readlink"] = int(os.readlink(f"/proc/self/fd/{b}") == "anon_inode:bpf-map")
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: receive c over the socket, report its id, exit
        parent.close()
        _, got, _, _ = socket.recv_fds(child, 8, 1)
        child.sendall(struct.pack("<ii", info_id(got[0]), info_id(b)))
        socket.send_fds(child, [b"d"], [map_create(b"d")])
        child.recv(1)
        os._exit(0)
    child.close()
    c = map_create(b"c")
    out["c_id"] = info_id(c)
    socket.send_fds(parent, [b"x"], [c])
    os.close(c)  # now only the child holds c
    out["child_c_id"], out["child_b_id"] = struct.unpack("<ii", parent.recv(8))
    _, got, _, _ = socket.recv_fds(parent, 8, 1)
    out["d_from_child"] = info_id(got[0])
    os.close(got[0])
    parent.sendall(b"k")
    os.waitpid(pid, 0)
    out["after_child"] = bpf(MAP_GET_FD_BY_ID, struct.pack("<I", out["c_id"]))  # c is gone
    out["b_still"] = info_id(b)
    stats = buf(b"", 120)
    libc.statfs(b"/sys/fs/bpf", stats)
    out["statfs_type"] = struct.unpack_from("<q", stats.raw)[0]
    return out


def more() -> dict[str, int]:
    """Edges of the commands and of memory, compared with bpfns's rules only."""
    out: dict[str, int] = {}
    lic = buf(b"GPL")
    exit_ = buf(bytes([0xB7]) + bytes(7) + bytes([0x95]) + bytes(7), 16)  # r0 = 0; exit
    load = struct.pack("<IIQQ", 2, 2, ctypes.addressof(exit_), ctypes.addressof(lic))
    out["prog_name_without_nul"] = bpf(PROG_LOAD, load + bytes(24) + b"p" * 16)
    prog = bpf(PROG_LOAD, load)
    out["perf_link"] = bpf(28, struct.pack("<iiI", prog, 0, 41))  # BPF_LINK_CREATE
    out["other_link"] = bpf(28, struct.pack("<iiI", prog, 0, 5))
    out["raw_tp_no_name"] = bpf(17, struct.pack("<Qi", 0, prog))  # RAW_TRACEPOINT_OPEN
    inner = map_create(b"inner")
    outer = struct.pack("<5Ii", 12, 4, 4, 1, 0, inner)  # ARRAY_OF_MAPS
    out["map_in_map"] = bpf(MAP_CREATE, outer.ljust(28, b"\0") + b"outer".ljust(16, b"\0"))
    path = buf(b"/sys/fs/bpf/p")
    out["pin_flags"] = bpf(OBJ_PIN, struct.pack("<QiI", ctypes.addressof(path), inner, 1))
    out["get_with_fd"] = bpf(7, struct.pack("<Qi", ctypes.addressof(path), inner))
    out["info_zero_len"] = bpf(INFO, struct.pack("<iIQ", inner, 0, 8))
    with_maps = struct.pack("<IIQQ", 2, 4, 0, ctypes.addressof(lic))
    ld = bytes([0x18, 0x11]) + bytes(2) + struct.pack("<i", inner) + bytes(8)
    insns = buf(ld + bytes(exit_.raw), 32)
    user = bpf(
        PROG_LOAD, with_maps[:8] + struct.pack("<Q", ctypes.addressof(insns)) + with_maps[16:]
    )
    info = bytearray(232)
    struct.pack_into("<IQ", info, 52, 1, 8)  # nr_map_ids 1, map_ids at an unmapped address
    pinfo = buf(bytes(info), 232)
    out["map_ids_bad_pointer"] = bpf(INFO, struct.pack("<iIQ", user, 232, ctypes.addressof(pinfo)))
    two = pages(8192, 3)  # two read-write pages
    libc.mprotect(ctypes.c_void_p(two + 4096), 4096, 7)  # the second rwx: two mappings
    out["next_id_across_mappings"] = raw(MAP_GET_NEXT_ID, two + 4096 - 6, 12)
    out["next_id_value"] = struct.unpack("<I", ctypes.string_at(two + 4096 - 2, 4))[0]
    libc.munmap(ctypes.c_void_p(two + 4096), 4096)
    out["attr_cut_by_unmapped_page"] = raw(MAP_GET_NEXT_ID, two + 4096 - 8, 12)
    return out


def low_fds() -> dict[str, int]:
    """A program that puts a map on its stdio fds: its next map is at the same number
    in the simulated table and the real one."""
    a = map_create(b"a")
    saved = os.dup(1)
    for fd in (0, 1, 2):
        os.dup2(a, fd)
    os.close(a)
    b = map_create(b"b")
    result = {"b": b, "b_id": info_id(b), "zero_id": info_id(0)}
    os.write(saved, json.dumps(result).encode() + b"\n")
    os._exit(0)


def info() -> dict[str, int]:
    """The id of each fd named on the command line (fds the target was given)."""
    return {fd: info_id(int(fd)) for fd in sys.argv[2:]}


def d3() -> dict[str, int]:
    """Create maps until the id space is full: what the create returned each time."""
    return {str(i): map_create() for i in range(3)}


def emfile() -> dict[str, int]:
    """With RLIMIT_NOFILE at 5 (fds 0-4 taken), a new map's fd does not fit."""
    kept = map_create()
    resource.setrlimit(resource.RLIMIT_NOFILE, (5, 5))
    while True:
        try:
            os.open("/dev/null", os.O_RDONLY)
        except OSError:
            break
    created = map_create()
    try:
        os.open(f"/proc/self/fdinfo/{kept}", os.O_RDONLY)
    except OSError as err:
        fdinfo = -err.errno
    os.close(kept)
    return {"create": created, "next_id": bpf(MAP_GET_NEXT_ID, b""), "fdinfo": fdinfo}


def threads() -> dict[str, int]:
    """A map made by a second thread is the process's."""
    made: list[int] = []
    worker = threading.Thread(target=lambda: made.append(map_create()))
    worker.start()
    worker.join()
    return {"fd": made[0], "id": info_id(made[0])}


def orphan() -> dict[str, int]:
    """A grandchild whose parent has exited (reparented) creates a map."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        parent = os.getpid()
        if os.fork() == 0:  # the grandchild: wait for its parent to go, then bpf()
            while os.getppid() == parent:
                time.sleep(0.01)
            os.write(w, struct.pack("<i", info_id(map_create())))
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
    return {"grandchild_id": struct.unpack("<i", os.read(r, 4))[0]}


def paths() -> dict[str, int]:
    """The path syscalls that are not a placeholder's run natively."""
    out: dict[str, int] = {}
    fd = map_create()
    libc.readlink.restype = ctypes.c_long
    target = buf(b"", 64)
    out["readlink_zero"] = libc.readlink(f"/proc/self/fd/{fd}".encode(), target, 0)
    out["readlink_zero_errno"] = ctypes.get_errno()
    out["readlink_short"] = libc.readlink(f"/proc/self/fd/{fd}".encode(), target, 4)
    out["readlink_short_is"] = int(target.raw[:4] == b"anon")
    out["readlinkat"] = len(os.readlink(f"/proc/self/fd/{fd}", dir_fd=None))
    out["readlink_stdin_native"] = int(
        not os.readlink("/proc/self/fd/0").startswith("anon_inode:bpf")
    )
    try:
        os.open(f"/proc/self/fdinfo/{fd}", os.O_WRONLY)
    except OSError as err:
        out["fdinfo_write"] = -err.errno
    out["open_bad_pointer"] = libc.open(ctypes.c_void_p(8), 0)
    out["open_bad_pointer_errno"] = ctypes.get_errno()
    with open("/proc/self/fdinfo/0") as native:
        out["fdinfo_native"] = int("map_id" not in native.read())
    stats = buf(b"", 120)
    libc.statfs(b"/tmp", stats)
    out["statfs_native_is_bpffs"] = int(struct.unpack_from("<q", stats.raw)[0] == 0xCAFE4A11)
    out["statfs_bad_pointer"] = libc.statfs(ctypes.c_void_p(8), stats)
    out["readlink_bad_pointer"] = libc.readlink(ctypes.c_void_p(8), target, 64)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with open(f"/proc/{os.getppid()}/fdinfo/0") as untracked:  # the supervisor's own
        out["fdinfo_untracked_native"] = int("map_id" not in untracked.read())
    with open(f"/proc/{os.getpid()}/fdinfo/{fd}") as by_pid:
        out["fdinfo_by_pid"] = int("map_id" in by_pid.read())
    return out


if __name__ == "__main__":
    scenarios = {"hostile": hostile, "fds": fds, "info": info, "d3": d3, "emfile": emfile}
    scenarios |= {"threads": threads, "orphan": orphan, "paths": paths, "more": more}
    scenarios |= {"low_fds": low_fds}
    print(json.dumps(scenarios[sys.argv[1]]()))
