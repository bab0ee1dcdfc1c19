"""The 2-D (and 1-D) toy world: data sets with known structure and the mode statistics of Table 1."""
import math

import torch

GRID_STD = 0.05  # std of each of the 25 Gaussians, as in the DDLS paper


def grid_centers(spacing=1.0):
    """The 25 means of the grid, {-2,-1,0,1,2}^2 * spacing, shape (25, 2)."""
    axis = torch.arange(-2, 3, dtype=torch.float32) * spacing
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def ring_centers(modes=8, radius=2.0):
    """``modes`` points evenly spaced on a circle, shape (modes, 2)."""
    angle = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)


def _mixture(centers, n, std, generator):
    idx = torch.randint(len(centers), (n,), generator=generator)
    return centers[idx] + std * torch.randn(n, centers.shape[1], generator=generator)


def sample_grid25(n, generator=None, std=GRID_STD):
    """n points from the 25-Gaussian grid (equal weights, isotropic std), shape (n, 2)."""
    return _mixture(grid_centers(), n, std, generator)


def sample_ring(n, generator=None, modes=8, radius=2.0, std=0.02):
    """n points from a ring of ``modes`` Gaussians, shape (n, 2)."""
    return _mixture(ring_centers(modes, radius), n, std, generator)


def sample_swiss_roll(n, generator=None, noise=0.05):
    """n points on a 2-D swiss roll scaled to about [-2, 2]^2, shape (n, 2)."""
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
    x = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 7.5
    return x + noise * torch.randn(n, 2, generator=generator)


SWISS_ROLL_ANGLES = (1.5 * math.pi, 4.5 * math.pi)  # the roll's angle t runs uniformly over this interval


def swiss_roll_stats(x, weights=None, noise=0.05, bins=12, points=6000):
    """What samples ``x`` (N, 2) show of :func:`sample_swiss_roll`'s data, the roll's analogue of :func:`mode_stats`.

    Each sample is matched to the nearest of ``points`` points of the noiseless spiral. A sample is *high
    quality* within 4 ``noise`` of the spiral (as a grid sample is within 4 std of a centre). The data's
    angle t is uniform on :data:`SWISS_ROLL_ANGLES`; the roll is cut into ``bins`` arcs of equal angle,
    and the share of samples nearest to each arc is the roll's version of the mode weights (``weights``
    (N,): optional importance weights, as in :func:`mode_weights`).

    Returns a dict: ``hq_fraction`` (unweighted, in [0, 1]), ``distance`` (mean distance to the spiral,
    unweighted), ``arc_weights`` (float64 tensor (bins,), summing to 1) and ``data_tv`` (their total
    variation from the data's equal arc weights).
    """
    x = x.detach().float().cpu()
    if x.dim() != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(f"samples must have shape (N>0, 2), got {tuple(x.shape)}")
    w = torch.ones(len(x), dtype=torch.float64) if weights is None else weights.detach().double().cpu()
    if w.shape != (len(x),) or (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"weights must be {len(x)} non-negative numbers with a positive sum, got shape {tuple(w.shape)}")
    t = torch.linspace(*SWISS_ROLL_ANGLES, points)
    curve = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 7.5
    dist, nearest = _nearest(x, curve)
    arc = (nearest * bins // points).clamp(max=bins - 1)
    hist = torch.zeros(bins, dtype=torch.float64).index_add_(0, arc, w)
    arc_weights = hist / hist.sum()
    return {"hq_fraction": float((dist < 4 * noise).float().mean()), "distance": float(dist.mean()),
            "arc_weights": arc_weights, "data_tv": total_variation(arc_weights, torch.full((bins,), 1 / bins))}


def _nearest(x, points, chunk=4096):
    """Distance to and index of the nearest of ``points`` (M, 2) for each row of ``x`` (N, 2), in chunks."""
    found = [torch.cdist(part, points).min(dim=1) for part in x.split(chunk)]
    return torch.cat([f.values for f in found]), torch.cat([f.indices for f in found])


def grid25_log_prob(x, std=GRID_STD):
    """The exact log density of the 25-Gaussian grid at ``x`` (N, 2); shape (N,). Differentiable, so
    Langevin can run on it directly in the data space."""
    centers = grid_centers().to(x)
    sq = ((x[:, None, :] - centers) ** 2).sum(-1)
    return torch.logsumexp(-0.5 * sq / std ** 2, dim=1) - math.log(len(centers)) - 2 * math.log(std) - math.log(2 * math.pi)


DATASETS = {"grid25": sample_grid25, "ring": sample_ring, "swiss_roll": sample_swiss_roll}


def dataset(name):
    """The sampler ``f(n, generator) -> (n, 2)`` of a named toy data set."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown toy data set {name!r}; choose one of {sorted(DATASETS)}") from None


def mode_stats(x, centers=None, std=GRID_STD, min_count=20):
    """Table 1's columns for samples ``x`` (N, 2) of a mixture with ``centers`` (K, 2).

    A sample is *high quality* when it lies within 4 std of its nearest centre. A mode is
    *recovered* when at least ``min_count`` high-quality samples fall on it.

    Returns a dict: ``modes`` (recovered modes, int), ``hq_fraction`` (in [0, 1]),
    ``hq_std`` (std of the high-quality samples around their centres, per coordinate, averaged;
    nan when there are none), ``counts`` (high-quality samples per mode, list of K ints).
    """
    centers = grid_centers() if centers is None else centers
    x = x.detach().float().cpu()
    if x.dim() != 2 or x.shape[1] != centers.shape[1] or len(x) == 0:
        raise ValueError(f"samples must have shape (N>0, {centers.shape[1]}), got {tuple(x.shape)}")
    dist = torch.cdist(x, centers)
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist < 4 * std
    counts = torch.bincount(nearest[hq], minlength=len(centers))
    offsets = x[hq] - centers[nearest[hq]]
    hq_std = offsets.std(dim=0).mean().item() if hq.sum() > 1 else float("nan")
    return {
        "modes": int((counts >= min_count).sum()),
        "hq_fraction": hq.float().mean().item(),
        "hq_std": hq_std,
        "counts": counts.tolist(),
    }


def mode_weights(x, weights=None, centers=None):
    """The weight of each mode: the share of samples ``x`` (N, 2) whose nearest centre is that mode.

    Every sample counts (quality inside a mode is :func:`mode_stats`'s business); ``weights`` (N,)
    are optional importance weights (for example :func:`ebmlib.samplers.reweight`'s). Returns a (K,)
    float64 tensor that sums to 1.
    """
    centers = grid_centers() if centers is None else centers
    x = x.detach().float().cpu()
    if x.dim() != 2 or x.shape[1] != centers.shape[1] or len(x) == 0:
        raise ValueError(f"samples must have shape (N>0, {centers.shape[1]}), got {tuple(x.shape)}")
    w = torch.ones(len(x), dtype=torch.float64) if weights is None else weights.detach().double().cpu()
    if w.shape != (len(x),) or (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"weights must be {len(x)} non-negative numbers with a positive sum, got shape {tuple(w.shape)}")
    nearest = torch.cdist(x, centers).argmin(dim=1)
    hist = torch.zeros(len(centers), dtype=torch.float64).index_add_(0, nearest, w)
    return hist / hist.sum()


def total_variation(p, q):
    """Total-variation distance ½ Σ |p - q| between two histograms of equal length (each summing to 1);
    a float in [0, 1]."""
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms of different lengths: {tuple(p.shape)} and {tuple(q.shape)}")
    return 0.5 * float((p - q).abs().sum())


def multinomial_tv(weights, n, draws=20, seed=0):
    """The total-variation distance that n independent draws from ``weights`` (K,) show by chance alone:
    the mean over ``draws`` multinomial histograms. A sampler with n samples cannot be told from an exact one
    below this floor."""
    weights = torch.as_tensor(weights, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    tvs = []
    for _ in range(draws):
        idx = torch.multinomial(weights, n, replacement=True, generator=generator)
        tvs.append(total_variation(torch.bincount(idx, minlength=len(weights)).double() / n, weights))
    return sum(tvs) / len(tvs)


class Mixture1D:
    """A 1-D Gaussian mixture with exact ``log_prob`` and ``sample``: the known densities of chapters 02-04.

    ``means``, ``stds``, ``weights``: sequences of equal length (weights are normalised).
    """

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float32)
        self.stds = torch.as_tensor(stds, dtype=torch.float32)
        w = torch.ones_like(self.means) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if not (self.means.shape == self.stds.shape == w.shape) or (self.stds <= 0).any() or (w < 0).any():
            raise ValueError("means, stds and weights need equal lengths, stds > 0 and weights >= 0")
        self.weights = w / w.sum()

    def log_prob(self, x):
        """log density at x, any shape (a trailing size-1 dim is squeezed); same shape as x."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() > 0 and x.shape[-1] == 1:
            x = x.squeeze(-1)
        comp = (-0.5 * ((x[..., None] - self.means) / self.stds) ** 2
                - self.stds.log() - 0.5 * math.log(2 * math.pi) + self.weights.log())
        return torch.logsumexp(comp, dim=-1)

    def cdf(self, x):
        """The distribution function P(X <= x) at x, any shape; same shape as x (float64 in, float64 out)."""
        x = torch.as_tensor(x)
        dtype = x.dtype if x.dtype == torch.float64 else torch.float32
        x = x.to(dtype)
        if x.dim() > 0 and x.shape[-1] == 1:
            x = x.squeeze(-1)
        means, stds, weights = (t.to(dtype) for t in (self.means, self.stds, self.weights))
        return (weights * torch.special.ndtr((x[..., None] - means) / stds)).sum(-1)

    def sample(self, n, generator=None):
        """n samples, shape (n, 1)."""
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return (self.means[idx] + self.stds[idx] * torch.randn(n, generator=generator)).unsqueeze(1)
