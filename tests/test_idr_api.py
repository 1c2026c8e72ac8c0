"""Idr/Ida Python-API details: argument checks, reprs, helpers (no kernel equivalent)."""

from __future__ import annotations

import errno

import pytest

from bpfns import INT_MAX, U32_MAX, BpfnsError, Ida, Idr, c_int


def test_alloc_cyclic_negative_start_is_einval_and_changes_nothing() -> None:
    idr = Idr()
    idr.cursor = 7
    with pytest.raises(BpfnsError) as info:
        idr.alloc_cyclic("x", -1, 10)
    assert info.value.errno == errno.EINVAL
    assert idr.is_empty()
    assert idr.cursor == 7


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda idr: idr.alloc("x", 1.0, 5), TypeError, "start must be an int"),
        (lambda idr: idr.alloc("x", True, 5), TypeError, "not bool"),
        (lambda idr: idr.alloc("x", 0, INT_MAX + 1), ValueError, "does not fit a C int"),
        (lambda idr: idr.alloc_u32("x", -1, 5), ValueError, "u32"),
        (lambda idr: idr.alloc_u32("x", 0, -5), ValueError, "unsigned long"),
        (lambda idr: idr.find(-1), ValueError, "unsigned long"),
        (lambda idr: idr.remove("1"), TypeError, "id must be an int"),
        (lambda idr: idr.replace("y", -3), ValueError, "unsigned long"),
        (lambda idr: idr.get_next(INT_MAX + 1), ValueError, "int >= 0"),
        (lambda idr: setattr(idr, "cursor", U32_MAX + 1), ValueError, "unsigned int"),
    ],
)
def test_values_no_c_caller_could_pass(call: object, error: type[Exception], match: str) -> None:
    idr = Idr()
    idr.alloc("keep", 3, 4)
    with pytest.raises(error, match=match):
        call(idr)  # type: ignore[operator]
    assert idr.ids() == [3]
    assert idr.cursor == 0


def test_base_must_be_a_non_negative_int() -> None:
    with pytest.raises(ValueError, match="base"):
        Idr(base=-1)
    assert Idr(base=4).base == 4


def test_c_int_wraps_like_signed_overflow() -> None:
    assert c_int(INT_MAX + 1) == -(2**31)
    assert c_int(-1) == -1
    assert c_int(2**32 + 5) == 5


def test_idr_repr_lists_ids() -> None:
    idr = Idr(base=1)
    assert repr(idr) == "<Idr base=1 cursor=0 ids=[]>"
    for i in range(10):
        idr.alloc_cyclic(None if i == 3 else i, 1, 0)
    assert repr(idr) == "<Idr base=1 cursor=11 ids=[1, 2, 3, 4, 5, 6, 7, 8 ... 2 more]>"
    assert 4 in idr
    assert 0 not in idr
    assert len(idr) == 10


def test_ida_repr_and_ids() -> None:
    ida = Ida()
    for _ in range(3):
        ida.alloc()
    ida.free(1)
    assert ida.ids() == [0, 2]
    assert repr(ida) == "<Ida ids=[0, 2]>"
    assert len(ida) == 2
