"""Adversarial losses, one signature for all.

Each loss is an object with
    ``discriminator(real_out, fake_out) -> scalar``   (what D minimises)
    ``generator(fake_out) -> scalar``                 (what G minimises)
where ``real_out`` and ``fake_out`` are the discriminator's raw outputs, shape (N,): logits for the
logistic losses, critic values for hinge and Wasserstein.

A loss that also regularises D has a method ``penalty(D, real, fake, generator=None) -> scalar``; a
training loop adds it to the discriminator loss (``ebmlib.train.train_images`` does).
"""
import torch
import torch.nn.functional as F


class NonSaturating:
    """Logistic D loss; G maximises log D(G(z)) (Goodfellow et al.'s practical variant).

    At the optimum for fixed p_g the logit is d(x) = log p_data(x) / p_g(x).
    """

    name = "ns"

    def discriminator(self, real_out, fake_out):
        # -log sigmoid(d) = softplus(-d);  -log(1 - sigmoid(d)) = softplus(d)
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()

    def generator(self, fake_out):
        return F.softplus(-fake_out).mean()


class Vanilla(NonSaturating):
    """The minimax game itself: G minimises log(1 - D(G(z))). Saturates early in training."""

    name = "vanilla"

    def generator(self, fake_out):
        return -F.softplus(fake_out).mean()


class Hinge:
    """Hinge loss (SN-GAN): D minimises [1 - d(x)]^+ + [1 + d(G(z))]^+, G minimises -d(G(z))."""

    name = "hinge"

    def discriminator(self, real_out, fake_out):
        return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()

    def generator(self, fake_out):
        return -fake_out.mean()


class Wasserstein:
    """WGAN: the critic maximises E d(x) - E d(G(z)), i.e. minimises mean(fake) - mean(real);
    G minimises -E d(G(z)).

    Only meaningful for a (roughly) 1-Lipschitz critic: spectral norm, or ``WassersteinGP``'s penalty.
    Then -(D loss) estimates the Wasserstein-1 distance (Kantorovich-Rubinstein duality).
    """

    name = "wgan"

    def discriminator(self, real_out, fake_out):
        return fake_out.mean() - real_out.mean()

    def generator(self, fake_out):
        return -fake_out.mean()


class WassersteinGP(Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017): the Wasserstein loss plus ``penalty_weight`` times the gradient
    penalty on random interpolates of real and fake (see ``gradient_penalty``)."""

    name = "wgan-gp"

    def __init__(self, penalty_weight=10.0):
        self.penalty_weight = float(penalty_weight)

    def penalty(self, D, real, fake, generator=None):
        return gradient_penalty(D, real, fake, weight=self.penalty_weight, generator=generator)


def gradient_penalty(D, real, fake, weight=10.0, generator=None):
    """``weight * mean_i (||grad_x d(x_i)||_2 - 1)^2`` at x_i = a_i real_i + (1 - a_i) fake_i, a_i ~ U(0, 1).

    ``real`` and ``fake`` have the same shape (N, ...) (``fake`` is detached: the penalty trains D only);
    ``generator`` (a ``torch.Generator`` on their device) draws the a_i, for reproducible runs. The
    graph is kept (``create_graph=True``), so the returned scalar can be backpropagated into D.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    a = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, generator=generator)
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    # the norm in float32 even when D ran under bf16 autocast: (||g|| - 1)^2 is a small difference
    norm = grad.float().flatten(1).norm(dim=1)
    return weight * (norm - 1).pow(2).mean()


# Losses that need no constraint on D. The Wasserstein losses are apart: without a Lipschitz critic
# (spectral norm or a penalty the loop applies) they diverge, so ``get_loss`` hands them out on request.
LOSSES = {cls.name: cls for cls in (NonSaturating, Vanilla, Hinge)}
WASSERSTEIN_LOSSES = {cls.name: cls for cls in (Wasserstein, WassersteinGP)}


def get_loss(name_or_loss, *, wasserstein=False):
    """A loss object from its name ('ns', 'vanilla', 'hinge'), or the object itself.

    ``wasserstein=True`` also accepts 'wgan' and 'wgan-gp' (for loops that keep D Lipschitz and apply
    ``loss.penalty``, like ``ebmlib.train.train_images``).
    """
    if not isinstance(name_or_loss, str):
        return name_or_loss
    known = {**LOSSES, **WASSERSTEIN_LOSSES} if wasserstein else LOSSES
    if name_or_loss in known:
        return known[name_or_loss]()
    hint = "" if wasserstein else (
        f"; the Wasserstein losses {sorted(WASSERSTEIN_LOSSES)} need a Lipschitz critic: use them with "
        "ebmlib.train.train_images, or get_loss(name, wasserstein=True)")
    raise ValueError(f"unknown loss {name_or_loss!r}; choose one of {sorted(known)}{hint}")
