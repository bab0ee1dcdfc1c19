# %% [markdown]
# # Assignment 06: the exact 1-D Wasserstein distance and the gradient penalty
#
# Chapter 06 checks a WGAN critic against the exact $W_1$, which in one dimension has a closed form: the optimal
# coupling pairs the quantiles, $W_1(p, q) = \int_0^1 |F_p^{-1}(u) - F_q^{-1}(u)|\,du$. For two samples of the same
# size $n$ this is the mean distance between their order statistics. The critic is kept near 1-Lipschitz by the
# gradient penalty $\lambda\,\mathbb E\,(\|\nabla_x D(\hat x)\|_2 - 1)^2$ at points $\hat x = a\,x_\text{real} + (1-a)\,x_\text{fake}$.
# Write both.

# %%
import torch

import ebmlib

# %% [markdown]
# ## Exercise 1 (5 points): $W_1$ of two samples
#
# `x`, `y` (n,) two samples of the same size. Return $W_1$ between their empirical laws as a float.


# %%
def w1_samples(x, y):
    """W1 between the empirical laws of two equal-size 1-D samples."""
    ### HINT: sort both samples (the quantiles) and average the absolute differences of the sorted values
    ### BEGIN SOLUTION
    return (x.sort().values - y.sort().values).abs().mean().item()
    ### END SOLUTION


# %% [markdown]
# Shifting a law by 2 moves it by exactly $W_1 = 2$:

# %%
g = torch.Generator().manual_seed(0)
print(w1_samples(torch.randn(50_000, generator=g), 2 + torch.randn(50_000, generator=g)))

# %% [markdown]
# ## Exercise 2 (5 points): the gradient penalty
#
# `D` a critic (N, k) -> (N,), `real`, `fake` (N, k), `a` (N, 1) the interpolation weights in [0, 1]. Return the
# scalar penalty, differentiable with respect to D's parameters (the training loop backpropagates it).


# %%
def gradient_penalty(D, real, fake, a, weight=10.0):
    """weight · mean (||∇_x D(x̂)||_2 - 1)² at x̂ = a real + (1 - a) fake."""
    ### HINT: make x̂ with requires_grad_(True); torch.autograd.grad(D(x̂).sum(), x̂, create_graph=True) gives the gradients
    ### BEGIN SOLUTION
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return weight * (grad.norm(dim=1) - 1).pow(2).mean()
    ### END SOLUTION


# %% [markdown]
# Compare with the library's penalty on a small critic (the same interpolation weights drawn from one seed):

# %%
D = ebmlib.nets.MLPDiscriminator(in_dim=2, hidden=32, depth=2)
real, fake = torch.randn(256, 2), torch.randn(256, 2) + 1
a = torch.rand(256, 1, generator=torch.Generator().manual_seed(1))
print(gradient_penalty(D, real, fake, a).item(),
      ebmlib.losses.gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(1)).item())

# %% [markdown]
# **Question (not graded).** Why does the two-sided penalty push the gradient norm *up* to 1 where the exact
# potential of chapter 06 is flat?

# %% [markdown] tags=["solution"]
# *Answer.* $(\|\nabla D\| - 1)^2$ is smallest at norm 1 whatever the sign of the deviation, so it penalises a flat
# critic (norm 0) with the full weight. The optimal 1-D potential has slope $\pm 1$ almost everywhere, so in 1-D the
# conflict is small, but between the supports of $p$ and $q$ the penalty, not the data, fixes the critic's slope.
