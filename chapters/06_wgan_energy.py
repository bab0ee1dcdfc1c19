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
# # 06 · WGAN as an energy-based model
#
# Chapters 02-05 leaned on one fact: the logistic discriminator's logit converges to
# $\log p_\text{data}/p_g$, so $p_g e^{d}$ is the data distribution up to a constant. The Wasserstein GAN
# (Arjovsky et al. 2017) trains its discriminator, the *critic*, on a different objective: maximise
# $\mathbb E_{p_\text{data}} D - \mathbb E_{p_g} D$ over functions whose slope is at most 1. Its optimum
# is not a log density ratio but a *transport potential*, and its value is a distance between the two
# distributions, the Wasserstein-1 or earth mover's distance.
#
# This chapter asks two questions. First, does a neural critic really compute $W_1$? In one dimension
# $W_1$ has a closed form, so we can check the critic's estimate against the exact number, with the two
# usual ways of keeping a critic Lipschitz: a gradient penalty and spectral normalisation. Second, can
# the critic be read as an energy, as the DDLS paper proposes, and drive Langevin sampling in latent
# space like the logistic discriminator of chapter 05? The paper's argument is that the critic's update
# is an approximate maximum-likelihood step for the energy-based model $p_g e^{D}/Z_0$, the step of
# chapter 01 with the generator's samples standing in for the model's. We derive it, measure where the
# approximation holds, and find that the answer turns on a detail the energy reading hides: the
# critic's *scale*.

# %%
# %config InlineBackend.figure_formats = ['png']
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import ebmlib
from ebmlib import losses, plot, toy
from ebmlib import wasserstein as W
from ebmlib.nets import MLPDiscriminator, MLPGenerator
from ebmlib.recipes import table1, wgan

plot.use_style()
SMOKE = ebmlib.smoke()
torch.set_num_threads(ebmlib.pick(2, 1))  # a smoke run shares the cores with a second test worker
print("smoke mode" if SMOKE else "full mode")

# %% [markdown]
# ## The Kantorovich-Rubinstein duality
#
# The Wasserstein-1 distance between distributions $p$ and $q$ is the cheapest way to move the mass of
# $q$ onto $p$ when moving a unit of mass by a distance $\delta$ costs $\delta$:
#
# $$W_1(p, q) = \inf_{\pi \in \Pi(p, q)} \mathbb E_{(x, y) \sim \pi} \lVert x - y \rVert,$$
#
# where $\Pi(p, q)$ is the set of couplings, joint distributions with marginals $p$ and $q$. The
# **Kantorovich-Rubinstein duality** trades the infimum over couplings for a supremum over potentials:
#
# $$W_1(p, q) = \sup_{\lVert f \rVert_L \le 1} \; \mathbb E_{p} f(x) - \mathbb E_{q} f(y).$$
#
# *One direction is one line.* For any coupling $\pi$ and any 1-Lipschitz $f$,
#
# $$\mathbb E_p f - \mathbb E_q f = \mathbb E_{\pi}\,[f(x) - f(y)] \le \mathbb E_\pi \lVert x - y \rVert,$$
#
# so every potential's gap is a lower bound on every coupling's cost: sup $\le$ inf. The other direction
# (no gap between them) is the content of the theorem; in general it needs convex duality, but in one
# dimension we can exhibit a coupling and a potential with the same value.
#
# *The coupling.* Let $F_p, F_q$ be the distribution functions and $U \sim \mathcal U(0, 1)$. The pair
# $(F_p^{-1}(U), F_q^{-1}(U))$ has marginals $p$ and $q$ (the quantile coupling: it matches the $u$-th
# quantile of one with the $u$-th quantile of the other). Its cost is
#
# $$\int_0^1 \lvert F_p^{-1}(u) - F_q^{-1}(u)\rvert\, du = \int_{-\infty}^{\infty} \lvert F_p(x) - F_q(x)\rvert\, dx,$$
#
# the area between the two distribution functions, measured once along the $u$ axis and once along the
# $x$ axis.
#
# *The potential.* Integrate by parts around any point $x_0$ (for laws with finite means),
# $\mathbb E_p f = f(x_0) + \int_{x_0}^{\infty} f'(t)\,(1 - F_p(t))\,dt - \int_{-\infty}^{x_0} f'(t)\, F_p(t)\,dt$,
# and subtract the same for $q$:
#
# $$\mathbb E_p f - \mathbb E_q f = \int f'(t)\, \big(F_q(t) - F_p(t)\big)\, dt \;\le\; \int \lvert F_q - F_p \rvert\, dt,$$
#
# since $\lvert f' \rvert \le 1$, with equality for $f'(t) = \operatorname{sign}(F_q(t) - F_p(t))$. So
#
# $$f^*(x) = \int_{x_0}^{x} \operatorname{sign}\big(F_q(t) - F_p(t)\big)\, dt$$
#
# attains the coupling's cost: the supremum equals the infimum, and both equal the area between the
# distribution functions. The optimal critic climbs with slope $+1$ where $q$ has more mass to the left
# than $p$ (mass must move right, towards higher $f$) and falls with slope $-1$ elsewhere. It is defined
# up to a constant, and nothing in it looks like $\log p/q$: it has slope $\pm 1$ even where the two
# densities agree almost exactly.
#
# `ebmlib.wasserstein` computes both sides exactly: `w1_exact` integrates $\lvert F_p - F_q \rvert$ for two
# `Mixture1D` laws on a fine grid, `w1_quantiles` integrates the quantile form
# for any two quantile functions, `w1_empirical` couples two equal-size samples by sorting, and
# `kantorovich_potential` integrates the sign above. A first check on Gaussians, where
# $W_1(\mathcal N(\mu_1, \sigma^2), \mathcal N(\mu_2, \sigma^2)) = \lvert \mu_1 - \mu_2 \rvert$ and
# $W_1(\mathcal N(0, \sigma_1^2), \mathcal N(0, \sigma_2^2)) = \lvert\sigma_1 - \sigma_2\rvert \sqrt{2/\pi}$
# (the quantiles are $\sigma\,\Phi^{-1}(u)$, and $\mathbb E\lvert Z \rvert = \sqrt{2/\pi}$). Both sides of
# each line are the same number computed two ways: the check is of the integrals' accuracy, $10^{-8}$
# for the grid integral of $\lvert F_p - F_q \rvert$ and $10^{-6}$ for the quantile form.

# %%
normal_quantile = lambda mean, std: (lambda u: mean + std * torch.special.ndtri(u))  # noqa: E731
checks = [  # (name, value, closed form, accuracy of the integral)
    ("N(0,1) vs N(3,1)", W.w1_exact(toy.Mixture1D([0.0], [1.0]), toy.Mixture1D([3.0], [1.0])), 3.0, 1e-8),
    ("N(0,1) vs N(0,4)", W.w1_exact(toy.Mixture1D([0.0], [1.0]), toy.Mixture1D([0.0], [2.0])), math.sqrt(2 / math.pi),
     1e-8),
    ("quantile form, N(0,1) vs N(0,4)", W.w1_quantiles(normal_quantile(0, 1), normal_quantile(0, 2)),
     math.sqrt(2 / math.pi), 1e-6),
]
for name, value, exact, accuracy in checks:
    print(f"{name:32s} {value:.7f}   closed form {exact:.7f}   |difference| {abs(value - exact):.1e}")
    assert abs(value - exact) < accuracy, "an identity: the integral should reproduce the closed form"

# %% [markdown]
# ## A critic in one dimension
#
# We take the pair of chapter 02: a two-component data mixture and a broad one-component "generator".
# Both are `Mixture1D` objects, so the exact $W_1$ and the optimal potential are at hand.

# %%
p_data = toy.Mixture1D(means=[-2.0, 1.0], stds=[0.5, 0.8], weights=[0.35, 0.65])
p_g = toy.Mixture1D(means=[-0.5], stds=[1.6])
w1 = W.w1_exact(p_data, p_g)
gen = torch.Generator().manual_seed(0)
n_emp = ebmlib.pick(200_000, 20_000)
w1_emp = W.w1_empirical(p_data.sample(n_emp, gen), p_g.sample(n_emp, gen))
print(f"exact W1 = {w1:.4f};  empirical W1 of two samples of {n_emp:,}: {w1_emp:.4f}")
assert abs(w1_emp - w1) < ebmlib.pick(0.005, 0.015), (w1_emp, w1)

# %% [markdown]
# A neural critic must be kept (roughly) 1-Lipschitz, or the supremum is infinite: scale any $f$ with a
# positive gap by 10 and the gap grows tenfold. Two ways are in common use.
#
# - **Gradient penalty** (WGAN-GP, Gulrajani et al. 2017). Add $\lambda\, \mathbb E_{\hat x} (\lVert \nabla D(\hat x)\rVert - 1)^2$
#   to the critic's loss, at random interpolates $\hat x$ of real and fake points. The optimal potential
#   has slope of norm 1 along the transport lines, which is what the penalty asks. The *one-sided*
#   variant $\lambda\, \mathbb E (\max(0, \lVert \nabla D \rVert - 1))^2$ (Petzka et al. 2018) only
#   forbids slopes above 1. Being soft, both let the slope overshoot a little: for two shifted Gaussians
#   the critic $f(x) = s x$ scores $s\,W_1$ and pays $\lambda (s - 1)^2$, so it settles at
#   $s = 1 + W_1/(2\lambda)$ and reports $W_1 + W_1^2/(2\lambda)$ (the library's tests check this value).
# - **Spectral normalisation** (Miyato et al. 2018). Divide each layer's weight matrix by its largest
#   singular value (estimated by one power iteration per training step). With 1-Lipschitz activations
#   the whole network is then at most 1-Lipschitz: a hard constraint, but a loose one, because the
#   product of the layers' norms bounds the network's slope without being attained. Norm-constrained
#   networks with ReLU-type activations lose slope wherever the target turns (Anil et al. 2019 prove that
#   norm-constrained ReLU networks cannot represent even $\lvert x \rvert$), so an SN critic tends to
#   *underestimate* $W_1$.
#
# `train_critic` trains a critic alone between two fixed samplers with either, and reports its estimate
# $\mathbb E_p D - \mathbb E_q D$ on fresh samples. We use the one-sided penalty; the two-sided one has a
# trap in one dimension that we meet below.

# %%
steps_1d = ebmlib.pick(1500, 400)
critics, estimates = {}, {}
setups = {"gradient penalty": (losses.WassersteinGP(10.0, one_sided=True), False),
          "spectral norm": ("wgan", True)}
for name, (loss, sn) in setups.items():
    torch.manual_seed(0)
    critics[name] = MLPDiscriminator(in_dim=1, hidden=64, depth=2, spectral_norm=sn)
    h = W.train_critic(critics[name], p_data.sample, p_g.sample, steps=steps_1d, loss=loss, progress=False,
                       n_eval=ebmlib.pick(200_000, 50_000))
    estimates[name] = h["w1"]
    print(f"{name:17s} W1 estimate {h['w1']:.4f}  ({h['w1'] / w1:6.1%} of the exact {w1:.4f}; {h['seconds']:.1f} s)")

# %% [markdown]
# The tolerances we hold them to: the penalised critic within 5% of the exact value (the overshoot
# formula above, $W_1/(2\lambda)$ with $\lambda = 10$, would predict the overshoot printed below, but it
# holds for a linear optimal potential, and this one is not; exercise 1 asks how far it carries); the SN
# critic between 0.8 and 1.02 times it, since spectral normalisation can only err downwards (the 0.02 is
# the sampling noise of the evaluation and the power iteration's approximation).

# %%
print(f"overshoot predicted for a linear potential, W1 / (2 lambda): {w1 / 20:+.1%}; "
      f"measured: {estimates['gradient penalty'] / w1 - 1:+.1%}")
tol_gp = 0.05 if not SMOKE else 0.2
assert abs(estimates["gradient penalty"] - w1) < tol_gp * w1, estimates
assert (0.8 if not SMOKE else 0.7) * w1 < estimates["spectral norm"] < 1.02 * w1, estimates

# %% [markdown]
# Now the potentials themselves. A critic is defined up to a constant, so we shift each curve to mean
# zero under the average of the two distributions, $\tfrac12(p_\text{data} + p_g)$, before comparing
# it with the exact $f^*$.

# %%
x = torch.linspace(-5.0, 4.0, 901)
f_exact = W.kantorovich_potential(p_data, p_g, x).float()
with torch.no_grad():
    curves = {"exact potential $f^*$": f_exact,
              **{f"critic, {name}": critics[name](x[:, None]) for name in critics}}
weight = 0.5 * (p_data.log_prob(x).exp() + p_g.log_prob(x).exp())
weight = weight / weight.sum()
centred = {k: v - (weight * v).sum() for k, v in curves.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].plot(x, p_data.log_prob(x).exp(), label="$p_\\mathrm{data}$")
axes[0].plot(x, p_g.log_prob(x).exp(), label="$p_g$")
axes[0].plot(x, p_g.cdf(x) - p_data.cdf(x), "k:", label="$F_g - F_\\mathrm{data}$")
axes[0].axhline(0, color="grey", lw=0.5)
axes[0].set_title("densities, and the sign that sets the slope of $f^*$"), axes[0].legend()
for (k, v), style in zip(centred.items(), ["k-", "C2--", "C3-."]):
    axes[1].plot(x, v, style, label=k)
axes[1].set_title("critic vs the exact Kantorovich potential (shifted to mean 0)"), axes[1].legend()
plt.tight_layout()
plt.show()
gap_cdf = p_g.cdf(x.double()) - p_data.cdf(x.double())
turns = x[1:][gap_cdf[1:] * gap_cdf[:-1] < 0]
print("F_g - F_data changes sign at x =", ", ".join(f"{t:.2f}" for t in turns.tolist()))
for k, v in centred.items():
    if k.startswith("critic"):
        print(f"{k}: mean distance from f* under (p_data + p_g) / 2: "
              f"{(weight * (v - centred['exact potential $f^*$']).abs()).sum():.3f}")

# %% [markdown]
# The exact potential is a zigzag of slopes $\pm 1$, turning where $F_g = F_\text{data}$. The penalised
# critic reproduces it except on the short stretch between the first two turns, $-2.00$ and $-1.18$,, where $F_g$ and
# $F_\text{data}$ nearly agree, so that any slope there earns almost nothing; the critic stays flat
# (the one-sided penalty allows any slope up to 1), which shifts the whole left branch down. The SN
# critic also stays flat beyond the turn at $x = 2.16$, where it would have to swing from slope $+1$ to
# $-1$: there go most of its missing percent of $W_1$. Far out in the tails, where neither distribution
# puts samples or interpolates, nothing constrains either critic.
#
# **The two-sided penalty's trap.** In one dimension the two-sided penalty
# $\lambda (\lvert D' \rvert - 1)^2$ has two wells, slope $+1$ and slope $-1$, separated by a barrier of
# height $\lambda$ at slope 0. A critic that starts, or early on drifts, towards the wrong sign over most
# of the interpolates finds its slope pinned at $-1$ there: flipping it costs more penalty than the
# Wasserstein term gains. Its estimate then comes out near $-W_1$ or somewhere between. In higher
# dimensions the gradient can rotate around the origin instead of passing through zero, and the trap
# disappears; the one-sided penalty has no barrier at all. A few seeds of each:

# %%
trap_seeds = ebmlib.pick(range(4), range(1))
for name, loss in [("two-sided", losses.WassersteinGP(10.0)), ("one-sided", losses.WassersteinGP(10.0, one_sided=True))]:
    values = []
    for seed in trap_seeds:
        torch.manual_seed(seed)
        D = MLPDiscriminator(in_dim=1, hidden=64, depth=2)
        values.append(W.train_critic(D, p_data.sample, p_g.sample, steps=steps_1d, loss=loss, seed=seed,
                                     progress=False, n_eval=50_000)["w1"])
    print(f"{name} penalty, seeds {list(trap_seeds)}: W1 estimates {[round(v, 3) for v in values]}  (exact {w1:.3f})")

# %% [markdown]
# ## The critic's update as approximate maximum likelihood
#
# Why should a critic be an energy at all? The DDLS paper (Che et al. 2020) answers with the likelihood
# argument of chapter 01. Given the generator's density $p_g$ and a function $D$, chapter 03's energy
# $E(x) = -\log p_g(x) - D(x)$ defines the model
#
# $$p_D(x) = \frac{p_g(x)\, e^{D(x)}}{Z_0}, \qquad Z_0 = \mathbb E_{p_g}\big[e^{D}\big].$$
#
# Hold $p_g$ fixed and fit $D = D_\phi$, a network with weights $\phi$, by maximum likelihood. The mean
# log-likelihood of the data is
#
# $$\ell(\phi) = \mathbb E_{p_\text{data}}[\log p_g] + \mathbb E_{p_\text{data}}[D_\phi] - \log \mathbb E_{p_g}\big[e^{D_\phi}\big].$$
#
# The first term does not depend on $\phi$, and the other two are the Donsker-Varadhan value $\mathcal J(D)$ of
# chapter 03, so maximising the likelihood is minimising $\mathrm{KL}(p_\text{data} \Vert p_D)$. Differentiating
# $\log Z_0$ as chapter 01 differentiated $\log Z_\theta$,
#
# $$\nabla_\phi \log Z_0 = \frac{\mathbb E_{p_g}\big[e^{D}\, \nabla_\phi D\big]}{\mathbb E_{p_g}\big[e^{D}\big]} = \mathbb E_{p_D}[\nabla_\phi D],
#   \qquad
#   \nabla_\phi \ell = \mathbb E_{p_\text{data}}[\nabla_\phi D] - \mathbb E_{p_D}[\nabla_\phi D].$$
#
# This is chapter 01's gradient with $-E_\theta$ replaced by $D$: raise $D$ on the data, lower it on samples of
# the model. Those samples are the expensive part: a Langevin run on $p_D$, DDLS itself, for every update.
# The critic's update in a WGAN is the gradient of $\mathbb E_{p_\text{data}} D - \mathbb E_{p_g} D$,
#
# $$\mathbb E_{p_\text{data}}[\nabla_\phi D] - \mathbb E_{p_g}[\nabla_\phi D],$$
#
# the same expression with the generator's samples in place of the model's. The swap is exact when $D$ is
# constant where the generator puts mass (then $p_D = p_g$), and good to first order when $D$ varies little
# there. With chapter 03's expansion $e^{D}/Z_0 = 1 + (D - \mathbb E_{p_g} D) + O(D^2)$,
#
# $$\mathbb E_{p_D}[\nabla_\phi D] = \mathbb E_{p_g}[\nabla_\phi D] + \operatorname{Cov}_{p_g}\big(D, \nabla_\phi D\big) + \dots,
#   \qquad
#   \nabla_\phi \ell = \nabla_\phi\big(\mathbb E_{p_\text{data}} D - \mathbb E_{p_g} D\big) - \operatorname{Cov}_{p_g}\big(D, \nabla_\phi D\big) + \dots$$
#
# For a critic of scale $s$, $D = s f$, the critic's update is of order $s$ and the covariance of order $s^2$,
# so the two directions make an angle of order $s$ and their cosine is $1 - O(s^2)$. Expanding the objective
# itself shows what the critic's objective leaves out:
#
# $$\ell(s f) - \text{const} = s\,\big(\mathbb E_{p_\text{data}} f - \mathbb E_{p_g} f\big) - \frac{s^2}{2}\operatorname{Var}_{p_g}(f) + O(s^3).$$
#
# The critic's objective is the linear term alone. It grows without bound with $s$, while the likelihood
# turns over at a best scale $s^*$, where $\mathbb E_{p_\text{data}} f = \mathbb E_{p_{sf}} f$: the
# $-\log Z_0$ term holds it back. In a WGAN the Lipschitz constraint takes that term's place. It bounds how
# much $D$ can vary over the data, keeps the objective finite, and is what the argument relies on to keep
# $D$ in the regime where the swap is good. Whether a slope of at most 1 is small enough is a question of
# numbers.
#
# In one dimension we can measure it. Take the penalised critic trained above as $f$, set $D = s f$, and
# compute both gradients, with respect to all of the critic's weights, by quadrature against the exact
# densities: each expectation $\mathbb E_q[\nabla_\phi f]$ is the gradient of one weighted sum of $f$ over
# a grid.

# %%
f_net = critics["gradient penalty"]
xg = torch.linspace(-9.0, 8.0, 8001, dtype=torch.float64)  # both densities are negligible outside
w_data = torch.softmax(p_data.log_prob(xg).double(), 0)  # quadrature weights of p_data on the grid
log_pg_grid = p_g.log_prob(xg).double()
f_grid = f_net(xg.float()[:, None])  # keeps the graph to the critic's weights
f_val = f_grid.detach().double()


def expected_grad(weights):
    """sum_i weights_i grad_phi f(x_i) over the grid, flattened: E_q[grad_phi f] when the weights are q's."""
    grads = torch.autograd.grad((weights.float() * f_grid).sum(), list(f_net.parameters()), retain_graph=True)
    return torch.cat([g.reshape(-1) for g in grads]).double()


def tilted(s):
    """Quadrature weights of p_g e^{s f} / Z0 on the grid."""
    return torch.softmax(log_pg_grid + s * f_val, 0)


w_gen = tilted(0.0)
grad_data = expected_grad(w_data)
grad_critic = grad_data - expected_grad(w_gen)  # the critic's update, per unit of s
f_centred = f_val - (w_gen * f_val).sum()
cov = expected_grad(w_gen * f_centred)  # Cov_pg(f, grad_phi f)
std_g = (w_gen * f_centred ** 2).sum().sqrt().item()

s_values = torch.logspace(-2, 1, 31, dtype=torch.float64)
cosine, first_order = [], []
for s in s_values.tolist():
    grad_ml = grad_data - expected_grad(tilted(s))  # the likelihood gradient, per unit of s
    cosine.append(F.cosine_similarity(grad_ml, grad_critic, dim=0).item())
    # the share of the difference between the two that the first-order term -s Cov_pg(f, grad f) leaves
    first_order.append(((grad_ml - (grad_critic - s * cov)).norm() / (grad_ml - grad_critic).norm()).item())
cosine, first_order = torch.tensor(cosine, dtype=torch.float64), torch.tensor(first_order, dtype=torch.float64)

fine_s = torch.linspace(0.01, 2.0, 1991, dtype=torch.float64)
dl_ds = torch.stack([(w_data * f_val).sum() - (tilted(s) * f_val).sum() for s in fine_s.tolist()])
s_star = fine_s[(dl_ds > 0).sum()].item()  # dl/ds falls through 0 once: the likelihood's best scale
s_99 = s_values[cosine >= 0.99].max().item()
lo, hi = s_values[cosine > 0].max().item(), s_values[cosine <= 0].min().item()
for _ in range(30):  # bisect for the scale at which the cosine crosses zero
    mid = (lo * hi) ** 0.5
    lo, hi = (mid, hi) if F.cosine_similarity(grad_data - expected_grad(tilted(mid)), grad_critic, dim=0) > 0 else (lo, mid)
s_zero = lo
small = s_values <= 0.031
design = torch.stack([s_values[small].log(), torch.ones(int(small.sum()), dtype=torch.float64)], 1)
slope = torch.linalg.lstsq(design, (1 - cosine[small]).log()[:, None]).solution[0].item()
residual_per_s = (first_order / s_values)[s_values <= 0.1].max().item()
cos_trained = cosine[s_values == 1.0].item()
print(" scale s   cos(likelihood gradient, critic update)   first-order residual")
for i in range(0, len(s_values), 3):
    print(f"{s_values[i]:8.3f}   {cosine[i]:38.5f}   {first_order[i]:20.4f}")
print(f"slope of log(1 - cos) against log s for s <= 0.03: {slope:.2f} (the expansion says 2)")
print(f"largest first-order residual / s for s <= 0.1: {residual_per_s:.2f}")
print(f"cos >= 0.99 up to s = {s_99:.3f} (s times the std of f under p_g, {std_g:.2f}: {s_99 * std_g:.2f})")
print(f"cos crosses zero at s = {s_zero:.3f};  the likelihood's best scale s* = {s_star:.3f}")
print(f"the critic as trained (s = 1): cos = {cos_trained:.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.semilogx(s_values, cosine, "o-", ms=3, label="cos(likelihood gradient, critic update)")
ax.axvline(s_star, color="C1", ls="--", label=f"the likelihood's best scale $s^*$ = {s_star:.2f}")
ax.axvline(1.0, color="grey", ls=":", label="the critic as trained, $s$ = 1")
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("scale $s$ of $D = s f$"), ax.set_title("the critic's update against the likelihood's")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
assert 1.8 < slope < 2.4, slope
assert residual_per_s < 0.5, residual_per_s
assert cos_trained < -0.9, cos_trained

# %% [markdown]
# At small scales the two updates agree as the expansion says: $1 - \cos$ falls like $s^2$, and the
# first-order term $-s\operatorname{Cov}_{p_g}(f, \nabla_\phi f)$ accounts for their difference up to a
# residual of order $s$. The agreement (a cosine of at least 0.99) lasts while $s f$ varies by about a
# tenth of a nat over the generator's samples. Beyond that the likelihood's gradient turns away, and the
# cosine crosses zero close to $s^*$. There is a reason for that. The last layer of $f$ is linear, so scaling
# its weights scales $D$; along that direction in weight space the critic's update is the gap
# $\mathbb E_{p_\text{data}} f - \mathbb E_{p_g} f > 0$ at every scale, while the likelihood's is $d\ell/ds$,
# which changes sign at $s^*$. The critic always asks to be steeper, and the likelihood agrees only below
# $s^*$. At the scale the critic was trained to, where the Lipschitz bound stopped it, the two updates point
# in nearly opposite directions: the likelihood would flatten this critic to about a third of its slope.
# So the Lipschitz constraint does keep the critic bounded, but here not small enough for the first-order
# swap: the critic's shape is a likelihood direction, its scale is not. The next section fits the scale.
#
# ## The critic as an energy, and why its scale matters
#
# For the logistic discriminator the energy reading is exact at the optimum, because
# $d^* = \log p_\text{data}/p_g$ makes $p_{d^*} = p_\text{data}$. For a critic nothing in its training fixes
# the scale: the Wasserstein objective is unchanged when $D$ is shifted, and the Lipschitz bound, not the
# data, sets how steep it is. The family
#
# $$p_a(x) \propto p_g(x)\, e^{a D(x)}, \qquad a \ge 0,$$
#
# runs from the generator ($a = 0$) to a distribution piled up on the critic's maximum ($a \to \infty$),
# and only one $a$ is closest to the data. Which one? Measure closeness by $\mathrm{KL}(p_\text{data} \Vert p_a)$:
#
# $$\mathrm{KL}(p_\text{data} \Vert p_a) = \mathrm{KL}(p_\text{data} \Vert p_g) - \Big(a\, \mathbb E_{p_\text{data}} D - \log \mathbb E_{p_g} e^{a D}\Big).$$
#
# The bracket is the Donsker-Varadhan lower bound on $\mathrm{KL}(p_\text{data} \Vert p_g)$ evaluated at
# $aD$, which is also the log-likelihood $\ell(aD)$ of the previous section up to a constant; the best
# scale maximises it, and it is the $s^*$ found there. This is the sense in which a critic "is" an energy: the best member
# of the exponential family $p_g e^{aD}$, which is a better model of the data than $p_g$ whenever the
# bracket is positive. The optimal logit is the special case where the family contains $p_\text{data}$ itself.
#
# In practice the scale (and a shift) is fitted with the logistic loss, real against the frozen
# generator's samples: `ebmlib.calibrate(D, G, sample_real, method="head")` fits $a D(x) + b$, a
# logistic regression on the single feature $D(x)$. It does not maximise the bracket exactly, but it
# asks the same question: how much of the real/fake difference does $D$ explain, and at what slope?
#
# In one dimension we can watch this happen. The generator $p_g = \mathcal N(-0.5, 1.6^2)$ is a linear
# map of a 1-D latent (an `MLPGenerator` with no hidden layer), and every density is exact, so each
# $\mathrm{KL}$ below is a quadrature.

# %%
G1 = MLPGenerator(latent_dim=1, out_dim=1, depth=0)
with torch.no_grad():
    G1.net[0].weight.fill_(1.6), G1.net[0].bias.fill_(-0.5)
critic = critics["gradient penalty"]
d_head = ebmlib.calibrate(critic, G1, p_data.sample, seed=0, progress=False, **wgan.WGAN_HEAD)
a_head, b_head = d_head.scale.item(), d_head.bias.item()

xq = torch.linspace(-9.0, 8.0, 8001, dtype=torch.float64)
log_pd, log_pg = p_data.log_prob(xq).double(), p_g.log_prob(xq).double()
with torch.no_grad():
    D_q = critic(xq.float()[:, None]).double()


def kl_to_tilt(a):
    """KL(p_data || p_g e^{aD} / Z) by quadrature on xq."""
    log_tilt = log_pg + a * D_q
    log_tilt = log_tilt - torch.logsumexp(log_tilt, 0) - math.log(xq[1] - xq[0])
    return torch.trapezoid(log_pd.exp() * (log_pd - log_tilt), xq).item()


scales = torch.linspace(0, 2, 201)
kls = torch.tensor([kl_to_tilt(a.item()) for a in scales])
a_best = scales[kls.argmin()].item()
kl_g, kl_raw, kl_head, kl_best = kl_to_tilt(0.0), kl_to_tilt(1.0), kl_to_tilt(a_head), kls.min().item()
print(f"head calibration: a = {a_head:.2f}, b = {b_head:.2f};  the KL-best scale on a grid: a = {a_best:.2f} "
      f"(s* above: {s_star:.3f})")
print(f"KL(p_data || p_g)                = {kl_g:.4f}")
print(f"KL(p_data || p_g e^D / Z0)       = {kl_raw:.4f}   (the critic as it is, a = 1)")
print(f"KL(p_data || p_g e^(aD+b) / Z0)  = {kl_head:.4f}   (head-calibrated)")
print(f"KL at the best scale             = {kl_best:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
axes[0].plot(scales, kls, label="KL(p_data || p_g e^{aD}/Z0)")
axes[0].axvline(a_head, color="C1", ls="--", label=f"head calibration, a = {a_head:.2f}")
axes[0].axvline(1.0, color="grey", ls=":", label="the raw critic, a = 1")
axes[0].set_xlabel("scale a"), axes[0].set_title("the critic's scale decides the energy"), axes[0].legend()
tilt = (log_pg + a_head * D_q).exp()
tilt = tilt / torch.trapezoid(tilt, xq)
axes[1].plot(xq, log_pd.exp(), label="$p_\\mathrm{data}$")
axes[1].plot(xq, log_pg.exp(), label="$p_g$")
axes[1].plot(xq, tilt, "k--", label="$p_g e^{aD+b}/Z_0$ (head)")
axes[1].set_xlim(-5, 4), axes[1].set_title("the generator corrected by the calibrated critic"), axes[1].legend()
plt.tight_layout()
plt.show()
assert kl_head < kl_g - 0.02, "the calibrated critic should correct the generator towards the data"
assert kl_head < kl_best + 0.002, "the logistic head should land near the KL-best scale"

# %% [markdown]
# The calibrated critic does correct the generator: mass moves out of the gap between the two data
# modes and towards them. But it corrects only part of the way, and it cannot do more at any scale: the
# potential is a zigzag of slopes $\pm 1$, while the log ratio it would have to match is smooth and
# curved (here $\log p_\text{data}/p_g$ has two rounded peaks at the data modes and falls off
# quadratically in both tails). The critic knows *where* mass must move, not *how much* density is
# missing there.
#
# ## DDLS with a WGAN critic on the 25-Gaussian grid
#
# Now the experiment of chapter 05 with a WGAN. `ebmlib.recipes.wgan.train_wgan_pair` trains an MLP WGAN
# on the grid (a 2-D latent, a 128-unit generator and critic, the one-sided penalty, three critic steps
# per generator step, 1,200 generator steps; the settings are printed below): under a minute on one
# CPU core. Its generator finds
# most modes but spreads much of its mass on the bridges between them, and we run DDLS on each pair
# with four energies:
#
# 1. the raw critic, $E(z) = \tfrac12\lVert z\rVert^2 - D(G(z))$, the literal reading $p_g e^{D}$;
# 2. the head-calibrated critic $a D + b$;
# 3. the critic fine-tuned against the frozen generator with the logistic loss
#    (`calibrate(method="finetune")`, 2,000 steps, the recipe of the DDLS paper for discriminators trained
#    with other losses): the critic's weights are the starting point of a logistic discriminator for this $G$;
# 4. the frozen critic plus a Fourier-feature correction fitted with the logistic loss
#    (`calibrate(method="residual")`, the calibration of chapter 05's Table 1): $d = D + r$.
#
# All chains use the Metropolis-adjusted sampler of chapter 05 with its settings (160 steps, the step
# starting at 0.01 and halving every 20 steps).

# %%
seeds = ebmlib.pick([0, 1, 2], [0])
train = None if not SMOKE else {"steps": 300}
finetune = {**wgan.WGAN_CALIBRATION, **({} if not SMOKE else {"steps": 300})}
residual = {**table1.CALIBRATION, **({} if not SMOKE else {"steps": 300})}
ddls_options = dict(table1.SAMPLER_OPTIONS["ddls"])
n = ebmlib.pick(10_000, 2_000)
print(f"WGAN: {wgan.WGAN_NETS['hidden']}-unit generator and critic, {wgan.WGAN_TRAIN['n_dis']} critic steps per "
      f"generator step, {(train or wgan.WGAN_TRAIN)['steps']} generator steps; fine-tuning: {finetune['steps']} "
      f"steps; DDLS: {ddls_options}")
methods = {"generator": "generator alone", "raw": "DDLS, raw critic", "head": "DDLS, head-calibrated",
           "finetune": "DDLS, fine-tuned critic", "residual": "DDLS, critic + residual"}
results = {m: [] for m in methods}
for seed in seeds:
    G, C, history = wgan.train_wgan_pair(seed, train=train, progress=False)
    energies = {"raw": C,
                "head": ebmlib.calibrate(C, G, toy.sample_grid25, seed=seed, progress=False, **wgan.WGAN_HEAD),
                "finetune": ebmlib.calibrate(C, G, toy.sample_grid25, seed=seed, progress=False, **finetune),
                "residual": ebmlib.calibrate(C, G, toy.sample_grid25, seed=seed, progress=False, **residual)}
    samples = {"generator": ebmlib.sample("generator", G, C, n, seed=100 + seed)}
    for m, d in energies.items():
        samples[m] = ebmlib.sample("ddls", G, d, n, seed=100 + seed, **ddls_options)
    for m, out in samples.items():
        results[m].append(toy.mode_stats(out.x))
    print(f"seed {seed}: trained in {history['seconds']:.0f} s; head scale a = {energies['head'].scale.item():.3f}; "
          f"critic's W1 estimate against G: "
          f"{W.critic_w1(C, toy.sample_grid25, lambda k, g: G(torch.randn(k, 2, generator=g)), n=20_000):.3f}")
    if seed == seeds[0]:
        first = samples


def mean_std(values):
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), (t.std().item() if len(t) > 1 else 0.0)


print(f"\n{'':26s} {'recovered modes':>17s} {'% high quality':>16s}   per seed")
for m, name in methods.items():
    (mo, mo_s), (hq, hq_s) = mean_std([r["modes"] for r in results[m]]), mean_std([r["hq_fraction"] for r in results[m]])
    per_seed = ", ".join(f"{100 * r['hq_fraction']:.1f}" for r in results[m])
    print(f"{name:26s} {mo:9.1f} ± {mo_s:<4.1f} {100 * hq:9.1f} ± {100 * hq_s:<4.1f}   {per_seed}")

# %%
fig, axes = plt.subplots(1, 5, figsize=(20, 4.2))
for ax, m in zip(axes, methods):
    plot.grid_scatter(ax, first[m].x, methods[m])
plt.tight_layout()
plt.show()

# %% [markdown]
# Four readings of the same critic, four outcomes. The raw critic and the head-calibrated one leave the
# generator's samples almost where they were (a few points of high quality at most): on the grid the
# generator's error is local (bridges a few tenths wide between modes of width 0.05), and a 1-Lipschitz
# potential can change by at most 0.2 between a mode's centre and the edge of its high-quality disc. The logistic head sees that the critic separates real from fake
# only weakly at that scale and fits a small slope, so $p_g e^{aD+b}$ stays close to $p_g$. The
# fine-tuned critic is a logit again, steeper where the data are narrow, and DDLS with it pulls many of
# the bridges into the modes, with no mode lost (on a seed whose generator barely covers some modes, DDLS
# even brings a few above the 20-sample threshold). The critic with a fitted residual goes furthest: at
# least 40 points of high quality above the generator alone on every seed (the smallest gain is printed
# below), and above the fine-tuned critic on every seed. The correction supplies the steep bowls around the modes that neither a 1-Lipschitz potential nor
# a ReLU logit of this size expresses. It cannot supply mass that the generator does not make: on the
# seed whose generator has lost the most modes, DDLS stays well below the others, since no local sampler
# brings a lost mode back. (`python -m ebmlib toy-table` reports the generator and the critic + residual
# DDLS of this experiment over five seeds in its last two rows.)

# %%
hq = {m: [r["hq_fraction"] for r in results[m]] for m in methods}
gain = min(f - g for f, g in zip(hq["finetune"], hq["generator"]))
print(f"smallest gain in high quality over the seeds, fine-tuned critic: {gain:+.3f}")
print(f"lowest high-quality share with the residual: {min(hq['residual']):.3f}; its smallest gain over the "
      f"generator alone: {min(r - g for r, g in zip(hq['residual'], hq['generator'])):+.3f}")
# the critic with a fitted residual: checked in the smoke run too
for i, seed in enumerate(seeds):
    assert results["residual"][i]["modes"] >= results["generator"][i]["modes"], f"seed {seed}: DDLS lost a mode"
assert min(r - f for r, f in zip(hq["residual"], hq["finetune"])) > 0, hq
assert min(r - g for r, g in zip(hq["residual"], hq["generator"])) >= 0.4, hq
if not SMOKE:  # the smoke run's WGAN (300 steps) and fine-tuning (300 steps) are too crude for these claims
    for i, seed in enumerate(seeds):
        assert results["finetune"][i]["modes"] >= results["generator"][i]["modes"], f"seed {seed}: DDLS lost a mode"
    assert gain >= 0.25, f"DDLS with the fine-tuned critic should add at least 25 points of high quality, got {gain:.3f}"
    assert max(abs(h - g) for h, g in zip(hq["head"], hq["generator"])) < 0.05, "the head-calibrated critic barely moves p_g"

# %% [markdown]
# ## Summary
#
# - The WGAN critic estimates the Wasserstein-1 distance through the Kantorovich-Rubinstein duality,
#   $W_1 = \sup_{\lVert f\rVert_L \le 1} \mathbb E_p f - \mathbb E_q f$. In one dimension both sides have
#   closed forms: the area between the distribution functions, and the potential whose slope is the sign
#   of $F_q - F_p$.
# - A penalised critic (one-sided, $\lambda = 10$) estimates $W_1$ within a few percent (the overshoot of
#   $W_1/(2\lambda)$ expected for a linear potential did not show here); a spectrally normalised one stays below it, because
#   normalised piecewise-linear layers cannot turn as sharply as the optimal potential. The two-sided
#   penalty can trap a 1-D critic at the wrong sign.
# - The maximum-likelihood gradient of the model $p_g e^{D}/Z_0$ is
#   $\mathbb E_{p_\text{data}}[\nabla D] - \mathbb E_{p_g e^D/Z_0}[\nabla D]$; the critic's update replaces the
#   model's samples by the generator's. For $D = s f$ the two directions agree to $1 - \cos = O(s^2)$, with
#   the first-order correction $-\operatorname{Cov}_{p_g}(D, \nabla D)$; the critic's objective is the linear
#   part of the likelihood, unbounded without the Lipschitz constraint. In one dimension the agreement held
#   (cosine at least 0.99) only while $sf$ varied by about a tenth of a nat; at the 1-Lipschitz critic's own
#   scale the two updates pointed in nearly opposite directions.
# - Read as an energy, the critic defines the family $p_g e^{aD}/Z_0$. Its scale is not fixed by training;
#   the best scale maximises $a\,\mathbb E_{p_\text{data}} D - \log \mathbb E_{p_g} e^{aD}$, and the
#   logistic head of `ebmlib.calibrate` fits it in practice.
# - A transport potential says where mass must go, not how much density is missing. On the 25-Gaussian
#   grid the head-calibrated critic barely changes the generator; the critic fine-tuned into a logit (the
#   DDLS paper's recipe) makes DDLS work, and the critic with a fitted Fourier-feature residual makes it
#   work as well as in chapter 05.
#
# ## Exercises
#
# 1. Train the 1-D critic with the one-sided penalty at $\lambda = 1, 10, 100$ and plot its estimate
#    against $\lambda$. Does the overshoot follow $W_1^2/(2\lambda)$ here, where the optimal potential is
#    not linear?
# 2. Give the SN critic more capacity (`hidden=256, depth=3`) or a smooth activation
#    (`activation="elu"`). Which closes more of the gap to the exact $W_1$? Then repeat the comparison of
#    the likelihood gradient with the critic's update for the SN critics as $f$: does the scale at which
#    the cosine falls below 0.99 follow $0.1/\operatorname{std}_{p_g}(f)$?
# 3. Find the scale by the Donsker-Varadhan bound instead of the logistic head: on the grid, estimate
#    $a\,\mathbb E_{p_\text{data}} D - \log \mathbb E_{p_g} e^{aD}$ from samples for a range of $a$ and run
#    DDLS at the maximiser. Does the raw WGAN critic become useful?
# 4. Make the generator's error *global*: train a pair for 300 steps only, when whole regions of the grid
#    are missing or overweighted. Is the head-calibrated critic more useful for DDLS then?
