"""W1 in 1-D (exact, empirical, by a critic), and a trained critic calibrated into a log density ratio."""
import math

import pytest
import torch

import ebmlib
from ebmlib import toy
from ebmlib.losses import NonSaturating, WassersteinGP
from ebmlib.nets import MLPDiscriminator
from ebmlib.wasserstein import critic_w1, kantorovich_potential, train_critic, w1_empirical, w1_exact, w1_quantiles

from helpers import Identity, gaussian

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def normal_quantile(mean, std):
    return lambda u: mean + std * torch.special.ndtri(u)


# --- exact and empirical W1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("m1, m2, s", [(0.0, 3.0, 1.0), (1.0, -2.0, 0.5), (0.2, 0.2, 2.0)])
def test_w1_of_shifted_gaussians_is_the_shift(m1, m2, s):
    p, q = toy.Mixture1D([m1], [s]), toy.Mixture1D([m2], [s])
    assert w1_exact(p, q) == pytest.approx(abs(m1 - m2), abs=1e-7)
    assert w1_quantiles(normal_quantile(m1, s), normal_quantile(m2, s)) == pytest.approx(abs(m1 - m2), abs=1e-7)


@pytest.mark.parametrize("s1, s2", [(1.0, 2.0), (0.5, 3.0)])
def test_w1_of_same_mean_gaussians(s1, s2):
    # quantiles s F^{-1}(u): W1 = |s1 - s2| E|Z| = |s1 - s2| sqrt(2 / pi); N(0, 1) vs N(0, 4): 0.79788...
    exact = abs(s1 - s2) * SQRT_2_OVER_PI
    p, q = toy.Mixture1D([0.0], [s1]), toy.Mixture1D([0.0], [s2])
    assert w1_exact(p, q) == pytest.approx(exact, abs=1e-7)
    assert w1_quantiles(normal_quantile(0, s1), normal_quantile(0, s2)) == pytest.approx(exact, abs=1e-5)


def test_w1_empirical_by_hand_and_against_the_exact_value():
    # sorted: [0, 1, 5] against [0, 1, 2]: (0 + 0 + 3) / 3
    assert w1_empirical(torch.tensor([5.0, 0.0, 1.0]), torch.tensor([[2.0], [0.0], [1.0]])) == pytest.approx(1.0)
    p = toy.Mixture1D([-2.0, 1.0], [0.5, 0.8], weights=[0.35, 0.65])
    q = toy.Mixture1D([-0.5], [1.6])
    gen = torch.Generator().manual_seed(0)
    estimate = w1_empirical(p.sample(50_000, gen), q.sample(50_000, gen))
    assert estimate == pytest.approx(w1_exact(p, q), abs=0.02)


def test_kantorovich_potential_is_1_lipschitz_and_attains_w1():
    p = toy.Mixture1D([-2.0, 1.0], [0.5, 0.8], weights=[0.35, 0.65])
    q = toy.Mixture1D([-0.5], [1.6])
    x = torch.linspace(-12, 12, 48_001, dtype=torch.float64)
    f = kantorovich_potential(p, q, x)
    assert (f.diff().abs() <= x.diff() * (1 + 1e-9)).all()
    # E_p f - E_q f by quadrature against the exact densities
    gap = torch.trapezoid(f * (p.log_prob(x).double().exp() - q.log_prob(x).double().exp()), x).item()
    assert gap == pytest.approx(w1_exact(p, q), abs=1e-3)


@pytest.mark.parametrize("call", [
    lambda: w1_empirical(torch.zeros(3), torch.zeros(4)),
    lambda: w1_empirical(torch.zeros(3, 2), torch.zeros(3, 2)),
    lambda: w1_empirical(torch.zeros(0), torch.zeros(0)),
    lambda: w1_quantiles(normal_quantile(0, 1), normal_quantile(0, 1), n=0),
    lambda: w1_quantiles(normal_quantile(0, 1), lambda u: torch.zeros(3)),
    lambda: w1_exact(toy.Mixture1D([0.0], [1.0]), toy.Mixture1D([0.0], [1.0]), n=-5),
])
def test_bad_w1_input_is_a_value_error(call):
    with pytest.raises(ValueError):
        call()


# --- critics trained alone ------------------------------------------------------------------------------


def test_train_critic_with_the_one_sided_penalty_overshoots_as_computed_by_hand():
    # N(1, 0.5^2) against N(-1, 0.5^2): W1 = 2, attained by f(x) = x. A critic of slope s scores 2 s and pays
    # lambda (s - 1)^2 at every interpolate, so the soft constraint settles at s = 1 + W1 / (2 lambda):
    # the estimate is W1 + W1^2 / (2 lambda) = 2.2 at lambda = 10 and 2.02 at lambda = 100.
    for weight, expected in [(10.0, 2.2), (100.0, 2.02)]:
        torch.manual_seed(0)
        D = MLPDiscriminator(in_dim=1, hidden=16, depth=1)
        h = train_critic(D, gaussian(1.0, 0.5), gaussian(-1.0, 0.5), steps=300, lr=3e-3, n_eval=20_000,
                         loss=WassersteinGP(weight, one_sided=True), progress=False)
        assert h["w1"] == pytest.approx(expected, abs=0.03)
    assert len(h["step"]) == len(h["loss"]) == len(h["w1_batch"]) == 6 and not D.training


def test_train_critic_with_spectral_norm_estimates_w1():
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=16, depth=1, spectral_norm=True)
    h = train_critic(D, gaussian(1.0, 0.5), gaussian(-1.0, 0.5), steps=300, loss="wgan", lr=1e-2, n_eval=20_000,
                     progress=False)
    assert h["w1"] == pytest.approx(2.0, abs=0.03)  # SN keeps the slope <= 1: no overshoot
    assert critic_w1(D, gaussian(1.0, 0.5), gaussian(-1.0, 0.5), n=20_000, seed=5) == pytest.approx(h["w1"], abs=0.03)


@pytest.mark.parametrize("kw", [dict(steps=0), dict(batch_size=-1), dict(lr=0.0), dict(loss="ns"), dict(loss="wgan")])
def test_bad_train_critic_arguments_are_value_errors(kw):
    D = MLPDiscriminator(in_dim=1, hidden=4, depth=1)  # no spectral norm: plain 'wgan' is refused
    with pytest.raises(ValueError):
        train_critic(D, gaussian(1.0, 1.0), gaussian(0.0, 1.0), **{**dict(steps=2), **kw})


# --- calibration of a critic ------------------------------------------------------------------------------


def test_calibrate_head_turns_an_sn_critic_into_the_log_ratio():
    # data N(1, 1), generator N(0, 1): the Kantorovich potential is f(x) = x + c, and so is the log ratio
    # up to scale: log p_data / p_g = x - 1/2. A trained SN critic, calibrated by the head, recovers it.
    real = gaussian(1.0, 1.0)
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=16, depth=1, spectral_norm=True)
    train_critic(D, real, gaussian(0.0, 1.0), steps=300, loss="wgan", lr=1e-2, n_eval=10_000, progress=False)
    state = {k: v.clone() for k, v in D.state_dict().items()}  # weights and power-iteration vectors
    d = ebmlib.calibrate(D, Identity(1), real, method="head", steps=400, lr=0.05, seed=0, progress=False)
    assert d.scale.item() == pytest.approx(1.0, abs=0.05)
    assert all(torch.equal(v, D.state_dict()[k]) for k, v in state.items()), "calibrate changed the critic"
    x = torch.linspace(-2, 3, 11)[:, None]
    with torch.no_grad():
        assert d(x).numpy() == pytest.approx((x[:, 0] - 0.5).numpy(), abs=0.15)
    gen = torch.Generator().manual_seed(1)
    r, f = real(20_000, gen), torch.randn(20_000, 1, generator=gen)
    with torch.no_grad():
        loss = NonSaturating().discriminator(d(r), d(f)).item()
        optimal = NonSaturating().discriminator(r[:, 0] - 0.5, f[:, 0] - 0.5).item()
    assert loss == pytest.approx(optimal, abs=0.01)
