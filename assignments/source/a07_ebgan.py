# %% [markdown]
# # Assignment 07: EBGAN's margin loss and the pulling-away term
#
# Chapter 07 trains an autoencoder discriminator whose reconstruction error $D(x) \ge 0$ is an energy, with the
# margin loss
#
# $$\mathcal L_D = \mathbb E_\text{data}\,D(x) + \mathbb E_z\,[m - D(G(z))]^+,$$
#
# whose value at the equilibrium is exactly $m$. Against mode collapse the generator adds the pulling-away term of
# its batch's embeddings $S$ (N, k),
#
# $$f_\text{PT}(S) = \frac{1}{N(N-1)} \sum_{i \ne j} \cos^2(S_i, S_j).$$
#
# Write both.

# %%
import torch

# %% [markdown]
# ## Exercise 1 (5 points): the margin loss
#
# `real_energy` (N,) and `fake_energy` (M,) are energies $\ge 0$, `margin` is $m > 0$. Return the scalar $\mathcal L_D$.


# %%
def margin_loss(real_energy, fake_energy, margin):
    """EBGAN's discriminator loss: mean real energy + mean [m - fake energy]^+."""
    ### HINT: [t]^+ = max(t, 0) is torch.relu; generated samples whose energy already exceeds m cost nothing
    ### BEGIN SOLUTION
    return real_energy.mean() + torch.relu(margin - fake_energy).mean()
    ### END SOLUTION


# %% [markdown]
# ## Exercise 2 (5 points): the pulling-away term
#
# `S` (N, k) with N >= 2. Return $f_\text{PT}(S)$: 0 for pairwise orthogonal rows, 1 for rows along one line,
# whatever the rows' lengths.


# %%
def pulling_away(S):
    """The mean squared cosine similarity over pairs of distinct rows of S."""
    ### HINT: normalise each row to unit length, take the Gram matrix, square it, drop the diagonal, average over N(N-1)
    ### BEGIN SOLUTION
    unit = S / S.norm(dim=1, keepdim=True)
    cos2 = (unit @ unit.T) ** 2
    n = len(S)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))
    ### END SOLUTION


# %% [markdown]
# Random directions in $k$ dimensions have $\mathbb E\cos^2 = 1/k$:

# %%
print(pulling_away(torch.randn(500, 16)).item(), 1 / 16)

# %% [markdown]
# **Question (not graded).** What value of $f_\text{PT}$ does a generator that matches the data have, and why is it
# not 0?

# %% [markdown] tags=["solution"]
# *Answer.* The value of the data's own embeddings: real samples are not pairwise orthogonal (k-dimensional
# embeddings of many samples cannot be, and similar samples point alike), so a perfect generator pays the same
# positive term. The term is a push away from collapse, not a target of 0; its weight trades that push against
# fidelity (chapter 07, exercise 3).
