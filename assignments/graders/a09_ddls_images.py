"""Checks of assignment 09: the effective sample size against ebmlib.samplers.reweight and exact answers."""
import math

import torch
from torch import nn

import ebmlib
from assignments.grading import check, main, number, student_function


class LatentGenerator(nn.Module):
    """G(z) = z on a 1-D latent: the logit d(G(z)) is a function of z the check chooses."""

    latent_dim = 1

    def forward(self, z):
        return z


class QuadraticLogit(nn.Module):
    """d(x) = 1.5 x + 0.3 x² on 1-D samples (N, 1) -> (N,)."""

    def forward(self, x):
        return 1.5 * x[:, 0] + 0.3 * x[:, 0] ** 2


@check("effective_sample_size", points=2)
def ess_matches_reweight(ns):
    """effective_sample_size equals the ESS that ebmlib.samplers.reweight reports"""
    ess = student_function(ns, "effective_sample_size")
    d = QuadraticLogit()
    out = ebmlib.samplers.reweight(LatentGenerator(), d, 5000, seed=0)
    got = number(ess(d(out.x).double()))
    assert math.isclose(got, out.info["ess"], rel_tol=1e-6), f"got {got:.6g}, reweight reports {out.info['ess']:.6g}"


@check("effective_sample_size", points=3)
def ess_exact_answers(ns):
    """ESS is n for equal logits, 1 for one dominant logit of 1000, n e^{-σ²} for Gaussian logits"""
    ess = student_function(ns, "effective_sample_size")
    equal = number(ess(torch.full((250,), 3.0, dtype=torch.float64)))
    assert math.isclose(equal, 250, rel_tol=1e-9), f"250 equal logits: got {equal:.6g}, expected 250"
    dominant = number(ess(torch.cat([torch.tensor([1000.0]), torch.zeros(99)]).double()))
    assert math.isclose(dominant, 1.0, rel_tol=1e-9), f"one logit of 1000 among zeros: got {dominant:.6g}, expected 1"
    n, sigma = 200_000, 0.5
    logits = sigma * torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ratio = number(ess(logits)) / n
    # for Gaussian logits ESS/n -> e^{-σ²} = 0.7788; the sampling error at n = 200,000 is about 0.001
    assert abs(ratio - math.exp(-sigma ** 2)) < 0.005, f"ESS/n = {ratio:.4f}, expected e^-σ² = {math.exp(-sigma ** 2):.4f}"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a09_ddls_images"))
