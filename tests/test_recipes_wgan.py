"""The WGAN recipe: a generator and a critic trained on toy data, with the gradient penalty or spectral norm."""
import torch

from ebmlib.losses import WassersteinGP
from ebmlib.nets import spectral_norm_layers
from ebmlib.recipes.wgan import WGAN_TRAIN, train_wgan_pair

SMALL = dict(train=dict(steps=3, batch_size=16), nets=dict(hidden=8, d_hidden=8))


def params(*modules):
    return [p.detach().clone() for m in modules for p in m.parameters()]


def test_train_wgan_pair_returns_a_generator_and_a_critic():
    G, C, h = train_wgan_pair(0, **SMALL)
    assert G.latent_dim == 2 and C(torch.zeros(5, 2)).shape == (5,) and h["step"] == [3]
    G2, C2, _ = train_wgan_pair(0, **SMALL)
    assert all(torch.equal(x, y) for x, y in zip(params(G, C), params(G2, C2)))
    G3, C3, _ = train_wgan_pair(1, **SMALL)
    assert not all(torch.equal(x, y) for x, y in zip(params(G, C), params(G3, C3)))


def test_the_critic_is_kept_lipschitz_by_the_penalty_or_by_spectral_norm():
    loss = WGAN_TRAIN["loss"]
    assert isinstance(loss, WassersteinGP) and loss.one_sided and loss.penalty_weight == 10.0
    _, C, _ = train_wgan_pair(0, **SMALL)
    assert spectral_norm_layers(C) == []
    sn = dict(train=dict(SMALL["train"], loss="wgan"), nets=dict(SMALL["nets"], spectral_norm=True))
    _, C_sn, _ = train_wgan_pair(0, **sn)
    assert len(spectral_norm_layers(C_sn)) == 4  # every linear layer of a depth-3 critic
