# ebm-gan: the course and its library. `make setup` then `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The torch build to install. The default is the CPU build this course is tested with; pass another
# (for example a CUDA build for the GPU chapters) with: make setup TORCH='torch==2.13.0+cu126 ...'
TORCH  ?= torch==2.13.0
CHAPTERS = $(sort $(wildcard chapters/*.ipynb))
SOLUTIONS = $(sort $(wildcard solutions/*.ipynb))
# pytest-xdist workers for `make test` (each test and notebook runs on one thread)
TEST_WORKERS ?= 2

.PHONY: setup setup-inception gpu-check test lint assignments check-assignments test-lib test-chapters book test-book lab chapters sync bench bench-gpu toy-table toy-table-extended image-table train-cifar10 ddls-cifar10 clean

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,book]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null

# FID and IS (`evaluate --features inception`): torch-fidelity and the torchvision built for the torch that
# setup installed, from that torch's own wheel index (PyPI's torchvision beside a CPU torch fails to import
# with "operator torchvision::nms does not exist"). torch is pinned to the installed one: pip keeps it or
# stops. TORCHVISION_INDEX=default takes pip's own index, or give a URL (a mirror of download.pytorch.org).
TORCHVISION_INDEX ?=
setup-inception:
	$(BIN)/python -m pip install --quiet $$($(BIN)/python -c "from ebmlib.features import torchvision_pip_args; \
	  print(*torchvision_pip_args(index='$(TORCHVISION_INDEX)'))")
	$(BIN)/python -m pip install --quiet -e ".[inception]" "torch==$$($(BIN)/python -c 'import torch; print(torch.__version__)')"
	$(BIN)/python -c "import torch, torch_fidelity, torchvision; print('torch', torch.__version__, \
	  'torchvision', torchvision.__version__, 'torch-fidelity', torch_fidelity.__version__)"

test: lint test-lib test-chapters check-assignments test-book

# pyflakes and import order (settings in pyproject.toml)
lint:
	$(BIN)/ruff check ebmlib tests chapters solutions assignments book

test-lib:
	EBMLIB_SMOKE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) tests --ignore=tests/test_book.py

# every chapter and every worked solution in smoke mode; a notebook's cells stay together on one worker
test-chapters:
	EBMLIB_SMOKE=1 MPLBACKEND=agg $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --nbval-lax \
	  --nbval-current-env -p no:cacheprovider $(CHAPTERS) $(SOLUTIONS)

# Assignments (README, "For instructors"): for each assignments/source/aNN_*.py, a student notebook with stubs,
# a solution notebook and a standalone grader.py in build/assignments/aNN_*/, recording the ebmlib version
assignments:
	$(BIN)/python -m assignments.build --out build/assignments

# Builds the assignments, then shows that every grader can fail: full marks for each solution, zero for each
# blank student notebook, and exactly one exercise's points lost by each wrong solution (assignments/wrong/)
check-assignments:
	MPLBACKEND=agg $(BIN)/python -m assignments.verify --out build/assignments

# The course as a static website in build/book/html, from the chapters' stored outputs (nothing is re-run);
# it works offline. test-book reads every page in headless Chromium (Debian's chromium package) and saves
# screenshots in build/book-screenshots.
book:
	$(BIN)/python book/build.py

test-book: book
	$(BIN)/python -m pytest tests/test_book.py

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

# the same rows plus DDLS as the paper writes it (ULA, 1,000 steps) and the WGAN rows: about 15 minutes on 2 cores
toy-table-extended:
	$(BIN)/python -m ebmlib toy-table --seeds 5 --paper-ula --wgan --json benchmarks/results/toy_table_extended_cpu.json

# Table 1 on stacked digits (about 13 minutes on 2 CPU cores): three trained pairs, five samplers each
image-table:
	$(BIN)/python -m ebmlib image-table --data stacked-digits --seeds 3 --json benchmarks/results/image_table_cpu.json

# The GPU benchmark: SN-GAN training and DDLS throughput, true fp32 eager (TF32 off) and default eager against
# the optimized path (for DDLS: exactly the call that `sample` makes).
# DEVICE names the result file, for example: make bench-gpu DEVICE=h100
DEVICE ?= gpu
bench-gpu:
	$(BIN)/python -m ebmlib bench --json benchmarks/results/gpu_$(DEVICE).json

bench: toy-table image-table bench-gpu

# Everything the CPU cannot show, in one call of under 9 minutes on the GPU machine: the CUDA tests, the
# benchmark, train -> resume -> calibrate -> every sampler -> evaluate on the tiny data set, and a training-
# speed probe. Writes gpu_check_<gpu name>.json and .log into GPU_CHECK_OUT; commit the JSON. Stages that
# fail are recorded and the rest still run. GPU_CHECK_ARGS: e.g. --dry-run (the CPU form, tiny sizes).
GPU_CHECK_OUT ?= benchmarks/results
GPU_CHECK_ARGS ?=
gpu-check:
	$(BIN)/python -m ebmlib gpu-check --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

# The DDLS paper's CIFAR-10 pipeline (a GPU and the real CIFAR-10 in ./data or $$EBMLIB_DATA).
# train-cifar10: SN-GAN standard CNN, 100k generator steps, n_dis 5, batch 64, Adam 2e-4 (0, 0.9),
# linear decay, EMA; resumes from runs/sngan/checkpoint.pt when interrupted.
RUN ?= runs/sngan
train-cifar10:
	$(BIN)/python -m ebmlib train --run $(RUN) --arch cnn

# ddls-cifar10: calibrate D against the frozen G, draw 50k samples with the generator, DRS, DDLS
# (1000 steps, step size 0.01, bf16) and DOT (latent space, 100 Adam steps), and score them (classifier
# features; add FEATURES=inception with the FID Inception weights in $$EBMLIB_INCEPTION_WEIGHTS for FID
# and IS).
FEATURES ?= classifier
ddls-cifar10:
	$(BIN)/python -m ebmlib calibrate --run $(RUN)
	$(BIN)/python -m ebmlib sample --run $(RUN) --sampler generator --n 50000
	$(BIN)/python -m ebmlib sample --run $(RUN) --sampler drs --n 50000
	$(BIN)/python -m ebmlib sample --run $(RUN) --sampler ddls --n 50000
	$(BIN)/python -m ebmlib sample --run $(RUN) --sampler dot --n 50000
	$(BIN)/python -m ebmlib evaluate $(RUN)/samples_generator.pt $(RUN)/samples_drs.pt $(RUN)/samples_ddls.pt \
	  $(RUN)/samples_dot.pt --features $(FEATURES) --json $(RUN)/scores_$(FEATURES).json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
