"""Training: the two updates every loop shares, and the loops of the toy world.

``discriminator_step`` and ``generator_step`` are the only places where a loss, its penalties and an
optimizer step meet; ``train_gan`` (the adversarial game), ``train_discriminator`` (D alone against
fixed samplers) and ``ebmlib.train_images.train_images`` (the checkpointed image loop) all call them,
and all check the loss against D with ``check_loss``. On a GPU every random number is drawn on the device
that uses it (``generator_on``): latents and penalty weights by a generator on the nets' device, the
data by the samplers' CPU generator, whose output is then moved to the device.
"""
import contextlib
import time

import torch

from ._checks import positive_float, positive_int
from ._runtime import generator_on, module_device, progress_bar
from .losses import Wasserstein, get_loss
from .nets import spectral_norm_layers


def check_loss(loss, D, trains_generator=True):
    """The loss object for ``loss`` (a name or an object), after checking that D can be trained with it.

    A Wasserstein loss without a penalty needs a spectrally normalised D, else the critic diverges; a
    loss with a pulling-away term (EBGAN-PT) needs a D with ``embed`` (an autoencoder) when G trains.
    """
    loss = get_loss(loss, wasserstein=True)
    if isinstance(loss, Wasserstein) and getattr(loss, "penalty", None) is None and not spectral_norm_layers(D):
        raise ValueError(f"loss {getattr(loss, 'name', loss)!r} needs a Lipschitz critic: use 'wgan-gp' (gradient "
                         "penalty) or a spectrally normalised D (MLPDiscriminator(spectral_norm=True))")
    if trains_generator and hasattr(loss, "generator_penalty") and not hasattr(D, "embed"):
        raise ValueError(f"loss {getattr(loss, 'name', loss)!r} reads D's embeddings, but {type(D).__name__} has no "
                         "embed(x): use an autoencoder discriminator (ebmlib.nets.MLPAutoencoder, ConvAutoencoder)")
    return loss



def fake_batch(G, n, generator=None, *, device=None, autocast=contextlib.nullcontext):
    """``n`` samples G(z), z ~ N(0, I) drawn with ``generator`` on ``device``, without gradients."""
    z = torch.randn(n, G.latent_dim, device=device, generator=generator)
    with autocast(), torch.no_grad():
        return G(z)


def discriminator_step(D, real, fake, loss, optimizer, *, generator=None, autocast=contextlib.nullcontext):
    """One update of D on a real and a fake batch of one shape (N, ...); returns (d_loss, real_out, fake_out).

    Real and fake go through D as one batch (one forward pass, one spectral-norm power iteration; a D
    with batch norm would see them mixed). The loss is computed in float32 from D's outputs (N,), and a
    loss's ``penalty(D, real, fake, generator)`` (WGAN-GP) is added to it, computed on the eager module when
    D is a ``torch.compile`` wrapper. Everything returned is detached.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches must have the same shape, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    fake = fake.to(real.dtype)  # under autocast G returns bf16; real batches are float32
    n = real.shape[0]
    with autocast():
        out = D(torch.cat([real, fake])).float()
        real_out, fake_out = out[:n], out[n:]
        d_loss = loss.discriminator(real_out, fake_out)
        penalty = getattr(loss, "penalty", None)
        if penalty is not None:
            # a compiled graph cannot be differentiated twice (the penalty's create_graph); the eager module can
            d_loss = d_loss + penalty(getattr(D, "_orig_mod", D), real, fake, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    optimizer.step()
    return d_loss.detach(), real_out.detach(), fake_out.detach()


def generator_step(G, D, loss, optimizer, n, *, generator=None, device=None, autocast=contextlib.nullcontext):
    """One update of G on ``n`` fresh latents; returns the G loss (detached).

    D's parameters are frozen for the step (no wasted weight gradients) and restored after. A loss's
    ``generator_penalty(D, fake)`` (EBGAN-PT's pulling-away term) is added to the G loss.
    """
    z = torch.randn(n, G.latent_dim, device=device, generator=generator)
    frozen = [p for p in D.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with autocast():
            fake = G(z)
            g_loss = loss.generator(D(fake).float())
            if hasattr(loss, "generator_penalty"):
                g_loss = g_loss + loss.generator_penalty(D, fake).float()
        optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        optimizer.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return g_loss.detach()


def train_gan(G, D, sample_data, *, steps, batch_size=256, loss="ns", n_dis=1, lr_g=1e-4, lr_d=1e-4,
              betas=(0.5, 0.999), seed=0, progress=None, log_every=50):
    """Train G and D in place by alternating Adam steps; returns the loss history.

    ``sample_data(n, generator) -> (n, dim)`` draws real data; ``steps`` counts generator updates,
    each preceded by ``n_dis`` discriminator updates. ``loss`` is a name from ``ebmlib.losses``
    or a loss object. Deterministic for a given ``seed`` on the CPU. The Wasserstein losses are
    accepted for a Lipschitz critic: 'wgan-gp' (its ``penalty(D, real, fake, generator)`` is added to
    every D loss) or 'wgan' with a spectrally normalised D (``MLPDiscriminator(spectral_norm=True)``).
    A loss with ``generator_penalty(D, fake)`` (EBGAN-PT's pulling-away term) has it added to every G loss.
    The nets train on D's device: ``sample_data`` gets a CPU generator seeded with ``seed`` and its
    output is moved there; latents and penalty weights are drawn on that device (``generator_on``).

    Returns a dict of lists: ``step``, ``d_loss``, ``g_loss`` (every ``log_every`` steps), and
    ``seconds`` (float).
    """
    positive_int(steps, "steps"), positive_int(batch_size, "batch_size"), positive_int(n_dis, "n_dis")
    loss = check_loss(loss, D)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = module_device(D)
    draws = generator_on(device, gen)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
    history = {"step": [], "d_loss": [], "g_loss": []}
    start = time.perf_counter()
    G.train(), D.train()
    for step in progress_bar(range(1, steps + 1), progress=progress, desc="train"):
        for _ in range(n_dis):
            real = sample_data(batch_size, gen).to(device)
            fake = fake_batch(G, batch_size, draws, device=device)
            d_loss, _, _ = discriminator_step(D, real, fake, loss, opt_d, generator=draws)
        g_loss = generator_step(G, D, loss, opt_g, batch_size, generator=draws, device=device)
        if step % log_every == 0 or step == steps:
            history["step"].append(step)
            history["d_loss"].append(d_loss.item())
            history["g_loss"].append(g_loss.item())
    G.eval(), D.eval()
    history["seconds"] = time.perf_counter() - start
    return history


def train_discriminator(D, sample_real, sample_fake, *, steps, batch_size=256, lr=1e-3, betas=(0.9, 0.999),
                        lr_decay=False, seed=0, progress=None, log_every=50, loss="ns"):
    """Train D alone against a fixed fake distribution, in place; by default with the logistic loss.

    ``sample_real(n, generator)`` and ``sample_fake(n, generator)`` return (n, dim) tensors of one shape;
    they get a CPU generator seeded with ``seed``, and what they return is moved to D's device (a
    penalty's weights are drawn there, by ``generator_on``).
    With the logistic loss the minimiser is the optimal discriminator, whose logit is
    log p_real(x) / p_fake(x). ``loss``: another D loss of ``ebmlib.losses`` (a name or an object), e.g.
    'ebgan' for an energy D trained with the margin loss (chapter 07) or 'wgan-gp' for a critic (chapter
    06); a loss's ``penalty(D, real, fake, generator)`` is added to every D loss, and a Wasserstein loss
    without one needs a spectrally normalised D. Only D's parameters with ``requires_grad`` train.
    ``lr_decay=True`` lowers the learning rate linearly to 0 over the steps, which quiets the noise of
    the last updates (a sharper, steadier estimate).
    Returns a dict: lists ``step``, ``loss`` (with the penalty) and ``gap`` (the batch's mean D output on
    real minus that on fake), every ``log_every`` steps; ``seconds``.
    """
    positive_int(steps, "steps"), positive_int(batch_size, "batch_size"), positive_float(lr, "lr")
    d_loss_fn = check_loss(loss, D, trains_generator=False)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = module_device(D)
    draws = generator_on(device, gen)
    opt = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=lr, betas=betas)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps if lr_decay else 1.0)
    history = {"step": [], "loss": [], "gap": []}
    start = time.perf_counter()
    D.train()
    for step in progress_bar(range(1, steps + 1), progress=progress, desc="train D"):
        with torch.no_grad():
            real, fake = sample_real(batch_size, gen).to(device), sample_fake(batch_size, gen).to(device)
        d_loss, real_out, fake_out = discriminator_step(D, real, fake, d_loss_fn, opt, generator=draws)
        schedule.step()
        if step % log_every == 0 or step == steps:
            history["step"].append(step)
            history["loss"].append(d_loss.item())
            history["gap"].append((real_out.mean() - fake_out.mean()).item())
    D.eval()
    history["seconds"] = time.perf_counter() - start
    return history
