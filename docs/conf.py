"""Sphinx configuration of liprobe's documentation (``make docs``).

The API reference is built from the docstrings (numpydoc style) with autodoc
and autosummary; Markdown pages (architecture.md, cli.md) are read by
myst-parser. Nothing here reaches the network: no intersphinx, no theme that
fetches assets (the default alabaster theme ships its own), no remote images.
"""

import os
import sys
import warnings

from sphinx.util import logging

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "src"))   # the source, installed or not

import liprobe  # noqa: E402

# numpydoc reports a malformed docstring (an unknown section, ...) with Python's
# warnings, which sphinx-build -W does not see: pass them to Sphinx's log, so that
# they fail the build like any other warning.
_log = logging.getLogger("numpydoc")
_show = warnings.showwarning


def _numpydoc_to_sphinx(message, category, filename, lineno, file=None, line=None):
    if "numpydoc" in os.fspath(filename):
        _log.warning("numpydoc: %s", message)
    else:
        _show(message, category, filename, lineno, file, line)


warnings.showwarning = _numpydoc_to_sphinx
warnings.filterwarnings("always", category=UserWarning, module="numpydoc")

project = "liprobe"
author = "the liprobe authors"
copyright = "the liprobe authors, BSD-3-Clause"
version = release = liprobe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []

# -- autodoc / autosummary -----------------------------------------------------
autosummary_generate = False          # the API pages are written by hand, one per layer
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
add_module_names = False

# -- numpydoc ------------------------------------------------------------------
numpydoc_show_class_members = False   # members are documented by autodoc itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- myst (Markdown pages) -------------------------------------------------------
myst_heading_anchors = 3
myst_enable_extensions = []

# -- HTML: the default theme, which ships its own assets (no fonts or scripts from
# elsewhere); no sphinx.ext.mathjax either, as MathJax would load from a CDN.
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Atom probe tomography of battery materials"}
html_show_sourcelink = False
