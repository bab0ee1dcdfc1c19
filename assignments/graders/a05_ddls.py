"""Checks of assignment 05: the latent energy against ebmlib.latent_energy and on a linear logit."""
import torch
from torch import nn

import ebmlib
from assignments.grading import check, main, student_function
from ebmlib import nets


class IdentityGenerator(nn.Module):
    latent_dim = 3

    def forward(self, z):
        return z


class LinearLogit(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x):
        return x @ self.a


def energy_and_grad(energy, z):
    z = z.clone().requires_grad_(True)
    e = torch.as_tensor(energy(z))
    assert e.shape == (len(z),), f"the energy has shape {tuple(e.shape)}, expected ({len(z)},)"
    assert e.requires_grad, "the energy carries no gradient to z: do not detach or use no_grad"
    (grad,) = torch.autograd.grad(e.sum(), z)
    return e.detach(), grad


@check("latent_energy", points=2)
def energy_matches_ebmlib(ns):
    """latent_energy equals ebmlib.latent_energy up to a constant, gradient included"""
    energy = student_function(ns, "latent_energy")
    torch.manual_seed(0)
    G, D = nets.MLPGenerator(latent_dim=4, out_dim=2, hidden=16, depth=2), nets.MLPDiscriminator(in_dim=2, hidden=16, depth=2)
    z = torch.randn(64, 4)
    e, grad = energy_and_grad(lambda v: energy(v, G, D), z)
    e_ref, grad_ref = energy_and_grad(lambda v: ebmlib.latent_energy(v, G, D), z)
    offset = e - e_ref
    assert torch.allclose(offset, offset[0].expand_as(offset), atol=1e-5), \
        f"E - ebmlib's E varies over z by {(offset.max() - offset.min()).item():.3g}: not a constant"
    assert torch.allclose(grad, grad_ref, atol=1e-5), f"∇E differs from ebmlib's by {(grad - grad_ref).abs().max().item():.3g}"


@check("latent_energy", points=3)
def energy_of_a_linear_logit(ns):
    """with G(z) = z and d(x) = a·x, ∇E(z) = z - a and E is smallest at z = a"""
    energy = student_function(ns, "latent_energy")
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    G, d = IdentityGenerator(), LinearLogit(a)
    z = torch.randn(32, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, grad = energy_and_grad(lambda v: energy(v, G, d), z)
    assert torch.allclose(grad, z - a, atol=1e-9), f"∇E(z) - (z - a) is up to {(grad - z + a).abs().max().item():.3g}"
    e_min, e_near = (torch.as_tensor(energy(v[None], G, d)).item() for v in (a, a + 0.1))
    assert e_min < e_near, "E(a) is not below E(a + 0.1)"


if __name__ == "__main__":
    raise SystemExit(main(assignment="a05_ddls"))
