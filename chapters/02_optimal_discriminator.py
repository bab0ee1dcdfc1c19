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
# # 02 · The optimal discriminator
#
# A GAN trains two networks against each other. The generator $G$ turns noise into samples with some
# distribution $p_g$; the discriminator $D(x) \in (0, 1)$ is trained to tell real samples, from
# $p_\text{data}$, from generated ones. After training, the usual recipe throws the discriminator away.
#
# This chapter asks what the discriminator has learned, and the answer is the reason the rest of the
# course exists. For a fixed generator the best discriminator is an explicit function of the two
# densities, and its logit is their **log density ratio**
#
# $$d^*(x) = \log \frac{p_\text{data}(x)}{p_g(x)} .$$
#
# Read as an energy, this says $p_\text{data}(x) = p_g(x)\, e^{d^*(x)}$: the discriminator holds exactly
# the correction that turns the generator's distribution into the data distribution. Chapters 03-05
# use it to reweight and resample a trained generator. Here we derive the optimum, then check it by
# training a discriminator on one-dimensional mixtures whose densities we know exactly.

# %%
# %config InlineBackend.figure_formats = ['png']
import inspect
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import ebmlib
from ebmlib import losses, nets, plot, toy, train

plot.use_style()
SMOKE = ebmlib.smoke()
torch.manual_seed(0)
# Small networks and batches: one thread is faster than several fighting over the cores.
torch.set_num_threads(1)
print("smoke mode" if SMOKE else "full mode")

# %% [markdown]
# ## The derivation
#
# The discriminator's objective, for a fixed $p_g$, is
#
# $$V(D) = \mathbb E_{x \sim p_\text{data}}\big[\log D(x)\big] + \mathbb E_{x \sim p_g}\big[\log\big(1 - D(x)\big)\big]
#        = \int \Big( p_\text{data}(x) \log D(x) + p_g(x) \log\big(1 - D(x)\big) \Big)\, dx .$$
#
# Nothing couples the values of $D$ at different points, so we can maximise the integrand separately
# at every $x$ (a discriminator that can represent any function is assumed here; a network only
# approximates one). With $a = p_\text{data}(x)$, $b = p_g(x)$ and $t = D(x)$, the integrand is
#
# $$f(t) = a \log t + b \log(1 - t), \qquad f'(t) = \frac{a}{t} - \frac{b}{1 - t}, \qquad
#   f''(t) = -\frac{a}{t^2} - \frac{b}{(1 - t)^2} < 0 .$$
#
# $f$ is strictly concave on $(0, 1)$ when $a + b > 0$, and $f'(t) = 0$ at $t = a/(a+b)$. Hence
#
# $$\boxed{\,D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}\,}$$
#
# (where $a + b = 0$ neither distribution ever shows the discriminator a sample, and $D$ is left
# undetermined). Writing $D = \sigma(d)$ with the logistic function $\sigma(d) = 1/(1 + e^{-d})$, the
# logit is $d = \log\frac{D}{1 - D}$, and
#
# $$d^*(x) = \log \frac{D^*(x)}{1 - D^*(x)} = \log \frac{p_\text{data}(x)}{p_g(x)} .$$
#
# **The value at the optimum.** Put $\bar p = \tfrac12(p_\text{data} + p_g)$, the even mixture. Substituting $D^*$,
#
# $$V(D^*) = \mathbb E_{p_\text{data}} \log \frac{p_\text{data}}{2\bar p} + \mathbb E_{p_g} \log\frac{p_g}{2\bar p}
#          = -\log 4 + \mathrm{KL}(p_\text{data} \,\|\, \bar p) + \mathrm{KL}(p_g \,\|\, \bar p)
#          = -\log 4 + 2\, \mathrm{JSD}(p_\text{data}, p_g),$$
#
# with the Jensen-Shannon divergence $\mathrm{JSD} \in [0, \log 2]$. `ebmlib` trains the discriminator by
# *minimising* the logistic loss on its logit, which is $-V$:
#
# $$L(d) = \mathbb E_{p_\text{data}}\big[\operatorname{softplus}(-d)\big] + \mathbb E_{p_g}\big[\operatorname{softplus}(d)\big],
#   \qquad \min_d L = L(d^*) = \log 4 - 2\,\mathrm{JSD}(p_\text{data}, p_g),$$
#
# since $-\log\sigma(d) = \operatorname{softplus}(-d)$ and $-\log(1 - \sigma(d)) = \operatorname{softplus}(d)$.
# The minimum is $\log 4$ when the two distributions are equal (nothing to tell apart) and $0$ when
# their supports are disjoint.
#
# **How far from the optimum.** Using $p_\text{data} = (p_\text{data} + p_g) D^*$ and
# $p_g = (p_\text{data} + p_g)(1 - D^*)$ inside $L$, the excess loss of any $d$ is
#
# $$L(d) - L(d^*) = \int \big(p_\text{data} + p_g\big)\, \mathrm{KL}\big(\mathrm{Bern}(D^*) \,\|\, \mathrm{Bern}(D)\big)\, dx
#   \;\approx\; \frac12 \int \frac{p_\text{data}\, p_g}{p_\text{data} + p_g}\, \big(d - d^*\big)^2\, dx ,$$
#
# the approximation holding for small logit errors (the Bernoulli KL is $\tfrac12 D^*(1-D^*)(d - d^*)^2$
# to second order). The weight $w = p_\text{data}\,p_g/(p_\text{data} + p_g)$ is small wherever *either*
# density is small. That is the catch in this chapter's result: the loss pins the logit down only where
# both distributions put mass, and elsewhere a trained discriminator's logit says little about the true
# ratio.
#
# The library's loss and training loop, for reference:

# %%
print(inspect.getsource(losses.NonSaturating.discriminator))
print(inspect.getsource(train.train_discriminator))

# %% [markdown]
# ## Experiment: a two-mode data distribution and a broad generator
#
# The data are a mixture of $\mathcal N(-2, 0.5^2)$ and $\mathcal N(1, 0.8^2)$ with weights $0.35$ and
# $0.65$. The "generator" is a single broad Gaussian $\mathcal N(-0.5, 1.6^2)$, like a GAN early in
# training that has found the right region but not the modes. Both are `ebmlib.toy.Mixture1D` objects,
# with exact `log_prob` and `sample`. We train `ebmlib.nets.MLPDiscriminator` (three hidden layers of
# 128 units) with the logistic loss on fresh samples from both at every step, so the only errors are
# those of the network and of stochastic optimisation, not of a finite data set.

# %%
p_data = toy.Mixture1D(means=[-2.0, 1.0], stds=[0.5, 0.8], weights=[0.35, 0.65])
p_g = toy.Mixture1D(means=[-0.5], stds=[1.6])
steps = ebmlib.pick(3_000, 500)

torch.manual_seed(0)
D = nets.MLPDiscriminator(in_dim=1, hidden=128, depth=3)
history = train.train_discriminator(D, p_data.sample, p_g.sample, steps=steps, lr_decay=True, seed=0,
                                    progress=False)
print(f"{steps} steps of batch 256 in {history['seconds']:.1f} s")

# %% [markdown]
# To compare with the theory we evaluate everything on a fine grid and integrate numerically
# (trapezoid rule, in double precision). The grid is wide enough that both densities are negligible at
# its ends, so the integrals are exact to many digits.

# %%
grid = torch.linspace(-12, 12, 24_001, dtype=torch.float64)


def on_grid(d, p_real, p_fake):
    """Everything this chapter compares, on the grid: densities, the exact and the trained logit."""
    with torch.no_grad():
        logit = d(grid.float()[:, None]).double()
    lp_real, lp_fake = p_real.log_prob(grid.float()).double(), p_fake.log_prob(grid.float()).double()
    return {"logit": logit, "exact": lp_real - lp_fake, "p_real": lp_real.exp(), "p_fake": lp_fake.exp(),
            "log_mix": torch.logaddexp(lp_real, lp_fake) - math.log(2), "lp_real": lp_real, "lp_fake": lp_fake}


def integrate(f):
    return torch.trapezoid(f, grid).item()


def logistic_loss(g, logit):
    """L(d) = E_real softplus(-d) + E_fake softplus(d), by numerical integration."""
    return integrate(g["p_real"] * F.softplus(-logit) + g["p_fake"] * F.softplus(logit))


def jsd(g):
    return 0.5 * integrate(g["p_real"] * (g["lp_real"] - g["log_mix"])) + \
        0.5 * integrate(g["p_fake"] * (g["lp_fake"] - g["log_mix"]))


A = on_grid(D, p_data, p_g)
mix = A["log_mix"].exp()  # (p_data + p_g) / 2, a probability density
mae = integrate(mix * (A["logit"] - A["exact"]).abs())
central = (A["p_real"] > 0.01) & (A["p_fake"] > 0.01)  # both densities non-negligible
max_central = (A["logit"] - A["exact"])[central].abs().max().item()
print(f"mean |d - d*| weighted by (p_data + p_g)/2: {mae:.4f}")
print(f"largest |d - d*| where both densities exceed 0.01 "
      f"(x in [{grid[central].min():.2f}, {grid[central].max():.2f}]): {max_central:.3f}")
assert mae < ebmlib.pick(0.08, 0.15), mae  # the short smoke run (500 steps) is held to a looser bound

# %% [markdown]
# The loss tells the same story on a scale we know exactly: the trained logit's loss must lie above the
# minimum $\log 4 - 2\,\mathrm{JSD}$, and close to it.

# %%
JSD = jsd(A)
L_min = math.log(4) - 2 * JSD
L_exact, L_trained = logistic_loss(A, A["exact"]), logistic_loss(A, A["logit"])
D_star, D_hat = torch.sigmoid(A["exact"]), torch.sigmoid(A["logit"])
bern_kl = D_star * (D_star / D_hat).log() + (1 - D_star) * ((1 - D_star) / (1 - D_hat)).log()
gap_kl = integrate(2 * mix * bern_kl)
gap_quadratic = 0.5 * integrate(A["p_real"] * A["p_fake"] / (2 * mix) * (A["logit"] - A["exact"]) ** 2)
print(f"JSD(p_data, p_g) = {JSD:.5f}")
print(f"log 4 - 2 JSD = {L_min:.6f};  L(d*) = {L_exact:.6f};  L(trained d) = {L_trained:.6f}")
print(f"excess loss {L_trained - L_min:.6f}: as an integral of Bernoulli KLs {gap_kl:.6f}, "
      f"quadratic approximation {gap_quadratic:.6f}")
assert abs(L_exact - L_min) < 1e-6, "an identity: this checks the quadrature"
assert L_min - 1e-6 < L_trained < L_min + ebmlib.pick(5e-4, 2e-3), (L_trained, L_min)
assert abs(gap_kl - (L_trained - L_min)) < 1e-6, "an identity: this checks the quadrature"

# %% [markdown]
# Three checks in one cell. Two are identities, checked only to the accuracy of the quadrature: the exact
# log ratio attains $\log 4 - 2\,\mathrm{JSD}$ (the algebra of the derivation), and the excess loss equals the
# weighted Bernoulli KL. The third is the claim: the trained discriminator's loss lies just above the minimum,
# with an excess of about two ten-thousandths of a nat in the full run, which the quadratic formula
# approximates closely. The training curve (the loss of single mini-batches, so it is noisy;
# the thick line averages ten of them) settles onto the minimum:

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
x = grid.numpy()
axes[0].plot(x, A["p_real"].numpy(), label=r"$p_\mathrm{data}$")
axes[0].plot(x, A["p_fake"].numpy(), label=r"$p_g$")
axes[0].set_xlim(-5, 4), axes[0].set_title("the two densities"), axes[0].legend()

axes[1].plot(x, A["exact"].numpy(), color="k", lw=1.5, label=r"exact $\log p_\mathrm{data}/p_g$")
axes[1].plot(x, A["logit"].numpy(), color="C3", ls="--", lw=1.5, label="trained logit $d(x)$")
lo, hi = grid[central].min().item(), grid[central].max().item()
for edge in (-6, lo), (hi, 6):
    axes[1].axvspan(*edge, color="0.85", zorder=0)
axes[1].set_xlim(-6, 6), axes[1].set_ylim(-8, 3)
axes[1].set_title("logit against the log density ratio"), axes[1].legend(loc="lower center")

logged = torch.tensor(history["loss"])
smooth = torch.stack([logged[max(0, i - 9):i + 1].mean() for i in range(len(logged))])
axes[2].plot(history["step"], logged.numpy(), color="C0", lw=0.8, alpha=0.4, label="mini-batch loss")
axes[2].plot(history["step"], smooth.numpy(), color="C0", lw=1.8, label="running mean of 10")
axes[2].axhline(L_min, color="k", ls="--", lw=1, label=r"$\log 4 - 2\,\mathrm{JSD}$")
axes[2].set_xlabel("step"), axes[2].set_title("training loss"), axes[2].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# In the middle panel the grey bands are where one of the densities is below $0.01$. Inside
# the white region the trained logit follows the log ratio closely: positive at the two data modes,
# where the data are denser than the generator, negative in between and in the tails. Out in the grey
# the exact ratio keeps falling like a parabola (the generator's tails are heavier than the data's),
# while the network, made of LeakyReLU pieces, continues roughly along a straight line.
#
# ## Where the ratio is unreliable
#
# The excess-loss formula says the logit is constrained with weight $w = p_\text{data}\,p_g/(p_\text{data} + p_g)$,
# which is small where *either* density is small, even if the other one is large. The case that matters
# for GANs is a generator that misses part of the data: then $p_g$ is tiny on a region where
# $p_\text{data}$ is not, $d^*$ is large there, and it is exactly where the correction of later
# chapters needs it. Take the same data and a generator $\mathcal N(0.8, 1)$ that covers only the right
# mode.

# %%
p_g_narrow = toy.Mixture1D(means=[0.8], stds=[1.0])
torch.manual_seed(1)
D2 = nets.MLPDiscriminator(in_dim=1, hidden=128, depth=3)
train.train_discriminator(D2, p_data.sample, p_g_narrow.sample, steps=steps, lr_decay=True, seed=1,
                          progress=False)
B = on_grid(D2, p_data, p_g_narrow)
err_B = (B["logit"] - B["exact"]).abs()
w = B["p_real"] * B["p_fake"] / (B["p_real"] + B["p_fake"]).clamp_min(1e-300)
well_covered = integrate(w * err_B) / integrate(w)
uncovered = (B["p_real"] > 0.005) & (B["p_fake"] < 1e-3)  # data present, generator (almost) absent
poorly_covered = err_B[uncovered].mean().item()
print(f"mean |d - d*| weighted by w = p_data p_g / (p_data + p_g): {well_covered:.4f}")
print(f"mean |d - d*| where p_data > 0.005 but p_g < 0.001 "
      f"(x in [{grid[uncovered].min():.2f}, {grid[uncovered].max():.2f}]): {poorly_covered:.3f}")
assert well_covered < ebmlib.pick(0.03, 0.06), well_covered
assert poorly_covered > 1.0 and poorly_covered > 30 * well_covered, (poorly_covered, well_covered)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(x, B["p_real"].numpy(), label=r"$p_\mathrm{data}$")
axes[0].plot(x, B["p_fake"].numpy(), label=r"$p_g$ (misses the left mode)")
axes[0].plot(x, w.numpy(), color="k", ls=":", label=r"weight $w$")
axes[0].set_xlim(-5, 4), axes[0].set_title("densities and the weight of the loss"), axes[0].legend()
axes[1].plot(x, B["exact"].numpy(), color="k", lw=1.5, label=r"exact $\log p_\mathrm{data}/p_g$")
axes[1].plot(x, B["logit"].numpy(), color="C3", ls="--", lw=1.5, label="trained logit $d(x)$")
axes[1].fill_between(x, -6, 14, where=uncovered.numpy(), color="C1", alpha=0.15, lw=0,
                     label=r"data but (almost) no $p_g$")
axes[1].set_xlim(-5, 4), axes[1].set_ylim(-6, 14)
axes[1].set_title("the logit where the generator is absent"), axes[1].legend(loc="upper right")
plt.tight_layout()
plt.show()

# %% [markdown]
# Where both distributions have mass the fit is as good as before. On the outer flank of the missed
# mode, where the data are present but the generator almost never samples, the logit and the true ratio
# part ways by a nat and more: there the loss is already near zero for any large logit
# ($\operatorname{softplus}(-d) \approx e^{-d}$), the few generator samples that would pull it back are
# too rare, and the network's value is set by how it extrapolates. So a discriminator's logit is a
# trustworthy log ratio on the generator's support, which is what reweighting generator samples needs
# (chapter 03), but its size where the generator puts no mass is an artefact of the network, and any
# method that relies on $\max_x d(x)$, such as the bound in rejection sampling (chapter 04), has to allow
# for that.
#
# ## Summary
#
# - For a fixed generator, the discriminator maximising $\mathbb E_{p_\text{data}}\log D + \mathbb E_{p_g}\log(1 - D)$
#   is $D^* = p_\text{data}/(p_\text{data} + p_g)$; its logit is the log density ratio
#   $d^* = \log p_\text{data}/p_g$, so $p_\text{data} = p_g\, e^{d^*}$.
# - The minimum of the logistic loss is $\log 4 - 2\,\mathrm{JSD}(p_\text{data}, p_g)$, and the excess
#   loss of any logit is an integral of Bernoulli KL divergences with weight about
#   $p_\text{data}\,p_g/(p_\text{data} + p_g)$.
# - A trained `MLPDiscriminator` on 1-D mixtures matches the exact log ratio to a few hundredths of a
#   nat on average, and its loss comes within a fraction of a milli-nat of the minimum.
# - The logit is reliable only where both densities have mass. Where the generator is absent the true
#   ratio is large and the trained logit is set by extrapolation.
#
# ## Exercises
#
# 1. Train with the hinge loss instead. `ebmlib.train.train_discriminator` always uses the logistic
#    loss, so write a short Adam loop around `ebmlib.losses.Hinge().discriminator`. Is the hinge
#    discriminator's output still the log ratio? Show that the pointwise minimiser of
#    $p_\text{data}[1 - t]^+ + p_g[1 + t]^+$ is $t = \operatorname{sign}(p_\text{data} - p_g)$, and check
#    it numerically.
# 2. Shrink the discriminator (`hidden=8, depth=1`) and repeat the first experiment. Which part of the
#    log ratio does it miss, and how much of the excess loss does that cost?
# 3. Move the generator's mean from $-0.5$ to $-5$ in steps and plot the trained discriminator's loss
#    against $\log 4 - 2\,\mathrm{JSD}$. What happens to the loss, and to the gradient a generator would
#    receive, as the supports separate?
# 4. Train the first discriminator on a *fixed* set of 500 samples from each density (sample once, then
#    draw mini-batches from the stored tensors). Compare the logit error with the fresh-sample version:
#    where does over-fitting show up first?
