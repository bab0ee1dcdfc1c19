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
# # 01 · Energy-based models and Langevin dynamics
#
# An **energy-based model** (EBM) describes a distribution by a single scalar function, the energy
# $E(x)$: low energy means likely, high energy means unlikely. The density is
#
# $$p(x) = \frac{e^{-E(x)}}{Z}, \qquad Z = \int e^{-E(x)}\, dx .$$
#
# Every positive density can be written this way (take $E = -\log p$ plus any constant), so the form
# costs no generality. What it buys is freedom: $E$ can be any function we can compute, a quadratic
# form, a neural network, or, as this course will show, the output of a GAN's discriminator combined
# with its generator. What it costs is the constant $Z$. It is an integral over the whole space, which
# for an image means tens of thousands of dimensions; no quadrature rule gets near it, so in practice we
# never know $Z$ and therefore never know $p(x)$ itself.
#
# Two things survive without $Z$:
#
# - ratios, $p(x)/p(y) = e^{E(y) - E(x)}$, and
# - the score, $\nabla_x \log p(x) = -\nabla_x E(x)$, because $Z$ does not depend on $x$.
#
# Sampling from $p$ has to be built from these. There is no inverse CDF to push uniform numbers
# through, and rejection sampling needs a bound on $p$ we do not have. Markov chain Monte Carlo (MCMC)
# fills the gap: it runs a random walk whose long-run distribution is $p$, and each move needs only
# energy differences or gradients. This chapter derives the MCMC method the rest of the course relies
# on, **Langevin dynamics**, measures its one weakness (a bias that grows with the step size), and
# removes that bias with a Metropolis-Hastings test (**MALA**). It then turns the question around and
# *learns* an energy from data by maximum likelihood, where Langevin samples stand in for the unknown $Z$;
# the cost of those samples is what a GAN's generator takes over. Later chapters run the same sampler on
# the energy $E(z) = -\log p_0(z) - d(G(z))$ that a trained GAN defines.

# %%
# %config InlineBackend.figure_formats = ['png']
import inspect
import math

import matplotlib.pyplot as plt
import torch

import ebmlib
from ebmlib import plot

plot.use_style()
SMOKE = ebmlib.smoke()
torch.manual_seed(0)
# The chains here are tiny tensors: one thread is faster than several fighting over the cores.
torch.set_num_threads(1)
print("smoke mode" if SMOKE else "full mode")

# %% [markdown]
# ## From a diffusion to an algorithm
#
# Consider the stochastic differential equation (the *overdamped Langevin diffusion*)
#
# $$dX_t = -\nabla E(X_t)\, dt + \sqrt{2}\, dW_t ,$$
#
# where $W_t$ is a Brownian motion. The drift pulls the particle downhill in energy; the noise keeps
# kicking it around. The density $\rho_t$ of $X_t$ obeys the Fokker-Planck equation
#
# $$\partial_t \rho_t = \nabla \cdot \big(\rho_t \nabla E\big) + \Delta \rho_t
#                     = \nabla \cdot \Big(\rho_t\, \nabla \big(E + \log \rho_t\big)\Big).$$
#
# The right-hand side vanishes when $\nabla(E + \log\rho) = 0$, that is when $\rho \propto e^{-E}$.
# So $p = e^{-E}/Z$ is a stationary density of the diffusion, and under mild conditions on $E$ (it grows
# at infinity, its gradient is Lipschitz) it is the only one and $\rho_t \to p$ from any start. The
# constant $Z$ appeared nowhere: the dynamics only need $\nabla E$.
#
# A computer cannot follow a continuous path, so we discretise time. The Euler-Maruyama scheme with a
# time step $h$ replaces $dt$ by $h$ and $dW_t$ by $\sqrt{h}\,\xi$ with $\xi \sim \mathcal N(0, I)$:
#
# $$x_{i+1} = x_i - h \nabla E(x_i) + \sqrt{2h}\, \xi_i .$$
#
# Writing $h = \varepsilon/2$ gives the form used throughout this course (and in the DDLS paper):
#
# $$\boxed{\,x_{i+1} = x_i - \frac{\varepsilon}{2}\nabla E(x_i) + \sqrt{\varepsilon}\, \xi_i,
#   \qquad \xi_i \sim \mathcal N(0, I).\,}$$
#
# This is the **unadjusted Langevin algorithm** (ULA). "Unadjusted" is a warning: the discrete chain
# is not the diffusion, and its stationary distribution $\pi_\varepsilon$ is not exactly $p$. For a
# smooth energy the difference is of order $\varepsilon$: expectations of smooth functions under
# $\pi_\varepsilon$ differ from those under $p$ by $O(\varepsilon)$. Halving the step halves the bias,
# but also halves the distance $N\varepsilon/2$ in "diffusion time" that $N$ steps cover, so small
# steps buy accuracy with longer runs.
#
# `ebmlib.langevin` runs many independent chains at once, with `step_size` $=\varepsilon$. Here is the
# whole function; the MALA branch is explained further down.

# %%
print(inspect.getsource(ebmlib.langevin))

# %% [markdown]
# ## A target with known answers
#
# To measure a sampler's error we need a target whose moments we know exactly. A correlated Gaussian is
# the natural choice:
#
# $$E(x) = \tfrac12\, x^\top \Sigma^{-1} x, \qquad
#   \Sigma = \begin{pmatrix} 1 & 0.8 \\ 0.8 & 1 \end{pmatrix},$$
#
# so $p = \mathcal N(0, \Sigma)$, with mean $0$ and covariance $\Sigma$. Its eigenvalues are $1.8$ (along
# the diagonal) and $0.2$ (across it): the density is a narrow ellipse, and the energy is steep in one
# direction and shallow in the other. Both matter. The steep direction, with precision
# $\lambda_{\max} = 1/0.2 = 5$, limits the step; the shallow one, with precision
# $\lambda_{\min} = 1/1.8$, sets how long the chains need to forget where they started (the drift moves
# a chain by a fraction $\varepsilon\lambda/2$ of its distance from the mean per step, so forgetting
# takes about $2/(\varepsilon\lambda_{\min})$ steps, a diffusion time of $1/\lambda_{\min}$).
#
# The helper below only arranges the experiment: it starts `N_CHAINS` chains from $\mathcal N(0, I)$
# (deliberately not the target), calls `ebmlib.langevin` for a fixed diffusion time, discards a
# burn-in, and pools the later states of all chains. The run length is measured in diffusion time,
# $t = N\varepsilon/2$ after $N$ steps, so that every step size gets the same amount of mixing.

# %%
Sigma = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
precision = torch.linalg.inv(Sigma)
evals, evecs = torch.linalg.eigh(Sigma)
Sigma_inv_sqrt = evecs @ torch.diag(evals.rsqrt()) @ evecs.T
print(f"eigenvalues of Sigma: {evals.tolist()[0]:.2f}, {evals.tolist()[1]:.2f};  stable steps: eps < {4 * evals.min():.2f}")


def gaussian_energy(x):
    """E(x) = x^T Sigma^{-1} x / 2 for x of shape (N, 2)."""
    return 0.5 * ((x @ precision) * x).sum(dim=1)


N_CHAINS = ebmlib.pick(20_000, 4_000)
BURN, WINDOW = 7.5, ebmlib.pick(22.5, 15.0)  # in diffusion time t = steps * step_size / 2


def run_chains(step_size, mala=False, seed=0):
    """Chains on the Gaussian energy: returns (states pooled after the burn-in, ebmlib's LangevinResult)."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(N_CHAINS, 2, generator=g)
    steps, burn = round(2 * (BURN + WINDOW) / step_size), round(2 * BURN / step_size)
    every = max(1, (steps - burn) // 100)
    result = ebmlib.langevin(gaussian_energy, x0, steps=steps, step_size=step_size, mala=mala,
                             snapshot_every=every, generator=g)
    pooled = torch.cat([x for step, x in result.snapshots if step > burn])
    return pooled, result


# %% [markdown]
# ### (a) At a small step, ULA recovers the moments
#
# We run ULA with $\varepsilon = 0.025$ and compare the sample mean and covariance with the exact ones.
# The mean's error is judged against its standard error: each chain's average over the window is one
# number, the chains are independent, and the spread of those averages over $\sqrt{N_\text{chains}}$ is
# the standard error of the pooled mean. The covariance carries, besides noise, the small bias of ULA that
# the next section computes exactly (about $\varepsilon/4$ on the diagonal).

# %%
small_eps = 0.025
pooled_small, result = run_chains(small_eps)
mean_hat, cov_hat = pooled_small.mean(dim=0), torch.cov(pooled_small.T)
mean_err = mean_hat.norm().item()
chain_means = pooled_small.reshape(-1, N_CHAINS, 2).mean(dim=0)  # each chain's time average, (N_CHAINS, 2)
mean_se = (chain_means.std(dim=0) / math.sqrt(N_CHAINS)).norm().item()
cov_err = (cov_hat - Sigma).abs().max().item()
print(f"{N_CHAINS} chains, {len(result.energy_trace)} steps of size {small_eps}")
print("sample mean      ", mean_hat.numpy().round(4), f"  |error| = {mean_err:.4f} ({mean_err / mean_se:.1f} standard errors of {mean_se:.4f})")
print("sample covariance", [[f"{v:.4f}" for v in row] for row in cov_hat.tolist()], f"  largest entry error = {cov_err:.4f}")
assert mean_err < 3 * mean_se, (mean_err, mean_se)
assert cov_err < 0.02, cov_err

# %% [markdown]
# The figure shows the energy's contours and the final states of the chains (left), and six extra
# chains started far out (right). They first fall quickly across the ellipse, along the steep
# direction, and then wander slowly along its long axis: the two time scales set by $\lambda_{\max}$
# and $\lambda_{\min}$.

# %%
starts = torch.tensor([[-2.8, 2.4], [2.8, -2.4], [-2.9, -0.5], [2.9, 0.5], [0.3, 2.9], [-0.3, -2.9]])
paths = ebmlib.langevin(gaussian_energy, starts, steps=400, step_size=small_eps, snapshot_every=2,
                        generator=torch.Generator().manual_seed(1))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax in axes:
    cs = plot.contour(ax, gaussian_energy, lim=3.2, levels=20, cmap="Blues_r")
plot.scatter(axes[0], result.z[:3000], "final states of 3000 chains", lim=3.2, color="C3", s=3, alpha=0.5)
plot.chain_paths(axes[1], paths.snapshots, chains=6, color="C3")
axes[1].scatter(starts[:, 0], starts[:, 1], color="k", marker="x", s=30, zorder=3)
axes[1].set_xlim(-3.2, 3.2), axes[1].set_ylim(-3.2, 3.2)
axes[1].set_title("six chains, 400 steps from the crosses")
fig.colorbar(cs, ax=axes, shrink=0.8, label="E(x)")
plt.show()

# %% [markdown]
# ## The bias of ULA, exactly
#
# For a Gaussian target the ULA step is linear, and its stationary law can be computed in closed form.
# Write $P = \Sigma^{-1}$, so $\nabla E(x) = Px$ and
#
# $$x_{i+1} = A x_i + \sqrt{\varepsilon}\, \xi_i, \qquad A = I - \tfrac{\varepsilon}{2} P .$$
#
# The chain stays Gaussian. Its mean obeys $m_{i+1} = A m_i$, so the stationary mean is $0$: **the mean
# is unbiased**. Its covariance obeys $S_{i+1} = A S_i A^\top + \varepsilon I$, which converges when every
# eigenvalue of $A$ lies in $(-1, 1)$, that is when $\varepsilon \lambda < 4$ for every eigenvalue
# $\lambda$ of $P$ (here $\varepsilon < 4 \cdot 0.2 = 0.8$; above it the chains explode). The limit
# solves $S = A S A + \varepsilon I$. Every matrix involved is a function of $P$, so they commute, and
#
# $$S_\varepsilon = \varepsilon\,(I - A^2)^{-1}
#   = \varepsilon \big(\varepsilon P - \tfrac{\varepsilon^2}{4} P^2\big)^{-1}
#   = \Big(P - \frac{\varepsilon}{4} P^2\Big)^{-1}
#   = \Sigma\,\Big(I - \frac{\varepsilon}{4}\Sigma^{-1}\Big)^{-1}.$$
#
# Expanding in $\varepsilon$: $S_\varepsilon = \Sigma + \frac{\varepsilon}{4} I + O(\varepsilon^2)$. ULA
# inflates the covariance by $\varepsilon/4$ in every direction, a first-order bias as promised. In
# relative terms the damage is worst where the target is narrowest: along an eigenvector of $\Sigma$
# with variance $\sigma^2 = 1/\lambda$, ULA's variance is $\sigma^2 / (1 - \varepsilon\lambda/4)$.
#
# To measure the error in the target's own units we whiten: $\Sigma^{-1/2} S \Sigma^{-1/2} = I$ exactly
# when $S = \Sigma$, and
#
# $$e(S) = \big\lVert \Sigma^{-1/2} S\, \Sigma^{-1/2} - I \big\rVert_F, \qquad
#   e(S_\varepsilon) = \Big(\sum_k \Big(\frac{\varepsilon\lambda_k/4}{1 - \varepsilon\lambda_k/4}\Big)^2\Big)^{1/2}
#   \approx \frac{\varepsilon}{4}\lVert P \rVert_F .$$
#
# ### (b) The bias shrinks with the step, as predicted
#
# We run ULA at five step sizes, each for the same diffusion time, and compare the measured error of the
# sample covariance with $e(S_\varepsilon)$.

# %%
def whitened_error(cov):
    """|| Sigma^{-1/2} cov Sigma^{-1/2} - I ||_F: 0 for the exact covariance."""
    return torch.linalg.norm(Sigma_inv_sqrt @ cov @ Sigma_inv_sqrt - torch.eye(2)).item()


def ula_covariance(step_size):
    """The exact stationary covariance of ULA on the Gaussian energy: (P - eps P^2 / 4)^{-1}."""
    return torch.linalg.inv(precision - step_size / 4 * precision @ precision)


step_sizes = [0.4, 0.2, 0.1, 0.05, 0.025]
ula = {}
for eps in step_sizes:
    pooled = pooled_small if eps == small_eps else run_chains(eps)[0]  # the step of (a) is already done
    ula[eps] = {"measured": whitened_error(torch.cov(pooled.T)), "theory": whitened_error(ula_covariance(eps)),
                "mean": pooled.mean(dim=0).norm().item(), "pooled": pooled if eps == step_sizes[0] else None}
print(" step   error (measured)   error (theory)   |mean|")
for eps, r in ula.items():
    print(f"{eps:5.3f}   {r['measured']:14.4f}   {r['theory']:14.4f}   {r['mean']:.4f}")

# %%
measured = [ula[eps]["measured"] for eps in step_sizes]  # largest step first
gap = max(abs(r["measured"] - r["theory"]) for r in ula.values())
print(f"largest |measured - theory| = {gap:.4f}; error ratio largest/smallest step = {measured[0] / measured[-1]:.1f}")
assert all(a > b for a, b in zip(measured, measured[1:])), f"the error should fall with the step: {measured}"
assert measured[0] > 10 * measured[-1], measured
assert gap < ebmlib.pick(0.02, 0.03), gap

# %% [markdown]
# The measured errors fall with the step and sit on the closed-form curve, within the statistical noise
# of a finite number of chains. On a log-log plot the curve has slope 1 for small steps, the signature
# of an $O(\varepsilon)$ bias; it bends upwards near the stability limit $\varepsilon = 0.8$, where the
# steep direction's variance $\sigma^2/(1 - \varepsilon\lambda_{\max}/4)$ blows up.

# %%
fine = torch.logspace(math.log10(0.015), math.log10(0.6), 60)
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.loglog(fine, [whitened_error(ula_covariance(e.item())) for e in fine], color="k", lw=1.2,
          label=r"theory $e(S_\varepsilon)$")
ax.loglog(fine, fine / 4 * torch.linalg.norm(precision), color="k", ls=":", lw=1,
          label=r"first order $\frac{\varepsilon}{4}\|P\|_F$")
ax.loglog(step_sizes, measured, "o", color="C0", label="ULA, measured")
ax.set_xlabel(r"step size $\varepsilon$"), ax.set_ylabel("whitened covariance error")
ax.minorticks_off(), ax.set_xticks(step_sizes, [f"{e:g}" for e in step_sizes])
ax.set_title("ULA's bias against the step size")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Removing the bias: MALA
#
# The bias comes from treating the discretised step as if it were exact. The
# **Metropolis-adjusted Langevin algorithm** (MALA) treats it instead as a *proposal* and corrects it.
# From the current state $x$, propose
#
# $$x' = x - \frac{\varepsilon}{2}\nabla E(x) + \sqrt{\varepsilon}\,\xi, \qquad
#   q(x' \mid x) = \mathcal N\Big(x';\; x - \frac{\varepsilon}{2}\nabla E(x),\; \varepsilon I\Big),$$
#
# and accept it with probability
#
# $$\alpha(x, x') = \min\left(1,\;
#   \frac{e^{-E(x')}\, q(x \mid x')}{e^{-E(x)}\, q(x' \mid x)}\right), \qquad
#   \log q(a \mid b) = -\frac{\big\lVert a - b + \frac{\varepsilon}{2}\nabla E(b)\big\rVert^2}{2\varepsilon} + \text{const};$$
#
# otherwise stay at $x$. The ratio compares how likely the move is to be proposed forwards and
# backwards; weighting it by $e^{-E}$ makes the chain satisfy detailed balance,
# $p(x)\,q(x'\mid x)\,\alpha(x, x') = p(x')\,q(x\mid x')\,\alpha(x', x)$, so $p$ is exactly invariant for
# *every* step size. Once more $Z$ cancels. The price is rejections: a rejected proposal leaves the chain
# where it was, so at a large step MALA mixes more slowly than its step suggests. The cost per step is
# about the same as ULA's, since the gradient at $x'$ is needed for the next proposal anyway. In
# `ebmlib.langevin` this is the `mala=True` branch shown above.
#
# ### (c) MALA at a large step
#
# At $\varepsilon = 0.4$, half the stability limit, ULA's covariance is far off (it doubles the variance
# across the ellipse). We run MALA at the same step sizes as before.

# %%
mala = {}
for eps in step_sizes:
    pooled, res = run_chains(eps, mala=True)
    mala[eps] = {"measured": whitened_error(torch.cov(pooled.T)), "accept": res.accept_rate, "pooled": pooled}
print(" step   ULA error   MALA error   MALA acceptance")
for eps in step_sizes:
    print(f"{eps:5.3f}   {ula[eps]['measured']:9.4f}   {mala[eps]['measured']:10.4f}   {mala[eps]['accept']:.3f}")

large = step_sizes[0]
ratio = ula[large]["measured"] / mala[large]["measured"]
print(f"at step {large}: ULA error / MALA error = {ratio:.0f}, MALA acceptance rate {mala[large]['accept']:.3f} "
      f"({mala[large]['accept']:.0%})")
assert ratio > ebmlib.pick(50, 20), (mala[large], ula[large])
assert max(mala[eps]["measured"] for eps in step_sizes) < ebmlib.pick(0.02, 0.04)
assert 0.75 < mala[large]["accept"] < 0.82, mala[large]["accept"]

# %% [markdown]
# MALA's error no longer depends on the step: what is left is the statistical noise of the estimate,
# the same at every step size. Its acceptance rate falls as the step grows (about four proposals in five
# survive at $\varepsilon = 0.4$), which is the whole cost of exactness here. The picture at the large
# step: ULA's cloud is visibly too wide across the ellipse; MALA's matches the exact 95% contour.

# %%
theta = torch.linspace(0, 2 * math.pi, 200)
circle = torch.stack([theta.cos(), theta.sin()], dim=1) * math.sqrt(-2 * math.log(0.05))
ellipse = circle @ torch.linalg.cholesky(Sigma).T  # the exact 95% contour of N(0, Sigma)
ellipse_ula = circle @ torch.linalg.cholesky(ula_covariance(large)).T

fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
for ax, x, title in [(axes[0], ula[large]["pooled"], f"ULA, step {large}"),
                     (axes[1], mala[large]["pooled"], f"MALA, step {large}")]:
    plot.scatter(ax, x[torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:4000]], title,
                 lim=3.2, s=3, alpha=0.4)
    ax.plot(ellipse[:, 0], ellipse[:, 1], color="k", lw=1.5, label="exact 95% contour")
axes[0].plot(ellipse_ula[:, 0], ellipse_ula[:, 1], color="C3", lw=1.2, ls="--", label=r"ULA's $S_\varepsilon$")
axes[0].legend(loc="upper left", fontsize=8)
axes[2].loglog(step_sizes, [ula[e]["measured"] for e in step_sizes], "o-", label="ULA")
axes[2].loglog(step_sizes, [mala[e]["measured"] for e in step_sizes], "s-", label="MALA")
axes[2].set_xlabel(r"step size $\varepsilon$"), axes[2].set_ylabel("whitened covariance error")
axes[2].minorticks_off(), axes[2].set_xticks(step_sizes, [f"{e:g}" for e in step_sizes])
axes[2].set_title("bias: ULA against MALA"), axes[2].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A target with two modes
#
# Gaussians are where the algebra is easy; energies in practice have several wells. Take a mixture of
# two Gaussians with weights $0.3$ (left) and $0.7$ (right), means $(\mp 1.5, 0)$ and standard deviation
# $0.55$:
#
# $$E(x) = -\log\Big(0.3\, e^{-\lVert x - \mu_1\rVert^2/2s^2} + 0.7\, e^{-\lVert x - \mu_2\rVert^2/2s^2}\Big).$$
#
# We start every chain in the *lighter* left mode. A correct sampler must carry 70% of them across the
# energy barrier between the modes; the exact probability of the right half-plane is
# $0.3\,\Phi(-1.5/s) + 0.7\,\Phi(1.5/s)$. The crossing is a rare event for each chain, so it takes far
# longer than settling inside one mode does: this is the mixing problem that dominates MCMC in practice.

# %%
means = torch.tensor([[-1.5, 0.0], [1.5, 0.0]])
log_weights = torch.tensor([0.3, 0.7]).log()
s = 0.55


def two_mode_energy(x):
    """Minus the log of the (unnormalised) two-component mixture, for x of shape (N, 2)."""
    return -torch.logsumexp(log_weights - ((x[:, None, :] - means) ** 2).sum(-1) / (2 * s ** 2), dim=1)


def Phi(t):
    return 0.5 * (1 + math.erf(t / math.sqrt(2)))


exact_right = 0.3 * Phi(-1.5 / s) + 0.7 * Phi(1.5 / s)
g = torch.Generator().manual_seed(2)
n_mix, mix_steps, mix_eps = ebmlib.pick(5_000, 1_500), 2_000, 0.1
x0 = means[0] + s * torch.randn(n_mix, 2, generator=g)
mix = ebmlib.langevin(two_mode_energy, x0, steps=mix_steps, step_size=mix_eps, snapshot_every=25, generator=g)
steps_seen = [k for k, _ in mix.snapshots]
right = torch.tensor([(x[:, 0] > 0).float().mean().item() for _, x in mix.snapshots])
late = right[len(right) * 2 // 3:].mean().item()
print(f"share of chains in the right half-plane: exact {exact_right:.4f}, "
      f"ULA (mean over the last third of the run) {late:.4f}")
assert abs(late - exact_right) < 0.03, (late, exact_right)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
cs = plot.contour(axes[0], lambda x: two_mode_energy(x).clamp(max=9), lim=3.2, levels=25, cmap="Blues_r")
plot.scatter(axes[0], mix.z[:2000], f"final states, step {mix_eps}", lim=3.2, color="C3", s=3, alpha=0.5)
plot.chain_paths(axes[0], mix.snapshots[:21], chains=3, color="w")
fig.colorbar(cs, ax=axes[0], shrink=0.8, label="E(x)")
axes[1].plot(steps_seen, right.numpy(), label="ULA chains")
axes[1].axhline(exact_right, color="k", ls="--", lw=1, label="exact")
axes[1].set_xlabel("Langevin step"), axes[1].set_ylabel("share with $x_1 > 0$")
axes[1].set_title("chains started in the left mode"), axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The chains settle inside the left mode within a few dozen steps, but balancing the two modes takes
# around a thousand: each chain has to climb the barrier by chance. The height of the barrier grows
# with the distance between the modes and with $1/s^2$, and the waiting time grows exponentially with
# the height, so for well-separated modes Langevin dynamics alone can fail to mix in any practical time.
# Later chapters meet this when they run Langevin chains on a GAN's energy, and start the chains from
# the generator so that they begin close to every mode.
#
# ## Learning an energy from data: maximum likelihood
#
# So far the energy was given. In practice we have samples $x_1, \dots, x_n$ of an unknown distribution
# $p_\text{data}$ and want an energy $E_\theta$, a network with weights $\theta$, whose model
# $p_\theta = e^{-E_\theta}/Z_\theta$ is close to it. Maximum likelihood asks for the $\theta$ that maximises
# the mean log-likelihood of the data,
#
# $$\ell(\theta) = \mathbb E_{p_\text{data}}\big[\log p_\theta(x)\big] = -\mathbb E_{p_\text{data}}\big[E_\theta(x)\big] - \log Z_\theta ,$$
#
# which is the same as minimising $\mathrm{KL}(p_\text{data} \,\|\, p_\theta)$, since the two differ by the
# entropy of the data, a constant. The first term is an average over the data. The second is the integral
# we cannot compute, but its *gradient* is an expectation:
#
# $$\nabla_\theta \log Z_\theta = \frac{1}{Z_\theta} \int \nabla_\theta\, e^{-E_\theta(x)}\, dx
#   = -\int \nabla_\theta E_\theta(x)\, \frac{e^{-E_\theta(x)}}{Z_\theta}\, dx = -\mathbb E_{p_\theta}\big[\nabla_\theta E_\theta\big],$$
#
# so that
#
# $$\boxed{\,\nabla_\theta\, \ell(\theta) = -\mathbb E_{p_\text{data}}\big[\nabla_\theta E_\theta\big] + \mathbb E_{p_\theta}\big[\nabla_\theta E_\theta\big].\,}$$
#
# Ascending it lowers the energy where the data are and raises it where the model's own samples are. It
# stops when the two expectations agree, that is when no feature $\nabla_\theta E_\theta$ tells the model's
# samples from the data. $Z_\theta$ is never computed; what the gradient needs instead is samples of
# $p_\theta$, which is what the Langevin sampler above provides. In code one descends the surrogate
#
# $$L(\theta) = \frac1n \sum_{i} E_\theta(x_i) - \frac1m \sum_{j} E_\theta(\tilde x_j), \qquad \tilde x_j \sim p_\theta,$$
#
# with the model samples $\tilde x_j$ held fixed (no gradient flows back through the sampler): its gradient is
# minus the estimate of $\nabla_\theta \ell$. $L$ is not the log-likelihood, and its value says little (near
# the optimum it hovers around zero, whatever the fit); only its gradient matters.
#
# Every update changes $\theta$ and with it $p_\theta$, and running chains to equilibrium for each update
# would cost far more than the update itself. Three shortcuts are in use. Each runs $k$ Langevin steps per
# update; they differ in where the chains start.
#
# - **Short-run chains from noise** (Nijkamp et al. 2019): from fresh noise at every update. With $k$ small
#   the samples are not those of $p_\theta$, so what training fits is the $k$-step sampler, not necessarily
#   the density $e^{-E_\theta}/Z_\theta$.
# - **Contrastive divergence**, CD-$k$ (Hinton 2002): from the data batch. When $p_\theta = p_\text{data}$ the
#   chains start in equilibrium and stay there, so the estimate is unbiased at the optimum; away from it,
#   chains that travel only a short way from the data never visit regions far from them, where the energy
#   may have fallen too low.
# - **Persistent chains**, PCD (Tieleman 2008): from where the previous update's chains stopped. Since
#   $\theta$ moves little per update the chains stay close to equilibrium: one long MCMC run spread over
#   training.
#
# `ebmlib.ebm.train_ebm` implements the three (`init="noise" | "data" | "persistent"`) with
# `ebmlib.langevin` as the sampler and Adam on the surrogate, which is this function:

# %%
print(inspect.getsource(ebmlib.ebm.contrastive_loss))

# %% [markdown]
# ### An energy for the two-mode mixture
#
# The data are samples of the two-mode mixture of the previous section (weights $0.3$ and $0.7$). The energy
# is an `ebmlib.nets.MLPDiscriminator` with two hidden layers of 64 SiLU units, read as $E_\theta(x)$ = its
# output; the smooth activation gives Langevin a smooth gradient. Each update takes a batch of 256 data
# points and 256 model samples made by $k = 10$ Langevin steps of $\varepsilon = 0.1$; Adam's learning rate
# falls linearly to zero over the updates.
#
# Because $x$ is two-dimensional we can judge the learned model without any sampler: on a grid, $Z_\theta$ is
# a quadrature, so $p_\theta$ is known, and with it the mass it puts in the right half-plane (the data's is the
# exact share computed above) and $\mathrm{KL}(p_\text{data} \,\|\, p_\theta)$. We train each of the three
# kinds of chains on three seeds.

# %%
def sample_two_modes(n, generator=None):
    """n points of the two-mode mixture above, shape (n, 2)."""
    idx = torch.multinomial(log_weights.exp(), n, replacement=True, generator=generator)
    return means[idx] + s * torch.randn(n, 2, generator=generator)


axis = torch.linspace(-4.5, 4.5, 181)  # the mixture's mass outside the square is negligible
quad = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
cell = ((axis[1] - axis[0]) ** 2).item()
log_p_exact = (-two_mode_energy(quad) - math.log(2 * math.pi * s ** 2)).double()  # Z = 2 pi s^2 for this energy


def judge(E):
    """The learned model p_theta = e^{-E}/Z on the grid: (its mass in x_1 > 0, KL(p_data || p_theta)), by quadrature."""
    with torch.no_grad():
        e = E(quad).double()
    log_p = -e - torch.logsumexp(-e, 0) - math.log(cell)
    right_mass = (log_p.exp() * cell)[quad[:, 0] > 0].sum().item()
    kl = (log_p_exact.exp() * (log_p_exact - log_p)).sum().item() * cell
    return right_mass, kl


EBM = dict(steps=ebmlib.pick(800, 300), batch_size=256, langevin_steps=10, step_size=0.1, noise_std=2.0, lr=2e-3,
           lr_decay=True, progress=False)
ebm_seeds = ebmlib.pick([0, 1, 2], [0])
inits = {"persistent": "persistent chains (PCD)", "data": "from the data (CD-10)", "noise": "from noise (short-run)"}
models, fits = {}, {init: [] for init in inits}
for init in inits:
    for seed in ebm_seeds:
        torch.manual_seed(seed)
        E = ebmlib.nets.MLPDiscriminator(in_dim=2, hidden=64, depth=2, activation="silu")
        hist = ebmlib.ebm.train_ebm(E, sample_two_modes, init=init, seed=seed, **EBM)
        # the sampler that trained E: k steps from 4000 fresh noise or data points, or PCD's own 256 chains
        g = torch.Generator().manual_seed(100 + seed)
        if init == "persistent":
            own = hist["samples"]
        else:
            x0 = EBM["noise_std"] * torch.randn(4000, 2, generator=g) if init == "noise" else sample_two_modes(4000, g)
            own = ebmlib.ebm.model_samples(E, x0, langevin_steps=EBM["langevin_steps"], step_size=EBM["step_size"],
                                           generator=g)
        right_mass, kl = judge(E)
        fits[init].append({"right": right_mass, "kl": kl, "own_right": (own[:, 0] > 0).float().mean().item(),
                           "seconds": hist["seconds"]})
        if seed == ebm_seeds[0]:
            models[init] = (E, hist)
print(f"{EBM['steps']} updates of {EBM['langevin_steps']} Langevin steps each; exact mass of x_1 > 0: {exact_right:.4f}")
print(f"{'chains':26s} {'mass of x_1 > 0 under p_theta':>31s} {'KL(p_data || p_theta)':>23s} "
      f"{'its own samples in x_1 > 0':>28s}")
for init, name in inits.items():
    cols = [", ".join(f"{f[key]:.3f}" for f in fits[init]) for key in ("right", "kl", "own_right")]
    print(f"{name:26s} {cols[0]:>31s} {cols[1]:>23s} {cols[2]:>28s}")
print(f"seconds per model: {sum(f['seconds'] for r in fits.values() for f in r) / (len(inits) * len(ebm_seeds)):.1f}")

# %% [markdown]
# Persistent chains and contrastive divergence both learn the density: the mass of each mode comes out within
# a few hundredths of the data's on every seed, and the KL divergence is a hundredth of a nat or so. (The
# last column counts the samples each method trained with: PCD's 256 persistent chains at the end of
# training, and 4000 fresh runs of $k$ steps from data or noise for the other two.) The short-run chains
# from noise learn something else. Their $k$-step samples put about the right share of points in each
# mode, which is all that training asked of them, but the energy itself is no density model of the data:
# normalised on the grid it puts nearly all its mass in the right half-plane, and its KL divergence is
# measured in nats. Ten steps of $\varepsilon = 0.1$ are a diffusion time of $0.5$, a distance of about one
# unit: where a chain from noise ends is set mostly by where it started and by the slopes it meets on the
# way, not by the relative depth of the two wells. So training can get the share of samples right with wells of any depth, and nothing ties
# $e^{-E_\theta}$ to the data (Nijkamp et al. call such short-run energies non-convergent). The energies at
# the two mode centres, printed below, show what happened here.
#
# Now the learned PCD model itself, sampled the slow and correct way: long Langevin runs from broad noise
# on the learned energy, long enough to balance the modes (the previous section needed about a thousand
# steps of this size for the exact energy). We average the share in the right half-plane over the second
# half of 4000 steps and compare it with the mass the quadrature gives the same model.

# %%
E_pcd, hist_pcd = models["persistent"]
ebmlib.nets.frozen(E_pcd)
g = torch.Generator().manual_seed(7)
n_long = ebmlib.pick(4000, 1000)
long_run = ebmlib.langevin(E_pcd, 2.0 * torch.randn(n_long, 2, generator=g), steps=4000, step_size=0.1,
                           snapshot_every=50, generator=g)
right_long = torch.tensor([(x[:, 0] > 0).float().mean().item() for k, x in long_run.snapshots if k > 2000]).mean().item()
right_se = math.sqrt(exact_right * (1 - exact_right) / n_long)
pcd_right, pcd_kl = fits["persistent"][0]["right"], fits["persistent"][0]["kl"]
print(f"long-run samples of the PCD model in x_1 > 0: {right_long:.4f} (its quadrature mass {pcd_right:.4f}, "
      f"the data's {exact_right:.4f}; standard error of {n_long} independent samples {right_se:.4f})")

E_short = models["noise"][0]
with torch.no_grad():
    e_left, e_right = E_short(means).tolist()
    p_left, p_right = E_pcd(means).tolist()
print(f"energy at the mode centres (left, right): short-run {e_left:.2f}, {e_right:.2f}; PCD {p_left:.2f}, "
      f"{p_right:.2f}; exact difference {two_mode_energy(means).diff().item():+.2f}")
gap = torch.tensor(hist_pcd["loss"])  # mean E(data) - mean E(model samples), every 10 updates
quarter = max(1, len(gap) // 4)
gap_first, gap_last = gap[:quarter].mean().item(), gap[-quarter:].mean().item()
gap_se = (gap[-quarter:].std() / math.sqrt(quarter)).item()  # the logged values are 10 updates apart
print(f"energy gap E(data) - E(model samples): first quarter of training {gap_first:+.3f}, "
      f"last quarter {gap_last:+.3f} (standard error {gap_se:.3f})")

# %%
fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
e_exact = lambda x: two_mode_energy(x).clamp(max=9)  # noqa: E731
plot.contour(axes[0], e_exact, lim=3.2, levels=25, cmap="Blues_r")
plot.scatter(axes[0], sample_two_modes(1500, torch.Generator().manual_seed(3)), "data, over the exact energy",
             lim=3.2, color="k", s=3, alpha=0.5)
for ax, (init, title) in zip(axes[1:3], [("persistent", "PCD: learned energy, long-run samples"),
                                         ("noise", "short-run: learned energy, its 10-step samples")]):
    E_i = models[init][0]
    with torch.no_grad():  # contours of E minus its minimum in the window, clipped like the exact ones
        shift = E_i(quad[(quad.abs() <= 3.2).all(dim=1)]).min()
    plot.contour(ax, lambda x, E_i=E_i, shift=shift: (E_i(x).detach() - shift).clamp(max=9), lim=3.2, levels=25,
                 cmap="Blues_r")
    pts = long_run.z if init == "persistent" else models[init][1]["samples"]
    plot.scatter(ax, pts[:1500], title, lim=3.2, color="C3", s=3, alpha=0.5)
steps_logged = hist_pcd["step"]
axes[3].plot(steps_logged, hist_pcd["energy_data"], label="mean E on data")
axes[3].plot(steps_logged, hist_pcd["energy_model"], label="mean E on model samples")
axes[3].set_xlabel("update"), axes[3].set_title("PCD: energies during training"), axes[3].legend()
plt.tight_layout()
plt.show()

# %%
learned = [f for init in ("persistent", "data") for f in fits[init]]
worst_mass = max(abs(f["right"] - exact_right) for f in learned)
worst_kl = max(f["kl"] for f in learned)
print(f"PCD and CD over the seeds: largest |mass - exact| {worst_mass:.3f}, largest KL {worst_kl:.4f}")
short_err = max(abs(f["own_right"] - exact_right) for f in fits["noise"])
print(f"short-run from noise: smallest KL {min(f['kl'] for f in fits['noise']):.2f}, largest |share of its "
      f"k-step samples - exact| {short_err:.3f}")
assert worst_mass < ebmlib.pick(0.05, 0.1), worst_mass
assert worst_kl < ebmlib.pick(0.03, 0.1), worst_kl
assert min(f["kl"] for f in fits["noise"]) > 1.0, fits["noise"]
assert short_err < 0.03, fits["noise"]  # about three standard errors of 4000 samples
assert abs(right_long - pcd_right) < 3 * right_se, (right_long, pcd_right)
assert gap_first < -0.2 and abs(gap_last) < 0.5 * abs(gap_first), gap  # the gap closes
if not SMOKE:  # the smoke run's 300 updates leave it closing, not closed
    assert abs(gap_last) < 3 * gap_se, (gap_last, gap_se)

# %% [markdown]
# Long Langevin runs on the learned PCD energy put the share of samples in the right half-plane that the
# quadrature says the model has, within the noise of a finite sample: the model is a density, and Langevin
# samples it. During training the energy on the data starts well below the
# energy on the model's samples (the model puts mass where the data are not, and the update pushes it
# back); the gap closes as the chains come to look like the data, and in the last quarter its mean is
# within its standard error of zero. In the figure, the PCD energy has the two wells of the exact one; the
# short-run energy has a deep well at the right mode only, and its ten-step samples sit at the left mode
# although the energy there is high, because ten steps are too few to leave it.
#
# ### The bridge to GANs
#
# Every update above spends almost all its time making model samples: ten Langevin steps, each a forward and
# a backward pass through the energy, for one gradient step on $\theta$. A GAN replaces that sampler by a
# network. Its discriminator's update has the same two-term shape, raise the score on data and lower it on
# "model" samples, but the model samples come from the generator, one forward pass each, and the generator
# is trained to produce the samples that the sampler would otherwise have to find. Chapter 06 makes this
# precise for the WGAN: the critic's update is the maximum-likelihood gradient of the model $p_g e^{D}/Z_0$
# with the generator's samples standing in for the model's, exact to first order in $D$. Chapter 07's EBGAN
# trains an energy to be low on data and high on the generator's contrastive samples, with a margin in place
# of the normalising constant. Chapters 03-05 go the other way: starting from a trained GAN they read
# $p_g e^{d}$ as an energy-based model, and chapter 05 runs this chapter's Langevin sampler on it.
#
# ## Summary
#
# - An energy-based model is $p(x) = e^{-E(x)}/Z$. The constant $Z$ is out of reach in high dimensions,
#   but ratios of densities and the score $-\nabla E$ do not need it.
# - The Langevin diffusion $dX = -\nabla E\,dt + \sqrt 2\, dW$ has $e^{-E}/Z$ as its stationary density.
#   Its Euler-Maruyama discretisation is ULA, $x_{i+1} = x_i - \frac{\varepsilon}{2}\nabla E(x_i) +
#   \sqrt{\varepsilon}\,\xi_i$, which is what `ebmlib.langevin` runs.
# - ULA is biased by $O(\varepsilon)$. For a Gaussian target the bias is exact: the stationary covariance
#   is $(P - \frac{\varepsilon}{4}P^2)^{-1} = \Sigma + \frac{\varepsilon}{4}I + O(\varepsilon^2)$, the mean is
#   unbiased, and steps must satisfy $\varepsilon < 4/\lambda_{\max}(P)$. The experiment matches this
#   formula at every step size tried.
# - MALA uses the ULA step as a proposal in a Metropolis-Hastings test and is exact at any stable step;
#   at $\varepsilon = 0.4$ it cut the covariance error by two orders of magnitude while accepting
#   78% of its proposals.
# - Getting the stationary distribution right is only half of MCMC: chains also have to reach it, and
#   crossing energy barriers between modes is slow.
# - Maximum likelihood for $p_\theta = e^{-E_\theta}/Z_\theta$ has the gradient
#   $-\mathbb E_{p_\text{data}}[\nabla_\theta E_\theta] + \mathbb E_{p_\theta}[\nabla_\theta E_\theta]$: the
#   $\log Z_\theta$ term becomes an expectation under the model, estimated with Langevin samples
#   (`ebmlib.ebm.train_ebm`). Persistent chains and contrastive divergence learned the two-mode mixture's
#   density, mode weights included; short-run chains from noise learned a sampler whose 10-step samples
#   look right over an energy that is no density model of the data.
# - The model samples are the cost of every update. A GAN's discriminator update has the same two terms,
#   with the generator's samples in place of the sampler's (chapters 06 and 07).
#
# ## Exercises
#
# 1. Call `ebmlib.langevin` on `gaussian_energy` with $\varepsilon = 0.85$, just above the stability
#    limit, for 1000 steps. What happens, and after how many steps? Predict the step from the growth
#    factor $|1 - \varepsilon\lambda_{\max}/2|$ per step. Does MALA (`mala=True`) survive the same
#    step, and what is its acceptance rate?
# 2. Change $\Sigma$ to have correlation $0.95$. Predict, from $S_\varepsilon$, how the stability limit and
#    the bias at $\varepsilon = 0.1$ change, then check with the chains. How many steps does the burn-in
#    need now, and why?
# 3. The `noise_scale` argument of `ebmlib.langevin` multiplies the noise. Repeat the Gaussian computation
#    with noise scale $\tau < 1$: show that ULA's stationary covariance becomes
#    $\tau^2 (P - \frac{\varepsilon}{4}P^2)^{-1}$, a "colder" version of the target, and verify it.
# 4. Move the two modes of the mixture to $(\mp 2.5, 0)$, so that the barrier between them is high, and
#    train the energy with CD-10 and with persistent chains. Which one gets the mass of the right half-plane
#    wrong, and why? (How far does a CD chain travel in 10 steps of $\varepsilon = 0.1$, in diffusion time
#    and in distance?) Does the long-run Langevin check still work on the learned energy?
