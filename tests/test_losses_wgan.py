"""Wasserstein losses and the gradient penalty against hand-computed values."""
import math

import pytest
import torch
from torch import nn

from ebmlib import losses
from ebmlib.losses import Wasserstein, WassersteinGP, get_loss, gradient_penalty

torch.set_num_threads(1)

REAL = torch.tensor([0.0, 2.0, -1.0])
FAKE = torch.tensor([-1.0, 3.0])


class LinearCritic(nn.Module):
    """d(x) = <w, x> + b on images (N, C, H, W): the gradient is w everywhere, its norm ||w||."""

    def __init__(self, w, b=0.5):
        super().__init__()
        self.w, self.b = nn.Parameter(w.clone()), nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b


class HalfSquare(nn.Module):
    """d(x) = ||x||^2 / 2: the gradient at x is x itself."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1)


def test_wasserstein_by_hand():
    loss = Wasserstein()
    # D minimises mean(fake) - mean(real) = 1 - 1/3; G minimises -mean(fake) = -1
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(2 / 3)
    assert loss.generator(FAKE).item() == pytest.approx(-1.0)
    assert not hasattr(loss, "penalty")


def test_wasserstein_critic_estimates_w1_in_1d():
    # real at 1, fake at 0: the 1-Lipschitz critic d(x) = x attains W1 = 1 = -(D loss)
    real, fake = torch.ones(4, 1), torch.zeros(4, 1)
    d = lambda x: x[:, 0]  # noqa: E731
    assert -Wasserstein().discriminator(d(real), d(fake)).item() == pytest.approx(1.0)


def test_wgan_gp_has_the_same_losses_and_a_penalty():
    loss = WassersteinGP()
    assert loss.penalty_weight == 10.0
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(2 / 3)
    assert loss.generator(FAKE).item() == pytest.approx(-1.0)
    assert callable(loss.penalty)


@pytest.mark.parametrize("norm, weight", [(3.0, 10.0), (1.0, 10.0), (0.5, 2.0), (2.0, 1.0)])
def test_gradient_penalty_of_a_linear_critic(norm, weight):
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4)
    w = w * (norm / w.norm())
    D = LinearCritic(w)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    # the gradient is w at every interpolate: the penalty is weight * (||w|| - 1)^2 exactly
    gp = gradient_penalty(D, real, fake, weight=weight)
    assert gp.item() == pytest.approx(weight * (norm - 1) ** 2, abs=1e-5)
    assert WassersteinGP(penalty_weight=weight).penalty(D, real, fake).item() == pytest.approx(gp.item(), abs=1e-5)


def test_gradient_penalty_backpropagates_into_the_critic():
    w = torch.zeros(1, 2, 2)
    w[0, 0, 0] = 3.0  # ||w|| = 3
    D = LinearCritic(w)
    real = torch.randn(4, 1, 2, 2)
    fake = torch.randn(4, 1, 2, 2, requires_grad=True)
    gradient_penalty(D, real, fake, weight=10.0).backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||: 40 at the nonzero entry, 0 elsewhere
    expected = torch.zeros_like(w)
    expected[0, 0, 0] = 40.0
    assert torch.allclose(D.w.grad, expected, atol=1e-4)
    assert D.b.grad is None or D.b.grad.abs().item() == 0.0  # the bias has no effect on the gradient
    assert fake.grad is None  # the penalty trains D only


def test_gradient_penalty_uses_random_interpolates():
    # d = ||x||^2 / 2 has gradient x; with fake = 0 the interpolate is a * real, its gradient norm a * ||real||
    real = torch.full((6, 1, 2, 2), 0.5)  # ||real_i|| = 1
    fake = torch.zeros_like(real)
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(6, 1, 1, 1, generator=torch.Generator().manual_seed(3)).reshape(-1)
    expected = 10.0 * ((a - 1) ** 2).mean().item()
    assert gradient_penalty(HalfSquare(), real, fake, generator=gen).item() == pytest.approx(expected, rel=1e-6)
    # one a per sample, uniform in (0, 1): the same seed gives the same value, another seed another
    again = gradient_penalty(HalfSquare(), real, fake, generator=torch.Generator().manual_seed(3))
    other = gradient_penalty(HalfSquare(), real, fake, generator=torch.Generator().manual_seed(4))
    assert again.item() == pytest.approx(expected, rel=1e-6) and other.item() != pytest.approx(expected)
    assert 0 < expected < 10


def test_gradient_penalty_shape_mismatch_is_a_value_error():
    D = LinearCritic(torch.ones(3, 4, 4))
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\).*\(3, 3, 4, 4\)"):
        gradient_penalty(D, torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))


def test_get_loss_hands_out_wasserstein_losses_on_request():
    with pytest.raises(ValueError, match="wasserstein=True"):
        get_loss("wgan")  # without the flag, get_loss hands out only losses that need no Lipschitz critic
    assert isinstance(get_loss("wgan", wasserstein=True), Wasserstein)
    gp = get_loss("wgan-gp", wasserstein=True)
    assert isinstance(gp, WassersteinGP) and gp.penalty_weight == 10.0
    assert isinstance(get_loss("hinge", wasserstein=True), losses.Hinge)
    assert set(losses.LOSSES) == {"ns", "vanilla", "hinge", "ebgan", "ebgan-pt"}
    assert set(losses.WASSERSTEIN_LOSSES) == {"wgan", "wgan-gp"}
    with pytest.raises(ValueError, match="wgan-gp"):
        get_loss("wgan_gp", wasserstein=True)


def test_wasserstein_gradients_are_constant():
    real = torch.randn(4, requires_grad=True)
    fake = torch.randn(8, requires_grad=True)
    Wasserstein().discriminator(real, fake).backward()
    assert torch.allclose(real.grad, torch.full((4,), -1 / 4)) and torch.allclose(fake.grad, torch.full((8,), 1 / 8))
    assert math.isclose(Wasserstein().generator(torch.tensor([2.0, 4.0])).item(), -3.0)
