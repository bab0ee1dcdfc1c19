"""ebmlib: the library behind the ebm-gan course.

GANs read as energy-based models: toy and image data, networks, adversarial losses, training loops,
discriminator calibration, and samplers (generator alone, DRS, MH-GAN, DDLS, DOT) behind one interface.
Data flows one way through the modules: data (``toy``, ``cifar10``, ``digits``, ``images``) -> ``nets`` -> ``losses``
-> ``checkpoint`` -> ``train`` / ``train_images`` -> ``energy`` (calibration) -> ``mcmc`` / ``transport`` / ``samplers``
-> ``metrics`` (with ``features``) -> ``plot``; no module imports one further down. ``recipes`` holds the
papers' experiments built from them.
"""
from . import digits, ebm, energy, images, losses, mcmc, nets, plot, samplers, toy, train, transport, wasserstein
from ._runtime import default_device, pick, smoke
from .energy import calibrate, latent_energy
from .mcmc import LangevinDivergence, langevin
from .samplers import sample

__version__ = "0.2.0"

__all__ = [
    "smoke", "pick", "default_device", "digits", "ebm", "energy", "images", "losses", "mcmc", "nets", "plot",
    "samplers", "toy", "train", "transport", "wasserstein", "calibrate", "latent_energy", "langevin", "sample", "LangevinDivergence",
]
