"""The catalogue: races of the RFC's design, each with its expected RFC and FIXED outcome.

Each :class:`Scenario` is a program for :func:`bpfns.concurrency.explore` (a ``setup``
and the ``Kernel`` arguments it needs), the outcome expected from an exhaustive
exploration at preemption bound 2 under each behaviour (``"clean"`` or the name of the
error of the failing runs), and, for races that corrupt nothing but can be seen, what to
look for in the runs' outcomes (``observe``) and whether some run shows it.

>>> [s.name for s in CATALOGUE][:3]
['d7-map', 'd7-prog', 'd7-window']
>>> get("d7-map").expect
{'rfc': 'UseAfterFree', 'fixed': 'clean'}
>>> get("d7-map").check("fixed").ok
True

``bpfns explore NAME --behavior rfc|fixed`` runs one from the shell; ``bpfns explore
--list`` prints the catalogue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._behavior import FIXED, RFC, Behavior
from .._bpf_namespace import CLONE_NEWBPF, NsState
from .._errors import BpfnsError
from .._kernel import Kernel
from ._explore import ExploreResult, Run, explore

__all__ = ["CATALOGUE", "Check", "Scenario", "get", "rfc_for"]

#: The defects a scenario's "rfc" behaviour fixes unless it studies them: a failed
#: level's rollback (D1), and the teardown's exits (D2: objects outlive their namespace;
#: D8: a task exits holding a program's last reference) would report first.
_QUIET = {
    "D1": "d1_rollback_at_failed_level",
    "D2": "d2_obj_id_unpinned",
    "D8": "d8_vnr_without_nsproxy",
}


def rfc_for(*studied: str) -> Behavior:
    """The RFC as posted, but with D1, D2 and D8 fixed unless ``studied`` names them.

    >>> print(*rfc_for("D2").defects())
    D2 D3 D5 D6 D7 D9 D10 D11 D12 D13 D14 D19 D20
    """
    return attrs.evolve(RFC, **{field: False for d, field in _QUIET.items() if d not in studied})


def _behaviors(*studied: str) -> dict[str, Behavior]:
    return {"rfc": rfc_for(*studied), "fixed": FIXED}


@attrs.frozen
class Check:
    """A scenario explored under one behaviour, against what the catalogue expects.

    Attributes:
        verdict: ``"clean"``, or the error type name of the failing runs.
        observed: whether some run shows the scenario's observation (None: it has none).
        ok: whether both match the expectation.
        result: the :class:`bpfns.concurrency.ExploreResult`.
    """

    verdict: str
    observed: bool | None
    ok: bool
    result: ExploreResult


@attrs.frozen
class Scenario:
    """One program of the catalogue.

    Attributes:
        name: its name (``bpfns explore NAME``).
        title: one line.
        setup: builds the world on a Kernel and returns one callable per CPU.
        kernel_args: the ``Kernel`` arguments it needs (``{"id_end": 2}``).
        expect: per behaviour name, ``"clean"`` or the failing runs' error name.
        behaviors: per behaviour name, the :class:`bpfns.Behavior` it runs under:
            ``"rfc"`` is :func:`rfc_for` the defects it studies, ``"fixed"`` FIXED.
        observe: a test of one run's outcomes for a race that corrupts nothing.
        observation: what ``observe`` looks for, in words.
        expect_observed: per behaviour name, whether some run shows it.
    """

    name: str
    title: str
    setup: Callable[[Kernel], Sequence[Callable[[], object]]]
    kernel_args: dict[str, Any]
    expect: dict[str, str]
    behaviors: dict[str, Behavior] = attrs.field(factory=_behaviors)
    observe: Callable[[Run], bool] | None = None
    observation: str = ""
    expect_observed: dict[str, bool] = attrs.field(factory=dict)

    def explore(self, behavior: str = "rfc", **kwargs: Any) -> ExploreResult:
        """:func:`bpfns.concurrency.explore` of this scenario under ``behavior``.

        Raises:
            ValueError: for a behaviour name other than ``"rfc"`` and ``"fixed"``.

        >>> get("d7-map").explore("fixed", preemption_bound=1).clean
        True
        """
        if behavior not in self.behaviors:
            raise ValueError(f"behavior must be one of {sorted(self.behaviors)}, not {behavior!r}")
        return explore(
            self.setup,
            behavior=self.behaviors[behavior],
            kernel_args=self.kernel_args,
            **kwargs,
        )

    def check(self, behavior: str = "rfc", **kwargs: Any) -> Check:
        """Explore under ``behavior`` (every run kept) and compare with :attr:`expect`.

        Raises:
            ValueError: as :meth:`explore`.

        >>> check = get("link-settle").check("rfc")
        >>> check.verdict, check.observed, check.ok
        ('clean', True, True)
        """
        result = self.explore(behavior, keep_runs=True, **kwargs)
        verdicts = sorted({type(run.error).__name__ for run in result.failures})
        verdict = "/".join(verdicts) or "clean"
        observed = None
        if self.observe is not None:
            observed = any(self.observe(run) for run in result.runs)
        ok = verdict == self.expect[behavior] and (
            observed is None or observed == self.expect_observed[behavior]
        )
        return Check(verdict, observed, ok, result)


# -- the programs ---------------------------------------------------------------------------


def _d7_map(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    child = host.clone(CLONE_NEWBPF)
    host.map_create()  # with id_end=2 the initial namespace is now full
    return [child.map_create, lambda: child.map_get_fd_by_id(1)]


def _d7_prog(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    child = host.clone(CLONE_NEWBPF)
    host.prog_load()
    return [child.prog_load, lambda: child.prog_get_fd_by_id(1)]


def _d7_window(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    child = host.clone(CLONE_NEWBPF)

    def peek() -> int:
        return child.obj_get_info_by_fd(child.map_get_fd_by_id(1)).id

    return [child.map_create, peek]


def _window_seen(run: Run) -> bool:
    return run.outcomes[1] == 0


def _d11(unshare: bool) -> Callable[[Kernel], list[Callable[[], object]]]:
    def setup(k: Kernel) -> list[Callable[[], object]]:
        host = k.init_task
        opener = host.clone()
        target = host.clone(CLONE_NEWBPF)
        pid = target.pid
        if unshare:
            return [lambda: opener.open_proc_ns(pid), lambda: target.unshare(CLONE_NEWBPF)]
        return [lambda: opener.open_proc_ns(pid), target.exit]

    return setup


def _last_close(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    other = host.clone()
    fd = host.map_create()
    return [
        lambda: host.close(fd),
        lambda: other.map_get_fd_by_id(1),
        lambda: other.map_get_next_id(0),
    ]


def _link_settle(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    prog = host.prog_load()
    return [lambda: host.link_create(prog), lambda: host.link_get_fd_by_id(1)]


def _eagain_seen(run: Run) -> bool:
    outcome = run.outcomes[1]
    return isinstance(outcome, BpfnsError) and outcome.errorcode == "EAGAIN"


def _d2_teardown(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    child = host.clone(CLONE_NEWBPF)
    fd = child.map_create()
    child.obj_pin(fd, "/sys/fs/bpf/m")
    child.close(fd)  # only the pin holds the map: which goes last decides
    return [child.exit, k.synchronize_rcu, lambda: host.unlink("/sys/fs/bpf/m")]


def _grace_period(k: Kernel) -> list[Callable[[], object]]:
    host = k.init_task
    child = host.clone(CLONE_NEWBPF)
    ns = child.bpf_ns

    def reader() -> tuple[NsState, NsState]:
        k.rcu_read_lock()
        before = ns.state
        with contextlib.suppress(BpfnsError):  # ENOENT: a call with preemption points
            host.map_get_next_id(0)
        after = ns.state
        k.rcu_read_unlock()
        return before, after

    def writer() -> int:
        child.exit()  # the last reference: destroy, and call_rcu(delayed_free_bpfns)
        return k.synchronize_rcu()

    return [reader, writer]


def _freed_under_reader(run: Run) -> bool:
    outcome = run.outcomes[0]
    assert isinstance(outcome, tuple)
    return outcome[0] is not NsState.FREED and outcome[1] is NsState.FREED


CATALOGUE: tuple[Scenario, ...] = (
    Scenario(
        "d7-map",
        "D7: GET_FD_BY_ID in the child takes a map whose level-0 id then fails",
        _d7_map,
        {"id_end": 2},
        {"rfc": "UseAfterFree", "fixed": "clean"},
    ),
    Scenario(
        "d7-prog",
        "D7, the prog variant: PROG_GET_FD_BY_ID during a failing BPF_PROG_LOAD",
        _d7_prog,
        {"id_end": 2},
        {"rfc": "UseAfterFree", "fixed": "clean"},
    ),
    Scenario(
        "d7-window",
        "D7's benign window: the map is findable while its id is still 0",
        _d7_window,
        {},
        {"rfc": "clean", "fixed": "clean"},
        observe=_window_seen,
        observation="the map opened by id reports id 0 (get_info before map->id is set)",
        expect_observed={"rfc": True, "fixed": False},
    ),
    Scenario(
        "d11-exit",
        "D11: opening /proc/<pid>/ns/bpf while the task exits",
        _d11(unshare=False),
        {},
        {"rfc": "UseAfterFree", "fixed": "clean"},
    ),
    Scenario(
        "d11-unshare",
        "D11: opening /proc/<pid>/ns/bpf while the task unshares CLONE_NEWBPF",
        _d11(unshare=True),
        {},
        {"rfc": "UseAfterFree", "fixed": "clean"},
    ),
    Scenario(
        "last-close",
        "GET_FD_BY_ID and GET_NEXT_ID racing with the last close of a map",
        _last_close,
        {},
        {"rfc": "clean", "fixed": "clean"},
    ),
    Scenario(
        "link-settle",
        "LINK_GET_FD_BY_ID racing with BPF_LINK_CREATE's prime and settle",
        _link_settle,
        {},
        {"rfc": "clean", "fixed": "clean"},
        observe=_eagain_seen,
        observation="the lookup gets EAGAIN (the link is primed, not settled)",
        expect_observed={"rfc": True, "fixed": True},
    ),
    Scenario(
        "d2-teardown",
        "D2: the namespace's last task exits, a grace period ends, its map's last pin goes",
        _d2_teardown,
        {},
        {"rfc": "UseAfterFree", "fixed": "clean"},
        _behaviors("D2"),
    ),
    Scenario(
        "grace-period",
        "An RCU-deferred namespace free waits for a reader that began before it",
        _grace_period,
        {},
        {"rfc": "clean", "fixed": "clean"},
        observe=_freed_under_reader,
        observation="the reader sees its namespace freed inside its read-side section",
        expect_observed={"rfc": False, "fixed": False},
    ),
)


def get(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises:
        ValueError: for an unknown name (the message lists the catalogue).

    >>> get("d11-exit").title
    'D11: opening /proc/<pid>/ns/bpf while the task exits'
    """
    for scenario in CATALOGUE:
        if scenario.name == name:
            return scenario
    names = ", ".join(s.name for s in CATALOGUE)
    raise ValueError(f"no scenario {name!r}; the catalogue has: {names}")
