r"""The latent energy of DDLS and the calibration of a discriminator's logit.

With a standard normal prior p0, the energy whose Boltzmann distribution p_t(z) ∝ p0(z) e^{d(G(z))}
is the latent-space image of the corrected generator is

    E(z) = -log p0(z) - d(G(z)) = ||z||^2 / 2 - d(G(z)) + const.
"""
import copy
import math

import torch
from torch import nn

from . import checkpoint as ckpt
from ._checks import last_dim
from ._files import torch_save
from ._runtime import at_least_fp32, module_device
from .nets import ACTIVATIONS, mlp
from .train import train_discriminator

CALIBRATION_FORMAT = "ebmlib-calibration/1"


def log_standard_normal(z):
    """log N(z; 0, I) for z of shape (N, k); returns (N,)."""
    return -0.5 * (z ** 2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def latent_energy(z, G, d):
    """E(z) = -log p0(z) - d(G(z)) with p0 = N(0, I), up to a constant; z (N, k) -> (N,).

    Gradients flow through both the prior term and d(G(z)) (nothing here is detached). The energy is
    float32 (float64 for float64 z) even when G and d run under bf16 autocast: the logit is cast before
    it meets the prior term, so a sampler's decisions never rest on bf16 rounding (~0.06 at |d| ~ 16).
    """
    last_dim(z, G.latent_dim, "latent z")
    logit = at_least_fp32(check_logits(d(G(z)), len(z)))
    return 0.5 * (at_least_fp32(z) ** 2).sum(dim=1) - logit


def check_logits(logits, n):
    """Return ``logits`` if it has shape (n,); otherwise a ValueError that says how to fix d."""
    if logits.shape != (n,):
        raise ValueError(f"the discriminator must return one logit per sample, shape ({n},), but returned "
                         f"{tuple(logits.shape)}; if it returns (N, 1), squeeze the last dimension")
    return logits


class LogRatio(nn.Module):
    """The optimal discriminator's logit for two known densities: d(x) = log_p(x) - log_q(x).

    ``log_p``, ``log_q``: callables x (N, ...) -> (N,) log densities (for example the data's and the
    generator's when both are known in closed form). A module, so that the samplers can take it as d.
    """

    def __init__(self, log_p, log_q):
        super().__init__()
        self.log_p, self.log_q = log_p, log_q

    def forward(self, x):
        return self.log_p(x) - self.log_q(x)


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
    log p_data(x) / p_g(x) for the generator it was calibrated against. Under bf16 autocast the logit
    d(x) is cast to float32 before the affine map, so the result is float32: a bf16 product would carry
    rounding errors of 0.05-0.2 nats at the logits DDLS meets.
    """

    def __init__(self, d):
        super().__init__(d)
        self.scale = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.scale * at_least_fp32(self.d(x)) + self.bias


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
        with torch.autocast(x.device.type, enabled=False):  # a phase in bf16 would be off by whole radians
            phase = 2 * math.pi * at_least_fp32(last_dim(x, self.freqs.shape[0], "x")) @ self.freqs
        correction = self.r(torch.cat([phase.sin(), phase.cos()], dim=-1)).squeeze(-1)
        return at_least_fp32(self.d(x)) + at_least_fp32(correction)


# Calibration methods: how the model on top of the frozen d is built. The residual's Fourier features of
# x mean something only for low-dimensional x (the toy world); on images use the head or fine-tuning.
CALIBRATION_METHODS = {
    "head": "a logistic head a*d(x)+b on the frozen d",
    "finetune": "a copy of d trained further with the logistic loss",
    "residual": "the frozen d plus a correction on Fourier features of x (low-dimensional data only)",
}
ANY_DIMENSION = ("head", "finetune")
_DEFAULT_LR = {"head": 1e-2, "finetune": 1e-4, "residual": 1e-3}


def calibration_model(method, d, *, dim=None, residual=None, seed=0):
    """The untrained model that calibration fits, for ``method`` in :data:`CALIBRATION_METHODS`.

    'head': :class:`CalibratedLogit` around a copy of d; 'finetune': a copy of d with every parameter
    trainable; 'residual': :class:`ResidualLogit` around a copy of d for inputs of width ``dim``, with the
    ``residual`` options. The original d is never modified. ``calibrate`` and ``load_calibration`` both
    build their models here, so a saved calibration always loads into the model that was fitted.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {sorted(CALIBRATION_METHODS)}, got {method!r}")
    copied = copy.deepcopy(d)
    if method == "head":
        return CalibratedLogit(copied)
    if method == "residual":
        if dim is None:
            raise ValueError("the residual calibration needs the data's width dim (x has shape (N, dim))")
        return ResidualLogit(copied, dim, **{"seed": seed, **(residual or {})})
    for p in copied.parameters():
        p.requires_grad_(True)
    return copied


def calibrate(d, G, sample_real, *, method="head", steps=500, batch_size=512, lr=None, lr_decay=True, seed=0,
              progress=None, residual=None):
    """Calibrate a discriminator's logit against a frozen generator G, so that d(x) ≈ log p_data/p_g.

    ``method="head"`` fits a logistic head a*d(x)+b on the frozen d (cheap, keeps d's shape);
    ``method="finetune"`` trains a copy of d with the logistic loss against samples of G, moving it
    towards the optimal discriminator for this G (the DDLS theorem's assumption). The original d's
    weights are never modified (d and G are put in eval mode). ``method="residual"`` keeps d frozen
    and fits a correction on Fourier features, d(x) + r(x) (:class:`ResidualLogit`): for
    low-dimensional data, where d's own capacity limits how sharp a ratio it can express.
    ``sample_real(n, generator) -> (n, ...)`` draws real data; fakes are G(z), z ~ N(0, I). ``lr``
    defaults to 1e-2 for the head, 1e-4 for fine-tuning and 1e-3 for the residual; with ``lr_decay`` it
    falls linearly to 0 over the steps. ``residual`` is a dict of :class:`ResidualLogit` options
    (``features``, ``scale``, ``hidden``, ``depth``).
    Returns a module x (N, ...) -> calibrated logits (N,), in eval mode, with the settings that rebuild
    it in ``.calibration`` (what ``save_calibration`` stores).
    """
    G.eval(), d.eval()
    dim = sample_real(2, torch.Generator().manual_seed(seed)).shape[-1] if method == "residual" else None
    model = calibration_model(method, d, dim=dim, residual=residual, seed=seed)
    lr = _DEFAULT_LR[method] if lr is None else lr
    device = module_device(G)
    model.to(device)

    def sample_fake(n, gen):
        with torch.no_grad():
            return G(torch.randn(n, G.latent_dim, generator=gen).to(device))

    train_discriminator(model, sample_real, sample_fake, steps=steps, batch_size=batch_size, lr=lr,
                        lr_decay=lr_decay, seed=seed, progress=progress)
    model.calibration = {"method": method, "dim": dim, "residual": residual, "seed": seed}
    return model.eval()


def save_calibration(model, path):
    """Write a calibrated logit returned by :func:`calibrate` to ``path`` (atomically): its weights and the
    settings that rebuild it around the same discriminator."""
    if not hasattr(model, "calibration"):
        raise ValueError("save_calibration takes a model returned by ebmlib.calibrate (it carries .calibration)")
    return torch_save({"format": CALIBRATION_FORMAT, **model.calibration, "state": model.state_dict()}, path)


def load_calibration(path, d, map_location="cpu"):
    """The calibrated logit saved at ``path``, rebuilt around the discriminator ``d`` (eval mode).

    Errors name the file: not a calibration, or weights that do not fit ``d`` (another architecture).
    """
    saved = ckpt.load(path, required=("method", "state"), map_location=map_location, format=CALIBRATION_FORMAT)
    model = calibration_model(saved["method"], d, dim=saved.get("dim"), residual=saved.get("residual"),
                              seed=saved.get("seed", 0))
    ckpt.load_state(model, saved["state"], what=f"calibrated logit ({saved['method']})", path=path)
    model.calibration = {k: saved.get(k) for k in ("method", "dim", "residual", "seed")}
    return model.to(module_device(d)).eval()
