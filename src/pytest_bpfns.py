"""The bpfns pytest plugin: a ``bpfns_kernel`` fixture that checks the world it leaves.

Installed with bpfns (the ``pytest11`` entry point ``bpfns``), so every test session
that has bpfns has the fixture; ``-p no:bpfns`` turns it off.

``bpfns_kernel`` is a fresh :class:`bpfns.Kernel`. At teardown it

1. fails the test if the sanitizer reported a memory bug (``k.reports``, kept when the
   kernel was made with ``on_bug="record"``), then runs ``k.check()`` (every
   invariant of the world),
2. runs ``k.teardown()`` (every task exits, bpffs is unmounted, RCU callbacks run),
3. fails the test if ``k.leftovers()`` is not empty (what the test took and never
   released: namespace references, id records of ``alloc_obj_id``), then checks again.

Options go through indirect parametrisation, as keyword arguments of ``Kernel``
(``behavior`` may also be ``"rfc"`` or ``"fixed"``)::

    @pytest.mark.parametrize(
        "bpfns_kernel", [{"behavior": "fixed", "id_end": 4}], indirect=True
    )
    def test_small_world(bpfns_kernel): ...

A test that corrupts its kernel on purpose (a defect of the RFC, a use-after-free it
wants to see) opts out of the teardown checks with ``@pytest.mark.bpfns_corrupts``.

This module lives outside the ``bpfns`` package and imports it only inside the
fixture, so that loading the plugin imports nothing before coverage measurement starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from bpfns import Kernel

__all__ = ["bpfns_kernel", "kernel_options"]

MARKER = "bpfns_corrupts"


def pytest_configure(config: pytest.Config) -> None:
    """Register the opt-out marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test corrupts its bpfns_kernel on purpose; skip the teardown checks",
    )


def kernel_options(param: object) -> dict[str, Any]:
    """The ``Kernel`` keyword arguments of an indirect ``bpfns_kernel`` parameter.

    Raises:
        TypeError: if ``param`` is not a dict with str keys.
        ValueError: for a ``behavior`` string other than ``"rfc"`` or ``"fixed"``.

    >>> kernel_options({"behavior": "fixed", "id_end": 4})["id_end"]
    4
    """
    import bpfns  # noqa: PLC0415 - the plugin loads before coverage; bpfns after

    if not isinstance(param, dict) or not all(isinstance(key, str) for key in param):
        raise TypeError(
            f"bpfns_kernel: the parameter must be a dict of Kernel keyword arguments, "
            f"not {param!r}; for example {{'behavior': 'fixed', 'id_end': 4}} with "
            "indirect=True"
        )
    options = dict(param)
    behavior = options.get("behavior")
    if isinstance(behavior, str):
        presets = {"rfc": bpfns.RFC, "fixed": bpfns.FIXED}
        if behavior not in presets:
            raise ValueError(
                f"bpfns_kernel: behavior {behavior!r} is not 'rfc' or 'fixed'; pass one "
                "of those or a bpfns.Behavior"
            )
        options["behavior"] = presets[behavior]
    return options


def _describe(leftovers: list[Any]) -> str:
    return "\n".join(f"  {item}" for item in leftovers)


@pytest.fixture
def bpfns_kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    """A fresh :class:`bpfns.Kernel`, checked, torn down and checked for leaks afterwards.

    See the module docstring for the options and the ``bpfns_corrupts`` marker.
    """
    import bpfns  # noqa: PLC0415

    k = bpfns.Kernel(**kernel_options(getattr(request, "param", {})))
    yield k
    if request.node.get_closest_marker(MARKER):
        return
    if k.reports:
        pytest.fail(
            f"bpfns_kernel: the sanitizer reported {len(k.reports)} memory bug(s):\n"
            f"{_describe([r.describe() for r in k.reports])}\nFix the sequence of calls, "
            f"or mark the test @pytest.mark.{MARKER} if the bug is what it shows.",
            pytrace=False,
        )
    k.check()
    k.teardown()
    left = k.leftovers()
    if left:
        pytest.fail(
            f"bpfns_kernel: after k.teardown() the test left {len(left)} thing(s) "
            f"behind:\n{_describe(left)}\nRelease what the test took (put() a namespace "
            "reference it got, free_obj_id() a record it allocated), or mark the test "
            f"@pytest.mark.{MARKER} if it corrupts the kernel on purpose.",
            pytrace=False,
        )
    k.check()
