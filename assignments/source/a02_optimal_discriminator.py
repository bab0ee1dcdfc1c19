# %% [markdown]
# # Assignment 02: the discriminator's loss and its pointwise minimiser
#
# Chapter 02 shows that for a fixed generator the logistic discriminator's best logit is the log density ratio
# $d^*(x) = \log p_\text{data}(x)/p_g(x)$. The argument is pointwise: at each $x$ the loss weighs the
# real density against the generated one, and the best logit $t$ minimises
# $p_\text{data}\,\mathrm{softplus}(-t) + p_g\,\mathrm{softplus}(t)$. The hinge loss of SN-GAN has another
# pointwise minimiser (the chapter's first exercise). Write the logistic loss, then the hinge minimiser.

# %%
import torch
import torch.nn.functional as F

import ebmlib

# %% [markdown]
# ## Exercise 1 (5 points): the logistic discriminator loss
#
# `real_logits` (N,) are the logits $d(x)$ of real samples, `fake_logits` (M,) those of generated ones. Return
# the scalar $\mathbb E_\text{real}[-\log\sigma(d)] + \mathbb E_\text{fake}[-\log(1 - \sigma(d))]$, finite even
# for logits of size 100.


# %%
def logistic_loss(real_logits, fake_logits):
    """The discriminator's logistic loss: -mean log σ(d(real)) - mean log(1 - σ(d(fake)))."""
    ### HINT: -log σ(t) = softplus(-t) and -log(1 - σ(t)) = softplus(t): use torch.nn.functional.softplus
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


# %% [markdown]
# At the log ratio of two known densities the loss equals $\log 4 - 2\,\mathrm{JSD}(p_\text{data}, p_g)$, its
# minimum. A quick look with the chapter's two Gaussians:

# %%
data, gen = torch.distributions.Normal(0.5, 1.0), torch.distributions.Normal(-0.5, 1.0)
x_real, x_fake = data.sample((100_000,)), gen.sample((100_000,))
log_ratio = ebmlib.energy.LogRatio(data.log_prob, gen.log_prob)
print("loss at d*:", logistic_loss(log_ratio(x_real), log_ratio(x_fake)).item(), " log 4 =", torch.log(torch.tensor(4.0)).item())

# %% [markdown]
# ## Exercise 2 (5 points): the hinge loss's pointwise minimiser
#
# For densities `p_data`, `p_g` (tensors of the same shape, values >= 0), return the $t$ (same shape) that
# minimises $p_\text{data}[1 - t]^+ + p_g[1 + t]^+$ at each point.


# %%
def hinge_minimiser(p_data, p_g):
    """The pointwise minimiser of p_data [1 - t]^+ + p_g [1 + t]^+ (where p_data = p_g any t in [-1, 1] does)."""
    ### HINT: the objective is piecewise linear in t with kinks at -1 and 1: compare its slopes on [-1, 1]
    ### BEGIN SOLUTION
    return torch.sign(p_data - p_g)
    ### END SOLUTION


# %% [markdown]
# **Question (not graded).** Is the hinge discriminator's output still a log density ratio? Could it serve
# as the energy of chapter 03 without calibration?

# %% [markdown] tags=["solution"]
# *Answer.* No: its best response is sign$(p_\text{data} - p_g)$, which says only where each density is larger,
# not by how much. $p_g e^{t}$ with $t \in \{-1, 1\}$ is not $p_\text{data}$; the logit must be recalibrated
# (for example with a logistic head, chapter 05) before it can correct the generator.
