"""The documentation keeps up with the code: every public name has a reference entry,
and the teaching notebooks are committed without outputs (pytest executes them)."""

from __future__ import annotations

import inspect
import json
import pydoc
import re
from pathlib import Path
from types import ModuleType

import pytest

import bpfns
import bpfns.concurrency
import bpfns.conformance
import bpfns.pidns
import bpfns.testing

DOCS = Path(__file__).resolve().parent.parent / "docs"
_DIRECTIVE = re.compile(r"^\.\. auto(?:class|exception|function|data|module):: ([\w.]+)", re.M)


def _documented() -> set[str]:
    """Full names given to autodoc directives in docs/reference/*.rst."""
    names: set[str] = set()
    for page in (DOCS / "reference").glob("*.rst"):
        text = page.read_text()
        current = "bpfns" if ".. currentmodule:: bpfns\n" in text else ""
        for name in _DIRECTIVE.findall(text):
            names.add(name if name.startswith("bpfns") else f"{current}.{name}")
    return names


@pytest.mark.parametrize(
    "module", [bpfns, bpfns.testing, bpfns.concurrency], ids=lambda m: m.__name__
)
def test_every_public_name_is_in_the_api_reference(module: ModuleType) -> None:
    documented = _documented()
    missing = [
        f"{module.__name__}.{name}"
        for name in module.__all__
        if f"{module.__name__}.{name}" not in documented
    ]
    assert not missing, f"add these to a page of docs/reference/ (autodoc): {missing}"


def test_pidns_and_conformance_are_documented_whole() -> None:
    documented = _documented()
    for module in (bpfns.pidns, bpfns.conformance):
        assert module.__name__ in documented
        text = (DOCS / "reference" / f"{module.__name__.split('.')[1]}.rst").read_text()
        assert ":members:" in text


def test_notebooks_are_committed_without_outputs() -> None:
    notebooks = sorted((DOCS / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == 5
    for path in notebooks:
        book = json.loads(path.read_text())
        assert book["metadata"]["kernelspec"]["name"] == "python3", path.name
        for cell in book["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [], f"{path.name}: clear the outputs"
                assert cell["execution_count"] is None, f"{path.name}: clear the outputs"


def test_notebook_01_exercise_answers_are_what_the_cells_give() -> None:
    """The answers the first notebook's "Try it yourself" states, computed in its world."""
    nb = json.loads((DOCS / "notebooks" / "01_hierarchy_and_ids.ipynb").read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    world: dict[str, object] = {}
    for cell in cells[:4]:  # the kernel, the tree, (the picture), the maps
        exec("".join(cell["source"]), world)
    k, child_b_a = world["k"], world["child_b_a"]
    assert isinstance(k, bpfns.Kernel) and isinstance(child_b_a, bpfns.Namespace)
    prog = k.alloc_obj_id(child_b_a, "prog", bpfns.ObjType.PROG)
    assert [e.nr for e in prog.numbers] == [1, 1, 1]
    second = k.alloc_obj_id(child_b_a, "second", bpfns.ObjType.MAP)
    assert [e.nr for e in second.numbers] == [4, 2, 1]  # init 4, child_b 2, child_b_a 1
    exercise = "".join(
        next(c for c in nb["cells"] if "Try it yourself" in "".join(c["source"]))["source"]
    )
    assert "1 at every level" in exercise and "`child_b` 2" in exercise and "4?" in exercise


def test_help_of_kernel_documents_every_public_attribute_and_hides_private_parameters() -> None:
    text = pydoc.render_doc(bpfns.Kernel, renderer=pydoc.plaintext)
    assert "_nested" not in text
    section = text.split("Attributes:", 1)[1].split("Raises:", 1)[0]
    documented = set(re.findall(r"^ \|      (\w+): ", section, flags=re.MULTILINE))
    public = {
        name
        for name, value in inspect.getmembers(bpfns.Kernel)
        if not name.startswith("_")
        and (inspect.isdatadescriptor(value) or isinstance(value, property))
    }
    assert {"init_ns", "init_task", "bpffs", "faults", "dmesg", "audit_log"} <= public
    assert public - documented == set()
    assert len(re.findall(r"^ \|      init_task: ", section, flags=re.MULTILINE)) == 1
