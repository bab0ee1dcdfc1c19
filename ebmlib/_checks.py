"""Argument checks shared by the modules: each raises a ValueError that says what to change."""
import torch


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_float(value, name):
    try:
        ok = float(value) > 0 and float(value) != float("inf")
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def last_dim(tensor, size, name):
    """Check that ``tensor`` has shape (N, size)."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, {size}), got {type(tensor).__name__}")
    if tensor.dim() != 2 or tensor.shape[1] != size:
        raise ValueError(f"{name} must have shape (N, {size}), got {tuple(tensor.shape)}")
    return tensor
