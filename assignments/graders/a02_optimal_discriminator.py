"""Checks of assignment 02: the logistic loss against ebmlib's and by hand; the hinge loss's minimiser."""
import math

import torch

import ebmlib
from assignments.grading import check, main, number, student_function


@check("logistic_loss", points=2)
def logistic_matches_ebmlib(ns):
    """logistic_loss equals ebmlib.losses.NonSaturating's D loss"""
    loss = student_function(ns, "logistic_loss")
    g = torch.Generator().manual_seed(0)
    real, fake = 5 * torch.randn(300, generator=g), 5 * torch.randn(200, generator=g) + 1
    expected = ebmlib.losses.NonSaturating().discriminator(real, fake).item()
    got = number(loss(real, fake))
    assert math.isclose(got, expected, rel_tol=1e-5), f"got {got:.6g}, ebmlib gives {expected:.6g}"


@check("logistic_loss", points=3)
def logistic_by_hand(ns):
    """logistic_loss on hand-computed cases (log 4, 2 log 4/3, logits of 100)"""
    loss = student_function(ns, "logistic_loss")
    cases = [([0.0, 0.0], [0.0], math.log(4)),                            # σ = 1/2 everywhere
             ([math.log(3)], [-math.log(3)], 2 * math.log(4 / 3)),        # σ = 3/4 on real, 1/4 on fake
             ([-100.0], [100.0], 200.0),                                   # confidently wrong: softplus(100) each
             ([100.0], [-100.0], 2 * math.log1p(math.exp(-100.0)))]        # confidently right: about 0
    for real, fake, expected in cases:
        got = number(loss(torch.tensor(real), torch.tensor(fake)))
        assert math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6), \
            f"real logits {real}, fake {fake}: got {got:.6g}, expected {expected:.6g}"


def hinge_objective(p, q, t):
    return p * torch.relu(1 - t) + q * torch.relu(1 + t)


@check("hinge_minimiser", points=2)
def hinge_reaches_the_minimum(ns):
    """hinge_minimiser reaches the objective's minimum (found on a grid)"""
    minimiser = student_function(ns, "hinge_minimiser")
    g = torch.Generator().manual_seed(1)
    p, q = torch.rand(500, generator=g, dtype=torch.float64), torch.rand(500, generator=g, dtype=torch.float64)
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64)  # holds -1 and 1
    best = hinge_objective(p[:, None], q[:, None], grid).min(dim=1).values
    got = hinge_objective(p, q, torch.as_tensor(minimiser(p, q), dtype=torch.float64))
    gap = (got - best).max().item()
    assert gap < 1e-12, f"the objective at your t exceeds its minimum by up to {gap:.3g}"


@check("hinge_minimiser", points=3)
def hinge_by_hand(ns):
    """hinge_minimiser is +1 where p_data > p_g, -1 where p_data < p_g"""
    minimiser = student_function(ns, "hinge_minimiser")
    p, q = torch.tensor([0.3, 0.1, 2.0, 0.0, 0.5]), torch.tensor([0.1, 0.3, 1.9, 0.2, 0.5])
    t = torch.as_tensor(minimiser(p, q), dtype=torch.float32)
    assert torch.equal(t[:4], torch.tensor([1.0, -1.0, 1.0, -1.0])), f"t = {t[:4].tolist()} for p_data {p[:4].tolist()}, p_g {q[:4].tolist()}"
    assert -1 <= t[4] <= 1, f"where p_data = p_g every t in [-1, 1] is optimal, got {t[4].item()}"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a02_optimal_discriminator"))
