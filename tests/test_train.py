"""The GAN training loop: determinism, its history, and bad input."""
import pytest
import torch

import ebmlib
from ebmlib import toy
from ebmlib.nets import MLPDiscriminator, MLPGenerator, count_parameters, frozen
from ebmlib.train import show_progress, train_gan


def pair(init_seed=0):
    torch.manual_seed(init_seed)
    return MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)


def params(*modules):
    return [p.detach().clone() for m in modules for p in m.parameters()]


def run(seed, init_seed=0, **kw):
    G, D = pair(init_seed)
    options = dict(steps=12, batch_size=32, n_dis=2, log_every=5, lr_g=1e-3, lr_d=1e-3)
    history = train_gan(G, D, toy.sample_grid25, seed=seed, **{**options, **kw})
    return G, D, history


def test_same_seed_same_parameters_different_seed_different():
    G0, D0 = pair()
    start = params(G0, D0)
    G1, D1, h1 = run(seed=3)
    torch.manual_seed(999)  # the global RNG state before the call must not matter
    G2, D2, h2 = run(seed=3)
    G3, D3, _ = run(seed=4)
    a, b, c = params(G1, D1), params(G2, D2), params(G3, D3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert h1["d_loss"] == h2["d_loss"] and h1["g_loss"] == h2["g_loss"]
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert not any(torch.equal(x, y) for x, y in zip(a, start)), "training left a parameter unchanged"


@pytest.mark.parametrize("loss", ["vanilla", "hinge", ebmlib.losses.Hinge()])
def test_train_gan_is_deterministic_with_every_loss(loss):
    G1, D1, _ = run(seed=0, loss=loss, steps=4)
    G2, D2, _ = run(seed=0, loss=loss, steps=4)
    assert all(torch.equal(x, y) for x, y in zip(params(G1, D1), params(G2, D2)))


def test_history_and_modes():
    G, D, h = run(seed=0)
    assert h["step"] == [5, 10, 12]  # every log_every steps, and the last
    assert len(h["d_loss"]) == len(h["g_loss"]) == 3
    assert all(isinstance(v, float) for v in h["d_loss"] + h["g_loss"])
    assert h["seconds"] > 0
    assert not G.training and not D.training


@pytest.mark.parametrize("kw", [dict(steps=0), dict(steps=-1), dict(steps=2.5), dict(batch_size=0),
                                dict(n_dis=0), dict(loss="wgan")])
def test_bad_training_arguments_are_value_errors(kw):
    G, D = pair()
    before = params(G, D)
    options = {**dict(steps=2, batch_size=8), **kw}
    with pytest.raises(ValueError):
        train_gan(G, D, toy.sample_grid25, **options)
    assert all(torch.equal(x, y) for x, y in zip(before, params(G, D)))


def test_smoke_switch(monkeypatch):
    monkeypatch.setenv("EBMLIB_SMOKE", "1")
    assert ebmlib.smoke() and ebmlib.pick(5000, 200) == 200
    assert show_progress(None) is False and show_progress(True) is True
    monkeypatch.setenv("EBMLIB_SMOKE", "0")
    assert not ebmlib.smoke() and ebmlib.pick(5000, 200) == 5000
    assert show_progress(None) is True
    monkeypatch.delenv("EBMLIB_SMOKE")
    assert not ebmlib.smoke()


def test_count_parameters_and_frozen():
    G = MLPGenerator(latent_dim=2, out_dim=2, hidden=4, depth=1)
    assert count_parameters(G) == (2 * 4 + 4) + (4 * 2 + 2)
    frozen(G)
    assert count_parameters(G) == 0 and not G.training
