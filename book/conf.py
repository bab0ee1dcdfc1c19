"""Sphinx configuration of the course's website (built by book/build.py from a staged copy of this folder).

Everything a page needs is served from the site itself: notebooks are read with their stored outputs
(never executed), MathJax comes from the sphinx-mathjax-offline package, and widget scripts, which
would come from a CDN, are left out (the stored outputs keep their plain-text form).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "ebm-gan"
author = "the ebm-gan authors"
copyright = "the ebm-gan authors, MIT licence"
html_title = "ebm-gan: GANs as energy-based models"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static/mathjax: math typesets with no network
    "run_chapter",
    "plain_docstrings",
]

root_doc = "index"
exclude_patterns = ["**.ipynb_checkpoints"]
templates_path = ["_templates"]

# notebooks: the stored outputs of a full run, as committed
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # the default loads require.js and the widget manager from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# the API reference: one page per module, functions and classes with their signatures
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
add_module_names = False

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "light"}  # the figures are drawn on white; with no mode set the theme logs an error
