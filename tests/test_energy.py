"""The latent energy E(z) = ||z||^2/2 - d(G(z)), the calibration of a discriminator's logit (on vectors and on
images), and calibrations saved and loaded."""
import pytest
import torch
import torch.nn.functional as F

import ebmlib
from ebmlib import cifar10, images
from ebmlib.checkpoint import CheckpointError
from ebmlib.energy import (
    CALIBRATION_METHODS,
    CalibratedLogit,
    ResidualLogit,
    calibration_model,
    load_calibration,
    log_standard_normal,
    save_calibration,
)
from ebmlib.losses import NonSaturating
from ebmlib.nets import MLPDiscriminator, MLPGenerator

from helpers import AffineLogit, Identity, Linear, QuadLogit, Scaled, gaussian, small_sngan_pair


def test_latent_energy_value_and_gradient_on_known_g_and_d():
    # G(z) = W z + b (2 -> 3), d(x) = a.x - c|x|^2/2: grad_z d(G(z)) = W^T (a - c G(z))
    W = torch.tensor([[1.0, -2.0], [0.5, 0.3], [0.0, 1.5]])
    b = torch.tensor([0.1, -0.2, 0.3])
    a, c = torch.tensor([0.7, -1.1, 0.4]), 0.6
    G, d = Linear(W, b), QuadLogit(a, c)
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    e = ebmlib.latent_energy(z, G, d)
    x = z.detach() @ W.T + b
    expected = 0.5 * (z.detach() ** 2).sum(1) - (x @ a - 0.5 * c * (x ** 2).sum(1))
    assert e.shape == (7,)
    assert torch.allclose(e, expected, atol=1e-5)
    (grad,) = torch.autograd.grad(e.sum(), z)
    expected_grad = z.detach() - (a - c * x) @ W
    assert torch.allclose(grad, expected_grad, atol=1e-5)


def test_latent_energy_with_mlps_is_prior_minus_logit_and_gradient_is_z_minus_grad_d():
    torch.manual_seed(0)
    G, D = MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)
    z = torch.randn(9, 2, requires_grad=True)
    e = ebmlib.latent_energy(z, G, D)
    assert torch.allclose(e, 0.5 * (z ** 2).sum(1) - D(G(z)), atol=1e-6)
    (grad,) = torch.autograd.grad(e.sum(), z)
    (grad_d,) = torch.autograd.grad(D(G(z)).sum(), z)
    assert torch.allclose(grad, z.detach() - grad_d, atol=1e-6)
    assert grad_d.abs().max() > 0  # d's term really contributes
    # exp(-E) is p0(z) e^{d(G(z))} up to a constant: differences of E match differences of the log-target
    log_target = log_standard_normal(z) + D(G(z))
    assert torch.allclose(e - e[0], -(log_target - log_target[0]), atol=1e-5)


def test_log_standard_normal_matches_torch_distributions():
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert torch.allclose(log_standard_normal(z), expected, atol=1e-5)


@pytest.mark.parametrize("z", [torch.zeros(4, 3), torch.zeros(4), torch.zeros(1, 4, 2)])
def test_latent_energy_wrong_shape_names_expected_and_given(z):
    G = MLPGenerator(latent_dim=2, hidden=8, depth=1)
    with pytest.raises(ValueError) as info:
        ebmlib.latent_energy(z, G, MLPDiscriminator(hidden=8, depth=1))
    assert "(N, 2)" in str(info.value) and str(tuple(z.shape)) in str(info.value)


# ---- calibration ----------------------------------------------------------------------------------
# 1-D world: p_g = N(0, 1) (G = identity), p_data = N(1, 1): the optimal logit is x - 1/2.

REAL = gaussian(1.0, 1.0)


def logistic_loss(model, real_sampler=REAL, n=20_000, seed=999):
    """The logistic loss of real vs G samples on fresh draws (standard error about 0.005)."""
    gen = torch.Generator().manual_seed(seed)
    real, fake = real_sampler(n, gen), torch.randn(n, 1, generator=gen)
    with torch.no_grad():
        return NonSaturating().discriminator(model(real), model(fake)).item()


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}, \
        {k: p.requires_grad for k, p in module.named_parameters()}


def test_calibrate_head_fixes_an_overconfident_logit():
    d = AffineLogit(3.0, 1.0)  # three times too steep, wrong offset
    before_state, _ = snapshot(d)
    before = logistic_loss(d)
    cal = ebmlib.calibrate(d, Identity(1), REAL, method="head", steps=400, batch_size=512, seed=0)
    after = logistic_loss(cal)
    optimal = logistic_loss(AffineLogit(1.0, -0.5))
    assert isinstance(cal, CalibratedLogit) and not cal.training
    assert after <= before - 0.5  # before: about 2.19; the optimum (d = x - 1/2): about 1.17
    assert after == pytest.approx(optimal, abs=0.02)
    # the head recovers a = 1/3, b = -0.5 - 1/3
    assert cal.scale.item() == pytest.approx(1 / 3, abs=0.05)
    assert cal.bias.item() == pytest.approx(-0.5 - 1 / 3, abs=0.1)
    for k, v in before_state.items():
        assert torch.equal(v, d.state_dict()[k]), f"calibrate changed d's {k}"


def test_calibrate_head_leaves_the_original_d_trainable():
    # "The original d is never modified": its parameters must keep requires_grad, or a later
    # train_gan(G, D, ...) silently stops updating D.
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=8, depth=1)
    ebmlib.calibrate(D, Identity(1), REAL, method="head", steps=5, batch_size=64)
    frozen = [k for k, p in D.named_parameters() if not p.requires_grad]
    assert not frozen, f"calibrate(method='head') turned off requires_grad on the original d: {frozen}"


def test_calibrate_finetune_lowers_the_loss_and_copies_d():
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=32, depth=2)
    state, flags = snapshot(D)
    before = logistic_loss(D)
    cal = ebmlib.calibrate(D, Identity(1), REAL, method="finetune", steps=300, batch_size=256, lr=3e-3, seed=0)
    after = logistic_loss(cal)
    assert cal is not D and not cal.training
    assert after <= before - 0.02, (before, after)
    assert after < logistic_loss(AffineLogit(1.0, -0.5)) + 0.02  # near the optimum
    new_state, new_flags = snapshot(D)
    assert new_flags == flags
    for k, v in state.items():
        assert torch.equal(v, new_state[k]), f"calibrate changed d's {k}"
    # the copy really changed
    assert any(not torch.equal(v, cal.state_dict()[k]) for k, v in state.items())


def test_calibrate_rejects_unknown_method():
    with pytest.raises(ValueError, match="head"):
        ebmlib.calibrate(AffineLogit(1.0, 0.0), Identity(1), REAL, method="platt")


def test_calibrated_logit_gradient_flows_to_the_input_for_ddls():
    cal = CalibratedLogit(AffineLogit(2.0, 0.0))
    with torch.no_grad():
        cal.scale.fill_(0.5)
    x = torch.ones(3, 1, requires_grad=True)
    (g,) = torch.autograd.grad(cal(x).sum(), x)
    assert torch.allclose(g, torch.full((3, 1), 1.0))
    cal.train()
    assert cal.training and not cal.d.training


def test_latent_energy_rejects_or_squeezes_logits_of_shape_n_by_1():
    # 0.5 |z|^2 of shape (N,) minus logits of shape (N, 1) broadcasts to (N, N), silently.
    class KeepDim(QuadLogit):
        def forward(self, x):
            return super().forward(x)[:, None]

    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    expected = ebmlib.latent_energy(z, Identity(2), QuadLogit([1.0, -0.5]))
    try:
        e = ebmlib.latent_energy(z, Identity(2), KeepDim([1.0, -0.5]))
    except ValueError as err:
        assert "(N,)" in str(err) or "shape" in str(err), str(err)
    else:
        assert e.shape == (6,), f"latent_energy returned shape {tuple(e.shape)} for 6 latents"
        assert torch.allclose(e, expected)


# ---- the residual calibration: d + a Fourier-feature correction --------------------------------------

NARROW = gaussian(0.0, 0.3)  # real N(0, 0.3^2) against fake N(0, 1): log ratio = log(1/0.3) - x^2 (1/0.18 - 1/2)


def exact_narrow_ratio(x):
    return torch.log(torch.tensor(1 / 0.3)) - x[:, 0] ** 2 * (1 / 0.18 - 0.5)


def test_residual_logit_starts_as_d_and_keeps_d_frozen():
    d = AffineLogit(2.0, -1.0)
    res = ResidualLogit(d, dim=1, seed=0)
    x = torch.linspace(-3, 3, 13)[:, None]
    with torch.no_grad():
        assert torch.equal(res(x), d(x))  # the correction's last layer starts at zero
    assert not any(p.requires_grad for p in res.d.parameters())
    assert all(p.requires_grad for p in res.r.parameters())
    res.train()
    assert res.training and not res.d.training
    with pytest.raises(ValueError, match="x"):
        res(torch.zeros(4, 2))


def test_calibrate_residual_learns_a_bowl_that_an_affine_head_cannot():
    # d = 0 everywhere: a head a*d+b can only fit a constant; the residual must carve the quadratic bowl
    d = AffineLogit(0.0, 0.0)
    state, flags = snapshot(d)
    head = ebmlib.calibrate(d, Identity(1), NARROW, method="head", steps=300, batch_size=512, seed=0)
    res = ebmlib.calibrate(d, Identity(1), NARROW, method="residual", steps=600, batch_size=512, seed=0)
    assert isinstance(res, ResidualLogit) and not res.training
    loss_head, loss_res, loss_opt = (logistic_loss(m, NARROW) for m in (head, res, exact_narrow_ratio))
    assert loss_res < loss_head - 0.2, (loss_head, loss_res)
    assert loss_res == pytest.approx(loss_opt, abs=0.03), (loss_res, loss_opt)
    x = torch.linspace(-1, 1, 21)[:, None]  # where both densities have mass
    with torch.no_grad():
        err = (res(x) - exact_narrow_ratio(x)).abs()
    assert err.mean() < 0.3, err
    new_state, new_flags = snapshot(d)
    assert new_flags == flags and all(torch.equal(v, new_state[k]) for k, v in state.items())
    # DDLS needs the gradient with respect to x through both terms
    x = torch.full((2, 1), 0.5, requires_grad=True)
    (g,) = torch.autograd.grad(res(x).sum(), x)
    assert torch.isfinite(g).all() and (g < 0).all()  # the bowl falls away from 0


# ---- calibration on images -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["head", "finetune"])
def test_calibration_on_images_lowers_the_logistic_loss_of_a_frozen_generator(tmp_path, method):
    stored, _ = cifar10.tiny(tmp_path / "tiny", n_train=200, n_test=20)
    G, D = small_sngan_pair()
    # at SN-GAN's initialisation D is ~0 everywhere: the head needs a logit that varies to rescale
    D = Scaled(D, 100.0) if method == "head" else D
    real = images.real_sampler(stored)
    gen = torch.Generator().manual_seed(5)

    def logistic_loss(d):
        with torch.no_grad():
            x_real, x_fake = real(256, gen), G(torch.randn(256, 8, generator=gen))
            return (F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()).item()

    before = logistic_loss(D)
    lr = 5e-2 if method == "head" else 1e-3
    d = ebmlib.calibrate(D, G, real, method=method, steps=40, batch_size=32, lr=lr, progress=False)
    after = logistic_loss(d)
    assert after < before - 0.05, (before, after)
    assert after < 2 * torch.log(torch.tensor(2.0)).item() - 0.05  # better than the constant logit 0


# ---- saved calibrations ------------------------------------------------------------------------------------

def test_calibration_model_builds_each_method_around_a_copy():
    d = MLPDiscriminator(in_dim=2, hidden=8, depth=1)
    assert set(CALIBRATION_METHODS) == {"head", "finetune", "residual"}
    assert isinstance(calibration_model("head", d), CalibratedLogit)
    assert isinstance(calibration_model("residual", d, dim=2), ResidualLogit)
    tuned = calibration_model("finetune", d)
    assert type(tuned) is MLPDiscriminator and tuned is not d
    with pytest.raises(ValueError, match="dim"):
        calibration_model("residual", d)
    with pytest.raises(ValueError, match="head"):
        calibration_model("platt", d)


def calibrated(method, hidden=8):
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=hidden, depth=1)
    d = ebmlib.calibrate(D, Identity(1), REAL, method=method, steps=20, batch_size=64, seed=3,
                         residual={"features": 8, "hidden": 8} if method == "residual" else None, progress=False)
    return D, d


@pytest.mark.parametrize("method", ["head", "finetune", "residual"])
def test_a_saved_calibration_loads_back_with_the_same_outputs(tmp_path, method):
    D, d = calibrated(method)
    assert d.calibration["method"] == method and d.calibration["seed"] == 3
    path = save_calibration(d, tmp_path / "calibrated.pt")
    torch.manual_seed(1)  # a D with other weights: the file carries every weight of the calibrated logit
    loaded = load_calibration(path, MLPDiscriminator(in_dim=1, hidden=8, depth=1))
    assert type(loaded) is type(d) and not loaded.training and loaded.calibration == d.calibration
    x = torch.linspace(-3, 3, 25)[:, None]
    with torch.no_grad():
        assert torch.equal(loaded(x), d(x))
        assert not torch.equal(d(x), D(x)), "the test needs a calibration that changed the logit"


def test_a_calibration_of_another_width_is_an_error_naming_the_file(tmp_path):
    _, d = calibrated("head")
    path = save_calibration(d, tmp_path / "calibrated.pt")
    with pytest.raises(CheckpointError) as info:
        load_calibration(path, MLPDiscriminator(in_dim=1, hidden=16, depth=1))
    assert str(path) in str(info.value) and "shapes differ" in str(info.value)


def test_a_file_that_is_not_a_calibration_is_an_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "ebmlib-checkpoint/1", "state": {}}, path)
    with pytest.raises(CheckpointError, match="ebmlib-calibration/1") as info:
        load_calibration(path, MLPDiscriminator(in_dim=1, hidden=8, depth=1))
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="ebmlib.calibrate"):
        save_calibration(MLPDiscriminator(in_dim=1, hidden=8, depth=1), tmp_path / "plain.pt")


def test_log_ratio_is_the_difference_of_the_log_densities_and_drives_the_samplers():
    from ebmlib import toy
    from ebmlib.energy import LogRatio

    p, q = toy.Mixture1D([0.0], [0.5]), toy.Mixture1D([0.0], [1.0])
    d = LogRatio(p.log_prob, q.log_prob)
    x = torch.linspace(-2, 2, 9).unsqueeze(1)
    assert torch.allclose(d(x), p.log_prob(x) - q.log_prob(x))
    # rejection with the exact ratio turns N(0, 1) proposals into N(0, 0.25) samples
    from helpers import Identity
    out = ebmlib.sample("drs", Identity(1), d, 4000, seed=0)
    assert out.x.var().item() == pytest.approx(0.25, abs=0.03)


# ---- precision under bf16 autocast ---------------------------------------------------------------

def test_the_calibration_head_maps_a_bf16_logit_in_float32():
    G, D = small_sngan_pair()
    head = CalibratedLogit(Scaled(D, 1e3))  # logits of a few units, where bf16 rounds by about 0.01
    with torch.no_grad():
        head.scale.fill_(1.37), head.bias.fill_(0.21)
        x = G(torch.randn(64, 8, generator=torch.Generator().manual_seed(0)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            raw, out = head.d(x), head(x)
    assert raw.dtype == torch.bfloat16, "the test needs a logit that autocast computes in bf16"
    assert out.dtype == torch.float32
    assert torch.equal(out, head.scale * raw.float() + head.bias)
    in_bf16 = head.scale.bfloat16() * raw + head.bias.bfloat16()  # what a head that stays in bf16 gives
    assert (out - in_bf16.float()).abs().max() > 1e-3


def test_the_latent_energy_is_float32_under_bf16_autocast():
    G, D = small_sngan_pair()
    head = calibration_model("head", Scaled(D, 1e3))
    with torch.no_grad():
        head.scale.fill_(1.37)
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        e = ebmlib.latent_energy(z, G, head)
        logit = head(G(z))
    (grad,) = torch.autograd.grad(e.sum(), z)
    assert e.dtype == torch.float32 and grad.dtype == torch.float32 and logit.dtype == torch.float32
    torch.testing.assert_close(e, 0.5 * (z ** 2).sum(1) - logit, rtol=0, atol=0)


def test_the_residual_correction_is_float32_under_bf16_autocast():
    d = ResidualLogit(AffineLogit(2.0, 0.5), dim=1, features=8, scale=3.0)
    x = torch.linspace(-2, 2, 32)[:, None]
    with torch.no_grad():
        d.r[-1].weight.normal_(generator=torch.Generator().manual_seed(2))
        exact = d(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_amp = d(x)
    assert under_amp.dtype == torch.float32
    # only the small MLP runs in bf16: the Fourier phase (up to 2π * 3 * 2 * |B| radians) stays float32
    torch.testing.assert_close(under_amp, exact, rtol=0, atol=0.1)
