"""``train_images``: the checkpointed, resumable training loop for image GANs at GPU scale.

The loop for SN-GAN-sized nets (chapter 08): n_dis D updates per G update (``ebmlib.train``'s shared
steps), Adam, a learning rate that is a pure function of the step, an EMA copy of G, bf16 autocast and
channels_last on CUDA, ``torch.compile`` on request, atomic checkpoints with auto-resume, a JSONL metrics
log and PNG sample grids. On the CPU a run that is stopped and resumed ends bit-for-bit where an
uninterrupted run ends: the checkpoint holds every state the loop reads (nets, optimizers, EMA, step, the
RNGs and the data source's state) and the learning rate and EMA decay are recomputed from the step.
A checkpoint also resumes on another device type, or in another memory layout, though not bit-for-bit.
"""
import contextlib
import copy
import functools
import json
import signal
import threading
import time
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import distributed
from ._checks import positive_float, positive_int
from ._files import write_text
from ._runtime import evaluating, module_device, progress_bar
from .images import save_grid
from .train import check_loss, discriminator_step, fake_batch, generator_step

LR_DECAYS = ("linear", "constant", None)


def learning_rate(step, steps, base, decay="linear"):
    """The learning rate of the update that follows ``step`` completed generator steps (0 <= step < steps).

    'linear': ``base * (1 - step / steps)`` (full rate first, ``base / steps`` last, as SN-GAN and
    torch_mimicry do); 'constant' or None: ``base``. A pure function of the step, so a resumed run needs
    no scheduler state.
    """
    if decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {decay!r}")
    return base * (1.0 - step / steps) if decay == "linear" else base


def ema_decay(step, ema):
    """EMA decay at generator step ``step`` (1-based): ``min(ema, (1 + step) / (10 + step))``.

    The warm-up keeps the average from being dominated by the random initial weights in short runs
    (0.18 at step 1, 0.9 at step 80, ``ema`` = 0.9999 from step ~90,000 on).
    """
    return min(ema, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(G_ema, G, decay):
    """``p_ema <- decay * p_ema + (1 - decay) * p`` for every parameter; buffers (BN statistics) copied."""
    # multi-tensor ops: a few kernel launches for the whole net instead of one per tensor
    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - decay)  # p_ema + (1-d)(p - p_ema)
    buffers_ema, buffers = list(G_ema.buffers()), list(G.buffers())
    if buffers:
        torch._foreach_copy_(buffers_ema, buffers)


class _DeferredInterrupt:
    """Turns Ctrl-C (SIGINT) into a flag that the loop reads between steps.

    A KeyboardInterrupt in the middle of a step would leave D updated for a step that never finished;
    so the loop finishes the step, saves a checkpoint and raises KeyboardInterrupt itself. A second
    Ctrl-C stops at once (no checkpoint). Only the main thread can install the handler; elsewhere
    (and where the current handler is not a Python one) the interrupt behaves as usual. So it does
    under torchrun: ranks that stopped at different steps could not agree on a checkpoint, so a run of
    several ranks resumes from its last periodic one.
    """

    def __init__(self):
        self.requested, self._previous = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and distributed.world_size() == 1:
            previous = signal.getsignal(signal.SIGINT)
            if previous is not None:  # None: installed from C, which could not be put back
                self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("interrupt: finishing this step and saving a checkpoint (Ctrl-C again to stop at once)")

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def pick_memory_format(channels_last, device):
    """The layout of nets and batches: ``torch.channels_last`` (NHWC) when ``channels_last`` is True, or when
    it is None and ``device`` is a GPU (where cuDNN's convolutions are fastest in it); else the standard one."""
    on = torch.device(device).type == "cuda" if channels_last is None else bool(channels_last)
    return torch.channels_last if on else torch.contiguous_format


def _compiled(module, compile):
    """``torch.compile(module)`` (with ``compile``'s keyword arguments when it is a dict), or ``module`` itself.
    The wrapper shares the module's parameters and buffers: the module itself is what checkpoints save."""
    if not compile:
        return module
    return torch.compile(module, **(compile if isinstance(compile, dict) else {}))


def _real_batch(batches, batch_size, device, memory_format):
    """One real batch (batch_size, C, H, W) from a callable ``batches(batch_size)`` or an iterator."""
    x = batches(batch_size) if callable(batches) else next(batches)
    if isinstance(x, (tuple, list)):  # (images, labels) from a labelled source
        x = x[0]
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != batch_size or not x.is_floating_point():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"batches({batch_size}) must return float images of shape ({batch_size}, C, H, W) in "
                         f"[-1, 1], got {got}")
    if x.device != device:
        x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=memory_format)


def _set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


def _loss_name(loss):
    return getattr(loss, "name", type(loss).__name__)


class _Metrics:
    """The JSONL metrics log: one JSON object a line; on resume, lines past the checkpoint are dropped
    (they belong to the part of the crashed run that is done again)."""

    def __init__(self, path, resume_step):
        self.path = path
        if path is None:
            return
        keep = []
        if resume_step is not None and path.exists():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("step", 0) <= resume_step:
                        keep.append(line)
        write_text(path, "".join(line + "\n" for line in keep))

    def write(self, record):
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


CHECKPOINT_KEYS = ("step", "config", "G", "D", "G_ema", "opt_g", "opt_d", "rng", "history", "window")

# config entries that change the trajectory: a resumed run that differs in one of them gets a warning
_TRAJECTORY_KEYS = ("steps", "n_dis", "loss", "lr_g", "lr_d", "betas", "lr_decay", "ema", "batch_size", "seed", "amp")


def train_images(G, D, batches, *, steps, n_dis=5, loss="hinge", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9),
                 lr_decay="linear", ema=0.9999, batch_size=64, out_dir=None, checkpoint_every=1000,
                 sample_every=1000, log_every=100, n_samples=64, seed=0, device=None, amp=True,
                 channels_last=None, compile=False, progress=None, resume=True):
    """Train an image GAN (G, D) in place: ``steps`` generator updates, each after ``n_dis`` D updates.

    G maps (N, G.latent_dim) latents to images (N, C, H, W); D maps images to outputs (N,).
    ``batches(batch_size)`` returns real images (batch_size, C, H, W), float in [-1, 1] (an iterator
    yielding such batches, or (images, labels) pairs, works too). For an exact resume the data source's
    state must be in the checkpoint: give it ``state_dict()``/``load_state_dict()``, or a
    ``generator`` attribute (a ``torch.Generator`` it draws from); a bound method's object counts.

    ``loss``: 'hinge' (default, SN-GAN), 'ns', 'vanilla', 'wgan', 'wgan-gp', 'ebgan', 'ebgan-pt' or a loss
    object; when the loss has ``penalty(D, real, fake, generator=None)`` it is added to every D loss, and
    ``generator_penalty(D, fake)`` (EBGAN-PT) to every G loss. Real and fake go
    through D as one batch (one forward pass, one spectral-norm power iteration); a D with batch
    norm would see them mixed. Adam with ``betas`` at ``learning_rate(step, steps, lr, lr_decay)``.
    ``ema``: decay of an exponential moving average of G's weights (``ema_decay`` warms it up), or None.

    ``device``: default G's device. On CUDA, ``amp`` runs the forward passes under bf16 autocast (losses
    in float32; ignored on the CPU). ``channels_last`` stores nets and batches NHWC: None (default) on CUDA
    only, True or False on any device. ``compile=True`` runs G and D through ``torch.compile`` (a dict:
    its keyword arguments, e.g. ``{"mode": "max-autotune"}``): fewer kernel launches a step on a GPU, at
    the price of compiling on the first steps; the losses agree with eager ones up to float rounding,
    spectral norm's power iteration still updates its buffers, and checkpoints hold the plain modules'
    weights, so they load without compiling (a gradient penalty runs on the eager D).

    With ``out_dir``, writes ``checkpoint.pt`` every ``checkpoint_every`` steps and at the end (atomically),
    ``metrics.jsonl`` (step, d_loss, g_loss, lr_g, lr_d, img_per_s, seconds) every ``log_every`` steps and
    ``samples/step_NNNNNN.png`` (``n_samples`` images from fixed latents, from the EMA copy when there
    is one) every ``sample_every`` steps. With ``resume`` and a checkpoint there, training continues
    from it (a finished run returns at once). Ctrl-C finishes the current step, saves a checkpoint and
    re-raises KeyboardInterrupt. Deterministic for a given ``seed`` on the CPU.

    Resuming checks the settings: another architecture or ``ema`` is an error, other trajectory settings
    (``n_dis``, learning rates, ...) a warning. Another ``channels_last`` works (a memory layout only: weights
    and optimizer state are loaded into the new layout, the checkpoints record it; rounding differs).
    A checkpoint written on another device type (CPU <-> CUDA) works too: the CPU random state is restored,
    generators whose state is of the other device's kind are reseeded from it (deterministically), and one
    warning says that the run continues but will not end bit-for-bit where an uninterrupted run would.

    Returns a dict: lists ``step``, ``d_loss``, ``g_loss`` (means over the last ``log_every`` steps),
    ``lr_g``, ``lr_d``, ``img_per_s`` (real images D saw per second) for the whole run (resumed parts
    included); ``start_step`` (where this call began), ``seconds`` (this call's wall time),
    ``checkpoint`` (its path or None) and ``G_ema`` (the EMA copy of G, in eval mode, or None).
    """
    for value, name in ((steps, "steps"), (n_dis, "n_dis"), (batch_size, "batch_size"), (log_every, "log_every"),
                        (checkpoint_every, "checkpoint_every"), (sample_every, "sample_every"), (n_samples, "n_samples")):
        positive_int(value, name)
    positive_float(lr_g, "lr_g"), positive_float(lr_d, "lr_d")
    learning_rate(0, steps, lr_g, lr_decay)  # checks lr_decay
    if ema is not None and not 0.0 < float(ema) < 1.0:
        raise ValueError(f"ema must be a decay in (0, 1) (0.9999 is usual) or None, got {ema!r}")
    if len(tuple(betas)) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    loss = check_loss(loss, D)

    device = torch.device(device) if device is not None else module_device(G)
    cuda = device.type == "cuda"
    layout = pick_memory_format(channels_last, device)
    G.to(device, memory_format=layout), D.to(device, memory_format=layout)
    g_params = [p for p in G.parameters() if p.requires_grad]
    d_params = [p for p in D.parameters() if p.requires_grad]
    opt_g = torch.optim.Adam(g_params, lr=lr_g, betas=tuple(betas), fused=cuda)
    opt_d = torch.optim.Adam(d_params, lr=lr_d, betas=tuple(betas), fused=cuda)
    G_ema = None
    if ema is not None:
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)

    config = dict(steps=steps, n_dis=n_dis, loss=_loss_name(loss), lr_g=float(lr_g), lr_d=float(lr_d),
                  betas=[float(b) for b in betas], lr_decay=lr_decay, ema=ema, batch_size=batch_size, seed=seed,
                  amp=bool(amp and cuda), channels_last=layout is torch.channels_last, compile=bool(compile),
                  G=type(G).__name__, D=type(D).__name__)
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / "checkpoint.pt" if out is not None else None

    torch.manual_seed(distributed.rank_seed(seed))  # each rank its own latents; rank 0's are a single process's
    gen = torch.Generator(device=device).manual_seed(distributed.rank_seed(seed))
    history = {k: [] for k in ("step", "d_loss", "g_loss", "lr_g", "lr_d", "img_per_s")}
    window = {"d": torch.zeros((), device=device), "g": torch.zeros((), device=device), "n": 0}
    step, resumed = 0, None
    if resume and ckpt_path is not None and distributed.broadcast(ckpt_path.exists()):  # rank 0 decides for all
        step, history, window = _restore(ckpt_path, G, D, G_ema, opt_g, opt_d, gen, batches, config, device)
        resumed = step
    metrics = _Metrics(out / "metrics.jsonl" if out is not None and distributed.is_rank0() else None, resumed)
    # fixed latents for the sample grids, drawn on the CPU so that every device shows the same z
    z_fixed = torch.randn(n_samples, G.latent_dim, generator=torch.Generator().manual_seed(seed + 1)).to(device)

    state = dict(G=G, D=D, G_ema=G_ema, opt_g=opt_g, opt_d=opt_d, gen=gen, batches=batches, config=config,
                 device=device)
    autocast = functools.partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16, enabled=config["amp"])
    start = time.perf_counter()
    tick, tick_step = start, step
    G.train(), D.train()
    bar = progress_bar(total=steps, initial=step, progress=progress if distributed.is_rank0() else False, desc="train")
    # The loop's calls; G and D themselves are what is saved. Under torchrun the updates go through DDP
    # replicas that average gradients over ranks (the nets themselves in one process), compiled on request;
    # fakes and the frozen D of the G step need no replica.
    G_step, D_step = (_compiled(distributed.replicate(m, device), compile) for m in (G, D))
    G_run, D_run = ((G_step, D_step) if distributed.world_size() == 1
                    else (_compiled(G, compile), _compiled(D, compile)))
    with _DeferredInterrupt() as interrupt, bar:
        while step < steps:
            lr_g_now, lr_d_now = (learning_rate(step, steps, lr, lr_decay) for lr in (lr_g, lr_d))
            _set_lr(opt_g, lr_g_now), _set_lr(opt_d, lr_d_now)
            for _ in range(n_dis):
                real = _real_batch(batches, batch_size, device, layout)
                fake = fake_batch(G_run, batch_size, gen, device=device, autocast=autocast)
                d_loss, _, _ = discriminator_step(D_step, real, fake, loss, opt_d, generator=gen, autocast=autocast)
            g_loss = generator_step(G_step, D_run, loss, opt_g, batch_size, generator=gen, device=device,
                                    autocast=autocast)
            step += 1
            distributed.sync_buffers(G, D)
            d_loss, g_loss = distributed.mean(d_loss, g_loss)
            if G_ema is not None:
                update_ema(G_ema, G, ema_decay(step, ema))
            # running sums stay on the device: no host sync until a log line is due
            window["d"] += d_loss.float()
            window["g"] += g_loss.float()
            window["n"] += 1
            bar.update(1)
            if step % log_every == 0 or step == steps:
                now = time.perf_counter()
                record = dict(step=step, d_loss=(window["d"] / window["n"]).item(),
                              g_loss=(window["g"] / window["n"]).item(), lr_g=lr_g_now, lr_d=lr_d_now,
                              img_per_s=(step - tick_step) * n_dis * batch_size * distributed.world_size()
                              / max(now - tick, 1e-9),
                              seconds=now - start)
                for key in history:
                    history[key].append(record[key])
                metrics.write(record)
                bar.set_postfix(d=f"{record['d_loss']:.3f}", g=f"{record['g_loss']:.3f}", lr=f"{lr_g_now:.2e}")
                window = {"d": torch.zeros((), device=device), "g": torch.zeros((), device=device), "n": 0}
                tick, tick_step = now, step
            if out is not None and distributed.is_rank0() and (step % sample_every == 0 or step == steps):
                _save_samples(G_ema if G_ema is not None else G, z_fixed, out / "samples" / f"step_{step:06d}.png")
            saved = False
            if ckpt_path is not None and (step % checkpoint_every == 0 or step == steps or interrupt.requested):
                _checkpoint(ckpt_path, state, step, history, window)
                saved = True
            if interrupt.requested:
                where = f"; checkpoint saved to {ckpt_path}, call again with the same out_dir to resume" if saved else ""
                raise KeyboardInterrupt(f"training stopped at step {step} of {steps}{where}")
    G.eval(), D.eval()
    return {**history, "start_step": resumed or 0, "seconds": time.perf_counter() - start,
            "checkpoint": ckpt_path if ckpt_path is not None and ckpt_path.exists() else None, "G_ema": G_ema}


@torch.no_grad()
def _save_samples(G, z, path):
    with evaluating(G):  # batch-norm running statistics: the samples do not depend on the batch
        save_grid(G(z).float(), path)


def _rng_state(gen, batches, device):
    return {"device": device.type, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "latent": gen.get_state(), "data": ckpt.data_state(batches)}


def _checkpoint(path, state, step, history, window):
    """Everything the loop reads, so that a resumed run continues exactly (see ``_restore``). Under
    torchrun every rank calls it, rank 0 writes it, with every rank's random states in ``rng_ranks``."""
    rng = _rng_state(state["gen"], state["batches"], state["device"])
    every_rank = distributed.gather(rng)
    with distributed.rank0_first():  # the other ranks go on once the file is complete
        if distributed.is_rank0():
            _save_checkpoint(path, state, step, history, window, rng, every_rank)


def _save_checkpoint(path, state, step, history, window, rng, every_rank):
    G_ema = state["G_ema"]
    ckpt.save({
        "format": ckpt.FORMAT, "step": step, "config": state["config"],
        "G": state["G"].state_dict(), "D": state["D"].state_dict(),
        "G_ema": G_ema.state_dict() if G_ema is not None else None,
        "opt_g": state["opt_g"].state_dict(), "opt_d": state["opt_d"].state_dict(),
        "rng": rng,
        "history": history,
        "window": {"d": window["d"].cpu(), "g": window["g"].cpu(), "n": window["n"]},
        **({"rng_ranks": every_rank} if every_rank is not None else {}),
    }, path)


def _restore(path, G, D, G_ema, opt_g, opt_d, gen, batches, config, device):
    """Load a checkpoint into the nets, optimizers, EMA copy and RNGs; returns (step, history, window)."""
    state = ckpt.load(path, required=CHECKPOINT_KEYS)
    saved = state["config"]
    if (G_ema is None) != (state["G_ema"] is None):
        raise ckpt.CheckpointError(
            f"checkpoint {path} was written with ema={saved.get('ema')!r}, this run has ema={config['ema']!r}; "
            "pass the same ema to resume, or use another out_dir")
    nets = [("G", G, saved.get("G")), ("D", D, saved.get("D"))] + ([("G_ema", G_ema, saved.get("G"))] if G_ema else [])
    for what, module, saved_class in nets:  # check all before loading any: a mismatch changes nothing
        ckpt.check_state(module, state[what], what=what, path=path, saved_class=saved_class)
    for what, module, _ in nets:
        module.load_state_dict(state[what])
    ckpt.load_optimizer(opt_g, state["opt_g"], what="G", path=path)
    ckpt.load_optimizer(opt_d, state["opt_d"], what="D", path=path)
    changed = [f"{k} {saved.get(k)!r} -> {config[k]!r}" for k in _TRAJECTORY_KEYS if saved.get(k) != config[k]]
    if changed:
        warnings.warn(f"resuming {path} with other settings ({', '.join(changed)}); the run will not end where "
                      "an uninterrupted one would")
    if saved.get("channels_last", config["channels_last"]) != config["channels_last"]:
        warnings.warn(f"resuming {path} with channels_last {saved['channels_last']} -> {config['channels_last']}: "
                      "weights and optimizer state are loaded into the new memory layout and the checkpoints record "
                      "it; the run differs from an uninterrupted one by float rounding only")
    rng = distributed.rank_rng(state, path, fresh=_rng_state(gen, batches, device))
    ckpt.restore_rngs(rng, gen, batches, device, path)
    window = {"d": state["window"]["d"].to(device), "g": state["window"]["g"].to(device), "n": state["window"]["n"]}
    return state["step"], state["history"], window
