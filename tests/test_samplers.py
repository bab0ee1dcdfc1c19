"""The samplers behind ``ebmlib.sample``: generator, DRS, MH-GAN and DDLS (DOT's own tests: test_transport.py).

With G(z) = z and d(x) = a.x - c||x||^2/2, the corrected distribution p_t(z) ∝ N(z; 0, I) e^{d(z)} is
N(a / (1 + c), I / (1 + c)), and Z0 = E_{p0}[e^d] = (1 + c)^{-k/2} exp(||a||^2 / (2 (1 + c))), so every
sampler's answer is known in closed form. On images (N, 3, 32, 32) each sample is accepted, rejected or
moved as a whole.
"""
import contextlib
import math

import pytest
import torch
from torch import nn

import ebmlib
from ebmlib.energy import calibration_model
from ebmlib.nets import MLPDiscriminator, MLPGenerator
from ebmlib.samplers import SAMPLERS, sample_ddls, sampling_setup

from helpers import Identity, QuadLogit, Scaled, small_sngan_pair

METHODS = ("generator", "drs", "mh", "ddls", "dot")
FAST = {"generator": {}, "drs": {"batch_size": 500, "burn_in": 500}, "mh": {"steps": 10},
        "ddls": {"steps": 10, "step_size": 0.01}, "dot": {"steps": 5}}


def tilted(a, c):
    """Mean, variance (per coordinate) and Z0 of p0 e^d for d = a.x - c||x||^2 / 2 with p0 = N(0, I)."""
    a = torch.as_tensor(a, dtype=torch.float64)
    k = len(a)
    z0 = (1 + c) ** (-k / 2) * math.exp(float((a ** 2).sum()) / (2 * (1 + c)))
    return a / (1 + c), 1 / (1 + c), z0


@pytest.fixture
def mlp_pair():
    torch.manual_seed(0)
    return MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)


# ---- generator alone ------------------------------------------------------------------------------

def test_generator_sampler_is_the_pushforward_of_the_prior():
    G = Identity(2)
    out = ebmlib.sample("generator", G, QuadLogit([5.0, 0.0]), 4000, seed=0)
    assert out.x.shape == (4000, 2) and out.z.shape == (4000, 2)
    assert torch.equal(out.x, out.z)
    # d is ignored: N(0, I) (standard error of the mean 0.016, of the variance 0.022)
    assert out.x.mean(dim=0).abs().max() < 0.07
    assert (out.x.var(dim=0) - 1).abs().max() < 0.1
    assert out.seconds >= 0


# ---- DRS ------------------------------------------------------------------------------------------

def test_drs_samples_the_tilted_gaussian_with_acceptance_z0_over_m():
    # d = x - x^2/2 on G(z) = z (1-D): target N(0.5, 0.5); max d = 0.5 at x = 1, so log M ≈ 0.5 and
    # the acceptance rate is Z0 / M = 0.908 / e^0.5 = 0.551.
    mean, var, Z0 = tilted([1.0], 1.0)
    out = ebmlib.sample("drs", Identity(1), QuadLogit([1.0], 1.0), 4000, seed=0)
    assert out.x.shape == (4000, 1)
    assert torch.equal(out.x, out.z)
    # standard errors: mean sqrt(0.5 / 4000) = 0.011, variance 0.5 sqrt(2 / 4000) = 0.011
    assert out.x.mean().item() == pytest.approx(mean.item(), abs=0.05)
    assert out.x.var().item() == pytest.approx(var, abs=0.05)
    log_m = out.info["log_m"]
    assert log_m == pytest.approx(0.5, abs=0.01)  # the largest logit of >= 10^4 proposals
    # at least 8000 proposals: standard error of the rate sqrt(0.25 / 8000) = 0.0056
    assert out.info["accept_rate"] == pytest.approx(Z0 / math.exp(log_m), abs=0.025)


def test_drs_with_a_given_log_m_accepts_at_rate_z0_over_m():
    # 2-D: d = a.x with a = (0.8, -0.4), no curvature: target N(a, I), Z0 = exp(||a||^2 / 2) = 1.492.
    # With log M = 2.5 every logit below it is handled exactly (P(d > 2.5) ~ 1e-6), rate = Z0 e^-2.5.
    mean, var, Z0 = tilted([0.8, -0.4], 0.0)
    out = ebmlib.sample("drs", Identity(2), QuadLogit([0.8, -0.4]), 2000, seed=1, log_m=2.5)
    assert out.info["log_m"] == 2.5
    assert out.info["accept_rate"] == pytest.approx(Z0 * math.exp(-2.5), abs=0.01)  # s.e. 0.0015
    # standard errors of the mean 0.022, of the variance 0.032
    assert torch.allclose(out.x.double().mean(dim=0), mean, atol=0.1)
    assert torch.allclose(out.x.double().var(dim=0), torch.full((2,), var, dtype=torch.float64), atol=0.13)


def test_drs_quantile_sets_log_m_from_the_burn_in_logits():
    out = ebmlib.sample("drs", Identity(1), QuadLogit([1.0], 1.0), 500, seed=2, m_quantile=0.5,
                        burn_in=20_000)
    # median of d(z) = z - z^2/2 with z ~ N(0, 1): below the maximum 0.5
    assert out.info["log_m"] < 0.45
    # logits above log M are accepted with probability 1, so the rate exceeds Z0 / M's exact value 0.551
    assert out.info["accept_rate"] > 0.6


def test_drs_gives_up_with_a_clear_error_when_m_is_huge():
    with pytest.raises(RuntimeError, match="DRS accepted only"):
        ebmlib.sample("drs", Identity(1), QuadLogit([1.0], 1.0), 100, seed=0, log_m=60.0, batch_size=100,
                      max_rounds=3)


# ---- MH-GAN ---------------------------------------------------------------------------------------

def test_mh_samples_the_tilted_gaussian():
    # target N(0.5, 0.5); acceptance ratio e^{d(x') - d(x)}, d bounded above: the chains mix fast
    mean, var, _ = tilted([1.0], 1.0)
    out = ebmlib.sample("mh", Identity(1), QuadLogit([1.0], 1.0), 4000, seed=0, steps=40)
    assert torch.equal(out.x, out.z)
    assert out.x.mean().item() == pytest.approx(mean.item(), abs=0.05)
    assert out.x.var().item() == pytest.approx(var, abs=0.05)
    assert 0.3 < out.info["accept_rate"] < 1


class LatentImage(nn.Module):
    """G(z): images (N, 3, 32, 32) whose every pixel is the latent's first coordinate, so that an image shows
    which latent it came from; no parameters."""

    latent_dim = 2

    def forward(self, z):
        return z[:, :1, None, None].expand(-1, 3, 32, 32).contiguous()


class Brightness(nn.Module):
    """One logit per image: its mean pixel value."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))


@pytest.mark.parametrize("n", [32, 50])
def test_mh_on_images_keeps_or_replaces_whole_images(n):
    # n = 32 equals the images' height and width: a per-sample mask that broadcast over the wrong axis would
    # mix rows of different samples instead of failing
    G, d = LatentImage(), Brightness()
    out = ebmlib.sample("mh", G, d, n, seed=0, steps=5)
    assert out.x.shape == (n, 3, 32, 32) and out.z.shape == (n, 2)
    assert torch.equal(out.x, G(out.z)), "every image must be G of its own latent"
    assert 0 < out.info["accept_rate"] < 1, "the test needs both accepted and rejected proposals"
    start = ebmlib.sample("generator", G, d, n, seed=0)
    assert not torch.equal(out.z, start.z)


# ---- DDLS -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, c", [([1.5, 0.0], 0.0), ([1.0, -1.0], 1.0)])
def test_ddls_follows_the_discriminator_gradient_and_the_prior(a, c):
    # G = identity, d = a.x - c|x|^2/2: p_t = N(a / (1 + c), I / (1 + c)). A DDLS that dropped d's
    # gradient would stay at mean 0; one without the prior term would not have variance 1 / (1 + c).
    # eps = 0.1: ULA's mean is exact for a Gaussian, its variance is biased by a factor
    # 1 / (1 - eps (1 + c) / 4) <= 1.05.
    mean, var, _ = tilted(a, c)
    out = ebmlib.sample("ddls", Identity(2), QuadLogit(a, c), 2000, seed=0, steps=300, step_size=0.1)
    assert out.x.shape == (2000, 2) and torch.equal(out.x, out.z)
    # standard errors: mean <= 0.022, variance <= 0.032
    assert torch.allclose(out.z.double().mean(dim=0), mean, atol=0.1), out.z.mean(dim=0)
    assert torch.allclose(out.z.double().var(dim=0), torch.full((2,), var, dtype=torch.float64),
                          atol=0.03 + 0.13 * var)
    assert len(out.info["energy_trace"]) == 300


def test_the_ddls_mean_test_would_catch_a_detached_discriminator():
    # the mutant: the same chains with d's gradient dropped (d detached) sample the prior alone
    d = QuadLogit([1.5, 0.0])
    detached = lambda z: 0.5 * (z ** 2).sum(dim=1) - d(z).detach()  # noqa: E731
    res = ebmlib.langevin(detached, torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)), steps=300,
                          step_size=0.1, generator=torch.Generator().manual_seed(1))
    assert (res.z.mean(dim=0) - torch.tensor([1.5, 0.0])).abs().max() > 1.0  # far outside the 0.1 tolerance
    out = ebmlib.sample("ddls", Identity(2), d, 2000, seed=0, steps=300, step_size=0.1)
    assert (out.z.mean(dim=0) - torch.tensor([1.5, 0.0])).abs().max() < 0.1


def test_ddls_with_mala_samples_the_same_target_and_reports_acceptance():
    mean, var, _ = tilted([1.0, -1.0], 1.0)
    out = ebmlib.sample("ddls", Identity(2), QuadLogit([1.0, -1.0], 1.0), 2000, seed=1, steps=200,
                        step_size=0.5, mala=True)
    assert 0.5 < out.info["accept_rate"] <= 1
    assert torch.allclose(out.z.double().mean(dim=0), mean, atol=0.1)
    # MALA is exact: variance 0.5 (standard error 0.016)
    assert torch.allclose(out.z.double().var(dim=0), torch.full((2,), var, dtype=torch.float64), atol=0.07)


def test_ddls_leaves_no_gradients_on_g_or_d(mlp_pair):
    G, D = mlp_pair
    assert all(p.requires_grad for p in list(G.parameters()) + list(D.parameters()))
    ebmlib.sample("ddls", G, D, 64, seed=0, steps=5, step_size=0.01)
    ebmlib.sample("ddls", G, D, 64, seed=0, steps=5, step_size=0.01, mala=True)
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is None, f"{name} has a .grad after sampling"
    # and with the known pair
    G, d = Identity(2), QuadLogit([1.0, 0.0], 0.5)
    ebmlib.sample("ddls", G, d, 16, seed=0, steps=5)
    assert all(p.grad is None for p in list(G.parameters()) + list(d.parameters()))


def test_ddls_is_the_same_inside_no_grad(mlp_pair):
    G, D = mlp_pair
    a = ebmlib.sample("ddls", G, D, 64, seed=3, steps=20, step_size=0.05)
    with torch.no_grad():
        b = ebmlib.sample("ddls", G, D, 64, seed=3, steps=20, step_size=0.05)
    assert torch.equal(a.z, b.z) and torch.equal(a.x, b.x)
    # the discriminator's pull survives no_grad (G = identity, d = 1.5 x_0: mean (1.5, 0))
    with torch.no_grad():
        out = ebmlib.sample("ddls", Identity(2), QuadLogit([1.5, 0.0]), 2000, seed=4, steps=200, step_size=0.1)
    assert torch.allclose(out.z.mean(dim=0), torch.tensor([1.5, 0.0]), atol=0.1)


def test_ddls_is_the_same_inside_inference_mode(mlp_pair):
    # torch.inference_mode is the other common way evaluation code turns autograd off (PyTorch
    # Lightning's predict/test loops run under it). DDLS needs d's gradient, so it must re-enable it.
    G, D = mlp_pair
    a = ebmlib.sample("ddls", G, D, 64, seed=3, steps=20, step_size=0.05)
    with torch.inference_mode():
        b = ebmlib.sample("ddls", G, D, 64, seed=3, steps=20, step_size=0.05)
    assert torch.equal(a.z, b.z)


def test_ddls_from_given_z0_and_snapshots_across_chunks():
    G, d = Identity(2), QuadLogit([1.0, 0.0], 1.0)
    z0 = torch.randn(30, 2, generator=torch.Generator().manual_seed(5))
    out = ebmlib.sample("ddls", G, d, 30, seed=0, steps=20, step_size=0.05, z0=z0, snapshot_every=10,
                        batch_size=8)  # 4 chunks: 8 + 8 + 8 + 6
    assert out.z.shape == (30, 2)
    snaps = out.info["snapshots"]
    assert [s for s, _ in snaps] == [0, 10, 20]
    assert torch.equal(snaps[0][1], z0)
    assert torch.equal(snaps[-1][1], out.z)
    # tiny step: the chains barely move from z0
    near = ebmlib.sample("ddls", G, d, 30, seed=0, steps=1, step_size=1e-8, z0=z0)
    assert torch.allclose(near.z, z0, atol=1e-3)


def test_sample_restores_train_mode_and_samples_in_eval_mode():
    seen = []

    class Recorder(Identity):
        def forward(self, z):
            seen.append(self.training)
            return super().forward(z)

    G, d = Recorder(2), QuadLogit([1.0, 0.0])
    G.train(), d.train()
    for method in METHODS:
        seen.clear()
        ebmlib.sample(method, G, d, 20, seed=0, **FAST[method])
        assert seen and not any(seen), f"{method}: G ran in train mode"
        assert G.training and d.training, f"{method} did not restore train mode"
    G.eval()
    ebmlib.sample("generator", G, d, 5)
    assert not G.training


# ---- determinism ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_samples_different_seed_different(method, mlp_pair):
    G, D = mlp_pair
    torch.manual_seed(123)  # the global RNG must not matter
    a = ebmlib.sample(method, G, D, 50, seed=7, **FAST[method])
    torch.manual_seed(456)
    b = ebmlib.sample(method, G, D, 50, seed=7, **FAST[method])
    c = ebmlib.sample(method, G, D, 50, seed=8, **FAST[method])
    assert a.x.shape == (50, 2) and a.z.shape == (50, 2)
    assert torch.equal(a.x, b.x) and torch.equal(a.z, b.z)
    assert not torch.equal(a.x, c.x)


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, -5, 2.5, None])
@pytest.mark.parametrize("method", METHODS)
def test_bad_sample_count_is_a_value_error(method, n, mlp_pair):
    G, D = mlp_pair
    with pytest.raises(ValueError, match="number of samples"):
        ebmlib.sample(method, G, D, n, **FAST[method])


def test_unknown_method_is_a_value_error(mlp_pair):
    with pytest.raises(ValueError, match="ddls"):
        ebmlib.sample("hmc", *mlp_pair, 10)
    assert set(SAMPLERS) == set(METHODS)


@pytest.mark.parametrize("options", [dict(steps=0), dict(steps=-3), dict(steps=1.5), dict(step_size=0),
                                     dict(step_size=-0.01)])
def test_bad_ddls_options_are_value_errors(options, mlp_pair):
    with pytest.raises(ValueError):
        ebmlib.sample("ddls", *mlp_pair, 10, **options)


@pytest.mark.parametrize("method, options", [("mh", dict(steps=0)), ("mh", dict(steps=2.0)),
                                             ("drs", dict(m_quantile=0)), ("drs", dict(m_quantile=1.5))])
def test_bad_mh_and_drs_options_are_value_errors(method, options, mlp_pair):
    with pytest.raises(ValueError):
        ebmlib.sample(method, *mlp_pair, 10, **options)


@pytest.mark.parametrize("z0", [torch.zeros(10, 3), torch.zeros(10), torch.zeros(10, 2, 1)])
def test_ddls_wrong_z0_shape_names_expected_and_given(z0, mlp_pair):
    G, D = mlp_pair
    with pytest.raises(ValueError) as info:
        sample_ddls(G, D, 10, z0=z0)
    msg = str(info.value)
    assert "(N, 2)" in msg and str(tuple(z0.shape)) in msg
    with pytest.raises(ValueError):
        ebmlib.sample("ddls", G, D, 10, z0=z0)


# ---- logits of the wrong shape, divergence, devices ----------------------------------------------

class KeepDimLogit(QuadLogit):
    """The same d, returning (N, 1) instead of (N,): what nn.Linear(h, 1) gives without a squeeze."""

    def forward(self, x):
        return super().forward(x)[:, None]


@pytest.mark.parametrize("method, options", [("drs", {"batch_size": 1000, "burn_in": 1000}), ("mh", {"steps": 20}),
                                             ("ddls", {"steps": 100, "step_size": 0.1})])
def test_logits_of_shape_n_by_1_are_rejected_or_handled(method, options):
    # Broadcasting (N,) against (N, 1) gives (N, N): DDLS then silently runs with a gradient N times
    # too large (a chain at temperature 1/N), DRS and MH crash with an unrelated indexing error.
    # Either answer the same as for the (N,) logit, or raise a ValueError naming the shapes.
    G, n = Identity(2), 500
    expected = ebmlib.sample(method, G, QuadLogit([1.0, 0.0]), n, seed=0, **options)
    try:
        got = ebmlib.sample(method, G, KeepDimLogit([1.0, 0.0]), n, seed=0, **options)
    except ValueError as err:
        assert "(N,)" in str(err) or "shape" in str(err), str(err)
    else:
        assert got.x.shape == (n, 2)
        assert torch.allclose(got.x, expected.x, atol=1e-5)


def test_ddls_divergence_propagates_through_sample_and_restores_modes():
    class Cliff(QuadLogit):  # d = +inf beyond |x| = 3: E = -inf there
        def forward(self, x):
            d = super().forward(x)
            return torch.where(x.norm(dim=1) < 3, d, torch.full_like(d, float("inf")))

    G, d = Identity(2), Cliff([1.0, 0.0])
    G.train(), d.train()
    with pytest.raises(ebmlib.LangevinDivergence) as info:
        ebmlib.sample("ddls", G, d, 100, seed=0, steps=10, step_size=25.0, z0=torch.zeros(100, 2))
    assert info.value.step == 1 and info.value.last_finite.shape == (100, 2)
    assert G.training and d.training

# ---- DDLS on images ------------------------------------------------------------------------------

def test_image_ddls_step_is_the_langevin_update_with_the_discriminator_term():
    G, D = small_sngan_pair()
    D = Scaled(D, 100.0)  # a logit whose gradient dominates rounding (about 0.1 per latent coordinate)
    z0 = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    eps = 0.05
    out = ebmlib.sample("ddls", G, D, 6, z0=z0, steps=1, step_size=eps, noise_scale=0.0)

    z = z0.clone().requires_grad_(True)
    (grad_d,) = torch.autograd.grad(D(G(z)).sum(), z)
    expected = z0 - 0.5 * eps * (z0 - grad_d)
    assert grad_d.abs().max() > 1e-2, "the test needs a discriminator with a clear gradient"
    torch.testing.assert_close(out.z, expected, rtol=1e-4, atol=1e-5)  # the d term moves z by ~2.5e-3
    prior_only = z0 - 0.5 * eps * z0
    assert (out.z - prior_only).abs().max() > 1e-5, "DDLS on images dropped the discriminator's gradient"
    assert out.x.shape == (6, 3, 32, 32)
    assert all(p.grad is None for p in (*G.parameters(), *D.parameters())), "DDLS must not touch parameters' .grad"


def test_image_ddls_amp_flag_is_ignored_on_the_cpu_and_gives_the_same_chains():
    G, D = small_sngan_pair()
    a = ebmlib.sample("ddls", G, D, 4, seed=3, steps=3, step_size=0.01)
    b = ebmlib.sample("ddls", G, D, 4, seed=3, steps=3, step_size=0.01, amp=True)
    torch.testing.assert_close(a.z, b.z)


class Exploding(nn.Module):
    """A logit that is finite at the start and overflows once a chain has moved (|z| grows)."""

    def __init__(self, D):
        super().__init__()
        self.D = D

    def forward(self, x):
        return self.D(x) * torch.exp(1e4 * (x.abs().mean((1, 2, 3)) - self.threshold))


def test_image_ddls_diverging_chain_names_the_step_and_keeps_the_states():
    G, D = small_sngan_pair()
    z0 = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    d = Exploding(D)
    with torch.no_grad():
        d.threshold = G(z0).abs().mean((1, 2, 3)).max().item() + 1e-3  # finite at z0, not after a large step
    with pytest.raises(ebmlib.LangevinDivergence, match="step size 5") as info:
        ebmlib.sample("ddls", G, d, 4, z0=z0, steps=5, step_size=5.0)
    assert info.value.step >= 1 and info.value.step_size == 5.0
    assert torch.isfinite(info.value.last_finite).all() and info.value.last_finite.shape == (4, 8)


# ---- the fast set-up of DDLS: frozen, channels-last nets, cuDNN autotuning, all undone afterwards ----

def _net_state(*modules):
    params = [p for m in modules for p in m.parameters()]
    return [p.requires_grad for p in params], [p.stride() for p in params], torch.backends.cudnn.benchmark


class Probe(nn.Module):
    """d itself, recording on each call what the set-up looks like from inside the sampler."""

    def __init__(self, d, G):
        super().__init__()
        self.d, self.G, self.seen = d, G, []

    def forward(self, x):
        params = [*self.G.parameters(), *self.d.parameters()]
        convs = [p for p in params if p.dim() == 4]
        self.seen.append({"frozen": not any(p.requires_grad for p in params),
                          "channels_last": len(convs) > 0 and all(p.is_contiguous(memory_format=torch.channels_last) and
                                               not p.is_contiguous() for p in convs),
                          "cudnn_benchmark": torch.backends.cudnn.benchmark})
        return self.d(x)


@pytest.mark.parametrize("mode", ["plain", "inference_mode"])
def test_ddls_samples_with_frozen_channels_last_nets_and_restores_them(mode):
    G, D = small_sngan_pair()
    d = Probe(calibration_model("head", Scaled(D, 100.0)), G)  # D frozen by the head, the head trainable
    next(G.parameters()).requires_grad_(False)  # a mix of frozen and trainable to restore exactly
    before = _net_state(G, d)
    assert before[2] is False and any(before[0]) and not all(before[0])
    run = dict(seed=3, steps=3, step_size=0.05)
    context = torch.inference_mode() if mode == "inference_mode" else contextlib.nullcontext()
    with context:
        fast = ebmlib.sample("ddls", G, d, 6, channels_last=True, cudnn_benchmark=True, **run)
    seen_fast, d.seen = d.seen, []
    plain = ebmlib.sample("ddls", G, d, 6, **run)  # the CPU defaults: standard layout, cuDNN flag untouched
    assert all(s == {"frozen": True, "channels_last": True, "cudnn_benchmark": True} for s in seen_fast)
    assert all(s == {"frozen": True, "channels_last": False, "cudnn_benchmark": False} for s in d.seen)
    assert _net_state(G, d) == before
    assert all(p.grad is None for p in (*G.parameters(), *d.parameters()))
    torch.testing.assert_close(fast.z, plain.z, rtol=1e-4, atol=1e-5)


def test_the_set_up_is_undone_when_a_chain_diverges():
    G, D = small_sngan_pair()
    z0 = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    d = Exploding(D)
    with torch.no_grad():
        d.threshold = G(z0).abs().mean((1, 2, 3)).max().item() + 1e-3
    before = _net_state(G, d)
    with pytest.raises(ebmlib.LangevinDivergence):
        ebmlib.sample("ddls", G, d, 4, z0=z0, steps=5, step_size=5.0, channels_last=True, cudnn_benchmark=True)
    assert _net_state(G, d) == before and all(before[0])
    assert all(p.grad is None for p in (*G.parameters(), *d.parameters()))


def test_sampling_setup_restores_the_nets_after_any_error():
    G, D = small_sngan_pair()
    before = _net_state(G, D)
    with pytest.raises(RuntimeError, match="inside"):
        with sampling_setup(G, D, D, channels_last=True, cudnn_benchmark=True):  # D twice: shared parameters
            assert _net_state(G, D)[2] is True and not any(_net_state(G, D)[0])
            raise RuntimeError("inside")
    assert _net_state(G, D) == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", METHODS)
def test_samplers_run_on_the_device_of_g_and_d(method):
    # The prior draws must land on G's device (a CPU generator with a CUDA G fails in G(z)).
    torch.manual_seed(0)
    G, D = MLPGenerator(hidden=16, depth=2).cuda(), MLPDiscriminator(hidden=16, depth=2).cuda()
    out = ebmlib.sample(method, G, D, 50, seed=0, **FAST[method])
    assert out.x.is_cuda and out.x.shape == (50, 2)
    again = ebmlib.sample(method, G, D, 50, seed=0, **FAST[method])
    assert torch.equal(out.x, again.x)


def test_the_generator_alone_needs_no_discriminator_and_the_others_say_they_do():
    G = MLPGenerator(latent_dim=2)
    out = ebmlib.sample("generator", G, None, 5, seed=0)
    assert out.x.shape == (5, 2)
    with pytest.raises(ValueError, match="'ddls' needs the discriminator"):
        ebmlib.sample("ddls", G, None, 5)


# ---- DRS's acceptance rule, MH-GAN from real starts, the sampler-free reference --------------------

def test_drs_rule_without_shift_is_exact_rejection_and_the_shift_moves_it_in_logit_space():
    from ebmlib.samplers import drs_log_acceptance

    logit = torch.linspace(-8, 2, 101)
    exact = (logit - 2.0).double()
    # sigmoid(a - log(1 - e^a)) = e^a: the rule with γ = 0 is rejection sampling with bound M
    assert torch.allclose(drs_log_acceptance(logit, 2.0, gamma=0.0, epsilon=0.0)[:-1], exact[:-1], atol=1e-6)
    more, fewer = drs_log_acceptance(logit, 2.0, gamma=-3.0), drs_log_acceptance(logit, 2.0, gamma=3.0)
    base = drs_log_acceptance(logit, 2.0)
    assert (more > base).all() and (fewer < base).all()
    # in logit space the shift is exactly γ
    logit_of = lambda log_p: log_p - torch.log1p(-log_p.exp())  # noqa: E731
    assert torch.allclose(logit_of(more[:-5]) - logit_of(base[:-5]), torch.full((96,), 3.0, dtype=torch.float64),
                          atol=1e-6)


def test_drs_with_azadi_shift_moves_acceptance_towards_the_highest_logits():
    mean, _, _ = tilted([1.0], 1.0)
    exact = ebmlib.sample("drs", Identity(1), QuadLogit([1.0], 1.0), 3000, seed=0)
    shifted = ebmlib.sample("drs", Identity(1), QuadLogit([1.0], 1.0), 3000, seed=0, shift_quantile=0.95)
    # near d's maximum (x = 1) F grows without bound, so its 95th percentile is positive: γ > 0 accepts less,
    # and what it accepts crowds towards the largest logits
    assert shifted.info["gamma"] > 0
    assert shifted.info["accept_rate"] < exact.info["accept_rate"] - 0.1
    assert exact.x.mean().item() == pytest.approx(mean.item(), abs=0.05)
    assert shifted.x.mean().item() > mean.item() + 0.1
    assert shifted.x.var().item() < exact.x.var().item() - 0.1
    with pytest.raises(ValueError, match="shift_quantile"):
        ebmlib.sample("drs", Identity(1), QuadLogit([1.0], 1.0), 10, shift_quantile=1.5)


def test_mh_from_real_starts_samples_the_target_and_never_returns_a_start():
    mean, var, _ = tilted([1.0], 1.0)
    # starts drawn from the target itself: the chains are stationary from the first step
    starts = mean.float() + math.sqrt(var) * torch.randn(4000, 1, generator=torch.Generator().manual_seed(3))
    out = ebmlib.sample("mh", Identity(1), QuadLogit([1.0], 1.0), 4000, seed=0, steps=20, x0=starts)
    assert out.x.mean().item() == pytest.approx(mean.item(), abs=0.05)
    assert out.x.var().item() == pytest.approx(var, abs=0.05)
    # every returned sample is a generator sample: G(z) = z, so x equals its latent, and none is a start
    assert torch.equal(out.x, out.z)
    assert not torch.isin(out.x, starts).any()
    # a start whose logit no proposal comes near (d(x) = x at x = 30) is run again from the generator
    stuck = torch.full((50, 1), 30.0)
    again = ebmlib.sample("mh", Identity(1), QuadLogit([1.0]), 50, seed=1, steps=3, x0=stuck)
    assert again.info["restarted"] == 50 and torch.isfinite(again.z).all() and torch.equal(again.x, again.z)
    with pytest.raises(ValueError, match="x0 holds 50"):
        ebmlib.sample("mh", Identity(1), QuadLogit([1.0], 1.0), 40, x0=stuck)


@pytest.mark.parametrize("lattice, tol", [(False, 0.05), (True, 1e-3)])
def test_reweight_estimates_the_tilted_gaussian(lattice, tol):
    from ebmlib.samplers import reweight

    mean, var, _ = tilted([0.8, -0.4], 1.0)
    out = reweight(Identity(2), QuadLogit([0.8, -0.4], 1.0), 40_000, seed=0, lattice=lattice)
    w = out.info["weights"]
    assert w.dtype == torch.float64 and w.sum().item() == pytest.approx(1.0)
    est_mean = (w[:, None] * out.x.double()).sum(0)
    est_var = (w[:, None] * (out.x.double() - est_mean) ** 2).sum(0)
    assert torch.allclose(est_mean, mean, atol=tol), est_mean
    assert torch.allclose(est_var, torch.full((2,), var, dtype=torch.float64), atol=tol), est_var
    assert 0 < out.info["ess"] <= len(w)


def test_reweight_lattice_shifts_differ_and_big_latents_are_refused(mlp_pair):
    from ebmlib.samplers import reweight

    a = reweight(Identity(2), QuadLogit([0.8, -0.4]), 10_000, seed=0, lattice=True)
    b = reweight(Identity(2), QuadLogit([0.8, -0.4]), 10_000, seed=1, lattice=True)
    assert not torch.equal(a.z, b.z)
    with pytest.raises(ValueError, match="latent of size 1 to 3"):
        reweight(Identity(4), QuadLogit([0.0] * 4), 1000, lattice=True)
