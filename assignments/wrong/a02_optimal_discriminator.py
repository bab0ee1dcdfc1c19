"""Wrong solutions of assignment 02, one a code exercise; each replaces the function of its name."""
import torch
import torch.nn.functional as F


def logistic_loss(real_logits, fake_logits):
    """Real and fake swapped: the loss of a discriminator that calls generated samples real."""
    return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()


def hinge_minimiser(p_data, p_g):
    """The logistic loss's minimiser, log p_data / p_g, taken for the hinge loss's."""
    return torch.log(p_data / p_g)
