# %% [markdown]
# # Assignment 03: Boltzmann reweighting and the normalising constant $Z_0$
#
# Chapter 03 reads a GAN as an energy-based model: with the optimal logit $d^*$, the generator's density
# tilted by $e^{d}$ is the data's, $p_\text{data}(x) = p_g(x)\,e^{d^*(x)}/Z_0$ with $Z_0 = \mathbb E_{p_g}[e^{d}] = 1$.
# So samples $x_1, \dots, x_n$ of the generator, weighted by $w_i = e^{d(x_i)}/\sum_j e^{d(x_j)}$
# (self-normalised importance weights), estimate expectations under the data. Write the weights and the
# estimate of $Z_0$.

# %%
import torch

# %% [markdown]
# ## Exercise 1 (5 points): self-normalised weights
#
# `logits` (n,) are $d(x_i)$. Return the weights (n,), which sum to 1, without overflow for logits of size 500.


# %%
def boltzmann_weights(logits):
    """Self-normalised importance weights e^{d_i} / Σ_j e^{d_j}, shape (n,)."""
    ### HINT: e^{d_i} / Σ e^{d_j} does not change when the same constant is subtracted from every d: subtract the largest
    ### BEGIN SOLUTION
    return torch.softmax(logits, dim=0)
    ### END SOLUTION


# %% [markdown]
# The chapter's check in miniature: $p_g = \mathcal N(0, 1)$, $p_\text{data} = \mathcal N(1, 1)$, so $d^*(x) = x - \frac12$.
# The weighted mean of the generator's samples should be close to the data's mean, 1.

# %%
x = torch.randn(100_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
print("weighted mean:", (boltzmann_weights(x - 0.5) * x).sum().item())

# %% [markdown]
# ## Exercise 2 (5 points): the Monte Carlo estimate of $Z_0$
#
# `logits` (n,) are $d(x_i)$ at generator samples. Return $\hat Z_0 = \frac1n \sum_i e^{d(x_i)}$ as a float (or a
# 0-d tensor).


# %%
def estimate_z0(logits):
    """The Monte Carlo estimate of Z0 = E_pg[e^d] from logits at generator samples."""
    ### HINT: the mean of e^d over the samples (the mean of the exponentials, not the exponential of the mean)
    ### BEGIN SOLUTION
    return torch.exp(logits).mean()
    ### END SOLUTION


# %% [markdown]
# **Question (not graded).** The estimate $\hat Z_0$ of a perfect discriminator is close to 1. Does
# $\hat Z_0 \approx 1$ prove that a trained discriminator corrects the generator?

# %% [markdown] tags=["solution"]
# *Answer.* No. $\hat Z_0 \approx 1$ holds for any $d$ whose tilt $p_g e^{d}$ is normalised, for instance $d = 0$,
# which changes nothing. It is a necessary condition (chapter 03, exercise 4 shows that the logistic loss's
# bias term enforces a related balance), not a measure of the correction's quality.
