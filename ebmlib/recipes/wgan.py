"""A WGAN on the toy data, for DDLS with its critic as the energy (chapter 06 and the WGAN rows of Table 1).

A critic is not a log density ratio: it is calibrated against its frozen generator (``WGAN_HEAD`` or
``WGAN_CALIBRATION``) before DDLS samples with it.
"""
import torch

from .. import toy
from ..losses import WassersteinGP
from ..nets import MLPDiscriminator, MLPGenerator
from ..train import train_gan

# Budget and nets of a WGAN on the 25-Gaussian grid: about half a minute on one CPU core, after which
# the generator has found most modes but spreads much of its mass on bridges between them (an imperfect
# G, as in the DDLS paper's Table 1). The one-sided penalty (weight 10) trains faster here than the
# two-sided one, which on this budget leaves the generator further from the data.
WGAN_TRAIN = dict(steps=1200, batch_size=256, loss=WassersteinGP(one_sided=True), n_dis=3, lr_g=2e-3, lr_d=2e-3,
                  betas=(0.5, 0.9))
WGAN_NETS = dict(latent_dim=2, hidden=128, depth=3, d_hidden=128, spectral_norm=False)
# Calibrations of a critic against its frozen generator (``ebmlib.calibrate``'s options). The head fits
# a * D(x) + b; a critic's scale is far from a logit's, so the head needs a larger rate than the default.
# Fine-tuning retrains a copy of the critic with the logistic loss, towards log p_data / p_g.
WGAN_HEAD = dict(method="head", steps=1000, lr=0.05)
WGAN_CALIBRATION = dict(method="finetune", steps=2000, lr=1e-3, batch_size=1024)


def train_wgan_pair(seed, dataset="grid25", train=None, nets=None, progress=None):
    """Train an MLP WGAN (generator, critic) on a toy data set; returns (G, critic, history).

    ``train`` and ``nets`` override entries of :data:`WGAN_TRAIN` and :data:`WGAN_NETS` (``hidden`` is
    the generator's width, ``d_hidden`` the critic's; ``spectral_norm=True`` with ``loss='wgan'`` gives
    an SN critic instead of the gradient penalty). The critic's output is not a log density ratio:
    calibrate it (``ebmlib.calibrate(critic, G, sample_real, method="head")``) before DDLS.
    """
    train, nets = {**WGAN_TRAIN, **(train or {})}, {**WGAN_NETS, **(nets or {})}
    torch.manual_seed(seed)
    G = MLPGenerator(latent_dim=nets["latent_dim"], hidden=nets["hidden"], depth=nets["depth"])
    D = MLPDiscriminator(hidden=nets["d_hidden"], depth=nets["depth"], spectral_norm=nets["spectral_norm"])
    history = train_gan(G, D, toy.dataset(dataset), seed=seed, progress=progress, **train)
    return G, D, history


__all__ = ["train_wgan_pair", "WGAN_TRAIN", "WGAN_NETS", "WGAN_HEAD", "WGAN_CALIBRATION"]
