"""Several processes, one run: training, sampling and scoring on ``torch.distributed`` (``torchrun``).

``torchrun --nproc_per_node N -m ebmlib train ...`` starts N processes (ranks) and describes them in the
environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`setup` joins
them into one process group (NCCL on GPUs, gloo on CPUs) and gives each rank its own GPU. Without
torchrun (no ``WORLD_SIZE``) every function here is the single-process case: nothing is wrapped, gathered
or waited for, and every result is bit for bit what it was before.

Training (``ebmlib.train_images``): the nets are wrapped in DistributedDataParallel (gradients averaged
over ranks); every rank draws one global batch of ``batch_size * world`` images and keeps its own slice
(:class:`RankBatches`), and its own latents from a seed of its own (:func:`rank_seed`). Parameters stay
identical on every rank, and so do the spectral-norm vectors (their power iteration reads only the
weights); other buffers (batch-norm statistics) are copied from rank 0 after each step
(:func:`sync_buffers`), so the EMA copy is the same everywhere. Rank 0 writes every file.

Sampling and scoring (``ebmlib.recipes.ranks``) deal out pieces of work whose content does not depend on
the number of ranks and gather them on rank 0 with :func:`gather`.
"""
import contextlib
import inspect
import io
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ._runtime import default_device
from .images import Batches

_owned_group = False  # whether setup() created the process group (then shutdown() ends it)


# --- who am I --------------------------------------------------------------------------------------


def launched() -> bool:
    """True in a process started by ``torchrun`` (the environment names a world size)."""
    return "WORLD_SIZE" in os.environ


def active() -> bool:
    """True when this process belongs to an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the group, 0 without one."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes in the group, 1 without one."""
    return dist.get_world_size() if active() else 1


def is_rank0() -> bool:
    """True on the rank that writes files and prints (always true in a single process)."""
    return rank() == 0


def setup(device=None) -> torch.device:
    """This rank's device, after joining torchrun's process group (once; later calls only return the device).

    ``device``: 'cuda', 'cpu' or None (CUDA when available). Under torchrun 'cuda' becomes
    ``cuda:LOCAL_RANK`` (one GPU a rank) and the group uses NCCL; on the CPU it uses gloo. Without
    torchrun: ``ebmlib._runtime.default_device(device)``, and no group.
    """
    global _owned_group
    device = default_device(device)
    if not launched():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.index is not None and device.index != local and int(os.environ["WORLD_SIZE"]) > 1:
            raise ValueError(f"--device {device} would put every rank on one GPU; under torchrun pass --device cuda "
                             "(rank r runs on cuda:LOCAL_RANK)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not active():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _owned_group = True
    return device


def shutdown():
    """Leave the process group that :func:`setup` created (a no-op otherwise)."""
    global _owned_group
    if _owned_group and active():
        dist.destroy_process_group()
    _owned_group = False


@contextlib.contextmanager
def command():
    """The frame of one command line run: under torchrun, only rank 0 prints to stdout (one log, not N
    copies; errors still reach stderr from every rank), and the process group is left at the end."""
    quiet = launched() and os.environ.get("RANK", "0") != "0"
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            yield
    finally:
        shutdown()


def barrier():
    if world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def rank0_first():
    """Rank 0 runs the block first (a download, a cache it writes), the other ranks after it (they read
    what it wrote). A no-op in a single process."""
    if not is_rank0():
        barrier()
    try:
        yield
    finally:
        if is_rank0():
            barrier()


# --- training --------------------------------------------------------------------------------------


def rank_seed(seed, rank_=None) -> int:
    """The seed of a rank's own random streams (latents, the global RNG): ``seed`` itself on rank 0 (so a
    single process is unchanged), a number mixed from (seed, rank) on the others."""
    rank_ = rank() if rank_ is None else rank_
    if rank_ == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2 ** 64, rank_]).generate_state(1, np.uint64)[0])


class RankBatches(Batches):
    """One rank's slice of a stream of global batches, for ``world_size`` ranks.

    Every rank holds all the images and draws the same global batch of ``batch_size * world_size``
    (one seed, one permutation an epoch, the same flips): rank r keeps images [r B, (r+1) B). So the ranks
    see different images, and together exactly what one process with a batch of ``B * world_size`` sees;
    the stream's state (``state_dict``) is the same on every rank. ``next()`` returns (batch_size, C, H, W).
    """

    def __init__(self, images, batch_size, *, rank, world_size, labels=None, device=None, seed=0, flip=True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
        super().__init__(images, batch_size * world_size, labels=labels, device=device, seed=seed, flip=flip)
        self.rank_batch, self.rank = batch_size, rank

    def __next__(self):
        batch = super().__next__()
        part = slice(self.rank * self.rank_batch, (self.rank + 1) * self.rank_batch)
        return batch[part] if self.labels is None else (batch[0][part], batch[1][part])


def batches(images, batch_size, **options):
    """``ebmlib.images.Batches`` in a single process; this rank's :class:`RankBatches` in a group.
    ``batch_size`` is per rank; ``options`` (labels, device, seed, flip) go to the class."""
    if world_size() == 1:
        return Batches(images, batch_size, **options)
    return RankBatches(images, batch_size, rank=rank(), world_size=world_size(), **options)


class _Replica(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that still answers for the wrapped net's own attributes (``latent_dim``)."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def replicate(module, device):
    """``module`` wrapped in DistributedDataParallel in a group (gradients averaged over ranks in backward),
    ``module`` itself in a single process.

    Buffers are not broadcast before each forward pass: the spectral-norm vectors are the same on
    every rank already (the power iteration reads only the weights, which DDP keeps identical), and
    :func:`sync_buffers` copies the others once a step instead of once a forward pass.
    """
    if world_size() == 1:
        return module
    no_broadcast = ({"forward_sync_buffers": False}
                    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
                    else {"broadcast_buffers": False})
    device_ids = [device.index] if device.type == "cuda" else None
    return _Replica(module, device_ids=device_ids, **no_broadcast)


def _spectral_norm_buffer(name):
    return ".parametrizations." in f".{name}" and name.rsplit(".", 1)[-1] in ("_u", "_v")


@torch.no_grad()
def sync_buffers(*modules):
    """Copy rank 0's buffers (batch-norm statistics), except the spectral-norm vectors, to every rank.

    Each rank's batch norm tracks statistics of its own batches; copying rank 0's keeps the nets and
    their EMA copy the same on every rank, so that rank 0's checkpoint holds every rank's state.
    """
    if world_size() == 1:
        return
    for module in modules:
        for name, buffer in module.named_buffers():
            if not _spectral_norm_buffer(name):
                dist.broadcast(buffer, src=0)


def mean(*tensors):
    """The mean over ranks of each scalar tensor (one all-reduce); the tensors themselves in a single process."""
    if world_size() == 1:
        return tensors
    stacked = torch.stack([t.detach().float() for t in tensors])
    dist.all_reduce(stacked)
    return tuple(stacked / world_size())


def gather(obj):
    """Every rank's ``obj`` (picklable), as a list on rank 0, None on the others and in a single process."""
    if world_size() == 1:
        return None
    out = [None] * world_size() if is_rank0() else None
    dist.gather_object(obj, out, dst=0)
    return out


def gather_all(obj):
    """Every rank's ``obj`` (picklable), as a list on every rank; ``[obj]`` in a single process."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj):
    """Rank 0's ``obj`` on every rank (``obj`` itself in a single process)."""
    if world_size() == 1:
        return obj
    box = [obj if is_rank0() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_rng(state, path, fresh):
    """This rank's random states from a ``train_images`` checkpoint ``state`` read from ``path``.

    A checkpoint written by N ranks holds ``rng_ranks`` (one state a rank, rank 0's also in ``rng``).
    ``fresh``: this rank's states as seeded now, kept by a rank the checkpoint has no state for (it was
    written by fewer ranks); the data stream, shared by all ranks, is rank 0's. A different number of ranks
    is a warning: the run goes on, but not as an uninterrupted one would.
    """
    saved = state.get("rng_ranks") or [state["rng"]]
    if len(saved) != world_size() and is_rank0():
        warnings.warn(f"checkpoint {path} was written by {len(saved)} process(es), this run has {world_size()}: "
                      "the batch size and the random streams change, so the run will not end where an "
                      "uninterrupted one would")
    if rank() < len(saved):
        return saved[rank()]
    return {**fresh, "data": state["rng"].get("data")}
