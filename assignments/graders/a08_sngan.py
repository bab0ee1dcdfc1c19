"""Checks of assignment 08: power iteration against torch's singular values; the EMA against ebmlib's."""
import copy
import math

import torch

from assignments.grading import check, main, number, student_function
from ebmlib import nets, train_images


@check("spectral_norm_estimate", points=2)
def power_iteration_matches_svd(ns):
    """spectral_norm_estimate equals the largest singular value (torch.linalg)"""
    estimate = student_function(ns, "spectral_norm_estimate")
    W = torch.randn(20, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.linalg.matrix_norm(W, ord=2).item()
    got = number(estimate(W, iterations=500))
    assert math.isclose(got, expected, rel_tol=1e-4), f"got {got:.6g}, the largest singular value is {expected:.6g}"


@check("spectral_norm_estimate", points=2)
def power_iteration_exact_answers(ns):
    """σ_max of diag(3, -2, 1) is 3, of 5·u vᵀ (unit u, v) is 5"""
    estimate = student_function(ns, "spectral_norm_estimate")
    diagonal = number(estimate(torch.diag(torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64)), iterations=200))
    assert math.isclose(diagonal, 3.0, rel_tol=1e-6), f"diag(3, -2, 1): got {diagonal:.6g}, expected 3"
    u, v = torch.tensor([0.6, 0.8], dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    rank_one = number(estimate(5 * torch.outer(u, v), iterations=10))
    assert math.isclose(rank_one, 5.0, rel_tol=1e-6), f"5 u vᵀ: got {rank_one:.6g}, expected 5"


@check("ema_update", points=2)
def ema_matches_ebmlib(ns):
    """ema_update on every parameter equals ebmlib.train_images.update_ema"""
    update = student_function(ns, "ema_update")
    torch.manual_seed(1)
    G, average = nets.MLPGenerator(hidden=8, depth=2), nets.MLPGenerator(hidden=8, depth=2)
    reference = copy.deepcopy(average)
    train_images.update_ema(reference, G, 0.9)
    for mine, ref, current in zip(average.parameters(), reference.parameters(), G.parameters()):
        got = torch.as_tensor(update(mine.detach(), current.detach(), 0.9))
        assert torch.allclose(got, ref.detach(), atol=1e-6), f"differs from update_ema by {(got - ref).abs().max().item():.3g}"


@check("ema_update", points=3)
def ema_lags_by_its_mean_age(ns):
    """the EMA of θ_t = t lags by β/(1 - β) = 99 steps at β = 0.99"""
    update = student_function(ns, "ema_update")
    average = torch.zeros((), dtype=torch.float64)
    for t in range(1, 3001):
        average = torch.as_tensor(update(average, torch.tensor(float(t), dtype=torch.float64), 0.99))
    lag = 3000 - average.item()
    # from a zero start the average is t - c (1 - β^t) with c = β/(1 - β): the lag is 99 (1 - 1e-13)
    assert math.isclose(lag, 99.0, abs_tol=1e-6), f"lag {lag:.6g} steps, expected 99"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a08_sngan"))
