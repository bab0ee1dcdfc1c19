# %% [markdown]
# # Assignment 08: spectral normalisation and the generator's moving average
#
# Chapter 08 trains an SN-GAN: every layer's weight $W$ of the discriminator is divided by its spectral norm
# $\sigma(W)$, the largest singular value, estimated by power iteration ($v \leftarrow W^\top u/\|W^\top u\|$,
# $u \leftarrow W v/\|W v\|$, $\sigma \approx u^\top W v$). The samples come from an exponential moving average (EMA)
# of the generator's weights, $\bar\theta \leftarrow \beta\bar\theta + (1 - \beta)\theta$, whose mean age is
# $\beta/(1-\beta)$ steps. Write both.

# %%
import torch

# %% [markdown]
# ## Exercise 1 (5 points): the spectral norm by power iteration
#
# `W` (m, n). Return the largest singular value after `iterations` rounds of power iteration, as a float.


# %%
def spectral_norm_estimate(W, iterations=100):
    """σ_max(W) by power iteration from a random start."""
    ### HINT: start from a random u (m,), alternate v = Wᵀu/|Wᵀu| and u = Wv/|Wv|, return uᵀWv
    ### BEGIN SOLUTION
    u = torch.randn(W.shape[0], dtype=W.dtype, generator=torch.Generator().manual_seed(0))
    for _ in range(iterations):
        v = W.T @ u
        v = v / v.norm()
        u = W @ v
        u = u / u.norm()
    return (u @ W @ v).item()
    ### END SOLUTION


# %%
W = torch.randn(64, 32)
print(spectral_norm_estimate(W), torch.linalg.matrix_norm(W, ord=2).item())

# %% [markdown]
# ## Exercise 2 (5 points): one EMA update
#
# `average` and `current` tensors of the same shape, `decay` $\beta \in [0, 1)$. Return $\beta\,\bar\theta + (1-\beta)\,\theta$.


# %%
def ema_update(average, current, decay):
    """The moving average after one more step: decay · average + (1 - decay) · current."""
    ### HINT: the old average keeps the weight decay; the new value gets 1 - decay
    ### BEGIN SOLUTION
    return decay * average + (1 - decay) * current
    ### END SOLUTION


# %% [markdown]
# **Question (not graded).** With $\beta = 0.999$, how far back does the average reach after 2,000 steps, and why
# does the chapter's EMA use the decay $\min(\beta, (1 + t)/(10 + t))$ early in training?

# %% [markdown] tags=["solution"]
# *Answer.* The weights' mean age is $\beta/(1-\beta) = 999$ steps only in a long run; after $K$ steps it is bounded
# by the run itself, and the warm-up decay $(1+t)/(10+t)$ keeps it near $(K+1)/10$ steps (200 at $K = 2000$). That
# warm-up lets the average forget the random initial weights instead of carrying them for a thousand steps.
