"""Adversarial losses against hand-computed values."""
import math

import pytest
import torch

from ebmlib import losses
from ebmlib.losses import Hinge, NonSaturating, Vanilla, get_loss

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
