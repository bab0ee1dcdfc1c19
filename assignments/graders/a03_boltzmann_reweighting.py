"""Checks of assignment 03: self-normalised weights and Z0, against torch and exact Gaussian answers."""
import math

import torch

from assignments.grading import check, main, number, student_function

N = 200_000


def gaussian_logits():
    """Samples of p_g = N(0, 1) and the exact log ratio d*(x) = x - 1/2 to p_data = N(1, 1)."""
    x = torch.randn(N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return x, x - 0.5


@check("boltzmann_weights", points=2)
def weights_match_softmax(ns):
    """boltzmann_weights equals the softmax of the logits, also for logits of size 500"""
    weights = student_function(ns, "boltzmann_weights")
    logits = 200 * torch.randn(100, generator=torch.Generator().manual_seed(0))
    got = torch.as_tensor(weights(logits))
    expected = torch.softmax(logits, dim=0)
    assert torch.isfinite(got).all(), "non-finite weights: subtract the largest logit before exponentiating"
    assert torch.allclose(got, expected, atol=1e-6), f"largest error {(got - expected).abs().max().item():.3g}"


@check("boltzmann_weights", points=3)
def weights_correct_the_generator(ns):
    """weights e^{d*} turn N(0, 1) samples into N(1, 1)'s mean and variance"""
    weights = student_function(ns, "boltzmann_weights")
    x, logits = gaussian_logits()
    w = torch.as_tensor(weights(logits), dtype=torch.float64)
    mean = (w * x).sum().item()
    variance = (w * (x - mean) ** 2).sum().item()
    # effective sample size n e^{-1}: the weighted mean's standard error is about 0.004
    assert abs(mean - 1) < 0.02 and abs(variance - 1) < 0.03, \
        f"weighted mean {mean:.4f} and variance {variance:.4f}, expected 1 and 1 (±0.02, ±0.03)"


@check("estimate_z0", points=2)
def z0_matches_the_mean(ns):
    """estimate_z0 equals the mean of e^d"""
    z0 = student_function(ns, "estimate_z0")
    logits = torch.randn(1000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = torch.exp(logits).mean().item()
    got = number(z0(logits))
    assert math.isclose(got, expected, rel_tol=1e-9), f"got {got:.6g}, expected {expected:.6g}"


@check("estimate_z0", points=3)
def z0_of_the_exact_ratio(ns):
    """Z0 of the exact log ratio is 1, of d* + log 2 is 2"""
    z0 = student_function(ns, "estimate_z0")
    _, logits = gaussian_logits()
    # Var_pg[e^{d*}] = e - 1, so the estimate's standard error is sqrt((e - 1) / n) = 0.003
    for shift, expected in ((0.0, 1.0), (math.log(2), 2.0)):
        got = number(z0(logits + shift))
        assert abs(got - expected) < 0.015 * expected, f"Z0 of d* + {shift:.3f}: got {got:.4f}, expected {expected}"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a03_boltzmann_reweighting"))
