"""A "Run this chapter" box under each chapter's title, saying which commands run it.

The box is added to the parsed page, so the chapters' notebooks stay exactly as they are committed.
"""
from pathlib import PurePosixPath

from docutils import nodes

CHAPTER_FOLDER = "chapters"


def run_commands(notebook):
    """The shell lines that run the chapter ``notebook`` (a path such as chapters/05_ddls.ipynb)."""
    return (
        "make setup               # once: .venv with ebmlib and JupyterLab\n"
        f"make lab                 # then open {notebook}\n"
        "EBMLIB_SMOKE=1 make lab  # smoke mode, as CI runs it: fewer steps"
    )


def run_box(notebook):
    """The admonition node for the chapter ``notebook``."""
    box = nodes.admonition(classes=["run-chapter"])
    box += nodes.title(text="Run this chapter")
    box += nodes.paragraph(text="This page shows the stored outputs of a full run. To run the chapter yourself, "
                                "from a clone of the repository:")
    box += nodes.literal_block(text=run_commands(notebook), language="bash")
    return box


def add_run_box(app, doctree):
    """Put the box right after the first title of every chapter page."""
    docname = app.env.docname
    if PurePosixPath(docname).parts[0] != CHAPTER_FOLDER:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        raise ValueError(f"{docname}: a chapter must start with a '# NN · title' heading for the run box to follow")
    section.insert(1, run_box(PurePosixPath(app.env.doc2path(docname, False)).as_posix()))


def setup(app):
    app.connect("doctree-read", add_run_box)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
