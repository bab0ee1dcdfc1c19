"""ULA and MALA (``ebmlib.mcmc.langevin``) on energies whose answers are known in closed form.

Tolerances: with N independent chains, a sample mean has standard error sigma / sqrt(N) and a sample
covariance entry (i, j) has standard error sqrt((S_ii S_jj + S_ij^2) / N). Each tolerance below is
about 4 standard errors plus the deterministic bias the test allows for (seeds are fixed, so a run
either passes every time or fails every time).
"""
import math

import pytest
import torch

import ebmlib
from ebmlib import mcmc
from ebmlib.mcmc import LangevinDivergence, LangevinResult, langevin

MU = torch.tensor([1.0, -0.5])
SIGMA = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
A = torch.linalg.inv(SIGMA)  # precision; eigenvalues about 0.66 and 3.42
N_CHAINS = 4000


def gaussian_energy(x):
    """E(x) = 1/2 (x - mu)^T A (x - mu), shape (N,)."""
    r = x - MU
    return 0.5 * ((r @ A) * r).sum(dim=1)


def gaussian_grad(x):
    return (x - MU) @ A


def moments(x):
    x = x.double()
    mean = x.mean(dim=0)
    cov = torch.cov(x.T)
    return mean, cov


def ula_stationary_cov(A, eps, iters=4000):
    """C = B C B^T + eps I with B = I - eps A / 2: the stationary covariance of ULA on E = x^T A x / 2,
    by the discrete Lyapunov (fixed-point) iteration, in float64."""
    A = A.double()
    eye = torch.eye(len(A), dtype=torch.float64)
    B = eye - 0.5 * eps * A
    assert torch.linalg.eigvals(B).abs().max() < 1, "ULA is unstable at this step"
    C = torch.zeros_like(A)
    for _ in range(iters):
        C = B @ C @ B.T + eps * eye
    assert torch.allclose(C, B @ C @ B.T + eps * eye, atol=1e-12)
    return C


def test_the_package_exports_the_sampler_and_its_error():
    assert ebmlib.langevin is mcmc.langevin and ebmlib.LangevinDivergence is mcmc.LangevinDivergence
    res = langevin(gaussian_energy, torch.zeros(3, 2), steps=2, step_size=0.1)
    assert isinstance(res, LangevinResult) and res.snapshots == [] and len(res.energy_trace) == 2


def test_lyapunov_helper_against_closed_form():
    # for a diagonal A the ULA variance is 1 / (a (1 - eps a / 4)) per coordinate
    a, eps = torch.tensor([0.5, 2.0]), 0.6
    C = ula_stationary_cov(torch.diag(a), eps)
    expected = 1 / (a.double() * (1 - eps * a.double() / 4))
    assert torch.allclose(C.diag(), expected, atol=1e-10)
    assert abs(C[0, 1]) < 1e-12


def test_ula_recovers_gaussian_mean_and_covariance():
    # eps = 0.02: the ULA bias in the covariance is about eps/4 = 0.005 (see the Lyapunov solution);
    # slowest contraction per step 1 - eps * 0.66 / 2, so 800 steps leave 0.5% of the initial offset.
    eps = 0.02
    gen = torch.Generator().manual_seed(0)
    res = langevin(gaussian_energy, torch.zeros(N_CHAINS, 2), steps=800, step_size=eps, generator=gen)
    assert res.z.shape == (N_CHAINS, 2) and res.accept_rate is None
    mean, cov = moments(res.z)
    # standard errors: mean <= sqrt(1.0 / 4000) = 0.016; covariance entries <= sqrt(2 / 4000) = 0.022
    assert torch.allclose(mean, MU.double(), atol=0.07), mean
    assert torch.allclose(cov, SIGMA.double(), atol=0.1), cov
    assert len(res.energy_trace) == 800
    # the mean energy of a 2-D Gaussian at stationarity is d/2 = 1
    assert abs(sum(res.energy_trace[-100:]) / 100 - 1.0) < 0.1


def test_ula_large_step_bias_matches_closed_form_and_mala_removes_it():
    eps = 0.8
    C = ula_stationary_cov(A, eps)
    bias = (C - SIGMA.double()).abs().max().item()
    assert bias > 0.4  # the bias the test must detect: 0.47 on the diagonal

    gen = torch.Generator().manual_seed(1)
    ula = langevin(gaussian_energy, torch.zeros(N_CHAINS, 2), steps=200, step_size=eps, generator=gen)
    mean, cov = moments(ula.z)
    # ULA on a Gaussian keeps the mean exact; its covariance is C (entries up to 1.4: standard error
    # up to sqrt(2 * 1.4^2 / 4000) = 0.031)
    assert torch.allclose(mean, MU.double(), atol=0.08), mean
    assert torch.allclose(cov, C, atol=0.13), (cov, C)
    assert (cov - SIGMA.double()).abs().max() > 0.25, "ULA should be visibly biased at this step"

    gen = torch.Generator().manual_seed(2)
    mala = langevin(gaussian_energy, torch.zeros(N_CHAINS, 2), steps=400, step_size=eps, mala=True,
                    generator=gen)
    mean, cov = moments(mala.z)
    assert 0.05 < mala.accept_rate < 0.95
    assert torch.allclose(mean, MU.double(), atol=0.08), mean
    assert torch.allclose(cov, SIGMA.double(), atol=0.1), (cov, SIGMA)


def _hand_log_alpha(x, y, eps):
    """MH log-acceptance of the Langevin proposal x -> y for the Gaussian target, from scratch with
    torch.distributions (normalised densities), independent of ebmlib's formula."""
    target = torch.distributions.MultivariateNormal(MU.double(), covariance_matrix=SIGMA.double())
    x, y = x.double(), y.double()
    A64 = A.double()

    def q(to, frm):  # density of the proposal to | frm
        mean = frm - 0.5 * eps * (frm - MU.double()) @ A64
        return torch.distributions.Normal(mean, math.sqrt(eps)).log_prob(to).sum(dim=1)

    return target.log_prob(y) - target.log_prob(x) + q(x, y) - q(y, x)


def test_mala_one_step_matches_hand_computed_metropolis_hastings():
    # Replays ebmlib's random draws (the proposal noise, then one uniform per chain) from a generator
    # with the same seed, and checks every chain's accept/reject decision against an MH test computed
    # with torch.distributions.
    n, eps = 2000, 0.5
    z0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(3)) * 1.5
    res = langevin(gaussian_energy, z0, steps=1, step_size=eps, mala=True,
                   generator=torch.Generator().manual_seed(4))

    g = torch.Generator().manual_seed(4)
    noise = torch.randn(n, 2, generator=g)
    u = torch.rand(n, generator=g)
    proposal = z0 - 0.5 * eps * gaussian_grad(z0) + math.sqrt(eps) * noise
    log_alpha = _hand_log_alpha(z0, proposal, eps)
    accept = torch.log(u.double()) < log_alpha
    clear = (torch.log(u.double()) - log_alpha).abs() > 1e-4  # away from float32 rounding ties

    moved = (res.z != z0).any(dim=1)
    assert clear.float().mean() > 0.99
    assert torch.equal(moved[clear], accept[clear])
    assert torch.allclose(res.z[moved], proposal[moved], atol=1e-5)
    assert 0.2 < accept.float().mean() < 0.98  # a mix of accepts and rejects, so the test has teeth
    assert res.accept_rate == pytest.approx(moved.float().mean().item(), abs=1e-6)


def test_mala_acceptance_rate_matches_expected_acceptance():
    # Independent of ebmlib's random-draw order: at stationarity the one-step acceptance rate is
    # E[min(1, alpha)], which we estimate with our own proposals from the same states.
    # Both estimates have standard error <= 0.5 / sqrt(20000) = 0.0035.
    n, eps = 20_000, 0.8
    L = torch.linalg.cholesky(SIGMA)
    z0 = MU + torch.randn(n, 2, generator=torch.Generator().manual_seed(5)) @ L.T
    res = langevin(gaussian_energy, z0, steps=1, step_size=eps, mala=True,
                   generator=torch.Generator().manual_seed(6))
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
    proposal = z0 - 0.5 * eps * gaussian_grad(z0) + math.sqrt(eps) * noise
    expected = _hand_log_alpha(z0, proposal, eps).clamp(max=0).exp().mean().item()
    assert 0.3 < expected < 0.95
    assert res.accept_rate == pytest.approx(expected, abs=0.02)


def test_mala_acceptance_near_one_at_tiny_step_and_lower_at_large_step():
    L = torch.linalg.cholesky(SIGMA)
    z0 = MU + torch.randn(2000, 2, generator=torch.Generator().manual_seed(8)) @ L.T
    tiny = langevin(gaussian_energy, z0, steps=20, step_size=1e-4, mala=True,
                    generator=torch.Generator().manual_seed(9))
    large = langevin(gaussian_energy, z0, steps=20, step_size=1.0, mala=True,
                     generator=torch.Generator().manual_seed(9))
    assert tiny.accept_rate > 0.99
    assert large.accept_rate < 0.85
    assert large.accept_rate < tiny.accept_rate - 0.1


def test_noise_is_sqrt_step_times_noise_scale_and_decays_with_the_step():
    # E = 0: x_T - x_0 = noise_scale * sum_k sqrt(eps_k) xi_k, variance noise_scale^2 * sum_k eps_k.
    # Schedule: eps = 1, 1, .5, .5, .25, .25 (decay .5 every 2 steps): sum 3.5; had the noise decayed
    # like eps (a known pitfall) the variance would be sum eps_k^2 = 2.625.
    flat = lambda x: 0 * x.sum(dim=1)  # noqa: E731
    n = 4000
    res = langevin(flat, torch.zeros(n, 1), steps=6, step_size=1.0, decay=0.5, decay_every=2,
                   generator=torch.Generator().manual_seed(10))
    # standard error of the variance: 3.5 * sqrt(2 / 4000) = 0.078
    assert res.z.var().item() == pytest.approx(3.5, abs=0.3)
    res = langevin(flat, torch.zeros(n, 1), steps=10, step_size=0.4, noise_scale=0.5,
                   generator=torch.Generator().manual_seed(11))
    # noise_scale multiplies the standard deviation: variance 0.25 * 10 * 0.4 = 1.0 (not 0.5 * 4 = 2)
    assert res.z.var().item() == pytest.approx(1.0, abs=0.1)


def test_drift_follows_the_decayed_step_exactly():
    # E(x) = -2 x: drift +eps per step; without noise the path is deterministic: 1 + 1 + .5 + .5 + .25 + .25
    res = langevin(lambda x: -2 * x.sum(dim=1), torch.zeros(3, 1), steps=6, step_size=1.0, noise_scale=0.0,
                   decay=0.5, decay_every=2)
    assert torch.allclose(res.z, torch.full((3, 1), 3.5))
    assert res.energy_trace == pytest.approx([-2.0, -4.0, -5.0, -6.0, -6.5, -7.0])


def test_snapshots_keep_step_zero_and_every_kth_step():
    z0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(12))
    res = langevin(gaussian_energy, z0, steps=12, step_size=0.1, snapshot_every=5,
                   generator=torch.Generator().manual_seed(13))
    assert [s for s, _ in res.snapshots] == [0, 5, 10]
    assert torch.equal(res.snapshots[0][1], z0)
    assert all(z.shape == (50, 2) for _, z in res.snapshots)
    assert not torch.equal(res.snapshots[2][1], res.z)  # two more steps after the last snapshot
    # the caller's z0 is not modified in place
    assert torch.equal(z0, torch.randn(50, 2, generator=torch.Generator().manual_seed(12)))


def test_langevin_does_not_depend_on_global_rng_or_grad_mode():
    z0 = torch.zeros(100, 2)
    torch.manual_seed(0)
    a = langevin(gaussian_energy, z0, steps=10, step_size=0.1, mala=True,
                 generator=torch.Generator().manual_seed(14))
    torch.manual_seed(1)
    with torch.no_grad():
        b = langevin(gaussian_energy, z0, steps=10, step_size=0.1, mala=True,
                     generator=torch.Generator().manual_seed(14))
    assert torch.equal(a.z, b.z) and a.accept_rate == b.accept_rate
    c = langevin(gaussian_energy, z0, steps=10, step_size=0.1, mala=True,
                 generator=torch.Generator().manual_seed(15))
    assert not torch.equal(a.z, c.z)


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("step_size", [0, 0.0, -0.1, float("nan"), float("inf"), "big", None])
def test_bad_step_size_is_a_value_error(step_size):
    with pytest.raises(ValueError, match="step_size"):
        langevin(gaussian_energy, torch.zeros(4, 2), steps=3, step_size=step_size)


@pytest.mark.parametrize("steps", [0, -1, 2.5, 3.0, "3", None, True])
def test_bad_steps_is_a_value_error(steps):
    with pytest.raises(ValueError, match="steps"):
        langevin(gaussian_energy, torch.zeros(4, 2), steps=steps, step_size=0.1)


@pytest.mark.parametrize("kwargs", [dict(noise_scale=-1.0), dict(decay=0.0), dict(decay=1.5),
                                    dict(decay=0.5, decay_every=0)])
def test_bad_schedule_options_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        langevin(gaussian_energy, torch.zeros(4, 2), steps=3, step_size=0.1, **kwargs)


@pytest.mark.parametrize("z0", [torch.zeros(4), torch.zeros(2, 3, 2), [[0.0, 0.0]]])
def test_bad_z0_is_a_value_error(z0):
    with pytest.raises(ValueError, match="z0"):
        langevin(gaussian_energy, z0, steps=3, step_size=0.1)


# ---- divergence ----------------------------------------------------------------------------------

def _check_divergence(err, step, step_size, shape):
    assert isinstance(err, ValueError) and isinstance(err, LangevinDivergence)
    assert err.step == step and err.step_size == pytest.approx(step_size)
    msg = str(err)
    assert f"step {step}" in msg
    assert f"{step_size:g}" in msg
    assert "smaller" in msg
    assert isinstance(err.last_finite, torch.Tensor) and err.last_finite.shape == shape
    assert torch.isfinite(err.last_finite).all()


def test_exploding_quartic_energy_raises_langevin_divergence():
    energy = lambda x: 100.0 * (x ** 4).sum(dim=1)  # noqa: E731
    with pytest.raises(LangevinDivergence) as info:
        langevin(energy, torch.full((8, 2), 3.0), steps=50, step_size=1.0,
                 generator=torch.Generator().manual_seed(16))
    err = info.value
    _check_divergence(err, err.step, 1.0, (8, 2))
    assert 1 <= err.step <= 50
    assert energy(err.last_finite).isfinite().all()


def test_energy_infinite_past_a_radius_keeps_the_last_finite_states():
    # E = -2 x inside x < 3.5, +inf beyond; no noise: x = 1, 2, 3, then step 4 lands at 4 -> inf.
    def energy(x):
        e = -2 * x.sum(dim=1)
        return torch.where(x.sum(dim=1) < 3.5, e, torch.full_like(e, float("inf")))

    with pytest.raises(LangevinDivergence) as info:
        langevin(energy, torch.zeros(5, 1), steps=10, step_size=1.0, noise_scale=0.0)
    _check_divergence(info.value, 4, 1.0, (5, 1))
    assert torch.equal(info.value.last_finite, torch.full((5, 1), 3.0))


def test_divergence_reports_the_decayed_step_size():
    def energy(x):
        e = -2 * x.sum(dim=1)
        return torch.where(x.sum(dim=1) < 3.2, e, torch.full_like(e, float("nan")))

    # eps = 1, 1, .5, .5, ...: x = 1, 2, 2.5, 3, 3.25 -> non-finite at step 5, where eps = 0.25
    with pytest.raises(LangevinDivergence) as info:
        langevin(energy, torch.zeros(2, 1), steps=10, step_size=1.0, noise_scale=0.0, decay=0.5, decay_every=2)
    _check_divergence(info.value, 5, 0.25, (2, 1))
    assert torch.equal(info.value.last_finite, torch.full((2, 1), 3.0))


def test_non_finite_start_raises_at_step_zero():
    with pytest.raises(LangevinDivergence) as info:
        langevin(lambda x: x.sum(dim=1).log(), -torch.ones(3, 2), steps=5, step_size=0.1)
    _check_divergence(info.value, 0, 0.1, (3, 2))


def test_mala_divergence_is_also_caught():
    # MALA checks the proposal's energy before the MH test: a proposal past the radius raises at once
    def energy(x):
        e = 0.5 * (x ** 2).sum(dim=1)
        return torch.where(x.norm(dim=1) < 5.0, e, torch.full_like(e, float("inf")))

    z0 = torch.zeros(64, 2)
    with pytest.raises(ebmlib.LangevinDivergence) as info:
        langevin(energy, z0, steps=5, step_size=100.0, mala=True, generator=torch.Generator().manual_seed(17))
    _check_divergence(info.value, 1, 100.0, (64, 2))
    assert torch.equal(info.value.last_finite, z0)


# ---- checks every k steps: the same chains, the same first failing step ------------------------

class NaNFromCall:
    """An energy that is ``inner`` except on calls ``bad_calls`` (a range), where it is NaN. Call 1 is the
    start, call s + 1 is step s: a NaN on call 38 is a divergence at step 37, whatever the chains did."""

    def __init__(self, inner, bad_calls):
        self.inner, self.bad_calls, self.calls = inner, bad_calls, 0

    def __call__(self, x):
        self.calls += 1
        e = self.inner(x)
        return e * float("nan") if self.calls in self.bad_calls else e


@pytest.mark.parametrize("mala", [False, True])
@pytest.mark.parametrize("check_every", [1, 25, 50, 1000])
@pytest.mark.parametrize("bad_calls", [range(38, 39), range(38, 10_000)], ids=["nan-once", "nan-after"])
def test_a_later_check_still_names_the_first_failing_step_and_the_states_before_it(mala, check_every, bad_calls):
    z0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(20))
    run = dict(step_size=0.3, mala=mala, decay=0.5, decay_every=30)
    with pytest.raises(LangevinDivergence) as info:
        langevin(NaNFromCall(gaussian_energy, bad_calls), z0, steps=60, check_every=check_every,
                 generator=torch.Generator().manual_seed(21), **run)
    before = langevin(gaussian_energy, z0, steps=36, generator=torch.Generator().manual_seed(21), **run)
    _check_divergence(info.value, 37, 0.15, (64, 2))  # step 37 is past the decay at step 31
    assert torch.equal(info.value.last_finite, before.z)
    assert not torch.equal(before.z, z0)


def test_divergence_on_a_deterministic_path_is_found_at_its_step_with_any_check_interval():
    # E = -2 x below 36.5, NaN beyond; no noise, eps = 1: x = step, so step 37 is the first non-finite one
    def energy(x):
        e = -2 * x.sum(dim=1)
        return torch.where(x.sum(dim=1) < 36.5, e, torch.full_like(e, float("nan")))

    for check_every in (25, 50):
        with pytest.raises(LangevinDivergence) as info:
            langevin(energy, torch.zeros(3, 1), steps=80, step_size=1.0, noise_scale=0.0, check_every=check_every)
        _check_divergence(info.value, 37, 1.0, (3, 1))
        assert torch.equal(info.value.last_finite, torch.full((3, 1), 36.0))


@pytest.mark.parametrize("mala", [False, True])
def test_results_do_not_depend_on_the_check_interval(mala):
    z0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(22))
    runs = [langevin(gaussian_energy, z0, steps=40, step_size=0.5, mala=mala, snapshot_every=10, check_every=k,
                     generator=torch.Generator().manual_seed(23)) for k in (1, 7, 1000)]
    first = runs[0]
    assert isinstance(first.energy_trace, list) and all(isinstance(v, float) for v in first.energy_trace)
    assert (first.accept_rate is not None) == mala
    for other in runs[1:]:
        assert torch.equal(other.z, first.z)
        assert other.accept_rate == first.accept_rate and other.energy_trace == first.energy_trace
        assert all(s == t and torch.equal(a, b) for (s, a), (t, b) in zip(other.snapshots, first.snapshots))


def test_the_chains_wait_for_the_device_only_at_checks(monkeypatch):
    # Every tensor -> Python conversion waits for the device on a GPU. Counting them on the CPU: running
    # twice as many steps adds one conversion per check and none per step.
    conversions = []
    for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
        def counted(self, *args, _original=getattr(torch.Tensor, name), _name=name, **kwargs):
            conversions.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def count(steps, check_every):
        conversions.clear()
        langevin(gaussian_energy, torch.zeros(10, 2), steps=steps, step_size=0.1, mala=True, snapshot_every=5,
                 check_every=check_every, generator=torch.Generator().manual_seed(24))
        return len(conversions)

    assert count(200, 25) - count(100, 25) == 4
    assert count(200, 1) - count(100, 1) == 100


def test_bad_check_interval_is_a_value_error():
    with pytest.raises(ValueError, match="check_every"):
        langevin(gaussian_energy, torch.zeros(4, 2), steps=3, step_size=0.1, check_every=0)


def test_low_precision_energies_are_carried_and_compared_in_float32():
    # an energy computed in bfloat16 (as networks under autocast may return) is promoted before the MH test
    res = langevin(lambda x: gaussian_energy(x).bfloat16(), torch.zeros(50, 2), steps=5, step_size=0.1, mala=True,
                   generator=torch.Generator().manual_seed(25))
    assert res.z.dtype == torch.float32 and 0 < res.accept_rate <= 1
    # kept in bfloat16, every mean energy would be a bfloat16 number; promoted, the means are float32 ones
    assert any(v != float(torch.tensor(v).bfloat16()) for v in res.energy_trace)
