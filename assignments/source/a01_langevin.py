# %% [markdown]
# # Assignment 01: one Langevin step, and the Metropolis test that corrects it
#
# Chapter 01 samples a density $p(x) \propto e^{-E(x)}$ with the unadjusted Langevin algorithm (ULA),
#
# $$x_{i+1} = x_i - \frac{\varepsilon}{2}\nabla E(x_i) + \sqrt{\varepsilon}\,\xi_i, \qquad \xi_i \sim \mathcal N(0, I),$$
#
# and shows that on a Gaussian energy $E(x) = \frac12 x^\top P x$ its chains settle at the covariance
# $(P - \frac{\varepsilon}{4}P^2)^{-1}$, not at $P^{-1}$. MALA removes that bias: it treats the Langevin move as a
# proposal $x'$ and accepts it with probability $\min(1, \alpha)$,
#
# $$\log\alpha = E(x) - E(x') + \log q(x \mid x') - \log q(x' \mid x), \qquad
#   q(a \mid b) = \mathcal N\!\left(a;\; b - \tfrac{\varepsilon}{2}\nabla E(b),\; \varepsilon I\right).$$
#
# Write both pieces. The grader compares them with `ebmlib.langevin` and with the Gaussian's exact answers.

# %%
import math

import torch

# %% [markdown]
# ## Exercise 1 (5 points): the ULA step
#
# `z` (N, k) are the chains' states, `grad` (N, k) is $\nabla E$ at `z`, `noise` (N, k) is a standard normal draw.
# Return the next states.


# %%
def ula_step(z, grad, step_size, noise):
    """One unadjusted Langevin step with step size ε: z - (ε/2) grad + sqrt(ε) noise."""
    ### HINT: the drift is half the step size times the gradient; the noise is scaled by the square root of the step
    ### BEGIN SOLUTION
    return z - 0.5 * step_size * grad + math.sqrt(step_size) * noise
    ### END SOLUTION


# %% [markdown]
# Try it on the chapter's Gaussian ($\Sigma$ with correlation 0.8): at $\varepsilon = 0.2$ the chains' covariance
# should be close to $(P - \frac{\varepsilon}{4}P^2)^{-1}$, a little wider than $\Sigma$.

# %%
Sigma = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
P = torch.linalg.inv(Sigma)
step_size = 0.2
draws = torch.Generator().manual_seed(0)
z = torch.zeros(4000, 2, dtype=torch.float64)
for _ in range(300):
    z = ula_step(z, z @ P, step_size, torch.randn(z.shape, generator=draws, dtype=torch.float64))
print("chains' covariance:\n", torch.cov(z.T))
print("(P - eps P^2 / 4)^-1:\n", torch.linalg.inv(P - step_size / 4 * P @ P))

# %% [markdown]
# ## Exercise 2 (5 points): MALA's log acceptance
#
# `z` and `proposal` (N, k), their energies `energy_z`, `energy_proposal` (N,) and gradients `grad_z`,
# `grad_proposal` (N, k). Return $\log\alpha$ (N,) as above (the normalising constants of $q$ cancel).


# %%
def mala_log_acceptance(z, proposal, energy_z, energy_proposal, grad_z, grad_proposal, step_size):
    """log α of the Metropolis-Hastings test for the Langevin proposal z -> proposal, shape (N,)."""
    ### HINT: log q(a | b) = -||a - b + (ε/2) grad E(b)||^2 / (2ε); add E(z) - E(proposal) and the reverse move minus the forward move
    ### BEGIN SOLUTION
    def log_q(a, b, grad_b):
        return -((a - b + 0.5 * step_size * grad_b) ** 2).sum(dim=1) / (2 * step_size)

    forward, backward = log_q(proposal, z, grad_z), log_q(z, proposal, grad_proposal)
    return energy_z - energy_proposal + backward - forward
    ### END SOLUTION


# %% [markdown]
# **Question (not graded).** Why can the step size of MALA exceed the step at which ULA's bias becomes
# visible, but not the stability limit $4/\lambda_{\max}$ by much?

# %% [markdown] tags=["solution"]
# *Answer.* MALA rejects the moves that ULA's discretisation gets wrong, so its stationary law is exact for every
# step; but the proposals are still ULA moves. Past $4/\lambda_{\max}$ the drift overshoots by more than the
# distance to the mode, proposals land where $E$ is far larger, and almost all are rejected: the chain stalls.
