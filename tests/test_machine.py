"""bpfns.testing: the BpfnsMachine finds the RFC's defects and runs clean on FIXED."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import Phase, seed, settings
from hypothesis.stateful import run_state_machine_as_test

import bpfns
import bpfns.testing
from bpfns import FIXED, RFC, Behavior, InvariantViolation, KernelBug, ObjType
from bpfns.testing import BpfnsMachine, FdRef


class FixedMachine(BpfnsMachine):
    behavior = FIXED
    id_end = 5


TestFixedMachine = FixedMachine.TestCase


def only(switch: str) -> Behavior:
    return attrs.evolve(FIXED, **{switch: True})


DEFECTS = {
    "D1": (only("d1_rollback_at_failed_level"), 4, bpfns.UninitializedRead, None),
    "D2": (only("d2_obj_id_unpinned"), 6, bpfns.UseAfterFree, None),
    "D3": (
        only("d3_create_returns_zero"),
        4,
        InvariantViolation,
        "D3: a create whose id allocation failed returns 0",
    ),
    "D6": (only("d6_nr_ns_unchecked"), 6, InvariantViolation, "ancestor visibility"),
}


def machine_for(behavior: Behavior, end: int) -> type[BpfnsMachine]:
    return type("M", (BpfnsMachine,), {"behavior": behavior, "id_end": end})


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_machine_finds_each_defect(defect: str) -> None:
    behavior, end, error, invariant = DEFECTS[defect]
    machine = seed(0)(machine_for(behavior, end))
    fast = settings(max_examples=1000, phases=[Phase.generate], database=None, deadline=None)
    with pytest.raises(error) as info:
        run_state_machine_as_test(machine, settings=fast)
    if invariant is not None:
        assert isinstance(info.value, InvariantViolation)
        assert info.value.invariant == invariant
    else:
        assert isinstance(info.value, KernelBug)
        assert info.value.report.defect == defect


def test_the_rfc_as_posted_fails() -> None:
    machine = seed(1)(machine_for(RFC, 4))
    fast = settings(max_examples=1000, phases=[Phase.generate], database=None, deadline=None)
    with pytest.raises((KernelBug, InvariantViolation)):
        run_state_machine_as_test(machine, settings=fast)


def test_shrunk_d1_example_is_short_and_runnable() -> None:
    behavior, end, error, _ = DEFECTS["D1"]
    machine = seed(0)(machine_for(behavior, end))
    with pytest.raises(error) as info:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=200, database=None, deadline=None, report_multiple_bugs=False
            ),
        )
    notes = "\n".join(getattr(info.value, "__notes__", []))
    # The heading differs across Hypothesis versions; the program does not.
    program = "state = M()\n" + notes.split("\nstate = M()\n", 1)[1]
    assert program.startswith("state = M()\ntasks_0 = state.boot()\n")
    steps = program.split("tasks_0 = state.boot()\n")[1].split("state.teardown()")[0]
    # At most: a child namespace, init filled up (3 ids), a create in the child.
    assert 1 <= len(steps.splitlines()) <= 6, program
    namespace: dict[str, object] = {"M": machine}
    runnable = program.split("state.teardown()")[0] + "state.teardown()\n"
    with pytest.raises(error):
        exec(runnable, namespace)  # the printed program reproduces the bug


def test_importing_bpfns_testing_defines_no_tests() -> None:
    public = [name for name in dir(bpfns.testing) if name.lower().startswith("test")]
    assert public == []


# -- every rule, driven by hand (deterministic coverage of the machine) -------------------


def test_rules_by_hand_in_fixed() -> None:
    class Small(BpfnsMachine):
        id_end = 3
        max_level = 1
        initial_objects = 1

    m = Small()
    init = m.boot()
    assert m.k.init_ns.idr[ObjType.MAP].ids() == [1]  # the initial object
    child = m.clone(parent=init, new_ns=True)
    m.clone(parent=child, new_ns=True)  # level 2 > max_level 1: ENOSPC, as expected
    m.unshare(task=child)  # at max_level: skipped
    sib = m.clone(parent=init, new_ns=False)
    m.unshare(task=sib)
    fd_map = m.map_create(task=child)
    assert isinstance(fd_map, FdRef)
    m.map_create(task=init)  # init's map ids are now full (1, 2)
    failed = m.map_create(task=child)  # ENOSPC at level 0, rolled back
    assert not isinstance(failed, FdRef)
    m.map_create_failing(task=child, n=2)  # ENOMEM at the child's level
    prog = m.prog_load(map_fd=fd_map)
    assert isinstance(prog, FdRef)
    m.prog_load(map_fd=prog)  # not a map: skipped
    link = m.link_create(prog_fd=prog)
    assert isinstance(link, FdRef)
    m.link_create(prog_fd=fd_map)  # not a program: skipped
    m.link_create(prog_fd=prog)  # link ids {1, 2} fill up: fine, then ENOSPC later
    m.link_create(prog_fd=prog)
    m.pin(ref=fd_map, slot=0)
    m.pin(ref=fd_map, slot=0)  # taken: skipped
    got = m.obj_get(task=sib, slot=0)
    assert isinstance(got, FdRef)
    m.obj_get(task=sib, slot=1)  # nothing pinned there
    ns_fd = m.open_ns(task=child)
    m.pin(ref=ns_fd, slot=1)  # not a BPF object: skipped
    m.info(ref=ns_fd)  # skipped
    m.info(ref=fd_map)
    sent = m.send(ref=fd_map, to=sib)
    m.walk(task=child, t=ObjType.MAP, start=0)
    m.walk(task=init, t=ObjType.PROG, start=0)
    m.get_fd_by_id(task=child, t=ObjType.MAP, nr=1)
    m.get_fd_by_id(task=child, t=ObjType.MAP, nr=7)  # ENOENT, as the model says
    m.close(ref=ns_fd)
    m.close(ref=prog)  # the link still holds the program
    m.close(ref=sent)
    m.unpin(task=init, slot=0)
    m.unpin(task=init, slot=0)  # already gone: skipped
    m.exit(task=child)  # closes the rest; its namespace goes once its objects do
    m.grace_period()
    # Everything the child held is gone; rules on its stale refs do nothing.
    for rule_call in (
        lambda: m.close(ref=fd_map),
        lambda: m.send(ref=fd_map, to=init),
        lambda: m.info(ref=fd_map),
        lambda: m.prog_load(map_fd=fd_map),
        lambda: m.link_create(prog_fd=link),
        lambda: m.pin(ref=fd_map, slot=2),
        lambda: m.clone(parent=child, new_ns=False),
        lambda: m.unshare(task=child),
        lambda: m.open_ns(task=child),
        lambda: m.map_create(task=child),
        lambda: m.map_create_failing(task=child, n=1),
        lambda: m.walk(task=child, t=ObjType.LINK, start=0),
        lambda: m.get_fd_by_id(task=child, t=ObjType.LINK, nr=1),
        lambda: m.unpin(task=child, slot=0),
        lambda: m.obj_get(task=child, slot=0),
        lambda: m.exit(task=child),
        lambda: m.send(ref=got, to=child),
    ):
        rule_call()
    assert m.exit(task=init) is init  # init never exits
    m.teardown()


def test_walk_stops_at_its_limit() -> None:
    class Wide(BpfnsMachine):
        id_end = 20

    m = Wide()
    init = m.boot()
    for _ in range(10):
        m.map_create(task=init)
    m.walk(task=init, t=ObjType.MAP, start=0)  # 8 of 10 ids, compared with the model


@pytest.mark.bpfns_corrupts
def test_violations_name_their_invariant() -> None:
    m = FixedMachine()
    init = m.boot()
    fd = m.map_create(task=init)
    assert isinstance(fd, FdRef)
    obj = init._fdget(fd.fd).obj
    obj.refcnt += 1  # corrupt the kernel behind the machine's back
    with pytest.raises(InvariantViolation, match="refcounts balanced"):
        m.pin(ref=fd, slot=0)


def test_teardown_skips_the_full_check_on_a_tainted_kernel() -> None:
    class Rfc(BpfnsMachine):
        behavior = RFC
        id_end = 2

    m = Rfc()
    init = m.boot()
    m.map_create(task=init)
    with pytest.raises(bpfns.UninitializedRead):
        m.map_create(task=init)
    m.teardown()  # would fail k.check(); the kernel is tainted, so it is skipped


@pytest.mark.bpfns_corrupts
def test_walk_violation_is_named() -> None:
    m = FixedMachine()
    init = m.boot()
    m.map_create(task=init)
    m.map_create(task=init)
    m.k.init_ns.idr[ObjType.MAP].remove(1)  # behind the machine's back
    with pytest.raises(InvariantViolation, match="GET_NEXT_ID lists"):
        m.walk(task=init, t=ObjType.MAP, start=0)


@pytest.mark.bpfns_corrupts
def test_ucount_violation_is_named() -> None:
    m = FixedMachine()
    init = m.boot()
    m.clone(parent=init, new_ns=True)
    m.k.init_user_ns.set_max(bpfns.UcountType.BPF_NAMESPACES, 10)
    (uc,) = [u for u in bpfns._ucount.all_ucounts(m.k.init_user_ns) if u.uid == 0]
    uc.counts[bpfns.UcountType.BPF_NAMESPACES] += 1  # behind the machine's back
    with pytest.raises(InvariantViolation, match="ucounts balanced"):
        m.grace_period()


def test_new_rules_by_hand() -> None:
    """User namespaces, primers, late faults, refused calls, the leftovers teardown."""
    from bpfns import FaultSite  # noqa: PLC0415
    from bpfns.testing import errorcode_of  # noqa: PLC0415

    m = FixedMachine()
    init = m.boot()
    user = m.clone_user(parent=init)
    assert isinstance(user, bpfns.Task) and not user.capable(bpfns.Cap.CAP_SYS_ADMIN)
    assert not isinstance(m.map_create(task=user), FdRef)  # EPERM, as the model says
    m.walk(task=user, t=ObjType.MAP, start=0)  # EPERM
    m.get_fd_by_id(task=user, t=ObjType.MAP, nr=1)  # EPERM
    fd_map = m.map_create(task=init)
    assert isinstance(fd_map, FdRef)
    prog = m.prog_load(map_fd=fd_map)
    assert isinstance(prog, FdRef)
    for late in (FaultSite.BPF_OBJECT, FaultSite.FILE):
        assert not isinstance(m.create_failing_late(held=fd_map, late=late, prog=False), FdRef)
        assert not isinstance(m.create_failing_late(held=fd_map, late=late, prog=True), FdRef)
    m.grace_period()  # the program that failed late releases its map
    m.close(ref=fd_map)  # refcounts still agree with the model
    primed = m.prime(prog_fd=prog)
    assert isinstance(primed, bpfns.testing.Primed)
    m.get_fd_by_id(task=init, t=ObjType.LINK, nr=1)  # EAGAIN until settled
    child = m.clone(parent=init, new_ns=False)
    assert m.exit(task=init) is init
    settled = m.settle(primed=primed)
    assert isinstance(settled, FdRef)
    again = m.prime(prog_fd=prog)
    m.cleanup(primed=again)
    m.clone_failing(parent=init, new_ns=True, n=3)  # an allocation of the clone fails
    assert isinstance(m.clone_failing(parent=init, new_ns=False, n=50), bpfns.Task)  # none
    m.clone_failing(parent=init, new_ns=True, n=50)
    for which in range(len(bpfns.testing._misuse.MISUSES)):
        m.misuse(task=child, which=which)
    m.exit(task=child)
    for dead in (
        lambda: m.clone_user(parent=child),
        lambda: m.clone_failing(parent=child, new_ns=False, n=1),
        lambda: m.misuse(task=child, which=0),
        lambda: m.create_failing_late(held=fd_map, late=FaultSite.FILE, prog=False),
        lambda: m.prime(prog_fd=fd_map),
    ):
        dead()
    assert errorcode_of(lambda: init.close(99)) == "EBADF"
    m.teardown()
    assert m.k.leftovers() == [] and m.k.tasks() == []


def test_a_prime_that_fails_matches_the_model() -> None:
    class Tiny(BpfnsMachine):
        id_end = 2  # one link id

    m = Tiny()
    init = m.boot()
    prog = m.prog_load(map_fd=m.map_create(task=init))
    assert isinstance(m.prime(prog_fd=prog), bpfns.testing.Primed)
    assert not isinstance(m.prime(prog_fd=prog), bpfns.testing.Primed)  # ENOSPC
    m.teardown()


def test_an_accepted_misuse_is_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    m = FixedMachine()
    init = m.boot()
    monkeypatch.setattr(bpfns.testing._machine, "run_misuse", lambda which, task, other: None)
    with pytest.raises(InvariantViolation, match="bad input gets a clear error"):
        m.misuse(task=init, which=0)


def test_the_teardown_checks_can_be_turned_off() -> None:
    class Quiet(BpfnsMachine):
        check_at_teardown = False
        check_leftovers = False
        initial_objects = 2  # a big world: refused calls are checked locally

    m = Quiet()
    init = m.boot()
    m.misuse(task=init, which=2)
    m.teardown()
    assert m.k.tasks()  # nothing was torn down


@pytest.mark.bpfns_corrupts
def test_a_leak_at_teardown_is_named() -> None:
    m = FixedMachine()
    m.boot()
    m.k.init_ns.create_child()  # a reference nobody puts
    with pytest.raises(InvariantViolation, match="nothing leaks"):
        m.teardown()
