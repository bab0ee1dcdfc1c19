"""Sample-quality scores: the Fréchet distance, the Inception-style score, and nearest neighbours in
pixel space.

The feature extractors live in ``ebmlib.features``: the FID Inception-v3 (its scores are the FID and the
Inception Score) and a classifier trained here (its scores are the "Fréchet classifier distance" and
the "classifier score", never FID or IS). An extractor is an ``nn.Module`` mapping uint8 images
(B, 3, H, W) to (features (B, D), logits (B, C)), with a ``name`` and ``score_names`` (distance key,
score key).

Rules every score here follows: the Fréchet distance is computed in float64 with an exact matrix square
root; nets are put in eval mode and run under ``torch.no_grad`` in batches; every score is reported with
the sample counts it was computed from (``score`` returns them in the same dict).
"""
import math

import torch

from ._checks import positive_int
from ._runtime import evaluating
from .images import to_float, uint8_batches

# --- the Fréchet distance ------------------------------------------------------------------------


def _psd_sqrt(sigma):
    """Symmetric square root of a symmetric PSD matrix (D, D) float64, by eigendecomposition.

    Round-off can make the smallest eigenvalues slightly negative; they are clipped to 0.
    """
    sigma = (sigma + sigma.T) / 2
    vals, vecs = torch.linalg.eigh(sigma)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def trace_sqrt_product(sigma1, sigma2):
    """tr sqrt(S1 S2) for symmetric PSD S1, S2 (D, D), in float64, exactly (no iterative sqrtm).

    S1 S2 is similar to sqrt(S1) S2 sqrt(S1), which is symmetric PSD, so the eigenvalues of S1 S2 are
    those of that symmetric matrix: real and >= 0, and tr sqrt(S1 S2) is the sum of their square roots.
    """
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    vals = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return vals.clamp(min=0).sqrt().sum()


def _stats_arg(mu, sigma, name):
    mu = torch.as_tensor(mu).detach().to("cpu", torch.float64)
    sigma = torch.as_tensor(sigma).detach().to("cpu", torch.float64)
    if mu.dim() != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{name}: mu must be (D,) and sigma (D, D), "
                         f"got {tuple(mu.shape)} and {tuple(sigma.shape)}")
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64 (squared feature units).

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2); mu: (D,), sigma: (D, D) symmetric PSD
    (tensors or arrays of any float dtype; computed on the CPU in float64). Returns a Python float.
    """
    mu1, sigma1 = _stats_arg(mu1, sigma1, "first Gaussian")
    mu2, sigma2 = _stats_arg(mu2, sigma2, "second Gaussian")
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians have different dimensions: {mu1.shape[0]} and {mu2.shape[0]}")
    mean_term = (mu1 - mu2).square().sum()
    return float(mean_term + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product(sigma1, sigma2))


class _Moments:
    """Running mean and covariance in float64 over batches of features (B, D).

    Sums are taken around a shift (the first batch's mean) so that large feature means do not cancel
    away the digits of the covariance. They stay on the features' device (a GPU does the (D, D) float64
    products far faster than the CPU); ``stats`` returns CPU tensors.
    """

    def __init__(self):
        self.n, self.shift, self.sum, self.outer = 0, None, None, None

    def add(self, features):
        x = features.detach().to(torch.float64)
        if self.shift is None:
            self.shift = x.mean(0)
            self.sum = torch.zeros_like(self.shift)
            self.outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
        x = x.to(self.shift.device)
        x = x - self.shift
        self.n += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x

    def stats(self):
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.n}")
        mean = self.sum / self.n
        sigma = (self.outer - self.n * torch.outer(mean, mean)) / (self.n - 1)
        return (mean + self.shift).cpu(), ((sigma + sigma.T) / 2).cpu()


def feature_stats(features):
    """Mean (D,) and unbiased covariance (D, D), both float64 on the CPU, of features (N, D), N >= 2."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        raise ValueError(f"features must be a tensor (N, D), got {tuple(getattr(features, 'shape', ()))}")
    moments = _Moments()
    moments.add(features)
    return moments.stats()


# --- the Inception-style score -------------------------------------------------------------------


def inception_score(probs, splits=10):
    """exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, C), as (mean, std) over ``splits`` parts.

    The N rows are cut into ``splits`` contiguous parts (N >= splits); p(y) is each part's mean row.
    Between 1 (every prediction the same) and C (confident predictions spread evenly over C classes).
    Computed in float64; the std is that of the per-part scores (population std, as in the original code).
    """
    positive_int(splits, "splits")
    p = torch.as_tensor(probs).detach().to("cpu", torch.float64)
    if p.dim() != 2 or p.shape[0] < splits:
        raise ValueError(f"probs must be (N, C) with N >= splits={splits}, got {tuple(p.shape)}")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=torch.float64), atol=1e-3):
        raise ValueError("probs must be probabilities: rows of non-negative numbers summing to 1 (apply softmax)")
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal)).sum(1)  # 0 log 0 = 0
        scores.append(kl.mean().exp())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


# --- modes: coverage and weights of a known, finite set of modes (stacked digits) -----------------

HIGH_QUALITY_CONFIDENCE = 0.9


def mode_coverage(modes, n_modes, weights=None):
    """How samples spread over ``n_modes`` equally likely modes, from each sample's mode (N,) in 0..n_modes-1.

    Returns {"modes": how many modes hold at least one sample, "kl": KL(q || uniform) in nats, where q is
    the samples' mode histogram (0 when the samples spread exactly evenly; log n_modes when they all
    share one mode), "n": N, "n_modes"}. With N samples from the uniform distribution itself, the
    expected KL is about (n_modes - 1) / (2 N): the floor that finite samples put under it.
    ``weights`` (N,) >= 0: a weighted histogram (self-normalised importance weights, e.g. e^{d(x)} of
    generator samples, give the mode weights of p_g e^d / Z without sampling it)."""
    modes = torch.as_tensor(modes).flatten().long().cpu()
    positive_int(n_modes, "n_modes")
    if modes.numel() == 0:
        raise ValueError("no samples to count modes of (a sample count of 0)")
    if modes.min() < 0 or modes.max() >= n_modes:
        raise ValueError(f"modes must lie in 0..{n_modes - 1}, got values in {int(modes.min())}..{int(modes.max())}")
    if weights is None:
        q = torch.bincount(modes, minlength=n_modes).double() / modes.numel()
    else:
        weights = torch.as_tensor(weights).detach().flatten().cpu().double()
        if weights.shape != modes.shape or (weights < 0).any() or not weights.sum() > 0:
            raise ValueError(f"weights must be (N,) = {tuple(modes.shape)}, non-negative and not all 0")
        q = torch.zeros(n_modes, dtype=torch.float64).index_add_(0, modes, weights) / weights.sum()
    kl = float(torch.xlogy(q, q * n_modes).sum())
    return {"modes": int((q > 0).sum()), "kl": kl, "n": modes.numel(), "n_modes": n_modes}


def channel_predictions(probs, channels, n_classes):
    """Joint class probabilities (N, K^C) of C independently classified channels -> each channel's
    predicted class and its confidence: (classes int64 (N, C), confidence float (N, C)), and the joint
    mode (N,) = sum_i class_i K^(C-1-i) (first channel most significant)."""
    probs = torch.as_tensor(probs).detach().cpu().double()
    if probs.dim() != 2 or probs.shape[1] != n_classes ** channels:
        raise ValueError(f"probs must be (N, {n_classes ** channels}) for {channels} channels of {n_classes} "
                         f"classes, got {tuple(probs.shape)}")
    joint = probs.view(-1, *[n_classes] * channels)
    marginals = torch.stack([joint.sum(dim=[d + 1 for d in range(channels) if d != i]) for i in range(channels)], 1)
    confidence, classes = marginals.max(dim=2)
    weights = n_classes ** torch.arange(channels - 1, -1, -1)
    return classes, confidence, (classes * weights).sum(1)


def mode_scores(probs, channels, n_classes, threshold=HIGH_QUALITY_CONFIDENCE):
    """Mode coverage and quality of samples from a per-channel classifier's joint probabilities (N, K^C).

    Returns ``mode_coverage`` of the predicted modes (recovered modes, KL to uniform) and
    "high_quality": the fraction of samples whose every channel is classified with confidence above
    ``threshold`` (a digit the classifier is sure of, in every channel), with the threshold."""
    classes, confidence, modes = channel_predictions(probs, channels, n_classes)
    return {**mode_coverage(modes, n_classes ** channels),
            "high_quality": float((confidence > threshold).all(1).double().mean()), "threshold": threshold}


# --- running nets for scoring --------------------------------------------------------------------


@torch.no_grad()
def extract(extractor, images, batch_size=250):
    """Run ``extractor`` over ``images`` in batches: returns (n, (mu, sigma), probs).

    ``images``: uint8 (N, 3, H, W) in [0, 255], float in [-1, 1], or an iterable of such batches (never
    all in memory at once). ``extractor(x_uint8) -> (features (B, D), logits (B, C))``. Feature moments
    are accumulated in float64 (mu (D,), sigma (D, D)); probs: softmax of the logits, float32 (N, C).
    """
    positive_int(batch_size, "batch_size")
    moments, probs = _Moments(), []
    with evaluating(extractor):
        for x in uint8_batches(images, batch_size):
            features, logits = extractor(x)
            moments.add(features)
            probs.append(logits.float().softmax(1).cpu())
    if moments.n == 0:
        raise ValueError("no images to score (a sample count of 0)")
    return moments.n, moments.stats(), torch.cat(probs)


def reference_stats(images, extractor, batch_size=250):
    """Feature statistics of a reference set (e.g. CIFAR-10's train split), to compare samples against.

    Returns a dict {"mu": (D,) float64, "sigma": (D, D) float64, "n": number of images, "extractor":
    its name}; save it with ``torch.save`` and reload with ``torch.load(path, weights_only=True)``.
    """
    n, (mu, sigma), _ = extract(extractor, images, batch_size)
    return {"mu": mu, "sigma": sigma, "n": n, "extractor": extractor.name}


def score(images, reference, extractor, splits=10, batch_size=250):
    """Score samples against reference statistics; returns the scores with their sample counts.

    ``images``: generated samples, float in [-1, 1] or uint8 (N, 3, H, W), or an iterable of batches.
    ``reference``: from ``reference_stats`` with the same extractor. The dict holds the Fréchet distance
    and the (mean, std) Inception-style score under the extractor's names (``fid``/``inception_score``
    for Inception-v3; ``fcd``/``classifier_score`` for the classifiers), and ``n_samples``,
    ``n_reference``, ``splits``, ``extractor``. With fewer samples than ``splits``, one split a sample.
    An extractor that classifies channel by channel (``channels`` and ``n_classes`` attributes: stacked
    digits) adds ``mode_scores``: "modes" recovered, "kl" to uniform, "high_quality", "threshold", "n_modes".
    """
    if reference.get("extractor") != extractor.name:
        raise ValueError(f"the reference statistics come from the extractor {reference.get('extractor')!r}, "
                         f"not {extractor.name!r}: compute them with the same extractor")
    n, (mu, sigma), probs = extract(extractor, images, batch_size)
    splits = min(splits, n)
    mean, std = inception_score(probs, splits)
    dist_key, score_key = extractor.score_names
    out = {dist_key: frechet_distance(mu, sigma, reference["mu"], reference["sigma"]),
           score_key: mean, f"{score_key}_std": std, "n_samples": n, "n_reference": int(reference["n"]),
           "splits": splits, "extractor": extractor.name}
    if hasattr(extractor, "channels"):
        modes = mode_scores(probs, extractor.channels, extractor.n_classes)
        out.update({k: v for k, v in modes.items() if k != "n"})
    return out


def describe(scores) -> str:
    """One line for a ``score`` dict: every value with the sample counts behind it."""
    values = []
    for key, value in scores.items():
        if key == "modes":
            values.append(f"modes {value} of {scores['n_modes']}")
        elif isinstance(value, float) and not key.endswith("_std") and key != "threshold":
            text = f"{key} {value:.3f}"
            if f"{key}_std" in scores:
                text += f" ± {scores[key + '_std']:.3f} ({scores['splits']} splits)"
            if key == "high_quality":
                text += f" (confidence > {scores['threshold']} in every channel)"
            values.append(text)
    return (f"{', '.join(values)} -- {scores['n_samples']} samples vs {scores['n_reference']} reference "
            f"images, {scores['extractor']} features")


# --- nearest neighbours in pixel space -------------------------------------------------------------


@torch.no_grad()
def nearest_neighbours(queries, dataset, k=1, batch_size=256, chunk_size=4096):
    """The k nearest images of ``dataset`` to each query, by L2 distance in pixel space.

    ``queries`` (Q, 3, H, W) and ``dataset`` (N, 3, H, W): uint8, or float in [-1, 1]; distances are
    measured on the [-1, 1] scale (uint8 images are mapped there by ``to_float``). Runs on the dataset's
    device, ``batch_size`` queries against ``chunk_size`` dataset images at a time. Returns
    (indices int64 (Q, k) into ``dataset``, distances float32 (Q, k)), nearest first.
    """
    positive_int(k, "k"), positive_int(batch_size, "batch_size"), positive_int(chunk_size, "chunk_size")
    if queries.dim() != 4 or dataset.dim() != 4 or queries.shape[1:] != dataset.shape[1:]:
        raise ValueError(f"queries and dataset must be image batches of one shape, got {tuple(queries.shape)} "
                         f"and {tuple(dataset.shape)}")
    if k > dataset.shape[0]:
        raise ValueError(f"k={k} is larger than the dataset ({dataset.shape[0]} images)")
    device = dataset.device

    def flat(x):
        x = x.to(device)
        return (to_float(x) if x.dtype == torch.uint8 else x.float()).flatten(1)

    indices, distances = [], []
    for q_start in range(0, queries.shape[0], batch_size):
        q = flat(queries[q_start:q_start + batch_size])
        best_d = torch.full((q.shape[0], 0), math.inf, device=device)
        best_i = torch.zeros((q.shape[0], 0), dtype=torch.int64, device=device)
        for d_start in range(0, dataset.shape[0], chunk_size):
            d = flat(dataset[d_start:d_start + chunk_size])
            # ||q - d||^2 = ||q||^2 + ||d||^2 - 2 q.d: one matrix product per chunk
            d2 = (q.square().sum(1, keepdim=True) + d.square().sum(1) - 2 * q @ d.T).clamp_(min=0)
            cand_d = torch.cat([best_d, d2], 1)
            chunk_i = torch.arange(d_start, d_start + d.shape[0], device=device).expand_as(d2)
            cand_i = torch.cat([best_i, chunk_i], 1)
            best_d, pos = cand_d.topk(min(k, cand_d.shape[1]), dim=1, largest=False)
            best_i = cand_i.gather(1, pos)
        # the expanded formula loses digits for near neighbours: recompute the chosen distances directly
        exact = (q[:, None, :] - flat(dataset[best_i.flatten()]).view(q.shape[0], k, -1)).norm(dim=2)
        order = exact.argsort(dim=1)
        indices.append(best_i.gather(1, order).cpu())
        distances.append(exact.gather(1, order).cpu())
    return torch.cat(indices), torch.cat(distances)
