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
# # 09 · DDLS on images: stacked digits and CIFAR-10
#
# Chapter 05 ran Discriminator Driven Latent Sampling on points in the plane, where every density could be
# drawn and every mode counted by eye. The DDLS paper (Che et al. 2020) made its case on images: it took an
# SN-GAN trained on CIFAR-10, whose generator alone scores an Inception Score of 8.22 and an FID of 21.7,
# and without touching a single weight raised the scores to 9.09 and 15.42, only by changing *how the
# generator is sampled*. This chapter follows that pipeline step by step with the pair trained in chapter 08:
#
# 1. calibrate the discriminator, so that its output becomes an estimate of $\log p_\text{data}/p_g$;
# 2. run Langevin chains in the latent space and watch the images change along them (the paper's Figure 3);
# 3. check that the samples are not copies of training images (the paper's Figure 4);
# 4. count what each sampler samples, mode by mode, and score the generator alone, discriminator rejection
#    sampling (DRS), the Metropolis-Hastings GAN (MH-GAN), DDLS and discriminator optimal transport (DOT)
#    on the same pair (the paper's Table 1, on images).
#
# Inception scores on CIFAR-10 need a GPU for hours, and they say little about *which* images a sampler
# favours. So the chapter runs by default on **stacked digits**: three real 8x8 handwritten digits in the
# red, green and blue channels of one image. Every image belongs to one of $10^3 = 1{,}000$ modes, a digit
# classifier reads the mode of every sample, and a sampler can be judged by what it samples: the weights
# it gives the modes, and the quality of the digits inside them. Everything below runs on a CPU in minutes;
# CIFAR-10 is one switch away, in the next cell (the last section says what it needs).

# %%
# %config InlineBackend.figure_formats = ['png']
import json
import math
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import ebmlib
from ebmlib import digits, features, losses, metrics, plot
from ebmlib.images import image_grid, load_images, to_float
from ebmlib.recipes import image_table, pipeline

# The switch. "stacked-digits": 1,000 countable modes, the whole chapter on a CPU in minutes (the stored
# outputs). "cifar10": the paper's experiment; it needs a GPU, the CIFAR-10 archive (in ./data or
# $EBMLIB_DATA) and chapter 08's SN-GAN in runs/sngan (trained here, for hours, when it is missing).
DATASET = "stacked-digits"

plot.use_style()
SMOKE = ebmlib.smoke()
torch.set_num_threads(ebmlib.pick(2, 1))  # a smoke run shares the cores with a second test worker
print("smoke mode" if SMOKE else "full mode", "on", DATASET)

# %% [markdown]
# > **About the stored outputs.** They come from a full run on stacked digits, on a CPU with two cores.
# > The smoke run (`EBMLIB_SMOKE=1`, what the tests execute) trains a pair of its own for a few steps in a
# > scratch folder and draws a few hundred samples a sampler: it checks that every step runs, and its
# > numbers mean nothing beyond that.

# %%
ROOT = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "pyproject.toml").exists()), Path.cwd())
CIFAR = DATASET == "cifar10"
DEVICE = ebmlib.default_device()
if CIFAR:
    if DEVICE.type != "cuda" and not SMOKE:
        raise RuntimeError("DDLS on CIFAR-10 draws 50,000 samples of 1000 Langevin steps through two CNNs (and "
                           "trains the SN-GAN when runs/sngan holds none): it needs a GPU. On a CPU, set "
                           "DATASET = 'stacked-digits'.")
    RUN = ROOT / "runs" / "sngan"                        # chapter 08's run (make train-cifar10)
    NETS, TRAIN, CALIBRATION = dict(arch="cnn"), {}, {}  # pipeline.PAPER_TRAIN, pipeline.PAPER_CALIBRATION
    ROWS = {"generator": ("generator", {}), "drs": ("drs", {"shift_quantile": 0.95}), "mh": ("mh", {"steps": 20}),
            "ddls_paper": ("ddls", {**pipeline.PAPER_DDLS, "amp": True}), "dot": ("dot", {"space": "latent"})}
    N = 50_000
else:
    RUN = ROOT / "runs" / "digits"                       # chapter 08's run
    NETS, TRAIN, CALIBRATION = image_table.NETS, {**image_table.TRAIN, "seed": 0}, image_table.CALIBRATION
    ROWS = dict(image_table.ROWS)                        # generator, DRS, MH-GAN, DDLS (paper and MALA), DOT
    N = 5000
SCRATCH = None
if SMOKE:  # a pair of our own, a few steps of everything, thrown away at the end
    SCRATCH = Path(tempfile.mkdtemp(prefix="ebmlib_ch09_"))
    RUN = SCRATCH / "pair"
    TRAIN = {**TRAIN, "steps": 100, "log_every": 50, "sample_every": 100, "checkpoint_every": 100}
    CALIBRATION = {**CALIBRATION, "steps": 50, "batch_size": 64}
    shorter = {"mh": {"steps": 5}, "ddls_paper": {"steps": 20}, "ddls": {"steps": 10}, "dot": {"steps": 10}}
    ROWS = {name: (sampler, {**options, **shorter.get(name, {})}) for name, (sampler, options) in ROWS.items()}
    N = 400
train_images, train_labels = load_images(DATASET)  # stacked digits: the labels are the modes
test_images, _ = load_images(DATASET, train=False)
print(f"{len(train_images)} training and {len(test_images)} test images of shape {tuple(train_images.shape[1:])}; "
      f"{N} samples a sampler")


def channel_rows(x):
    """Images (N, 3, H, W) -> (3N, 1, H, W), channel-major: drawn with ``image_grid(..., nrow=N)``, row c
    holds channel c of every image, in grey (an RGB stack of three digits is hard to read)."""
    return x.transpose(0, 1).reshape(-1, 1, *x.shape[2:])


def draw(ax, x, nrow):
    """Images (N, C, H, W) in [-1, 1] on ``ax``: stacked digits channel by channel in grey (one row a
    channel), photographs in colour."""
    if CIFAR:
        ax.imshow(image_grid(x, nrow=nrow), interpolation="nearest")
    else:
        ax.imshow(image_grid(channel_rows(x), nrow=nrow)[..., 0], cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([]), ax.grid(False), ax.spines[:].set_visible(False)


fig, ax = plt.subplots(figsize=(9, 1.4))
draw(ax, to_float(train_images[:24]), nrow=24)
ax.set_title("training images" + ("" if CIFAR else ": red, green and blue channel (rows), one image a column"))
plt.show()

# %% [markdown]
# ## The trained pair
#
# DDLS works after training: it needs a generator $G$ and a discriminator $D$, and never updates either.
# We load the pair that chapter 08 trained into `runs/digits`: an SN-GAN with the standard CNN sized for
# 8x8 images (`image_table.NETS`: 32-dimensional latents, base width 32), trained with the hinge loss for
# 2,000 generator steps (`image_table.TRAIN`), seed 0, with an exponential moving average of the generator's
# weights. `pipeline.train` finds the finished checkpoint and returns at once; if the folder is missing, it
# trains the pair here first, which takes minutes on a CPU. (With `DATASET = "cifar10"` it is chapter 08's SN-GAN in
# `runs/sngan`, trained with `pipeline.PAPER_TRAIN`.)

# %%
history = pipeline.train(RUN, dataset=DATASET, progress=False, **NETS, **TRAIN)
print(f"{history['step'][-1]} generator steps ({history['seconds']:.1f} s in this call); "
      f"last D loss {history['d_loss'][-1]:.3f}, G loss {history['g_loss'][-1]:.3f}")
print("nets:", NETS)
G, D = pipeline.load_run(RUN)  # the EMA generator and the raw (hinge) discriminator, eval mode
with torch.no_grad():
    first = G(torch.randn(24, G.latent_dim, generator=torch.Generator().manual_seed(0)).to(DEVICE))
fig, ax = plt.subplots(figsize=(9, 1.4))
draw(ax, first.cpu(), nrow=24)
ax.set_title("generator samples")
plt.show()

# %% [markdown]
# The generator draws digits, most of them readable, some smudged or ambiguous. Whether it draws every
# combination of three digits as often as the data does is not visible in a grid: we will count.
#
# ## Why a hinge discriminator must be calibrated
#
# DDLS samples $p_t(z) \propto p_0(z)\, e^{d(G(z))}$, whose image under $G$ is $p_g e^{d}/Z_0$. That
# distribution is $p_\text{data}$ only if $d(x) = \log p_\text{data}(x)/p_g(x)$. Chapter 02 showed that
# the *logistic* loss has exactly this minimiser. Fix a point $x$ and write $p = p_\text{data}(x)$,
# $q = p_g(x)$; the logistic risk at $x$,
#
# $$p \log\big(1 + e^{-D}\big) + q \log\big(1 + e^{D}\big),$$
#
# is minimised where its derivative $-p\,\sigma(-D) + q\,\sigma(D)$ vanishes, at $D = \log p/q$.
#
# SN-GAN trains $D$ with the **hinge** loss instead. Its risk at $x$ is
#
# $$p \max(0, 1 - D) + q \max(0, 1 + D).$$
#
# Outside $[-1, 1]$ moving $D$ towards the interval never hurts, and inside it the risk is the linear
# function $(p + q) + D\,(q - p)$. The minimiser is therefore $D = +1$ where $p > q$ and $D = -1$ where
# $p < q$: the hinge discriminator at its optimum keeps the *sign* of the log-ratio and throws its
# magnitude away. A real discriminator is never at that optimum (spectral normalisation keeps it smooth,
# and it was trained against a moving generator, not against the EMA generator we sample from), but its
# output is at best a monotone proxy of the log-ratio on an arbitrary scale. Used as $d$ directly, that
# scale acts as an inverse temperature on $p_t$: too large and the chains pile up at the discriminator's
# favourite images, too small and DDLS hardly departs from the generator.
#
# The repair is to train the logit once more, now with the logistic loss, on real images and fresh samples
# of the *frozen* generator that we will sample from:
#
# $$\mathcal L(d) = \mathbb E_{p_\text{data}}\big[\log(1 + e^{-d})\big] + \mathbb E_{p_g}\big[\log(1 + e^{d})\big].$$
#
# `ebmlib.calibrate` offers two forms. `method="head"` fits $d(x) = a\,D(x) + b$ on the frozen $D$:
# logistic regression on one feature, convex, two numbers that cannot overfit; it fixes the scale but keeps
# $D$'s ranking of images (`pipeline.PAPER_CALIBRATION`, the CIFAR-10 path). `method="finetune"` trains a
# copy of the whole discriminator with $\mathcal L$, starting from $D$'s weights, so that it moves towards
# the optimal logistic discriminator for *this* generator, the assumption of the DDLS theorem. The image
# table (`image_table.CALIBRATION`) fine-tunes for 500 steps of 256 real and 256 generated images at a
# learning rate of $2 \cdot 10^{-4}$; we do the same. The constant logit $d = 0$ scores
# $\mathcal L = 2 \log 2 \approx 1.386$: a logit worth sampling with must beat it.

# %%
print("calibration settings:", {**pipeline.PAPER_CALIBRATION, **CALIBRATION})
pipeline.calibrate(RUN, progress=False, **CALIBRATION)
G, d = pipeline.load_calibrated(RUN)
print(f"calibrated logit: {type(d).__name__}, method {d.calibration['method']!r}")

# %% [markdown]
# The check must use images the fit never saw: the test split (stacked from the 450 handwritten digits
# that neither the GAN nor the calibration was trained on) and new samples of the generator. We measure
# the logistic loss and the accuracy of the sign of the logit, before (the raw hinge output $D$) and after.

# %%
n_check = min(ebmlib.pick(10_000, 2000), len(test_images))
draw_seed = torch.Generator().manual_seed(12345)  # not a seed the calibration used
with torch.no_grad():
    real = to_float(test_images[:n_check]).to(DEVICE)
    fake = torch.cat([G(torch.randn(1000, G.latent_dim, generator=draw_seed).to(DEVICE))
                      for _ in range(math.ceil(n_check / 1000))])[:n_check]
    logits = {name: (torch.cat([net(x) for x in real.split(1000)]).float().cpu(),
                     torch.cat([net(x) for x in fake.split(1000)]).float().cpu())
              for name, net in [("raw D", D), ("calibrated d", d)]}
logistic = losses.NonSaturating()
check = {}
for name, (r, f) in logits.items():
    check[name] = {"loss": logistic.discriminator(r, f).item(),
                   "accuracy": ((r > 0).float().mean() + (f < 0).float().mean()).item() / 2}
    print(f"{name:12s} held-out logistic loss {check[name]['loss']:.4f}, accuracy {check[name]['accuracy']:.3f}; "
          f"mean logit on real {r.mean():+.3f}, on generated {f.mean():+.3f} (std {f.std():.3f})")
print(f"constant logit 0: logistic loss {2 * math.log(2):.4f}, accuracy 0.5")
logit_std = logits["calibrated d"][1].std().item()

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for ax, (name, (r, f)) in zip(axes, logits.items()):
    bins = torch.linspace(min(r.min(), f.min()).item(), max(r.max(), f.max()).item(), 50).numpy()
    ax.hist(r.numpy(), bins=bins, alpha=0.6, label="real (test split)")
    ax.hist(f.numpy(), bins=bins, alpha=0.6, label="generated")
    ax.set_title(f"{name}: held-out logistic loss {check[name]['loss']:.3f}"), ax.set_xlabel("logit"), ax.legend()
plt.tight_layout()
plt.show()

assert check["calibrated d"]["loss"] < check["raw D"]["loss"], f"calibration should lower the held-out loss: {check}"
assert check["calibrated d"]["loss"] < 2 * math.log(2), f"the calibrated logit should beat the constant one: {check}"
assert check["calibrated d"]["accuracy"] > 0.5, f"the calibrated logit should tell real from generated: {check}"
if not SMOKE:
    assert check["calibrated d"]["loss"] < check["raw D"]["loss"] - 0.1, check
    assert check["calibrated d"]["accuracy"] > check["raw D"]["accuracy"] + 0.05, check

# %% [markdown]
# Fine-tuning lowers the held-out logistic loss from 1.2519 (the raw hinge output read as a logit) to 1.1106,
# well below the constant logit's 1.386, and raises the accuracy of the logit's sign from 0.699 to 0.850.
# The raw output already ranked most real digits above most generated ones, but its zero sat in the wrong
# place (its mean on generated images, +0.017, should be negative) and its scale was too small to be a
# log-ratio. Keep one number in mind: over the generator's samples the calibrated logit has a standard
# deviation of only 0.296 nats. This discriminator tells real from generated digits on average, but it
# varies little *among* generated ones, and that spread decides how far DDLS can move.
#
# ## The reader of digits
#
# Every count below rests on a classifier that reads digits, trained once on the training digits
# (never on samples) and cached next to the data: `pipeline.extractor("classifier", "stacked-digits")`
# applies it to each channel and returns the joint probabilities of the 1,000 modes. (On CIFAR-10 it is a
# CIFAR-10 classifier, and there are no modes to count.) A reader is only as good as its accuracy on digits
# it has not seen.

# %%
ext = pipeline.extractor("classifier", DATASET, progress=False)
MODES = hasattr(ext, "channels")  # stacked digits: every sample's three digits, and so its mode
held_out = load_images("digits" if MODES else DATASET, train=False)
accuracy = features.classifier_accuracy(ext.model, *held_out)
print(f"{ext.name}: accuracy {accuracy:.3f} on {len(held_out[0])} held-out {'digits' if MODES else 'images'} "
      f"(trained on {len(load_images('digits' if MODES else DATASET)[0])})")
assert accuracy > (0.98 if MODES else 0.8), f"the classifier is too weak for its readings to mean much: {accuracy:.3f}"

# %% [markdown]
# The reader is right on 0.993 of the 450 held-out digits: fewer than one error in a hundred, the same
# for every sampler, small beside the differences between samplers that we look for.
#
# ## The latent energy, and how far DDLS can move
#
# With the prior $p_0 = \mathcal N(0, I_k)$ ($k = 32$ here, $128$ for the CIFAR-10 SN-GAN) the energy is
# the one of chapter 05,
#
# $$E(z) = \tfrac12 \lVert z \rVert^2 - d(G(z)), \qquad
# \nabla_z E(z) = z - J_G(z)^\top \nabla_x d(x)\big|_{x = G(z)},$$
#
# and DDLS runs the Langevin update $z_{i+1} = z_i - \tfrac{\varepsilon}{2}\nabla_z E(z_i) +
# \sqrt{\varepsilon}\,\xi_i$, then returns $G(z_N)$. Four facts shape what we will see.
#
# **The prior term dominates the energy's value.** Under $p_0$, $\tfrac12\lVert z\rVert^2$ is half a
# $\chi^2_k$ variable: mean $k/2 = 16$, standard deviation $\sqrt{k/2} = 4$, while the discriminator term
# varies by a fraction of a nat. Only the mean of $d$ over many chains shows the discriminator's pull.
#
# **Langevin time.** On the prior term alone the update is $z' = (1 - \varepsilon/2) z +
# \sqrt\varepsilon\,\xi$: the latents relax at rate $1/2$ per unit of Langevin time $N\varepsilon$. The
# paper's sampler, unadjusted Langevin (ULA) at $\varepsilon = 0.01$, run for 100 steps (the image table's
# `ddls_paper` row), travels one unit of time: each chain keeps a factor $e^{-1/2} \approx 0.61$ of its
# starting latent, so it is still on its way from $p_0$ to $p_t$. MALA at $\varepsilon = 0.3$ for 50 steps
# (the `ddls` row) travels 15 units, forgets its start up to $e^{-7.5}$, and its Metropolis test removes
# the discretisation bias: its samples follow $p_t$ itself.
#
# **ULA is slightly too hot.** Its stationary variance per coordinate on the prior term is
# $\varepsilon / \big(1 - (1 - \varepsilon/2)^2\big) = 1/(1 - \varepsilon/4)$, not 1: the prior term settles
# $k\varepsilon/8 \approx 0.04$ above $k/2$ at $\varepsilon = 0.01$. Harmless here, and absent with MALA.
#
# **How far $p_t$ is from $p_g$ is set by the spread of $d$.** Tilting $p_g$ by $e^{d}$ is a change of
# measure whose size we can compute before sampling anything. Write $\sigma^2 = \operatorname{Var}_{p_g}[d]$
# and expand $\log \mathbb E_{p_g}[e^{\lambda d}] = \lambda\,\mathbb E[d] + \lambda^2 \sigma^2/2 + O(\lambda^3)$
# (exact when $d$ is Gaussian under $p_g$). Its derivative at $\lambda = 1$ is the mean of $d$ under $p_t$, so
#
# $$\mathbb E_{p_t}[d] - \mathbb E_{p_g}[d] \approx \sigma^2, \qquad
# \mathrm{KL}(p_t \,\|\, p_g) = \mathbb E_{p_t}[d] - \log \mathbb E_{p_g}[e^{d}] \approx \tfrac{\sigma^2}{2}, \qquad
# \frac{\text{ESS}}{n} = \frac{\mathbb E[e^{d}]^2}{\mathbb E[e^{2d}]} \approx e^{-\sigma^2},$$
#
# the last being the effective sample size of the importance weights $e^{d}$ on $n$ generator samples. By
# the data-processing inequality, the mode weights of $p_t$ differ from those of $p_g$ by at most
# $\mathrm{KL}(p_t\,\|\,p_g)$ nats: a discriminator whose logit hardly varies over the generator's samples
# defines a target that hardly differs from the generator, however well it is sampled. The converse does
# not hold: a tilt can be spent entirely *inside* the modes, on which images of a mode are drawn, without
# changing how often each mode is drawn. The same weights give every statistic of $p_t$ without a sampler:
# the mean of $d$, the mode weights (`image_table.target_weights`), the fraction of good digits. They are
# the reference we judge the samplers against.
#
# We now draw $N = 5000$ samples from every sampler of the table, on this pair and with the seed the image
# table gives its first pair: the generator alone, DRS (Azadi et al.'s acceptance rule with $\gamma$ at the 95th
# percentile of $F$, as in chapter 04), MH-GAN (20 independent proposals a chain), the two DDLS rows, and
# discriminator optimal transport in the latent space (DOT, chapter 05: each latent moved by 100 Adam steps
# up $d(G(z))/k_\text{eff}$ against the distance travelled).

# %%
k = G.latent_dim
print(f"k = {k}: under p0 the prior term has mean {k / 2:g} and standard deviation {math.sqrt(k / 2):g}")
for name, (sampler, options) in ROWS.items():
    if sampler == "ddls":
        time_ = options["steps"] * options["step_size"]
        print(f"{image_table.ROW_NAMES[name]}: Langevin time {time_:g} (snapshots every {time_ / 10:g}), memory of "
              f"the start e^(-time/2) = {math.exp(-time_ / 2):.2g}" + ("" if options.get("mala") else
                                                f"; ULA's heat on the prior term k eps / 8 = {k * options['step_size'] / 8:.2f}"))

samples = {}  # every sampler of the table on the same pair, N samples each, with the table's seed 0
for name, (sampler, options) in ROWS.items():
    extra = {"snapshot_every": max(1, options["steps"] // 10)} if sampler == "ddls" else {}
    samples[name] = ebmlib.sample(sampler, G, d, N, seed=1000, **options, **extra)
    rate = samples[name].info.get("accept_rate")
    print(f"{image_table.ROW_NAMES[name]:24s} {options}: {samples[name].seconds:5.1f} s"
          + ("" if rate is None else f", acceptance rate {rate:.3f}"))


def logit(x, batch=1000):
    """d(x) on images (N, C, H, W), in batches, without gradients."""
    with torch.no_grad():
        return torch.cat([d(chunk.to(DEVICE)) for chunk in x.split(batch)]).double().cpu()


d_gen = logit(samples["generator"].x)
weights = torch.softmax(d_gen, 0)  # self-normalised importance weights e^d / sum e^d
sigma2 = d_gen.var().item()
pt = {"d": (weights * d_gen).sum().item(), "kl": (weights * (len(weights) * weights).log()).sum().item(),
      "ess": 1 / weights.square().sum().item()}
print(f"d over {N} generator samples: mean {d_gen.mean():+.4f}, std {math.sqrt(sigma2):.3f} (variance {sigma2:.4f})")
print(f"p_t by the weights e^d: mean d {pt['d']:+.4f} (a gain of {pt['d'] - d_gen.mean():.4f} nats; sigma^2 predicts "
      f"{sigma2:.4f}), KL(p_t || p_g) {pt['kl']:.4f} nats (sigma^2/2 = {sigma2 / 2:.4f}), "
      f"ESS {pt['ess']:.0f} of {N} (e^-sigma^2 predicts {N * math.exp(-sigma2):.0f})")

# %% [markdown]
# The predictions hold to within one percent. The logit's variance over the generator's samples is
# $\sigma^2 = 0.0848$; the weights give a gain in $d$ of 0.0853 nats, $\mathrm{KL}(p_t\,\|\,p_g) = 0.0427$
# nats against $\sigma^2/2 = 0.0424$, and an effective sample size of 4589 of 5000 against 4593. The
# target of DDLS on this pair lies 0.0427 nats from the generator. The sampling times above are those of
# a CPU: DDLS pays 100 or 50 forward and backward passes through both networks for every sample, DOT 100,
# the generator one forward pass. DRS accepted a share of 0.318 of its proposals, MH-GAN 0.837 of its moves.
#
# ## Chains in latent space (the paper's Figure 3)
#
# Both DDLS rows above kept snapshots of their latents every tenth of their run. Each panel below is one
# chain: its columns are $G(z)$ at the snapshots (step 0 is a plain generator sample), its three rows the
# red, green and blue digits in grey, and above each column the digits that the classifier reads there (in
# red: a reading it is less than 90% sure of). Left, the paper's sampler (ULA, $\varepsilon = 0.01$, a tenth
# of a unit of Langevin time between snapshots); right, MALA at $\varepsilon = 0.3$ (1.5 units between them).

# %%
DDLS_ROWS = [row for row in samples if ROWS[row][0] == "ddls"]
CHAIN_ROW = DDLS_ROWS[-1]  # the longest chains: with MALA, a sampler of p_t itself
chains = 4


def read_digits(x):
    """The classifier's reading of images (N, 3, H, W): (digits (N, 3), all three read with confidence > 0.9)."""
    classes, confidence, _ = metrics.channel_predictions(metrics.extract(ext, x)[2], ext.channels, ext.n_classes)
    return classes, (confidence > metrics.HIGH_QUALITY_CONFIDENCE).all(1)


fig, axes = plt.subplots(chains, len(DDLS_ROWS), figsize=(6.2 * len(DDLS_ROWS), (1.0 if CIFAR else 1.45) * chains),
                         squeeze=False)
for col, row in enumerate(DDLS_ROWS):
    snapshots = samples[row].info["snapshots"]
    with torch.no_grad():
        strips = torch.stack([G(z[:chains].to(DEVICE)).cpu() for _, z in snapshots], dim=1)  # (chains, snaps, C, H, W)
    size = strips.shape[-1] + 2  # an image and its padding in the grid
    for i in range(chains):
        ax = axes[i, col]
        draw(ax, strips[i], nrow=len(snapshots))
        if MODES:
            for j, (digits_read, sure) in enumerate(zip(*read_digits(strips[i]))):
                ax.text(2 + size * j + strips.shape[-1] / 2, -1.5, "".join(map(str, digits_read.tolist())),
                        ha="center", fontsize=7, color="black" if sure else "C3")
        ax.set_ylabel(f"chain {i}", fontsize=8)
    axes[-1, col].set_xticks([2 + size * j + strips.shape[-1] / 2 for j in range(len(snapshots))],
                             [str(step) for step, _ in snapshots], fontsize=7)
    axes[-1, col].set_xlabel(f"Langevin step: {image_table.ROW_NAMES[row]}")
plt.tight_layout()
plt.show()

# %% [markdown]
# To see what moves, we follow all $N$ chains of both DDLS rows: the mean of the discriminator term
# $d(G(z))$ and of the prior term $\tfrac12\lVert z\rVert^2$ at each snapshot, and the fraction of chains
# whose digits (as read by the classifier) differ from those they started with.

# %%
def along(row):
    """Per snapshot: (step, mean d(G(z)), mean prior term, fraction of chains whose mode changed since step 0)."""
    out, start_modes = [], None
    for step, z in samples[row].info["snapshots"]:
        with torch.no_grad():
            x = torch.cat([G(chunk.to(DEVICE)).cpu() for chunk in z.split(1000)])
        modes = metrics.channel_predictions(metrics.extract(ext, x)[2], ext.channels, ext.n_classes)[2] if MODES else None
        start_modes = modes if start_modes is None else start_modes
        changed = (modes != start_modes).double().mean().item() if MODES else float("nan")
        out.append((step, logit(x).mean().item(), 0.5 * z.square().sum(1).mean().item(), changed))
    return out


traces = {row: along(row) for row in DDLS_ROWS}
for row, trace in traces.items():
    (_, d0, p0, _), (_, d1, p1, changed) = trace[0], trace[-1]
    print(f"{image_table.ROW_NAMES[row]:24s} mean d {d0:+.4f} -> {d1:+.4f} (gain {d1 - d0:+.4f} nats), prior term "
          f"{p0:.3f} -> {p1:.3f}, chains whose digits changed: {changed:.1%}")
print(f"{'p_t (weights e^d)':24s} mean d {pt['d']:+.4f} (gain {pt['d'] - d_gen.mean():+.4f} nats over the generator)")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for row, trace in traces.items():
    steps_, d_, prior_, changed_ = zip(*trace)
    axes[0].plot(steps_, d_, "o-", label=image_table.ROW_NAMES[row])
    axes[1].plot(steps_, prior_, "o-")
    axes[2].plot(steps_, changed_, "o-")
axes[0].axhline(pt["d"], color="k", ls="--", lw=1, label="p_t (weights e^d)")
axes[0].set_title("mean d(G(z))"), axes[0].legend(fontsize=8)
axes[1].axhline(G.latent_dim / 2, color="k", ls="--", lw=1), axes[1].set_title("mean prior term (dashed: k/2)")
axes[2].set_title("chains whose digits changed")
for ax in axes:
    ax.set_xlabel("Langevin step")
plt.tight_layout()
plt.show()

# the MALA chains sample p_t: their mean d should match the weighted prediction within the noise of both
(_, d_start, _, _), (_, d_end, _, changed_end) = traces[CHAIN_ROW][0], traces[CHAIN_ROW][-1]
noise = math.sqrt(logit(samples[CHAIN_ROW].x).var().item() / N
                  + (weights.square() * (d_gen - pt["d"]).square()).sum().item())
gain = d_end - d_start
print(f"{image_table.ROW_NAMES[CHAIN_ROW]}: gain in d {gain:+.4f} nats (sigma^2 = {sigma2:.4f}); mean d at the end "
      f"{d_end:+.4f}, p_t's {pt['d']:+.4f}: difference {d_end - pt['d']:+.4f}, standard error {noise:.4f}")
assert gain > 3 * math.sqrt(sigma2 / N), f"the chains should climb the discriminator's logit: gain {gain:.4f}"
if not SMOKE and ROWS[CHAIN_ROW][1].get("mala"):
    assert 0.7 * sigma2 < gain < 1.3 * sigma2, f"the gain in d should be about sigma^2: {gain:.4f} vs {sigma2:.4f}"
    assert abs(d_end - pt["d"]) < 3 * noise, f"MALA's mean d should match p_t's: {d_end:.4f} vs {pt['d']:.4f}"
    if MODES:
        assert changed_end > 0.99, f"after 15 units of Langevin time chains should forget their digits: {changed_end:.4f}"

# %% [markdown]
# The digits change along the chains, as in the paper's Figure 3: strokes bend, close or open, one digit
# becomes another, and the readings above the snapshots follow. After one unit of Langevin time the
# paper's chains read other digits than they started with in 97.3% of the chains (at least one channel
# changed), and the MALA chains, after 15 units, in 99.8%: a chain of this length forgets where it began.
# Most readings are red: the generator draws many digits that the classifier reads with less than 90%
# confidence, and the chains do not change that much.
#
# The mean of $d$ rises along the chains, from $-0.3620$ to $-0.2897$ for the paper's sampler, which is
# still on its way, and to $-0.2800$ for MALA, which has arrived: its gain of 0.0819 nats is within
# one standard error (0.0062) of the 0.0853 nats that the importance weights predict for $p_t$, and about
# $\sigma^2 = 0.0848$ as the expansion says. The prior term stays close to $k/2 = 16$ throughout
# (16.071 at the start, 16.065 and 16.057 at the end): the chains do not drift to large $\lVert z\rVert$,
# where the generator was never trained. That is the prior term in $E(z)$ doing its work.
#
# ## Are the samples new? (the paper's Figure 4)
#
# A sampler that pushes towards high $d$ could in principle walk to copies of training images, the images a
# discriminator is most sure about. The paper checks this by showing each DDLS sample next to its nearest
# training images in pixel space. `metrics.nearest_neighbours` finds them (L2 distance on the $[-1, 1]$
# scale, over every pixel of the three channels). Held-out real images give the scale of "new":
# the test split is stacked from digits that are not in the training split, so its distances are those of
# images that are new by construction.

# %%
k_nn, shown_nn = 5, 4
queries = samples[CHAIN_ROW].x[:shown_nn]
idx, dist = metrics.nearest_neighbours(queries, train_images.to(DEVICE), k=k_nn)
fig, axes = plt.subplots(1, shown_nn, figsize=(3.1 * shown_nn, 1.4 if not CIFAR else 0.8))
for i, ax in enumerate(axes):
    draw(ax, torch.cat([queries[i:i + 1].cpu(), to_float(train_images[idx[i]])]), nrow=k_nn + 1)
    ax.set_title(f"sample | {k_nn} nearest (distance {dist[i, 0]:.2f})", fontsize=8)
plt.tight_layout()
plt.show()

m = ebmlib.pick(2000, N)
nearest = {name: metrics.nearest_neighbours(x[:m], train_images.to(DEVICE), k=1)[1][:, 0]
           for name, x in [("DDLS", samples[CHAIN_ROW].x), ("generator", samples["generator"].x),
                           ("test images", test_images)]}
for name, v in nearest.items():
    print(f"{name:12s} distance to the nearest training image: min {v.min():.2f}, 1% quantile "
          f"{v.quantile(0.01):.2f}, median {v.median():.2f} ({len(v)} images)")
ratio = (nearest["DDLS"].median() / nearest["test images"].median()).item()
print(f"median distance, DDLS / held-out real: {ratio:.2f}")
assert nearest["DDLS"].min() > nearest["test images"].min(), "a DDLS sample is closer to the training set than any new image"
assert ratio > 1, f"DDLS samples should be no closer to the training set than new real images: {ratio:.2f}"

# %% [markdown]
# The DDLS samples are not copies: their median distance to the nearest training image, 6.60, is that of the
# generator's samples (6.63) and larger than that of new real images (5.64), and even the closest of 2000
# DDLS samples (5.03) is farther from the training set than the closest held-out image (3.37). The
# neighbours in the figure share digits with the sample, drawn by other hands. That samples sit farther
# from the data than new data does is no sign of originality, only of imperfection: the generator's
# digits are less typical than real ones, which the quality scores below confirm. (Pixel distance says
# whether two images are the same, not whether one is good.)
#
# ## What each sampler samples: the modes
#
# The classifier reads each channel of a sample (`metrics.extract`, then `metrics.channel_predictions`):
# three digits, their confidences, and the mode $100r + 10g + b$. The training data spread evenly over the
# 1,000 modes; a sampler's **mode histogram** $q$ is judged by $\mathrm{KL}(q \,\|\, \text{uniform})$. Even
# a perfect sampler does not score 0 with finitely many samples: $N$ uniform draws into 1,000 cells give
# $\mathrm{KL} \approx 999/(2N)$, about $0.1$ at $N = 5000$. We draw the sorted mode counts of the generator
# and of DDLS against those of $N$ uniform draws, and the digits of each channel.

# %%
if MODES:
    n_modes = ext.n_classes ** ext.channels
    read = {}  # name -> (digits (N, 3), confidence (N, 3), modes (N,))
    for name, out in samples.items():
        read[name] = metrics.channel_predictions(metrics.extract(ext, out.x)[2], ext.channels, ext.n_classes)
    target = image_table.target_weights(samples["generator"].x, d, ext)
    uniform = torch.randint(n_modes, (N,), generator=torch.Generator().manual_seed(7))
    coverage = {name: metrics.mode_coverage(r[2], n_modes) for name, r in read.items()}
    coverage["uniform draws"] = metrics.mode_coverage(uniform, n_modes)
    coverage["training data"] = metrics.mode_coverage(train_labels, n_modes)
    for name, c in coverage.items():
        print(f"{name:14s} modes {c['modes']:4d} of {n_modes}, KL {c['kl']:.4f} ({c['n']} samples)")
    print(f"{'p_t (weights)':14s} modes {target['modes']:4d} of {n_modes}, KL {target['kl']:.4f} (ESS {target['ess']:.0f}; "
          f"the floor of an effective sample of that size ~ {(n_modes - 1) / (2 * target['ess']):.4f})")

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), gridspec_kw={"width_ratios": [1.6, 1, 1, 1]})
    for name, modes in [("uniform draws", uniform), ("generator", read["generator"][2]), ("DDLS", read[CHAIN_ROW][2])]:
        counts = torch.bincount(modes, minlength=n_modes).sort(descending=True).values
        axes[0].plot(counts.numpy(), label=f"{name} (KL {metrics.mode_coverage(modes, n_modes)['kl']:.3f})")
    axes[0].axhline(N / n_modes, color="k", ls="--", lw=1, label=f"N / {n_modes}")
    axes[0].set_xlabel("modes, by count"), axes[0].set_ylabel("samples"), axes[0].legend(fontsize=8)
    axes[0].set_title(f"sorted mode counts ({N} samples)")
    train_digits = digits.mode_digits(train_labels)  # the (r, g, b) digits of every training image
    for c, ax in enumerate(axes[1:]):
        for j, (name, digit_of) in enumerate([("training data", train_digits), ("generator", read["generator"][0]),
                                              ("DDLS", read[CHAIN_ROW][0])]):
            freq = torch.bincount(digit_of[:, c], minlength=10).double() / len(digit_of)
            ax.bar(torch.arange(10) + (j - 1) * 0.27, freq.numpy(), width=0.27, label=name)
        ax.set_xticks(range(10)), ax.set_title(f"digits in the {('red', 'green', 'blue')[c]} channel")
    axes[1].legend(fontsize=7)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# The generator reaches 961 of the 1,000 modes in 5000 samples, where 5000 uniform draws reach 993; its KL
# is 0.2205 against 0.1087 for the uniform draws (the floor that 5000 samples put under any sampler) and
# 0.0098 for the training set itself. Its sorted counts fall more steeply than the uniform draws': some
# modes get several times their share, others none. The channel histograms show where much of that comes
# from: the generator draws 3s too often and 5s and 7s too rarely in every channel, 9s too often in the
# red and green ones. DDLS (MALA) follows the generator's histograms almost bar for bar, and its KL, 0.2367, is not lower; nor is
# that of the target $p_t$ itself by weights, 0.2329 (whose own floor, with an effective sample of 4589,
# is 0.1089).
#
# What would the discriminator have to say for $p_t$ to fix the mode weights? Average the optimal logit over
# the generator's images of one mode $m$: $\mathbb E_{p_g(x \mid m)}[\log p_\text{data}(x)/p_g(x)] =
# \log q_\text{data}(m)/q_g(m) - \mathrm{KL}\big(p_g(\cdot\mid m)\,\|\,p_\text{data}(\cdot\mid m)\big)$: the log-ratio
# of the mode's weights, minus a divergence inside the mode. Across modes, the mean logit should rise one for
# one with $\log q_\text{data}(m)/q_g(m)$. We measure both on a larger draw of the generator, so that most
# modes hold dozens of samples.

# %%
if MODES:
    big = ebmlib.sample("generator", G, d, ebmlib.pick(30_000, 2000), seed=5)
    big_modes = metrics.channel_predictions(metrics.extract(ext, big.x)[2], ext.channels, ext.n_classes)[2]
    big_d = logit(big.x)
    count = torch.bincount(big_modes, minlength=n_modes).double()
    q_data = torch.bincount(train_labels, minlength=n_modes).double() / len(train_labels)
    enough = count >= 10
    needed = (q_data / (count / count.sum()))[enough].log()  # log q_data(m) / q_g(m)
    mode_d = torch.zeros(n_modes, dtype=torch.float64).index_add_(0, big_modes, big_d) / count.clamp(min=1)  # mean d a mode
    said = mode_d[enough]
    slope = (((needed - needed.mean()) * (said - said.mean())).sum() / (needed - needed.mean()).square().sum()).item()
    corr = torch.corrcoef(torch.stack([needed, said]))[0, 1].item()
    within = (big_d - mode_d[big_modes]).std()
    print(f"{len(big_d)} generator samples, {int(enough.sum())} modes with at least 10 of them")
    print(f"log q_data/q_g over modes: std {needed.std():.3f}; mean d per mode: std {said.std():.3f}")
    print(f"regression of the mean d on the log-ratio: slope {slope:.3f} (an optimal logit: 1), correlation {corr:.3f}")
    print(f"d over all samples: std {big_d.std():.3f}; within modes: std {within:.3f}")

    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.scatter(needed.numpy(), said.numpy(), s=6, alpha=0.5)
    line = torch.linspace(needed.min().item(), needed.max().item(), 2)
    ax.plot(line.numpy(), (said.mean() + line - needed.mean()).numpy(), "k--", lw=1, label="slope 1")
    ax.set_xlabel("log q_data(m) / q_g(m)"), ax.set_ylabel("mean d on mode m"), ax.legend(fontsize=8)
    ax.set_title(f"what d says about modes (slope {slope:.2f})")
    plt.tight_layout()
    plt.show()
    if not SMOKE:
        assert abs(slope) < 0.2 and abs(corr) < 0.25, f"d should carry little of the modes' log-ratio: {slope}, {corr}"
        assert within > 0.85 * big_d.std(), "most of d's spread should lie within modes"

# %% [markdown]
# This is the discriminator's blind spot. Over 945 modes that hold at least 10 of 30000 generator samples,
# the log-ratio $\log q_\text{data}(m)/q_g(m)$ that an optimal logit would express spreads with a standard
# deviation of 0.506 (part of it the noise of the counts), while the mean logit per mode varies by 0.095,
# and not with it: the slope is $-0.014$ where it should be 1, the correlation $-0.075$. The logit's spread
# over all samples, 0.293, is almost all within modes (0.279). The calibrated discriminator judges *how* a
# digit is drawn, not *which* triple of digits is drawn how often; so $p_t$ sharpens digits inside each
# mode and leaves the mode weights where the generator put them. It is not hard to see why. The per-image
# evidence for a mode's weight is only its frequency among fakes; to express it, $D$ would have to learn a
# function of the joint class of three digits, one of a thousand combinations, with spectral normalisation
# holding its slope down and, during GAN training, a generator that moves whenever it learns. The
# over-produced 3s and 9s are a per-channel pattern that a discriminator could in principle pick up; this
# one, after 2,000 adversarial steps and 500 of calibration, did not.
#
# ## Table 1 on images
#
# The paper's Table 1 compared samplers on the 25-Gaussian grid by the modes they recover and the fraction
# of high-quality samples (chapter 05 reproduced it). On stacked digits the same columns have a meaning
# that needs no human judge: **modes** (of 1,000) that hold at least one sample; **KL** of the mode
# histogram to uniform; **high quality**, the fraction of samples whose three digits the classifier reads
# with confidence above 0.9; and the **FCD**, the Fréchet distance between Gaussians fitted to the
# classifier's features of the samples and of the training split (a classifier-based distance, never to be
# called FID). `metrics.score` computes all four. The last row is the target itself: the generator's
# samples weighted by $e^{d}$, what an exact sampler of $p_t$ would score (up to the noise of $N$ samples).
#
# First the table for this one pair, each row on $N$ samples.

# %%
reference = metrics.reference_stats(train_images, ext)
scores = {name: metrics.score(out.x, reference, ext) for name, out in samples.items()}
head = f"{'':24s} {'modes':>6s} {'KL':>7s} {'% high q.':>9s} {'FCD':>7s} {'seconds':>8s}"
print(head + "\n" + "-" * len(head))
for name, s in scores.items():
    print(f"{image_table.ROW_NAMES[name]:24s} {s.get('modes', float('nan')):6} {s.get('kl', float('nan')):7.4f} "
          f"{100 * s.get('high_quality', float('nan')):9.2f} {s['fcd']:7.2f} {samples[name].seconds:8.1f}")
if MODES:
    print(f"{image_table.ROW_NAMES['p_t']:24s} {target['modes']:6} {target['kl']:7.4f} {100 * target['high_quality']:9.2f}"
          f"   (ESS {target['ess']:.0f} of {N}, logit std {target['logit_std']:.3f})")
print(f"{N} samples a row; KL floor of {N} uniform draws ~ {999 / (2 * N):.4f}")
for name, s in scores.items():
    assert s["n_samples"] == N and s["n_reference"] == len(train_images), (name, s)

# the noise of one row: the generator's KL over independent draws of N samples from the same pair
draws = [metrics.score(ebmlib.sample("generator", G, d, N, seed=2000 + i).x, reference, ext)
         for i in range(ebmlib.pick(8, 3))]
if MODES:
    kl_draws = torch.tensor([s["kl"] for s in draws])
    kl_mean, kl_std = kl_draws.mean().item(), kl_draws.std().item()
    hq_draws, fcd_draws = torch.tensor([s["high_quality"] for s in draws]), torch.tensor([s["fcd"] for s in draws])
    print(f"\nthe generator over {len(draws)} independent draws of {N}: KL mean {kl_mean:.4f}, std {kl_std:.4f} "
          f"(range {kl_draws.min():.4f} to {kl_draws.max():.4f}); high quality {100 * hq_draws.mean():.2f}% ± "
          f"{100 * hq_draws.std():.2f}; FCD {fcd_draws.mean():.2f} ± {fcd_draws.std():.2f}")
    for name, s in scores.items():
        print(f"  {image_table.ROW_NAMES[name]:24s} KL {s['kl']:.4f}: {(s['kl'] - kl_mean) / kl_std:+.1f} standard "
              f"deviations from the generator's mean")
    if not SMOKE:  # on one pair, no sampler of p_t moves the KL beyond the noise of a single draw; DOT does
        assert all(abs(s["kl"] - kl_mean) < 3 * kl_std for name, s in scores.items() if name != "dot"), scores
        assert scores["dot"]["kl"] > kl_mean + 3 * kl_std, (scores["dot"]["kl"], kl_mean, kl_std)

# %% [markdown]
# On this pair the generator's KL, 0.2205, is the lowest of the table: DRS, MH-GAN and both DDLS rows sit
# above it. That is the noise of one draw, not an effect. Over 8 independent draws of 5000 samples from the
# same generator, its KL has mean 0.2363 and standard deviation 0.0074; the draw in the table was a low one,
# 2.1 standard deviations below that mean, DRS lies 0.5 above it, both DDLS rows within 0.2 of it, and
# MH-GAN, 2.1 above it, is the farthest of the samplers of $p_t$. On one pair the KL cannot separate these
# samplers. DOT, at 0.3154, lies 10.7 standard deviations above the mean: that is an effect. Nor can quality: over the same draws
# the generator's high-quality fraction is 15.72% ± 0.59 and its FCD 57.30 ± 0.52, so the DDLS rows
# (16.08% and 16.18%, FCD 57.35 and 56.78) are within one standard deviation of the generator as well,
# although the generator's row in the table (15.06%) was again a low draw. To see what is systematic, we
# need more pairs, and the same pair under every sampler.
#
# ## Where DOT takes the samples
#
# DOT is the exception: its KL lies far above the generator's. It samples no target. Each latent $z_0$ is
# moved by 100 Adam steps that minimise $\lVert z - z_0\rVert - d(G(z))/k_\text{eff}$, a trade of logit
# against distance at the rate $k_\text{eff}$, the steepest slope of $d \circ G$ between pairs of latents
# (chapter 05). Nothing in that objective asks the samples to keep the generator's mode weights, or any
# weights at all. With the same seed DOT starts from the generator's own latents, so we can follow each
# sample: how far it moved, how much $d$ it gained, whether its digits changed, and to which modes it went,
# judged by the mean logit of each mode on the larger generator draw above.

# %%
if MODES:
    start, end = read["generator"][2], read["dot"][2]
    changed = start != end
    d_end = logit(samples["dot"].x)
    known = changed & (count[start] >= 10) & (count[end] >= 10)  # both modes' mean logit measured on >= 10 images
    mode_gain = mode_d[end[known]] - mode_d[start[known]]
    mode_gain_se = mode_gain.std().item() / math.sqrt(len(mode_gain))
    dot_gain = (d_end.mean() - d_gen.mean()).item()

    def top_share(modes, k=100):
        """The share of the samples that fall into the k most populated of their modes."""
        return (torch.bincount(modes, minlength=n_modes).sort(descending=True).values[:k].sum() / len(modes)).item()

    info = samples["dot"].info
    trace = info["objective_trace"]
    print(f"k_eff {info['k_eff']:.4f} logit units per unit of z; mean distance moved in z {info['distance']:.3f} "
          f"(mean |z| {samples['generator'].z.norm(dim=1).mean():.3f} -> {samples['dot'].z.norm(dim=1).mean():.3f})")
    print(f"DOT's objective |z - z0| - d/k_eff, mean over the samples: {trace[0]:+.3f} at the start, "
          f"{trace[len(trace) // 2]:+.3f} halfway, {trace[-1]:+.3f} after {len(trace) - 1} steps")
    print(f"mean d: generator {d_gen.mean():+.4f}, DOT {d_end.mean():+.4f}: a gain of {dot_gain:+.4f} nats, "
          f"{dot_gain / (pt['d'] - d_gen.mean()):.0f} times p_t's ({pt['d'] - d_gen.mean():+.4f})")
    print(f"samples whose mode changed: {changed.double().mean():.1%}; of those, {int(known.sum())} between modes "
          f"with a measured mean logit: the new mode's mean d is higher by {mode_gain.mean():+.4f} ± {mode_gain_se:.4f}")
    for name in ("generator", "dot"):
        print(f"{image_table.ROW_NAMES[name]:16s} modes {coverage[name]['modes']:4d}, share of the 100 fullest modes "
              f"{top_share(read[name][2]):.3f}, high quality {100 * scores[name]['high_quality']:.2f}%")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
    bins = torch.linspace(min(d_gen.min(), d_end.min()).item(), max(d_gen.max(), d_end.max()).item(), 60)
    axes[0].hist(d_gen.numpy(), bins=bins.numpy(), alpha=0.6, density=True, label="generator")
    axes[0].hist(d_gen.numpy(), bins=bins.numpy(), weights=weights.numpy(), histtype="step", lw=1.5, color="k",
                 density=True, label="p_t (weights e^d)")
    axes[0].hist(d_end.numpy(), bins=bins.numpy(), alpha=0.6, density=True, label="DOT (latent)")
    axes[0].set_xlabel("d(x)"), axes[0].set_title("the logit of the samples"), axes[0].legend(fontsize=8)
    for name, modes in [("uniform draws", uniform), ("generator", read["generator"][2]), ("DOT (latent)", read["dot"][2])]:
        axes[1].plot(torch.bincount(modes, minlength=n_modes).sort(descending=True).values.numpy(), label=name)
    axes[1].set_xlabel("modes, by count"), axes[1].set_ylabel("samples"), axes[1].legend(fontsize=8)
    axes[1].set_title(f"sorted mode counts ({N} samples)")
    plt.tight_layout()
    plt.show()
    if not SMOKE:
        assert dot_gain > 5 * (pt["d"] - d_gen.mean()), (dot_gain, pt["d"])  # far past p_t: DOT climbs, it does not sample
        assert changed.double().mean() > 0.5, changed.double().mean()
        assert mode_gain.mean() > 3 * mode_gain_se, (mode_gain.mean(), mode_gain_se)  # towards modes d likes
        assert top_share(read["dot"][2]) > top_share(read["generator"][2]) + 0.02
        assert coverage["dot"]["modes"] < coverage["generator"]["modes"]
        # the budget, not the minimiser: over the second half of the steps the objective still falls by more
        # than a tenth of what it fell over the first half
        mid = trace[len(trace) // 2]
        assert mid - trace[-1] > 0.1 * (trace[0] - mid), trace[::10]

# %% [markdown]
# DOT climbs. Its samples gain 1.2671 nats of logit, 15 times what $p_t$ gains over the generator (0.0853),
# and end far beyond where $p_t$ puts its mass: the histogram of $d$ on DOT's samples lies almost entirely to
# the right of the generator's, with mean $+0.905$, above even the mean logit of held-out *real* images
# ($+0.287$, measured after the calibration). With $k_\text{eff} = 0.110$, a unit of distance in $z$ costs as
# much as 0.11 nats of logit, so the latents travel far, 2.395 on average (against a typical $\lVert z\rVert$ of
# 5.6), and outwards: their mean norm grows from 5.625 to 6.075. Along the way 76.1% of the samples change
# their digits, and they go, on average, to modes on which the generator's own images have a higher mean
# logit ($+0.0331 \pm 0.0018$, small against the logit's spread but eighteen standard errors from zero).
# The result is a crowding: DOT reaches 932 modes where the generator reaches 961, the 100 fullest modes
# hold a share of 0.283 of its samples against 0.242, and its sorted counts start higher and end lower than
# the generator's. Its quality rises the most of any row, to 20.34% of samples read with confidence against
# 15.06%: DOT moves every sample towards what this discriminator takes for a good digit, and the
# discriminator, as the previous section showed, knows good strokes and not how often each triple of
# digits should appear. Nor has DOT arrived anywhere: its objective falls from $+3.279$ to $-3.475$ over the
# first 50 steps and is still falling over the next 50, to $-5.806$. What the table measures is DOT at a
# budget of 100 steps; more steps would carry its logit further past $p_t$'s, not back towards it.
#
# One pair and one draw of $N$ samples cannot separate effects of a percent. `python -m ebmlib image-table
# --data stacked-digits --seeds 3 --json benchmarks/results/image_table_cpu.json` repeats the whole
# experiment on three pairs, each trained with this chapter's recipe from its own seed, draws 5000 samples
# a row from each, and stores every seed's scores. We read the file and print the table (mean ± standard
# deviation over seeds), then the change of each row against the generator *on the same pair*, which
# removes the differences between pairs. The file's seed 0 has the recipe and the seed of the pair above,
# but it was trained in another run, and it is not the same pair: its rows differ from ours (printed
# below), as two separately trained pairs do.

# %%
table = json.loads((ROOT / "benchmarks" / "results" / "image_table_cpu.json").read_text())
print(image_table.format_table(table))
rows, t, meta = {r["row"]: r for r in table["rows"]}, table["target"], table["meta"]
seeds, floor = meta["seeds"], meta["kl_floor"]
if MODES:
    print("\nseed 0 of the file against this chapter's pair (same recipe), KL of each row:")
    for name in scores:
        print(f"  {image_table.ROW_NAMES[name]:24s} file {rows[name]['per_seed'][0]['kl']:.4f}, here {scores[name]['kl']:.4f}")


def mean_se(values):
    """Mean and standard error of per-seed values."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def paired(row, key="kl"):
    """Per seed, the row's score minus the generator's on the same pair: (mean, standard error) over seeds."""
    return mean_se([s[key] - g[key] for s, g in zip(rows[row]["per_seed"], rows["generator"]["per_seed"])])


gen_kl = rows["generator"]["kl_mean"]
print(f"\nChange against the generator alone on the same pair (mean ± standard error over {seeds} seeds):")
print(f"{'':24s} {'KL (nats)':>17s} {'% of KL':>8s} {'% of excess':>11s} {'modes':>12s} {'high q. (pts)':>14s} {'FCD':>13s}")
for row in ("drs", "mh", "ddls_paper", "ddls", "dot"):
    (kl, kl_se), (mo, mo_se), (hq, hq_se), (fcd, fcd_se) = (paired(row, k) for k in ("kl", "modes", "high_quality", "fcd"))
    print(f"{rows[row]['name']:24s} {kl:+.4f} ± {kl_se:.4f} {100 * kl / gen_kl:+7.1f}% {100 * kl / (gen_kl - floor):+10.1f}% "
          f"{mo:+6.1f} ± {mo_se:3.1f} {100 * hq:+7.2f} ± {100 * hq_se:.2f} {fcd:+6.2f} ± {fcd_se:.2f}")
print(f"{'the target: -20% of the KL':24s} {-0.2 * gen_kl:+.4f}")

# the target itself: a weighted histogram's floor is that of its effective sample, (1000 - 1) / (2 ESS)
pt_excess = [s["kl"] - 999 / (2 * s["ess"]) for s in t["per_seed"]]
gen_excess = [g["kl"] - floor for g in rows["generator"]["per_seed"]]
mala_excess = [s["kl"] - floor for s in rows["ddls"]["per_seed"]]
pt_gain, pt_gain_se = mean_se([g - p for g, p in zip(gen_excess, pt_excess)])
mala_vs_pt, mala_vs_pt_se = mean_se([m - p for m, p in zip(mala_excess, pt_excess)])
print(f"\nKL above the floor: generator {mean_se(gen_excess)[0]:.4f}, p_t by weights {mean_se(pt_excess)[0]:.4f} "
      f"(p_t lower by {pt_gain:+.4f} ± {pt_gain_se:.4f}), DDLS (MALA) {mean_se(mala_excess)[0]:.4f} "
      f"(above p_t by {mala_vs_pt:+.4f} ± {mala_vs_pt_se:.4f})")
pt_hq, pt_hq_se = mean_se([p["high_quality"] - g["high_quality"] for p, g in zip(t["per_seed"], rows["generator"]["per_seed"])])
print(f"high quality of p_t by weights, against the generator's own samples: {100 * pt_hq:+.2f} ± {100 * pt_hq_se:.2f} points")
print(f"logit std over the generator's samples {t['logit_std_mean']:.3f} ± {t['logit_std_std']:.3f}: "
      f"KL(p_t || p_g) ~ sigma^2/2 = {t['logit_std_mean'] ** 2 / 2:.3f} nats, ESS {t['ess_mean']:.0f} of {meta['n_samples']}")

# %% [markdown]
# **The shortfall, measured.** The course set DDLS a target on this table: a KL of the mode histogram at
# least 20% below the generator's, with no mode lost. DDLS keeps the modes (the paper's sampler $+1.0 \pm 3.6$
# modes, MALA $-1.0 \pm 3.5$), but it misses the KL target by far. The paper's sampler lowers the KL by
# $0.0027 \pm 0.0003$ nats (1.0%), MALA by $0.0007 \pm 0.0037$ (0.3%), where 20% is 0.0537 nats: the paper's
# sampler achieves a twentieth of the target, MALA nothing that three seeds can tell from zero. DRS and
# MH-GAN, which target the same $p_t$, do no better ($-2.5\%$ and $+0.4\%$). DOT, which targets nothing,
# moves the KL the wrong way, by $+0.0871 \pm 0.0243$ nats ($+32.4\%$), and loses $24.7 \pm 7.8$ modes;
# on every seed it has fewer modes and a higher KL than the generator.
#
# **The reason is the target, not the sampler.** MALA lands on $p_t$: its KL above the floor differs from
# that of $p_t$ by $-0.0001 \pm 0.0023$. And $p_t$ itself, measured by weights without any sampler, is no
# closer to uniform than the generator: 0.1681 against 0.1687 above the floor, a difference of
# $0.0006 \pm 0.0027$. No sampler of this $p_t$, however exact, could reach the target. The calibrated logit
# varies by only $0.374 \pm 0.042$ nats over the generator's samples ($\mathrm{KL}(p_t\,\|\,p_g) \approx
# 0.070$ nats), and the pair above showed where that variation goes: inside the modes, not across them.
# (The weighted KLs sit above the unweighted ones, 0.283 against 0.269 in the table, because weights
# shrink the effective sample to 4338 and so raise the floor; compared above the floor, they agree.)
#
# **What DDLS does improve is quality,** on every seed: the paper's sampler adds $1.45 \pm 0.19$ points of
# high-quality samples and lowers the FCD by $0.71 \pm 0.13$; MALA adds $1.00 \pm 0.32$ points and lowers the
# FCD by $1.29 \pm 0.65$. That is what this discriminator knows about, how a good digit looks. The weights
# predict a smaller gain for $p_t$ itself, $+0.38 \pm 0.18$ points; with three seeds we do not read more into
# the difference. DRS, with Azadi et al.'s rule, adds $0.85 \pm 0.13$ points and lowers the FCD by
# $0.97 \pm 0.08$. DOT adds the most quality, $3.13 \pm 0.96$ points, but its FCD does not improve
# ($+0.50 \pm 2.07$): the Fréchet distance compares the whole spread of the features, which DOT's crowding
# into fewer modes distorts, while the high-quality fraction only asks whether each digit is legible. On
# the 25-Gaussian grid (chapter 05) DOT kept the generator's mode weights, because each sample stayed in its
# own mode's well, a whole unit from the next; here a latent step of 2.4 reaches other digits, and most
# samples take it. These effects are small, and honest: a discriminator trained for 2,000 steps on a CPU is a
# weak judge, and DDLS can only be as good as its judge. The paper's gains on CIFAR-10 came from an SN-GAN
# trained for 100,000 steps, whose discriminator had far more to say.

# %%
cut = 0.2 * gen_kl  # the course's target: DDLS lowers the KL by at least 20%
for row in ("ddls_paper", "ddls"):
    kl, kl_se = paired(row)
    # DDLS falls short of the target: even the top of its interval is far from a 20% cut
    assert -kl + 3 * kl_se < cut / 2, (row, kl, kl_se, cut)
    # it keeps the modes (within the noise of three seeds) and improves quality on every seed
    mo, mo_se = paired(row, "modes")
    assert mo > -3 * mo_se - 2, (row, mo, mo_se)
    pairs = list(zip(rows[row]["per_seed"], rows["generator"]["per_seed"]))
    assert all(s["high_quality"] > g["high_quality"] and s["fcd"] < g["fcd"] for s, g in pairs), row
# the reason: the target p_t is no closer to uniform than p_g (within noise), so no sampler of it can be
assert abs(pt_gain) < 3 * pt_gain_se + 0.005 and pt_gain + 3 * pt_gain_se < cut / 2, (pt_gain, pt_gain_se)
# ... and MALA, a sampler of p_t, lands where p_t is
assert abs(mala_vs_pt) < 3 * mala_vs_pt_se + 0.005, (mala_vs_pt, mala_vs_pt_se)
# ... because the calibrated logit varies little over the generator's samples
assert t["logit_std_mean"] + 3 * t["logit_std_std"] < 0.55, t
# DOT, which samples no target: more good digits, fewer modes and a higher KL than the generator, on every seed
dot_pairs = list(zip(rows["dot"]["per_seed"], rows["generator"]["per_seed"]))
assert all(s["high_quality"] > g["high_quality"] and s["modes"] < g["modes"] and s["kl"] > g["kl"] for s, g in dot_pairs)

if SCRATCH is not None:
    shutil.rmtree(SCRATCH, ignore_errors=True)  # the smoke run's own pair; a full run leaves runs/digits as it was

# %% [markdown]
# ## On a GPU: CIFAR-10
#
# The paper's experiment is the same pipeline at a larger scale, and nothing in this chapter's code is
# specific to digits except the mode counts. With a GPU and the CIFAR-10 archive (`cifar-10-python.tar.gz`
# in `./data` or `$EBMLIB_DATA`; `ebmlib` downloads it when the network is there), either set
# `DATASET = "cifar10"` at the top and run this notebook, or use the command line:
#
# ```
# make train-cifar10      # python -m ebmlib train --data cifar10 --run runs/sngan --arch cnn
#                         #   SN-GAN standard CNN, 100,000 generator steps, n_dis 5, on a GPU
# make ddls-cifar10       # python -m ebmlib calibrate --run runs/sngan
#                         # python -m ebmlib sample --run runs/sngan --sampler generator | drs | ddls | dot --n 50000
#                         # python -m ebmlib evaluate runs/sngan/samples_*.pt --features classifier
# ```
#
# DDLS there uses the paper's settings, `pipeline.PAPER_DDLS` (1000 steps of ULA at $\varepsilon = 0.01$,
# ten units of Langevin time, bf16 for the networks and float32 for the chains), and the calibration is a
# logistic head on the frozen discriminator (`pipeline.PAPER_CALIBRATION`). FID and Inception Score need
# the FID Inception-v3 weights (`pip install -e '.[inception]'`, the weights' path in
# `$EBMLIB_INCEPTION_WEIGHTS`, then `FEATURES=inception make ddls-cifar10`); without them the scores are the
# classifier-based FCD and classifier score, under their own names. The numbers to compare with are the
# paper's, for its own SN-GAN: Inception Score 8.22 and FID 21.7 for the generator alone, 9.09 and 15.42
# with DDLS. **They were not run here**: this notebook's stored outputs come from stacked digits on a CPU.

# %%
print("CIFAR-10 settings (not run here):")
print("  training   ", pipeline.PAPER_TRAIN, "standard CNN, latent size", pipeline.build("cnn")[0].latent_dim)
print("  calibration", pipeline.PAPER_CALIBRATION)
print("  DDLS       ", pipeline.PAPER_DDLS, "Langevin time", pipeline.PAPER_DDLS["steps"] * pipeline.PAPER_DDLS["step_size"],
      "on 50,000 samples")
print("  the paper's SN-GAN: generator alone IS 8.22, FID 21.7; with DDLS IS 9.09, FID 15.42")

# %% [markdown]
#
# ## Summary
#
# - DDLS on images is chapter 05's sampler in the latent space of a trained SN-GAN: Langevin dynamics on
#   $E(z) = \tfrac12\lVert z\rVert^2 - d(G(z))$, then $x = G(z_N)$. It changes no weight of either network.
# - A hinge-trained discriminator estimates at best the sign of $\log p_\text{data}/p_g$, on an arbitrary
#   scale. Calibrated with the logistic loss against the frozen generator, ours lowered the held-out logistic
#   loss from 1.2519 to 1.1106 and raised the accuracy of its sign from 0.699 to 0.850.
# - How far $p_t$ lies from $p_g$ is set by the logit's spread $\sigma$ over the generator's samples: the gain
#   in $d$ is about $\sigma^2$, $\mathrm{KL}(p_t\,\|\,p_g) \approx \sigma^2/2$, the effective sample size of
#   the weights about $n e^{-\sigma^2}$. The importance weights $e^{d}$ on generator samples measure $p_t$
#   without any sampler, and MALA chains reproduced their prediction within one standard error.
# - Along the chains real digits change (the paper's Figure 3), and the samples are not copies of training
#   images (Figure 4): they sit farther from the training set than held-out real images.
# - On stacked digits, with a discriminator trained on a CPU budget, DDLS raises the fraction of
#   high-quality digits and lowers the FCD on every seed, keeps the modes, but does not lower the KL of the
#   mode histogram measurably (1.0% and 0.3%, against a target of 20%). The cause is measured: the target
#   $p_t$ itself is no closer to uniform, because the calibrated logit is blind to the modes' weights.
# - DOT, a deterministic climb of $d$ from each generator sample, raises quality the most (3 points) and
#   corrects nothing in the mode weights: it overshoots $p_t$ by a factor of 15 in the gain of $d$, crowds
#   the samples into fewer modes, and loses about 25 of them, on every seed.
# - Judge a sampler by what it samples, and judge the target before the sampler: an exact sampler of a
#   poor $p_t$ is a poor sampler of the data.
#
# ## Exercises
#
# 1. Skip the calibration: sample with the raw discriminator `D` in place of `d`, and with a logit whose scale
#    you double or halve (wrap `d` in a module that returns `2 * d(x)`). How do the gain in $d$, the
#    effective sample size and the high-quality fraction respond? Relate the answer to $\sigma^2$.
# 2. Make the discriminator see the modes. Calibrate with more steps (`pipeline.calibrate(RUN, steps=5000,
#    ...)`) or with `method="head"`, and repeat the regression of the mean logit per mode on
#    $\log q_\text{data}/q_g$. Does the slope move away from 0? Does the KL of $p_t$ by weights follow?
# 3. Run the paper's sampler for 300 and 1000 steps instead of 100. Where does its mean $d$ settle, and does
#    its high-quality fraction stay above that of MALA and of $p_t$ by weights?
# 4. Train the pair longer (`pipeline.train(..., steps=10_000)` into a new run folder) and rebuild the table
#    for such pairs with `image_table.image_table(seeds=3, train={"steps": 10_000})`. Does a better-trained
#    discriminator give DDLS more to work with, in quality and in the mode weights?
