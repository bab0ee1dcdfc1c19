"""The assignment kit: sources with marked solutions, their graders and wrong solutions, the build and its proof.

``assignments.build`` writes the notebooks and graders, ``assignments.grading`` is the grading framework,
``assignments.verify`` shows that every grader can fail (``make check-assignments``).
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES, GRADERS, WRONG = HERE / "source", HERE / "graders", HERE / "wrong"


def names():
    """The assignments, by their source files' names (a01_langevin, ...)."""
    return sorted(p.stem for p in SOURCES.glob("a[0-9][0-9]_*.py"))
