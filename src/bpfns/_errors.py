"""Exceptions raised by bpfns.

Three families, for three kinds of trouble:

* :class:`BpfnsError` (an :class:`OSError`): the simulated kernel refused, with the errno
  the real kernel returns (``e.errno == errno.ENOSPC``). A call that raises it leaves the
  world as it was, except for what the kernel itself leaves behind (documented per call).
* :class:`KernelBug` (:class:`UseAfterFree`, :class:`UninitializedRead`,
  :class:`NullPointerDereference`, :class:`SlabOutOfBounds`): the posted C code
  would have touched memory it must not; the sanitizer (KASAN/KMSAN model) caught it.
* :class:`InvariantViolation`: :meth:`bpfns.Kernel.check` found a broken invariant.

Misuse of the Python API (wrong types, values no C caller could pass, objects of another
Kernel, double free) raises :class:`TypeError` or :class:`ValueError`.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._sanitizer import Report

__all__ = [
    "ENOTSUPP",
    "HYPOTHESIS_HINT",
    "BpfnsError",
    "InvariantViolation",
    "KernelBug",
    "KernelWarning",
    "NullPointerDereference",
    "SlabOutOfBounds",
    "UninitializedRead",
    "UseAfterFree",
]


#: How to install what :mod:`bpfns.testing` and ``bpfns fuzz`` need (the hypothesis extra).
HYPOTHESIS_HINT = (
    "pip install -e '.[hypothesis]' in a checkout of bpfns "
    "(from a package index: pip install 'bpfns[hypothesis]')"
)

#: ``ENOTSUPP`` (524): a kernel-internal errno that some bpf() paths leak to userspace.
ENOTSUPP = 524


class BpfnsError(OSError):
    """A simulated kernel call failed with a kernel errno.

    ``e.errno`` is the positive errno (the kernel returns its negative); ``e.strerror``
    says what went wrong and what to do about it.

    >>> import errno
    >>> e = BpfnsError(errno.ENOSPC, "no free id in [1, 3]; free an object first")
    >>> e.errno == errno.ENOSPC, e.errorcode
    (True, 'ENOSPC')
    """

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(errno, message)

    @property
    def errorcode(self) -> str:
        """The symbolic errno name, for example ``"ENOSPC"`` (the kernel's spelling)."""
        code = self.errno or 0
        if code == _errno.EOPNOTSUPP:  # Python says ENOTSUP; the kernel returns EOPNOTSUPP
            return "EOPNOTSUPP"
        if code == ENOTSUPP:  # not a userspace errno at all: Python has no name for it
            return "ENOTSUPP"
        return _errno.errorcode.get(code, str(code))

    def __str__(self) -> str:
        code = self.errno or 0
        text = "Operation not supported" if code == ENOTSUPP else os.strerror(code)
        return f"[{self.errorcode}: {text}] {self.strerror}"

    def __repr__(self) -> str:
        code = self.errorcode
        number = f"errno.{code}" if hasattr(_errno, code) else str(self.errno)
        return f"BpfnsError({number}, {self.strerror!r})"


class KernelWarning(UserWarning):
    """The kernel would have printed a WARN here (for example ``ida_free`` of a free id)."""


class KernelBug(Exception):  # noqa: N818 - the kernel's own word for an oops
    """The sanitizer caught the simulated kernel touching memory it must not.

    ``e.report`` is the :class:`bpfns.Report` that was also appended to
    :attr:`bpfns.Kernel.reports`. The task whose call hit the bug is killed, as the
    kernel kills a task that oopses: it exits (or, if it was exiting already, dies
    where it stood). Construct a kernel with ``on_bug="record"`` to keep going with the
    consequence the C code would have instead of raising.
    """

    def __init__(self, report: Report) -> None:
        super().__init__(report.describe())
        self.report = report


class UseAfterFree(KernelBug):
    """KASAN: slab-use-after-free (for example D2, an id removed from a freed namespace)."""


class UninitializedRead(KernelBug):
    """KMSAN: uninit-value (for example D1, rollback of a slab record never written)."""


class NullPointerDereference(KernelBug):
    """KASAN: null-ptr-deref (D8: ``current->nsproxy`` at exit; D10: a NULL ``owner`` op)."""


class SlabOutOfBounds(KernelBug):
    """KASAN: slab-out-of-bounds (D2: a record freed into a smaller level's cache, reused)."""


class InvariantViolation(AssertionError):  # noqa: N818 - mirrors sortedcontainers' _check
    """:meth:`bpfns.Kernel.check` found a broken invariant; the message names it."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"invariant {invariant!r} violated: {detail}")
        self.invariant = invariant
        self.detail = detail


# Users meet these as ``bpfns.BpfnsError`` & co. (tracebacks and doctests print the
# module): they are defined here and exported by the package, so they say so.
for _exception in (
    BpfnsError,
    KernelWarning,
    KernelBug,
    UseAfterFree,
    UninitializedRead,
    NullPointerDereference,
    SlabOutOfBounds,
    InvariantViolation,
):
    _exception.__module__ = "bpfns"
del _exception
