"""Every citation a reader meets resolves inside the repository.

Docstrings, docs, notebooks and the README cite the project's own pages by section
("semantics §2.3", "kernel rules §A.4") or a kernel function and its source file; no
text points at a specification outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "semantics": ROOT / "docs/explanation/semantics.md",
    "kernel rules": ROOT / "docs/explanation/kernel-rules.md",
}
READ = [
    *sorted((ROOT / "src").rglob("*.py")),
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "docs").rglob("*.rst")),
    *sorted((ROOT / "docs/notebooks").glob("*.ipynb")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted(p for p in (ROOT / "tests").glob("*.py") if p.name != "test_citations.py"),
    ROOT / "README.md",
]
SECTION = r"[A-H](?:\.\d+)?|\d(?:\.\d)?"


def sections(page: Path) -> set[str]:
    """The section numbers of a page's headings: '2.3', 'A.4', 'C', '1'."""
    found = set()
    for line in page.read_text().splitlines():
        heading = re.match(rf"^#+ ({SECTION})[. ]", line)
        if heading:
            found.add(heading.group(1).rstrip("."))
    return found


def citations(text: str) -> list[tuple[str, str]]:
    """(page, section) for every 'semantics §2.3' / 'kernel rules §A.1-A.8, §B'."""
    out = []
    for match in re.finditer(
        rf"(semantics|kernel rules) ((?:§(?:{SECTION})(?:-[A-H]?\.?\d+)?(?:, | and )?)+)", text
    ):
        for number in re.findall(rf"§({SECTION})(?:-([A-H]?\.?\d+))?", match.group(2)):
            out.append((match.group(1), number[0]))
            if number[1]:
                last = (
                    number[1]
                    if "." in number[1] or "." not in number[0]
                    else number[0].split(".")[0] + "." + number[1]
                )
                out.append((match.group(1), last.lstrip(".")))
    return out


def test_the_pages_have_the_sections_the_code_cites() -> None:
    assert {"1", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7", "2.8"} <= sections(
        PAGES["semantics"]
    )
    assert {"A", "A.1", "A.4", "A.9", "B", "C", "C.2", "C.10", "D", "E.3", "F"} <= sections(
        PAGES["kernel rules"]
    )


@pytest.mark.parametrize("path", READ, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_citation_resolves(path: Path) -> None:
    text = path.read_text()
    outside = re.findall(
        r"\.\./shared|shared/spec|\b(?:rfc|kernel)\.md [\dA-H]|kernel\.md\b", text
    )
    assert outside == [], f"{path}: cite the docs pages (semantics §N, kernel rules §X) instead"
    for page, number in citations(text):
        assert number in sections(PAGES[page]), f"{path}: {page} §{number} is no section"


def test_the_citation_parser_reads_ranges_and_lists() -> None:
    assert citations("(kernel rules §A.1-A.8, §B) and semantics §2.2 and §2.3") == [
        ("kernel rules", "A.1"),
        ("kernel rules", "A.8"),
        ("kernel rules", "B"),
        ("semantics", "2.2"),
        ("semantics", "2.3"),
    ]
