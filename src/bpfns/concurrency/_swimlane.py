"""Swimlane pictures of one run: a column per simulated CPU, time going down.

Each entry of a run's log is one row, written in the column of the CPU that acted. A
CPU that holds a spinlock shows it: the text pictures prefix its entries with the locks
held and mark its column ``|`` on the other CPUs' rows; the SVG draws the hold as a bar
beside the lane. A free is marked ``free``, the faulting access (an oops, a failing
teardown) ``!!`` and, in the SVG, red. Rows of the sequential teardown span the width.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol

from .._svg import svg_doc, svg_text
from ._scheduler import Lane


class Run(Protocol):
    """What a picture reads of a run (:class:`bpfns.concurrency.Run` is one)."""

    @property
    def cpus(self) -> int: ...
    @property
    def log(self) -> Sequence[Lane]: ...
    @property
    def schedule(self) -> object: ...
    @property
    def preemptions(self) -> int: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def where(self) -> str | None: ...
    @property
    def step(self) -> int: ...


__all__ = ["swimlane_svg", "swimlane_text"]

_WIDTH = 52
_MARK = {"oops": "!! ", "note": "-- ", "wait": ".. ", "start": "", "done": ""}


def _cell(kind: str, what: str, held: tuple[str, ...]) -> str:
    locks = f"[{' '.join(held)}] " if held and kind not in ("lock",) else ""
    text = f"{_MARK.get(kind, '')}{locks}{what}"
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def swimlane_text(run: Run) -> str:
    """``run`` as a text swimlane: one column per CPU, one row per log entry.

    >>> from bpfns.concurrency import scenarios
    >>> run = scenarios.get("d7-map").explore("rfc").shortest()
    >>> print(run.swimlane().splitlines()[0].split())
    ['CPU', '0', '|', 'CPU', '1']
    """
    cpus = run.cpus
    holding = [False] * cpus
    header = " | ".join(f"{f'CPU {i}':<{_WIDTH}}" for i in range(cpus))
    lines = [header.rstrip(), "-+-".join("-" * _WIDTH for _ in range(cpus))]
    for lane in run.log:
        if lane.cpu < 0:
            lines.append(f"{_MARK.get(lane.kind, '')}{lane.what}")
            continue
        holding[lane.cpu] = bool(lane.held)
        cells = [
            _cell(lane.kind, lane.what, lane.held)
            if i == lane.cpu
            else ("|" if holding[i] else "")
            for i in range(cpus)
        ]
        lines.append(" | ".join(f"{c:<{_WIDTH}}" for c in cells).rstrip())
    lines.append(f"schedule {run.schedule!r}, {run.preemptions} preemption(s): {_verdict(run)}")
    return "\n".join(lines)


def _verdict(run: Run) -> str:
    if run.error is None:
        return "clean"
    return f"{type(run.error).__name__} in {run.where} at step {run.step}"


_ROW, _LANE, _TOP, _BAR = 18, 420, 34, 6


def swimlane_svg(run: Run) -> str:
    """``run`` as an SVG swimlane: lanes, lock holds as bars, frees and the fault marked.

    >>> from bpfns.concurrency import scenarios
    >>> svg = scenarios.get("d7-map").explore("rfc").shortest().svg()
    >>> svg.startswith("<svg") and "CPU 1" in svg
    True
    """
    cpus = run.cpus
    width = cpus * _LANE + 20
    body = [
        f'<rect x="0" y="0" width="{width}" height="{_TOP - 6}" fill="#f2f2f2"/>',
        *(svg_text(10 + i * _LANE + _LANE / 2, 20, f"CPU {i}", 13) for i in range(cpus)),
        *(
            f'<line x1="{10 + i * _LANE - 6}" y1="{_TOP - 6}" x2="{10 + i * _LANE - 6}" '
            f'y2="{_TOP + len(run.log) * _ROW}" stroke="#dddddd"/>'
            for i in range(1, cpus)
        ),
    ]
    held_from: dict[tuple[int, str], int] = {}
    row = 0
    for row, lane in enumerate(run.log):
        y = _TOP + row * _ROW
        colour = {"oops": "#b00020", "note": "#8a4b00", "wait": "#777777"}.get(lane.kind, "#000")
        if lane.cpu < 0:  # the sequential teardown: the full width
            text = lane.what if lane.kind == "oops" else f"teardown: {lane.what}"
            body.append(_line(10, y, text, colour, limit=cpus * 60))
            continue
        x = 10 + lane.cpu * _LANE
        for lock in lane.held:
            held_from.setdefault((lane.cpu, lock), row)
        for key in [k for k in held_from if k[0] == lane.cpu and k[1] not in lane.held]:
            body.append(_bar(key, held_from.pop(key), row))
        body.append(_line(x + 2 * _BAR + 4, y, _cell(lane.kind, lane.what, ()), colour))
    for key, start in held_from.items():
        body.append(_bar(key, start, row + 1))
    height = _TOP + (len(run.log) + 1) * _ROW + 10
    body.append(_line(10, height - 14, f"{run.schedule!r}: {_verdict(run)}", "#000"))
    return svg_doc(width, height, body, f"swimlane of {run.schedule!r}")


def _line(x: float, y: float, text: str, colour: str, limit: int = 60) -> str:
    return f'<g fill="{colour}">' + svg_text(x, y + 12, text[:limit], 11, "start") + "</g>"


def _bar(key: tuple[int, str], start: int, end: int) -> str:
    cpu, lock = key
    x = 10 + cpu * _LANE
    return (
        f'<rect class="lock" x="{x}" y="{_TOP + start * _ROW}" width="{_BAR}" '
        f'height="{(end - start) * _ROW}" fill="#2c5d8f"><title>{escape(lock)}</title></rect>'
    )
