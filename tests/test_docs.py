"""The documentation keeps up with the code: every public name has a reference entry,
and the teaching notebooks are committed without outputs (pytest executes them)."""

from __future__ import annotations

import json
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
