"""Figures in one style: 2-D scatter plots, energy contours, histograms against densities, chain paths.

Importing this module changes no matplotlib setting. The course's look is :data:`STYLE`, applied by
``with plot.style(): ...`` around the code that makes a figure, or for a whole notebook by
``plot.use_style()``.
"""
import matplotlib.pyplot as plt
import torch

from .toy import grid_centers

STYLE = {"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 10}


def style():
    """A context in which new figures take :data:`STYLE`; matplotlib's settings are restored on leaving it."""
    return plt.rc_context(STYLE)


def use_style():
    """Apply :data:`STYLE` from now on (what a chapter calls once, at its top)."""
    plt.rcParams.update(STYLE)


def scatter(ax, x, title=None, centers=None, lim=2.8, s=2, alpha=0.4, color="C0"):
    """Scatter (N, 2) samples on ``ax`` with a square view, optional mode centres as crosses."""
    x = x.detach().cpu()
    ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, color=color, linewidths=0)
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", color="k", s=15, linewidths=0.8)
    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def grid_scatter(ax, x, title=None):
    """Scatter on the 25-Gaussian grid with its centres marked."""
    return scatter(ax, x, title=title, centers=grid_centers())


@torch.no_grad()
def contour(ax, fn, lim=2.8, n=200, levels=30, cmap="viridis", filled=True):
    """Contours of fn: (M, 2) -> (M,) over [-lim, lim]^2; returns the contour set (for a colorbar)."""
    axis = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    values = fn(torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)).reshape(n, n)
    draw = ax.contourf if filled else ax.contour
    cs = draw(gx.numpy(), gy.numpy(), values.cpu().numpy(), levels=levels, cmap=cmap)
    ax.set_aspect("equal")
    return cs


def hist_vs_density(ax, samples, log_prob, label, lo=-4, hi=4, bins=80, color="C0"):
    """Histogram of 1-D samples (N,) or (N, 1) against the exact density exp(log_prob(x))."""
    ax.hist(samples.detach().reshape(-1).cpu().numpy(), bins=bins, range=(lo, hi), density=True,
            alpha=0.45, color=color, label=label)
    grid = torch.linspace(lo, hi, 400)
    ax.plot(grid.numpy(), log_prob(grid).exp().numpy(), color="k", lw=1.2)
    return ax


def chain_paths(ax, snapshots, chains=10, color="C3"):
    """Draw the paths of the first ``chains`` chains from a list of (step, states (N, 2)) snapshots."""
    path = torch.stack([s for _, s in snapshots])[:, :chains].cpu()
    for i in range(path.shape[1]):
        ax.plot(path[:, i, 0], path[:, i, 1], color=color, lw=0.8, alpha=0.8)
        ax.scatter(path[-1:, i, 0], path[-1:, i, 1], color=color, s=12)
    return ax
