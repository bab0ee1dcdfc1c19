"""Small modules with known behaviour, shared by the tests (imported as ``helpers``)."""
import torch
from torch import nn


class Identity(nn.Module):
    """G(z) = z: the generator's law is the prior N(0, I), so p_t is known in closed form."""

    def __init__(self, latent_dim=1):
        super().__init__()
        self.latent_dim = self.out_dim = latent_dim
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, to check that no .grad appears

    def forward(self, z):
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latent z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return z + 0 * self.anchor


class Linear(nn.Module):
    """G(z) = z W^T + c with a fixed W and c."""

    def __init__(self, W, c):
        super().__init__()
        self.W, self.c = nn.Parameter(W.clone()), nn.Parameter(c.clone())
        self.latent_dim, self.out_dim = W.shape[1], W.shape[0]

    def forward(self, z):
        return z @ self.W.T + self.c


class QuadLogit(nn.Module):
    """d(x) = a . x - c ||x||^2 / 2 (shape (N,)): tilts N(0, I) into N(a / (1 + c), I / (1 + c))."""

    def __init__(self, a, c=0.0):
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(a, dtype=torch.float32).reshape(-1))
        self.c = nn.Parameter(torch.as_tensor(float(c)))

    def forward(self, x):
        return x @ self.a - 0.5 * self.c * (x ** 2).sum(dim=1)


class AffineLogit(nn.Module):
    """d(x) = w x + b for 1-D x (N, 1) -> (N,)."""

    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.tensor(float(w))), nn.Parameter(torch.tensor(float(b)))

    def forward(self, x):
        return self.w * x[:, 0] + self.b


def gaussian(mean, std):
    """A sampler f(n, generator) -> (n, 1) of N(mean, std^2)."""

    def sample(n, generator=None):
        return mean + std * torch.randn(n, 1, generator=generator)

    return sample
