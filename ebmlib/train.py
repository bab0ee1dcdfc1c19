"""Training loops: the adversarial game, and a discriminator alone against fixed samplers."""
import time

import torch
from tqdm import tqdm

from . import smoke
from ._checks import positive_float, positive_int
from .losses import NonSaturating, get_loss


def show_progress(progress):
    """Progress bars on unless asked otherwise; off in smoke mode (CI logs stay clean)."""
    return (not smoke()) if progress is None else bool(progress)


def train_gan(G, D, sample_data, *, steps, batch_size=256, loss="ns", n_dis=1, lr_g=1e-4, lr_d=1e-4,
              betas=(0.5, 0.999), seed=0, progress=None, log_every=50):
    """Train G and D in place by alternating Adam steps; returns the loss history.

    ``sample_data(n, generator) -> (n, dim)`` draws real data; ``steps`` counts generator updates,
    each preceded by ``n_dis`` discriminator updates. ``loss`` is a name from ``ebmlib.losses``
    or a loss object. Deterministic for a given ``seed`` on the CPU.

    Returns a dict of lists: ``step``, ``d_loss``, ``g_loss`` (every ``log_every`` steps), and
    ``seconds`` (float).
    """
    positive_int(steps, "steps"), positive_int(batch_size, "batch_size"), positive_int(n_dis, "n_dis")
    loss = get_loss(loss)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
    history = {"step": [], "d_loss": [], "g_loss": []}
    start = time.perf_counter()
    G.train(), D.train()
    for step in tqdm(range(1, steps + 1), disable=not show_progress(progress), desc="train", leave=False):
        for _ in range(n_dis):
            real = sample_data(batch_size, gen)
            with torch.no_grad():
                fake = G(torch.randn(batch_size, G.latent_dim, generator=gen))
            d_loss = loss.discriminator(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        g_loss = loss.generator(D(G(torch.randn(batch_size, G.latent_dim, generator=gen))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if step % log_every == 0 or step == steps:
            history["step"].append(step)
            history["d_loss"].append(d_loss.item())
            history["g_loss"].append(g_loss.item())
    G.eval(), D.eval()
    history["seconds"] = time.perf_counter() - start
    return history


def train_discriminator(D, sample_real, sample_fake, *, steps, batch_size=256, lr=1e-3, betas=(0.9, 0.999),
                        lr_decay=False, seed=0, progress=None, log_every=50):
    """Train D alone with the logistic loss: real (label 1) against fake (label 0), in place.

    ``sample_real(n, generator)`` and ``sample_fake(n, generator)`` return (n, dim) tensors.
    The minimiser is the optimal discriminator, whose logit is log p_real(x) / p_fake(x).
    ``lr_decay=True`` lowers the learning rate linearly to 0 over the steps, which quiets the
    noise of the last updates (a sharper, steadier ratio estimate). Returns a dict of lists ``step``, ``loss`` and ``seconds``.
    """
    positive_int(steps, "steps"), positive_int(batch_size, "batch_size"), positive_float(lr, "lr")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in D.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=betas)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps if lr_decay else 1.0)
    logistic = NonSaturating()
    history = {"step": [], "loss": []}
    start = time.perf_counter()
    D.train()
    for step in tqdm(range(1, steps + 1), disable=not show_progress(progress), desc="train D", leave=False):
        with torch.no_grad():
            real, fake = sample_real(batch_size, gen), sample_fake(batch_size, gen)
        loss = logistic.discriminator(D(real), D(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % log_every == 0 or step == steps:
            history["step"].append(step)
            history["loss"].append(loss.item())
    D.eval()
    history["seconds"] = time.perf_counter() - start
    return history
