r"""The latent energy of DDLS and the calibration of a discriminator's logit.

With a standard normal prior p0, the energy whose Boltzmann distribution p_t(z) ∝ p0(z) e^{d(G(z))}
is the latent-space image of the corrected generator is

    E(z) = -log p0(z) - d(G(z)) = ||z||^2 / 2 - d(G(z)) + const.
"""
import copy
import math

import torch
from torch import nn

from ._checks import last_dim
from .nets import ACTIVATIONS, mlp
from .train import train_discriminator


def log_standard_normal(z):
    """log N(z; 0, I) for z of shape (N, k); returns (N,)."""
    return -0.5 * (z ** 2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def latent_energy(z, G, d):
    """E(z) = -log p0(z) - d(G(z)) with p0 = N(0, I), up to a constant; z (N, k) -> (N,).

    Gradients flow through both the prior term and d(G(z)) (nothing here is detached).
    """
    last_dim(z, G.latent_dim, "latent z")
    return 0.5 * (z ** 2).sum(dim=1) - check_logits(d(G(z)), len(z))


def check_logits(logits, n):
    """Return ``logits`` if it has shape (n,); otherwise a ValueError that says how to fix d."""
    if logits.shape != (n,):
        raise ValueError(f"the discriminator must return one logit per sample, shape ({n},), but returned "
                         f"{tuple(logits.shape)}; if it returns (N, 1), squeeze the last dimension")
    return logits


class _OnFrozenLogit(nn.Module):
    """A calibration model around a frozen logit ``d``: only what a subclass adds trains."""

    def __init__(self, d):
        super().__init__()
        self.d = d
        for p in self.d.parameters():
            p.requires_grad_(False)

    def train(self, mode=True):
        # the wrapped discriminator stays in eval mode: calibration fits what sits on top of it
        super().train(mode)
        self.d.eval()
        return self


class CalibratedLogit(_OnFrozenLogit):
    """A frozen logit d(x) mapped through a fitted affine head: a * d(x) + b, shape (N,).

    The head turns a discriminator trained with any loss (hinge, say) into an estimate of
    log p_data(x) / p_g(x) for the generator it was calibrated against.
    """

    def __init__(self, d):
        super().__init__(d)
        self.scale = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.scale * self.d(x) + self.bias


class ResidualLogit(_OnFrozenLogit):
    """A frozen logit plus a learned correction: d(x) + r(x), for x of shape (N, dim); returns (N,).

    r is a small MLP on random Fourier features [sin 2πxB, cos 2πxB] of x, with B (dim, ``features``)
    drawn once from N(0, ``scale``^2) (``scale`` in cycles per unit of x). Its last layer starts at
    zero, so the calibrated logit starts as d itself. The features matter in low dimensions: a log
    density ratio of narrow Gaussians is a set of steep quadratic bowls, which a ReLU net of modest
    width fits only with coarse facets (the spectral bias of MLPs, Tancik et al. 2020); sinusoids of
    many frequencies give r the sharp curvature that d lacks. Meant for low-dimensional data.
    """

    def __init__(self, d, dim, features=64, scale=1.0, hidden=128, depth=2, seed=0):
        super().__init__(d)
        freqs = torch.randn(dim, features, generator=torch.Generator().manual_seed(seed)) * scale
        self.register_buffer("freqs", freqs)
        self.r = mlp(2 * features, 1, hidden, depth, ACTIVATIONS["leaky_relu"])
        nn.init.zeros_(self.r[-1].weight), nn.init.zeros_(self.r[-1].bias)

    def forward(self, x):
        phase = 2 * math.pi * last_dim(x, self.freqs.shape[0], "x") @ self.freqs
        return self.d(x) + self.r(torch.cat([phase.sin(), phase.cos()], dim=-1)).squeeze(-1)


CALIBRATION_METHODS = ("head", "finetune", "residual")


def calibrate(d, G, sample_real, *, method="head", steps=500, batch_size=512, lr=None, lr_decay=True, seed=0,
              progress=None, residual=None):
    """Calibrate a discriminator's logit against a frozen generator G, so that d(x) ≈ log p_data/p_g.

    ``method="head"`` fits a logistic head a*d(x)+b on the frozen d (cheap, keeps d's shape);
    ``method="finetune"`` trains a copy of d with the logistic loss against samples of G, moving it
    towards the optimal discriminator for this G (the DDLS theorem's assumption). The original d's
    weights are never modified (d and G are put in eval mode). ``method="residual"`` keeps d frozen
    and fits a correction on Fourier features, d(x) + r(x) (:class:`ResidualLogit`): for
    low-dimensional data, where d's own capacity limits how sharp a ratio it can express. ``sample_real(n, generator) -> (n, dim)`` draws real data; fakes are
    G(z), z ~ N(0, I). ``lr`` defaults to 1e-2 for the head, 1e-4 for fine-tuning and 1e-3 for the
    residual; with ``lr_decay`` it falls linearly to 0 over the steps. ``residual`` is a dict of
    :class:`ResidualLogit` options (``features``, ``scale``, ``hidden``, ``depth``).
    Returns a module x (N, dim) -> calibrated logits (N,), in eval mode.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")
    G.eval(), d.eval()
    if method == "head":
        model, lr = CalibratedLogit(copy.deepcopy(d)), 1e-2 if lr is None else lr
    elif method == "residual":
        dim = sample_real(2, torch.Generator().manual_seed(seed)).shape[-1]
        model = ResidualLogit(copy.deepcopy(d), dim, **{"seed": seed, **(residual or {})})
        lr = 1e-3 if lr is None else lr
    else:
        model, lr = copy.deepcopy(d), 1e-4 if lr is None else lr
        for p in model.parameters():
            p.requires_grad_(True)

    param = next(G.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    model.to(device)

    def sample_fake(n, gen):
        with torch.no_grad():
            return G(torch.randn(n, G.latent_dim, generator=gen).to(device))

    train_discriminator(model, sample_real, sample_fake, steps=steps, batch_size=batch_size, lr=lr,
                        lr_decay=lr_decay, seed=seed, progress=progress)
    return model.eval()
