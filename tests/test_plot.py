"""Figures: importing ``ebmlib.plot`` changes no matplotlib setting, the course's style applies only where asked,
and the drawing helpers draw what they say on an Agg figure."""
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ebmlib import plot, toy

ROOT = Path(__file__).resolve().parent.parent

# In a fresh interpreter: matplotlib's settings before and after importing ebmlib.plot, and its defaults.
PROBE = """
import json, matplotlib, matplotlib.pyplot
before = {k: repr(v) for k, v in matplotlib.rcParams.items()}
import ebmlib.plot
after = {k: repr(v) for k, v in matplotlib.rcParams.items()}
style = {k: [repr(matplotlib.rcParams[k]), repr(matplotlib.rcParamsDefault[k])] for k in ebmlib.plot.STYLE}
print(json.dumps({"changed": sorted(k for k in before if before[k] != after[k]), "style": style}))
"""


def test_importing_plot_changes_no_matplotlib_setting():
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout.splitlines()[-1])
    assert probe["changed"] == []
    for key, (now, default) in probe["style"].items():
        assert now == default, f"{key} is {now} after importing ebmlib.plot, matplotlib's default is {default}"


def test_style_applies_inside_the_block_only():
    before = {k: matplotlib.rcParams[k] for k in plot.STYLE}
    assert before != plot.STYLE, "the test needs settings that the style changes"
    with plot.style():
        assert {k: matplotlib.rcParams[k] for k in plot.STYLE} == plot.STYLE
    assert {k: matplotlib.rcParams[k] for k in plot.STYLE} == before


def test_use_style_applies_the_style_from_then_on():
    with matplotlib.rc_context():  # put back whatever use_style changes
        plot.use_style()
        assert {k: matplotlib.rcParams[k] for k in plot.STYLE} == plot.STYLE


@pytest.fixture
def ax():
    fig = Figure()
    FigureCanvasAgg(fig)
    yield fig.add_subplot()
    fig.canvas.draw()  # every helper's output must render


def test_scatter_and_grid_scatter(ax):
    x = toy.sample_grid25(100, torch.Generator().manual_seed(0))
    assert plot.grid_scatter(ax, x, title="data") is ax
    points, centres = ax.collections
    assert points.get_offsets().shape == (100, 2) and centres.get_offsets().shape == (25, 2)
    assert ax.get_xlim() == ax.get_ylim() == (-2.8, 2.8) and ax.get_title() == "data"


def test_contour_draws_the_function_over_the_square(ax):
    cs = plot.contour(ax, lambda x: (x ** 2).sum(dim=1), lim=2.0, n=50, levels=10)
    assert cs.levels.min() <= 0.0 and cs.levels.max() >= 8.0  # |x|^2 from 0 at the centre to 8 at a corner


def test_hist_vs_density_and_chain_paths(ax):
    samples = torch.randn(500, 1, generator=torch.Generator().manual_seed(0))
    plot.hist_vs_density(ax, samples, lambda x: -0.5 * x ** 2 - 0.5 * torch.log(torch.tensor(2 * torch.pi)),
                         label="N(0, 1)", bins=20)
    assert len(ax.patches) == 20 and len(ax.lines) == 1
    snapshots = [(step, torch.full((12, 2), float(step))) for step in range(4)]
    plot.chain_paths(ax, snapshots, chains=5)
    assert len(ax.lines) == 1 + 5 and len(ax.lines[-1].get_xdata()) == 4
