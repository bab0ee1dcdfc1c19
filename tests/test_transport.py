"""Discriminator Optimal Transport (``ebmlib.transport`` and the sampler ``dot``).

With G(z) = z and the quadratic logit d(x) = -(a/2)||x - c||^2, the transport problem
argmin_x ||x - y0|| - d(x) / k has its answer in closed form: on the segment from y0 to c, at the point
at distance k/a from c when y0 lies further than k/a from c (there the pull |∇d| / k = a ||x - c|| / k
balances the unit slope of the norm), and at y0 itself when y0 lies closer (the norm's kink holds it).
"""
import math

import pytest
import torch
from torch import nn

import ebmlib
from ebmlib.transport import TransportDivergence, discriminator_transport, estimate_k_eff

from helpers import Identity


class Bowl(nn.Module):
    """d(x) = -(a/2) ||x - c||^2, shape (N,)."""

    def __init__(self, a, c):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))
        self.c = nn.Parameter(torch.as_tensor(c, dtype=torch.float32))

    def forward(self, x):
        return -0.5 * self.a * ((x - self.c) ** 2).sum(dim=1)


class LinearLogit(nn.Module):
    """d(x) = w . x: Lipschitz with constant ||w|| exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float32))

    def forward(self, x):
        return x @ self.w


class Logit(nn.Module):
    """Any function of x as a module, so that it passes where a discriminator does."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


class TinyConvG(nn.Module):
    latent_dim = 4

    def __init__(self):
        super().__init__()
        self.fc, self.conv = nn.Linear(4, 48), nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, z):
        return torch.tanh(self.conv(self.fc(z).view(-1, 3, 4, 4)))


class TinyConvD(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(64, 1)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1)).squeeze(1)


A, C, K = 2.0, torch.tensor([1.0, 0.5]), 1.0  # the pull balances the norm at distance K / A = 0.5 from C


def bowl_starts():
    """32 starts at distance 0.25 from C (inside K/A: they stay) and 32 at distance 1.5 (they move to 0.5)."""
    u = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    u = u / u.norm(dim=1, keepdim=True)
    radius = torch.cat([torch.full((32,), 0.25), torch.full((32,), 1.5)])[:, None]
    return C + radius * u, radius


@pytest.mark.parametrize("space", ["latent", "target"])
def test_dot_reaches_the_closed_form_transport_of_a_quadratic_logit(space):
    z0, radius = bowl_starts()
    r = K / A
    expected = torch.where(radius > r, C + r * (z0 - C) / radius, z0)
    out = ebmlib.sample("dot", Identity(2), Bowl(A, C), 64, seed=0, space=space, k_eff=K, steps=2000, lr=1e-3,
                        z0=z0)
    error = (out.x - expected).norm(dim=1)
    # Adam's steps keep a size of about lr near the optimum: measured 7e-4 (far) and 1.4e-3 (held at the kink)
    assert error[32:].max() < 2e-3, "the far starts must stop at distance k/a from c"
    assert error[:32].max() < 2e-3, "the near starts must stay where they are"
    assert out.info["k_eff"] == K and out.info["space"] == space
    # the exact minimum of the mean objective: (r0 - k/a) + (a / 2k)(k/a)^2 far, (a / 2k) r0^2 near
    optimum = (0.5 * (1.5 - r + A / (2 * K) * r ** 2) + 0.5 * A / (2 * K) * 0.25 ** 2)
    trace = out.info["objective_trace"]
    assert len(trace) == 2001
    assert trace[0] == pytest.approx(0.5 * A / (2 * K) * (1.5 ** 2 + 0.25 ** 2))  # the start: no distance yet
    assert trace[-1] == pytest.approx(optimum, abs=2e-3)
    assert trace[1000] < trace[100] < trace[0]
    assert out.info["distance"] == pytest.approx(0.5 * (1.5 - r), abs=2e-3)
    if space == "latent":
        assert torch.equal(out.x, out.z)
    else:
        assert torch.equal(out.z, z0)  # target space: z holds the starts' latents


def test_the_transport_would_stay_put_without_the_pull_of_d():
    # the mutant: d's gradient dropped (a constant logit). Then the objective is the norm alone and no start moves,
    # so the far starts of the test above would miss their targets by 1.0
    z0, _ = bowl_starts()
    x, _, trace, distance = discriminator_transport(Identity(2), Logit(lambda x: 0 * x[:, 0]), z0, k_eff=K, steps=200,
                                                    lr=1e-3)
    assert distance < 1e-3 and trace[-1] < 1e-3


@pytest.mark.parametrize("space", ["latent", "target"])
def test_k_eff_of_a_linear_logit_approaches_the_norm_of_w_from_below(space):
    # G = identity: both spaces see the same slope |w.(a - b)| / ||a - b|| = ||w|| |cos θ| <= ||w||
    w = torch.tensor([3.0, -4.0])  # ||w|| = 5
    z = torch.randn(2 * 1000, 2, generator=torch.Generator().manual_seed(0))
    k = estimate_k_eff(Identity(2), LinearLogit(w), z, space=space)
    assert 0.98 * 5.0 < k <= 5.0 * (1 + 1e-6)
    few = estimate_k_eff(Identity(2), LinearLogit(w), z[:2], space=space)  # one pair
    assert few <= 5.0 * (1 + 1e-6)


def test_k_eff_in_the_latent_space_includes_the_generator_scale():
    # G(z) = 3z: d(G(z)) = 3 w.z, so the latent slope is 3 ||w|| while the target slope stays ||w||
    class Triple(Identity):
        def forward(self, z):
            return 3 * super().forward(z)

    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    d = LinearLogit([3.0, -4.0])
    assert estimate_k_eff(Triple(2), d, z, space="latent") == pytest.approx(15.0, rel=0.02)
    assert estimate_k_eff(Triple(2), d, z, space="target") == pytest.approx(5.0, rel=0.02)


def test_the_estimated_k_eff_is_used_and_reported():
    out = ebmlib.sample("dot", Identity(2), LinearLogit([3.0, -4.0]), 50, seed=0, steps=1, pairs=500)
    assert 0.95 * 5.0 < out.info["k_eff"] <= 5.0 * (1 + 1e-6)
    # the start moves: the smoothed norm has a zero gradient there, so the first gradient is -w / k_eff, and
    # Adam's first step is lr times its sign in every coordinate, from the generator sampler's own latents
    start = ebmlib.sample("generator", Identity(2), None, 50, seed=0)
    assert torch.allclose(out.x - start.x, torch.tensor([0.01, -0.01]).expand(50, 2), atol=1e-6)


# ---- images, determinism, gradients, errors -------------------------------------------------------

@pytest.mark.parametrize("space", ["latent", "target"])
def test_dot_on_images_moves_whole_images_to_higher_logits(space):
    torch.manual_seed(0)
    G, d = TinyConvG(), TinyConvD()
    out = ebmlib.sample("dot", G, d, 12, seed=3, space=space, steps=20)
    start = ebmlib.sample("generator", G, d, 12, seed=3)
    assert out.x.shape == (12, 3, 4, 4) and out.z.shape == (12, 4)
    with torch.no_grad():
        assert d(out.x).mean() > d(start.x).mean()
    assert out.info["distance"] > 0 and out.info["k_eff"] > 0
    assert out.info["objective_trace"][-1] < out.info["objective_trace"][0]


def test_same_seed_same_samples_and_no_gradient_reaches_g_or_d():
    torch.manual_seed(0)
    G, d = TinyConvG(), TinyConvD()
    a = ebmlib.sample("dot", G, d, 10, seed=1, steps=5)
    with torch.inference_mode():
        b = ebmlib.sample("dot", G, d, 10, seed=1, steps=5)
    with torch.no_grad():
        c = ebmlib.sample("dot", G, d, 10, seed=2, steps=5)
    target = ebmlib.sample("dot", G, d, 10, seed=1, steps=5, space="target")
    with torch.inference_mode():
        target_again = ebmlib.sample("dot", G, d, 10, seed=1, steps=5, space="target")
    assert torch.equal(a.x, b.x) and torch.equal(a.z, b.z)
    assert torch.equal(target.x, target_again.x)
    assert not torch.equal(a.x, c.x)
    for name, p in list(G.named_parameters()) + list(d.named_parameters()):
        assert p.grad is None, f"{name} has a .grad after sampling"
        assert p.requires_grad, f"{name} was left frozen"


def test_chunks_give_the_samples_of_one_batch():
    torch.manual_seed(0)
    G, d = TinyConvG(), TinyConvD()
    whole = ebmlib.sample("dot", G, d, 10, seed=1, steps=5, k_eff=2.0)
    chunked = ebmlib.sample("dot", G, d, 10, seed=1, steps=5, k_eff=2.0, batch_size=3)
    assert torch.allclose(whole.x, chunked.x, atol=1e-6)
    assert whole.info["objective_trace"] == pytest.approx(chunked.info["objective_trace"], abs=1e-6)


@pytest.mark.parametrize("options, match", [
    (dict(space="pixel"), "space"), (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(lr=0), "lr"),
    (dict(lr=-0.1), "lr"), (dict(k_eff=0), "k_eff"), (dict(k_eff=-1.0), "k_eff"), (dict(pairs=0), "pairs"),
    (dict(z0=torch.zeros(5, 3)), "z0"), (dict(z0=torch.zeros(4, 2)), "z0")])
def test_bad_options_are_value_errors(options, match):
    with pytest.raises(ValueError, match=match):
        ebmlib.sample("dot", Identity(2), Bowl(A, C), 5, **options)


def test_a_logit_of_the_wrong_shape_and_a_flat_logit_are_value_errors():
    with pytest.raises(ValueError, match="one logit per sample"):
        ebmlib.sample("dot", Identity(2), Logit(lambda x: x[:, :1]), 5, k_eff=1.0)
    with pytest.raises(ValueError, match="one logit per sample"):
        ebmlib.sample("dot", Identity(2), Logit(lambda x: x[:, :1]), 5)  # while estimating k_eff
    with pytest.raises(ValueError, match="pass k_eff"):
        ebmlib.sample("dot", Identity(2), LinearLogit([0.0, 0.0]), 5)


def test_a_non_finite_objective_names_the_step_and_suggests_a_smaller_lr():
    # d = -log(x_0) pulls x_0 towards 0 and is undefined past it: Adam's steps of about lr cross 0 within a few
    z0 = torch.full((4, 1), 0.035)
    with pytest.raises(TransportDivergence, match=r"at step \d+ with lr 0.01.*smaller lr") as info:
        ebmlib.sample("dot", Identity(1), Logit(lambda x: -torch.log(x[:, 0])), 4, k_eff=1.0, z0=z0)
    assert info.value.step > 1
    assert torch.isfinite(info.value.last_finite).all() and (info.value.last_finite > 0).all()
    assert isinstance(info.value, ValueError)
    assert math.isfinite(info.value.lr)
