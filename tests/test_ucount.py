"""User namespaces and ucounts (kernel rules §D)."""

from __future__ import annotations

import errno

import pytest

from bpfns import INT_MAX, BpfnsError, Kernel, UcountType
from bpfns._ucount import DEFAULT_INIT_UCOUNT_MAX, dec_ucount, inc_ucount


def test_init_user_ns_defaults_to_max_threads_over_two() -> None:
    k = Kernel()
    assert k.init_user_ns.level == 0
    assert k.init_user_ns.parent is None
    assert k.init_user_ns.ucounts is None
    assert k.init_user_ns.get_max(UcountType.BPF_NAMESPACES) == DEFAULT_INIT_UCOUNT_MAX
    assert Kernel(ucount_max=7).init_user_ns.get_max(UcountType.USER_NAMESPACES) == 7


def test_child_user_ns_starts_at_int_max_and_is_charged_to_its_owner() -> None:
    k = Kernel()
    child = k.init_user_ns.create_child(owner=1000)
    assert (child.level, child.owner, child.parent) == (1, 1000, k.init_user_ns)
    assert child.get_max(UcountType.BPF_NAMESPACES) == INT_MAX
    assert k.init_user_ns.count(UcountType.USER_NAMESPACES, 1000) == 1
    assert repr(child) == "<UserNamespace level=1 owner=1000>"


def test_user_ns_depth_limit_is_33() -> None:
    k = Kernel()
    ns = k.init_user_ns
    for _ in range(33):
        ns = ns.create_child()
    assert ns.level == 33
    with pytest.raises(BpfnsError) as info:
        ns.create_child()
    assert info.value.errno == errno.ENOSPC


def test_max_user_namespaces_is_enforced_per_user() -> None:
    k = Kernel()
    k.init_user_ns.set_max(UcountType.USER_NAMESPACES, 1)
    k.init_user_ns.create_child(owner=5)
    k.init_user_ns.create_child(owner=6)  # the limit counts per (namespace, uid)
    with pytest.raises(BpfnsError) as info:
        k.init_user_ns.create_child(owner=5)
    assert info.value.errno == errno.ENOSPC
    assert "max_user_namespaces" in info.value.strerror


def test_inc_ucount_checks_every_level_against_its_own_limit_and_undoes() -> None:
    k = Kernel()
    a = k.init_user_ns.create_child(owner=1)
    b = a.create_child(owner=2)
    k.init_user_ns.set_max(UcountType.BPF_NAMESPACES, 1)
    first = inc_ucount(b, 3, UcountType.BPF_NAMESPACES)
    assert first is not None
    # b's entry is charged to uid 3, a's to b's owner (2), init's to a's owner (1).
    assert b.count(UcountType.BPF_NAMESPACES, 3) == 1
    assert a.count(UcountType.BPF_NAMESPACES, 2) == 1
    assert k.init_user_ns.count(UcountType.BPF_NAMESPACES, 1) == 1
    assert inc_ucount(b, 3, UcountType.BPF_NAMESPACES) is None  # init's limit
    assert b.count(UcountType.BPF_NAMESPACES, 3) == 1  # the deeper charges were undone
    assert a.count(UcountType.BPF_NAMESPACES, 2) == 1
    dec_ucount(first, UcountType.BPF_NAMESPACES)
    assert k.init_user_ns.count(UcountType.BPF_NAMESPACES, 1) == 0


def test_limit_zero_forbids_any() -> None:
    k = Kernel()
    k.init_user_ns.set_max(UcountType.BPF_NAMESPACES, 0)
    with pytest.raises(BpfnsError):
        k.init_ns.create_child()


def test_set_max_validates() -> None:
    ns = Kernel().init_user_ns
    with pytest.raises(BpfnsError) as info:
        ns.set_max(UcountType.BPF_NAMESPACES, INT_MAX + 1)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(BpfnsError):
        ns.set_max(UcountType.BPF_NAMESPACES, -1)
    with pytest.raises(TypeError):
        ns.set_max(UcountType.BPF_NAMESPACES, 1.5)  # type: ignore[arg-type]
    ns.set_max(UcountType.BPF_NAMESPACES, INT_MAX)
    assert ns.get_max(UcountType.BPF_NAMESPACES) == INT_MAX


def test_create_child_validates_owner() -> None:
    ns = Kernel().init_user_ns
    with pytest.raises(TypeError):
        ns.create_child(owner="root")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uid"):
        ns.create_child(owner=0xFFFFFFFF)  # (uid_t)-1 is not a uid


def test_sysctl_names() -> None:
    assert UcountType.BPF_NAMESPACES.sysctl == "max_bpf_namespaces"
    assert UcountType.USER_NAMESPACES.sysctl == "max_user_namespaces"


def test_in_userns() -> None:
    k = Kernel()
    a = k.init_user_ns.create_child()
    b = a.create_child()
    assert a.contains(b)
    assert a.contains(a)
    assert not b.contains(a)
    assert not k.init_user_ns.create_child().contains(b)


def test_ucounts_repr() -> None:
    k = Kernel()
    k.init_ns.create_child(euid=7)
    uc = inc_ucount(k.init_user_ns, 7, UcountType.BPF_NAMESPACES)
    assert repr(uc) == "<Ucounts ns_level=0 uid=7 counts=[0, 2, 0]>"
