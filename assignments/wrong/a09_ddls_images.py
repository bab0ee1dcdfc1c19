"""Wrong solutions of assignment 09, one a code exercise; each replaces the function of its name."""
import torch


def effective_sample_size(logits):
    """The weights left unnormalised: 1 / Σ e^{2d} instead of (Σ e^d)² / Σ e^{2d}."""
    w = torch.exp(logits.double())
    return (1.0 / (w ** 2).sum()).item()
