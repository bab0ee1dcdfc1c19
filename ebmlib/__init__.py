"""ebmlib: the library behind the ebm-gan course.

GANs read as energy-based models: toy data, networks, adversarial losses, a training loop,
discriminator calibration, and samplers (generator alone, DRS, MH-GAN, DDLS) behind one interface.
"""
import os

__version__ = "0.1.0"


def smoke() -> bool:
    """True when ``EBMLIB_SMOKE=1``: chapters and tools shrink their steps, seeds and sample counts.

    CI sets it; readers run the full version by default.
    """
    return os.environ.get("EBMLIB_SMOKE", "0").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, small):
    """``small`` in smoke mode, ``full`` otherwise: ``steps = ebmlib.pick(5000, 200)``."""
    return small if smoke() else full


from . import energy, losses, nets, plot, samplers, toy, train  # noqa: E402
from .energy import calibrate, latent_energy  # noqa: E402
from .samplers import LangevinDivergence, langevin, sample  # noqa: E402
from . import wasserstein  # noqa: E402

__all__ = [
    "smoke", "pick", "energy", "losses", "nets", "plot", "samplers", "toy", "train",
    "calibrate", "latent_energy", "langevin", "sample", "LangevinDivergence", "wasserstein",
]
