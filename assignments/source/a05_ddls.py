# %% [markdown]
# # Assignment 05: the latent energy of DDLS
#
# Chapter 05 samples $p_t(z) \propto p_0(z)\,e^{d(G(z))}$, the latent image of the corrected generator, with
# Langevin dynamics on the energy
#
# $$E(z) = -\log p_0(z) - d(G(z)) = \tfrac12\|z\|^2 - d(G(z)) + \text{const}, \qquad p_0 = \mathcal N(0, I).$$
#
# Both terms matter: without the prior term the chains climb $d$ wherever it is largest, far from where the
# generator was trained (the chapter's first exercise). Write the energy; `ebmlib.langevin` then samples it.

# %%
import torch

import ebmlib
from ebmlib import nets

# %% [markdown]
# ## Exercise (5 points): $E(z)$
#
# `z` (N, k) latents, `G` a generator (N, k) -> (N, ...), `d` a logit (N, ...) -> (N,). Return $E(z)$ (N,), up to a
# constant, so that gradients flow to `z` through both terms (do not detach anything).


# %%
def latent_energy(z, G, d):
    """E(z) = ||z||²/2 - d(G(z)), shape (N,)."""
    ### HINT: the prior term is half the squared norm of each row of z; subtract the logit of the generated sample
    ### BEGIN SOLUTION
    return 0.5 * (z ** 2).sum(dim=1) - d(G(z))
    ### END SOLUTION


# %% [markdown]
# DDLS with your energy on a small untrained pair (so only the mechanics, not the samples, mean anything here):

# %%
torch.manual_seed(0)
G, D = nets.MLPGenerator(latent_dim=2, out_dim=2, hidden=32, depth=2), nets.MLPDiscriminator(in_dim=2, hidden=32, depth=2)
chains = ebmlib.langevin(lambda z: latent_energy(z, G, D), torch.randn(500, 2), steps=100, step_size=0.05, mala=True)
print("MALA acceptance rate:", chains.accept_rate)

# %% [markdown]
# **Question (not graded).** Why must the gradient reach $z$ through $d(G(z))$, and what happens to DDLS if the
# discriminator is evaluated under `torch.no_grad()`?

# %% [markdown] tags=["solution"]
# *Answer.* The drift $-\frac{\varepsilon}{2}\nabla E(z) = -\frac{\varepsilon}{2}\,(z - \nabla_z d(G(z)))$ is the only
# way the discriminator steers the chains. Under `no_grad` the second term vanishes (or the call fails), and the
# chains sample the prior $p_0$: plain generator samples, at the cost of a Langevin run.
