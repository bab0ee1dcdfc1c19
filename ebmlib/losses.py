"""Adversarial losses, one signature for all.

Each loss is an object with
    ``discriminator(real_out, fake_out) -> scalar``   (what D minimises)
    ``generator(fake_out) -> scalar``                 (what G minimises)
where ``real_out`` and ``fake_out`` are the discriminator's raw outputs, shape (N,): logits for the
logistic losses, critic values for hinge.
"""
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


LOSSES = {cls.name: cls for cls in (NonSaturating, Vanilla, Hinge)}


def get_loss(name_or_loss):
    """A loss object from its name ('ns', 'vanilla', 'hinge'), or the object itself."""
    if not isinstance(name_or_loss, str):
        return name_or_loss
    try:
        return LOSSES[name_or_loss]()
    except KeyError:
        raise ValueError(f"unknown loss {name_or_loss!r}; choose one of {sorted(LOSSES)}") from None
