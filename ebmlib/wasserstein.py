r"""The Wasserstein-1 distance: exact in 1-D, estimated by a Lipschitz critic, and WGAN pairs on toy data.

Kantorovich-Rubinstein duality:

    W1(p, q) = sup_{||f||_L <= 1}  E_p f(x) - E_q f(x).

In 1-D the distance has closed forms, through the quantile functions or the distribution functions,

    W1(p, q) = \int_0^1 |F_p^{-1}(u) - F_q^{-1}(u)| du = \int |F_p(x) - F_q(x)| dx,

and an optimal potential is f(x) = \int_{x_0}^x sign(F_q(t) - F_p(t)) dt (slope +1 where q has more
mass to the left, -1 where p has). ``train_critic`` estimates W1 with a neural critic (gradient penalty
or spectral norm). A whole WGAN on toy data, for DDLS with the critic as energy, is a recipe:
``ebmlib.recipes.wgan``.
"""
import time

import numpy as np
import torch

from ._checks import positive_int
from .losses import Wasserstein, get_loss
from .train import train_discriminator

# --- exact W1 in 1-D ------------------------------------------------------------------------------------


def w1_quantiles(quantile_p, quantile_q, n=1_000_000):
    """W1 = \\int_0^1 |F_p^{-1}(u) - F_q^{-1}(u)| du by the midpoint rule on ``n`` cells of [0, 1].

    ``quantile_p``, ``quantile_q``: quantile functions, float64 tensor (n,) of levels u in (0, 1) -> (n,).
    The midpoint rule never evaluates the (possibly infinite) end points. Error: for Gaussian-tailed
    laws the quantiles grow like sqrt(2 log(1/u)) at the ends, and the rule's error is at most of
    order sqrt(log n) / n (1.3e-7 for N(0, 1) against N(0, 4) at the default n).
    """
    positive_int(n, "n (quadrature cells)")
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    fp, fq = torch.as_tensor(quantile_p(u)), torch.as_tensor(quantile_q(u))
    if fp.shape != u.shape or fq.shape != u.shape:
        raise ValueError(f"quantile functions must map levels of shape {tuple(u.shape)} to the same shape, "
                         f"got {tuple(fp.shape)} and {tuple(fq.shape)}")
    return (fp.double() - fq.double()).abs().mean().item()


def _support(*mixtures, tail=12.0):
    lo = min((m.means - tail * m.stds).min().item() for m in mixtures)
    hi = max((m.means + tail * m.stds).max().item() for m in mixtures)
    return lo, hi


def w1_exact(p, q, n=200_001):
    """Exact W1 between two ``toy.Mixture1D`` laws: \\int |F_p(x) - F_q(x)| dx, in float64.

    The integral runs over [min mean - 12 std, max mean + 12 std] on ``n`` equally spaced points
    (trapezoid rule). Outside that range |F_p - F_q| < 1e-32; inside, |F_p - F_q| is smooth except
    for kinks where F_p = F_q, so the error is of order h^2 per kink (h the grid step): below 1e-8
    for mixtures spanning tens of units at the default ``n``.
    """
    positive_int(n, "n (grid points)")
    lo, hi = _support(p, q)
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    return torch.trapezoid((p.cdf(x) - q.cdf(x)).abs(), x).item()


def w1_empirical(x, y):
    """W1 between the empirical laws of two equal-size 1-D samples: mean |x_(i) - y_(i)| (sorted).

    ``x``, ``y``: tensors of shape (n,) or (n, 1). The optimal coupling in 1-D pairs the order
    statistics. As an estimate of W1(p, q) its error shrinks like n^{-1/2} for well-behaved laws.
    """
    x, y = (torch.as_tensor(t) for t in (x, y))
    x, y = (t.squeeze(-1) if t.dim() == 2 and t.shape[1] == 1 else t for t in (x, y))
    if x.dim() != 1 or y.dim() != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"samples must be 1-D (n,) or (n, 1) with the same n > 0, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    return (x.double().sort().values - y.double().sort().values).abs().mean().item()


def kantorovich_potential(p, q, x, n=200_001):
    """An optimal critic for ``E_p f - E_q f`` between two ``toy.Mixture1D`` laws, at the points ``x``.

    f(x) = \\int_{lo}^x sign(F_q(t) - F_p(t)) dt (slope +1 where F_q > F_p, else -1), integrated on a
    fine grid of ``n`` points over the laws' range and interpolated at ``x`` (any shape; returns a
    float64 tensor of the same shape). Defined up to an additive constant; 1-Lipschitz.
    """
    lo, hi = _support(p, q)
    t = torch.linspace(lo, hi, n, dtype=torch.float64)
    slope = torch.sign(q.cdf(t) - p.cdf(t))
    f = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(0.5 * (slope[1:] + slope[:-1]) * t.diff(), 0)])
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.from_numpy(np.interp(x.reshape(-1).numpy(), t.numpy(), f.numpy())).reshape(x.shape)


# --- a critic trained alone -----------------------------------------------------------------------------


def train_critic(D, sample_real, sample_fake, *, steps, loss="wgan-gp", batch_size=256, lr=1e-3, betas=(0.5, 0.9),
                 lr_decay=True, n_eval=100_000, seed=0, progress=None, log_every=50):
    """Train a critic D alone to maximise E_real D - E_fake D; returns the history with the W1 estimate.

    ``loss``: 'wgan-gp' (the gradient penalty keeps D near 1-Lipschitz) or 'wgan' with a spectrally
    normalised D (``MLPDiscriminator(spectral_norm=True)``), or such a loss object.
    ``sample_real(n, generator)``, ``sample_fake(n, generator)`` return (n, dim) tensors. Adam with
    ``betas``; ``lr_decay`` lowers the rate linearly to 0. In place, deterministic for a seed (CPU).

    Returns a dict: lists ``step``, ``loss`` (the D loss with its penalty), ``w1_batch`` (the batch's
    E_real D - E_fake D), every ``log_every`` steps; ``w1``: the final estimate E_real D - E_fake D
    on ``n_eval`` fresh samples of each, with D in eval mode; ``seconds``.
    """
    positive_int(n_eval, "n_eval")
    loss = get_loss(loss, wasserstein=True)
    if not isinstance(loss, Wasserstein):
        raise ValueError(f"train_critic needs a Wasserstein loss ('wgan-gp', or 'wgan' with spectral norm), "
                         f"got {getattr(loss, 'name', loss)!r}; for a logistic D use ebmlib.train.train_discriminator")
    history = train_discriminator(D, sample_real, sample_fake, steps=steps, batch_size=batch_size, lr=lr,
                                  betas=betas, lr_decay=lr_decay, seed=seed, progress=progress,
                                  log_every=log_every, loss=loss)
    history["w1_batch"] = history.pop("gap")
    start = time.perf_counter()
    history["w1"] = critic_w1(D, sample_real, sample_fake, n=n_eval, seed=seed + 1)
    history["seconds"] += time.perf_counter() - start
    return history


@torch.no_grad()
def critic_w1(D, sample_real, sample_fake, n=100_000, seed=0, batch_size=50_000):
    """The critic's W1 estimate E_real D - E_fake D on ``n`` fresh samples of each (D as it is: call
    ``D.eval()`` first for a spectrally normalised D, so that its power iteration stays put)."""
    positive_int(n, "n")
    gen = torch.Generator().manual_seed(seed)
    real, fake = sample_real(n, gen), sample_fake(n, gen)
    mean = lambda x: torch.cat([D(c) for c in x.split(batch_size)]).double().mean()  # noqa: E731
    return (mean(real) - mean(fake)).item()


__all__ = ["w1_quantiles", "w1_exact", "w1_empirical", "kantorovich_potential", "train_critic", "critic_w1"]
