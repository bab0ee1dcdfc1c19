"""Checkpoint files: written atomically, read back with checks that name the file and the mismatch.

A checkpoint is a dict saved with ``torch.save``; ``save`` writes it to a temporary file in the same
folder and renames it over the target (``os.replace`` is atomic on POSIX and Windows), so a crash or a
full disk never leaves a half-written checkpoint where a good one was. ``load`` reads it with
``weights_only=True`` (tensors, numbers, strings, lists, dicts: no code runs on load) and turns a
truncated or foreign file into a ``CheckpointError`` that names it. ``load_state`` loads a module's
weights only after checking that every name and shape matches.

``ebmlib.train_images.train_images`` writes checkpoints with the keys {format, step, config, G, D, G_ema,
opt_g, opt_d, rng, history, window}; ``load_generator`` reads the generator back out of one. Its random
states (``data_state``, ``set_data_state``, ``restore_rngs``) come back on the device they were written
on exactly, and on another device type as far as they can (the rest reseeded from the checkpoint).
"""
import warnings
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


# --- random states of a training run: the data source and the generators -------------------------------


def _data_owner(batches):
    """The object that holds the data source's state: ``batches`` itself, or the object of a bound method."""
    for obj in (batches, getattr(batches, "__self__", None)):
        if obj is not None and (hasattr(obj, "state_dict") or isinstance(getattr(obj, "generator", None), torch.Generator)):
            return obj
    return None


def data_state(batches):
    """The data source's state: its ``state_dict()`` when it has one, else its ``generator``'s state."""
    owner = _data_owner(batches)
    if owner is None:
        return None
    if hasattr(owner, "state_dict") and hasattr(owner, "load_state_dict"):
        return {"state_dict": owner.state_dict()}
    return {"generator": owner.generator.get_state()}


def set_data_state(batches, state, path, reseed):
    """Restore the data source's state; False when its generator's saved state was of another device type
    and the generator was seeded with ``reseed()`` instead (the rest of the state is restored)."""
    owner = _data_owner(batches)
    if state is None or owner is None:
        if (state is None) != (owner is None):
            warnings.warn(f"checkpoint {path}: the data source's state was {'not ' if state is None else ''}saved "
                          "but this data source has " + ("one" if state is None else "none") +
                          "; the resumed run draws other batches than an uninterrupted one would")
        return True
    state, fits = _portable_data_state(state, getattr(owner, "generator", None), reseed)
    if "state_dict" in state and hasattr(owner, "load_state_dict"):
        owner.load_state_dict(state["state_dict"])
    elif "generator" in state and isinstance(getattr(owner, "generator", None), torch.Generator):
        owner.generator.set_state(state["generator"])
    else:
        warnings.warn(f"checkpoint {path}: cannot restore the data source's state ({sorted(state)})")
    return fits


def _portable_data_state(state, generator, reseed):
    """``(state, fits)``: ``state`` with its generator state replaced by a freshly seeded one of ``generator``'s
    kind when the saved one is of another device type (``fits`` False), else ``state`` as it is."""
    nested = isinstance(state.get("state_dict"), dict)
    inner = state["state_dict"] if nested else state
    saved = inner.get("generator")
    if not isinstance(generator, torch.Generator) or not isinstance(saved, torch.Tensor):
        return state, True
    if saved.numel() == generator.get_state().numel():
        return state, True
    fresh = torch.Generator(device=generator.device).manual_seed(reseed()).get_state()
    inner = {**inner, "generator": fresh}
    return ({**state, "state_dict": inner} if nested else inner), False


def restore_rngs(rng, gen, batches, device, path):
    """Put back every random state of a checkpoint that fits this device; reseed the others.

    The CPU state is the same on every machine. A generator whose saved state is of another device type
    (a checkpoint written on the CPU resumed on CUDA, or the reverse) is seeded from numbers drawn from the
    saved CPU state, so that resuming the same checkpoint twice gives the same run; one warning says so.
    """
    torch.set_rng_state(rng["torch"])
    seeds = torch.Generator()
    seeds.set_state(rng["torch"])

    def reseed():
        return int(torch.randint(2 ** 62, (1,), generator=seeds))

    lost = []
    if device.type == "cuda" and rng.get("cuda") is not None:
        if len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        else:
            lost.append(f"the CUDA generators ({len(rng['cuda'])} saved, {torch.cuda.device_count()} here)")
    if not set_generator_state(gen, rng["latent"]):
        gen.manual_seed(reseed())
        lost.append("the latent generator")
    if not set_data_state(batches, rng.get("data"), path, reseed):
        lost.append("the data source's generator")
    written_on = rng.get("device", "another device" if lost else device.type)
    if lost or written_on != device.type:
        reseeded = f" ({', '.join(lost)} reseeded from the checkpoint)" if lost else ""
        warnings.warn(f"resuming {path}, written on {written_on}, on {device.type}: the run continues but will not "
                      f"end bit-for-bit where an uninterrupted run would{reseeded}")
