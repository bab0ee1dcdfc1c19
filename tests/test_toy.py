"""The toy world: the 25-Gaussian grid, mode statistics, the ring, the swiss roll and 1-D mixtures."""
import math

import pytest
import torch

from ebmlib import toy

STD = toy.GRID_STD


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_grid_has_25_centres_on_the_integer_grid():
    c = toy.grid_centers()
    assert c.shape == (25, 2)
    assert {tuple(p) for p in c.tolist()} == {(float(i), float(j)) for i in range(-2, 3) for j in range(-2, 3)}
    assert torch.allclose(toy.grid_centers(spacing=2.0), 2 * c)


def test_grid_samples_sit_on_their_modes():
    x = toy.sample_grid25(5000, gen(0))
    assert x.shape == (5000, 2)
    dist, nearest = torch.cdist(x, toy.grid_centers()).min(dim=1)
    # P(|x - c| > 4 std) = exp(-8) = 3.4e-4 for a 2-D Gaussian: about 2 of 5000
    assert (dist < 4 * STD).float().mean() > 0.997
    # equal weights: 200 per mode, binomial standard deviation 14
    counts = torch.bincount(nearest, minlength=25)
    assert counts.min() > 140 and counts.max() < 260
    # isotropic std 0.05 around the centres (standard error 0.05 / sqrt(2 * 5000) = 0.0005)
    assert (x - toy.grid_centers()[nearest]).std(dim=0).sub(STD).abs().max() < 0.003


def test_sampling_is_seeded():
    assert torch.equal(toy.sample_grid25(10, gen(1)), toy.sample_grid25(10, gen(1)))
    assert not torch.equal(toy.sample_grid25(10, gen(1)), toy.sample_grid25(10, gen(2)))
    for name in toy.DATASETS:
        f = toy.dataset(name)
        assert torch.equal(f(7, gen(3)), f(7, gen(3)))


def test_mode_stats_on_exact_data():
    s = toy.mode_stats(toy.sample_grid25(5000, gen(4)))
    assert s["modes"] == 25
    assert s["hq_fraction"] > 0.997
    # truncation at 4 std barely changes the std: 0.05 within sampling error 0.0005
    assert s["hq_std"] == pytest.approx(STD, abs=0.003)
    assert len(s["counts"]) == 25 and sum(s["counts"]) == round(s["hq_fraction"] * 5000)


def test_mode_stats_on_data_from_ten_modes():
    centers = toy.grid_centers()
    keep = torch.tensor([0, 3, 6, 7, 11, 12, 15, 19, 22, 24])
    idx = keep[torch.randint(10, (3000,), generator=gen(5))]
    x = centers[idx] + STD * torch.randn(3000, 2, generator=gen(6))
    s = toy.mode_stats(x)
    assert s["modes"] == 10
    assert [i for i, c in enumerate(s["counts"]) if c > 0] == keep.tolist()
    assert s["hq_fraction"] > 0.99
    assert s["hq_std"] == pytest.approx(STD, abs=0.004)


def test_mode_stats_counts_quality_and_min_count():
    centers = toy.grid_centers()
    # 19 exact hits on mode 0 (below min_count 20), 20 on mode 1, 11 far from every centre
    x = torch.cat([centers[0].repeat(19, 1), centers[1].repeat(20, 1), torch.full((11, 2), 0.5)])
    s = toy.mode_stats(x)
    assert s["modes"] == 1
    assert s["counts"][0] == 19 and s["counts"][1] == 20
    assert s["hq_fraction"] == pytest.approx(39 / 50)
    assert s["hq_std"] == pytest.approx(0.0, abs=1e-7)
    # a point 0.19 from a centre is high quality, 0.21 is not (4 std = 0.2)
    s = toy.mode_stats(torch.tensor([[0.19, 0.0], [1.0, 0.21]]), min_count=1)
    assert s["hq_fraction"] == 0.5 and s["modes"] == 1
    far = toy.mode_stats(torch.full((30, 2), 10.0))
    assert far["modes"] == 0 and far["hq_fraction"] == 0 and math.isnan(far["hq_std"])


def test_mode_stats_with_other_centres():
    ring = toy.ring_centers(8, 2.0)
    s = toy.mode_stats(toy.sample_ring(2000, gen(7)), centers=ring, std=0.02)
    assert s["modes"] == 8 and s["hq_fraction"] > 0.99


@pytest.mark.parametrize("x", [torch.zeros(5, 3), torch.zeros(5), torch.zeros(0, 2)])
def test_mode_stats_rejects_bad_shapes(x):
    with pytest.raises(ValueError, match="shape"):
        toy.mode_stats(x)


def test_ring_and_swiss_roll():
    r = toy.sample_ring(2000, gen(8))
    assert r.shape == (2000, 2)
    assert (r.norm(dim=1) - 2.0).abs().max() < 0.02 * 5
    c = toy.ring_centers(8, 2.0)
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    s = toy.sample_swiss_roll(2000, gen(9))
    assert s.shape == (2000, 2) and s.abs().max() < 2.5
    # the roll's radius grows with its angle: from 1.5 pi / 7.5 = 0.63 to 4.5 pi / 7.5 = 1.88
    radius = s.norm(dim=1)
    assert 0.4 < radius.min() < 0.8 and 1.7 < radius.max() < 2.2


def test_dataset_lookup():
    assert toy.dataset("grid25") is toy.sample_grid25
    with pytest.raises(ValueError, match="grid25"):
        toy.dataset("moons")


# ---- 1-D mixtures -------------------------------------------------------------------------------

MIX = toy.Mixture1D([-2.0, 1.0, 3.0], [0.5, 1.0, 0.3], [1.0, 2.0, 1.0])


def test_mixture_density_integrates_to_one():
    x = torch.linspace(-12, 12, 24_001, dtype=torch.float64)
    p = MIX.log_prob(x).double().exp()
    assert torch.trapezoid(p, x).item() == pytest.approx(1.0, abs=1e-4)
    # the first moment by quadrature is the weighted mean of the means
    assert torch.trapezoid(p * x, x).item() == pytest.approx(0.25 * -2 + 0.5 * 1 + 0.25 * 3, abs=1e-3)


def test_mixture_log_prob_by_hand():
    one = toy.Mixture1D([1.0], [2.0])
    x = torch.tensor([-1.0, 1.0, 4.0])
    expected = -0.5 * ((x - 1) / 2) ** 2 - math.log(2) - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(one.log_prob(x), expected, atol=1e-6)
    # a trailing size-1 dim is squeezed: (N, 1) -> (N,)
    assert torch.allclose(MIX.log_prob(x[:, None]), MIX.log_prob(x))
    assert torch.allclose(MIX.weights, torch.tensor([0.25, 0.5, 0.25]))


def test_mixture_cdf_by_hand():
    m = toy.Mixture1D([0.0, 10.0], [1.0, 1.0], weights=[1, 3])
    assert m.cdf(torch.tensor([0.0, 10.0, 5.0])).tolist() == pytest.approx([0.125, 0.25 + 0.375, 0.25], abs=1e-6)
    assert m.cdf(torch.zeros(3, 1)).shape == (3,)


def test_mixture_samples_match_its_moments():
    n = 20_000
    x = MIX.sample(n, gen(10))
    assert x.shape == (n, 1)
    w, m, s = MIX.weights.double(), MIX.means.double(), MIX.stds.double()
    mean = (w * m).sum().item()
    var = (w * (s ** 2 + m ** 2)).sum().item() - mean ** 2
    # var = 3.26: standard error of the mean 0.013, of the variance about 0.03
    assert x.double().mean().item() == pytest.approx(mean, abs=0.06)
    assert x.double().var().item() == pytest.approx(var, abs=0.15)
    assert torch.equal(MIX.sample(5, gen(11)), MIX.sample(5, gen(11)))


@pytest.mark.parametrize("args", [([0.0, 1.0], [1.0]), ([0.0], [0.0]), ([0.0], [-1.0]), ([0.0, 1.0], [1.0, 1.0], [1.0, -1.0])])
def test_mixture_rejects_bad_parameters(args):
    with pytest.raises(ValueError):
        toy.Mixture1D(*args)


def test_mode_weights_count_every_sample_by_its_nearest_centre():
    centers = toy.grid_centers()
    x = torch.cat([centers[3:4] + 0.3, centers[7].expand(3, 2)])  # 0.3 off centre still counts: nearest wins
    w = toy.mode_weights(x.reshape(-1, 2))
    assert w.dtype == torch.float64 and w.sum().item() == pytest.approx(1.0)
    assert w[3].item() == pytest.approx(0.25) and w[7].item() == pytest.approx(0.75)
    weighted = toy.mode_weights(x.reshape(-1, 2), weights=torch.tensor([3.0, 1.0, 1.0, 1.0]))
    assert weighted[3].item() == pytest.approx(0.5) and weighted[7].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="non-negative"):
        toy.mode_weights(x.reshape(-1, 2), weights=torch.tensor([1.0, -1.0, 1.0, 1.0]))


def test_total_variation_and_its_sampling_floor():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.5, 0.5])
    assert toy.total_variation(p, q) == pytest.approx(0.5)
    assert toy.total_variation(p, p) == 0.0
    with pytest.raises(ValueError, match="different lengths"):
        toy.total_variation(p, torch.ones(2) / 2)
    # 25 equal modes, n draws: E|count/n - 1/25| ≈ sqrt(2/π) sqrt((1/25)(24/25)/n) per mode, 25 modes, halved
    uniform = torch.full((25,), 1 / 25)
    expected = 0.5 * 25 * math.sqrt(2 / math.pi) * math.sqrt(0.04 * 0.96 / 10_000)
    assert toy.multinomial_tv(uniform, 10_000, draws=50) == pytest.approx(expected, rel=0.1)


def test_grid_log_prob_is_the_mixture_density():
    centers = toy.grid_centers()
    # at a centre the own component dominates: log(1/25) - log(2π σ²)
    expected = -math.log(25) - math.log(2 * math.pi * toy.GRID_STD ** 2)
    assert toy.grid25_log_prob(centers).tolist() == pytest.approx([expected] * 25, abs=1e-4)
    # it integrates to one (a Riemann sum over a fine grid)
    axis = torch.linspace(-3, 3, 1201)
    xy = torch.cartesian_prod(axis, axis)
    assert toy.grid25_log_prob(xy).exp().sum().item() * (6 / 1200) ** 2 == pytest.approx(1.0, abs=1e-3)


def test_swiss_roll_stats_on_the_data_and_off_it():
    data = toy.sample_swiss_roll(20_000, gen(3))
    s = toy.swiss_roll_stats(data)
    # 2-D noise of std 0.05: the distance to the spiral is about |N(0, 0.05)|, mean 0.05 * sqrt(2 / pi) = 0.040
    assert s["hq_fraction"] > 0.999 and 0.035 < s["distance"] < 0.045
    assert s["arc_weights"].sum().item() == pytest.approx(1.0) and s["data_tv"] < 0.02
    # points half-way between two turns of the spiral (0.84 apart) are all of low quality
    t = torch.linspace(2 * math.pi, 3.5 * math.pi, 500)
    between = torch.stack([t * t.cos(), t * t.sin()], 1) / 7.5 * (1 + math.pi / t)[:, None]
    assert toy.swiss_roll_stats(between)["hq_fraction"] == 0.0
    # only the outer half of the roll: the arc weights move to it, and importance weights can move them back
    outer = data[data.norm(dim=1) > 1.3]
    assert toy.swiss_roll_stats(outer)["data_tv"] > 0.3
    inner_mass = toy.swiss_roll_stats(data, weights=(data.norm(dim=1) <= 1.3).double())["arc_weights"]
    assert inner_mass[-3:].sum() < 0.01 and inner_mass[:3].sum() > 0.2
    with pytest.raises(ValueError, match=r"shape \(N>0, 2\)"):
        toy.swiss_roll_stats(torch.zeros(5, 3))
