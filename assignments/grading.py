"""Grade notebooks: run a submission's code cells in a fresh process, then point-weighted checks on what it defined.

A grader module declares its checks with :func:`check`; :func:`main` is its command line. Each submission
runs in a child process forked from the grader (``torch`` and ``ebmlib`` imported once, before the fork), so a
crash, an infinite loop or a ``sys.exit`` in a student's code costs that submission points and never stops
the grader. Inside the child every cell and every check has its own time limit.

This file is also the first half of every built ``grader.py`` (``assignments.build`` appends an
assignment's checks to it), so it imports nothing from this repository.
"""
import argparse
import contextlib
import io
import json
import multiprocessing
import os
import signal
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

CHECKS = []


@dataclass
class Check:
    """One graded check: ``run(ns)`` raises (usually AssertionError) when the submission fails it."""

    name: str
    exercise: str
    points: int
    run: object


@dataclass
class Result:
    """The outcome of one check on one submission; ``message`` is the first line of the failure."""

    name: str
    exercise: str
    points: int
    passed: bool
    message: str = ""

    @property
    def earned(self):
        return self.points if self.passed else 0


def check(exercise, points):
    """Register the decorated function ``f(ns)`` as a check worth ``points`` for ``exercise``.

    ``ns`` is the submission's namespace (a dict). The check's docstring's first line names it in the table.
    """
    if not isinstance(points, int) or points <= 0:
        raise ValueError(f"points must be a positive int, got {points!r}")

    def register(f):
        name = (f.__doc__ or f.__name__).strip().splitlines()[0]
        CHECKS.append(Check(name, exercise, points, f))
        return f

    return register


def student_function(ns, name):
    """The submission's function ``name``, or an AssertionError that says it is missing."""
    f = ns.get(name)
    assert callable(f), f"the notebook defines no function {name!r}"
    return f


def number(value):
    """A submission's scalar as a Python float: a 0-d tensor (detached first), a numpy scalar, or a float."""
    if hasattr(value, "detach"):
        value = value.detach()
    return float(value.item() if hasattr(value, "item") else value)


class TimeLimit(Exception):
    """A cell or a check ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise :class:`TimeLimit` in the main thread after ``seconds`` (a Python-level loop is interrupted)."""
    def expire(signum, frame):
        raise TimeLimit(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def code_cells(path):
    """The sources of a notebook's code cells (shell escapes and IPython magics dropped: plain Python runs them)."""
    notebook = json.loads(Path(path).read_text())
    if "cells" not in notebook:
        raise ValueError(f"{path} is not a Jupyter notebook (no 'cells'); submit the .ipynb file")
    sources = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        sources.append("\n".join(lines))
    return sources


def one_line(error):
    """``Type: message`` on one line, as the table shows a failure."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def run_submission(path, checks, cell_seconds, check_seconds):
    """Run the notebook's cells (errors noted, later cells still run), then every check; returns Results."""
    ns = {"__name__": "__main__"}
    cell_errors = []
    sys.stdin = open(os.devnull)  # an input() in a cell reads nothing instead of waiting for the time limit
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for i, source in enumerate(code_cells(path)):
            try:
                with time_limit(cell_seconds):
                    exec(compile(source, f"<cell {i + 1}>", "exec"), ns)
            except BaseException as error:  # a student's SystemExit or KeyboardInterrupt is an error too
                cell_errors.append(f"cell {i + 1}: {one_line(error)}")
        results = []
        for c in checks:
            try:
                with time_limit(check_seconds):
                    c.run(ns)
                results.append(Result(c.name, c.exercise, c.points, True))
            except BaseException as error:
                results.append(Result(c.name, c.exercise, c.points, False, one_line(error)))
    return results, cell_errors


def _child(path, checks, cell_seconds, check_seconds, conn):
    if "torch" in sys.modules:
        # one thread a submission: the checks use small tensors, and on a shared machine idle threads spinning
        # in torch's parallel sections cost far more than they save (ten times, measured on 2 busy cores)
        sys.modules["torch"].set_num_threads(1)
    try:
        conn.send(("ok",) + run_submission(path, checks, cell_seconds, check_seconds))
    except BaseException:
        conn.send(("error", traceback.format_exc().strip().splitlines()[-1]))
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers or buffers of the student's code run in the child


def grade(path, checks=None, *, timeout=300, cell_seconds=60, check_seconds=60):
    """Grade one notebook in a forked child process; returns (results, notes).

    When the child dies or runs past ``timeout`` seconds, every check fails with the reason; ``notes``
    lists the cells that raised (a stub's NotImplementedError among them).
    """
    checks = CHECKS if checks is None else checks
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(path, checks, cell_seconds, check_seconds, send))
    child.start()
    send.close()
    reply = ("error", f"the submission ran past {timeout} s")
    if receive.poll(timeout):
        try:
            reply = receive.recv()
        except EOFError:
            reply = ("error", "the submission's process died (a crash in compiled code, or out of memory)")
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()
    if reply[0] == "ok":
        return reply[1], reply[2]
    return [Result(c.name, c.exercise, c.points, False, reply[1]) for c in checks], [reply[1]]


def score(results):
    """(points earned, points possible)."""
    return sum(r.earned for r in results), sum(r.points for r in results)


def table(title, results, notes=()):
    """The grade as text: one row a check (points, passed or the failure's one line), then the total."""
    width = max([len(r.name) for r in results] + [5])
    lines = [title, f"{'check':<{width}}  {'points':>6}  result"]
    for r in results:
        outcome = "passed" if r.passed else f"FAILED  {r.message}"
        lines.append(f"{r.name:<{width}}  {f'{r.earned}/{r.points}':>6}  {outcome}")
    earned, possible = score(results)
    lines.append(f"{'total':<{width}}  {f'{earned}/{possible}':>6}")
    lines += [f"  note: {note}" for note in notes]
    return "\n".join(lines)


def main(argv=None, checks=None, assignment=None):
    """Command line: grade each notebook given, print its table, optionally write all results as JSON."""
    parser = argparse.ArgumentParser(description=f"Grade submissions of {assignment or 'an assignment'}.")
    parser.add_argument("notebooks", nargs="+", help="submitted .ipynb files")
    parser.add_argument("--json", help="write every submission's results to this file")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per submission (default 300)")
    parser.add_argument("--quiet", action="store_true", help="print one line per submission")
    args = parser.parse_args(argv)
    missing = [n for n in args.notebooks if not Path(n).is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    os.environ.setdefault("MPLBACKEND", "agg")
    report = {}
    for path in args.notebooks:
        results, notes = grade(path, checks, timeout=args.timeout)
        earned, possible = score(results)
        report[path] = {"earned": earned, "possible": possible, "results": [asdict(r) for r in results],
                        "notes": notes}
        print(f"{path}: {earned}/{possible}" if args.quiet else table(f"== {path}", results, notes) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0
