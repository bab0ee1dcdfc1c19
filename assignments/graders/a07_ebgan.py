"""Checks of assignment 07: the margin loss and the pulling-away term, against ebmlib and by hand."""
import math

import torch

import ebmlib
from assignments.grading import check, main, number, student_function


@check("margin_loss", points=2)
def margin_matches_ebmlib(ns):
    """margin_loss equals ebmlib.losses.EBGAN's D loss"""
    loss = student_function(ns, "margin_loss")
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(300, generator=g), 2 * torch.rand(200, generator=g)  # some fakes above the margin
    for margin in (0.5, 1.0, 3.0):
        expected = ebmlib.losses.EBGAN(margin).discriminator(real, fake).item()
        got = number(loss(real, fake, margin))
        assert math.isclose(got, expected, rel_tol=1e-6), f"m = {margin}: got {got:.6g}, ebmlib gives {expected:.6g}"


@check("margin_loss", points=3)
def margin_by_hand(ns):
    """margin loss by hand (0.65), and equal to m at the equilibrium"""
    loss = student_function(ns, "margin_loss")
    got = number(loss(torch.tensor([0.5, 0.1]), torch.tensor([2.0, 0.3]), 1.0))  # 0.3 + (0 + 0.7) / 2
    assert math.isclose(got, 0.65, rel_tol=1e-6), f"real [0.5, 0.1], fake [2, 0.3], m = 1: got {got:.6g}, expected 0.65"
    energy = torch.tensor([0.2, 0.9, 1.4, 0.0])  # the same energies on both sides: p_g = p_data
    got = number(loss(energy, energy, 1.5))
    assert math.isclose(got, 1.5, rel_tol=1e-6), f"equal real and fake energies below m = 1.5: got {got:.6g}, expected 1.5"


@check("pulling_away", points=2)
def pt_matches_ebmlib(ns):
    """pulling_away equals ebmlib.losses.pulling_away"""
    pt = student_function(ns, "pulling_away")
    S = torch.randn(40, 6, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.1, 5, 40)[:, None]
    expected = ebmlib.losses.pulling_away(S).item()
    got = number(pt(S))
    assert math.isclose(got, expected, rel_tol=1e-5), f"got {got:.6g}, ebmlib gives {expected:.6g}"


@check("pulling_away", points=3)
def pt_by_hand(ns):
    """f_PT by hand: 1/3 for rows (2, 0), (0, 3), (1, 1); 1 on a line; 0 orthogonal"""
    pt = student_function(ns, "pulling_away")
    cases = [([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]], 1 / 3),  # cos² 0, 1/2, 1/2 over three pairs
             ([[1.0, 2.0], [-3.0, -6.0], [0.5, 1.0]], 1.0),
             ([[4.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 2.0]], 0.0)]
    for rows, expected in cases:
        got = number(pt(torch.tensor(rows)))
        assert math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-7), f"S = {rows}: got {got:.6g}, expected {expected:.6g}"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a07_ebgan"))
