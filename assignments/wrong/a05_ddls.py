"""Wrong solutions of assignment 05, one a code exercise; each replaces the function of its name."""


def latent_energy(z, G, d):
    """The prior term dropped: E(z) = -d(G(z)), whose chains climb d away from the latents G was trained on."""
    return -d(G(z))
