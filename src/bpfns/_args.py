"""Argument checks: the one rule for types across the bpfns API.

The kernel takes C integers and byte strings; Python callers pass ints and strs. Every
public call checks its arguments with the functions here, before its first side effect,
so that bad input gets the same clear error everywhere:

* An integer argument takes an :class:`int`, including a subclass such as an
  :class:`enum.IntEnum` member, and uses its plain ``int`` value. It never takes a
  :class:`bool` (``True`` is not a file descriptor), a float, or None. A value outside
  the C type's range is a :class:`ValueError` naming the argument; a value in range
  that the kernel refuses is the kernel's :class:`bpfns.BpfnsError`.
* A string argument takes a :class:`str`, including a subclass, and uses its plain
  ``str`` value.
* An object argument (a task, a namespace, ...) must be of its class and belong to the
  Kernel the call is made on (``TypeError``, then ``ValueError``).

Every message names the argument and what to pass instead.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "U32_MAX",
    "ULONG_MAX",
    "check_bool",
    "check_instance",
    "check_int",
    "check_label",
    "check_ns_name",
    "check_str",
]

#: The ranges of the C types the kernel's arguments have (defined here once).
INT_MAX = 0x7FFFFFFF
INT_MIN = -0x80000000
U32_MAX = 0xFFFFFFFF
ULONG_MAX = 0xFFFFFFFFFFFFFFFF

T = TypeVar("T")


def check_int(name: str, value: object, lo: int, hi: int, ctype: str) -> int:
    """``value`` as a plain int within ``[lo, hi]`` (a C ``ctype``); else TypeError/ValueError.

    ``ctype`` names the C type in the message; ``""`` for an argument that is not a C
    value (a seed, a count).

    >>> import enum
    >>> class Size(enum.IntEnum):
    ...     FOUR = 4
    >>> check_int("key_size", Size.FOUR, 0, 2**32 - 1, "u32").__class__
    <class 'int'>
    >>> check_int("fd", True, -(2**31), 2**31 - 1, "int")
    Traceback (most recent call last):
    TypeError: fd must be an int (a C int), not bool
    """
    if value.__class__ is int:
        if lo <= value <= hi:
            return value
    elif not isinstance(value, int) or isinstance(value, bool):
        what = f"an int (a C {ctype})" if ctype else "an int"
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
    if not lo <= value <= hi:
        if not ctype:
            raise ValueError(f"{name}={int(value)} is outside [{lo}, {hi}]")
        raise ValueError(
            f"{name}={int(value)} does not fit a C {ctype} [{lo}, {hi}]; "
            "pass the value the kernel would see (see bpfns.c_int for signed overflow)"
        )
    return int(value)


def check_str(name: str, value: object) -> str:
    """``value`` as a plain str; TypeError naming ``name`` otherwise.

    >>> check_str("path", 5)
    Traceback (most recent call last):
    TypeError: path must be a str, not int
    """
    if value.__class__ is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return str(value)


def check_label(name: str, value: object) -> str | None:
    """A label for pictures (a namespace or task name): None or a str, as a plain str.

    >>> check_label("name", "child_a"), check_label("name", None)
    ('child_a', None)
    >>> check_label("name", 5)
    Traceback (most recent call last):
    TypeError: name must be a str label or None, not int
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str label or None, not {type(value).__name__}")
    return str(value)


def check_ns_name(name: str, value: object) -> str | None:
    """A namespace's name: a label (:func:`check_label`) that a path can address.

    Paths such as ``/child_b/child_b_b`` (``bpfns show --ns``) are made of names, so a
    name may not contain ``/`` (nor be empty). Two siblings may share a name; a path
    that reaches both is then ambiguous, and says so.

    >>> check_ns_name("name", "child_a")
    'child_a'
    >>> check_ns_name("name", "a/b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: name 'a/b': a namespace name may not be empty or contain '/' ...
    """
    label = check_label(name, value)
    if label is not None and (not label or "/" in label):
        raise ValueError(
            f"{name} {label!r}: a namespace name may not be empty or contain '/' (paths such "
            "as /child_b/child_b_b are made of names)"
        )
    return label


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is True or False; TypeError naming ``name`` otherwise.

    >>> check_bool("legacy", 1)
    Traceback (most recent call last):
    TypeError: legacy must be True or False, not int
    """
    if value is True or value is False:
        return value
    raise TypeError(f"{name} must be True or False, not {type(value).__name__}")


def check_instance(name: str, value: object, cls: type[T], what: str) -> T:
    """``value`` if it is a ``cls``; TypeError naming ``name`` and ``what`` otherwise.

    >>> check_instance("ns", 0, str, "a bpfns.Namespace")
    Traceback (most recent call last):
    TypeError: ns must be a bpfns.Namespace, not int
    """
    if isinstance(value, cls):
        return value
    raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
