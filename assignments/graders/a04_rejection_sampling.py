"""Checks of assignment 04: the exact acceptance rate and DRS's rule, against ebmlib and exact answers."""
import math

import torch

import ebmlib
from assignments.grading import check, main, number, student_function


@check("acceptance_rate", points=2)
def rate_matches_the_formula(ns):
    """acceptance_rate equals the mean of min(1, e^{d - log M})"""
    rate = student_function(ns, "acceptance_rate")
    logits = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_m = 1.0  # some logits lie above the bound: those are always accepted
    expected = torch.exp(logits - log_m).clamp(max=1).mean().item()
    got = number(rate(logits, log_m))
    assert math.isclose(got, expected, rel_tol=1e-9), f"got {got:.6g}, expected {expected:.6g}"


@check("acceptance_rate", points=3)
def rate_is_one_over_the_largest_ratio(ns):
    """with the optimal logit the rate is 1 / sup p_data/p_g (0.8 for N(0, 0.8²) against N(0, 1))"""
    rate = student_function(ns, "acceptance_rate")
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    data, gen = torch.distributions.Normal(0.0, 0.8), torch.distributions.Normal(0.0, 1.0)
    logits = data.log_prob(x) - gen.log_prob(x)
    got = number(rate(logits, math.log(1.25)))  # the ratio peaks at x = 0: 1 / 0.8
    # binomial standard error sqrt(0.8 · 0.2 / n) = 0.0009
    assert abs(got - 0.8) < 0.005, f"got {got:.4f}, expected 0.8 (±0.005)"


@check("drs_log_acceptance", points=2)
def drs_matches_ebmlib(ns):
    """drs_log_acceptance equals ebmlib.samplers.drs_log_acceptance"""
    drs = student_function(ns, "drs_log_acceptance")
    g = torch.Generator().manual_seed(2)
    logit = 3 * torch.randn(500, generator=g)
    log_m = logit.max().item()
    for gamma in (0.0, -1.5, 2.0):
        expected = ebmlib.samplers.drs_log_acceptance(logit, log_m, gamma=gamma)
        got = torch.as_tensor(drs(logit, log_m, gamma=gamma), dtype=torch.float64)
        assert torch.allclose(got, expected, rtol=1e-6, atol=1e-9), \
            f"γ = {gamma}: largest error {(got - expected).abs().max().item():.3g}"


@check("drs_log_acceptance", points=3)
def drs_without_shift_is_exact_rejection(ns):
    """with γ = 0, DRS accepts with probability e^{d - log M}"""
    drs = student_function(ns, "drs_log_acceptance")
    logit = torch.linspace(-8, 0, 81, dtype=torch.float64)
    got = torch.as_tensor(drs(logit, 0.0, gamma=0.0), dtype=torch.float64)
    # sigmoid(F) = e^a / (1 + e^a (1 - e^{-ε})), so log σ(F) differs from a by at most ε = 1e-6
    assert torch.allclose(got, logit, atol=1e-5), \
        f"log acceptance differs from d - log M by up to {(got - logit).abs().max().item():.3g}"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a04_rejection_sampling"))
