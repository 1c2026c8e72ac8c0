"""Sphinx configuration of the bpfns documentation.

Build: ``pip install -e '.[docs]' && sphinx-build -W --keep-going -b html docs docs/_build/html``.
The build needs no network: no intersphinx, and notebooks are rendered as committed
(without outputs; ``pytest`` executes them with nbmake).
"""

from __future__ import annotations

import pkgutil
from typing import Any

from sphinx.application import Sphinx
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.pycode import ModuleAnalyzer

import bpfns

project = "bpfns"
author = "The bpfns developers"
copyright = "The bpfns developers"
release = bpfns.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_nb",  # MyST Markdown (myst-parser) and notebooks
]

exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# MyST: ```{directive} fences, $ math unused; anchors for links like defects.md#d2-...
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# Notebooks are committed without outputs; the build runs them (a few seconds each) so
# that the site shows their trees, tables and pictures, and fails if one raises. The
# test suite runs them too (nbmake).
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 120

# Google-style docstrings. Attributes become :ivar: fields, so that an attrs field
# documented in the class docstring is not described twice.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = False

html_theme = "furo"
html_title = f"bpfns {release}"
html_static_path: list[str] = []


def _attribute_comments() -> dict[str, list[str]]:
    """The ``#:`` comments of every bpfns module's globals, by name.

    ``bpfns.RFC`` and the constants are defined in private modules and re-exported, so
    autodoc, looking in ``bpfns/__init__.py``, would find no comment and show the
    docstring of the value's type (``Behavior``, ``int``) instead.
    """
    docs: dict[str, list[str]] = {}
    names = [bpfns.__name__] + [
        m.name for m in pkgutil.walk_packages(bpfns.__path__, prefix="bpfns.")
    ]
    for name in names:
        for (scope, attr), lines in ModuleAnalyzer.for_module(name).find_attr_docs().items():
            if scope == "":
                docs.setdefault(attr, list(lines))
    return docs


_COMMENTS = _attribute_comments()


def _data_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Give a re-exported constant its ``#:`` comment, never its type's docstring."""
    del app, obj, options
    if what == "data":
        lines[:] = _COMMENTS.get(name.rpartition(".")[2], [])


def _summary_not_type(self: GoogleDocstring) -> tuple[str, list[str]]:
    """napoleon, for an attribute, property or constant: the whole docstring is text.

    napoleon reads the first line of such a docstring as ``type: description``; bpfns
    takes types from annotations and writes summaries with colons in them ("Whether a
    memory bug was reported: ..."), which would render as a bogus type.
    """
    lines = [self._lines.next(), *self._dedent(self._consume_to_end())]
    return "", GoogleDocstring(lines, self._config).lines()


GoogleDocstring._consume_inline_attribute = _summary_not_type  # type: ignore[method-assign]


def _preset_names(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None]:
    """Show a default of ``bpfns.RFC`` or ``bpfns.FIXED`` by name, not as its long repr."""
    del app, what, name, obj, options
    if signature is not None:
        for preset in ("RFC", "FIXED"):
            signature = signature.replace(repr(getattr(bpfns, preset)), preset)
    return signature, return_annotation


def setup(app: Sphinx) -> None:
    """Register the hooks (the docstring one before napoleon's, at 500)."""
    app.connect("autodoc-process-docstring", _data_docstring, priority=300)
    app.connect("autodoc-process-signature", _preset_names)
