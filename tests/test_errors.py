"""Error types: errno, messages, reprs."""

from __future__ import annotations

import errno

import attrs
import pytest

from bpfns import FIXED, RFC, Behavior, BpfnsError, BugKind, Report, Snapshot
from bpfns._sanitizer import Sanitizer


def test_bpfns_error_is_an_oserror_with_the_errno() -> None:
    e = BpfnsError(errno.EAGAIN, "link not settled yet; retry")
    assert isinstance(e, OSError)
    assert e.errno == errno.EAGAIN
    assert e.errorcode == "EAGAIN"
    assert str(e) == "[EAGAIN: Resource temporarily unavailable] link not settled yet; retry"
    assert repr(e) == "BpfnsError(errno.EAGAIN, 'link not settled yet; retry')"
    assert eval(repr(e), {"BpfnsError": BpfnsError, "errno": errno}).errno == errno.EAGAIN


def test_unknown_errno_name() -> None:
    assert BpfnsError(4242, "x").errorcode == "4242"


def test_report_reprs_are_python() -> None:
    r = Report("D2", BugKind.USE_AFTER_FREE, "what", "where", 3)
    assert eval(repr(r), {"Report": Report, "BugKind": BugKind}) == r
    assert Report(None, BugKind.SEMANTIC, "w", "f", 1).describe() == (
        "BUG: bpfns: semantic in f (step 1): w"
    )


def test_behavior_presets_and_repr() -> None:
    assert RFC.defects() == (
        "D1", "D2", "D3", "D5", "D6", "D7", "D8", "D9", "D10", "D11", "D12", "D13", "D14",
        "D19", "D20",
    )  # fmt: skip
    assert FIXED.defects() == ()
    assert eval(repr(FIXED), {"Behavior": Behavior}) == FIXED
    assert eval(repr(RFC), {"Behavior": Behavior}) == RFC
    assert "D2" not in attrs.evolve(RFC, d2_obj_id_unpinned=False).defects()


def test_sanitizer_rejects_a_bad_mode() -> None:
    with pytest.raises(ValueError, match="on_bug"):
        Sanitizer("panic")  # type: ignore[arg-type]


def test_snapshot_without_cursors_keeps_ids() -> None:
    snap = Snapshot(
        namespaces=((1, 0, None, "alive", 1, (), ((1, 2), (), ())),), cursors=((1, (3, 1, 1)),)
    )
    assert snap.without_cursors().namespaces == snap.namespaces
    assert snap.without_cursors().cursors == ()
    assert snap.changed(snap.without_cursors()) == ["cursors"]
    with pytest.raises(TypeError, match="other must be a Snapshot"):
        snap.changed(None)  # type: ignore[arg-type]
