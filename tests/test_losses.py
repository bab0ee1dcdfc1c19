"""Adversarial losses against hand-computed values: the logistic and hinge losses, the Wasserstein losses and
the gradient penalty, and EBGAN's margin loss and pulling-away term."""
import math

import pytest
import torch
from torch import nn

from ebmlib import losses
from ebmlib.losses import (
    EBGAN,
    EBGANPT,
    LOSSES,
    Hinge,
    NonSaturating,
    Vanilla,
    Wasserstein,
    WassersteinGP,
    get_loss,
    gradient_penalty,
    pulling_away,
)

REAL = torch.tensor([0.0, 2.0, -1.0])
FAKE = torch.tensor([-1.0, 3.0])


def softplus(v):
    return math.log1p(math.exp(v))


def mean(values):
    return sum(values) / len(values)


def test_non_saturating_by_hand():
    loss = NonSaturating()
    # D: -log sigmoid(r) on real, -log(1 - sigmoid(f)) on fake
    d = mean([-math.log(1 / (1 + math.exp(-r))) for r in REAL.tolist()]) + \
        mean([-math.log(1 - 1 / (1 + math.exp(-f))) for f in FAKE.tolist()])
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    # G: -log sigmoid(f)
    g = mean([softplus(-f) for f in FAKE.tolist()])
    assert loss.generator(FAKE).item() == pytest.approx(g, rel=1e-6)
    assert d == pytest.approx(mean([math.log(2), softplus(-2), softplus(1)]) + mean([softplus(-1), softplus(3)]))


def test_vanilla_by_hand():
    loss = Vanilla()
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(NonSaturating().discriminator(REAL, FAKE).item())
    # G minimises log(1 - D(G(z))) = -softplus(f)
    g = mean([math.log(1 - 1 / (1 + math.exp(-f))) for f in FAKE.tolist()])
    assert loss.generator(FAKE).item() == pytest.approx(g, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(-(softplus(-1) + softplus(3)) / 2, rel=1e-6)


def test_hinge_by_hand():
    loss = Hinge()
    # real: relu(1 - r) = 1, 0, 2 -> 1; fake: relu(1 + f) = 0, 4 -> 2
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(3.0)
    assert loss.generator(FAKE).item() == pytest.approx(-1.0)


def test_logistic_losses_stay_finite_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for loss in (NonSaturating(), Vanilla()):
        assert torch.isfinite(loss.discriminator(big, big)) and torch.isfinite(loss.generator(big))
    assert NonSaturating().discriminator(big, big).item() == pytest.approx(200.0, rel=1e-4)


def test_logistic_minimiser_is_the_log_density_ratio():
    # a discrete world {A, B}: real batch has A with frequency 0.2, fake batch 0.6; minimising the NS
    # discriminator loss over the two logits gives d = log p_real / p_fake = log(1/3), log 2
    real_idx = torch.tensor([0] * 2 + [1] * 8)
    fake_idx = torch.tensor([0] * 6 + [1] * 4)
    optimum = torch.tensor([math.log(0.2 / 0.6), math.log(0.8 / 0.4)])

    def grad_at(d):
        d = d.clone().requires_grad_(True)
        NonSaturating().discriminator(d[real_idx], d[fake_idx]).backward()
        return d.grad

    assert grad_at(optimum).abs().max() < 1e-6
    assert grad_at(optimum + 0.1).abs().min() > 1e-3  # not flat: the optimum is unique
    assert grad_at(torch.zeros(2)).abs().min() > 1e-3


def test_losses_return_scalars_and_have_gradients():
    torch.manual_seed(0)
    real = torch.randn(5, requires_grad=True)
    fake = torch.randn(5, requires_grad=True)
    for name in ("ns", "vanilla", "hinge"):
        loss = get_loss(name)
        d, g = loss.discriminator(real, fake), loss.generator(fake)
        assert d.dim() == 0 and g.dim() == 0
        assert torch.autograd.grad(g, fake)[0].abs().sum() > 0


def test_get_loss_by_name_and_object():
    assert isinstance(get_loss("ns"), NonSaturating)
    assert isinstance(get_loss("vanilla"), Vanilla)
    assert isinstance(get_loss("hinge"), Hinge)
    obj = Hinge()
    assert get_loss(obj) is obj
    assert set(losses.LOSSES) == {"ns", "vanilla", "hinge", "ebgan", "ebgan-pt"}


@pytest.mark.parametrize("name", ["wgan", "NS", "", "hinge "])
def test_get_loss_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="hinge"):
        get_loss(name)


# --- the Wasserstein losses and the gradient penalty ------------------------------------------------------

class LinearCritic(nn.Module):
    """d(x) = <w, x> + b on vectors (N, k) or images (N, C, H, W): the gradient is w everywhere, its norm ||w||."""

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


@pytest.mark.parametrize("norm", [0.5, 1.0, 3.0])
def test_one_and_two_sided_penalties_of_a_linear_critic(norm):
    D = LinearCritic(torch.tensor([0.6 * norm, 0.8 * norm]))  # on vectors (N, 2): ||w|| = norm
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    two = gradient_penalty(D, real, fake, weight=10.0).item()
    one = WassersteinGP(10.0, one_sided=True).penalty(D, real, fake).item()
    assert two == pytest.approx(10 * (norm - 1) ** 2, abs=1e-5)
    assert one == pytest.approx(10 * max(norm - 1, 0) ** 2, abs=1e-5)

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


# --- the margin loss -----------------------------------------------------------------------------------

def test_margin_loss_by_hand():
    real = torch.tensor([0.5, 1.0, 1.5])
    fake = torch.tensor([0.2, 2.0, 0.9])
    loss = EBGAN(margin=1.0)
    # D: mean(real) = 1.0; [1 - fake]^+ = (0.8, 0, 0.1), mean 0.3
    assert loss.discriminator(real, fake).item() == pytest.approx(1.3)
    assert loss.generator(fake).item() == pytest.approx(3.1 / 3)
    # a larger margin: [3 - fake]^+ = (2.8, 1.0, 2.1), mean 1.9667
    assert EBGAN(margin=3.0).discriminator(real, fake).item() == pytest.approx(1.0 + 5.9 / 3)


def test_margin_loss_gradients_stop_at_the_margin():
    fake = torch.tensor([0.5, 2.0], requires_grad=True)
    EBGAN(margin=1.0).discriminator(torch.zeros(2), fake).backward()
    # below the margin D pushes the energy up (gradient -1/N); above it, nothing
    assert fake.grad.tolist() == [-0.5, 0.0]


def test_ebgan_losses_are_registered():
    assert isinstance(get_loss("ebgan"), EBGAN) and get_loss("ebgan").margin == 1.0
    pt = get_loss("ebgan-pt")
    assert isinstance(pt, EBGANPT) and pt.pt_weight == 0.1 and hasattr(pt, "generator_penalty")
    assert not hasattr(get_loss("ebgan"), "generator_penalty")
    assert {"ebgan", "ebgan-pt"} <= set(LOSSES)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="margin"):
            EBGAN(margin=bad)
    with pytest.raises(ValueError, match="pt_weight"):
        EBGANPT(pt_weight=-0.1)


# --- the pulling-away term -----------------------------------------------------------------------------

def test_pulling_away_orthogonal_is_zero_and_parallel_is_one():
    assert pulling_away(torch.eye(3)).item() == pytest.approx(0.0, abs=1e-7)
    same_line = torch.tensor([[1.0, 2.0], [2.0, 4.0], [-3.0, -6.0]])  # cos = +-1
    assert pulling_away(same_line).item() == pytest.approx(1.0, abs=1e-6)


def test_pulling_away_by_hand():
    S = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # cos^2: (1,2) 1/2, (1,3) 0, (2,3) 1/2; both orders: 2; over N(N-1) = 6
    assert pulling_away(S).item() == pytest.approx(1 / 3, abs=1e-6)
    S3 = torch.tensor([[1.0, 2.0, 2.0], [2.0, -1.0, 0.0], [0.0, 0.0, 3.0]])
    # cos(1,2) = 0; cos(1,3) = 6/(3*3) = 2/3; cos(2,3) = 0  ->  2 * 4/9 / 6
    assert pulling_away(S3).item() == pytest.approx(2 * (4 / 9) / 6, abs=1e-6)


def test_pulling_away_normalises_each_row():
    S = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0], [0.0, 1.0, -1.0], [0.3, -0.2, 1.0]])
    scaled = S * torch.tensor([[2.0], [0.1], [7.0], [30.0]])  # a different scale for each sample
    assert pulling_away(scaled).item() == pytest.approx(pulling_away(S).item(), abs=1e-6)
    # rows of very different lengths along two directions: only per-row normalisation gives cos^2 = 1, 0
    pair = torch.tensor([[100.0, 0.0], [0.01, 0.0], [0.0, 5.0]])
    assert pulling_away(pair).item() == pytest.approx(2 / 6, abs=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        pulling_away(torch.ones(1, 3))
