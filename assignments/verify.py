"""Show that every grader can fail: `make check-assignments`.

For each assignment this builds the notebooks and the grader, then grades with the built grader

- the solution notebook: every cell must run without an error and every check must pass (full marks);
- the untouched student notebook: every check must fail (zero: all checks grade code);
- one wrong solution per code exercise, from ``assignments/wrong/<name>.py``: each function there replaces the
  solution's function of the same name (its docstring says what is wrong), and the notebook must lose exactly
  that exercise's points, no more and no fewer.

It prints one block per assignment and exits with status 1 on any mismatch.

    python -m assignments.verify [NAME ...] [--out build/assignments] [--jobs 2]
"""
import argparse
import ast
import concurrent.futures
import copy
import importlib.util
import json
import multiprocessing
import os
import sys
import time

from assignments import HERE, WRONG, names


def wrong_functions(name):
    """(function name, its source, what is wrong with it) for each function in ``assignments/wrong/<name>.py``."""
    path = WRONG / f"{name}.py"
    if not path.is_file():
        raise ValueError(f"{name} has no wrong solutions: write {path.relative_to(HERE.parent)}")
    text = path.read_text()
    tree = ast.parse(text)
    return [(node.name, ast.get_source_segment(text, node), (ast.get_docstring(node) or "").splitlines()[0])
            for node in tree.body if isinstance(node, ast.FunctionDef)]


def replace_function(notebook, name, source):
    """A copy of ``notebook`` (a dict, nbformat 4) whose code cell defining ``name`` defines it as ``source``."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                lines = text.splitlines()
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                cell["source"] = "\n".join(lines[:start] + source.splitlines() + lines[node.end_lineno:])
                return notebook
    raise ValueError(f"no code cell defines a function {name!r}")


def load_grader(path, module_name):
    """Import a built grader.py as a module (registered, so that its results pickle across the fork)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def expected_failures(checks, exercise):
    """The names of the checks a wrong ``exercise`` must fail: all of that exercise's, and only those."""
    return {c.name for c in checks if c.exercise == exercise}


def verify(name, out, timeout):
    """Build ``name``, grade its solution, blank and wrong versions; returns (ok, report lines)."""
    from assignments import build  # here, in the worker: it imports torch, which the parent never needs
    folder = build.build(name, out)
    grader = load_grader(folder / "grader.py", f"grader_{name}")
    checks = grader.CHECKS
    exercises = {c.exercise: sum(d.points for d in checks if d.exercise == c.exercise) for c in checks}
    wrongs = wrong_functions(name)
    lines, problems = [], []
    if sorted(exercises) != sorted(w[0] for w in wrongs):
        problems.append(f"the wrong solutions ({sorted(w[0] for w in wrongs)}) must be one per exercise "
                        f"({sorted(exercises)})")

    def graded(path, expect_failed, label, clean=False):
        results, notes = grader.grade(str(path), timeout=timeout)
        failed = {r.name for r in results if not r.passed}
        earned, possible = grader.score(results)
        if clean and notes:
            problems.append(f"{label}: every cell must run without an error, but: {'; '.join(notes)}")
        if failed != expect_failed:
            problems.append(f"{label}: expected to fail {sorted(expect_failed) or 'nothing'}, failed "
                            f"{sorted(failed) or 'nothing'}\n" + grader.table(f"   {path}", results, notes))
        return earned, possible

    earned, possible = graded(folder / "solution.ipynb", set(), "solution", clean=True)
    lines.append(f"  solution  {earned:>2}/{possible}  (full marks expected)")
    earned, possible = graded(folder / "student.ipynb", {c.name for c in checks}, "blank student notebook")
    lines.append(f"  blank     {earned:>2}/{possible}  (zero expected: every check grades code)")
    solution = json.loads((folder / "solution.ipynb").read_text())
    (folder / "wrong").mkdir(exist_ok=True)
    for exercise, source, mistake in wrongs:
        path = folder / "wrong" / f"{exercise}.ipynb"
        path.write_text(json.dumps(replace_function(solution, exercise, source), indent=1))
        earned, possible = graded(path, expected_failures(checks, exercise), f"wrong {exercise}")
        lines.append(f"  wrong {exercise}: loses {possible - earned} of its {exercises.get(exercise, 0)} points "
                     f"({mistake})")
    status = "ok" if not problems else "MISMATCH"
    return not problems, [f"{name}: {status}"] + lines + [f"  ! {p}" for p in problems]


def _verify_in_worker(name, out, timeout):
    try:
        return verify(name, out, timeout)
    except ValueError as error:
        return False, [f"{name}: error: {error}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Grade solutions, blank notebooks and wrong solutions.")
    parser.add_argument("names", nargs="*", help="assignments (default: all)")
    parser.add_argument("--out", default="build/assignments", help="build folder (default build/assignments)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per graded notebook (default 120)")
    args = parser.parse_args(argv)
    chosen = args.names or names()
    start = time.perf_counter()
    # each worker imports torch once and forks a child per graded notebook
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        outcomes = list(pool.map(_verify_in_worker, chosen, [args.out] * len(chosen), [args.timeout] * len(chosen)))
    for _, lines in outcomes:
        print("\n".join(lines))
    failed = [name for name, (ok, _) in zip(chosen, outcomes) if not ok]
    print(f"{len(chosen) - len(failed)} of {len(chosen)} assignments verified in {time.perf_counter() - start:.0f} s"
          + (f"; mismatches in {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
