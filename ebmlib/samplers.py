"""Samplers behind one interface: the generator alone, DRS, MH-GAN and DDLS.

``sample(method, G, d, n, ...)`` returns a :class:`Samples`. ``d`` is a discriminator logit,
ideally calibrated (``ebmlib.calibrate``) so that d(x) ≈ log p_data(x) / p_g(x). Samples may have any
shape: vectors (n, dim) in the toy world, images (n, C, H, W); latents are (n, k).
"""
import time
from dataclasses import dataclass, field

import torch

from ._checks import last_dim, positive_int
from ._runtime import evaluating, module_device
from .energy import check_logits, latent_energy
from .mcmc import langevin


@dataclass
class Samples:
    """What every sampler returns: ``x`` (n, ...) samples (vectors or images), ``z`` (n, k) their latents,
    ``seconds`` wall time, and ``info`` (sampler-specific: acceptance rate, snapshots, ...)."""

    x: torch.Tensor
    z: torch.Tensor
    seconds: float
    info: dict = field(default_factory=dict)


def _prior(n, G, generator):
    # drawn on the CPU so that one seed gives the same latents on any device
    return torch.randn(n, G.latent_dim, generator=generator).to(module_device(G))


def _rows(mask, like):
    """A per-sample mask (N,) shaped to broadcast against ``like`` (N, ...): one decision a whole sample."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


@torch.no_grad()
def _generate(G, z, batch_size):
    return torch.cat([G(chunk) for chunk in z.split(batch_size)])


@torch.no_grad()
def _logits(d, x, batch_size):
    return torch.cat([check_logits(d(chunk), len(chunk)) for chunk in x.split(batch_size)])


def sample_generator(G, d, n, *, generator=None, batch_size=10_000):
    """The generator alone: z ~ N(0, I), x = G(z). ``d`` is unused (kept for the one interface)."""
    z = _prior(n, G, generator)
    return Samples(_generate(G, z, batch_size), z, 0.0)


def sample_drs(G, d, n, *, generator=None, batch_size=10_000, log_m=None, m_quantile=1.0, burn_in=10_000,
               max_rounds=1000):
    """Discriminator rejection sampling (the rejection-sampling lemma).

    Proposes z ~ p0 and accepts it with probability min(1, exp(d(G(z)) - log M)), so accepted latents
    follow p_t(z) ∝ p0(z) exp(d(G(z))) wherever d <= log M. Without ``log_m``, log M is the
    ``m_quantile`` quantile of the logits of ``burn_in`` proposals. With the default 1.0 (the
    maximum, grown whenever a larger logit appears later) the sampler is exact; a lower quantile
    (as practical DRS does, Azadi et al. 2019) keeps the acceptance rate up when a few logits are
    outliers, at the price of accepting every proposal above log M.
    ``info``: ``accept_rate`` (accepted / proposed), ``log_m``.
    """
    if not 0 < m_quantile <= 1:
        raise ValueError(f"m_quantile must be in (0, 1], got {m_quantile!r}")
    exact = log_m is None and m_quantile == 1.0
    if log_m is None:
        burn = _logits(d, _generate(G, _prior(burn_in, G, generator), batch_size), batch_size)
        log_m = torch.quantile(burn, m_quantile).item()
    xs, zs, proposed, kept = [], [], 0, 0
    for _ in range(max_rounds):
        z = _prior(batch_size, G, generator)
        x = _generate(G, z, batch_size)
        logit = _logits(d, x, batch_size)
        if exact:
            log_m = max(log_m, logit.max().item())
        accept = torch.rand(len(z), generator=generator).to(logit.device).log() < logit - log_m
        xs.append(x[accept]), zs.append(z[accept])
        proposed, kept = proposed + len(z), kept + int(accept.sum())
        if kept >= n:
            break
    else:
        raise RuntimeError(f"DRS accepted only {kept} of {proposed} proposals (log M = {log_m:.1f}): a few "
                           f"logits far above the rest make M large; calibrate d, raise max_rounds, or pass "
                           f"m_quantile < 1 (for example 0.99)")
    return Samples(torch.cat(xs)[:n], torch.cat(zs)[:n], 0.0, {"accept_rate": kept / proposed, "log_m": log_m})


def sample_mh(G, d, n, *, generator=None, steps=100, batch_size=10_000):
    """Independent Metropolis-Hastings with the generator as proposal (MH-GAN, Turner et al. 2019).

    n chains of ``steps`` proposals x' ~ p_g; accept with min(1, exp(d(x') - d(x))), the ratio
    p_data/p_g at x' over that at x. Chains start at generator samples.
    ``info``: ``accept_rate`` (mean over chains and steps).
    """
    positive_int(steps, "steps")
    z = _prior(n, G, generator)
    x = _generate(G, z, batch_size)
    logit = _logits(d, x, batch_size)
    accepted = 0.0
    for _ in range(steps):
        z_new = _prior(n, G, generator)
        x_new = _generate(G, z_new, batch_size)
        logit_new = _logits(d, x_new, batch_size)
        accept = torch.rand(n, generator=generator).to(logit.device).log() < logit_new - logit
        z = torch.where(_rows(accept, z), z_new, z)
        x = torch.where(_rows(accept, x), x_new, x)
        logit = torch.where(accept, logit_new, logit)
        accepted += accept.float().mean().item()
    return Samples(x, z, 0.0, {"accept_rate": accepted / steps})


def sample_ddls(G, d, n, *, generator=None, steps=200, step_size=0.01, noise_scale=1.0, mala=False, decay=1.0,
                decay_every=None, snapshot_every=None, batch_size=10_000, z0=None, amp=False):
    """Discriminator Driven Latent Sampling: Langevin chains on E(z) = -log p0(z) - d(G(z)).

    Chains start at z0 (default z ~ p0) and run ``steps`` steps of size ``step_size`` (ε in the
    paper's update); see :func:`langevin` for the other arguments. Returns x = G(z_final).
    ``amp=True`` evaluates G and d under bf16 autocast on CUDA (ignored on the CPU); the chains, the
    prior term and the update stay in float32.
    ``info``: ``accept_rate`` (MALA), ``snapshots`` (list of (step, z)), ``energy_trace``.
    """
    if z0 is None:
        z = _prior(n, G, generator)
    else:
        z = last_dim(z0, G.latent_dim, "z0").to(module_device(G))
        if len(z) != n:
            raise ValueError(f"z0 holds {len(z)} starting points but n={n} samples were asked for; pass n=len(z0)")
    use_amp = amp and z.device.type == "cuda"

    def energy(v):
        # the latents and the prior term stay float32; only G and d run in bf16
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            return latent_energy(v, G, d).float()

    zs, snaps, traces, rates = [], [], [], []
    for chunk in z.split(batch_size):
        res = langevin(energy, chunk, steps=steps, step_size=step_size,
                       noise_scale=noise_scale, mala=mala, decay=decay, decay_every=decay_every,
                       snapshot_every=snapshot_every, generator=generator)
        zs.append(res.z), snaps.append(res.snapshots), traces.append(res.energy_trace), rates.append(res.accept_rate)
    z = torch.cat(zs)
    # mean energy over all chains, whatever the chunking
    sizes = [len(c) for c in z.split(batch_size)]
    info = {"energy_trace": [sum(t[i] * m for t, m in zip(traces, sizes)) / len(z) for i in range(len(traces[0]))]}
    if snapshot_every:
        info["snapshots"] = [(s[0][0], torch.cat([c[i][1] for c in snaps])) for i, s in enumerate(zip(*snaps))]
    if mala:
        info["accept_rate"] = sum(r * m for r, m in zip(rates, sizes)) / len(z)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
        x = _generate(G, z, batch_size).float()
    return Samples(x, z, 0.0, info)


SAMPLERS = {"generator": sample_generator, "drs": sample_drs, "mh": sample_mh, "ddls": sample_ddls}


def sample(method, G, d, n, *, seed=0, **options):
    """Draw n samples with ``method`` in {'generator', 'drs', 'mh', 'ddls'}; returns :class:`Samples`.

    G: latent (N, k) -> x (N, dim); d: x (N, dim) -> logits (N,) (None for 'generator', which never reads it).
    Same seed, same samples (CPU).
    ``options`` go to the method's function (``sample_ddls``'s steps, step_size, mala, ...).
    """
    positive_int(n, "n (the number of samples)")
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {sorted(SAMPLERS)}")
    if d is None and method != "generator":
        raise ValueError(f"the sampler {method!r} needs the discriminator's logit d; only 'generator' runs without it")
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with evaluating(*[m for m in (G, d) if m is not None]):
        out = SAMPLERS[method](G, d, n, generator=generator, **options)
    out.seconds = time.perf_counter() - start
    return out
