"""The assignment kit: stubs built from marked cells, the grader's arithmetic and isolation, one version everywhere."""
import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

import ebmlib
from assignments import build, grading, verify

ROOT = Path(__file__).resolve().parent.parent

SOURCE = '''# %% [markdown]
# # A tiny assignment

# %%
def double(x):
    """Twice x."""
    ### HINT: add x to itself
    ### BEGIN SOLUTION
    return x + x
    ### END SOLUTION


# %% tags=["solution"]
print(double(21))
'''


def test_the_student_version_has_a_stub_with_the_hint():
    student = build.strip_solutions(SOURCE, student=True)
    assert "    raise NotImplementedError('add x to itself')\n" in student
    assert "return x + x" not in student and "###" not in student


def test_the_solution_version_keeps_the_code_without_markers():
    solution = build.strip_solutions(SOURCE, student=False)
    assert "    return x + x\n" in solution
    assert "###" not in solution and "NotImplementedError" not in solution


@pytest.mark.parametrize("text, problem", [
    ("### HINT: h\n### BEGIN SOLUTION\nx = 1\n", "has no ### END SOLUTION"),
    ("### END SOLUTION\n", "without ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "without a '### HINT: ...' line"),
    ("### HINT: h\nx = 1\n", "must be followed by ### BEGIN SOLUTION"),
    ("### HINT:\n### BEGIN SOLUTION\n### END SOLUTION\n", "empty hint"),
])
def test_misplaced_markers_are_refused_with_the_line(text, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        build.strip_solutions(text, where="a99.py")
    assert "a99.py:" in str(error.value)


def test_notebooks_drop_solution_cells_for_students_and_record_the_version():
    built = {"ebmlib_version": ebmlib.__version__, "git_commit": "abc"}
    student = build.notebook(SOURCE, "a99", built, student=True)
    solution = build.notebook(SOURCE, "a99", built, student=False)
    assert len(solution.cells) == len(student.cells) + 1
    assert not any("print(double(21))" in c.source for c in student.cells)
    for nb in (student, solution):
        assert nb.metadata["assignment"]["ebmlib_version"] == ebmlib.__version__
        assert f"ebmlib.__version__ != {ebmlib.__version__!r}" in nb.cells[1].source


def sample_checks():
    def passes(ns):
        assert ns["double"](2) == 4

    def fails(ns):
        assert ns["double"](2) == 5, "double(2) is not 5"

    def loops(ns):
        while True:
            pass

    return [grading.Check("passes", "double", 2, passes), grading.Check("fails", "double", 3, fails),
            grading.Check("loops", "other", 4, loops)]


def write_notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, path)
    return path


def test_score_and_table_add_up_the_points():
    results = [grading.Result("a", "x", 2, True), grading.Result("b", "x", 3, False, "AssertionError: no"),
               grading.Result("c", "y", 4, False, "TimeLimit: late")]
    assert grading.score(results) == (2, 9)
    text = grading.table("title", results)
    assert re.search(r"^b\s+0/3\s+FAILED  AssertionError: no$", text, re.MULTILINE)
    assert re.search(r"^total\s+2/9$", text, re.MULTILINE)


def test_a_submission_runs_in_a_child_that_survives_errors_exits_and_loops(tmp_path):
    path = write_notebook(tmp_path / "s.ipynb", "1 / 0", "def double(x):\n    return 2 * x", "%matplotlib inline",
                          "import sys\nsys.exit(3)")
    results, notes = grading.grade(path, sample_checks(), check_seconds=1, timeout=60)
    assert [r.passed for r in results] == [True, False, False]
    assert results[1].message == "AssertionError: double(2) is not 5"
    assert results[2].message.startswith("TimeLimit: timed out")
    assert notes == ["cell 1: ZeroDivisionError: division by zero", "cell 4: SystemExit: 3"]


def test_a_submission_that_dies_loses_every_check(tmp_path):
    path = write_notebook(tmp_path / "s.ipynb", "import os\nos._exit(1)")
    results, _ = grading.grade(path, sample_checks()[:2], timeout=60)
    assert grading.score(results) == (0, 5)
    assert all("died" in r.message for r in results)


def test_a_wrong_function_replaces_the_solutions_definition():
    nb = {"cells": [{"cell_type": "markdown", "source": "def f(): no code here"},
                    {"cell_type": "code", "source": "import math\n\n\ndef f(x):\n    return x\n\n\ny = f(1)"}]}
    patched = verify.replace_function(nb, "f", "def f(x):\n    return -x")
    assert patched["cells"][1]["source"] == "import math\n\n\ndef f(x):\n    return -x\n\n\ny = f(1)"
    assert nb["cells"][1]["source"].endswith("return x\n\n\ny = f(1)")  # the original is untouched
    with pytest.raises(ValueError, match="no code cell defines a function 'g'"):
        verify.replace_function(nb, "g", "def g(): pass")


def exercises_of(source):
    """The functions of a source whose body holds a marked solution."""
    text = source.read_text()
    return sorted(node.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)
                  and build.BEGIN in ast.get_source_segment(text, node))


@pytest.mark.parametrize("name", build.names())
def test_every_exercise_has_a_grader_and_one_wrong_solution(name):
    assert (build.GRADERS / f"{name}.py").is_file()
    wrong = sorted(w[0] for w in verify.wrong_functions(name))
    assert wrong == exercises_of(build.SOURCES / f"{name}.py")


def test_the_kit_covers_every_chapter_and_six_code_exercises():
    names = build.names()
    assert {n[1:3] for n in names} == {f"{k:02d}" for k in range(1, 10)}
    assert sum(len(exercises_of(build.SOURCES / f"{n}.py")) for n in names) >= 6


def test_one_version_in_pyproject_the_package_and_the_changelog():
    pyproject = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert re.fullmatch(r"\d+\.\d+\.\d+", ebmlib.__version__)
    assert pyproject == ebmlib.__version__ == newest.group(1)


def test_built_notebooks_and_grader_record_the_version(tmp_path):
    folder = build.build("a05_ddls", tmp_path)
    assert json.loads((folder / "built_with.json").read_text())["ebmlib_version"] == ebmlib.__version__
    assert json.loads((folder / "student.ipynb").read_text())["metadata"]["assignment"]["version"] == "student"
    grader = (folder / "grader.py").read_text()
    assert "from assignments" not in grader and "def grade(" in grader and '@check("latent_energy"' in grader
