"""Wrong solutions of assignment 06, one a code exercise; each replaces the function of its name."""
import torch


def w1_samples(x, y):
    """The samples paired as given instead of by their order statistics (not an optimal coupling)."""
    return (x - y).abs().mean().item()


def gradient_penalty(D, real, fake, a, weight=10.0):
    """The squared gradient norm taken for the norm: (||∇D||² - 1)²."""
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return weight * (grad.pow(2).sum(dim=1) - 1).pow(2).mean()
