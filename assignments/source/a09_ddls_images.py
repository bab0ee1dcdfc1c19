# %% [markdown]
# # Assignment 09: how much of $p_t$ a sample of the generator can show
#
# Chapter 09 weighs the generator's samples by $e^{d}$ to picture $p_t$ without a sampler, and reads the weights'
# effective sample size,
#
# $$\text{ESS} = \frac{(\sum_i w_i)^2}{\sum_i w_i^2}, \qquad w_i = e^{d(x_i)},$$
#
# which is $n$ for equal weights and 1 when one sample carries all the mass. When $d$ over the generator's samples is
# roughly Gaussian with variance $\sigma^2$, $\text{ESS}/n \approx e^{-\sigma^2}$: a logit that varies little leaves
# $p_t$ close to $p_g$ (the chapter's explanation of why DDLS barely moves the mode weights there). Write the ESS.

# %%
import math

import torch

# %% [markdown]
# ## Exercise (5 points): the effective sample size
#
# `logits` (n,) are $d(x_i)$. Return the ESS of the weights $e^{d_i}$ as a float, finite for logits of size 1000.


# %%
def effective_sample_size(logits):
    """(Σ e^d)² / Σ e^{2d}, computed without overflow."""
    ### HINT: normalise the weights first (a softmax of the logits); then the ESS is 1 / Σ w²
    ### BEGIN SOLUTION
    w = torch.softmax(logits.double(), dim=0)
    return (1.0 / (w ** 2).sum()).item()
    ### END SOLUTION


# %% [markdown]
# The chapter's rule of thumb, checked on Gaussian logits with $\sigma = 0.4$:

# %%
sigma, n = 0.4, 100_000
logits = sigma * torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
print("ESS / n:", effective_sample_size(logits) / n, " e^-σ²:", math.exp(-sigma ** 2))

# %% [markdown]
# **Question (not graded).** Doubling the logit (`2 * d`) multiplies $\sigma^2$ by four. What happens to the ESS,
# and why does that not make the sampler better?

# %% [markdown] tags=["solution"]
# *Answer.* ESS/n falls from $e^{-\sigma^2}$ to $e^{-4\sigma^2}$: the target $p_g e^{2d}$ is sharper and further from
# $p_g$, so fewer samples carry its mass. Sharper is not more correct: only the calibrated logit's target is the
# data's law, and a doubled logit over-corrects (the high-quality fraction rises, the mode weights move past the data's).
