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
# # 08 · Training an SN-GAN on images: stacked digits and CIFAR-10
#
# Chapters 01-07 worked in one or two dimensions, where a density can be drawn and every claim checked
# against a formula. The DDLS paper's headline results are on images: it takes a GAN that has already been
# trained, reads its discriminator as an energy, and samples the corrected distribution $p_g\, e^{d} / Z_0$
# with Langevin dynamics in the latent space. Before any of that (chapter 09) we need the trained pair. This
# chapter produces it.
#
# What does DDLS ask of the pair?
#
# - A **generator** $G$ whose samples already cover the data reasonably well. DDLS reweights $p_g$; it
#   cannot create mass where $G$ puts none (chapter 05, exercise 4).
# - A **discriminator** $D$ whose logit $d(x)$ carries information about $\log p_\text{data}(x)/p_g(x)$ and
#   is smooth enough in $x$ that the latent energy $E(z) = \tfrac12\lVert z\rVert^2 - d(G(z))$ can be followed
#   by gradient steps. The raw logit of a GAN discriminator is not that log ratio; chapter 09 *calibrates* it
#   against the frozen generator. But calibration can only rescale what $D$ has learned, so $D$ must come
#   out of training informative and well behaved.
#
# The paper starts from an SN-GAN (Miyato et al. 2018): a discriminator whose every layer is spectrally
# normalised, trained with the hinge loss. Both choices are about the second requirement. A discriminator
# that is free to become arbitrarily steep separates real from generated images perfectly early on, and
# then its gradients tell the generator nothing useful; spectral normalisation bounds how fast $d$ can
# change with $x$, so its gradient stays informative both for the generator during training and for the
# Langevin chains afterwards.
#
# The paper trains on CIFAR-10, which takes a GPU. This chapter trains the same recipe on **stacked
# digits**: three real $8\times8$ handwritten digits in the red, green and blue channels of one image. A CPU
# trains an SN-GAN on them in a few minutes, and they have a property that CIFAR-10 lacks: every image
# belongs to one of exactly $10^3 = 1{,}000$ modes, which a digit classifier can read off a sample. So we can
# *count* what the generator covers. One switch at the top of the notebook trains on CIFAR-10 instead. We
# derive the recipe, train it with `ebmlib`, and check what can be checked about a training run: the losses
# behave as the derivation says, the samples move towards the data (measured by mode counts and a Fréchet
# distance), and a run that is killed resumes exactly where it would have been.

# %%
# %config InlineBackend.figure_formats = ['png']
import inspect
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.image import imread

import ebmlib
from ebmlib import checkpoint, losses, metrics, nets, plot
from ebmlib.digits import mode_digits
from ebmlib.features import classifier_accuracy
from ebmlib.images import image_grid, load_images, to_float
from ebmlib.recipes import image_table, pipeline
from ebmlib.samplers import sample
from ebmlib.train_images import ema_decay, learning_rate

# The one switch of this chapter: the data set to train on.
#   "stacked-digits": three 8x8 handwritten digits an image, 1,000 modes; trains on a CPU in minutes.
#   "cifar10": the paper's data set and nets; needs a GPU and the archive data/cifar-10-python.tar.gz
#              (downloaded when missing, or found in the folder $EBMLIB_DATA).
DATASET = "stacked-digits"

plot.use_style()
SMOKE = ebmlib.smoke()
# Small nets on the CPU: a second thread gains little, and when another job shares the cores the threads
# wait for each other and training runs many times slower. (On a GPU the CPU threads hardly matter.)
torch.set_num_threads(1)
print(f"{'smoke' if SMOKE else 'full'} mode, data set {DATASET!r}; torch threads {torch.get_num_threads()} "
      f"of {os.cpu_count()} CPU cores")
notebook_start = time.perf_counter()

# %% [markdown]
# > **About the stored outputs.** The outputs saved in this notebook come from a full run on stacked digits
# > on a CPU with two cores: the whole notebook, training included, runs in a few minutes there (the
# > last cell prints how long). The
# > CIFAR-10 branch (`DATASET = "cifar10"`) did **not** run for these outputs. It trains the paper's nets for
# > 100,000 generator steps with five discriminator steps each, which needs a GPU, and it writes its run to
# > `runs/sngan/`, the folder that `make train-cifar10` fills too: train from the command line, and this
# > notebook finds the finished run and only reads it. The smoke mode (`EBMLIB_SMOKE=1`, used by the tests)
# > trains for a few steps into a temporary folder.

# %%
ROOT = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "pyproject.toml").exists()), Path.cwd())
SCRATCH = Path(tempfile.mkdtemp(prefix="ebmlib_ch08_"))  # throw-away runs, removed at the end
DIGITS = DATASET == "stacked-digits"
if DATASET not in ("stacked-digits", "cifar10"):
    raise ValueError(f"DATASET must be 'stacked-digits' or 'cifar10', got {DATASET!r}")
DEVICE = ebmlib.default_device()
if DIGITS:   # the CPU recipe of ebmlib.recipes.image_table; chapter 09 reads this run
    NETS, TRAIN, RUN = image_table.NETS, {**image_table.TRAIN, "seed": 0}, ROOT / "runs" / "digits"
    FILES = dict(sample_every=100, checkpoint_every=500, log_every=20)
else:        # the paper's recipe and nets; `make train-cifar10` trains the same run
    NETS, TRAIN, RUN = dict(arch="cnn", latent_dim=128, ch=None), {**pipeline.PAPER_TRAIN, "seed": 0}, ROOT / "runs" / "sngan"
    FILES = dict(sample_every=5000, checkpoint_every=1000, log_every=100)
if SMOKE:
    TRAIN, RUN = {**TRAIN, "steps": 30}, SCRATCH / "run"
    FILES = dict(sample_every=5, checkpoint_every=10, log_every=5)
    NETS = NETS if DIGITS else {**NETS, "ch": 16}  # the paper's nets take seconds a step on a CPU
print(f"device {DEVICE}; run folder {'a temporary folder' if SMOKE else RUN.relative_to(ROOT)}")

# %% [markdown]
# ## The data
#
# The UCI handwritten digits (shipped with scikit-learn, checked by their SHA-256) are grey images of
# $8\times8$ pixels; a fixed quarter of each class is held out for testing. A stacked digit draws three of
# the training digits independently and puts them into the red, green and blue channels. Its **mode** is the
# triple of labels, numbered $100\,r + 10\,g + b$, so there are 1,000 modes of equal weight: the
# Stacked-MNIST construction, on a scale a CPU can train on. `ebmlib` builds 50,000 training images this way,
# and 10,000 test images from the held-out digits (the counts are printed below).
#
# A colour image of three overlaid digits is hard to read: where the strokes cross, the colours mix. So next
# to the colour images we draw each channel on its own in grey: one column an image, one row a channel. The
# labels under the columns are the images' modes.

# %%
images, labels = load_images(DATASET)
print(f"{DATASET}: {images.shape[0]:,} training images {tuple(images.shape[1:])}, {images.dtype}")
real = to_float(images[:32])
print(f"as floats: range [{real.min():.2f}, {real.max():.2f}]")
assert real.min() >= -1 and real.max() <= 1


def channel_strip(ax, x, names=None):
    """Images (N, C, H, W) in [-1, 1] as a grey grid, one column an image, one row a channel."""
    n, c, h = x.shape[:3]
    ax.imshow(image_grid(x.transpose(0, 1).reshape(n * c, 1, h, -1), nrow=n)[..., 0], cmap="gray",
              interpolation="nearest")
    ax.set_yticks([2 + (h + 2) * i + h / 2 - 0.5 for i in range(c)], "RGB"[:c])
    ax.set_xticks([2 + (h + 2) * i + h / 2 - 0.5 for i in range(n)], names or [""] * n)
    ax.tick_params(length=0)
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)


if DIGITS:
    counts = labels.bincount(minlength=1000)
    print(f"modes: {int((counts > 0).sum())} of 1000 present, {counts.min()} to {counts.max()} images each")
    single = {split: load_images("digits", train=split)[0] for split in (True, False)}
    print(f"built from the digits: {len(single[True]):,} training and {len(single[False]):,} held-out grey images "
          f"{tuple(single[True].shape[1:])}; {len(load_images(DATASET, train=False)[0]):,} stacked test images")
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw=dict(width_ratios=[1, 2.4]))
    axes[0].imshow(image_grid(real[:24], nrow=8), interpolation="nearest")
    axes[0].set_title("stacked digits (RGB)"), axes[0].axis("off")
    channel_strip(axes[1], real[:12], ["".join(map(str, rgb)) for rgb in mode_digits(labels[:12]).tolist()])
    axes[1].set_title("the first 12, channel by channel (labels: the modes)")
else:
    fig, ax = plt.subplots(figsize=(6, 3.3))
    ax.imshow(image_grid(real, nrow=8), interpolation="nearest")
    ax.set_title("training images"), ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The scores later in the chapter read samples with a classifier. For stacked digits it is a small CNN
# trained on the single training digits (never on samples), applied to each channel on its own: its three
# readings give a sample's mode, its confidences say whether each channel looks like a digit at all. Before
# trusting it we measure its accuracy on the held-out digits. (For CIFAR-10 the same function trains a
# classifier of the ten classes; its penultimate features give a Fréchet distance, which is not the FID.)

# %%
extractor = pipeline.extractor("classifier", DATASET, progress=False)
base = ebmlib.images.dataset(DATASET).classifier_on or DATASET   # the data set the classifier learned
test_images, test_labels = load_images(base, train=False)
accuracy = classifier_accuracy(extractor.model, test_images, test_labels)
print(f"{extractor.name}: accuracy {accuracy:.3f} on the {len(test_labels):,} held-out images of {base!r}")
if DIGITS:
    assert accuracy >= 0.97, accuracy

# %% [markdown]
# ## The hinge loss
#
# SN-GAN trains with the hinge loss. With $d$ the discriminator's output (a real number, no sigmoid),
#
# $$L_D = \mathbb E_{x\sim p_\text{data}}\big[\max(0, 1 - d(x))\big] + \mathbb E_{z\sim p_0}\big[\max(0, 1 + d(G(z)))\big],
# \qquad L_G = -\,\mathbb E_{z\sim p_0}\big[d(G(z))\big].$$
#
# The discriminator is asked to push real images above $+1$ and generated ones below $-1$, and it stops
# caring about an image once it is on the right side of its margin. The generator simply climbs $d$.
#
# Two facts about $L_D$ organise what we will see in the loss curves.
#
# **A blind discriminator scores 2.** If $d \equiv 0$, both hinge terms are 1, so $L_D = 2$. A freshly
# initialised discriminator has tiny outputs (we will measure them) and scores close to 2; a value clearly
# below 2 means $D$ has found *some* difference between real and generated images.
#
# **At its best response, $L_D$ measures total variation.** Fix $G$, write $p = p_\text{data}$ and
# $q = p_g$, and minimise $L_D = \int p\,[1-d]^+ + q\,[1+d]^+ \,dx$ point by point. Outside $[-1, 1]$ one of the
# terms grows while the other is already 0, so the minimiser lies in $[-1, 1]$, where the integrand is
# $p(1-d) + q(1+d) = (p + q) - d\,(p - q)$, linear in $d$. Hence
#
# $$d^*(x) = \operatorname{sign}\big(p(x) - q(x)\big), \qquad \min_d L_D = \int (p + q) - |p - q| \,dx = 2 - 2\,\mathrm{TV}(p, q).$$
#
# So a discriminator loss near 2 means the generated distribution is hard to tell from the data, and a loss
# near 0 means the two barely overlap. Since no discriminator does better than the best one, *any* $D$'s
# loss gives a lower bound, $\mathrm{TV}(p, q) \ge 1 - L_D/2$: a discriminator that is not at its best
# response (and in training it never is) can only understate the distance. Note also what $d^*$ is *not*:
# it is a sign, saturated at $\pm 1$, not the log density ratio $\log p/q$ that the energy-based reading
# needs. This is why chapter 09 calibrates $d$ before using it as an energy. Here is the library's loss; it
# is the formula above, line for line.

# %%
print(inspect.getsource(losses.Hinge))

# %% [markdown]
# ## Spectral normalisation
#
# The discriminator is a composition of linear maps $W_l$ (convolutions, a final linear layer) and
# activations $a_l$ (LeakyReLU with slope 0.1). Lipschitz constants multiply under composition, and
# LeakyReLU is 1-Lipschitz, so
#
# $$\lVert d \rVert_\text{Lip} \;\le\; \prod_l \lVert a_l \rVert_\text{Lip}\, \sigma_\text{max}(W_l) \;\le\; \prod_l \sigma_\text{max}(W_l),$$
#
# where $\sigma_\text{max}(W)$, the spectral norm, is the largest singular value: the most that $W$ can
# stretch a vector. Spectral normalisation replaces every weight by
#
# $$\bar W = W / \sigma_\text{max}(W),$$
#
# so that each layer has $\sigma_\text{max}(\bar W) = 1$ and the product of the bounds is 1. Computing a
# singular value decomposition at every step would be expensive; power iteration is cheap. Keep two vectors
# $u$ and $v$ with the layer and, at each forward pass in training mode, refine them once:
#
# $$v \leftarrow \frac{W^\top u}{\lVert W^\top u\rVert}, \qquad u \leftarrow \frac{W v}{\lVert W v\rVert}, \qquad \sigma_\text{max}(W) \approx u^\top W v.$$
#
# One iteration a pass is enough because the weights change little from one step to the next: the vectors
# carry over and stay close to the top singular pair. (They are state, and a checkpoint must save them.) In
# evaluation mode the stored vectors are used as they are.
#
# Two honest caveats. First, for a convolution the normalised matrix is the kernel reshaped to
# $(c_\text{out}, c_\text{in} k^2)$, which is what Miyato et al. normalise; the norm of the convolution as an
# operator on images can be a few times larger, so $d$ is Lipschitz with a moderate constant, not exactly 1.
# Second, the bound constrains $D$, not the game: it keeps $d$ from becoming a cliff, so that
# $\nabla_x d$ stays informative for $G$ (and for the Langevin chains of DDLS), but it does not by itself make
# $d$ a log density ratio.
#
# ## The networks, sized by the data
#
# `ebmlib.nets` holds the SN-GAN "standard CNN" pair, built for the shape $(C, S, S)$ of the data set's
# images. Both nets work between the image and a $4\times4$ feature map, and the image size sets how many
# 2x stages lie in between: $\log_2(S/4)$, so **one** stage for $8\times8$ digits and **three** for
# $32\times32$ CIFAR-10 images.
#
# - The **generator** maps $z$ through a linear layer to a $4\times4$ map with $c\,2^\text{stages}$ channels,
#   then each stage is a stride-2 transposed convolution that doubles the size and halves the channels (with
#   batch norm and ReLU), and a last $3\times3$ convolution with a $\tanh$ makes the $C$ channels of the
#   image in $[-1, 1]$, the scale of the real images.
# - The **discriminator** mirrors it: a $3\times3$ convolution to $c$ channels, then per stage a $4\times4$
#   stride-2 convolution that halves the size and a $3\times3$ one that doubles the channels (LeakyReLU 0.1
#   after each), and a linear layer on the flattened $4\times4$ map. Every layer is spectrally normalised.
#
# At $32\times32$ with $c = 64$ and $z \in \mathbb R^{128}$ these are the paper's nets, layer for layer. For
# stacked digits the CPU recipe takes $c = 32$ and $z \in \mathbb R^{32}$. Here are the nets of the chosen
# data set, and the parameter counts at both sizes.

# %%
torch.manual_seed(TRAIN["seed"])  # as pipeline.train does: this is the pair the run starts from
G0, D0 = pipeline.build(NETS["arch"], NETS["latent_dim"], NETS["ch"], DATASET)
print(G0)
print(D0.main, D0.linear.__class__.__name__, tuple(D0.linear.weight.shape))
G_paper, D_paper = pipeline.build("cnn", dataset="cifar10")   # the paper's width and latent size
for name, shape, (G_, D_) in [(DATASET, images.shape[1:], (G0, D0)), ("cifar10 (paper)", (3, 32, 32), (G_paper, D_paper))]:
    print(f"{name:15s} images {tuple(shape)}: {nets.image_stages(shape)} stage(s) of 2x, c = {G_.ch}, "
          f"z in R^{G_.latent_dim}; G {nets.count_parameters(G_):>9,} parameters, D {nets.count_parameters(D_):>9,}")
with torch.no_grad():
    out = G0.eval()(torch.randn(4, G0.latent_dim))
print(f"G0(z) for 4 latents: shape {tuple(out.shape)}, range [{out.min():.2f}, {out.max():.2f}]")
assert tuple(out.shape[1:]) == tuple(images.shape[1:])
# nets.py documents 3.8M and 2.9M parameters for the paper's nets
n_G, n_D = nets.count_parameters(G_paper), nets.count_parameters(D_paper)
assert abs(n_G / 3.8e6 - 1) < 0.05 and abs(n_D / 2.9e6 - 1) < 0.05, (n_G, n_D)

# %% [markdown]
# Is every layer of $D$ normalised, and is the largest singular value of each normalised weight 1? We ask
# the library for the spectrally normalised layers of the fresh discriminator and compare their number with
# the number of weight layers. Then we compute each $\sigma_\text{max}$ exactly, by a singular value
# decomposition of the reshaped weight: for the raw weight $W$ (the parameter the optimiser updates), for
# $\bar W$ as the fresh net uses it, and for $\bar W$ after 100 forward passes in training mode, each of which
# runs one more power iteration. The net is in eval mode while we measure, so that measuring does not itself
# refine the estimate. (We work on a copy: `D0` stays the run's starting point.)

# %%
D_check = pipeline.build(NETS["arch"], NETS["latent_dim"], NETS["ch"], DATASET)[1]
D_check.load_state_dict(D0.state_dict())
weight_layers = [m for m in D_check.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
sn_layers = nets.spectral_norm_layers(D_check)
print(f"{len(weight_layers)} weight layers, {len(sn_layers)} of them spectrally normalised")


def sigma_max(w):
    return torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item()


D_check.eval()
raw = [sigma_max(layer.parametrizations.weight.original) for _, layer in sn_layers]
fresh = [sigma_max(layer.weight) for _, layer in sn_layers]  # W / sigma, sigma from the stored vectors
D_check.train()
with torch.no_grad():
    for _ in range(100):  # any input will do: the power iteration only looks at the weights
        D_check(torch.zeros(2, *images.shape[1:]))
D_check.eval()
refined = [sigma_max(layer.weight) for _, layer in sn_layers]
print(f"{'layer':8s} {'weight shape':>18s} {'raw W':>7s} {'W_bar, fresh':>13s} {'W_bar, +100 iterations':>23s}")
for (name, layer), a, b, c in zip(sn_layers, raw, fresh, refined):
    print(f"{name:8s} {str(tuple(layer.weight.shape)):>18s} {a:7.3f} {b:13.4f} {c:23.4f}")
assert len(sn_layers) == len(weight_layers) == 2 + 2 * nets.image_stages(images.shape[1:])
# the wide layers of the 32x32 nets converge more slowly: up to 1.034 fresh, 1.003 refined
tolerance = (0.01, 0.001) if DIGITS else (0.05, 0.005)
assert all(abs(s - 1) < tolerance[0] for s in fresh) and all(abs(s - 1) < tolerance[1] for s in refined), (fresh, refined)

# %% [markdown]
# The raw weights have norms well below 1; after normalisation every layer sits at 1. In the fresh net
# some layers overshoot by a few thousandths: PyTorch starts the vectors with a short run of power
# iterations, the estimate of $\sigma_\text{max}$ approaches the true value from below, and dividing by it
# leaves a norm slightly above 1. A hundred more iterations (training runs $n_\text{dis} + 1$ of them with
# every generator step, one per forward pass of $D$) close the gap. We check the trained discriminator the
# same way below.
#
# ## The training recipe
#
# Four more ingredients complete the recipe: SN-GAN's, plus an average of the generator's weights, which
# later work added. The paper's settings for CIFAR-10 (`pipeline.PAPER_TRAIN`) and the CPU recipe for
# stacked digits (`image_table.TRAIN`, which chapter 09 uses too):

# %%
for name, settings in [("paper (CIFAR-10)", pipeline.PAPER_TRAIN), ("CPU (stacked digits)", image_table.TRAIN)]:
    print(f"{name:21s}", {k: settings[k] for k in ("steps", "n_dis", "batch_size", "loss", "lr_g", "lr_d", "betas",
                                                 "lr_decay", "ema")})

# %% [markdown]
# - **$n_\text{dis}$ discriminator updates a generator update.** Each on a fresh real batch and a fresh
#   generated batch. The generator follows $\nabla_x d$, so $d$ should be close to a best response to the
#   *current* generator; the paper buys that with five cheap $D$ steps. The CPU recipe spends its small
#   budget on generator steps instead, with one $D$ step each and twice the learning rate; the loss curves
#   below show whether the discriminator keeps pace.
# - **Adam with $\beta_1 = 0$, $\beta_2 = 0.9$** for both nets. No momentum: in a two-player game the other
#   player moves, and a gradient remembered from several steps ago points somewhere stale.
# - **Linear decay of the learning rate.** The update that follows $k$ completed generator steps (out of $K$)
#   uses
#
#   $$\eta_k = \eta_0 \Big(1 - \frac{k}{K}\Big), \qquad k = 0, \dots, K-1,$$
#
#   from the full rate at the start to $\eta_0/K$ at the last step. It is a pure function of the step, so a
#   resumed run needs no scheduler state. Late in training the iterates of a GAN circle around rather than
#   converge; a shrinking step shrinks the circles.
# - **An exponential moving average (EMA) of $G$'s weights.** After generator step $k$,
#
#   $$\bar\theta_k = \beta_k\, \bar\theta_{k-1} + (1 - \beta_k)\, \theta_k, \qquad \beta_k = \min\Big(\beta, \frac{1 + k}{10 + k}\Big),$$
#
#   starting from $\bar\theta_0 = \theta_0$. Samples, and chapter 09, use the averaged generator; the
#   discriminator, though, was trained against the raw generator $\theta_k$, another reason to calibrate $d$
#   against the generator that is actually sampled.
#
# How far back does the average reach? Let $A_k$ be the mean age (in steps) of the weights in
# $\bar\theta_k$. The recursion ages the old average by one step and adds the new weights at age 0, so
# $A_k = \beta_k (A_{k-1} + 1)$. Once $\beta_k = \beta$ for good, this settles at $\beta/(1-\beta)$ steps. But
# the warm-up $\frac{1+k}{10+k}$ stays below $\beta$ until $k = 9/(1-\beta) - 10$, and while it rules,
# $A_k = (k+1)/10$ solves the recursion:
#
# $$\frac{1+k}{10+k}\Big(\frac{k}{10} + 1\Big) = \frac{1+k}{10+k}\cdot\frac{k+10}{10} = \frac{k+1}{10}.$$
#
# (The start $A_0 = 0$ differs from $1/10$, but that difference is multiplied by every $\beta_k$ and dies
# out.) So while the warm-up rules the EMA is, whatever $\beta$ says, an average **over about the last tenth
# of training**. The table runs the recursion with the library's schedule for both recipes; the plots show
# the learning rate and the EMA's weight of the newest generator over the run we are about to train.

# %%
print(f"{'recipe':21s} {'ema':>6s} {'steps K':>8s} {'warm-up rules to':>17s} {'beta/(1-beta)':>14s} "
      f"{'mean age at K':>14s} {'(K+1)/10':>9s}")
for name, settings in [("paper (CIFAR-10)", pipeline.PAPER_TRAIN), ("CPU (stacked digits)", image_table.TRAIN)]:
    K, beta, age = settings["steps"], settings["ema"], 0.0
    for k in range(1, K + 1):
        age = ema_decay(k, beta) * (age + 1)
    print(f"{name:21s} {beta:6} {K:8,} {9 / (1 - beta) - 10:17,.0f} {beta / (1 - beta):14,.0f} {age:14,.1f} "
          f"{(K + 1) / 10:9,.1f}")
assert abs(age / ((K + 1) / 10) - 1) < 1e-3, age  # the CPU recipe: the warm-up rules throughout

K = TRAIN["steps"]

ks = range(0, K, max(1, K // 500))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(ks, [learning_rate(k, K, TRAIN["lr_g"], TRAIN["lr_decay"]) for k in ks])
axes[0].set_xlabel("generator step"), axes[0].set_ylabel("learning rate"), axes[0].set_title("linear decay")
axes[1].semilogy(ks, [1 - ema_decay(k + 1, TRAIN["ema"]) for k in ks])
axes[1].set_xlabel("generator step"), axes[1].set_ylabel(r"$1 - \beta_k$"), axes[1].set_title("EMA weight of the newest G")
plt.tight_layout()
plt.show()
assert learning_rate(0, K, TRAIN["lr_g"]) == TRAIN["lr_g"]
assert abs(learning_rate(K - 1, K, TRAIN["lr_g"]) - TRAIN["lr_g"] / K) < 1e-15

# %% [markdown]
# In the CPU recipe the warm-up rules throughout (it would until step 8,990), so at the end the average has
# a mean age of 200.1 steps, a tenth of the run, not the 999 that $\beta = 0.999$ suggests. In the paper's
# run the cap $\beta = 0.9999$ takes over only after step 89,990, and the mean age ends at 9,631.5 steps,
# just under a tenth of the run.
#
# ## Training
#
# `ebmlib.recipes.pipeline.train` puts it together: it builds the pair from the seed, loads the data onto the
# device, and calls the training loop `ebmlib.train_images.train_images`. Into the run folder it writes
# `run.json` (the settings), `checkpoint.pt` (every `checkpoint_every` steps and at the end), `metrics.jsonl`
# (the mean losses every `log_every` steps) and `samples/step_NNNNNN.png` (a grid of samples from the EMA
# generator at fixed latents every `sample_every` steps). If the folder already holds a checkpoint, training
# resumes from it, and a finished run returns at once: run this cell a second time and it only reads. On a
# GPU the forward passes run in bf16.

# %%
ckpt_path = RUN / "checkpoint.pt"
finished = ckpt_path.exists() and checkpoint.load(ckpt_path, required=("step",))["step"] >= TRAIN["steps"]
if not DIGITS and not SMOKE and not finished and DEVICE.type != "cuda":
    raise RuntimeError("The CIFAR-10 run trains the paper's nets for 100,000 generator steps: it needs a GPU. "
                       "Train with `make train-cifar10` on a machine with one (the run lands in runs/sngan, where "
                       "this notebook finds it), or set DATASET = 'stacked-digits'.")
history = pipeline.train(RUN, dataset=DATASET, progress=not (SMOKE or DIGITS), **NETS, **{**TRAIN, **FILES})
log = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines()]
print("settings:", {**TRAIN, **FILES})
print(f"{'read the finished run' if finished else 'trained'}: step {history['start_step']} -> {history['step'][-1]}; "
      f"training took {log[-1]['seconds']:.0f} s (from the log); last D loss {history['d_loss'][-1]:.3f}, "
      f"G loss {history['g_loss'][-1]:.3f}")
print("run folder:", sorted(p.name for p in RUN.iterdir()))

# %% [markdown]
# ## Loss curves
#
# The log has one line per `log_every` steps with the mean losses over those steps.

# %%
steps = history["step"]
d_loss, g_loss = history["d_loss"], history["g_loss"]
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.plot(steps, d_loss, label="D loss (hinge)")
ax.plot(steps, g_loss, label=r"G loss $-\mathbb{E}\,d(G(z))$")
ax.axhline(2.0, color="gray", ls=":", label="blind D ($d \\equiv 0$)")
ax.set_xlabel("generator step"), ax.legend(loc="center right"), ax.set_title("losses, means over log windows")
plt.tight_layout()
plt.show()
early = d_loss[: max(1, len(d_loss) // 10)]
tail = d_loss[-max(1, len(d_loss) // 10):]
d_end = sum(tail) / len(tail)
top = max(range(len(d_loss)), key=d_loss.__getitem__)
print(f"D loss: first window {d_loss[0]:.3f}, lowest in the first tenth {min(early):.3f}, lowest overall "
      f"{min(d_loss):.3f}, highest {d_loss[top]:.3f} (at step {steps[top]:,}); mean over the last tenth {d_end:.3f}, "
      f"so TV(p_data, p_g) >= {1 - d_end / 2:.3f}")
if DIGITS:  # measured for the stacked-digit recipe (full and smoke); not for CIFAR-10
    assert min(early) < 1.8, "early on, D should quickly tell the untrained G's images from real ones"
    assert min(d_loss) > 1.0, "D should never win outright"

# %% [markdown]
# Read the curves with the two facts from the derivation. The untrained generator's images are all alike
# and far from digits, and the discriminator, even with one update a step, tells them apart at once: its
# loss averages 1.446 over the first log window and dips to 1.429 soon after, the lowest of the run. Then
# the generator catches up, and
# the loss climbs until it touches 2.002 at step 320, where a discriminator that sees no difference sits.
# For the rest of the run it drifts slowly down again: the generator's remaining flaws are finer and the
# discriminator finds them, while the shrinking learning rate lets both players settle. The last tenth's
# mean, 1.724, says by the lower bound that the total variation between the data and the generator is at
# least 0.138; the true distance can be larger, since this $D$ is one update from its last position, not a
# best response. A healthy run does neither of the two things that go wrong: it does not drive the $D$ loss
# to 0 (a discriminator that separates perfectly, leaving the generator lost), and it does not pin it at 2
# for good (a discriminator that has stopped learning). The generator's loss $-\mathbb E\,d(G(z))$ starts
# negative, while $D$ pushes the first samples down, and then hovers near 0: $G$ climbs $d$ about as fast as
# $D$ pushes its samples down.
#
# ## Samples during training
#
# The grids use the same latent vectors at every step, so each cell of a grid follows one latent
# through training. The top row shows a few of the grids in colour; the bottom row shows the same grids'
# red channel in grey, where a single digit is easy to read.

# %%
grids = {int(p.stem.split("_")[1]): p for p in sorted((RUN / "samples").glob("step_*.png"))}
wanted = [f * TRAIN["steps"] for f in (0.05, 0.1, 0.2, 0.5, 1.0)]
shown = sorted({min(grids, key=lambda s: abs(s - w)) for w in wanted})
rows = 2 if DIGITS else 1
fig, axes = plt.subplots(rows, len(shown), figsize=(2.3 * len(shown), 2.45 * rows), squeeze=False)
for i, step in enumerate(shown):
    grid = imread(grids[step])[..., :3]
    axes[0, i].imshow(grid, interpolation="nearest")
    axes[0, i].set_title(f"step {step:,}")
    if DIGITS:
        axes[1, i].imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[1, i].set_title(f"step {step:,}, red channel", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout()
plt.show()
print("grids shown at steps", shown, f"(of {len(grids)} saved)")

# %% [markdown]
# At step 100 the cells are alike: noisy blobs with a hint of strokes. By step 200 the red channel shows
# strokes in every cell, by step 400 most of them are digits one can name, and from then on most cells keep
# their digit and sharpen it; by the end a few are still malformed. In colour the same grids are a tangle
# of three overlaid digits, and only the channels make their progress legible.
#
# The three channels of one sample are three digits, and the mode is the triple. Below are the first 12
# samples of the final EMA generator, channel by channel, with what the classifier reads in each channel;
# a `?` marks a channel read with confidence at most 0.9 (a sample whose every channel is read confidently
# counts as *high quality* in the scores below).

# %%
G_ema, D = pipeline.load_run(RUN)                # EMA generator, eval mode
G_raw, _ = pipeline.load_run(RUN, ema=False)     # the generator D was trained against
if DIGITS:
    x12 = sample("generator", G_ema, D, 12, seed=7).x
    _, _, probs = metrics.extract(extractor, x12)
    read, confidence, _ = metrics.channel_predictions(probs, extractor.channels, extractor.n_classes)
    names = ["".join(str(k) if c > metrics.HIGH_QUALITY_CONFIDENCE else "?" for k, c in zip(r, cf))
             for r, cf in zip(read.tolist(), confidence.tolist())]
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw=dict(width_ratios=[1, 2.4]))
    axes[0].imshow(image_grid(x12, nrow=6), interpolation="nearest")
    axes[0].set_title("EMA generator (RGB)"), axes[0].axis("off")
    channel_strip(axes[1], x12.cpu(), names)
    axes[1].set_title("channel by channel (labels: the classifier's reading)")
    plt.tight_layout()
    plt.show()
    print("readings:", names)

# %% [markdown]
# ## Measuring the trained generator
#
# The pictures say the samples became digits. The classifier says how many of the 1,000 modes they reach,
# and how evenly. We draw the same number of samples from four sources, with the same latents for the three
# generators, and score each against the training set:
#
# - **held-out data**: stacked digits built from the test digits, which the classifier never saw: what a
#   perfect generator would score, up to the finite sample;
# - **untrained G**: the pair the run started from (`pipeline.train` seeds the initial weights, so building
#   the nets from the same seed rebuilds it);
# - **trained G (raw)**: the last iterate $\theta_K$, the generator the discriminator was trained against;
# - **trained G (EMA)**: the average $\bar\theta_K$.
#
# The scores (`ebmlib.metrics.score`): **modes**, how many of the 1,000 hold at least one sample; **KL**, the
# Kullback-Leibler divergence of the samples' mode histogram from the uniform one, in nats (0 for a perfectly
# even spread; $\log 1000 \approx 6.908$ when every sample shares one mode; about $999/(2N)$ for $N$ samples drawn
# from the uniform itself, the floor a finite sample puts under it); **high quality**, the fraction of
# samples whose every channel the classifier reads with confidence above 0.9; and the **Fréchet classifier
# distance** (FCD), the Fréchet distance between Gaussians fitted to the classifier's features of the samples
# and of the training images, the FID's construction with a digit classifier in place of Inception (so not
# comparable with any FID). On CIFAR-10 only the FCD and the classifier score apply.

# %%
n = ebmlib.pick(10_000, 1_000)
reference = metrics.reference_stats(images, extractor)
held_out, _ = load_images(DATASET, train=False)
generators = {"untrained G": G0.to(DEVICE).eval(), "trained G (raw)": G_raw, "trained G (EMA)": G_ema}
samples = {"held-out data": held_out[:n],
           **{name: sample("generator", G_, D, n, seed=1).x for name, G_ in generators.items()}}
scores = {name: metrics.score(x, reference, extractor) for name, x in samples.items()}

if DIGITS:
    print(f"{'':16s} {'modes (of 1000)':>15s} {'KL (nats)':>10s} {'high quality':>13s} {'FCD':>8s}")
    for name, s in scores.items():
        print(f"{name:16s} {s['modes']:15d} {s['kl']:10.3f} {s['high_quality']:13.3f} {s['fcd']:8.2f}")
    print(f"KL floor for {n:,} uniform draws ~ {999 / (2 * n):.3f}")
else:
    for name, s in scores.items():
        print(f"{name:16s} FCD {s['fcd']:8.2f}, classifier score {s['classifier_score']:.2f}")
print("EMA:", metrics.describe(scores["trained G (EMA)"]))
fcd = {name: s["fcd"] for name, s in scores.items()}
ema_vs_raw = fcd["trained G (EMA)"] / fcd["trained G (raw)"] - 1
print(f"FCD of the EMA generator relative to the raw one: {100 * ema_vs_raw:+.2f}%")

assert fcd["held-out data"] < fcd["trained G (EMA)"] < fcd["untrained G"], fcd
if DIGITS:
    assert fcd["trained G (EMA)"] < ebmlib.pick(0.1, 0.95) * fcd["untrained G"], fcd
    modes = {name: s["modes"] for name, s in scores.items()}
    assert modes["trained G (EMA)"] > modes["untrained G"], modes
    if not SMOKE:
        assert modes["untrained G"] <= 5 and modes["trained G (EMA)"] >= 980, modes
        assert scores["trained G (EMA)"]["kl"] < 0.25 and scores["held-out data"]["high_quality"] > 0.9, scores
        assert abs(ema_vs_raw) < 0.01, ema_vs_raw

# %% [markdown]
# The untrained generator puts every sample into the same mode (its KL, 6.908, is $\log 1000$), with no
# digit the classifier is sure of. The trained EMA generator reaches 992 of the 1,000 modes, with a KL of
# 0.183: about three and a half times the floor of a finite sample (0.050; the held-out data scores 0.051),
# so the mode weights are close to even, though not as even as the data's. Mode dropping, the classic
# failure of GANs, is not this run's main problem. Quality is: a fraction of only 0.158 of the samples have
# three digits the classifier reads with confidence, against 0.929 of the held-out images, and the FCD, 57.27,
# though far below the untrained generator's 668.57, is many times the held-out data's 1.74. Those are the
# numbers chapter 09 sets out to improve with DDLS: the discriminator has learned what separates these
# samples from digits, and Langevin steps on its energy can move them.
#
# The EMA generator and the raw one score almost the same: the same 992 modes, and an FCD that differs by
# -0.48%. The derivation above explains it: the average reaches back over about the last tenth of the run,
# where the linearly decayed learning rate is at most a tenth of its start, so the last iterates barely move
# and their average is close to the last one. The EMA earns its keep in long runs and with learning rates
# that do not decay to zero (exercise 4). All of this is one training run at one seed; exercise 3 asks how
# much of it holds over seeds.
#
# Four checks on the discriminator complete the picture: an untrained one is nearly blind (hinge loss
# $\approx 2$); the trained one scores real images above generated ones; its loss on fresh images bounds the
# total variation from below; and its spectral norms are still 1 after training.

# %%
hinge = losses.get_loss("hinge")
real = to_float(images[torch.randperm(len(images), generator=torch.Generator().manual_seed(2))[:n]]).to(DEVICE)
fake_raw, fake_ema = samples["trained G (raw)"], samples["trained G (EMA)"]
with torch.no_grad():
    D0.to(DEVICE).eval()
    d0_real, d0_fake = D0(real), D0(samples["untrained G"])
    d_real, d_fake, d_fake_ema = D(real), D(fake_raw), D(fake_ema)
    loss0, loss_trained = hinge.discriminator(d0_real, d0_fake).item(), hinge.discriminator(d_real, d_fake).item()
    trained_sigmas = [sigma_max(layer.weight) for _, layer in nets.spectral_norm_layers(D)]
print(f"untrained D: mean |d| {torch.cat([d0_real, d0_fake]).abs().mean():.4f}, hinge loss {loss0:.4f}")
print(f"trained D:   mean d(real) {d_real.mean():+.3f}, d(G_raw(z)) {d_fake.mean():+.3f}, d(G_ema(z)) {d_fake_ema.mean():+.3f}; "
      f"hinge loss on {n:,} fresh images {loss_trained:.3f}, so TV >= {1 - loss_trained / 2:.3f}")
print("sigma_max of the trained D's normalised weights:", [round(s, 4) for s in trained_sigmas])
assert abs(loss0 - 2.0) < 0.05, "an untrained discriminator should be nearly blind"
assert d_real.mean() > d_fake.mean() + 0.1, (d_real.mean(), d_fake.mean())
if DIGITS:
    assert loss_trained < 0.95 * loss0, loss_trained
assert all(abs(s - 1) < 0.02 for s in trained_sigmas), trained_sigmas

# %% [markdown]
# The untrained discriminator's outputs are tiny (a mean $|d|$ of 0.0142), so its hinge loss, 2.0187, is 2
# to within a few hundredths. That is not because its weights are small (spectral normalisation rescales
# them to norm 1 whatever their initial scale) but because a norm of 1 is only a cap: a random layer
# stretches few inputs by that much. The trained discriminator puts real images above generated ones
# (+0.352 against +0.076 on average), a margin that is modest against the hinge's $\pm1$ targets: with one
# update a step and a generator that keeps moving, it never gets near its best response, and what it says
# about the distance is a lower bound (0.138 on fresh images, as over the last tenth of training). It
# rates the EMA's samples lower still (+0.018): they are not the distribution it was trained against, a
# first sign of why chapter 09 calibrates $d$ against the generator it samples. The spectral norms of the
# trained layers are still within a percent of 1: the power iteration has kept up with the weights.
#
# On CIFAR-10 the published yardsticks are the Inception Score and the FID, which need the Inception
# network: Miyato et al. report them for their SN-GANs, torch_mimicry (a PyTorch library built to reproduce
# published GAN scores) for its SN-GAN trained with the same schedule and optimiser, and chapter 09 computes
# them for a CIFAR-10 run.
#
# ## Exact resume
#
# A long run is long enough for a job to be pre-empted, a machine to restart, or a reader to press the
# notebook's Interrupt button. The training loop is written so that none of this changes the result: a run
# that is killed and resumed ends **bit for bit** where an uninterrupted run ends (on the CPU, where every
# operation is deterministic; on a GPU some kernels are not, and the runs agree up to rounding). That holds
# only if the checkpoint carries everything the loop reads: the weights, the batch-norm statistics, the
# power-iteration vectors $u, v$, both Adam states, the EMA copy, the step, and the state of every random
# generator (the latents, the data stream's shuffling). The learning rate and the EMA decay need no state:
# they are functions of the step. (Ctrl-C is the gentle case: the loop finishes the step, saves a checkpoint
# and then stops.)
#
# The test, with tiny nets on stacked digits: run A trains 12 steps straight, checkpointing every 4. Run B
# has the same settings but its process "dies" in the middle of step 7: a forward hook raises an exception
# during a discriminator call, so nothing is saved and steps 5 to 7 are lost. Calling `pipeline.train` on B's
# folder again builds fresh nets, finds the checkpoint of step 4, loads every state from it and redoes the
# lost steps. Then we compare the final weights with `torch.equal`, which demands identical bits.

# %%
tiny = dict(arch="cnn", dataset="stacked-digits", device="cpu", latent_dim=8, ch=8, progress=False, steps=12, n_dis=2,
            batch_size=32, checkpoint_every=4, log_every=2, sample_every=12, seed=0)
print("settings:", tiny)
history_a = pipeline.train(SCRATCH / "straight", **tiny)

d_calls = 0


def die_in_step_7(module, args, output):
    """A global forward hook: with n_dis = 2, D runs 3 times a step; fail on step 7's second D update."""
    global d_calls
    if isinstance(module, nets.SNGANDiscriminator):
        d_calls += 1
        if d_calls == 6 * 3 + 2:
            raise RuntimeError("the process dies in step 7")


hook = torch.nn.modules.module.register_module_forward_hook(die_in_step_7)
try:
    pipeline.train(SCRATCH / "killed", **tiny)
except RuntimeError as crash:
    print("run B:", crash)
finally:
    hook.remove()
history_b = pipeline.train(SCRATCH / "killed", **tiny)
print(f"run B resumed from step {history_b['start_step']} and ran to step {history_b['step'][-1]}")

final_a, final_b = (checkpoint.load(SCRATCH / r / "checkpoint.pt") for r in ("straight", "killed"))
pairs = [(f"{net}.{key}", final_a[net][key], final_b[net][key]) for net in ("G", "D", "G_ema") for key in final_a[net]]
different = [name for name, a, b in pairs if not torch.equal(a, b)]
print(f"{len(pairs)} tensors compared (G, D with its u and v, G_ema), {len(different)} differ; "
      f"logged D losses equal: {history_a['d_loss'] == history_b['d_loss']}")
assert history_b["start_step"] == 4 and final_a["step"] == final_b["step"] == 12
assert not different, different
assert history_a["d_loss"] == history_b["d_loss"] and history_a["g_loss"] == history_b["g_loss"]

# %%
shutil.rmtree(SCRATCH, ignore_errors=True)  # the smoke run and the resume test; a full run stays in its run folder
print(f"the whole notebook ran in {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# ## Summary
#
# - The DDLS paper needs a trained GAN whose generator covers the data and whose discriminator is
#   informative and smooth; SN-GAN provides both, and chapter 09 turns its discriminator into an energy.
# - The hinge loss asks $D$ to put real images above $+1$ and generated ones below $-1$. A blind
#   discriminator scores 2; at the best response the loss is $2 - 2\,\mathrm{TV}(p_\text{data}, p_g)$, so any
#   $D$'s loss bounds the total variation from below; $d^* = \operatorname{sign}(p_\text{data} - p_g)$ is not
#   a log density ratio, hence the calibration.
# - Spectral normalisation divides each weight by its largest singular value, estimated by one power
#   iteration a pass with vectors that persist, so every layer has norm 1 and $d$ cannot become a cliff.
# - The nets are sized by the data: $\log_2(S/4)$ stages of 2x between a $4\times4$ map and the image, one
#   for $8\times8$ stacked digits, three for $32\times32$ CIFAR-10 (the paper's nets).
# - The recipe: $n_\text{dis}$ discriminator updates a generator update, Adam with betas $(0, 0.9)$, a
#   learning rate that decays linearly as a function of the step, and an EMA of the generator's weights, which
#   in its warm-up averages over the last tenth of the run.
# - On stacked digits, a few minutes of CPU take the generator from one mode to nearly all 1,000, evenly
#   weighted; what remains is quality (digits the classifier is unsure of), the target of chapter 09.
# - `ebmlib.recipes.pipeline.train` writes a run folder (checkpoint, log, sample grids) and resumes from it;
#   a killed run resumes and ends bit for bit where an uninterrupted run ends.
#
# ## Exercises
#
# 1. **Without spectral normalisation.** Build a pair with `pipeline.build("cnn", 32, 32, "stacked-digits")`,
#    remove the parametrisation from every layer in `nets.spectral_norm_layers(D)` with
#    `torch.nn.utils.parametrize.remove_parametrizations(layer, "weight")`, and train it with
#    `ebmlib.train_images.train_images` on `ebmlib.images.Batches(images, 64, flip=False)` with the settings of
#    `image_table.TRAIN`. Compare the loss curves and the scores with the run above. What happens to the
#    discriminator's loss and to the norms of its weights, and does the generator keep improving?
# 2. **The best response.** Take $p_\text{data} = \mathcal N(0, 1)$ and $p_g = \mathcal N(\mu, 1)$ in one
#    dimension. From the derivation, write down $d^*$ and the minimal hinge loss as functions of $\mu$ (the
#    total variation of two unit Gaussians is $2\Phi(\mu/2) - 1$). Then train an
#    `ebmlib.nets.MLPDiscriminator(in_dim=1)` with the *logistic* loss on the same two distributions
#    (`ebmlib.train.train_discriminator`) and plot its logit next to $d^*$ and $\log p_\text{data}/p_g$.
#    Which of the two discriminators could serve as an energy without calibration?
# 3. **$n_\text{dis}$ and seeds.** Train the stacked-digit recipe into new run folders with seeds 1 and 2,
#    and with $n_\text{dis} = 2$ at half the generator steps (the same number of discriminator updates).
#    Score each as above. How much do modes, high-quality fraction and FCD vary between seeds, and is the
#    difference that $n_\text{dis}$ makes larger than that?
# 4. **What the EMA buys.** Train with `lr_decay="constant"` and compare the EMA and the raw generator's
#    scores; then with `ema=None`. With the mean-age formula, predict at which step of a constant-rate run
#    the EMA stops averaging over a tenth of the run, and check that its advantage grows when the raw
#    iterates keep moving.
