"""Networks. The 2-D world uses small MLPs: a generator z -> x and a discriminator x -> logit; images use
the SN-GAN nets; EBGAN uses autoencoder discriminators x -> energy (MLP and conv, at the end)."""
import torch
from torch import nn

from ._checks import last_dim


def mlp(in_dim, out_dim, hidden, depth, activation):
    """in_dim -> ``depth`` x (Linear to ``hidden``, ``activation()``) -> Linear to out_dim, as nn.Sequential."""
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G: (N, latent_dim) -> (N, out_dim), ReLU hidden layers."""

    def __init__(self, latent_dim=2, out_dim=2, hidden=128, depth=3):
        super().__init__()
        self.latent_dim, self.out_dim = latent_dim, out_dim
        self.net = mlp(latent_dim, out_dim, hidden, depth, nn.ReLU)

    def forward(self, z):
        return self.net(last_dim(z, self.latent_dim, "latent z"))


class NoisyGenerator(nn.Module):
    """G'(z, z') = G(z) + sigma * z': a generator extended by a second latent z' of the data's size.

    Its law is p_g convolved with N(0, sigma^2 I), which has full support even when G's outputs lie on a
    thin set (the DDLS paper's Corollary 2): p_g' e^{d'} can then equal p_data, and DDLS on the joint
    latent (z, z') can reach data that G alone never makes. ``data_dim``: the size of G's output
    vectors. Latents (N, G.latent_dim + data_dim) -> (N, data_dim).
    """

    def __init__(self, G, data_dim, sigma):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}")
        self.G, self.data_dim, self.sigma = G, data_dim, sigma
        self.latent_dim = G.latent_dim + data_dim

    def forward(self, latent):
        latent = last_dim(latent, self.latent_dim, "latent (z, z')")
        z, noise = latent.split([self.G.latent_dim, self.data_dim], dim=-1)
        return self.G(z) + self.sigma * noise


ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}


def _activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLPDiscriminator(nn.Module):
    """d: (N, in_dim) -> (N,) logits (D(x) = sigmoid(d(x))).

    ``activation`` names the hidden nonlinearity ('leaky_relu', 'relu', 'silu', 'elu'). A smooth one
    (SiLU) lets d bend into the quadratic bowls that a log density ratio of Gaussians has; a
    piecewise-linear d can only approximate them with facets.

    ``spectral_norm=True`` wraps every Linear layer in spectral normalisation (each weight divided by
    a power-iteration estimate of its largest singular value, refined once per forward pass in training
    mode). With a 1-Lipschitz activation (LeakyReLU, ReLU, ELU; SiLU's slope reaches about 1.1) d is then
    at most 1-Lipschitz: a WGAN critic.
    """

    def __init__(self, in_dim=2, hidden=128, depth=3, activation="leaky_relu", spectral_norm=False):
        super().__init__()
        self.in_dim = in_dim
        self.net = mlp(in_dim, 1, hidden, depth, _activation(activation))
        if spectral_norm:
            for i, layer in enumerate(self.net):
                if isinstance(layer, nn.Linear):
                    self.net[i] = _sn(layer)

    def forward(self, x):
        return self.net(last_dim(x, self.in_dim, "discriminator input x")).squeeze(-1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def frozen(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode with gradients off for its parameters (sampling-time use)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# --- SN-GAN networks (Miyato et al. 2018), sized by the images ----------------------------------------
#
# Two pairs: the "standard CNN" (their Table 3) and the ResNet (their Table 4, CIFAR-10). Generators map
# z (N, latent_dim) to images (N, C, S, S) in [-1, 1]; discriminators map images to logits (N,).
# ``image_shape`` (C, S, S) with S = 8, 16, 32 or 64 sets the channels and the number of 2x stages
# (log2(S / 4)); at the default (3, 32, 32) the nets are the paper's, layer for layer.
# Every weight layer of a discriminator carries spectral normalisation (one power iteration a forward
# pass in training mode; the stored estimate in eval mode), which keeps d roughly 1-Lipschitz.

IMAGE_SHAPE = (3, 32, 32)
IMAGE_SIZES = (8, 16, 32, 64)


def image_stages(image_shape):
    """The number of 2x resolution stages between 4x4 and the images of ``image_shape`` (C, S, S):
    log2(S / 4). A ValueError names the sizes the nets accept."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in IMAGE_SIZES or shape[0] < 1:
        raise ValueError(f"image_shape must be (channels, S, S) with S in {IMAGE_SIZES}, got {tuple(image_shape)}")
    return shape[1].bit_length() - 3


def image_batch(x, shape=IMAGE_SHAPE, name="images x"):
    """Check that ``x`` is a tensor of shape (N, *shape); the ValueError names both shapes."""
    want = "(N, " + ", ".join(str(s) for s in shape) + ")"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {want}, got {type(x).__name__}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    return x


def _sn(layer):
    """Spectral normalisation on ``layer.weight`` (the weight reshaped to (out, -1) has sigma_max = 1)."""
    return nn.utils.parametrizations.spectral_norm(layer)


def _init(layer, gain=1.0, std=None):
    """Xavier-uniform weights with ``gain`` (or N(0, std^2) when ``std`` is given), zero bias."""
    if std is None:
        nn.init.xavier_uniform_(layer.weight, gain)
    else:
        nn.init.normal_(layer.weight, std=std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class SNGANGenerator(nn.Module):
    """SN-GAN standard CNN generator: (N, latent_dim) -> (N, C, S, S) in [-1, 1], ``image_shape`` (C, S, S).

    z -> linear to 4x4x(top) -> BN, ReLU -> log2(S/4) 4x4 stride-2 transposed convs halving the channels
    down to ``ch``, each followed by BN and ReLU -> 3x3 conv to C channels -> tanh; top = ch * S/4.
    At 32x32 this is the paper's net (8ch -> 4ch -> 2ch -> ch); ``ch=64`` has 3.8M parameters.
    Weights start N(0, 0.02^2).
    """

    def __init__(self, latent_dim=128, ch=64, image_shape=IMAGE_SHAPE):
        super().__init__()
        stages = image_stages(image_shape)
        self.latent_dim, self.ch, self.image_shape = latent_dim, ch, tuple(image_shape)
        self.top = ch * 2 ** stages
        self.linear = nn.Linear(latent_dim, 4 * 4 * self.top)
        layers = [nn.BatchNorm2d(self.top), nn.ReLU()]
        for i in range(stages, 0, -1):
            c_in, c_out = ch * 2 ** i, ch * 2 ** (i - 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.Conv2d(ch, self.image_shape[0], 3, padding=1), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                _init(m, std=0.02)

    def forward(self, z):
        h = self.linear(last_dim(z, self.latent_dim, "latent z"))
        return self.main(h.view(z.shape[0], self.top, 4, 4))


class SNGANDiscriminator(nn.Module):
    """SN-GAN standard CNN discriminator: (N, C, S, S) -> logits (N,), ``image_shape`` (C, S, S).

    A 3x3 conv to ``ch``, then per 2x stage a 4x4/2 conv and a 3x3 conv doubling the channels (LeakyReLU
    0.1 after each), then a linear layer on the flattened 4x4x(ch * S/4) features. Spectral norm on every
    layer. At 32x32 this is the paper's net (3x3 ch, 4x4/2 ch, 3x3 2ch, 4x4/2 2ch, 3x3 4ch, 4x4/2 4ch,
    3x3 8ch, linear); ``ch=64`` has 2.9M parameters. Weights start N(0, 0.02^2).
    """

    def __init__(self, ch=64, image_shape=IMAGE_SHAPE):
        super().__init__()
        stages = image_stages(image_shape)
        self.ch, self.in_shape = ch, tuple(image_shape)
        plan = [(self.in_shape[0], ch, 3, 1)]
        for i in range(stages):
            c = ch * 2 ** i
            plan += [(c, c, 4, 2), (c, 2 * c, 3, 1)]
        layers = []
        for c_in, c_out, k, stride in plan:
            # padding 1 keeps the size for 3x3/1 and halves it exactly for 4x4/2
            layers += [_sn(_init(nn.Conv2d(c_in, c_out, k, stride=stride, padding=1), std=0.02)), nn.LeakyReLU(0.1)]
        self.main = nn.Sequential(*layers)
        self.linear = _sn(_init(nn.Linear(4 * 4 * ch * 2 ** stages, 1), std=0.02))

    def forward(self, x):
        h = self.main(image_batch(x, self.in_shape, "discriminator input x"))
        return self.linear(h.flatten(1)).squeeze(1)


def _upsample(t):
    return nn.functional.interpolate(t, scale_factor=2, mode="nearest")


class _GBlock(nn.Module):
    """Generator residual block: BN, ReLU, 2x nearest upsample, conv3x3, BN, ReLU, conv3x3;
    shortcut: a 1x1 conv, upsampled."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = _init(nn.Conv2d(c_in, c_out, 3, padding=1), gain=2 ** 0.5)
        self.conv2 = _init(nn.Conv2d(c_out, c_out, 3, padding=1), gain=2 ** 0.5)
        self.shortcut = _init(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x):
        h = self.conv1(_upsample(torch.relu(self.bn1(x))))
        h = self.conv2(torch.relu(self.bn2(h)))
        # a 1x1 conv commutes with nearest upsampling; convolving first costs a quarter of the pixels
        return h + _upsample(self.shortcut(x))


class _DBlock(nn.Module):
    """Discriminator residual block: [ReLU,] conv3x3, ReLU, conv3x3 [, avg-pool 2x2]; spectral norm.

    ``first=True`` is the "optimised" first block: no ReLU on the raw image. The shortcut gets a 1x1
    conv when the block changes the channels or the size, and is the identity otherwise; it pools
    before that conv, the same map as after (both are linear and act per pixel / per channel) but on a
    quarter of the pixels.
    """

    def __init__(self, c_in, c_out, down, first=False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _sn(_init(nn.Conv2d(c_in, c_out, 3, padding=1), gain=2 ** 0.5))
        self.conv2 = _sn(_init(nn.Conv2d(c_out, c_out, 3, padding=1), gain=2 ** 0.5))
        self.shortcut = _sn(_init(nn.Conv2d(c_in, c_out, 1))) if (c_in != c_out or down) else None

    def _pool(self, t):
        return nn.functional.avg_pool2d(t, 2) if self.down else t

    def forward(self, x):
        h = x if self.first else torch.relu(x)
        h = self._pool(self.conv2(torch.relu(self.conv1(h))))
        return h + (x if self.shortcut is None else self.shortcut(self._pool(x)))


class SNGANResGenerator(nn.Module):
    """SN-GAN ResNet generator: (N, latent_dim) -> (N, C, S, S) in [-1, 1], ``image_shape`` (C, S, S).

    z -> linear to 4x4xch -> log2(S/4) upsampling residual blocks of ``ch`` channels -> BN, ReLU,
    conv3x3 to C -> tanh. At 32x32 (three blocks, 4 -> 8 -> 16 -> 32) with ``ch=256`` this is the
    paper's CIFAR-10 net, 4.3M parameters.
    """

    def __init__(self, latent_dim=128, ch=256, image_shape=IMAGE_SHAPE):
        super().__init__()
        stages = image_stages(image_shape)
        self.latent_dim, self.ch, self.image_shape = latent_dim, ch, tuple(image_shape)
        self.linear = _init(nn.Linear(latent_dim, 4 * 4 * ch))
        self.blocks = nn.Sequential(*[_GBlock(ch, ch) for _ in range(stages)])
        self.bn = nn.BatchNorm2d(ch)
        self.out = _init(nn.Conv2d(ch, self.image_shape[0], 3, padding=1))

    def forward(self, z):
        h = self.linear(last_dim(z, self.latent_dim, "latent z")).view(z.shape[0], self.ch, 4, 4)
        return torch.tanh(self.out(torch.relu(self.bn(self.blocks(h)))))


class SNGANResDiscriminator(nn.Module):
    """SN-GAN ResNet discriminator: (N, C, S, S) -> logits (N,), ``image_shape`` (C, S, S).

    Residual blocks of ``ch`` channels that halve the size down to 8x8 (the first is the optimised block,
    which also halves when S > 8), then two residual blocks at 8x8; ReLU, global sum pooling, linear to 1.
    Spectral norm on every layer. At 32x32 (32 -> 16 -> 8, then two at 8x8) with ``ch=128`` this is the
    paper's CIFAR-10 net, 1.05M parameters.
    """

    def __init__(self, ch=128, image_shape=IMAGE_SHAPE):
        super().__init__()
        downs = image_stages(image_shape) - 1  # halvings down to 8x8
        self.ch, self.in_shape = ch, tuple(image_shape)
        blocks = [_DBlock(self.in_shape[0], ch, down=downs > 0, first=True)]
        blocks += [_DBlock(ch, ch, down=True) for _ in range(downs - 1)]
        blocks += [_DBlock(ch, ch, down=False), _DBlock(ch, ch, down=False)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = _sn(_init(nn.Linear(ch, 1)))

    def forward(self, x):
        h = torch.relu(self.blocks(image_batch(x, self.in_shape, "discriminator input x")))
        return self.linear(h.sum(dim=(2, 3))).squeeze(1)


# The image architectures by name: (generator class, discriminator class); the command line's choices.
ARCHITECTURES = {"cnn": (SNGANGenerator, SNGANDiscriminator), "resnet": (SNGANResGenerator, SNGANResDiscriminator)}


def build_pair(arch="cnn", latent_dim=128, ch=None, image_shape=IMAGE_SHAPE):
    """A fresh image GAN pair ``(G, D)`` of the architecture ``arch`` in :data:`ARCHITECTURES`, for images
    of ``image_shape`` (C, S, S).

    ``ch`` is the base width (default: the paper's, 64 for the CNN and 256 / 128 for the ResNet).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    G_cls, D_cls = ARCHITECTURES[arch]
    widths = {} if ch is None else {"ch": ch}
    return (G_cls(latent_dim=latent_dim, image_shape=image_shape, **widths),
            D_cls(image_shape=image_shape, **widths))


def spectral_norm_layers(module: nn.Module):
    """The (name, layer) pairs of ``module`` whose weight is spectrally normalised."""
    from torch.nn.utils import parametrize

    return [(name, m) for name, m in module.named_modules()
            if parametrize.is_parametrized(m, "weight")
            and any(type(p).__name__ == "_SpectralNorm" for p in m.parametrizations.weight)]


# --- autoencoder discriminators (EBGAN, Zhao et al. 2016) -------------------------------------------
#
# D(x) is the reconstruction error of an autoencoder: an energy >= 0, low where D has learned to
# reconstruct (the data), high elsewhere. ``embed(x)`` returns the encoder's output, which the
# pulling-away term of ``ebmlib.losses.EBGANPT`` reads. No batch norm: each sample's energy depends on
# that sample alone (real and fake go through D as one batch in the training loops).

ENERGIES = ("mean", "sum")


def reconstruction_energy(x, x_hat, energy="mean"):
    """Squared reconstruction error per sample: x, x_hat (N, ...) -> (N,), in float32.

    ``energy='mean'``: the mean over the coordinates (pixels x channels), ``||x - x_hat||^2 / D``, the
    usual "MSE", whose scale does not depend on the input's size; ``'sum'``: ``||x - x_hat||^2``, D times
    larger. EBGAN's paper writes the energy as the norm of the residual; margins are in the energy's
    units, so pick the margin for the normalisation you use.
    """
    if energy not in ENERGIES:
        raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and its reconstruction must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(x_hat.shape)}")
    sq = (x.float() - x_hat.float()).pow(2).flatten(1)
    return sq.mean(dim=1) if energy == "mean" else sq.sum(dim=1)


class _Autoencoder(nn.Module):
    """What the autoencoder discriminators share: subclasses set ``encoder``, ``decoder`` and ``embed``;
    the energy of x is the error of reconstructing it from its embedding."""

    def __init__(self, energy):
        super().__init__()
        if energy not in ENERGIES:
            raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
        self.energy = energy

    def reconstruct(self, x):
        """Decoder(encoder(x)): the same shape as x."""
        return self.decoder(self.embed(x))

    def forward(self, x):
        return reconstruction_energy(x, self.reconstruct(x), self.energy)


class MLPAutoencoder(_Autoencoder):
    """EBGAN discriminator for vectors: energy D(x) = reconstruction error, (N, in_dim) -> (N,) >= 0.

    Encoder: ``depth`` hidden layers of ``hidden`` units, then linear to ``code_dim`` (the embedding,
    no activation); the decoder mirrors it back to ``in_dim``. ``energy``: 'mean' (squared error averaged
    over the ``in_dim`` coordinates) or 'sum' (summed), see ``reconstruction_energy``. ``depth=0`` makes
    both halves single linear maps.
    """

    def __init__(self, in_dim=2, hidden=128, depth=2, code_dim=16, activation="leaky_relu", energy="mean"):
        super().__init__(energy)
        self.in_dim, self.code_dim = in_dim, code_dim
        self.encoder = mlp(in_dim, code_dim, hidden, depth, _activation(activation))
        self.decoder = mlp(code_dim, in_dim, hidden, depth, _activation(activation))

    def embed(self, x):
        """The encoder's output, (N, in_dim) -> (N, code_dim)."""
        return self.encoder(last_dim(x, self.in_dim, "autoencoder input x"))


class ConvAutoencoder(_Autoencoder):
    """EBGAN discriminator for images in [-1, 1]: (N, C, S, S) -> energies (N,) >= 0, ``in_shape`` (C, S, S).

    Encoder: log2(S/4) 4x4 stride-2 convs (C -> ch -> 2ch -> ... channels, down to 4x4 pixels), LeakyReLU
    0.2 after each, then linear from the 4x4 features to ``code_dim`` (the embedding). The decoder mirrors
    it: linear, 4x4 stride-2 transposed convs back to C channels at SxS, with a linear output (no tanh, so
    a perfect reconstruction is possible). At 32x32: 3 -> ch -> 2ch -> 4ch. ``energy``: 'mean' (squared
    error averaged over the C*S*S values) or 'sum' (summed), see ``reconstruction_energy``.
    """

    def __init__(self, ch=64, code_dim=128, energy="mean", in_shape=IMAGE_SHAPE):
        super().__init__(energy)
        stages = image_stages(in_shape)
        self.ch, self.code_dim, self.in_shape = ch, code_dim, tuple(in_shape)
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        widths = [self.in_shape[0]] + [ch * 2 ** i for i in range(stages)]
        top = widths[-1]
        encoder = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            encoder += [nn.Conv2d(c_in, c_out, 4, 2, 1), act()]
        self.encoder = nn.Sequential(*encoder, nn.Flatten(), nn.Linear(4 * 4 * top, code_dim))
        decoder = [nn.Linear(code_dim, 4 * 4 * top), act(), nn.Unflatten(1, (top, 4, 4))]
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]):
            decoder += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), act()]
        self.decoder = nn.Sequential(*decoder[:-1])  # linear output

    def embed(self, x):
        """The encoder's output, (N, C, S, S) -> (N, code_dim)."""
        return self.encoder(image_batch(x, self.in_shape, "autoencoder input x"))
