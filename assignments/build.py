"""Build the assignments: a student notebook with stubs, a solution notebook and a grader for each source.

A source, ``assignments/source/<name>.py``, is a jupytext percent-format notebook. Inside a function body

    ### HINT: what the student should do, in one line
    ### BEGIN SOLUTION
    ...the reference code...
    ### END SOLUTION

becomes, in the student notebook, ``raise NotImplementedError("<the hint>")``; the solution notebook keeps the
code without the markers. A cell tagged ``solution`` (``# %% tags=["solution"]``) appears in the solution
notebook only. The grader is ``assignments/grading.py`` followed by ``assignments/graders/<name>.py``: one
file that needs only torch and ebmlib. Every notebook records the ebmlib version (and git commit) it was
built against, as does ``built_with.json``.

    python -m assignments.build [NAME ...] [--out build/assignments]
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext

import ebmlib
from assignments import GRADERS, HERE, SOURCES, names

FRAMEWORK = HERE / "grading.py"
HINT, BEGIN, END = "### HINT:", "### BEGIN SOLUTION", "### END SOLUTION"
# the checks import the framework as a package; the built grader holds the framework itself
FRAMEWORK_IMPORT = re.compile(r"^from assignments\.grading import .*$", re.MULTILINE)


def strip_solutions(text, where="source", student=True):
    """The percent-format ``text`` with every marked solution replaced by a stub (``student``) or unmarked.

    Raises ValueError, naming ``where`` and the line, for a marker out of place: BEGIN without END, END
    without BEGIN, a HINT not followed by BEGIN, a solution without a hint.
    """
    out, hint, inside = [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        marker = line.strip()
        if marker.startswith(HINT):
            hint = marker[len(HINT):].strip()
            if not hint:
                raise ValueError(f"{where}:{number}: empty hint; write one line that tells the student what to do")
            continue
        if marker == BEGIN:
            if inside is not None:
                raise ValueError(f"{where}:{number}: {BEGIN} inside the solution begun on line {inside}")
            if hint is None:
                raise ValueError(f"{where}:{number}: {BEGIN} without a '{HINT} ...' line just above it")
            inside = number
            if student:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(f"{indent}raise NotImplementedError({hint!r})")
            hint = None
            continue
        if hint is not None:
            raise ValueError(f"{where}:{number}: a {HINT} line must be followed by {BEGIN}")
        if marker == END:
            if inside is None:
                raise ValueError(f"{where}:{number}: {END} without {BEGIN}")
            inside = None
            continue
        if inside is None or not student:
            out.append(line)
    if inside is not None:
        raise ValueError(f"{where}:{inside}: {BEGIN} has no {END}")
    return "\n".join(out) + "\n"


def provenance():
    """What the build records: the ebmlib version and, inside a git checkout, the commit (else None)."""
    try:
        # "-dirty" appended when the checkout has uncommitted changes: the sources may differ from the commit
        commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=HERE,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"ebmlib_version": ebmlib.__version__, "git_commit": commit}


def version_cell(built):
    """The first code cell of every notebook: it warns when the installed ebmlib is not the one built against."""
    version = built["ebmlib_version"]
    return jupytext.reads(
        "# %%\n"
        f"# Built against ebmlib {version}: install that release (see the course README, 'For instructors').\n"
        "import warnings\n\n"
        "import ebmlib\n\n"
        f"if ebmlib.__version__ != {version!r}:\n"
        f"    warnings.warn(f'this assignment was built against ebmlib {version}, "
        "you have {ebmlib.__version__}')\n",
        fmt="py:percent").cells[0]


def notebook(text, name, built, student):
    """The notebook for one audience from a source's text (solutions stubbed or kept, tagged cells kept or cut)."""
    nb = jupytext.reads(strip_solutions(text, f"{name}.py", student), fmt="py:percent")
    if student:
        nb.cells = [c for c in nb.cells if "solution" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)  # jupytext's layout hint for the .py, not for readers
    nb.cells.insert(1, version_cell(built))
    nb.metadata["assignment"] = {"name": name, "version": "student" if student else "solution", **built}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    return nb


def grader_source(name, built):
    """The standalone grader: the framework, then the assignment's checks (their framework import dropped)."""
    checks = FRAMEWORK_IMPORT.sub("", (GRADERS / f"{name}.py").read_text())
    return (f"# The grader of {name}, built against ebmlib {built['ebmlib_version']} (commit {built['git_commit']}).\n"
            f"# Usage: python grader.py SUBMISSION.ipynb [...] [--json FILE]\n"
            + FRAMEWORK.read_text() + "\n\n# --- the checks of " + name + " ---\n" + checks)


def build(name, out):
    """Write ``out/<name>/``: student.ipynb, solution.ipynb, grader.py, built_with.json; returns the folder."""
    source = SOURCES / f"{name}.py"
    if not source.is_file():
        raise ValueError(f"no assignment {name!r}; choose from {names()}")
    if not (GRADERS / f"{name}.py").is_file():
        raise ValueError(f"assignment {name!r} has no grader: write assignments/graders/{name}.py")
    built = provenance()
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    text = source.read_text()
    jupytext.write(notebook(text, name, built, student=True), folder / "student.ipynb")
    jupytext.write(notebook(text, name, built, student=False), folder / "solution.ipynb")
    (folder / "grader.py").write_text(grader_source(name, built))
    (folder / "built_with.json").write_text(json.dumps({"assignment": name, **built}, indent=1) + "\n")
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build student notebooks, solutions and graders.")
    parser.add_argument("names", nargs="*", help=f"assignments to build (default: all of {names()})")
    parser.add_argument("--out", default="build/assignments", help="output folder (default build/assignments)")
    args = parser.parse_args(argv)
    try:
        for name in args.names or names():
            print(f"built {build(name, args.out)}")
    except ValueError as error:
        print(f"assignments: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
