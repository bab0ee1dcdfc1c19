# %% [markdown]
# # Assignment 04: rejection sampling with the discriminator, and DRS's acceptance rule
#
# Chapter 04's lemma: propose $z \sim p_0$, accept with probability $e^{d(G(z))}/M$ (with $M \ge e^{d}$), and the
# accepted latents follow $p_t(z) \propto p_0(z)\,e^{d(G(z))}$; the acceptance rate is $Z_0/M$. Discriminator
# rejection sampling (DRS, Azadi et al. 2019) replaces the exact rule by
#
# $$p_\text{accept}(x) = \sigma\big(F(x)\big), \qquad F(x) = a - \log(1 - e^{a - \epsilon}) - \gamma, \qquad a = d(x) - \log M,$$
#
# which is $e^{a}$ for $\gamma = 0$ and $\epsilon \to 0$. Write the expected acceptance rate of the exact rule and
# the log of DRS's acceptance probability.

# %%
import torch

# %% [markdown]
# ## Exercise 1 (5 points): the acceptance rate
#
# `logits` (n,) are $d(G(z_i))$ at proposals $z_i \sim p_0$, `log_m` is $\log M$. Return the expected acceptance
# rate $\frac1n\sum_i \min(1, e^{d_i - \log M})$ (a proposal above the bound is always accepted).


# %%
def acceptance_rate(logits, log_m):
    """Mean acceptance probability min(1, e^{d - log M}) of the proposals."""
    ### HINT: exponentiate d - log M, clip at 1 (torch.clamp), and average over the proposals
    ### BEGIN SOLUTION
    return torch.exp(logits - log_m).clamp(max=1.0).mean()
    ### END SOLUTION


# %% [markdown]
# ## Exercise 2 (5 points): DRS's log acceptance
#
# `logit` (n,), `log_m` and `gamma` floats. Return $\log\sigma(F)$ (n,) in float64. Compute
# $\log(1 - e^{a - \epsilon})$ with `torch.log1p` so that it stays accurate for $a$ near 0.


# %%
def drs_log_acceptance(logit, log_m, gamma=0.0, epsilon=1e-6):
    """log σ(F) with F = a - log(1 - e^{a - ε}) - γ and a = d - log M, float64 (n,)."""
    ### HINT: a = (logit - log_m).double(); F = a - log1p(-exp(a - epsilon)) - gamma; return logsigmoid(F)
    ### BEGIN SOLUTION
    a = (logit - log_m).double()
    f = a - torch.log1p(-torch.exp(a - epsilon)) - gamma
    return torch.nn.functional.logsigmoid(f)
    ### END SOLUTION


# %% [markdown]
# For $\gamma = 0$ the rule is exact rejection: the two exercises agree.

# %%
logits = torch.randn(10_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
log_m = logits.max().item()
print("exact rule:", acceptance_rate(logits, log_m).item(),
      " DRS with γ = 0:", drs_log_acceptance(logits, log_m).exp().mean().item())

# %% [markdown]
# **Question (not graded).** With the optimal discriminator, what is the exact acceptance rate, and what does
# it say about a generator that misses a mode by a little?

# %% [markdown] tags=["solution"]
# *Answer.* With $d^* = \log p_\text{data}/p_g$ and $M = \sup e^{d^*}$ the rate is $Z_0/M = 1/\sup_x p_\text{data}/p_g$.
# A generator that puts a tenth of the data's mass on a mode has a ratio of 10 there: nine proposals in ten
# are rejected everywhere to make room for that one mode. A generator that misses it entirely has an infinite
# ratio: no finite $M$ exists, and rejection cannot create the missing mass.
