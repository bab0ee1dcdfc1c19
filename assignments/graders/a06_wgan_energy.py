"""Checks of assignment 06: W1 from samples and the gradient penalty, against ebmlib and exact answers."""
import math

import torch
from torch import nn

import ebmlib
from assignments.grading import check, main, number, student_function


@check("w1_samples", points=2)
def w1_matches_ebmlib(ns):
    """w1_samples equals ebmlib.wasserstein.w1_empirical"""
    w1 = student_function(ns, "w1_samples")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1000, generator=g, dtype=torch.float64), 3 * torch.rand(1000, generator=g, dtype=torch.float64)
    expected = ebmlib.wasserstein.w1_empirical(x, y)
    got = number(w1(x, y))
    assert math.isclose(got, expected, rel_tol=1e-9), f"got {got:.6g}, ebmlib gives {expected:.6g}"


@check("w1_samples", points=3)
def w1_exact_answers(ns):
    """W1 by hand ([0, 1, 2] against [2, 3, 1]: 1) and of a shift by 2 (2)"""
    w1 = student_function(ns, "w1_samples")
    by_hand = number(w1(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([2.0, 3.0, 1.0])))
    assert math.isclose(by_hand, 1.0, rel_tol=1e-6), f"[0, 1, 2] against [2, 3, 1]: got {by_hand:.6g}, expected 1"
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    shifted = number(w1(x, x.flip(0) + 2))  # the same values, moved by 2 and reordered
    assert math.isclose(shifted, 2.0, rel_tol=1e-9), f"a sample against itself shifted by 2: got {shifted:.6g}, expected 2"


class ScaledProjection(nn.Module):
    """D(x) = scale · x·u with |u| = 1: its gradient norm is |scale| everywhere."""

    def __init__(self, scale, dim=3):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.u = torch.ones(dim) / math.sqrt(dim)

    def forward(self, x):
        return self.scale * (x @ self.u)


@check("gradient_penalty", points=2)
def penalty_matches_ebmlib(ns):
    """gradient_penalty equals ebmlib.losses.gradient_penalty and trains D"""
    penalty = student_function(ns, "gradient_penalty")
    torch.manual_seed(0)
    D = ebmlib.nets.MLPDiscriminator(in_dim=2, hidden=16, depth=2)
    real, fake = torch.randn(128, 2), torch.randn(128, 2) + 1
    expected = ebmlib.losses.gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(3))
    a = torch.rand(128, 1, generator=torch.Generator().manual_seed(3))
    got = penalty(D, real, fake, a)
    assert math.isclose(number(got), expected.item(), rel_tol=1e-4), f"got {number(got):.6g}, ebmlib gives {expected.item():.6g}"
    assert isinstance(got, torch.Tensor) and got.requires_grad, "the penalty must stay differentiable (create_graph=True)"


@check("gradient_penalty", points=3)
def penalty_of_known_slopes(ns):
    """a critic of slope 3 costs 10·(3 - 1)² = 40, of slope 1/2 costs 2.5"""
    penalty = student_function(ns, "gradient_penalty")
    g = torch.Generator().manual_seed(4)
    real, fake, a = torch.randn(64, 3, generator=g), torch.randn(64, 3, generator=g), torch.rand(64, 1, generator=g)
    for scale, expected in ((3.0, 40.0), (0.5, 2.5)):
        got = number(penalty(ScaledProjection(scale), real, fake, a))
        assert math.isclose(got, expected, rel_tol=1e-5), f"slope {scale}: got {got:.6g}, expected {expected}"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a06_wgan_energy"))
