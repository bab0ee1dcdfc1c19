"""Checkpoint files: written atomically, read back with checks that name the file and the mismatch.

A checkpoint is a dict saved with ``torch.save``; ``save`` writes it to a temporary file in the same
folder and renames it over the target (``os.replace`` is atomic on POSIX and Windows), so a crash or a
full disk never leaves a half-written checkpoint where a good one was. ``load`` reads it with
``weights_only=True`` (tensors, numbers, strings, lists, dicts: no code runs on load) and turns a
truncated or foreign file into a ``CheckpointError`` that names it. ``load_state`` loads a module's
weights only after checking that every name and shape matches.

``ebmlib.train_images.train_images`` writes checkpoints with the keys {format, step, config, G, D, G_ema,
opt_g, opt_d, rng, history, window}; ``load_generator`` reads the generator back out of one.
"""
from pathlib import Path

import torch

from ._files import torch_save

FORMAT = "ebmlib-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not match the networks it is loaded into."""


def save(state: dict, path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    On any failure (including KeyboardInterrupt) the temporary file is removed and an existing file
    at ``path`` is left as it was. Returns the path.
    """
    return torch_save(state, path)


def load(path, required=(), map_location="cpu", format=FORMAT) -> dict:
    """Read a checkpoint written by ``save``; check its ``format`` and that it has the ``required`` keys.

    Raises FileNotFoundError when there is no file, and CheckpointError (naming the file) when it is
    truncated, of another format (another kind of file, or an older ebmlib), or lacks a required key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {err}); the file is truncated or not an "
            f"ebmlib checkpoint. Move it away (or use another out_dir) to start afresh.") from err
    if not isinstance(state, dict) or state.get("format") != format:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not the file expected here: its format is {found!r}, expected {format!r}. "
                              "Write it again with this version of ebmlib, or point to the right file.")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it was not written by this version of ebmlib")
    return state


def _names(keys, most=4):
    keys = list(keys)
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def mismatch(module: torch.nn.Module, state_dict: dict) -> list:
    """What differs between ``module``'s state and ``state_dict``: a list of short descriptions
    (missing keys, unexpected keys, shape differences); empty when they match."""
    own = module.state_dict()
    problems = []
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing:
        problems.append(f"missing {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {_names(unexpected)}")
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)}, network {tuple(v.shape)}"
              for k, v in own.items()
              if k in state_dict and isinstance(v, torch.Tensor) and tuple(state_dict[k].shape) != tuple(v.shape)]
    if shapes:
        problems.append("shapes differ for " + "; ".join(shapes[:4]) + (
            f" and {len(shapes) - 4} more" if len(shapes) > 4 else ""))
    return problems


def check_state(module: torch.nn.Module, state_dict: dict, *, what: str, path, saved_class=None):
    """Raise a CheckpointError unless ``state_dict`` fits ``module`` (same names, same shapes).

    ``what`` ('G', 'D', ...) and ``path`` go into the error; ``saved_class`` is the class name the
    checkpoint recorded for this network, shown when it differs from ``module``'s.
    """
    problems = mismatch(module, state_dict)
    if problems:
        cls = type(module).__name__
        origin = f" (saved from {saved_class}, loading into {cls})" if saved_class and saved_class != cls else f" ({cls})"
        raise CheckpointError(
            f"checkpoint {path} does not match {what}{origin}: " + "; ".join(problems) +
            ". Build the same network (class and sizes) as the run that wrote it (a run folder's run.json names them), "
            "or start afresh in another folder.")


def load_state(module: torch.nn.Module, state_dict: dict, *, what: str, path, saved_class=None):
    """``check_state``, then load ``state_dict`` into ``module``."""
    check_state(module, state_dict, what=what, path=path, saved_class=saved_class)
    module.load_state_dict(state_dict)


# how an optimizer runs, not where it stands: a resumed optimizer keeps its own
_IMPLEMENTATION = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer(optimizer, state_dict, *, what, path):
    """``optimizer.load_state_dict`` with an error that names the checkpoint, for an optimizer on any device
    and in any memory layout.

    The optimizer keeps its own implementation flags (``fused``, ``foreach``, ``capturable``): a CUDA run's
    fused Adam resumes on the CPU, and a CPU run's plain Adam resumes fused on a GPU. Each state tensor is
    then placed as the optimizer itself would create it: moments laid out like their parameter (channels_last
    or not), the step count on the parameter's device when fused or capturable, else on the CPU.
    """
    own = [{k: group[k] for k in _IMPLEMENTATION if k in group} for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(state_dict)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path}: the {what} optimizer state does not fit ({err})") from err
    for group, flags in zip(optimizer.param_groups, own):
        group.update(flags)
        on_device = group.get("fused") or group.get("capturable")
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state:
                optimizer.state[p] = {k: _placed(v, p, k == "step", on_device) for k, v in state.items()}


def _placed(value, param, is_step, on_device):
    if not isinstance(value, torch.Tensor):
        return value
    if is_step:
        return value.to(device=param.device, dtype=torch.float32) if on_device else value.to("cpu")
    if value.shape == param.shape and value.stride() != param.stride():
        return torch.empty_like(param, dtype=value.dtype).copy_(value)  # empty_like keeps param's strides
    return value


def set_generator_state(generator: torch.Generator, state) -> bool:
    """Restore ``generator`` from a saved ``get_state()``; False, leaving it as it was, when ``state`` is not
    one of its kind (a CPU generator's state is 5,056 bytes, a CUDA generator's 16: a checkpoint written on
    another device type), so that the caller can reseed it instead."""
    if not isinstance(state, torch.Tensor) or state.numel() != generator.get_state().numel():
        return False
    generator.set_state(state)
    return True


def load_generator(path, G: torch.nn.Module, ema=True, map_location="cpu") -> torch.nn.Module:
    """Load the generator weights of a ``train_images`` checkpoint into ``G`` (the EMA copy when
    ``ema`` and the run kept one); returns ``G`` in eval mode."""
    state = load(path, required=("G",), map_location=map_location)
    key = "G_ema" if ema and state.get("G_ema") is not None else "G"
    load_state(G, state[key], what=key, path=path, saved_class=state.get("config", {}).get("G"))
    return G.eval()


def load_discriminator(path, D: torch.nn.Module, map_location="cpu") -> torch.nn.Module:
    """Load the discriminator weights of a ``train_images`` checkpoint into ``D``; returns ``D`` in eval mode."""
    state = load(path, required=("D",), map_location=map_location)
    load_state(D, state["D"], what="D", path=path, saved_class=state.get("config", {}).get("D"))
    return D.eval()
