# ebm-gan: the course and its library. `make setup` then `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The torch build to install. The default is the CPU build this course is tested with; pass another
# (for example a CUDA build for the GPU chapters) with: make setup TORCH='torch==2.13.0+cu126 ...'
TORCH  ?= torch==2.13.0
CHAPTERS = $(sort $(wildcard chapters/*.ipynb))

.PHONY: setup test test-lib test-chapters lab chapters sync bench toy-table clean

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null

test: test-lib test-chapters

test-lib:
	EBMLIB_SMOKE=1 $(BIN)/python -m pytest tests

test-chapters:
	EBMLIB_SMOKE=1 MPLBACKEND=agg $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider $(CHAPTERS)

lab:
	$(BIN)/jupyter lab chapters

# Re-run every chapter in full mode and store its outputs in the .ipynb (then re-pair the .py).
chapters:
	for nb in $(CHAPTERS); do \
	  $(BIN)/jupytext --sync $${nb%.ipynb}.py && \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 $$nb && \
	  $(BIN)/jupytext --sync $$nb || exit 1; \
	done

# After editing a chapter's .py, bring its .ipynb up to date (outputs kept where cells did not change).
sync:
	$(BIN)/jupytext --sync chapters/*.py

toy-table:
	$(BIN)/python -m ebmlib toy-table --seeds 5 --json benchmarks/results/toy_table_cpu.json

bench: toy-table

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
