"""Checks of assignment 01: the ULA step against ebmlib.langevin and the Gaussian's exact covariances."""
import math

import torch

import ebmlib
from assignments.grading import check, main, student_function

SIGMA = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
PRECISION = torch.linalg.inv(SIGMA)


def gaussian_energy(x):
    return 0.5 * ((x @ PRECISION) * x).sum(dim=1)


def eigen_variances(z):
    """The chains' variances along the eigenvectors of SIGMA (the steep and the shallow direction)."""
    _, vectors = torch.linalg.eigh(SIGMA)
    return (z @ vectors).var(dim=0)


def assert_variances(z, covariance, rtol, what):
    _, vectors = torch.linalg.eigh(SIGMA)
    expected = torch.diagonal(vectors.T @ covariance @ vectors)
    measured = eigen_variances(z)
    # 10,000 chains: a variance's standard error is sqrt(2 / 10,000) = 1.4% of it; the tolerance is 3.5 of those
    assert torch.allclose(measured, expected, rtol=rtol), \
        f"{what}: variances along Σ's eigenvectors {measured.tolist()}, expected {expected.tolist()} (±{rtol:.0%})"


@check("ula_step", points=2)
def ula_matches_ebmlib(ns):
    """ula_step equals one step of ebmlib.langevin"""
    ula_step = student_function(ns, "ula_step")
    z0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = ebmlib.langevin(gaussian_energy, z0, steps=1, step_size=0.3,
                               generator=torch.Generator().manual_seed(1)).z
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = ula_step(z0.clone(), z0 @ PRECISION, 0.3, noise)
    assert torch.allclose(torch.as_tensor(got), expected, atol=1e-9), "differs from ebmlib.langevin's step"


@check("ula_step", points=3)
def ula_stationary_covariance(ns):
    """ULA on a Gaussian settles at (P - εP²/4)⁻¹"""
    ula_step = student_function(ns, "ula_step")
    draws, step_size = torch.Generator().manual_seed(2), 0.2
    z = torch.zeros(10_000, 2, dtype=torch.float64)
    for _ in range(300):
        z = ula_step(z, z @ PRECISION, step_size, torch.randn(z.shape, generator=draws, dtype=torch.float64))
    biased = torch.linalg.inv(PRECISION - step_size / 4 * PRECISION @ PRECISION)
    assert_variances(z, biased, 0.05, "ULA at ε = 0.2")


def log_q(a, b, grad_b, step_size):
    """log N(a; b - (ε/2) grad_b, ε I), normalising constant included."""
    mean, std = b - 0.5 * step_size * grad_b, math.sqrt(step_size)
    return torch.distributions.Normal(mean, std).log_prob(a).sum(dim=1)


@check("mala_log_acceptance", points=2)
def mala_matches_the_ratio(ns):
    """mala_log_acceptance equals the Metropolis-Hastings ratio"""
    mala = student_function(ns, "mala_log_acceptance")
    g = torch.Generator().manual_seed(3)
    z, proposal = (torch.randn(50, 3, generator=g, dtype=torch.float64) for _ in range(2))
    grad_z, grad_p = (torch.randn(50, 3, generator=g, dtype=torch.float64) for _ in range(2))
    e_z, e_p = (torch.randn(50, generator=g, dtype=torch.float64) for _ in range(2))
    step_size = 0.37
    expected = e_z - e_p + log_q(z, proposal, grad_p, step_size) - log_q(proposal, z, grad_z, step_size)
    got = torch.as_tensor(mala(z, proposal, e_z, e_p, grad_z, grad_p, step_size))
    assert got.shape == (50,), f"returned shape {tuple(got.shape)}, expected (50,)"
    assert torch.allclose(got, expected, atol=1e-9), f"largest error {(got - expected).abs().max().item():.3g}"


@check("mala_log_acceptance", points=3)
def mala_removes_the_bias(ns):
    """MALA at ε = 0.6 samples N(0, Σ) exactly"""
    mala = student_function(ns, "mala_log_acceptance")
    draws, step_size = torch.Generator().manual_seed(4), 0.6
    z = torch.zeros(10_000, 2, dtype=torch.float64)
    energy, grad = gaussian_energy(z), z @ PRECISION
    for _ in range(300):
        proposal = z - 0.5 * step_size * grad + math.sqrt(step_size) * torch.randn(z.shape, generator=draws,
                                                                                  dtype=torch.float64)
        energy_p, grad_p = gaussian_energy(proposal), proposal @ PRECISION
        log_alpha = torch.as_tensor(mala(z, proposal, energy, energy_p, grad, grad_p, step_size))
        accept = torch.rand(len(z), generator=draws, dtype=torch.float64).log() < log_alpha
        z = torch.where(accept[:, None], proposal, z)
        energy, grad = torch.where(accept, energy_p, energy), torch.where(accept[:, None], grad_p, grad)
    assert_variances(z, SIGMA, 0.05, "MALA at ε = 0.6")


if __name__ == "__main__":
    raise SystemExit(main(assignment="a01_langevin"))
