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
# removes that bias with a Metropolis-Hastings test (**MALA**). Later chapters run the same sampler on
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
# takes about $1/(\varepsilon\lambda_{\min})$ steps).
#
# The helper below only arranges the experiment: it starts `N_CHAINS` chains from $\mathcal N(0, I)$
# (deliberately not the target), calls `ebmlib.langevin` for a fixed diffusion time, discards a
# burn-in, and pools the later states of all chains. The run length is measured in units of
# $\varepsilon \times$ steps so that every step size gets the same amount of mixing.

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
BURN, WINDOW = 15.0, ebmlib.pick(45.0, 30.0)  # in units of step_size * steps


def run_chains(step_size, mala=False, seed=0):
    """Chains on the Gaussian energy: returns (states pooled after the burn-in, ebmlib's LangevinResult)."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(N_CHAINS, 2, generator=g)
    steps, burn = round((BURN + WINDOW) / step_size), round(BURN / step_size)
    every = max(1, (steps - burn) // 100)
    result = ebmlib.langevin(gaussian_energy, x0, steps=steps, step_size=step_size, mala=mala,
                             snapshot_every=every, generator=g)
    pooled = torch.cat([x for step, x in result.snapshots if step > burn])
    return pooled, result


# %% [markdown]
# ### (a) At a small step, ULA recovers the moments
#
# We run ULA with $\varepsilon = 0.025$ and compare the sample mean and covariance with the exact ones.

# %%
small_eps = 0.025
pooled_small, result = run_chains(small_eps)
mean_hat, cov_hat = pooled_small.mean(dim=0), torch.cov(pooled_small.T)
mean_err = mean_hat.norm().item()
cov_err = (cov_hat - Sigma).abs().max().item()
print(f"{N_CHAINS} chains, {len(result.energy_trace)} steps of size {small_eps}")
print("sample mean      ", mean_hat.numpy().round(4), f"  |error| = {mean_err:.4f}")
print("sample covariance", [[f"{v:.4f}" for v in row] for row in cov_hat.tolist()], f"  largest entry error = {cov_err:.4f}")
assert mean_err < 0.05, mean_err
assert cov_err < 0.05, cov_err

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
print(f"at step {large}: ULA error / MALA error = {ratio:.0f}, MALA acceptance rate {mala[large]['accept']:.3f}")
assert mala[large]["measured"] < ula[large]["measured"] / 10, (mala[large], ula[large])
assert max(mala[eps]["measured"] for eps in step_sizes) < 0.05
assert 0.5 < mala[large]["accept"] < 1.0

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
#   at $\varepsilon = 0.4$ it cut the covariance error by more than an order of magnitude while accepting
#   about 80% of its proposals.
# - Getting the stationary distribution right is only half of MCMC: chains also have to reach it, and
#   crossing energy barriers between modes is slow.
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
# 4. Move the two modes of the mixture to $(\mp 2, 0)$. Measure how many steps the share in the right
#    half-plane needs to come within 0.05 of its exact value, and compare with the $(\mp1.5, 0)$ case.
#    Does a larger step help, and at what price?
