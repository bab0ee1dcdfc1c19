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
# # 08 · Training an SN-GAN on CIFAR-10
#
# Chapters 01-05 worked in two dimensions, where a density can be drawn and every claim checked against a
# formula. The DDLS paper's headline results are on images: it takes a GAN that has already been trained on
# CIFAR-10, reads its discriminator as an energy, and samples the corrected distribution
# $p_g\, e^{d} / Z_0$ with Langevin dynamics in the latent space. Before any of that (chapter 09) we need the
# trained pair. This chapter produces it.
#
# What does DDLS ask of the pair?
#
# - A **generator** $G$ whose samples already cover CIFAR-10 reasonably well. DDLS reweights $p_g$; it
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
# Langevin chains afterwards. This chapter derives the recipe, trains it with `ebmlib`, and checks what can
# be checked about a training run: the losses behave as the derivation says, the discriminator separates
# real from generated images, the samples move towards the data, and a run that is interrupted resumes
# exactly where it would have been.

# %%
# %config InlineBackend.figure_formats = ['png']
import inspect
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.image import imread

import ebmlib
from ebmlib import checkpoint, losses, metrics, nets, plot
from ebmlib.images import image_grid, load_images, to_float
from ebmlib.recipes import pipeline
from ebmlib.train_images import ema_decay, learning_rate

plot.use_style()
SMOKE = ebmlib.smoke()
# Small nets on the CPU: a second thread gains little, and when another job shares the cores the threads
# wait for each other and training runs many times slower. (On a GPU the CPU threads hardly matter.)
torch.set_num_threads(1)
print("smoke mode" if SMOKE else "full mode")

# %% [markdown]
# > **About the stored outputs.** The outputs saved in this notebook come from a *smoke* run
# > (`EBMLIB_SMOKE=1`) on a CPU: a small fake data set in the CIFAR-10 format (coloured discs on dark, noisy
# > backgrounds, one colour a class), nets a quarter of the paper's width, 300 generator steps. They show
# > that every step of the pipeline works and that the claims hold on a small scale; the samples look like
# > blurry discs, not like CIFAR-10. The full run (the default, without `EBMLIB_SMOKE`) trains the paper's
# > nets on the real CIFAR-10 for 100,000 generator steps. It needs a GPU: a few hours there, days to weeks
# > on a CPU. It downloads CIFAR-10 (170 MB, md5-checked) into `data/` unless the archive
# > `cifar-10-python.tar.gz` is already there (or in `$EBMLIB_DATA`), and writes its run to `runs/sngan/`,
# > the folder that `make train-cifar10` uses too: train from the command line, and this notebook finds the
# > finished run and only reads it.

# %%
ROOT = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "pyproject.toml").exists()), Path.cwd())
TINY_DATA = ROOT / "data" / "tiny"                        # the fake archive (smoke mode)
DATA = Path(os.environ.get("EBMLIB_DATA") or ROOT / "data")  # the real CIFAR-10 (full mode)
SCRATCH = Path(tempfile.mkdtemp(prefix="ebmlib_ch08_"))   # throw-away runs, removed at the end
RUN = SCRATCH / "sngan" if SMOKE else ROOT / "runs" / "sngan"
DEVICE = ebmlib.default_device()
print(f"device {DEVICE}; run folder {RUN if not SMOKE else 'a temporary folder'}")

# %% [markdown]
# ## The data
#
# CIFAR-10 holds 50,000 training images of $32\times32$ pixels in ten classes. `ebmlib.cifar10` downloads
# the official archive, checks its md5, and caches the images as one uint8 tensor $(N, 3, 32, 32)$. During
# training the whole set stays on the device (150 MB as uint8) and batches are drawn there, converted to
# floats in $[-1, 1]$ and flipped left-right at random; no data loader is involved. The generator's last
# layer is a $\tanh$, so real and generated images live on the same scale.

# %%
images, labels = load_images("tiny", TINY_DATA) if SMOKE else load_images("cifar10", DATA)
print(f"{images.shape[0]} training images, {tuple(images.shape[1:])}, {images.dtype}; "
      f"images per class {labels.bincount().tolist()}")
real = to_float(images[:32])
print(f"as floats: range [{real.min():.2f}, {real.max():.2f}]")
assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == (3, 32, 32)
assert real.min() >= -1 and real.max() <= 1

plt.figure(figsize=(6, 3.3))
plt.imshow(image_grid(real, nrow=8), interpolation="nearest")
plt.title("training images" + (" (the tiny fake set)" if SMOKE else ""))
plt.axis("off")
plt.show()

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
# near 0 means the two barely overlap. Note also what $d^*$ is *not*: it is a sign, saturated at $\pm 1$,
# not the log density ratio $\log p/q$ that the energy-based reading needs. This is why chapter 09 fits a
# logistic head on top of $d$ before using it as an energy. Here is the library's loss; it is the formula
# above, line for line.

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
# carry over and stay close to the top singular pair. (They are state, and a checkpoint must save them; we
# will test that.) In evaluation mode the stored vectors are used as they are.
#
# Two honest caveats. First, for a convolution the normalised matrix is the kernel reshaped to
# $(c_\text{out}, c_\text{in} k^2)$, which is what Miyato et al. normalise; the norm of the convolution as an
# operator on images can be a few times larger, so $d$ is Lipschitz with a moderate constant, not exactly 1.
# Second, the bound constrains $D$, not the game: it keeps $d$ from becoming a cliff, so that
# $\nabla_x d$ stays informative for $G$ (and for the Langevin chains of DDLS), but it does not by itself make
# $d$ a log density ratio.
#
# ## The networks
#
# `ebmlib.nets` holds the SN-GAN "standard CNN" pair. The generator maps $z \in \mathbb R^{128}$ through a
# linear layer to a $4\times4$ feature map with $8c$ channels, up through three stride-2 transposed
# convolutions (with batch norm) to $32\times32$, and a last $3\times3$ convolution with a $\tanh$ makes the
# RGB image. The discriminator mirrors it with seven convolutions (four 3x3, three 4x4 with stride 2) and a
# linear layer, all spectrally normalised, with LeakyReLU (slope 0.1) in between. The
# paper's width is $c = 64$; the smoke run uses $c = 16$.

# %%
CH = ebmlib.pick(None, 16)  # None: the paper's width, 64
torch.manual_seed(0)
G_full, D_full = pipeline.build("cnn")
n_G, n_D = nets.count_parameters(G_full), nets.count_parameters(D_full)
print(f"paper width (c = 64): G {n_G:,} parameters, D {n_D:,} parameters")
if CH is not None:
    G_small, D_small = pipeline.build("cnn", ch=CH)
    print(f"smoke width (c = {CH}): G {nets.count_parameters(G_small):,}, D {nets.count_parameters(D_small):,}")
# nets.py documents 3.8M and 2.9M for the paper's nets
assert abs(n_G / 3.8e6 - 1) < 0.05 and abs(n_D / 2.9e6 - 1) < 0.05, (n_G, n_D)

# %% [markdown]
# Is every layer of $D$ normalised, and is the largest singular value of each normalised weight 1? We ask
# the library for the spectrally normalised layers of a fresh paper-width discriminator and compare their
# number with the number of weight layers. Then we compute each $\sigma_\text{max}$ exactly, by a singular
# value decomposition of the reshaped weight: for the raw weight $W$ (the parameter the optimiser updates),
# for $\bar W$ as the fresh net uses it, and for $\bar W$ after 100 forward passes in training mode, each
# of which runs one more power iteration. The nets are in eval mode while we measure, so that measuring
# does not itself refine the estimate.

# %%
weight_layers = [m for m in D_full.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
sn_layers = nets.spectral_norm_layers(D_full)
print(f"{len(weight_layers)} weight layers, {len(sn_layers)} of them spectrally normalised")


def sigma_max(w):
    return torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item()


D_full.eval()
raw = [sigma_max(layer.parametrizations.weight.original) for _, layer in sn_layers]
fresh = [sigma_max(layer.weight) for _, layer in sn_layers]  # W / sigma, sigma from the stored vectors
D_full.train()
with torch.no_grad():
    for _ in range(100):  # any input will do: the power iteration only looks at the weights
        D_full(torch.zeros(2, 3, 32, 32))
D_full.eval()
refined = [sigma_max(layer.weight) for _, layer in sn_layers]
print(f"{'layer':8s} {'weight shape':>18s} {'raw W':>7s} {'W_bar, fresh':>13s} {'W_bar, +100 iterations':>23s}")
for (name, layer), a, b, c in zip(sn_layers, raw, fresh, refined):
    print(f"{name:8s} {str(tuple(layer.weight.shape)):>18s} {a:7.3f} {b:13.4f} {c:23.4f}")
assert len(sn_layers) == len(weight_layers) == 8
assert all(abs(s - 1) < 0.1 for s in fresh) and all(abs(s - 1) < 0.01 for s in refined), (fresh, refined)

# %% [markdown]
# The raw weights have norms anywhere between about 0.25 and 2; after normalisation every layer sits at 1.
# In the fresh net the wide layers overshoot by a few percent: PyTorch starts the vectors with 15 power
# iterations, and the estimate of $\sigma_\text{max}$ approaches the true value from below, so dividing by
# it leaves a norm slightly above 1. A hundred more iterations (training runs six with every generator step
# at $n_\text{dis} = 5$, one per forward pass of $D$) bring every layer to within a fraction of a percent.
# We check the trained discriminator the same way below.
#
# ## The training recipe
#
# Four more ingredients complete the recipe: SN-GAN's, plus an average of the generator's weights, which
# later work added. `ebmlib.recipes.pipeline.PAPER_TRAIN` holds them:

# %%
print(pipeline.PAPER_TRAIN)

# %% [markdown]
# - **$n_\text{dis} = 5$.** Each generator update follows five discriminator updates, each on a fresh real
#   batch and a fresh generated batch. The generator follows $\nabla_x d$, so $d$ should be close to a best
#   response to the *current* generator; five cheap $D$ steps buy that.
# - **Adam with $\beta_1 = 0$, $\beta_2 = 0.9$, learning rate $2\cdot10^{-4}$** for both nets. No momentum:
#   in a two-player game the other player moves, and a gradient remembered from several steps ago points
#   somewhere stale.
# - **Linear decay of the learning rate.** The update that follows $k$ completed generator steps (out of $K$)
#   uses
#
#   $$\eta_k = \eta_0 \Big(1 - \frac{k}{K}\Big), \qquad k = 0, \dots, K-1,$$
#
#   from the full rate at the start to $\eta_0/K$ at the last step. It is a pure function of the step, so a
#   resumed run needs no scheduler state. Late in training the iterates of a GAN circle around rather than
#   converge; a shrinking step shrinks the circles.
# - **An exponential moving average of $G$'s weights.** After generator step $k$,
#
#   $$\bar\theta_k = \beta_k\, \bar\theta_{k-1} + (1 - \beta_k)\, \theta_k, \qquad \beta_k = \min\Big(\beta, \frac{1 + k}{10 + k}\Big), \quad \beta = 0.9999.$$
#
#   The average over the last $\approx 1/(1-\beta) = 10^4$ steps smooths the same oscillation. The warm-up
#   $\frac{1+k}{10+k}$ keeps the random initial weights from dominating the average in short runs. Samples,
#   and chapter 09, use the averaged generator. The discriminator, though, was trained against the raw
#   generator $\theta_k$, another reason to calibrate $d$ against the generator that is actually sampled.

# %%
K = pipeline.PAPER_TRAIN["steps"]
ks = torch.arange(0, K, 100)
lr = [learning_rate(int(k), K, 2e-4, "linear") for k in ks]
beta = [ema_decay(int(k) + 1, 0.9999) for k in ks]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(ks, lr)
axes[0].set_xlabel("generator step"), axes[0].set_ylabel("learning rate"), axes[0].set_title("linear decay")
axes[1].semilogy(ks[1:], [1 - b for b in beta[1:]])
axes[1].set_xlabel("generator step"), axes[1].set_ylabel(r"$1 - \beta_k$"), axes[1].set_title("EMA weight of the newest G")
plt.tight_layout()
plt.show()
assert learning_rate(0, K, 2e-4) == 2e-4 and abs(learning_rate(K - 1, K, 2e-4) - 2e-4 / K) < 1e-15
assert ema_decay(1, 0.9999) < 0.2 and ema_decay(K, 0.9999) == 0.9999

# %% [markdown]
# ## Training
#
# `ebmlib.recipes.pipeline.train` puts it together: it builds the pair, loads the data onto the device, and
# calls the training loop `ebmlib.train_images.train_images` with `PAPER_TRAIN` overridden by the options we
# pass. Into the run folder it writes `run.json` (the settings), `checkpoint.pt` (nets, optimisers, the EMA
# copy, the step and every random-number state; written atomically every `checkpoint_every` steps),
# `metrics.jsonl` (one line of mean losses every `log_every` steps) and `samples/step_NNNNNN.png` (a grid of
# 64 samples from the EMA generator at fixed latents every `sample_every` steps). On a GPU the forward
# passes run in bf16 with the nets in channels-last layout.  If the folder already holds a checkpoint,
# training resumes from it, and a finished run returns at once. In full mode this cell therefore either
# trains for hours (on a GPU) or, after `make train-cifar10` has filled `runs/sngan`, merely reads the
# finished run. The smoke run shrinks the nets, the batch and the number of steps, and uses $n_\text{dis} =
# 1$: with so few steps the discriminator on the easy fake data wins outright when it gets five updates per
# generator update.

# %%
train_options = dict(steps=ebmlib.pick(100_000, 300), n_dis=ebmlib.pick(5, 1), batch_size=ebmlib.pick(64, 32))
io_options = dict(checkpoint_every=ebmlib.pick(1000, 100), sample_every=ebmlib.pick(5000, 50),
                  log_every=ebmlib.pick(100, 10))
print("settings:", {**pipeline.PAPER_TRAIN, **train_options})

ckpt_path = RUN / "checkpoint.pt"
finished = ckpt_path.exists() and checkpoint.load(ckpt_path, required=("step",))["step"] >= train_options["steps"]
if not SMOKE and not finished and DEVICE.type != "cuda":
    raise RuntimeError("The full run trains the paper's nets for 100,000 generator steps on CIFAR-10: it needs a "
                       "GPU. Train with `make train-cifar10` on a machine with one (the run lands in runs/sngan, "
                       "where this notebook will find it), or run the notebook with EBMLIB_SMOKE=1.")
torch.manual_seed(0)
history = pipeline.train(RUN, arch="cnn", dataset="tiny" if SMOKE else "cifar10", root=TINY_DATA if SMOKE else DATA,
                         device=DEVICE, ch=CH, progress=False, **train_options, **io_options)
print(f"steps {history['start_step']} -> {history['step'][-1]} in {history['seconds']:.1f} s this call; "
      f"last D loss {history['d_loss'][-1]:.3f}, G loss {history['g_loss'][-1]:.3f}")
print("run folder:", sorted(p.name for p in RUN.iterdir()))

# %% [markdown]
# ## Loss curves
#
# The log has one line per `log_every` steps with the mean losses over those steps and the learning rate.

# %%
log = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines()]
steps = [r["step"] for r in log]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].plot(steps, [r["d_loss"] for r in log], label="D loss (hinge)")
axes[0].plot(steps, [r["g_loss"] for r in log], label=r"G loss $-\mathbb{E}\,d(G(z))$")
axes[0].axhline(2.0, color="gray", ls=":", label="blind D ($d \\equiv 0$)")
axes[0].set_xlabel("generator step"), axes[0].legend(), axes[0].set_title("losses")
axes[1].plot(steps, [r["lr_g"] for r in log])
axes[1].set_xlabel("generator step"), axes[1].set_ylabel("learning rate"), axes[1].set_title("learning rate used")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the left panel with the two facts from the derivation. The discriminator's loss starts near 2,
# where an uninformed $D$ sits, and falls as $D$ finds differences; by $2 - 2\,\mathrm{TV}$, a loss well
# below 2 says the generator has not caught up with the data, which for a finite generator it never fully
# does. The generator's loss is $-\mathbb E\,d(G(z))$: it rises when $D$ pushes generated images below its
# margin and falls when $G$ climbs back. A healthy run does not drive the $D$ loss to 0 (a discriminator
# that separates perfectly, leaving the generator lost) and does not pin it at 2 (a discriminator that has
# stopped learning). The stored smoke run drifts towards the first failure at its end: on the easy fake data
# a discriminator finds the generator's flaws quickly, and 300 steps are too few for the generator to repair
# them. On CIFAR-10 with the full recipe, watch that the $D$ loss stays well away from 0.
#
# ## Samples during training
#
# The grids use the same 64 latent vectors at every step, so each cell of a grid follows one latent
# through training. We show the first three rows of each grid (24 latents) at four points of the run.

# %%
grids = sorted((RUN / "samples").glob("step_*.png"))
shown = [grids[round(i * (len(grids) - 1) / 3)] for i in range(4)]
fig, axes = plt.subplots(len(shown), 1, figsize=(4.4, 1.95 * len(shown)))
for ax, path in zip(axes, shown):
    ax.imshow(imread(path)[: 2 + 3 * 34], interpolation="nearest")  # first 3 rows: 32-pixel images, 2-pixel gaps
    ax.set_title(f"step {int(path.stem.split('_')[1]):,}")
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# Early grids are nearly uniform: the generator starts out mapping every latent to about the same image.
# Structure then appears from coarse to fine: the overall colour and brightness first, then blobs, then
# their colours and edges. In the stored smoke run most latents end on discs of one or two colours: after
# 300 steps the generator covers only part of the data, a mild case of the mode dropping that DDLS cannot
# repair (chapter 05). A full run has the steps to spread over the whole data set; chapter 09 measures how
# well it does.
#
# ## Checking the run
#
# Four claims, each measured. We load the trained pair back from the checkpoint with
# `pipeline.load_run` (which rebuilds the nets from `run.json` and checks every tensor's name and shape) and
# compare with an untrained pair of the same width (in smoke mode, built from the same seed: the very pair
# the run started from).
#
# 1. An untrained discriminator is nearly blind: its hinge loss is $\approx 2$.
# 2. The trained discriminator's loss, averaged over the last tenth of training, is clearly below 2.
# 3. The trained discriminator separates: its mean output on real images exceeds its mean on generated ones.
# 4. The samples moved towards the data. We measure that with a deliberately crude yardstick: the Fréchet
#    distance between Gaussians fitted to real and generated images *in pixel space*, after averaging
#    $4\times4$ blocks ($8\times8\times3 = 192$ numbers an image). It sees colours, brightness and coarse
#    layout, nothing finer, and it is not the FID; chapter 09 scores the samples properly.
#
# We also repeat the spectral-norm check on the trained discriminator.

# %%
G, D = pipeline.load_run(RUN, device=DEVICE)                 # EMA generator, eval mode
G_raw, _ = pipeline.load_run(RUN, device=DEVICE, ema=False)  # the generator D was trained against
torch.manual_seed(0)
G0, D0 = pipeline.build("cnn", ch=CH)
G0, D0 = G0.to(DEVICE).eval(), D0.to(DEVICE).eval()

n = ebmlib.pick(10_000, 1_000)
gen = torch.Generator().manual_seed(1)
z = torch.randn(n, G.latent_dim, generator=gen).to(DEVICE)
pick_real = torch.randperm(images.shape[0], generator=gen)[:n]
real = to_float(images[pick_real].to(DEVICE))
hinge = losses.get_loss("hinge")


def in_batches(f, x, size=500):
    return torch.cat([f(x[i:i + size]) for i in range(0, x.shape[0], size)])


def pixel_features(x):
    return F.avg_pool2d(x.float(), 4).flatten(1).cpu()


with torch.no_grad():
    fake0, fake_ema, fake_raw = in_batches(G0, z), in_batches(G, z), in_batches(G_raw, z)
    d0_real, d0_fake = in_batches(D0, real), in_batches(D0, fake0)
    d_real, d_fake, d_fake_ema = in_batches(D, real), in_batches(D, fake_raw), in_batches(D, fake_ema)
    loss0 = hinge.discriminator(d0_real, d0_fake).item()
    loss_trained = hinge.discriminator(d_real, d_fake).item()

tail = [r["d_loss"] for r in log[-max(1, len(log) // 10):]]
d_loss_end = sum(tail) / len(tail)
reference = metrics.feature_stats(pixel_features(real))
fd = {name: metrics.frechet_distance(*metrics.feature_stats(pixel_features(x)), *reference)
      for name, x in [("untrained G", fake0), ("trained G (EMA)", fake_ema), ("trained G (raw)", fake_raw)]}

print(f"untrained D: mean |d| {torch.cat([d0_real, d0_fake]).abs().mean():.4f}, hinge loss {loss0:.3f}")
print(f"trained D:   hinge loss logged over the last tenth of training {d_loss_end:.3f}; "
      f"on {n} fresh images {loss_trained:.3f}")
print(f"trained D:   mean d(real) {d_real.mean():+.3f}, mean d(G_raw(z)) {d_fake.mean():+.3f}, "
      f"mean d(G_ema(z)) {d_fake_ema.mean():+.3f}")
for name, value in fd.items():
    print(f"pixel Fréchet distance to the data, {name:16s}: {value:8.2f}  ({n} images each)")
with torch.no_grad():
    trained_sigmas = [torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2).item()
                      for _, layer in nets.spectral_norm_layers(D)]
print("sigma_max of the trained D's normalised weights:", [round(s, 4) for s in trained_sigmas])

assert abs(loss0 - 2.0) < 0.05, "an untrained discriminator should be nearly blind"
assert d_loss_end < 0.9 * loss0, "training should teach D to tell real from generated images"
assert d_real.mean() > d_fake.mean(), "the trained D should score real images above generated ones"
assert fd["trained G (EMA)"] < 0.5 * fd["untrained G"], fd
assert all(abs(s - 1) < 0.02 for s in trained_sigmas), trained_sigmas

# %% [markdown]
# The untrained discriminator's outputs are tiny, so its hinge loss is 2 to within a few thousandths. That
# is not because its weights are small (spectral normalisation rescales them to norm 1 whatever their
# initial scale) but because a norm of 1 is only a cap: a random layer stretches few inputs by that much,
# and the last one, a single unit vector among thousands of features, keeps only the component of the
# feature vector along it. (The untrained generator's images, besides, are nearly flat grey.) After
# training the discriminator scores real images above generated ones, and the samples have closed a large
# part of the distance to the data, as far as this coarse yardstick can tell. The spectral norms of the
# trained discriminator's layers still sit at 1: the power iteration has kept up with the weights.
#
# In full mode expect much more than this smoke run shows. For reference, torch_mimicry (a PyTorch library
# built to reproduce published GAN scores) trained its SN-GAN on CIFAR-10 with the same schedule and
# optimiser (100k steps, $n_\text{dis} = 5$, batch 64, Adam $2\cdot10^{-4}$, betas $(0, 0.9)$, linear decay) and
# reports an Inception Score of 7.97 and an FID of 16.77; its baselines use a ResNet backbone, somewhat
# stronger than the standard CNN trained here. Miyato et al.'s ResNet SN-GAN, the starting point of the DDLS
# paper, has an Inception Score of 8.22 and an FID of 21.7. Chapter 09 computes the scores of this run,
# before and after DDLS.
#
# ## Exact resume
#
# A 100,000-step run takes hours, and hours are long enough for a job to be pre-empted, a session to time
# out, or a reader to press the notebook's Interrupt button. The training loop is written so that none of
# this changes the result: stopped and resumed, a run ends **bit for bit** where an uninterrupted run ends
# (with one exception in the current library, described below).
# That holds only if the checkpoint carries *everything* the loop reads: the weights, the batch-norm
# statistics, the power-iteration vectors of every spectrally normalised layer, both Adam states, the EMA
# copy, the step, and the states of every random-number generator (the latents, and the data stream's
# shuffling and flips). The learning rate and the EMA decay need no state: they are functions of the step.
#
# We test it with tiny nets ($c = 4$) on the CPU, where every operation is deterministic (on a GPU, some
# kernels are not, and a resumed run agrees with an uninterrupted one only up to rounding). Run A trains 16
# steps straight. Run B gets the same settings but is interrupted during step 7: a forward hook counts the
# discriminator's forward passes (three a step with $n_\text{dis} = 2$) and, in the middle of step 7, sends
# this process the SIGINT signal that Ctrl-C or Jupyter's Interrupt button send. The loop finishes the step,
# writes a checkpoint and raises `KeyboardInterrupt`. Then we call `pipeline.train` on B's folder again: it
# builds fresh nets and optimizers, finds the checkpoint, and loads every state from it.
#
# The data stream belongs to that state. `ebmlib.images.Batches` walks through a shuffled copy of the data
# set, epoch by epoch, and its state (the random generator it shuffles and flips with, the current permutation
# and the position in it) goes into the checkpoint too. So the interruption may fall anywhere: with 1,000
# images and batches of 50 an epoch is 20 batches, 10 steps at $n_\text{dis} = 2$, and step 7 lies in the
# middle of the first one.

# %%
resume_settings = dict(arch="cnn", dataset="tiny", root=TINY_DATA, device="cpu", ch=4, progress=False, steps=16,
                       n_dis=2, batch_size=50, checkpoint_every=4, log_every=2, sample_every=8)
run_a, run_b = SCRATCH / "straight", SCRATCH / "interrupted"
torch.manual_seed(0)
history_a = pipeline.train(run_a, **resume_settings)

d_calls = 0


def press_ctrl_c(module, args, output):
    """A global forward hook: SIGINT during the 20th discriminator call (step 7's second D update)."""
    global d_calls
    if isinstance(module, nets.SNGANDiscriminator):
        d_calls += 1
        if d_calls == 6 * 3 + 2:
            signal.raise_signal(signal.SIGINT)


hook = torch.nn.modules.module.register_module_forward_hook(press_ctrl_c)
try:
    torch.manual_seed(0)
    pipeline.train(run_b, **resume_settings)
except KeyboardInterrupt as stop:
    print("KeyboardInterrupt:", stop)
finally:
    hook.remove()
stopped_at = checkpoint.load(run_b / "checkpoint.pt")["step"]
print(f"B's checkpoint is at step {stopped_at}")

history_b = pipeline.train(run_b, **resume_settings)
print(f"B resumed at step {history_b['start_step']} and ran to step {history_b['step'][-1]}")

# %% [markdown]
# Now compare the two final checkpoints tensor by tensor: generator, discriminator (including the
# power-iteration vectors $u, v$, which are buffers) and the EMA generator, with `torch.equal`, which
# demands identical bits.

# %%
final_a, final_b = checkpoint.load(run_a / "checkpoint.pt"), checkpoint.load(run_b / "checkpoint.pt")
compared, different = 0, []
for net in ("G", "D", "G_ema"):
    assert final_a[net].keys() == final_b[net].keys()
    for key in final_a[net]:
        compared += 1
        if not torch.equal(final_a[net][key], final_b[net][key]):
            different.append(f"{net}.{key}")
sn_buffers = [k for k in final_a["D"] if k.endswith("_u") or k.endswith("_v")]
print(f"{compared} tensors compared ({len(sn_buffers)} of them power-iteration vectors), {len(different)} differ")
print(f"D losses, straight:    {[round(x, 6) for x in history_a['d_loss']]}")
print(f"D losses, interrupted: {[round(x, 6) for x in history_b['d_loss']]}")

assert stopped_at == 7, "the loop should finish step 7, save and stop"
assert history_b["start_step"] == 7 and final_a["step"] == final_b["step"] == 16
assert not different, f"resumed run differs from the uninterrupted one in {different}"
assert history_a["d_loss"] == history_b["d_loss"] and history_a["g_loss"] == history_b["g_loss"]
steps_logged = [[json.loads(line)["step"] for line in (r / "metrics.jsonl").read_text().splitlines()]
                for r in (run_a, run_b)]
assert steps_logged[0] == steps_logged[1], steps_logged  # each step logged once, even across the interruption

# %% [markdown]
# Every tensor agrees to the last bit, and so do the logged losses. The interrupted run's log holds each
# step once: when a run resumes, lines written after the checkpoint are dropped, because those steps are
# done again.

# %%
shutil.rmtree(SCRATCH, ignore_errors=True)  # the smoke run and the resume test; a full run stays in runs/sngan

# %% [markdown]
# ## Summary
#
# - The DDLS paper needs a trained GAN whose generator covers the data and whose discriminator is
#   informative and smooth; SN-GAN provides both, and chapter 09 turns its discriminator into an energy.
# - The hinge loss asks $D$ to put real images above $+1$ and generated ones below $-1$. A blind
#   discriminator scores 2; at the best response the loss is $2 - 2\,\mathrm{TV}(p_\text{data}, p_g)$ and
#   $d^* = \operatorname{sign}(p_\text{data} - p_g)$, which is not a log density ratio, hence the calibration.
# - Spectral normalisation divides each weight by its largest singular value, estimated by one power
#   iteration a step with vectors that persist, so every layer has norm 1 and $d$ cannot become a cliff.
# - The recipe: $n_\text{dis} = 5$, Adam $2\cdot10^{-4}$ with betas $(0, 0.9)$, a learning rate that decays
#   linearly as a function of the step, and an exponential moving average of the generator's weights.
# - `ebmlib.recipes.pipeline.train` runs it into a folder of files (checkpoint, log, sample grids) and
#   resumes from the checkpoint; a run stopped by Ctrl-C resumes and ends bit for bit where an uninterrupted run ends.
#
# ## Exercises
#
# 1. **Without spectral normalisation.** Build a pair with `pipeline.build("cnn", ch=16)`, remove the
#    parametrisation from every layer in `nets.spectral_norm_layers(D)` with
#    `torch.nn.utils.parametrize.remove_parametrizations(layer, "weight")`, and train it with
#    `ebmlib.train_images.train_images` on `ebmlib.images.Batches(images, 32)` with the smoke settings.
#    Compare the loss curves and samples with the run above. What happens to the discriminator's loss and to the
#    norms of its weights, and does the generator keep improving?
# 2. **The best response.** Take $p_\text{data} = \mathcal N(0, 1)$ and $p_g = \mathcal N(\mu, 1)$ in one
#    dimension. From the derivation, write down $d^*$ and the minimal hinge loss as functions of $\mu$ (the
#    total variation of two unit Gaussians is $2\Phi(\mu/2) - 1$). Then train an
#    `ebmlib.nets.MLPDiscriminator(in_dim=1)` with the *logistic* loss on the same two distributions
#    (`ebmlib.train.train_discriminator`) and plot its logit next to $d^*$ and $\log p_\text{data}/p_g$.
#    Which of the two discriminators could serve as an energy without calibration?
# 3. **$n_\text{dis}$.** Repeat the smoke run with $n_\text{dis} = 1, 2, 5$ at the same number of
#    discriminator updates (300, 150, 60 generator steps). Plot the discriminator's loss against the number
#    of discriminator updates and compare the pixel Fréchet distances. Which setting spends the compute best
#    on this small problem?
# 4. **What the EMA buys.** Train the smoke run again with `ema=None` (no average) and with `ema=0.99`,
#    and compare the pixel Fréchet distance of the generators with the one above. In a long run, which of the
#    three would you expect to win, and why does the answer depend on the learning rate at the end of
#    training?
