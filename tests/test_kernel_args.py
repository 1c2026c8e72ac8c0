"""Kernel construction: configuration is validated up front."""

from __future__ import annotations

import attrs
import pytest

from bpfns import FIXED, INT_MAX, Kernel


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"behavior": "rfc"}, TypeError, "Behavior"),
        ({"id_end": 1}, ValueError, "id_end"),
        ({"id_end": INT_MAX + 1}, ValueError, "id_end"),
        ({"id_end": 3.0}, TypeError, "id_end"),
        ({"max_level": 33}, ValueError, "max_level"),
        ({"max_level": -1}, ValueError, "max_level"),
        ({"ucount_max": -1}, ValueError, "ucount_max"),
        ({"on_bug": "panic"}, ValueError, "on_bug"),
        ({"word_size": 16}, ValueError, "word_size"),
        ({"word_size": 32.0}, ValueError, "word_size"),
        ({"bpf_preload": "module"}, ValueError, "bpf_preload"),
    ],
)
def test_bad_configuration(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Kernel(**kwargs)  # type: ignore[arg-type]


def test_repr_and_step() -> None:
    k = Kernel(FIXED, id_end=9)
    assert repr(k) == "<Kernel behavior=FIXED id_end=9 namespaces=1 step=0>"
    k.init_ns.create_child()
    assert k.step == 1
    assert "namespaces=2 step=1" in repr(k)
    assert repr(Kernel()).startswith("<Kernel behavior=RFC id_end=2147483647")
    assert repr(Kernel(attrs.evolve(FIXED, d6_nr_ns_unchecked=True))).startswith(
        "<Kernel behavior=('D6',)"
    )
