"""Training: the shared D and G steps and the loss check, the GAN loop (determinism, history, bad input, the
Wasserstein and EBGAN losses), the discriminator trained alone, and which generator draws which random numbers."""
import math

import pytest
import torch

import ebmlib
from ebmlib import toy
from ebmlib.losses import EBGAN, EBGANPT, NonSaturating, Wasserstein, WassersteinGP
from ebmlib.nets import MLPAutoencoder, MLPDiscriminator, MLPGenerator
from ebmlib.train import (
    check_loss,
    discriminator_step,
    fake_batch,
    generator_on,
    generator_step,
    train_discriminator,
    train_gan,
)

from helpers import CountingPT, gaussian


def pair(init_seed=0):
    torch.manual_seed(init_seed)
    return MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)


def params(*modules):
    return [p.detach().clone() for m in modules for p in m.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def run(seed, init_seed=0, **kw):
    G, D = pair(init_seed)
    options = dict(steps=12, batch_size=32, n_dis=2, log_every=5, lr_g=1e-3, lr_d=1e-3)
    history = train_gan(G, D, toy.sample_grid25, seed=seed, **{**options, **kw})
    return G, D, history


# --- the shared steps ---------------------------------------------------------------------------------

def test_check_loss_refuses_a_wgan_critic_without_spectral_norm():
    with pytest.raises(ValueError, match="Lipschitz"):
        check_loss("wgan", MLPDiscriminator(hidden=8, depth=1))
    assert isinstance(check_loss("wgan", MLPDiscriminator(hidden=8, depth=1, spectral_norm=True)), Wasserstein)
    assert isinstance(check_loss("wgan-gp", MLPDiscriminator(hidden=8, depth=1)), WassersteinGP)  # the penalty


def test_check_loss_refuses_pulling_away_without_embeddings():
    plain, autoencoder = MLPDiscriminator(hidden=8, depth=1), MLPAutoencoder(hidden=8, depth=1, code_dim=4)
    with pytest.raises(ValueError, match="embed"):
        check_loss("ebgan-pt", plain)
    assert isinstance(check_loss("ebgan-pt", autoencoder), EBGANPT)
    # D alone never reads the term (it is G's), so any energy D may train with the loss
    assert isinstance(check_loss("ebgan-pt", plain, trains_generator=False), EBGANPT)


def test_fake_batch_draws_from_the_generator_without_gradients():
    G, _ = pair()
    x = fake_batch(G, 5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 2) and not x.requires_grad
    assert torch.equal(x, fake_batch(G, 5, torch.Generator().manual_seed(0)))


def test_discriminator_step_updates_d_and_returns_detached_outputs():
    _, D = pair()
    real, fake = toy.sample_grid25(8, torch.Generator().manual_seed(0)), torch.randn(8, 2)
    with torch.no_grad():
        want_real, want_fake = D(real), D(fake)
    before = params(D)
    d_loss, real_out, fake_out = discriminator_step(D, real, fake, NonSaturating(), torch.optim.SGD(D.parameters(), 0.1))
    assert torch.allclose(real_out, want_real) and torch.allclose(fake_out, want_fake)  # outputs before the update
    assert d_loss.item() == pytest.approx(NonSaturating().discriminator(want_real, want_fake).item(), rel=1e-6)
    assert not (d_loss.requires_grad or real_out.requires_grad or fake_out.requires_grad)
    assert not same(before, params(D))


def test_discriminator_step_refuses_batches_of_different_shapes():
    _, D = pair()
    before = params(D)
    with pytest.raises(ValueError, match=r"same shape.*\(4, 2\) and \(3, 2\)"):
        discriminator_step(D, torch.zeros(4, 2), torch.zeros(3, 2), NonSaturating(), torch.optim.SGD(D.parameters(), 0.1))
    assert same(before, params(D))


class FrozenSpy(NonSaturating):
    """The NS loss that records, when G's loss is computed, which of D's parameters would get a gradient."""

    def __init__(self, D, fail=False):
        self.D, self.fail, self.seen = D, fail, None

    def generator(self, fake_out):
        self.seen = [p.requires_grad for p in self.D.parameters()]
        if self.fail:
            raise RuntimeError("failed inside the step")
        return super().generator(fake_out)


def test_generator_step_trains_g_with_d_frozen_and_restores_d():
    G, D = pair()
    D.net[0].bias.requires_grad_(False)  # frozen by the caller: it must stay frozen
    flags = [p.requires_grad for p in D.parameters()]
    g_before, d_before = params(G), params(D)
    spy = FrozenSpy(D)
    g_loss = generator_step(G, D, spy, torch.optim.SGD(G.parameters(), 0.1), 16, generator=torch.Generator())
    assert spy.seen == [False] * len(flags), "D's parameters must not require gradients during G's step"
    assert [p.requires_grad for p in D.parameters()] == flags
    assert all(p.grad is None for p in D.parameters()), "G's step must not leave gradients on D"
    assert same(d_before, params(D))
    assert not any(torch.equal(a, b) for a, b in zip(g_before, params(G))), "every parameter of G moves"
    assert g_loss.dim() == 0 and not g_loss.requires_grad
    with pytest.raises(RuntimeError, match="inside the step"):
        generator_step(G, D, FrozenSpy(D, fail=True), torch.optim.SGD(G.parameters(), 0.1), 16)
    assert [p.requires_grad for p in D.parameters()] == flags  # restored after a failure too


# --- the GAN loop -------------------------------------------------------------------------------------

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


def wgan_run(seed, loss="wgan-gp", sn=False):
    torch.manual_seed(0)
    G, D = MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2, spectral_norm=sn)
    train_gan(G, D, toy.sample_grid25, steps=4, batch_size=32, n_dis=2, loss=loss, lr_g=1e-3, lr_d=1e-3, seed=seed)
    return params(G, D)


def test_train_gan_with_wgan_gp_is_deterministic_and_applies_the_penalty():
    a, b, c = wgan_run(3), wgan_run(3), wgan_run(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    # the same run without the penalty's weight ends elsewhere: the penalty is in the D loss
    no_penalty = wgan_run(3, loss=WassersteinGP(penalty_weight=0.0))
    assert not all(torch.equal(x, y) for x, y in zip(a, no_penalty))


def test_train_gan_wgan_needs_a_lipschitz_critic():
    wgan_run(0, loss="wgan", sn=True)  # accepted with spectral norm
    with pytest.raises(ValueError, match="Lipschitz"):
        wgan_run(0, loss="wgan", sn=False)


def ebgan_run(loss, seed=0, steps=8):
    torch.manual_seed(0)
    G, D = MLPGenerator(hidden=16, depth=2), MLPAutoencoder(hidden=16, depth=1, code_dim=4)
    history = train_gan(G, D, toy.sample_grid25, steps=steps, batch_size=32, loss=loss, lr_g=1e-3, lr_d=1e-3,
                        seed=seed, log_every=4)
    return params(G), history


def test_train_gan_with_pulling_away_is_deterministic_and_uses_the_hook():
    counting = CountingPT(margin=0.5, pt_weight=1.0)
    g1, h1 = ebgan_run(counting, seed=3)
    assert counting.calls == 8  # once a generator step
    g2, h2 = ebgan_run(EBGANPT(margin=0.5, pt_weight=1.0), seed=3)
    assert same(g1, g2) and h1["g_loss"] == h2["g_loss"]
    g_plain, _ = ebgan_run(EBGAN(margin=0.5), seed=3)
    g_zero, _ = ebgan_run(EBGANPT(margin=0.5, pt_weight=0.0), seed=3)
    assert same(g_plain, g_zero), "with weight 0 the pulling-away term must change nothing"
    assert not same(g1, g_plain), "the pulling-away term must change the generator's updates"
    assert all(math.isfinite(v) for v in h1["d_loss"] + h1["g_loss"])


# --- the discriminator alone ----------------------------------------------------------------------------

def test_train_discriminator_approaches_the_exact_log_ratio():
    # real N(1, 1) vs fake N(-1, 1): log p_real / p_fake = 2x exactly.
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=32, depth=2)
    hist = train_discriminator(D, gaussian(1.0, 1.0), gaussian(-1.0, 1.0), steps=400, batch_size=256, lr=3e-3,
                               lr_decay=True, seed=0)
    assert set(hist) >= {"step", "loss", "seconds"} and hist["step"][-1] == 400
    assert not D.training
    x = torch.linspace(-2, 2, 41)[:, None]
    with torch.no_grad():
        err = (D(x) - 2 * x[:, 0]).abs()
    # where both densities have mass the estimate is close; a loose bar for a small budget
    assert err.mean() < 0.25, err
    assert err.max() < 0.6, err
    # on fresh samples (standard error about 0.005) the logistic loss is near its minimum,
    # 2 E[softplus(-2x)] for x ~ N(1, 1) = 0.711
    gen = torch.Generator().manual_seed(99)
    real, fake = 1 + torch.randn(20_000, 1, generator=gen), -1 + torch.randn(20_000, 1, generator=gen)
    with torch.no_grad():
        loss = NonSaturating().discriminator(D(real), D(fake)).item()
    assert loss == pytest.approx(0.711, abs=0.03)


def test_margin_loss_with_p_g_equal_p_data_drives_the_value_to_the_margin():
    # p_g = p_data: any energy <= m on the support gives V = m; an untrained AE starts above (E x^2 = 2)
    torch.manual_seed(0)
    D = MLPAutoencoder(hidden=32, depth=1, code_dim=4)
    m = 0.5
    train_discriminator(D, toy.sample_grid25, toy.sample_grid25, steps=300, batch_size=256, lr=3e-3,
                        loss=EBGAN(margin=m), seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        real, fake = D(toy.sample_grid25(4000, gen)), D(toy.sample_grid25(4000, gen))
    value = EBGAN(margin=m).discriminator(real, fake).item()
    assert abs(value - m) < 0.03 * m, value


def test_train_discriminator_refuses_a_plain_wgan_critic():
    D = MLPDiscriminator(in_dim=1, hidden=4, depth=1)
    with pytest.raises(ValueError, match="Lipschitz"):
        train_discriminator(D, gaussian(1.0, 1.0), gaussian(0.0, 1.0), steps=2, loss="wgan")


# --- random numbers drawn on the device that uses them ---------------------------------------------------------

def test_generator_on_its_own_device_is_the_generator_itself_and_draws_nothing():
    gen = torch.Generator().manual_seed(3)
    before = gen.get_state()
    assert generator_on("cpu", gen) is gen and generator_on(torch.device("cpu"), None) is None
    assert torch.equal(gen.get_state(), before)  # CPU runs draw exactly what they drew before


def test_generator_on_another_device_is_made_there_and_seeded_from_the_given_one(monkeypatch):
    made = []
    cpu_generator = torch.Generator

    def generator_factory(device="cpu"):  # this machine has no GPU: record the device, hand back a CPU generator
        made.append(torch.device(device))
        return cpu_generator()

    def seed_on_gpu(user_seed):
        return generator_on("cuda", cpu_generator().manual_seed(user_seed)).initial_seed()

    monkeypatch.setattr(torch, "Generator", generator_factory)
    assert seed_on_gpu(0) == seed_on_gpu(0) != seed_on_gpu(1)  # fixed by the user's seed
    assert made == [torch.device("cuda")] * 3


def spy_on_draws(monkeypatch):
    """Record (function, generator, output device) for every torch.randn, rand and randint call."""
    draws = []
    for name in ("randn", "rand", "randint"):
        def spy(*args, _draw=getattr(torch, name), _name=name, **kw):
            out = _draw(*args, **kw)
            draws.append((_name, kw.get("generator"), out.device))
            return out
        monkeypatch.setattr(torch, name, spy)
    return draws


@pytest.mark.parametrize("loop", ["train_gan", "train_discriminator"])
def test_every_draw_of_the_loops_uses_a_generator_on_the_device_of_its_output(monkeypatch, loop):
    # a generator that stands for the one generator_on makes on a GPU, to see which draws it drives
    on_device = torch.Generator().manual_seed(99)
    monkeypatch.setattr(ebmlib.train, "generator_on", lambda device, generator: on_device)
    handed_to_samplers = []

    def sample(n, generator):
        handed_to_samplers.append(generator)
        return toy.sample_grid25(n, generator)

    G, D = pair()
    draws = spy_on_draws(monkeypatch)
    if loop == "train_gan":
        train_gan(G, D, sample, steps=2, batch_size=16, n_dis=2, loss="wgan-gp", seed=0)
    else:
        train_discriminator(D, sample, sample, steps=2, batch_size=16, loss="wgan-gp", seed=0)
    assert draws and all(gen is not None and gen.device == device for _, gen, device in draws), draws
    data_generator = handed_to_samplers[0]
    assert data_generator is not on_device and all(g is data_generator for g in handed_to_samplers)
    # latents and the penalty's interpolation weights: on the nets' device; the data: the samplers' generator
    expected = {"randn", "rand"} if loop == "train_gan" else {"rand"}
    assert {name for name, gen, _ in draws if gen is on_device} == expected
    assert all(gen in (on_device, data_generator) for _, gen, _ in draws)
