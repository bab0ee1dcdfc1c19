"""The pairing check: every chapter, and every chapter's worked solutions, is a .py (percent format) and .ipynb
pair with the same cells."""
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS, SOLUTIONS = ROOT / "chapters", ROOT / "solutions"


def stems(folder):
    """The NN_name stems of a folder's notebooks, from either half of a pair."""
    return sorted({p.stem for pattern in ("[0-9][0-9]_*.py", "[0-9][0-9]_*.ipynb") for p in folder.glob(pattern)})


STEMS, SOLUTION_STEMS = stems(CHAPTERS), stems(SOLUTIONS)


def cells(path):
    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_chapters():
    assert len(STEMS) >= 1, f"no chapters found in {CHAPTERS}"


@pytest.mark.parametrize("folder, stem", [(CHAPTERS, s) for s in STEMS] + [(SOLUTIONS, s) for s in SOLUTION_STEMS])
def test_chapter_is_paired(folder, stem):
    py, ipynb = folder / f"{stem}.py", folder / f"{stem}.ipynb"
    assert py.exists(), f"{ipynb.name} has no paired {py.name}: run `make sync`"
    assert ipynb.exists(), f"{py.name} has no paired {ipynb.name}: run `make sync`"
    a, b = cells(py), cells(ipynb)
    assert len(a) == len(b), f"{stem}: {len(a)} cells in the .py, {len(b)} in the .ipynb: run `make sync`"
    for i, (ca, cb) in enumerate(zip(a, b)):
        assert ca == cb, f"{stem}: cell {i} differs between .py and .ipynb: run `make sync`\n{ca[1][:200]}\n---\n{cb[1][:200]}"


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_uses_smoke_switch_and_asserts(stem):
    source = (CHAPTERS / f"{stem}.py").read_text()
    assert "ebmlib" in source, f"{stem} does not import ebmlib"
    assert "assert " in source, f"{stem} checks no claim with an assert"


def test_every_chapter_has_its_worked_solutions():
    assert SOLUTION_STEMS == STEMS, f"chapters without solutions: {sorted(set(STEMS) - set(SOLUTION_STEMS))}"
