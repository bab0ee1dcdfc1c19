"""Runtime switches read by every module: the smoke switch, progress bars and the default device.

Nothing here imports another module of ``ebmlib``, so any module may import it.
"""
import contextlib
import os

import torch
from tqdm.auto import tqdm

_TRUE = {"1", "true", "yes", "on"}


def smoke() -> bool:
    """True when ``EBMLIB_SMOKE=1``: chapters and tools shrink their steps, seeds and sample counts.

    CI sets it; readers run the full version by default.
    """
    return os.environ.get("EBMLIB_SMOKE", "0").strip().lower() in _TRUE


def pick(full, small):
    """``small`` in smoke mode, ``full`` otherwise: ``steps = ebmlib.pick(5000, 200)``."""
    return small if smoke() else full


def show_progress(progress=None) -> bool:
    """Whether to draw progress bars: ``progress`` when given, else on except in smoke mode (clean CI logs)."""
    return (not smoke()) if progress is None else bool(progress)


def progress_bar(iterable=None, *, progress=None, **options):
    """A ``tqdm.auto`` bar (a widget in JupyterLab, text in a terminal), silent unless ``show_progress``.

    ``options`` go to tqdm (``total``, ``desc``, ``unit``, ...); ``leave`` defaults to False.
    """
    options.setdefault("leave", False)
    return tqdm(iterable, disable=not show_progress(progress), **options)


def default_device(device=None) -> torch.device:
    """``device`` as a ``torch.device`` when given, else CUDA when it is available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def module_device(module) -> torch.device:
    """The device of a module's first parameter; the CPU for a module without parameters."""
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def evaluating(*modules):
    """Eval mode (BatchNorm running stats, no dropout) for ``modules`` inside the block; on leaving it, every
    module and submodule is back in the mode it had (a frozen part in eval mode stays in eval mode)."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield modules[0] if len(modules) == 1 else modules
    finally:
        for m, mode in modes:
            m.training = mode


def generator_on(device, generator):
    """The generator that draws on ``device``: ``generator`` itself when it lives there (or is None), else a
    new generator on ``device`` seeded with one number drawn from ``generator``.

    Drawing on the CPU and copying to a GPU costs a transfer per draw, and a CPU generator cannot drive a
    draw on a GPU at all; a seed still fixes the run on a given device type, and CPU runs stay exactly
    what they were (no number is drawn from ``generator`` then).
    """
    device = torch.device(device)
    if generator is None or _same_device(generator.device, device):
        return generator
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def _same_device(a, b):
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def at_least_fp32(t):
    """``t`` in float32, or as it is when already float32 or float64: where a bfloat16 network output meets
    the numbers that decide something (energies, a Metropolis test, a calibration head)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))
