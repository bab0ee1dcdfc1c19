"""Networks. The 2-D world uses small MLPs: a generator z -> x and a discriminator x -> logit."""
import torch
from torch import nn

from ._checks import last_dim


def _mlp(in_dim, out_dim, hidden, depth, activation):
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G: (N, latent_dim) -> (N, out_dim), ReLU hidden layers."""

    def __init__(self, latent_dim=2, out_dim=2, hidden=128, depth=3):
        super().__init__()
        self.latent_dim, self.out_dim = latent_dim, out_dim
        self.net = _mlp(latent_dim, out_dim, hidden, depth, nn.ReLU)

    def forward(self, z):
        return self.net(last_dim(z, self.latent_dim, "latent z"))


ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}


class MLPDiscriminator(nn.Module):
    """d: (N, in_dim) -> (N,) logits (D(x) = sigmoid(d(x))).

    ``activation`` names the hidden nonlinearity ('leaky_relu', 'relu', 'silu', 'elu'). A smooth one
    (SiLU) lets d bend into the quadratic bowls that a log density ratio of Gaussians has; a
    piecewise-linear d can only approximate them with facets.
    """

    def __init__(self, in_dim=2, hidden=128, depth=3, activation="leaky_relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.in_dim = in_dim
        self.net = _mlp(in_dim, 1, hidden, depth, ACTIVATIONS[activation])

    def forward(self, x):
        return self.net(last_dim(x, self.in_dim, "discriminator input x")).squeeze(-1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def frozen(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode with gradients off for its parameters (sampling-time use)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
