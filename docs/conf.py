"""Sphinx configuration for the skforget documentation.

Build with::

    sphinx-build -W -b html docs docs/_build/html

No network access is needed: intersphinx is deliberately not used, so references
to numpy, scipy and scikit-learn objects render as plain text.
"""

import importlib.util
import os
import re
import sys

# Build from a source checkout even when the package is not installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import skforget  # noqa: E402

# -- Project information -----------------------------------------------------
project = "skforget"
author = "skforget developers"
copyright = "skforget developers"
release = skforget.__version__
version = ".".join(release.split(".")[:2])

# -- General configuration ---------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
]

# The torch extra is optional: without it, autodoc documents skforget.torch
# against stand-ins for torch and skorch.
autodoc_mock_imports = [m for m in ("torch", "skorch") if importlib.util.find_spec(m) is None]

exclude_patterns = ["_build"]
templates_path = []
root_doc = "index"
language = "en"

# autodoc: document members in source order; show ``GaussianNB`` rather than
# ``skforget.naive_bayes._gaussian.GaussianNB`` in signatures.
autodoc_member_order = "bysource"
add_module_names = False

# numpydoc: do not generate per-class member tables (the API page lists the
# members it wants explicitly); no autosummary stubs are needed.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
# Render the ``Attributes`` section like ``Parameters`` (a definition list),
# without trying to resolve each attribute as a separately documented object.
numpydoc_attributes_as_param_list = True
# Types such as "array-like of shape (n_samples,)" stay plain text.
numpydoc_xref_param_type = False

# -- HTML output -------------------------------------------------------------
html_theme = "alabaster"
html_static_path = []
html_title = f"skforget {release}"


# -- Docstring pre-processing ------------------------------------------------
# Both handlers run before numpydoc's own ``autodoc-process-docstring`` handler
# (priority 500), on the raw numpydoc text.

# Shapes in parameter types name fitted attributes, as in scikit-learn's
# ``boolean mask of shape (n_samples_seen_,)``. In reST a word ending in "_" is
# a hyperlink reference, so escape the trailing underscore inside a shape tuple.
_SHAPE = re.compile(r"shape \(([^()]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"\b([A-Za-z]\w*?)_(?=\s*[,)]|\s*$)")


def _escape_shape(match):
    inner = _TRAILING_UNDERSCORE.sub(r"\1\\_", match.group(1))
    return f"shape ({inner})"


def _escape_shapes(app, what, name, obj, options, lines):
    lines[:] = [_SHAPE.sub(_escape_shape, line) for line in lines]


# Methods inherited from scikit-learn (``predict_proba``, ...) refer to
# scikit-learn's glossary with :term:`...`; that glossary is not part of this
# build (no intersphinx, no network), so render those terms as literals.
_TERM = re.compile(r":term:`(?:[^`<]*<)?([^`>]+)>?`")


def _sklearn_terms_as_literals(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if module == "sklearn" or module.startswith("sklearn."):
        lines[:] = [_TERM.sub(r"``\1``", line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shapes, priority=400)
    app.connect("autodoc-process-docstring", _sklearn_terms_as_literals, priority=400)
