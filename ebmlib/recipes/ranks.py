"""Sampling and scoring shared among the ranks of ``torchrun`` (``ebmlib.distributed``), with the results of
one process: the pipeline's ``sample`` and ``evaluate`` call these.

The work is dealt out in pieces whose content does not depend on the number of ranks (chunks of chains,
batches of images), and the pieces are gathered on rank 0, which writes the file. In a single process
every function here is the library's own call (``ebmlib.samplers.sample``, the extractor itself).
"""
import inspect
import time

import torch
from torch import nn

from .. import distributed, samplers
from .._checks import positive_int
from .._runtime import evaluating, module_device
from ..distributed import gather, is_rank0, rank, world_size
from ..images import uint8_batches
from ..mcmc import langevin

# --- sampling --------------------------------------------------------------------------------------

# the samplers whose chains are independent given their starts and their chunk's random stream
SPLIT_SAMPLERS = ("generator", "ddls")
_LANGEVIN_DRAWS = ("steps", "step_size", "noise_scale", "mala", "decay", "decay_every")


def _defaults(function):
    return {k: p.default for k, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _null_energy(z):
    return (z * 0).sum(1)  # zero, with a (zero) gradient: a chain that only draws its noise


def _owned(n_chunks):
    """The chunks this rank works on: every world_size-th, starting at its rank."""
    return range(rank(), n_chunks, world_size())


def _raise_any(error):
    """Re-raise the first rank's error on every rank (so no rank waits forever for another)."""
    errors = distributed.gather_all(None if error is None else (type(error).__name__, str(error)))
    if error is not None:
        raise error
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if failed:
        r, (kind, message) = failed[0]
        raise ValueError(f"rank {r} failed ({kind}): {message}")


def _chunks(method, G, d, n, generator, options):
    """Run this rank's chunks; returns ({chunk: (x, z, info)} on the CPU, error or None)."""
    settings = {**_defaults(samplers.SAMPLERS[method]), **options}
    z0 = options.get("z0")
    if z0 is None:  # every rank draws every start, so chain i starts at the same z for any number of ranks
        z = torch.randn(n, G.latent_dim, generator=generator).to(module_device(G))
    elif len(z0) != n:
        raise ValueError(f"z0 holds {len(z0)} starting points but n={n} samples were asked for; pass n=len(z0)")
    else:
        z = z0.to(module_device(G))
    pieces, owned = {}, set(_owned(-(-len(z) // settings["batch_size"])))
    run_options = {k: v for k, v in options.items() if k != "z0"}
    try:
        for c, chunk in enumerate(z.split(settings["batch_size"])):
            if method == "generator":
                if c in owned:
                    with torch.no_grad():
                        pieces[c] = (G(chunk).cpu(), chunk.cpu(), {})
            elif c in owned:
                out = samplers.sample_ddls(G, d, len(chunk), generator=generator, z0=chunk, **run_options)
                pieces[c] = (out.x.cpu(), out.z.cpu(), out.info)
            else:  # another rank's chunk: draw its noise anyway, so the stream reaches the next chunk as in one process
                langevin(_null_energy, chunk, generator=generator, **{k: settings[k] for k in _LANGEVIN_DRAWS})
    except Exception as error:  # every rank must reach the gather, or the others would wait forever
        return pieces, error
    return pieces, None


def _combine(pieces):
    """Rank 0: the chunks in order -> (x, z, info), info combined as ``samplers.sample_ddls`` combines it."""
    order = sorted(pieces)
    x = torch.cat([pieces[c][0] for c in order])
    z = torch.cat([pieces[c][1] for c in order])
    info = samplers.combine_chain_infos([pieces[c][2] for c in order], [len(pieces[c][1]) for c in order])
    return x, z, info


def sample(method, G, d, n, *, seed=0, **options):
    """``ebmlib.samplers.sample`` over the ranks of a group: same arguments, same samples as one process.

    'generator' and 'ddls': the chains are cut into chunks of ``batch_size`` (the samplers' default
    unless given) as one process cuts them, and chunk c runs on rank c mod world_size. Every rank draws
    all starting latents from ``seed`` and lets the chunks it does not run draw their noise (no
    gradients: cheap), so each chunk meets the random stream it meets in one process. Pass a
    ``batch_size`` of about n / world_size to keep every rank busy (a single process with that batch
    size gives the same samples). 'drs' and 'mh' couple all chains through one random stream: they run
    whole on rank 0. Returns the :class:`ebmlib.samplers.Samples` on rank 0 and None on the others.
    """
    if world_size() == 1:
        return samplers.sample(method, G, d, n, seed=seed, **options)
    if method not in SPLIT_SAMPLERS:
        return samplers.sample(method, G, d, n, seed=seed, **options) if is_rank0() else None
    positive_int(n, "n (the number of samples)")
    if d is None and method != "generator":
        raise ValueError(f"the sampler {method!r} needs the discriminator's logit d; only 'generator' runs without it")
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with evaluating(*[m for m in (G, d) if m is not None]):
        pieces, error = _chunks(method, G, d, n, generator, options)
    _raise_any(error)
    gathered = gather(pieces)
    if not is_rank0():
        return None
    x, z, info = _combine({c: p for part in gathered for c, p in part.items()})
    device = module_device(G)
    return samplers.Samples(x.to(device), z.to(device), time.perf_counter() - start, info)


# --- scoring ---------------------------------------------------------------------------------------


class Precomputed(nn.Module):
    """An extractor whose outputs were computed elsewhere: hands out the stored (features, logits) of
    each batch, in order, to ``ebmlib.metrics`` (which then scores exactly as with ``extractor``)."""

    def __init__(self, extractor, outputs, device):
        super().__init__()
        self.name, self.score_names = extractor.name, extractor.score_names
        for attr in ("channels", "n_classes"):  # a channel-by-channel classifier adds the mode scores
            if hasattr(extractor, attr):
                setattr(self, attr, getattr(extractor, attr))
        self.outputs, self.device, self.next = outputs, device, 0

    def forward(self, x):
        if self.next >= len(self.outputs) or len(self.outputs[self.next][0]) != len(x):
            raise ValueError("the precomputed features do not match these images: score the images they came from, "
                             "in the same batches")
        features, logits = self.outputs[self.next]
        self.next += 1
        return features.to(self.device), logits.to(self.device)


def precomputed(extractor, images, batch_size=250):
    """``extractor`` itself in a single process. In a group: every rank runs ``extractor`` on every
    world_size-th batch of ``batch_size`` images (uint8 (N, C, H, W), or float in [-1, 1]), the outputs are
    gathered, and rank 0 gets a :class:`Precomputed` extractor to pass to ``ebmlib.metrics`` with the
    same images and batch size (other ranks get None). The batches are those of a single process."""
    if world_size() == 1:
        return extractor
    if not isinstance(images, torch.Tensor):
        raise ValueError("under torchrun the images to score must be one tensor (N, C, H, W), not batches")
    mine = {}
    with torch.no_grad(), evaluating(extractor):
        for b, x in enumerate(uint8_batches(images, batch_size)):
            if b % world_size() == rank():
                features, logits = extractor(x)
                mine[b] = (features.cpu(), logits.cpu())
    gathered = gather(mine)
    if not is_rank0():
        return None
    outputs = {b: out for part in gathered for b, out in part.items()}
    return Precomputed(extractor, [outputs[b] for b in sorted(outputs)], module_device(extractor))
