r"""Langevin dynamics on any energy, with or without the Metropolis correction (ULA and MALA).

With step size ε, following the DDLS paper's notation,

    z_{i+1} = z_i - (ε/2) ∇E(z_i) + sqrt(ε) ξ_i,   ξ_i ~ N(0, I),

optionally corrected by a Metropolis-Hastings test (MALA), which makes exp(-E) exactly invariant.
``ebmlib.samplers`` runs it on the latent energy of DDLS; ``ebmlib.langevin`` is this module's ``langevin``.
"""
import math
from dataclasses import dataclass, field

import torch

from ._checks import positive_float, positive_int
from ._runtime import at_least_fp32, generator_on


class LangevinDivergence(FloatingPointError, ValueError):
    """A Langevin chain's energy or gradient turned non-finite.

    Attributes: ``step`` (1-based step at which it happened), ``step_size``, ``last_finite``
    (the chains' states at the previous step, so the samples so far are not lost).
    """

    def __init__(self, step, step_size, last_finite):
        self.step, self.step_size, self.last_finite = step, step_size, last_finite
        super().__init__(
            f"Langevin chain diverged: non-finite energy or gradient at step {step} with step size "
            f"{step_size:g}. Try a smaller step size (for example {step_size / 10:g}); the states before "
            f"the failing step are in .last_finite")


@dataclass
class LangevinResult:
    """Final states ``z`` (N, k); ``accept_rate`` (MALA only, else None); ``snapshots``: list of
    (step, states) pairs; ``energy_trace``: mean energy per step, list of floats."""

    z: torch.Tensor
    accept_rate: float | None = None
    snapshots: list = field(default_factory=list)
    energy_trace: list = field(default_factory=list)


def _energy_and_grad(energy, z):
    """E(z) of shape (N,) and dE/dz, without touching any parameter's .grad.

    Works under ``torch.no_grad()`` and ``torch.inference_mode()`` too: the gradient is local.
    """
    with torch.inference_mode(False), torch.enable_grad():
        z = z.detach().clone().requires_grad_(True)
        e = energy(z)
        (grad,) = torch.autograd.grad(e.sum(), z)
    return e.detach(), grad.detach()


def _default_check_every(device):
    # On the CPU a check costs nothing (operations are synchronous); on a GPU each check waits for the
    # device, so it runs every 50 steps there: under 1% of a chain's time at DDLS's step cost.
    return 1 if device.type == "cpu" else 50


def langevin(energy, z0, *, steps, step_size, noise_scale=1.0, mala=False, decay=1.0, decay_every=None,
             snapshot_every=None, generator=None, check_every=None):
    """Run N independent Langevin chains on ``energy``: (N, k) -> (N,), started at ``z0`` (N, k).

    ``step_size`` is ε above; ``noise_scale`` multiplies the sqrt(ε) noise (1 samples exp(-E);
    below 1 is a colder, biased sampler). Every ``decay_every`` steps ε is multiplied by ``decay``
    (the noise follows as sqrt(ε), so drift and noise stay matched). With ``mala=True`` each
    proposal passes a Metropolis-Hastings test, which makes exp(-E) exactly invariant; the energies,
    log alpha and the test are computed in float32 (float64 for float64 energies) whatever precision
    ``energy`` evaluates its networks in. ``snapshot_every`` keeps (step, states) pairs, step 0 included.

    The loop never waits for the device between checks: the energy trace and the acceptance count stay
    on it until the end, and finiteness is looked at every ``check_every`` steps (default: every step
    on the CPU, every 50 on a GPU). Chains stop moving at the first non-finite step, so a check finds
    the states just before it. The results do not depend on ``check_every``.

    Raises :class:`LangevinDivergence` when the energy or its gradient turns non-finite, naming the
    first such step and its step size, with the states before that step in ``.last_finite``.
    """
    positive_int(steps, "steps")
    eps = positive_float(step_size, "step_size")
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale!r}")
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay!r}")
    if decay_every is not None:
        positive_int(decay_every, "decay_every")
    elif decay != 1.0:
        raise ValueError(f"decay={decay} needs decay_every (how many steps between decays); pass both or neither")
    if mala and noise_scale != 1.0:
        raise ValueError(f"MALA corrects towards exp(-E) only with the matching noise, noise_scale=1; got "
                         f"{noise_scale}. Use mala=False for a colder (biased) sampler")
    if not isinstance(z0, torch.Tensor) or z0.dim() != 2:
        raise ValueError(f"z0 must be a tensor of shape (N, k), got {getattr(z0, 'shape', type(z0))}")
    check_every = _default_check_every(z0.device) if check_every is None else positive_int(check_every, "check_every")

    z = z0.detach().clone()
    # on a GPU a generator there, seeded from ``generator``: drawing on the CPU and copying every step would
    # cost a good part of each step; the same seed still gives the same chains on the same device
    draws = generator_on(z.device, generator)
    e, grad = _energy_and_grad(energy, z)
    e = at_least_fp32(e)
    if not (torch.isfinite(e).all() and torch.isfinite(grad).all()):
        raise LangevinDivergence(0, eps, z.clone())
    result = LangevinResult(z=z)
    if snapshot_every:
        result.snapshots.append((0, z.clone()))
    trace = torch.empty(steps, dtype=e.dtype, device=z.device)
    accepted = torch.zeros((), dtype=torch.long, device=z.device)
    # device-side divergence bookkeeping: `healthy` until the first non-finite step, whose number is kept
    healthy = torch.ones((), dtype=torch.bool, device=z.device)
    first_bad = torch.zeros((), dtype=torch.long, device=z.device)
    step_sizes = []
    for step in range(1, steps + 1):
        if decay_every and step > 1 and (step - 1) % decay_every == 0:
            eps *= decay
        step_sizes.append(eps)
        noise = torch.randn(z.shape, generator=draws, dtype=z.dtype, device=z.device)
        proposal = z - 0.5 * eps * grad + noise_scale * math.sqrt(eps) * noise
        e_new, grad_new = _energy_and_grad(energy, proposal)
        e_new = at_least_fp32(e_new)
        finite = torch.isfinite(e_new).all() & torch.isfinite(grad_new).all()
        first_bad = torch.where(healthy & ~finite, step, first_bad)
        healthy = healthy & finite
        if mala:
            # log q(a | b) for the Langevin proposal from b, up to a constant shared by both directions
            def log_q(a, b, grad_b):
                return -((a - b + 0.5 * eps * grad_b) ** 2).sum(dim=1) / (2 * eps * noise_scale ** 2)

            log_alpha = (e - e_new) + log_q(z, proposal, grad_new) - log_q(proposal, z, grad)
            u = torch.rand(len(z), generator=draws, device=z.device)
            accept = (torch.log(u) < log_alpha) & healthy
            accepted += accept.sum()
        else:
            accept = healthy.expand(len(z))  # past a non-finite step the chains stay where they were
        keep = accept[:, None]
        z = torch.where(keep, proposal, z)
        e = torch.where(accept, e_new, e)
        grad = torch.where(keep, grad_new, grad)
        trace[step - 1] = e.mean()
        if snapshot_every and step % snapshot_every == 0:
            result.snapshots.append((step, z.clone()))
        if step % check_every == 0 or step == steps:
            bad = int(first_bad)  # the one wait for the device in `check_every` steps
            if bad:
                raise LangevinDivergence(bad, step_sizes[bad - 1], z.clone())
    result.z = z
    result.energy_trace = trace.tolist()
    result.accept_rate = int(accepted) / (steps * len(z)) if mala else None
    return result
