"""Wrong solutions of assignment 01, one a code exercise; each replaces the function of its name."""
import math  # noqa: F401 (the notebook imports it; the wrong versions below may not need it)


def ula_step(z, grad, step_size, noise):
    """The noise is not scaled by sqrt(ε)."""
    return z - 0.5 * step_size * grad + noise


def mala_log_acceptance(z, proposal, energy_z, energy_proposal, grad_z, grad_proposal, step_size):
    """The proposal densities enter the ratio with the wrong sign (forward minus reverse)."""
    def log_q(a, b, grad_b):
        return -((a - b + 0.5 * step_size * grad_b) ** 2).sum(dim=1) / (2 * step_size)

    return energy_z - energy_proposal + log_q(proposal, z, grad_z) - log_q(z, proposal, grad_proposal)
