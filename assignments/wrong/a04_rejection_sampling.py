"""Wrong solutions of assignment 04, one a code exercise; each replaces the function of its name."""
import torch


def acceptance_rate(logits, log_m):
    """The bound M forgotten: accepts with probability min(1, e^d)."""
    return torch.exp(logits).clamp(max=1.0).mean()


def drs_log_acceptance(logit, log_m, gamma=0.0, epsilon=1e-6):
    """The term -log(1 - e^{a - ε}) dropped: σ(a - γ) is not e^a even for γ = 0."""
    a = (logit - log_m).double()
    return torch.nn.functional.logsigmoid(a - gamma)
