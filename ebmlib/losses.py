"""Adversarial losses, one signature for all.

Each loss is an object with
    ``discriminator(real_out, fake_out) -> scalar``   (what D minimises)
    ``generator(fake_out) -> scalar``                 (what G minimises)
where ``real_out`` and ``fake_out`` are the discriminator's raw outputs, shape (N,): logits for the
logistic losses, critic values for hinge and Wasserstein.

A loss that also regularises D has a method ``penalty(D, real, fake, generator=None) -> scalar``, which
``ebmlib.train.discriminator_step`` (the D update of every training loop) adds to the discriminator
loss. A loss that also regularises G has ``generator_penalty(D, fake) -> scalar`` (EBGAN's pulling-away
term, which reads D's embeddings ``D.embed(fake)``), which ``ebmlib.train.generator_step`` adds to the
generator loss. For EBGAN the outputs are energies >= 0 (an autoencoder's reconstruction error).
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
    penalty on random interpolates of real and fake (see ``gradient_penalty``). ``one_sided=True``
    penalises only gradient norms above 1 (the Lipschitz penalty of Petzka et al. 2018)."""

    name = "wgan-gp"

    def __init__(self, penalty_weight=10.0, one_sided=False):
        self.penalty_weight, self.one_sided = float(penalty_weight), bool(one_sided)

    def penalty(self, D, real, fake, generator=None):
        return gradient_penalty(D, real, fake, weight=self.penalty_weight, generator=generator,
                                one_sided=self.one_sided)


def gradient_penalty(D, real, fake, weight=10.0, generator=None, one_sided=False):
    """``weight * mean_i (||grad_x d(x_i)||_2 - 1)^2`` at x_i = a_i real_i + (1 - a_i) fake_i, a_i ~ U(0, 1).

    ``one_sided=True``: ``weight * mean_i max(0, ||grad_x d(x_i)||_2 - 1)^2``, which leaves flat
    stretches of d free. (The two-sided penalty also pushes the norm up to 1; in 1-D a critic whose
    slope has the wrong sign then sits in a local minimum: to flip it the slope must pass through 0,
    where the penalty is ``weight``.)

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
    excess = (norm - 1).clamp(min=0) if one_sided else norm - 1
    return weight * excess.pow(2).mean()


class EBGAN:
    """EBGAN's margin loss (Zhao, Mathieu and LeCun 2016). D's outputs are *energies* (N,), >= 0: low on
    the data, high elsewhere (an autoencoder's reconstruction error, ``ebmlib.nets.MLPAutoencoder`` and
    ``ConvAutoencoder``).

    D minimises ``E D(x) + E [m - D(G(z))]^+``: pull the energy of real samples down, push that of
    generated ones up, but no further than the margin ``m``. G minimises ``E D(G(z))``. At a Nash
    equilibrium p_g = p_data and the value of the D loss is exactly ``m`` (chapter 07).

    ``margin`` is in the units of D's energy: with a mean squared reconstruction error it is a squared
    distance per coordinate. An energy that can go negative (a raw logit) makes the D loss unbounded below.
    """

    name = "ebgan"

    def __init__(self, margin=1.0):
        if not float(margin) > 0:
            raise ValueError(f"margin must be > 0, got {margin!r}")
        self.margin = float(margin)

    def discriminator(self, real_out, fake_out):
        return real_out.mean() + F.relu(self.margin - fake_out).mean()

    def generator(self, fake_out):
        return fake_out.mean()


class EBGANPT(EBGAN):
    """EBGAN with the pulling-away term: G minimises ``E D(G(z)) + pt_weight * f_PT(S)``, where S (N, k)
    holds the encoder's embeddings ``D.embed(G(z))`` of the generated batch (see ``pulling_away``).

    The term rewards batches whose embeddings point in different directions, a push against mode
    collapse. The paper uses ``pt_weight = 0.1``. D's loss is unchanged.
    """

    name = "ebgan-pt"

    def __init__(self, margin=1.0, pt_weight=0.1):
        super().__init__(margin)
        if not float(pt_weight) >= 0:
            raise ValueError(f"pt_weight must be >= 0, got {pt_weight!r}")
        self.pt_weight = float(pt_weight)

    def generator_penalty(self, D, fake):
        """``pt_weight * pulling_away(D.embed(fake))``: the training loops add it to every G loss."""
        return self.pt_weight * pulling_away(D.embed(fake))


def pulling_away(S, eps=1e-8):
    """The pulling-away term ``f_PT = 1/(N(N-1)) sum_{i != j} cos^2(S_i, S_j)`` of embeddings S (N, k).

    Each row (one sample's embedding) is normalised to unit length (rows shorter than ``eps`` count as
    ``eps`` long), so the term is invariant to each row's scale. 0 when the rows are pairwise orthogonal,
    1 when all point along one line. Computed in float32. N >= 2.
    """
    if not isinstance(S, torch.Tensor) or S.dim() != 2 or S.shape[0] < 2:
        raise ValueError(f"embeddings S must have shape (N >= 2, k), got {tuple(getattr(S, 'shape', ()))}")
    S = S.float()
    unit = S / S.norm(dim=1, keepdim=True).clamp_min(eps)
    cos2 = (unit @ unit.T).pow(2)
    n = S.shape[0]
    off_diagonal = cos2.sum() - cos2.diagonal().sum()
    return off_diagonal / (n * (n - 1))


# Losses that need no constraint on D. The Wasserstein losses are apart: without a Lipschitz critic
# (spectral norm or a penalty the loop applies) they diverge, so ``get_loss`` hands them out on request.
# EBGAN needs energies >= 0 (an autoencoder D), not a Lipschitz constraint.
LOSSES = {cls.name: cls for cls in (NonSaturating, Vanilla, Hinge, EBGAN, EBGANPT)}
WASSERSTEIN_LOSSES = {cls.name: cls for cls in (Wasserstein, WassersteinGP)}


def get_loss(name_or_loss, *, wasserstein=False):
    """A loss object from its name ('ns', 'vanilla', 'hinge', 'ebgan', 'ebgan-pt'), or the object itself.

    ``wasserstein=True`` also accepts 'wgan' and 'wgan-gp' (for loops that keep D Lipschitz and apply
    ``loss.penalty``, like ``ebmlib.train.train_gan`` and ``ebmlib.train_images.train_images``).
    """
    if not isinstance(name_or_loss, str):
        return name_or_loss
    known = {**LOSSES, **WASSERSTEIN_LOSSES} if wasserstein else LOSSES
    if name_or_loss in known:
        return known[name_or_loss]()
    hint = "" if wasserstein else (
        f"; the Wasserstein losses {sorted(WASSERSTEIN_LOSSES)} need a Lipschitz critic: use them with "
        "ebmlib.train.train_gan or train_images, or get_loss(name, wasserstein=True)")
    raise ValueError(f"unknown loss {name_or_loss!r}; choose one of {sorted(known)}{hint}")
