"""Samplers behind one interface: the generator alone, DRS, MH-GAN, DDLS and DOT.

``sample(method, G, d, n, ...)`` returns a :class:`Samples`. ``d`` is a discriminator logit,
ideally calibrated (``ebmlib.calibrate``) so that d(x) ≈ log p_data(x) / p_g(x). Samples may have any
shape: vectors (n, dim) in the toy world, images (n, C, H, W); latents are (n, k).
"""
import contextlib
import time
from dataclasses import dataclass, field

import torch

from ._checks import last_dim, positive_float, positive_int
from ._runtime import evaluating, module_device
from .energy import check_logits, latent_energy, log_standard_normal
from .mcmc import langevin
from .transport import PAPER_DOT, check_space, discriminator_transport, estimate_k_eff


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


def _starts(n, G, generator, z0):
    """The chains' starting latents (n, k): ``z0`` when given (its shape checked), else drawn from p0."""
    if z0 is None:
        return _prior(n, G, generator)
    z = last_dim(z0, G.latent_dim, "z0").to(module_device(G))
    if len(z) != n:
        raise ValueError(f"z0 holds {len(z)} starting points but n={n} samples were asked for; pass n=len(z0)")
    return z


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


def drs_log_acceptance(logit, log_m, gamma=0.0, epsilon=1e-6):
    r"""DRS's acceptance rule (Azadi et al. 2019) in log space: log sigmoid(F(x)), with a = d(x) - log M and

        F(x) = a - log(1 - exp(a - ε)) - γ.

    For γ = 0 (and ε -> 0) sigmoid(F) = e^a: exact rejection sampling; γ shifts every acceptance
    probability in logit space (γ < 0 accepts more). ``logit`` (N,), float64 result (N,).
    ``gamma=None`` returns F itself, before the shift and the sigmoid.
    """
    a = (logit - log_m).double()
    f = a - torch.log1p(-torch.exp(a - epsilon))
    if gamma is None:
        return f
    return torch.nn.functional.logsigmoid(f - gamma)


def sample_drs(G, d, n, *, generator=None, batch_size=10_000, log_m=None, m_quantile=1.0, shift_quantile=None,
               epsilon=1e-6, burn_in=10_000, max_rounds=1000):
    r"""Rejection sampling of p_t with the discriminator (the rejection-sampling lemma), exact or as DRS.

    Proposes z ~ p0. By default accepts z with probability min(1, exp(d(G(z)) - log M)), so accepted
    latents follow p_t(z) ∝ p0(z) exp(d(G(z))) wherever d <= log M. Without ``log_m``, log M is the
    ``m_quantile`` quantile of the logits of ``burn_in`` proposals. With the default 1.0 (the
    maximum, grown whenever a larger logit appears later) the sampler is exact; a lower quantile
    clips the bound: every proposal above log M is accepted, which keeps the acceptance rate up when a
    few logits are outliers, at the price of under-weighting the region above the bound.

    ``shift_quantile`` (for example 0.95) switches to the acceptance rule of discriminator rejection
    sampling (DRS, Azadi et al. 2019): with a = d(x) - log M (log M the running maximum of the logits),
    F(x) = a - log(1 - exp(a - ``epsilon``)) - γ and the acceptance probability is sigmoid(F(x)). For
    γ = 0 this is exp(a) (exact rejection); γ, the ``shift_quantile`` quantile of F over each batch of
    proposals, shifts every acceptance probability in logit space so that the proposals at that quantile
    are accepted half the time. The shift trades exactness for a usable acceptance rate.
    ``info``: ``accept_rate`` (accepted / proposed), ``log_m``, and ``gamma`` (mean γ, DRS rule only).
    """
    if not 0 < m_quantile <= 1:
        raise ValueError(f"m_quantile must be in (0, 1], got {m_quantile!r}")
    if shift_quantile is not None and not 0 <= shift_quantile <= 1:
        raise ValueError(f"shift_quantile must be in [0, 1] (Azadi et al. use 0.95), got {shift_quantile!r}")
    azadi = shift_quantile is not None
    exact = log_m is None and (m_quantile == 1.0 or azadi)
    if log_m is None:
        burn = _logits(d, _generate(G, _prior(burn_in, G, generator), batch_size), batch_size)
        log_m = torch.quantile(burn, 1.0 if azadi else m_quantile).item()
    xs, zs, gammas, proposed, kept = [], [], [], 0, 0
    for _ in range(max_rounds):
        z = _prior(batch_size, G, generator)
        x = _generate(G, z, batch_size)
        logit = _logits(d, x, batch_size)
        if exact:
            log_m = max(log_m, logit.max().item())
        log_u = torch.rand(len(z), generator=generator).to(logit.device).log()
        if azadi:
            f = drs_log_acceptance(logit, log_m, gamma=None, epsilon=epsilon)  # F before the shift
            gamma = torch.quantile(f, shift_quantile).item()
            gammas.append(gamma)
            accept = log_u < torch.nn.functional.logsigmoid(f - gamma).float()
        else:
            accept = log_u < logit - log_m
        xs.append(x[accept]), zs.append(z[accept])
        proposed, kept = proposed + len(z), kept + int(accept.sum())
        if kept >= n:
            break
    else:
        raise RuntimeError(f"DRS accepted only {kept} of {proposed} proposals (log M = {log_m:.1f}): a few "
                           f"logits far above the rest make M large; calibrate d, raise max_rounds, or pass "
                           f"m_quantile < 1 (for example 0.99)")
    info = {"accept_rate": kept / proposed, "log_m": log_m}
    if azadi:
        info["gamma"] = sum(gammas) / len(gammas)
    return Samples(torch.cat(xs)[:n], torch.cat(zs)[:n], 0.0, info)


def sample_mh(G, d, n, *, generator=None, steps=100, x0=None, batch_size=10_000):
    r"""Independent Metropolis-Hastings with the generator as proposal (MH-GAN, Turner et al. 2019).

    The target is p_g(x) e^{d(x)} / Z0 and the proposal q(x') = p_g(x') ignores the current state, so
    the acceptance ratio p(x') q(x) / (p(x) q(x')) reduces to exp(d(x') - d(x)): the density ratio
    p_data/p_g at x' over that at x, read off the calibrated logit. n chains run ``steps`` proposals.

    Chains start at generator samples, or at ``x0`` (n, ...), for example real samples as Turner et al.
    do: when d is the exact log ratio a real sample is already a draw of the target, so the chain needs
    no burn-in. A chain that accepts none of its proposals would return its (real) start; it is run
    again from a generator sample instead, so that no starting point is ever returned.
    ``info``: ``accept_rate`` (mean over chains and steps of the first run), ``restarted`` (chains run
    again, 0 without ``x0``).
    """
    positive_int(steps, "steps")
    if x0 is None:
        z = _prior(n, G, generator)
        x = _generate(G, z, batch_size)
        moved = torch.ones(n, dtype=torch.bool)
    else:
        x = x0.to(module_device(G)).clone()
        if len(x) != n:
            raise ValueError(f"x0 holds {len(x)} starting points but n={n} samples were asked for; pass n=len(x0)")
        z = torch.full((n, G.latent_dim), float("nan"), device=x.device)
        moved = torch.zeros(n, dtype=torch.bool)
    logit = _logits(d, x, batch_size)
    moved = moved.to(logit.device)
    accepted = 0.0
    for _ in range(steps):
        z_new = _prior(n, G, generator)
        x_new = _generate(G, z_new, batch_size)
        logit_new = _logits(d, x_new, batch_size)
        accept = torch.rand(n, generator=generator).to(logit.device).log() < logit_new - logit
        z = torch.where(_rows(accept, z), z_new, z)
        x = torch.where(_rows(accept, x), x_new, x)
        logit = torch.where(accept, logit_new, logit)
        moved |= accept
        accepted += accept.float().mean().item()
    stuck = (~moved).nonzero().squeeze(1)
    if len(stuck):
        again = sample_mh(G, d, len(stuck), generator=generator, steps=steps, batch_size=batch_size)
        x[stuck], z[stuck] = again.x, again.z
    return Samples(x, z, 0.0, {"accept_rate": accepted / steps, "restarted": len(stuck)})


def _unique_parameters(modules):
    seen = {}
    for module in modules:
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


@contextlib.contextmanager
def sampling_setup(*modules, channels_last=False, cudnn_benchmark=None):
    """The fast set-up of networks that are only evaluated (DDLS differentiates with respect to z alone),
    for the duration of the block, whatever happens inside it.

    Every parameter is frozen (``requires_grad=False``: autograd neither builds nor keeps anything for the
    weights); with ``channels_last`` the 4-D parameters (convolution weights) are stored channels-last,
    which cuDNN runs fastest with bf16 on tensor cores; ``cudnn_benchmark`` (True/False; None leaves it)
    sets ``torch.backends.cudnn.benchmark``. On leaving, each parameter's ``requires_grad`` and memory
    layout and the cuDNN flag are as they were, so an optimizer holding the parameters is unaffected.
    """
    params = _unique_parameters(modules)
    trainable = [p.requires_grad for p in params]
    strides = [p.stride() for p in params]
    benchmark = torch.backends.cudnn.benchmark
    try:
        # outside any inference_mode of the caller: the new storage must be usable by autograd
        with torch.inference_mode(False), torch.no_grad():
            for p in params:
                p.requires_grad_(False)
                if channels_last and p.dim() == 4:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
        if cudnn_benchmark is not None:
            torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        with torch.inference_mode(False), torch.no_grad():
            for p, flag, stride in zip(params, trainable, strides):
                if p.stride() != stride:
                    p.data = torch.empty_strided(p.shape, stride, dtype=p.dtype, device=p.device).copy_(p.data)
                p.requires_grad_(flag)


def sample_ddls(G, d, n, *, generator=None, steps=200, step_size=0.01, noise_scale=1.0, mala=False, decay=1.0,
                decay_every=None, snapshot_every=None, batch_size=10_000, z0=None, amp=False, channels_last=None,
                cudnn_benchmark=None, check_every=None):
    """Discriminator Driven Latent Sampling: Langevin chains on E(z) = -log p0(z) - d(G(z)).

    Chains start at z0 (default z ~ p0) and run ``steps`` steps of size ``step_size`` (ε in the
    paper's update); see :func:`langevin` for the other arguments. Returns x = G(z_final).
    ``amp=True`` evaluates G and d under bf16 autocast on CUDA (ignored on the CPU); the chains, the
    prior term, the energy and the Metropolis test stay in float32.
    For the duration of the call G and d run in :func:`sampling_setup`: parameters frozen, convolution
    weights channels-last when ``channels_last`` (default: on CUDA), ``torch.backends.cudnn.benchmark``
    set to ``cudnn_benchmark`` (default: True on CUDA, untouched elsewhere); all of it is undone on
    return or error. ``check_every``: steps between finiteness checks (see :func:`langevin`).
    ``info``: ``accept_rate`` (MALA), ``snapshots`` (list of (step, z)), ``energy_trace``.
    """
    z = _starts(n, G, generator, z0)
    on_cuda = z.device.type == "cuda"
    use_amp = amp and on_cuda
    channels_last = on_cuda if channels_last is None else channels_last
    cudnn_benchmark = (True if on_cuda else None) if cudnn_benchmark is None else cudnn_benchmark
    with sampling_setup(G, d, channels_last=channels_last, cudnn_benchmark=cudnn_benchmark):
        return _ddls_chains(G, d, z, steps=steps, step_size=step_size, noise_scale=noise_scale, mala=mala,
                            decay=decay, decay_every=decay_every, snapshot_every=snapshot_every,
                            batch_size=batch_size, generator=generator, use_amp=use_amp, check_every=check_every)


def combine_chain_infos(infos, sizes):
    """The ``info`` of Langevin chains run in chunks (in order, ``sizes`` chains each) as one run's: the
    energy trace and the acceptance rate averaged over all chains, whatever the chunking; the snapshots'
    states joined."""
    n, info = sum(sizes), {}
    if infos and "energy_trace" in infos[0]:
        traces = [i["energy_trace"] for i in infos]
        info["energy_trace"] = [sum(t[k] * m for t, m in zip(traces, sizes)) / n for k in range(len(traces[0]))]
    if infos and "snapshots" in infos[0]:
        snaps = [i["snapshots"] for i in infos]
        info["snapshots"] = [(s[0][0], torch.cat([p[1] for p in s])) for s in zip(*snaps)]
    if infos and "accept_rate" in infos[0]:
        info["accept_rate"] = sum(i["accept_rate"] * m for i, m in zip(infos, sizes)) / n
    return info


def _ddls_chains(G, d, z, *, batch_size, use_amp, snapshot_every, mala, **chain):
    """The body of :func:`sample_ddls`: chains from ``z`` in chunks of ``batch_size``, then x = G(z)."""

    def energy(v):
        # the latents and the prior term stay float32; only G and d run in bf16
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            return latent_energy(v, G, d).float()

    zs, infos = [], []
    for chunk in z.split(batch_size):
        res = langevin(energy, chunk, mala=mala, snapshot_every=snapshot_every, **chain)
        zs.append(res.z)
        infos.append({"energy_trace": res.energy_trace, **({"snapshots": res.snapshots} if snapshot_every else {}),
                      **({"accept_rate": res.accept_rate} if mala else {})})
    info = combine_chain_infos(infos, [len(c) for c in zs])
    z = torch.cat(zs)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
        x = _generate(G, z, batch_size).float()
    return Samples(x, z, 0.0, info)


def sample_dot(G, d, n, *, generator=None, space="latent", steps=100, lr=PAPER_DOT["lr"], betas=PAPER_DOT["betas"],
               k_eff=None, pairs=PAPER_DOT["pairs"], delta=1e-3, batch_size=10_000, z0=None):
    r"""Discriminator Optimal Transport (Tanaka 2019): each sample moved deterministically towards higher d.

    From z0 ~ p0 (or the given ``z0`` (n, k)), ``space='latent'`` minimises ||z - z0|| - d(G(z)) / k_eff
    and returns x = G(z*); ``space='target'`` minimises ||x - G(z0)|| - d(x) / k_eff over x itself
    (:func:`ebmlib.transport.discriminator_transport`; ``z`` is then z0). Norms are taken over each whole
    sample, so images (n, C, H, W) work as vectors do. Without ``k_eff``, it is estimated from ``pairs``
    pairs of generator samples (:func:`ebmlib.transport.estimate_k_eff`), drawn after the starts: the
    same seed starts DOT at the generator sampler's latents, whether or not k_eff is given.

    Defaults: Adam with lr 0.01 and betas (0, 0.9), k_eff the maximum over 100 pairs, as Tanaka uses them
    (he uses Adam in the latent space; the same settings serve here in both); ``steps=100`` and the
    smoothing ``delta=1e-3`` of the norm at its start are ours.
    ``info``: ``k_eff`` (the constant used), ``space``, ``objective_trace`` (mean objective over the
    samples before each step and after the last, ``steps + 1`` floats), ``distance`` (mean transport
    distance, in units of the space). G and d run with frozen parameters (:func:`sampling_setup`); no
    gradient reaches them.
    """
    check_space(space)
    positive_int(steps, "steps")
    positive_float(lr, "lr")
    positive_int(pairs, "pairs")
    z = _starts(n, G, generator, z0)
    with sampling_setup(G, d):
        if k_eff is None:
            k_eff = estimate_k_eff(G, d, _prior(2 * pairs, G, generator), space=space, batch_size=batch_size)
            if not k_eff > 0:
                raise ValueError(f"the estimated k_eff is {k_eff}: d does not change along the generator's samples "
                                 f"({pairs} pairs); pass k_eff, or check that d is not constant")
        else:
            k_eff = positive_float(k_eff, f"k_eff (logit units per unit of the {space} space; None estimates it)")
        runs = [discriminator_transport(G, d, chunk, space=space, k_eff=k_eff, steps=steps, lr=lr, betas=betas,
                                        delta=delta) for chunk in z.split(batch_size)]
    sizes = [len(chunk) for chunk in z.split(batch_size)]
    # means over all samples, whatever the chunking
    trace = [sum(r[2][i] * m for r, m in zip(runs, sizes)) / n for i in range(steps + 1)]
    info = {"k_eff": float(k_eff), "space": space, "objective_trace": trace,
            "distance": sum(r[3] * m for r, m in zip(runs, sizes)) / n}
    return Samples(torch.cat([r[0] for r in runs]), torch.cat([r[1] for r in runs]), 0.0, info)


def reweight(G, d, n, *, seed=0, lattice=False, extent=6.0, batch_size=100_000):
    r"""A sampler-free picture of p_t: points with self-normalised weights, no chain, step or test.

    Default: n generator samples z ~ p0, x = G(z), each weighted by w ∝ exp(d(x)) (importance sampling
    of p_t(z) ∝ p0(z) e^{d(G(z))} with p0 as proposal). Then Σ w f(x) estimates E_{p_t}[f]. It is
    trustworthy only when the effective sample size (Σ w)^2 / Σ w^2 is a sizeable share of n: a logit
    that is large where G rarely goes puts much of p_t's mass on a few samples.

    ``lattice=True`` (latents of size 1 to 3): quadrature instead. The points z lie on a lattice of
    about n points covering [-extent, extent]^k, shifted by a random offset drawn from ``seed``, with
    weights w ∝ p0(z) e^{d(G(z))}. In two or three dimensions this resolves thin, steep regions of e^d
    that random samples miss; two shifts give two independent estimates whose difference is the error.
    Returns :class:`Samples` with ``info``: ``weights`` (n',) float64 summing to 1, ``ess`` (float),
    ``lattice`` (bool).
    """
    positive_int(n, "n (the number of samples)")
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with evaluating(*[m for m in (G, d) if m is not None]):
        if lattice:
            k = G.latent_dim
            if not 1 <= k <= 3:
                raise ValueError(f"lattice quadrature needs a latent of size 1 to 3, G's is {k}; use lattice=False")
            spacing = 2 * extent / n ** (1 / k)
            axis = torch.arange(-extent, extent, spacing)
            offset = spacing * torch.rand(k, generator=generator)
            z = (torch.cartesian_prod(*[axis] * k).reshape(-1, k) + offset).to(module_device(G))
            log_prior = log_standard_normal(z).double()
        else:
            z = _prior(n, G, generator)
            log_prior = 0.0
        x = _generate(G, z, batch_size)
        logit = _logits(d, x, batch_size).double() + log_prior
    weights = torch.softmax(logit, dim=0)
    ess = float(1.0 / (weights ** 2).sum())
    return Samples(x, z, time.perf_counter() - start, {"weights": weights, "ess": ess, "lattice": lattice})


SAMPLERS = {"generator": sample_generator, "drs": sample_drs, "mh": sample_mh, "ddls": sample_ddls, "dot": sample_dot}


def sample(method, G, d, n, *, seed=0, **options):
    """Draw n samples with ``method`` in {'generator', 'drs', 'mh', 'ddls', 'dot'}; returns :class:`Samples`.

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
