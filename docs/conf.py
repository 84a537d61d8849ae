"""Sphinx configuration for skood's documentation (built with -W: warnings are errors)."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import skood  # noqa: E402

project = "skood"
author = "skood developers"
release = version = skood.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "results/**/*.md", "perf/*.md"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
intersphinx_mapping = {}
html_theme = "alabaster"
html_static_path = []
suppress_warnings = ["myst.header"]
