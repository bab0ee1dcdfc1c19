# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-widgets,-varInspector
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · The rejection-sampling lemma
#
# Chapter 03 found that a generator and a discriminator together define a better distribution than the
# generator alone,
#
# $$p^*_d(x) = \frac{p_g(x)\, e^{d(x)}}{Z_0}, \qquad Z_0 = \mathbb E_{p_g}\big[e^{d}\big],$$
#
# which is $p_\text{data}$ when $d$ is the optimal logit. There we only *reweighted* samples of $p_g$.
# Weighted samples are awkward: they cannot be shown as images, fed to another model, or counted
# as samples. We want draws of $p^*_d$ itself.
#
# The obstacle is that for a real GAN $p_g$ is implicit: we can sample it by pushing latent noise
# through $G$, but not evaluate it, so the energy $-\log p_g - d$ is unknown. This chapter shows that the
# unknown density does not matter for one classical algorithm. Rejection sampling with the generator as
# proposal needs only the *ratio* of target to proposal, and that ratio is $e^{d}/Z_0$, which the
# discriminator supplies. Phrased in the latent space, this is the lemma behind discriminator rejection
# sampling (DRS, Azadi et al. 2019) and the starting point of DDLS (chapter 05).

# %%
# %config InlineBackend.figure_formats = ['png']
import inspect
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import ebmlib
from ebmlib import plot, toy
from ebmlib.recipes import table1

plot.use_style()
SMOKE = ebmlib.smoke()
torch.set_num_threads(1)  # the networks here are tiny: one thread is as fast and shares the CPU well
print("smoke mode" if SMOKE else "full mode")

# %% [markdown]
# ## Rejection sampling
#
# Let $\pi(x) = \tilde\pi(x)/Z$ be a target known only up to its normaliser $Z$, and $q$ a proposal we
# can sample, with a constant $M$ such that $\tilde\pi(x) \le M q(x)$ everywhere. Repeat:
#
# 1. draw $x \sim q$ and $u \sim \mathcal U(0, 1)$;
# 2. accept $x$ if $u \le \tilde\pi(x) / (M q(x))$, otherwise discard it.
#
# For a set $A$, the probability that a proposal lands in $A$ *and* is accepted is
#
# $$P(x \in A, \text{accept}) = \int_A q(x)\, \frac{\tilde\pi(x)}{M q(x)}\, dx = \frac{Z}{M}\, \pi(A).$$
#
# Taking $A$ to be everything gives the acceptance rate $P(\text{accept}) = Z/M$, and dividing,
# $P(x \in A \mid \text{accept}) = \pi(A)$: accepted points are exact, independent samples of $\pi$.
# The number of proposals per accepted sample is geometric with mean $M/Z$, so $M$ should be as small as
# the bound allows. Note what is needed: the ratio $\tilde\pi/q$ pointwise, not $q$ or $\pi$ separately.
#
# ## The lemma
#
# Take the generator as proposal, $q = p_g$, and the unnormalised target $\tilde\pi = p_g e^{d}$. The
# ratio is $\tilde\pi/q = e^{d(x)}$, so the bound is $M \ge \sup_x e^{d(x)}$, and $p_g$ cancels. Since a
# proposal $x \sim p_g$ is $x = G(z)$ with $z \sim p_0$, the whole procedure can be written in the latent
# space:
#
# > **Lemma.** Draw $z \sim p_0$ and accept it with probability $e^{d(G(z))}/M$, where $M \ge \sup e^{d}$.
# > Then
# > 1. the accepted $z$ follow $p_t(z) = p_0(z)\, e^{d(G(z))} / Z_0$;
# > 2. $G(z)$ for accepted $z$ follows $p^*_d = p_g e^{d}/Z_0$;
# > 3. the acceptance rate is $Z_0/M$, with $Z_0 = \mathbb E_{z \sim p_0}[e^{d(G(z))}] = \mathbb E_{x \sim p_g}[e^{d(x)}]$.
#
# *Proof.* The pair (proposal, accepted) has density $p_0(z)\, e^{d(G(z))}/M$ in $z$, which is (1) after
# dividing by its total mass, and whose total mass $\int p_0\, e^{d \circ G}\, dz / M = Z_0/M$ is (3); the
# two expressions for $Z_0$ agree because $x = G(z)$ with $z \sim p_0$ is distributed as $p_g$. For (2),
# for any set $A$ of data points,
#
# $$P(G(z) \in A \mid \text{accept}) = \frac{1}{Z_0}\int \mathbb 1[G(z) \in A]\, p_0(z)\, e^{d(G(z))}\, dz = \frac{1}{Z_0}\, \mathbb E_{x \sim p_g}\big[\mathbb 1[x \in A]\, e^{d(x)}\big] = p^*_d(A). \qquad \blacksquare$$
#
# Nothing here asks $G$ to be invertible, or $p_g$ to have a density we can evaluate: the lemma works for
# any generator. With the optimal discriminator $Z_0 = 1$, the acceptance rate is
# $1/M = 1/\sup_x (p_\text{data}/p_g)$, and the accepted samples follow $p_\text{data}$.
#
# **If $M$ is too small**, $e^{d}/M$ exceeds 1 somewhere, so those proposals are always accepted, and the
# same computation with $\min(1, e^{d}/M)$ shows that the accepted $z$ follow
# $\propto p_0(z) \min(e^{d(G(z))}, M)$: the correction is clipped where $d > \log M$. The acceptance rate
# becomes $\mathbb E_{p_0}[\min(1, e^{d(G(z))}/M)]$. We call this sampler *rejection with a clipped
# bound*; it is not the DRS of Azadi et al. (2019), whose acceptance rule we derive at the end of the chapter.
#
# In `ebmlib` the lemma is the sampler `"drs"`:

# %%
print(inspect.getsource(ebmlib.samplers.sample_drs))

# %% [markdown]
# ## Experiment 1: a 1-D latent space where everything is known
#
# To check the lemma exactly we need a generator and a logit whose every density we can compute. We
# take a one-dimensional latent $z \sim \mathcal N(0, 1)$, a fixed monotone "generator"
# $G(z) = z + 0.8 \tanh(2z)$, which stretches the middle of the latent line and so makes $p_g$ bimodal,
# and a fixed logit $d(x) = 1.5 \sin 2x - 0.2 x^2 + 0.5 x$. They are not trained networks but the
# known test case, written as small `torch.nn.Module`s because the samplers call them like networks (the
# generator must announce its `latent_dim`). The lemma holds for *any* bounded $d$, so we need not
# pretend that this $d$ came from a discriminator.

# %%
class KnownGenerator(nn.Module):
    """The fixed test generator G(z) = z + 0.8 tanh(2z), z of shape (N, 1)."""

    latent_dim = 1

    def forward(self, z):
        return z + 0.8 * torch.tanh(2 * z)


class KnownLogit(nn.Module):
    """The fixed test logit d(x) = 1.5 sin(2x) - 0.2 x^2 + 0.5 x, x of shape (N, 1) -> (N,)."""

    def forward(self, x):
        x = x.squeeze(-1)
        return 1.5 * torch.sin(2 * x) - 0.2 * x ** 2 + 0.5 * x


G1, d1 = KnownGenerator(), KnownLogit()

# %% [markdown]
# On a fine latent grid we compute, by quadrature, $Z_0 = \int p_0\, e^{d \circ G}\, dz$, the target
# $p_t$ and its cumulative distribution function, and the largest logit $\max_z d(G(z))$, the smallest
# admissible $\log M$. For the data-space picture we also need $p_g$, which for a monotone $G$ follows
# from the change of variables $p_g(G(z)) = p_0(z) / G'(z)$.

# %%
z_grid = torch.linspace(-7, 7, 28_001, dtype=torch.float64)
with torch.no_grad():
    d_of_G = d1(G1(z_grid[:, None].float())).double()
zg = z_grid.clone().float().requires_grad_(True)
G1(zg[:, None]).sum().backward()
G_prime = zg.grad.double()  # G'(z) by autograd
x_grid = G1(z_grid[:, None].float()).squeeze(1).detach().double()  # increasing, since G is monotone

log_p0 = -0.5 * z_grid ** 2 - 0.5 * math.log(2 * math.pi)
Z0 = torch.trapezoid(torch.exp(log_p0 + d_of_G), z_grid).item()
log_pt = log_p0 + d_of_G - math.log(Z0)
cdf_t = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(log_pt.exp(), z_grid)])
log_pg_x = log_p0 - G_prime.log()  # log p_g at x_grid
log_pstar_x = log_pg_x + d_of_G - math.log(Z0)  # log p*_d at x_grid
max_logit = d_of_G.max().item()
print(f"Z0 = {Z0:.5f}, max d(G(z)) = {max_logit:.4f}, p_t integrates to {cdf_t[-1].item():.6f}")


def interpolate(t, xp, fp):
    """Piecewise-linear interpolation (numpy.interp) for torch tensors."""
    return torch.from_numpy(np.interp(np.asarray(t, dtype=np.float64), xp.numpy(), fp.numpy()))


def ks_statistic(samples, cdf_at):
    """Kolmogorov-Smirnov distance between 1-D samples and a CDF given as a function."""
    s = np.sort(samples.reshape(-1).double().numpy())
    F = cdf_at(s).numpy()
    i = np.arange(1, len(s) + 1)
    return max((i / len(s) - F).max(), (F - (i - 1) / len(s)).max())


def cdf_pt(z):
    return interpolate(z, z_grid, cdf_t)


def cdf_p0(z):
    return 0.5 * (1 + torch.special.erf(torch.as_tensor(z, dtype=torch.float64) / math.sqrt(2)))

# %% [markdown]
# Now DRS with the tightest bound, $\log M = \max d$. The Kolmogorov–Smirnov (KS) statistic measures the
# largest gap between the empirical CDF of the accepted latents and the CDF of $p_t$. For $n$ exact
# independent samples it is of order $1/\sqrt n$; a value above $1.95/\sqrt n$ would reject the
# hypothesis "these are samples of $p_t$" at the 0.1% level. For contrast we also measure the gap to the
# prior $p_0$.

# %%
n1 = ebmlib.pick(200_000, 20_000)
drs1 = ebmlib.sample("drs", G1, d1, n1, seed=0, log_m=max_logit)
ks_t, ks_0 = ks_statistic(drs1.z, cdf_pt), ks_statistic(drs1.z, cdf_p0)
rate, predicted = drs1.info["accept_rate"], Z0 / math.exp(max_logit)
rate_tol = 4 * math.sqrt(predicted * (1 - predicted) / (n1 / predicted))  # 4 std of a rate over >= n1/rate proposals
print(f"{n1:,} accepted latents in {drs1.seconds:.2f} s")
print(f"KS to p_t: {ks_t:.4f}  (0.1% critical value {1.95 / math.sqrt(n1):.4f});  KS to the prior p_0: {ks_0:.4f}")
print(f"acceptance rate: measured {rate:.4f}, Z0/M = {predicted:.4f}, difference {abs(rate - predicted):.4f} "
      f"(tolerance {rate_tol:.4f})")
assert ks_t < 1.95 / math.sqrt(n1), ks_t
assert ks_0 > 10 * ks_t
assert abs(rate - predicted) < rate_tol, (rate, predicted)

# %% [markdown]
# Part (2) of the lemma, in data space: the accepted latents pushed through $G$ should follow $p^*_d$.
# We compare the histogram of $G(z)$ with the exact bin probabilities of $p^*_d$ (total variation on
# 60 bins). Because $G$ is monotone, a KS test in $x$ would repeat the one in $z$ exactly: the check in
# data space is the push-forward half of the lemma, computed from $p_g$ and $d$ rather than from $p_t$.

# %%
x_edges = torch.linspace(-4.5, 4.5, 61, dtype=torch.float64)
cdf_pstar = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(log_pstar_x.exp(), x_grid)])
target_bins = interpolate(x_edges, x_grid, cdf_pstar).diff()
x1 = drs1.x.reshape(-1).double()
hist = torch.histc(x1, bins=60, min=-4.5, max=4.5).double() / len(x1)
tv_x = 0.5 * ((hist - target_bins).abs().sum() + abs((1 - hist.sum()) - (1 - target_bins.sum()))).item()
with torch.no_grad():
    x_prior = G1(torch.randn(n1, 1, generator=torch.Generator().manual_seed(1))).reshape(-1).double()
hist_g = torch.histc(x_prior, bins=60, min=-4.5, max=4.5).double() / n1
tv_g = 0.5 * ((hist_g - target_bins).abs().sum() + abs((1 - hist_g.sum()) - (1 - target_bins.sum()))).item()
print(f"p*_d integrates to {cdf_pstar[-1].item():.6f} on the grid")
print(f"TV to p*_d: G(accepted z) {tv_x:.4f}, G(z) for z ~ p0 (the generator alone) {tv_g:.4f}")
assert tv_x < 0.03 and tv_x < tv_g / 5, (tv_x, tv_g)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plot.hist_vs_density(axes[0], drs1.z, lambda t: interpolate(t, z_grid, log_pt).float(), "accepted z",
                     lo=-4, hi=4, bins=80, color="C3")
axes[0].plot(z_grid, log_p0.exp(), color="C0", ls="--", lw=1, label="prior $p_0$")
axes[0].set_xlim(-4, 4)
axes[0].set_title(r"latent space: accepted $z$ vs $p_t \propto p_0\, e^{d(G(z))}$"), axes[0].legend(fontsize=8)
plot.hist_vs_density(axes[1], drs1.x, lambda t: interpolate(t, x_grid, log_pstar_x).float(), "G(accepted z)",
                     lo=-4.5, hi=4.5, bins=80, color="C3")
axes[1].plot(x_grid, log_pg_x.exp(), color="C0", ls="--", lw=1, label="$p_g$")
ax2 = axes[1].twinx()
visible = x_grid.abs() <= 4.5
ax2.plot(x_grid[visible], d_of_G[visible], color="C2", lw=0.8, alpha=0.7)
ax2.set_ylabel("d(x)", color="C2"), ax2.set_ylim(-8, 3), ax2.grid(False)
axes[1].set_xlim(-4.5, 4.5), axes[1].set_title(r"data space: $G(z)$ vs $p^*_d = p_g e^{d}/Z_0$")
axes[1].legend(fontsize=8, loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# The black curves are the exact $p_t$ (left) and $p^*_d$ (right); the dashed blue curves are what the
# generator alone produces; the green curve on the right is the logit. Where $d$ is high the accepted
# samples pile up above $p_g$, where it is low they thin out.
#
# ### The acceptance rate is $Z_0 / M$
#
# A looser bound $M$ is still correct but wasteful: the rate falls as $1/M$. Below, DRS runs with
# $\log M$ raised above the maximum logit by $0, 0.5, 1, 2$; the accepted samples keep following $p_t$.

# %%
n_rate = ebmlib.pick(50_000, 10_000)
print(" log M - max d   measured rate   Z0/M      KS to p_t")
rates = []
for extra in [0.0, 0.5, 1.0, 2.0]:
    out = ebmlib.sample("drs", G1, d1, n_rate, seed=2, log_m=max_logit + extra)
    pred = Z0 / math.exp(max_logit + extra)
    rates.append((out.info["accept_rate"], pred, ks_statistic(out.z, cdf_pt)))
    print(f"{extra:12.1f}   {rates[-1][0]:13.4f}   {pred:.4f}   {rates[-1][2]:.4f}")
for measured, pred, ks in rates:
    assert abs(measured - pred) < 4 * math.sqrt(pred * (1 - pred) / (n_rate / pred)), (measured, pred)
    assert ks < 1.95 / math.sqrt(n_rate), ks

# %% [markdown]
# ### A bound that is too small clips the correction
#
# With $\log M$ one unit *below* the maximum logit the sampler still runs (the library then accepts every
# proposal with $d > \log M$), but the accepted latents follow $\propto p_0 \min(e^{d \circ G}, M)$
# instead of $p_t$, and the acceptance rate is $\mathbb E_{p_0}[\min(1, e^{d \circ G}/M)]$.

# %%
log_m_low = max_logit - 1.0
clipped = log_p0.exp() * torch.clamp(d_of_G - log_m_low, max=0.0).exp()  # p0 * min(1, e^{d(G)}/M)
rate_clipped = torch.trapezoid(clipped, z_grid).item()
cdf_clipped = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(clipped, z_grid)]) / rate_clipped
low = ebmlib.sample("drs", G1, d1, n_rate, seed=3, log_m=log_m_low)
ks_low_t = ks_statistic(low.z, cdf_pt)
ks_low_clipped = ks_statistic(low.z, lambda z: interpolate(z, z_grid, cdf_clipped))
print(f"KS to p_t {ks_low_t:.4f}, KS to the clipped target {ks_low_clipped:.4f} "
      f"(0.1% critical value {1.95 / math.sqrt(n_rate):.4f})")
print(f"acceptance rate: measured {low.info['accept_rate']:.4f}, E[min(1, e^d / M)] = {rate_clipped:.4f}")
assert ks_low_clipped < 1.95 / math.sqrt(n_rate) < ks_low_t, (ks_low_clipped, ks_low_t)
assert abs(low.info["accept_rate"] - rate_clipped) < 0.01

# %% [markdown]
# ## Experiment 2: DRS on the 25-Gaussian grid
#
# Now a real GAN: an MLP generator and discriminator trained on the 25-Gaussian grid (means on
# $\{-2,\dots,2\}^2$, standard deviation 0.05) with the budget that `ebmlib.recipes.table1` uses for the
# paper's Table 1, which leaves the generator imperfect: some of its mass lies on bridges between the
# modes.
#
# The lemma needs $d \approx \log p_\text{data}/p_g$ for *this* generator, but the GAN's own discriminator
# was trained against a moving generator and lags behind it. `ebmlib.calibrate` fixes that after
# training. Its signature:

# %%
print(inspect.signature(ebmlib.calibrate))

# %% [markdown]
# With `method="head"` it fits only an affine map $a\,d(x) + b$ of the frozen logit with the logistic
# loss; with `method="finetune"` it trains a copy of the discriminator against samples of the frozen
# generator, moving it towards the optimal discriminator of chapter 02; with `method="residual"` it keeps
# the discriminator frozen and fits a small correction $d(x) + r(x)$, which can carve the steep bowls
# around narrow modes that a ReLU discriminator of this size only approximates (chapter 05 compares the
# two). We use the settings of the Table 1 experiments (`table1.CALIBRATION`), which fit the residual.

# %%
train = None if not SMOKE else {"steps": 1000}
calibration = {**table1.CALIBRATION, **({} if not SMOKE else {"steps": 300})}
print("calibration:", calibration)
G, D, history = table1.train_pair(seed=0, train=train, progress=False)
d = ebmlib.calibrate(D, G, toy.sample_grid25, seed=0, progress=False, **calibration)
print(f"trained for {history['step'][-1]} steps in {history['seconds']:.1f} s")

# %% [markdown]
# Before sampling, look at the logits of many generator samples: they give $\hat Z_0$ and the largest
# logit, hence the acceptance rate that exact DRS (with $\log M = \max d$) would have.

# %%
n_probe = ebmlib.pick(100_000, 20_000)
probe = ebmlib.sample("generator", G, d, n_probe, seed=5)
with torch.no_grad():
    logits = d(probe.x)
exact_rate = torch.exp(logits - logits.max()).mean().item()
print(f"Z0 estimate {logits.exp().mean():.3f};  logits: median {logits.median():.2f}, "
      f"99% quantile {logits.quantile(0.99):.2f}, max {logits.max():.2f}")
print(f"exact DRS would accept {exact_rate:.2e} of its proposals: {1 / exact_rate:,.0f} proposals per sample")

# %% [markdown]
# The bound $M$ is set by the single largest logit, usually that of one of a few generated points that
# the calibrated discriminator is very sure about (near the centre of a mode the generator under-covers),
# while the typical logit is far lower. Exact DRS pays for those few points with many wasted proposals:
# the rate $Z_0/M$ falls exponentially in the gap between the largest and the typical logit. This is the
# practical weakness of the lemma, and in high dimensions, where logits spread much more widely, it makes
# exact DRS hopeless. The simplest way out sets $\log M$ to a high quantile of the logits
# (`m_quantile=0.99`) and accepts the clipped correction derived above: 1% of proposals are kept for
# certain, the rest with probability $e^{d - \log M}$. This *rejection with a clipped bound* is our own
# simplification; Azadi et al.'s DRS handles the same problem differently (last section).

# %%
n = ebmlib.pick(10_000, 2_000)
gen = ebmlib.sample("generator", G, d, n, seed=1)
drs = ebmlib.sample("drs", G, d, n, seed=1, m_quantile=0.99)
log_m = drs.info["log_m"]
predicted_rate = torch.exp(logits - log_m).clamp(max=1).mean().item()
stats_gen, stats_drs = toy.mode_stats(gen.x), toy.mode_stats(drs.x)
print(f"log M = {log_m:.2f}; acceptance rate measured {drs.info['accept_rate']:.3f}, "
      f"predicted E[min(1, e^(d - log M))] = {predicted_rate:.3f}")
for name, s in [("generator", stats_gen), ("clipped", stats_drs)]:
    print(f"{name:9s} modes {s['modes']:2d}/25  high quality {100 * s['hq_fraction']:5.1f}%  std {s['hq_std']:.3f}")
# tolerance: 10%, or 4 standard deviations of a rate measured over at least max(10_000, n / rate) proposals
tolerance = max(0.1 * predicted_rate,
                4 * math.sqrt(predicted_rate * (1 - predicted_rate) / max(10_000, n / predicted_rate)))
assert abs(drs.info["accept_rate"] - predicted_rate) < tolerance, (drs.info["accept_rate"], predicted_rate)
assert stats_drs["hq_fraction"] >= stats_gen["hq_fraction"], (stats_drs, stats_gen)

# %% [markdown]
# Rejection with the clipped bound raises the share of high-quality samples (within four standard
# deviations of a mode's centre) above the generator's. The figure shows where that comes from. The third panel is the latent plane,
# shaded by the acceptance probability $\min(1, e^{d(G(z))}/M)$ on a log scale (dark: accepted for
# certain; white: below $10^{-3}$), with some of the latents DRS accepted in red. The light lines are the
# latents that $G$ sends onto the bridges between modes: the discriminator scores them low, so they are
# almost never accepted. The fourth panel colours generator samples by the same probability: points on
# the bridges are dark, points on the modes bright.

# %%
def log10_acceptance(z):
    """log10 of the DRS acceptance probability min(1, e^(d(G(z)) - log M)), floored at -3 for the colours."""
    with torch.no_grad():
        return ((d(G(z)) - log_m).clamp(max=0) / math.log(10)).clamp(min=-3)


fig, axes = plt.subplots(1, 4, figsize=(17, 4.3))
plot.grid_scatter(axes[0], gen.x, "generator alone")
plot.grid_scatter(axes[1], drs.x, "clipped bound (m_quantile = 0.99)")
cs = plot.contour(axes[2], log10_acceptance, lim=3.0, levels=20, cmap="Greys")
plot.scatter(axes[2], drs.z[:3000], lim=3.0, s=2, alpha=0.5, color="C3")
axes[2].set_title("latent plane: P(accept), accepted z")
fig.colorbar(cs, ax=axes[2], shrink=0.8, label="log10 P(accept)")
show = gen.x[:4000]
sc = axes[3].scatter(show[:, 0], show[:, 1], c=log10_acceptance(gen.z[:4000]), s=2, cmap="viridis",
                     vmin=-3, vmax=0)
axes[3].set_xlim(-2.8, 2.8), axes[3].set_ylim(-2.8, 2.8), axes[3].set_aspect("equal")
axes[3].set_title("generator samples, by P(accept)")
fig.colorbar(sc, ax=axes[3], shrink=0.8, label="log10 P(accept)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What these samplers sample: the mode weights of $p_t$
#
# The share of high-quality samples looks inside each mode. A sampler of $p_t$ must also give each mode
# its *weight* under $p_t$, and to check that we need $p_t$'s mode weights from somewhere that does not
# involve the sampler being judged. With a 2-D latent space we can compute them by quadrature: on a
# lattice of $z$ points covering $[-6, 6]^2$, give each point the weight $p_0(z)\, e^{d(G(z))}$, normalise,
# and add up the weights of the points whose $G(z)$ is nearest to each mode
# (`ebmlib.samplers.reweight(..., lattice=True)`). Two lattices with random offsets give two
# independent answers; their distance is the reference's own error. Plain importance sampling (the
# same weights on $10^6$ random $z \sim p_0$) would be the choice in high dimensions, but here it is
# unreliable: a few latents where $d \circ G$ is very large carry most of the weight.
#
# We compare mode histograms with the total-variation distance
# $\mathrm{TV}(p, q) = \tfrac12 \sum_k |p_k - q_k|$ over the 25 modes, every sample counted at its nearest
# mode. Even a perfect sampler shows some distance by chance: with $n$ independent draws, about
# $\tfrac12 \sum_k \sqrt{2 p_k (1 - p_k)/(\pi n)}$.

# %%
reference = table1.reference_weights(G, d, seed=0, n_samples=n)
pt_weights = torch.tensor(reference["weights"])
uniform = torch.full((25,), 1 / 25)


def tv_to_pt(x):
    """Total variation between the mode weights of samples x (N, 2) and p_t's."""
    return toy.total_variation(toy.mode_weights(x), pt_weights)


print(f"p_t by quadrature: two lattices differ by TV {reference['reference_tv']:.4f}; {n:,} exact draws "
      f"would differ by {reference['sampling_floor']:.3f} by chance")
print(f"p_t's distance from the data's equal mode weights: TV {reference['data_tv']:.3f}; "
      f"largest mode weight {pt_weights.max():.3f} (mode {pt_weights.argmax().item()}), smallest {pt_weights.min():.3f}")
print(f"generator: TV to p_t {tv_to_pt(gen.x):.3f};  clipped-bound rejection: TV to p_t {tv_to_pt(drs.x):.3f}")
assert reference["reference_tv"] < 0.2 * reference["sampling_floor"], reference

# %% [markdown]
# The reference is far more precise than any 10,000-sample histogram. And it shows that $p_t$ is not the
# data distribution: one corner mode gets several times its share. That is the discriminator's doing,
# not a sampler's: the generator reaches that mode's centre only from the far tail of the prior, where
# $d$, trained on few fake samples there, is very large. An exact sampler of $p_t$ must reproduce this
# excess; the clipped bound, which accepts every proposal above the 99% quantile of the logits at the
# same rate, cannot, and sits far from $p_t$.
#
# ## DRS as Azadi et al. define it
#
# Discriminator rejection sampling (Azadi et al. 2019) keeps the lemma's bound at the largest logit seen
# so far, $\log M = \max d$, and changes the acceptance test instead. With $a = d(x) - \log M \le 0$ it
# accepts with probability $\sigma(F(x))$, where $\sigma$ is the logistic function and
#
# $$F(x) = a - \log\big(1 - e^{a - \epsilon}\big) - \gamma .$$
#
# Why this form? For $\gamma = 0$ and $\epsilon \to 0$,
#
# $$\sigma\big(a - \log(1 - e^{a})\big) = \frac{1}{1 + (1 - e^{a})\, e^{-a}} = e^{a},$$
#
# which is exactly the lemma's acceptance probability $e^{d}/M$. So $F$ is the *logit* of the exact
# acceptance probability, and $\gamma$ shifts it: every proposal's odds of acceptance are multiplied by
# $e^{-\gamma}$. Azadi et al. set $\gamma$ so that the proposals at the 95th percentile of $F$ are accepted
# half the time; $\epsilon$ keeps the logarithm finite at the maximum. A negative $\gamma$ raises the
# acceptance rate well above $Z_0/M$, at the price of exactness: the accepted samples no longer follow
# $p_t$ but a flattened version of it, $\propto p_0\, \sigma(\text{logit}(e^{a}) - \gamma)$.

# %%


a_grid = torch.linspace(-10, -1e-3, 200)
identity_gap = (ebmlib.samplers.drs_log_acceptance(a_grid, 0.0, gamma=0.0, epsilon=0.0) - a_grid.double()).abs().max().item()
print(f"sigma(a - log(1 - e^a)) against e^a, largest gap in log space: {identity_gap:.1e}")
assert identity_gap < 1e-9  # an identity, checked to rounding

azadi = ebmlib.sample("drs", G, d, n, seed=4, shift_quantile=0.95)
stats_azadi = toy.mode_stats(azadi.x)
print(f"DRS (Azadi et al., gamma at the 95th percentile of F): gamma {azadi.info['gamma']:.2f}, log M "
      f"{azadi.info['log_m']:.2f}, acceptance {azadi.info['accept_rate']:.3f} (exact: {exact_rate:.1e})")
print(f"  high quality {100 * stats_azadi['hq_fraction']:.1f}%, modes {stats_azadi['modes']}/25, "
      f"TV to p_t {tv_to_pt(azadi.x):.3f}")
assert azadi.info["accept_rate"] > ebmlib.pick(30, 10) * exact_rate, (azadi.info, exact_rate)
assert stats_azadi["hq_fraction"] > stats_gen["hq_fraction"]

# %% [markdown]
# DRS accepts tens of times more often than exact rejection would, and its samples are as clean
# as the clipped bound's; like it, it does not reproduce $p_t$'s mode weights. Both are useful samplers
# of *something close to* $p_t$ inside each mode, not of $p_t$.
#
# ## Independent Metropolis-Hastings: MH-GAN
#
# Rejection sampling throws proposals away. Metropolis-Hastings keeps a chain instead: from the current
# state $x$, propose $x'$ from a proposal $q(x' \mid x)$ and move with probability
#
# $$\alpha(x, x') = \min\Big(1, \frac{\pi(x')\, q(x \mid x')}{\pi(x)\, q(x' \mid x)}\Big),$$
#
# which makes $\pi$ invariant whatever $q$ is (detailed balance). MH-GAN (Turner et al. 2019) takes the
# *independent* proposal $q(x' \mid x) = p_g(x')$, a fresh generator sample, and the target
# $\pi = p_g e^{d}/Z_0$. Then $p_g$ cancels once more:
#
# $$\alpha(x, x') = \min\Big(1, \frac{p_g(x')\, e^{d(x')}\, p_g(x)}{p_g(x)\, e^{d(x)}\, p_g(x')}\Big) = \min\big(1, e^{d(x') - d(x)}\big),$$
#
# the ratio of the discriminator's density ratios at the two points. No bound $M$ is needed, and no
# proposal is wasted on a chain that has nowhere better to go. Two consequences follow from the formula.
# First, the chain is only as right as $d$ is calibrated: a raw discriminator's logit is not
# $\log p_\text{data}/p_g$, and the chain then samples $p_g e^{d}$ for the wrong $d$. Second, Turner et al.
# start each chain at a *real* sample: if $d$ were exact, $\pi$ would be $p_\text{data}$ and a real sample
# would already be a draw of it, so the chain would need no burn-in. A chain that never accepts a
# proposal would return its real start; `ebmlib` runs such chains again from a generator sample.

# %%
real = toy.sample_grid25(n, torch.Generator().manual_seed(11))
mh_steps = [1, 10, 50, 200]
mh_tv = {"generator start": [], "real start": []}
for steps in mh_steps:
    from_gen = ebmlib.sample("mh", G, d, n, seed=3, steps=steps)
    from_real = ebmlib.sample("mh", G, d, n, seed=3, steps=steps, x0=real)
    mh_tv["generator start"].append(tv_to_pt(from_gen.x))
    mh_tv["real start"].append(tv_to_pt(from_real.x))
    print(f"{steps:4d} steps: TV to p_t from generator starts {mh_tv['generator start'][-1]:.3f}, from real starts "
          f"{mh_tv['real start'][-1]:.3f} ({from_real.info['restarted']:,} of {n:,} chains never left their real start)")
mh_raw = ebmlib.sample("mh", G, D, n, seed=3, steps=50)
mh_cal = ebmlib.sample("mh", G, d, n, seed=3, steps=50)
hq_raw, hq_cal = toy.mode_stats(mh_raw.x)["hq_fraction"], toy.mode_stats(mh_cal.x)["hq_fraction"]
print(f"MH-GAN, 50 steps, with the GAN's raw D: high quality {100 * hq_raw:.1f}%; with the calibrated d: "
      f"{100 * hq_cal:.1f}%")

fig, ax = plt.subplots(figsize=(5, 3.4))
for name, values in mh_tv.items():
    ax.plot(mh_steps, values, "o-", label=name)
ax.axhline(reference["sampling_floor"], color="grey", ls=":", label="chance floor")
ax.set_xscale("log"), ax.set_xlabel("MH steps"), ax.set_ylabel("TV to p_t (mode weights)"), ax.legend()
plt.tight_layout()
plt.show()

assert mh_tv["generator start"][-1] < mh_tv["generator start"][0] - ebmlib.pick(0.05, 0.0), mh_tv
assert hq_cal > hq_raw + ebmlib.pick(0.2, 0.0), (hq_raw, hq_cal)

# %% [markdown]
# Three measured lessons. The chains approach $p_t$'s mode weights as they run longer, but slowly: the
# excess mass of $p_t$ sits where the generator rarely proposes, and an independent proposal reaches it
# only as often as $p_g$ puts mass there. Starting at real samples does not help here, because $d$ is not
# exact: real points carry logits far above those of typical proposals, so many chains never move in the
# first steps and must be restarted. And calibration decides what the chain samples: with the GAN's raw
# discriminator MH-GAN leaves far more samples off the modes.

# %% [markdown]
# ## Summary
#
# - Rejection sampling needs only the ratio of target to proposal, up to a constant. With the generator
#   as proposal and $p^*_d = p_g e^{d}/Z_0$ as target the ratio is $e^{d}/Z_0$: the unknown $p_g$
#   cancels.
# - **Lemma:** drawing $z \sim p_0$ and accepting with probability $e^{d(G(z))}/M$, $M \ge \sup e^{d}$,
#   gives latents distributed as $p_t(z) \propto p_0(z) e^{d(G(z))}$, data $G(z)$ distributed as
#   $p^*_d$, and acceptance rate $Z_0/M$. In 1-D, with a known generator and logit, the accepted
#   latents passed a KS test against $p_t$, their images matched $p^*_d$, and the measured acceptance
#   rates matched $Z_0/M$ for several $M$.
# - A bound $M$ below $\sup e^{d}$ clips the correction, giving $\propto p_0 \min(e^{d \circ G}, M)$;
#   rejection with a clipped bound does this on purpose, because the exact $M$ is set by a few extreme logits.
# - On the 25-Gaussian grid, rejection with a calibrated discriminator raised the share of high-quality
#   samples above the generator's, but exact rejection would have needed a very large number of proposals
#   per sample.
# - $p_t$'s mode weights, computed by quadrature over the latent plane, are the sampler-free reference.
#   They differ from the data's: the calibrated $d$ is too large where the generator rarely goes.
# - DRS (Azadi et al.) is rejection with the acceptance logit shifted by $\gamma$: for $\gamma = 0$ it is
#   exact. The shift buys a usable acceptance rate and gives up $p_t$'s mode weights.
# - MH-GAN is independent Metropolis-Hastings with the generator as proposal; its acceptance ratio is
#   $e^{d(x') - d(x)}$. It needs a calibrated $d$, and it approaches $p_t$'s mode weights only slowly where
#   $p_g$ rarely proposes. Chapter 05 samples the same $p_t$ with Langevin dynamics.
#
# ## Exercises
#
# 1. Replace the test logit by $c \cdot d$ for $c = 0.5, 2, 4$. Predict the acceptance rate of exact DRS
#    by quadrature, then measure it. How does the rate scale with the range of $d$?
# 2. Make the test generator non-monotone, for example $G(z) = z^2 - 1$. Which parts of the lemma still
#    hold, and which of this chapter's checks must change? (Hint: $p_g$ now needs the sum over both
#    preimages of $x$.)
# 3. On the grid, calibrate with `method="head"` instead of the Fourier residual and compare $\max d$, the exact
#    acceptance rate and the DRS mode statistics. Then run DRS with `m_quantile` 0.9, 0.99 and 1.0 (only
#    if the exact rate is not tiny!) and plot the share of high-quality samples against the acceptance
#    rate.
# 4. Show that with the optimal discriminator the acceptance rate of exact DRS is
#    $1/\sup_x (p_\text{data}(x)/p_g(x))$. What does this say about a generator that misses a mode by
#    a little, and one that misses it entirely?
# 5. Run DRS with `shift_quantile` 0.5, 0.8, 0.95 and 0.99 and plot the acceptance rate against the TV
#    distance to $p_t$. Which $\gamma$ gives exact rejection, and why is it not reachable with a quantile
#    of $F$ here?
