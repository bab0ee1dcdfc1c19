r"""Maximum-likelihood training of an energy-based model p_θ(x) = exp(-E_θ(x)) / Z_θ.

The gradient of the average log-likelihood of data is

    ∇_θ E_data[log p_θ] = -E_data[∇_θ E_θ] + E_{p_θ}[∇_θ E_θ],

the second term being -∇_θ log Z_θ. The model expectation is estimated with Langevin samples
(``ebmlib.mcmc.langevin``), started from noise (short-run), from the data batch (contrastive divergence,
Hinton 2002) or from where the previous update left them (persistent chains, Tieleman 2008). Training
descends the surrogate loss ``contrastive_loss``: mean E on data minus mean E on the (detached) model
samples, whose gradient is minus the estimate above.

The energy is any module E: (N, dim) -> (N,), for example ``ebmlib.nets.MLPDiscriminator`` read with
E(x) = its output (low output = likely); nothing else about it is assumed.
"""
import time

import torch

from ._checks import positive_float, positive_int
from ._runtime import evaluating, progress_bar
from .mcmc import langevin

INITS = ("noise", "data", "persistent")


def contrastive_loss(energy_data, energy_model, alpha=0.0):
    """The surrogate whose gradient is minus the log-likelihood gradient estimate: a scalar tensor.

    ``energy_data`` (N,): E_θ at data points; ``energy_model`` (M,): E_θ at model samples, which must not
    carry gradients back into the sampler (detach the samples, not the energies). Returns
    mean(energy_data) - mean(energy_model) + alpha * (mean(energy_data²) + mean(energy_model²)); the last
    term (Du & Mordatch 2019) keeps the energies near 0, since the first two are blind to a shift of E.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    for name, e in (("energy_data", energy_data), ("energy_model", energy_model)):
        if not isinstance(e, torch.Tensor) or e.dim() != 1 or len(e) == 0:
            raise ValueError(f"{name} must be a non-empty tensor of shape (N,), got {getattr(e, 'shape', type(e))}")
    loss = energy_data.mean() - energy_model.mean()
    if alpha:
        loss = loss + alpha * ((energy_data ** 2).mean() + (energy_model ** 2).mean())
    return loss


def _energies(E, x):
    """E(x) with the check that E maps (N, dim) to (N,)."""
    e = E(x)
    if not isinstance(e, torch.Tensor) or e.shape != (len(x),):
        raise ValueError(f"the energy must map (N, dim) to energies of shape (N,); for a batch of shape "
                         f"{tuple(x.shape)} it returned {getattr(e, 'shape', type(e))}")
    return e


def model_samples(E, x0, *, langevin_steps, step_size, noise_scale=1.0, generator=None):
    """``langevin_steps`` Langevin steps of size ``step_size`` (ε, as in ``ebmlib.langevin``) on E from
    ``x0`` (N, dim); returns the final states (N, dim), detached. E's parameters get no ``.grad`` and E
    is in eval mode during the chains (a spectrally normalised E keeps its power-iteration state)."""
    params = [p for p in E.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with evaluating(E):
            return langevin(lambda x: _energies(E, x), x0, steps=langevin_steps, step_size=step_size,
                            noise_scale=noise_scale, generator=generator).z
    finally:
        for p in params:
            p.requires_grad_(True)


def train_ebm(E, sample_data, *, steps, batch_size=256, langevin_steps=20, step_size=0.01, init="persistent",
              noise_std=1.0, noise_scale=1.0, alpha=0.0, lr=1e-3, betas=(0.0, 0.999), lr_decay=False, seed=0,
              progress=None, log_every=10):
    """Fit the energy module E to data by (approximate) maximum likelihood, in place; returns the history.

    ``sample_data(n, generator) -> (n, dim)`` draws data. Each of the ``steps`` Adam updates (learning
    rate ``lr``) uses a data batch of ``batch_size`` and as many model samples, made by ``langevin_steps``
    Langevin steps of size ``step_size`` (ε, in the units of the data squared: a step moves a point by
    about sqrt(ε)) on the current E, started according to ``init``:

    - ``"noise"``: fresh N(0, noise_std² I) points every update (short-run chains);
    - ``"data"``: the update's data batch (contrastive divergence, CD-k with k = ``langevin_steps``);
    - ``"persistent"``: the chains where the previous update left them, started once from N(0, noise_std² I)
      (persistent contrastive divergence).

    ``noise_scale`` < 1 runs colder chains (biased); ``alpha`` weighs the energy-magnitude penalty of
    ``contrastive_loss``. ``lr_decay=True`` lowers the learning rate linearly to 0 over the updates, which
    damps the tug of war between the energy and its own samples at the end. Deterministic for a given
    ``seed`` on the CPU.

    Returns a dict: lists ``step``, ``loss`` (mean E(data) - mean E(model), without the penalty),
    ``energy_data`` and ``energy_model`` (the batch means), every ``log_every`` updates; ``samples``, the
    last update's model samples (batch_size, dim); ``seconds`` (float).
    """
    positive_int(steps, "steps"), positive_int(batch_size, "batch_size"), positive_int(langevin_steps, "langevin_steps")
    positive_int(log_every, "log_every")
    positive_float(step_size, "step_size"), positive_float(lr, "lr"), positive_float(noise_std, "noise_std")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    params = [p for p in E.parameters() if p.requires_grad]
    if not params:
        raise ValueError("E has no trainable parameters")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    probe = sample_data(batch_size, gen)
    if not isinstance(probe, torch.Tensor) or probe.dim() != 2 or len(probe) != batch_size:
        raise ValueError(f"sample_data(n, generator) must return a tensor of shape (n, dim); for n = {batch_size} "
                         f"it returned {getattr(probe, 'shape', type(probe))}")
    dim = probe.shape[1]
    opt = torch.optim.Adam(params, lr=lr, betas=betas)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps if lr_decay else 1.0)
    chains = noise_std * torch.randn(batch_size, dim, generator=gen) if init == "persistent" else None
    history = {"step": [], "loss": [], "energy_data": [], "energy_model": []}
    start = time.perf_counter()
    E.train()
    for step in progress_bar(range(1, steps + 1), progress=progress, desc="train EBM"):
        real = probe if step == 1 else sample_data(batch_size, gen)
        if init == "noise":
            x0 = noise_std * torch.randn(batch_size, dim, generator=gen)
        else:
            x0 = real if init == "data" else chains
        fake = model_samples(E, x0, langevin_steps=langevin_steps, step_size=step_size, noise_scale=noise_scale,
                             generator=gen)
        if init == "persistent":
            chains = fake
        e = _energies(E, torch.cat([real, fake]))
        e_real, e_fake = e[:batch_size], e[batch_size:]
        loss = contrastive_loss(e_real, e_fake, alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % log_every == 0 or step == steps:
            history["step"].append(step)
            history["loss"].append((e_real.mean() - e_fake.mean()).item())
            history["energy_data"].append(e_real.mean().item())
            history["energy_model"].append(e_fake.mean().item())
    E.eval()
    history["samples"] = fake
    history["seconds"] = time.perf_counter() - start
    return history
