"""Maximum-likelihood training of energy-based models: the gradient estimator, the trainer, bad input."""
import math

import pytest
import torch
from torch import nn

from ebmlib import ebm
from ebmlib.nets import MLPDiscriminator


class GaussianEnergy(nn.Module):
    """E(x) = sum_j (x_j - mu_j)^2 / (2 sigma_j^2), shape (N,): the EBM of N(mu, diag(sigma^2)), log Z known."""

    def __init__(self, dim=1, mu=0.0, log_sigma=0.0):
        super().__init__()
        self.mu = nn.Parameter(torch.full((dim,), float(mu)))
        self.log_sigma = nn.Parameter(torch.full((dim,), float(log_sigma)))

    def forward(self, x):
        return (((x - self.mu) / self.log_sigma.exp()) ** 2).sum(dim=1) / 2

    def sample(self, n, generator=None):
        with torch.no_grad():
            return self.mu + self.log_sigma.exp() * torch.randn(n, len(self.mu), generator=generator)


def gaussian_data(mean, std):
    mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
    return lambda n, g=None: mean + std * torch.randn(n, len(mean), generator=g)


def test_contrastive_gradient_is_the_log_likelihood_gradient():
    """With exact model samples, minus the surrogate's gradient equals the exact gradient of the mean
    log-likelihood, log Z term included: for log sigma that term is the -1 per dimension."""
    g = torch.Generator().manual_seed(0)
    E = GaussianEnergy(dim=1, mu=0.5, log_sigma=math.log(1.5))
    x = gaussian_data([2.0], [1.0])(200_000, g)
    loss = ebm.contrastive_loss(E(x), E(E.sample(200_000, g)))
    grad_mu, grad_ls = torch.autograd.grad(loss, [E.mu, E.log_sigma])
    mu, sigma = 0.5, 1.5
    # d/dtheta mean log p = d/dtheta mean [-(x - mu)^2 / (2 sigma^2) - log sigma - log sqrt(2 pi)]
    exact_mu = ((x - mu).mean() / sigma ** 2).item()
    exact_ls = (((x - mu) ** 2).mean() / sigma ** 2 - 1).item()
    assert -grad_mu.item() == pytest.approx(exact_mu, abs=0.01)
    assert -grad_ls.item() == pytest.approx(exact_ls, abs=0.02)
    # the signs: the estimate moves mu towards the data mean (2 > 0.5) and sigma towards the data's
    # spread, here sqrt(E(x - mu)^2) = sqrt(1 + 1.5^2) > 1.5
    assert -grad_mu.item() > 0.5 and -grad_ls.item() > 0.3


def test_without_the_model_term_the_log_z_part_is_missing():
    """The data term alone is not the likelihood gradient: for log sigma it misses exactly the -1 that
    -grad log Z contributes."""
    E = GaussianEnergy(dim=1, log_sigma=0.0)
    x = torch.randn(100_000, 1, generator=torch.Generator().manual_seed(1))  # data = the model: true gradient 0
    (data_only,) = torch.autograd.grad(-E(x).mean(), E.log_sigma)
    assert data_only.item() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("init", ["persistent", "data"])
def test_training_recovers_a_2d_gaussian(init):
    torch.manual_seed(0)
    E = GaussianEnergy(dim=2)
    mean, std = torch.tensor([1.0, -0.5]), torch.tensor([0.5, 1.2])
    h = ebm.train_ebm(E, gaussian_data(mean, std), steps=150, batch_size=1024, langevin_steps=8, step_size=0.05,
                      init=init, lr=0.05, betas=(0.9, 0.999), lr_decay=True, seed=0, progress=False)
    # over seeds 0-2 the errors reach 0.035 (mean) and 3.3% (std); ULA at step 0.05 inflates a variance by
    # about eps/4, and the fit shrinks sigma (by 2.5% for the 0.5 coordinate) to compensate
    assert torch.allclose(E.mu.detach(), mean, atol=0.06), E.mu
    assert torch.allclose(E.log_sigma.exp().detach(), std, rtol=0.06), E.log_sigma.exp()
    x = h["samples"]
    assert x.shape == (1024, 2)
    assert torch.allclose(x.mean(0), mean, atol=0.12) and torch.allclose(x.std(0), std, rtol=0.12)
    assert len(h["step"]) == len(h["loss"]) == len(h["energy_data"]) == len(h["energy_model"]) == 15


def test_short_run_chains_from_noise_match_the_data_with_an_mlp_energy():
    """Chains from noise: the k-step samples of the trained MLP energy have the data's moments."""
    torch.manual_seed(0)
    E = MLPDiscriminator(in_dim=1, hidden=32, depth=2, activation="silu")
    h = ebm.train_ebm(E, gaussian_data([1.0], [0.5]), steps=150, batch_size=256, langevin_steps=10,
                      step_size=0.05, init="noise", noise_std=1.0, lr=3e-3, seed=0, progress=False)
    x = h["samples"]  # over seeds 0-2 the errors reach 0.04
    assert abs(x.mean().item() - 1.0) < 0.1 and abs(x.std().item() - 0.5) < 0.1, (x.mean(), x.std())


def test_training_is_deterministic_and_model_samples_leave_no_gradients():
    data = gaussian_data([0.0], [1.0])
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        E = MLPDiscriminator(in_dim=1, hidden=8, depth=1)
        runs.append(ebm.train_ebm(E, data, steps=5, batch_size=16, langevin_steps=3, seed=3, progress=False,
                                  log_every=1)["loss"])
    assert runs[0] == runs[1]
    E.zero_grad(set_to_none=True)
    x = ebm.model_samples(E, torch.zeros(4, 1), langevin_steps=3, step_size=0.1)
    assert x.shape == (4, 1) and not x.requires_grad
    assert all(p.grad is None and p.requires_grad for p in E.parameters())
    assert not E.training


@pytest.mark.parametrize("kwargs, match", [
    ({"init": "uniform"}, "init must be one of"),
    ({"steps": 0}, "steps"),
    ({"langevin_steps": 0}, "langevin_steps"),
    ({"step_size": -0.1}, "step_size"),
    ({"lr": 0}, "lr"),
    ({"noise_std": 0}, "noise_std"),
    ({"alpha": -1.0}, "alpha"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_arguments_raise(kwargs, match):
    E = MLPDiscriminator(in_dim=1, hidden=8, depth=1)
    with pytest.raises(ValueError, match=match):
        ebm.train_ebm(E, gaussian_data([0.0], [1.0]), **{"steps": 2, **kwargs})


def test_bad_energies_and_data_raise():
    data = gaussian_data([0.0], [1.0])
    with pytest.raises(ValueError, match=r"shape \(N,\)"):  # an energy that keeps a trailing dimension
        ebm.train_ebm(nn.Linear(1, 1), data, steps=2, batch_size=8)
    with pytest.raises(ValueError, match="no trainable parameters"):
        ebm.train_ebm(GaussianEnergy().requires_grad_(False), data, steps=2)
    with pytest.raises(ValueError, match=r"shape \(n, dim\)"):
        ebm.train_ebm(GaussianEnergy(), lambda n, g=None: torch.randn(n), steps=2)
    with pytest.raises(ValueError, match="energy_model"):
        ebm.contrastive_loss(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="alpha"):
        ebm.contrastive_loss(torch.zeros(3), torch.zeros(3), alpha=-0.5)
