r"""Discriminator Optimal Transport (DOT, Tanaka 2019): a deterministic, per-sample move towards higher d.

With a discriminator logit d that is (ideally) Lipschitz, DOT moves each generated sample by solving a
small transport problem of its own. In the target space, from y0 = G(z0),

    x* = argmin_x  ||x - y0||_2 - d(x) / K_eff,

and in the latent space, from z0 ~ p0, z* = argmin_z ||z - z0||_2 - d(G(z)) / k_eff, the sample being G(z*).
K_eff (k_eff) is the effective Lipschitz constant of d along the generator's samples (of d∘G along the
latents): the largest |d(a) - d(b)| / ||a - b|| over pairs of samples, :func:`estimate_k_eff`. Each problem
is solved by gradient descent (Adam) from its start. Unlike DDLS there is no noise: the same start always
ends at the same point.
"""
import torch

from ._checks import positive_float, positive_int
from ._runtime import at_least_fp32
from .energy import check_logits

SPACES = ("latent", "target")

# Tanaka (2019) solves the transport with Adam(lr 0.01, betas (0, 0.9)) and estimates k_eff from 100 pairs
PAPER_DOT = {"lr": 0.01, "betas": (0.0, 0.9), "pairs": 100}


class TransportDivergence(FloatingPointError, ValueError):
    """The transport objective or its gradient turned non-finite.

    Attributes: ``step`` (1-based step at which it happened), ``lr`` (Adam's learning rate),
    ``last_finite`` (the points before that step, so the work so far is not lost).
    """

    def __init__(self, step, lr, last_finite):
        self.step, self.lr, self.last_finite = step, lr, last_finite
        super().__init__(
            f"discriminator optimal transport diverged: non-finite objective or gradient at step {step} with "
            f"lr {lr:g}. Try a smaller lr (for example {lr / 10:g}); the points before the failing step are in "
            f".last_finite")


def check_space(space):
    if space not in SPACES:
        raise ValueError(f"unknown transport space {space!r}; choose one of {list(SPACES)}")
    return space


def _flat_norm(v):
    """The Euclidean norm of each sample of ``v`` (N, ...), whatever its shape: (N,)."""
    return v.flatten(1).norm(dim=1)


@torch.no_grad()
def _logits(d, x, batch_size):
    return torch.cat([at_least_fp32(check_logits(d(chunk), len(chunk))) for chunk in x.split(batch_size)])


@torch.no_grad()
def estimate_k_eff(G, d, z, *, space="latent", batch_size=10_000):
    r"""The effective Lipschitz constant of d along the generator, from pairs of samples.

    ``z`` (2P, k): latents, paired as (z_i, z_{P+i}). In the target space the ratio is
    |d(x_i) - d(x_j)| / ||x_i - x_j|| with x = G(z) flattened per sample (logit units per unit of x); in the
    latent space |d(G(z_i)) - d(G(z_j))| / ||z_i - z_j|| (logit units per unit of z). Returns the largest
    ratio over the P pairs (a float), as Tanaka does: a lower bound of the true constant along the samples
    that approaches it as P grows.
    """
    check_space(space)
    if z.dim() != 2 or len(z) < 2 or len(z) % 2:
        raise ValueError(f"z must have shape (2P, k) with P >= 1 pairs, got {tuple(z.shape)}")
    x = torch.cat([G(chunk) for chunk in z.split(batch_size)])
    logit = _logits(d, x, batch_size)
    points = z if space == "latent" else x
    a, b = points.chunk(2)
    da, db = logit.chunk(2)
    # a pair of identical points says nothing about the slope; the clamp keeps it out of the maximum
    ratio = (da - db).abs() / _flat_norm(at_least_fp32(a - b)).clamp_min(1e-12)
    return float(ratio.max())


def _smooth_norm(v, delta):
    """sqrt(||v||^2 + delta^2) - delta per sample of ``v`` (N, ...): the norm, smoothed within delta of 0
    so that it has a gradient (zero) at v = 0 and never exceeds ||v||."""
    return torch.sqrt((at_least_fp32(v).flatten(1) ** 2).sum(dim=1) + delta ** 2) - delta


def _objective_and_grad(objective, v):
    """objective(v) (N,) and its gradient with respect to ``v`` alone: no parameter's .grad is touched, and it
    works under ``torch.no_grad()`` and ``torch.inference_mode()`` (the gradient is local)."""
    with torch.inference_mode(False), torch.enable_grad():
        v = v.detach().clone().requires_grad_(True)
        value = objective(v)
        (grad,) = torch.autograd.grad(value.sum(), v)
    return value.detach(), grad.detach()


def transport(objective, start, *, steps, lr, betas=PAPER_DOT["betas"], eps=1e-8):
    """Minimise ``objective``: (N, ...) -> (N,) from ``start`` (N, ...) with ``steps`` steps of Adam.

    Adam acts elementwise and each sample's objective depends on that sample alone, so descending the
    summed objective of the whole batch is exactly descending each sample's own objective: N independent
    problems in one tensor. Returns (points, trace), ``trace`` the mean objective before each step and
    after the last (``steps + 1`` floats). Raises :class:`TransportDivergence` naming the first step that led to
    a non-finite objective or gradient (0: the starts), with the points before it.
    """
    positive_int(steps, "steps")
    lr = positive_float(lr, "lr")
    beta1, beta2 = betas
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(f"Adam's betas must lie in [0, 1), got {betas!r}")
    v = start.detach().clone()
    m, s = torch.zeros_like(v), torch.zeros_like(v)
    value, grad = _objective_and_grad(objective, v)
    if not (torch.isfinite(value).all() and torch.isfinite(grad).all()):
        raise TransportDivergence(0, lr, v.clone())  # the starts themselves
    trace = [value.mean().item()]
    for step in range(1, steps + 1):
        m = beta1 * m + (1 - beta1) * grad
        s = beta2 * s + (1 - beta2) * grad ** 2
        m_hat, s_hat = m / (1 - beta1 ** step), s / (1 - beta2 ** step)
        moved = v - lr * m_hat / (s_hat.sqrt() + eps)
        value, grad = _objective_and_grad(objective, moved)
        if not (torch.isfinite(value).all() and torch.isfinite(grad).all()):
            raise TransportDivergence(step, lr, v.clone())
        v = moved
        trace.append(value.mean().item())
    return v, trace


def discriminator_transport(G, d, z0, *, space="latent", k_eff, steps, lr, betas=PAPER_DOT["betas"],
                            delta=1e-3):
    r"""DOT from the latents ``z0`` (N, k): returns (x, z, trace, distance).

    Latent space: z* = argmin ||z - z0|| - d(G(z)) / k_eff, x = G(z*), z = z*. Target space:
    x* = argmin ||x - G(z0)|| - d(x) / k_eff, z = z0 (x is no longer the image of a latent). The norm is
    smoothed, sqrt(||.||^2 + delta^2) - delta (``delta`` in units of the space), so that the start itself
    has a gradient: d's pull moves it, and a start that d pulls weakly (|∇d| < k_eff) stays within about
    delta of where the exact problem holds it. ``trace``: mean objective per step (with the exact norm's
    scale, up to delta); ``distance``: the mean transport distance ||z - z0|| or ||x - G(z0)||.
    """
    check_space(space)
    k_eff = positive_float(k_eff, "k_eff")
    delta = positive_float(delta, "delta")
    with torch.no_grad():
        y0 = G(z0)
    if space == "latent":
        def objective(z):
            return _smooth_norm(z - z0, delta) - at_least_fp32(check_logits(d(G(z)), len(z))) / k_eff

        z, trace = transport(objective, z0, steps=steps, lr=lr, betas=betas)
        with torch.no_grad():
            x = G(z)
        distance = _flat_norm(z - z0)
    else:
        def objective(x):
            return _smooth_norm(x - y0, delta) - at_least_fp32(check_logits(d(x), len(x))) / k_eff

        x, trace = transport(objective, y0, steps=steps, lr=lr, betas=betas)
        z = z0
        distance = _flat_norm(at_least_fp32(x - y0))
    return x, z, trace, distance.mean().item()
