"""Small modules with known behaviour, shared by the tests (imported as ``helpers``)."""
import torch
from torch import nn

from ebmlib.losses import EBGANPT
from ebmlib.nets import SNGANDiscriminator, SNGANGenerator, image_batch


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


# --- image nets: 3x32x32, small enough for a training run in a fraction of a second on one CPU thread ---


class TinyG(nn.Module):
    """z (N, 8) -> (N, 3, 32, 32); batch norm, so that buffers must be restored too."""

    def __init__(self, latent_dim=8, hidden=16):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, 3 * 32 * 32), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 3, 32, 32)


class TinyD(nn.Module):
    """(N, 3, 32, 32) -> (N,): a strided conv and a linear layer, both spectrally normalised
    (their power-iteration vectors are state that a resume must restore)."""

    def __init__(self, ch=4):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.conv = sn(nn.Conv2d(3, ch, 4, stride=4))
        self.linear = sn(nn.Linear(ch * 8 * 8, 1))

    def forward(self, x):
        return self.linear(torch.relu(self.conv(image_batch(x))).flatten(1)).squeeze(1)


def small_sngan_pair(seed=0):
    """A small SN-GAN pair whose d(G(z)) has a gradient well above rounding: at SN-GAN's own
    initialisation (weights N(0, 0.02^2)) the generator's output is nearly constant."""
    torch.manual_seed(seed)
    G, D = SNGANGenerator(latent_dim=8, ch=4), SNGANDiscriminator(ch=4)
    with torch.no_grad():
        for p in G.parameters():
            if p.dim() > 1:
                p.normal_(0, 1.0 / p[0].numel() ** 0.5)
    return G.eval(), D.eval()


class Scaled(nn.Module):
    """factor * D(x): a logit that varies enough to matter (an initial SN-GAN D is about 0 everywhere)."""

    def __init__(self, D, factor):
        super().__init__()
        self.D, self.factor = D, factor

    def forward(self, x):
        return self.factor * self.D(x)


class CountingPT(EBGANPT):
    """EBGAN-PT that counts the calls of its pulling-away term (once a generator step)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.calls = 0

    def generator_penalty(self, D, fake):
        self.calls += 1
        return super().generator_penalty(D, fake)


class CrashAt:
    """Mixed into a batch source: raises on its ``crash_at``-th batch (a crash between two checkpoints)."""

    def __init__(self, *args, crash_at=None, **kw):
        super().__init__(*args, **kw)
        self.calls, self.crash_at = 0, crash_at

    def __next__(self):
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("simulated crash")
        return super().__next__()
