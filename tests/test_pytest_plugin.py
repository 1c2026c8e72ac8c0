"""The pytest plugin (entry point ``bpfns``): the ``bpfns_kernel`` fixture and its marker."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import bpfns
import pytest_bpfns

pytest_plugins = ["pytester"]


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner pytest run with only this plugin (whatever else this environment has).

    Entry-point plugins are off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``) and the plugin is
    loaded by name, as ``-p pytest_bpfns`` would in a project that disables autoload.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        return pytester.runpytest_inprocess("-p", "pytest_bpfns", "-p", "no:cacheprovider", *args)


def test_module_level_code_runs_under_coverage() -> None:
    # pytest imported the plugin before coverage started; run its module code again.
    again = importlib.reload(pytest_bpfns)
    assert again.MARKER == "bpfns_corrupts"


def test_the_fixture_is_a_fresh_default_kernel(bpfns_kernel: bpfns.Kernel) -> None:
    assert bpfns_kernel.behavior == bpfns.RFC
    assert bpfns_kernel.leftovers() == []
    bpfns_kernel.init_task.clone(bpfns.CLONE_NEWBPF).map_create()  # teardown releases it


@pytest.mark.parametrize(
    "bpfns_kernel", [{"behavior": "fixed", "id_end": 3}, {"max_level": 2}], indirect=True
)
def test_indirect_parameters_are_kernel_options(bpfns_kernel: bpfns.Kernel) -> None:
    assert bpfns_kernel.id_end in (3, bpfns.INT_MAX)
    if bpfns_kernel.id_end == 3:
        assert bpfns_kernel.behavior == bpfns.FIXED
    else:
        assert bpfns_kernel.max_level == 2


def test_kernel_options_refuse_what_is_no_kernel_option() -> None:
    assert pytest_bpfns.kernel_options({"behavior": "rfc"})["behavior"] == bpfns.RFC
    assert pytest_bpfns.kernel_options({"behavior": bpfns.FIXED}) == {"behavior": bpfns.FIXED}
    with pytest.raises(TypeError, match="must be a dict of Kernel keyword arguments"):
        pytest_bpfns.kernel_options(["fixed"])
    with pytest.raises(TypeError, match="must be a dict"):
        pytest_bpfns.kernel_options({1: 2})
    with pytest.raises(ValueError, match="'linux' is not 'rfc' or 'fixed'"):
        pytest_bpfns.kernel_options({"behavior": "linux"})


LEAKY = """
import bpfns
import pytest

def test_clean(bpfns_kernel):
    bpfns_kernel.init_task.clone(bpfns.CLONE_NEWBPF).map_create()

def test_leaks_a_namespace_reference(bpfns_kernel):
    bpfns_kernel.init_ns.create_child(name="kept")

def test_leaks_an_id_record(bpfns_kernel):
    bpfns_kernel.alloc_obj_id(bpfns_kernel.init_ns, "mine", bpfns.ObjType.MAP)

@pytest.mark.bpfns_corrupts
def test_opts_out(bpfns_kernel):
    bpfns_kernel.init_ns.create_child(name="kept")

@pytest.mark.parametrize("bpfns_kernel", [{"behavior": "fixed", "id_end": 2}], indirect=True)
def test_small_world(bpfns_kernel):
    t = bpfns_kernel.init_task
    t.map_create()
    with pytest.raises(bpfns.BpfnsError, match="ENOSPC"):
        t.map_create()
"""


def test_teardown_fails_a_test_that_leaks_and_says_how_to_fix_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(LEAKY)
    result = run_inner(pytester, "--strict-markers")
    result.assert_outcomes(passed=5, errors=2)  # the two leaks fail at teardown
    text = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_namespace_reference*",
            "bpfns_kernel: after k.teardown() the test left 2 thing(s) behind:",
            "  namespace: <Namespace * name='kept' *",
            "  ucount: *max_bpf_namespaces=1",
            "*ERROR at teardown of test_leaks_an_id_record*",
            "bpfns_kernel: after k.teardown() the test left 1 thing(s) behind:",
            "  id record: <ObjId MAP level=0 [init_bpf_ns=1]> of 'mine'",
        ]
    )
    errors = text.split("short test summary info")[0]  # (CI prints the summary in full)
    assert errors.count("mark the test @pytest.mark.bpfns_corrupts") == 2


def test_teardown_fails_a_test_whose_kernel_reported_a_memory_bug(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import bpfns
        import pytest

        UAF = [{"on_bug": "record"}]

        def d2(k):
            child = k.init_ns.create_child()
            m = k.alloc_obj_id(child, "m", bpfns.ObjType.MAP)
            child.put()
            k.synchronize_rcu()
            k.free_obj_id(m, bpfns.ObjType.MAP)  # D2, recorded instead of raised

        @pytest.mark.parametrize("bpfns_kernel", UAF, indirect=True)
        def test_hits_d2(bpfns_kernel):
            d2(bpfns_kernel)

        @pytest.mark.bpfns_corrupts
        @pytest.mark.parametrize("bpfns_kernel", UAF, indirect=True)
        def test_shows_d2(bpfns_kernel):
            d2(bpfns_kernel)
            assert bpfns_kernel.tainted
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_hits_d2*",
            "bpfns_kernel: the sanitizer reported 2 memory bug(s):",
            "  BUG: KASAN: slab-use-after-free in bpf_free_obj_id (D2*idr_remove*",
            "  BUG: KASAN: slab-use-after-free in bpf_free_obj_id (D2*obj_id_cachep*",
        ]
    )


def test_the_how_to_example_passes(pytester: pytest.Pytester) -> None:
    howto = Path(__file__).resolve().parent.parent / "docs/howto/test-your-tool.md"
    text = howto.read_text()
    section = text[text.index("## 5. The `bpfns_kernel` fixture") :]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(block)
    result = run_inner(pytester, "--strict-markers")
    result.assert_outcomes(passed=3)
