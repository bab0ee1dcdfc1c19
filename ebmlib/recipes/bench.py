"""Throughput of SN-GAN training and of DDLS: plain eager loops against the optimized paths.

``python -m ebmlib bench --json FILE`` runs every measurement (a *stage*) on random inputs of CIFAR shape
(throughput does not depend on the data) and writes one JSON record a stage: images/s (training: real
images seen by D) or image-steps/s (DDLS: chains x Langevin steps per second), the FLOPs of one step
counted by PyTorch's FLOP counter, and the achieved TFLOP/s.

The modes of each stage:

    eager-fp32          the plain loop in true fp32: TF32 off for matmuls and cuDNN convolutions
    eager-default       the same loop under the session's settings (on CUDA, cuDNN convolutions run in
                        TF32 by default, so this is not an fp32 baseline)
    bf16-channels_last  training as ``ebmlib.train_images`` steps (bf16 autocast, fused passes)
    pipeline            DDLS exactly as ``python -m ebmlib sample`` runs it: the same call
                        (``pipeline.run_sampler``) with the same options (``pipeline.sampler_options``:
                        the paper's step size, bf16 on CUDA, frozen channels-last nets, cuDNN autotuning)
                        through a calibration head on D, only with fewer steps
    pipeline-compiled   the same call with G and the head compiled (CUDA, full runs only)

Speedups are stated against the true fp32 baseline. The targets (H100, SN-GAN standard CNN): DDLS at
least 100,000 image-steps/s and 3x eager fp32; training 100k generator steps with n_dis 5 at batch 64 in
under an hour (at least 100k * 5 * 64 / 3600 = 8,900 real images/s). ``meta`` records the device, the
versions and the precision settings (TF32, cuDNN, determinism) the run started with. A stage that fails
is recorded as ``{"error": ...}`` and the others still run; with ``--json`` the file is rewritten
(atomically) after every stage, and ``"finished"`` says whether the run got to the end.
"""
import contextlib
import json
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .._files import write_text
from .._runtime import default_device
from ..energy import calibration_model
from ..losses import Hinge
from ..nets import SNGANDiscriminator, SNGANGenerator
from ..train import discriminator_step, fake_batch, generator_step
from . import pipeline

TRAIN_TARGET_IMG_PER_S = 100_000 * 5 * 64 / 3600
DDLS_TARGET_IMAGE_STEPS_PER_S = 100_000
DDLS_TARGET_SPEEDUP = 3
BASELINE = "eager-fp32"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _flops(fn):
    """FLOPs of one call of ``fn`` (matrix products and convolutions, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def _timed(fn, iters, warmup, device):
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def _read(getter):
    # torch >= 2.9 refuses to read a legacy TF32 flag once the new per-backend API has set it differently
    try:
        return getter()
    except RuntimeError as e:
        return f"unreadable: {str(e)[:120]}"


def precision_settings():
    """The switches that decide what "fp32" means on this machine: TF32 for matmuls and cuDNN, the matmul
    precision, cuDNN's state and the determinism flags (and torch >= 2.9's per-backend ``fp32_precision``)."""
    cudnn = torch.backends.cudnn
    settings = {
        "cuda_matmul_allow_tf32": _read(lambda: torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": _read(lambda: cudnn.allow_tf32),
        "float32_matmul_precision": _read(torch.get_float32_matmul_precision),
        "cudnn_enabled": cudnn.enabled, "cudnn_benchmark": cudnn.benchmark,
        "cudnn_version": cudnn.version() if cudnn.is_available() else None,
        "cudnn_deterministic": cudnn.deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    for name, node in _precision_nodes().items():
        settings[f"fp32_precision[{name}]"] = node.fp32_precision
    return settings


def _precision_nodes():
    """torch >= 2.9's objects with an ``fp32_precision``, by dotted name under ``torch.backends``."""
    nodes = {}
    for name in ("", "cuda.matmul", "cudnn", "cudnn.conv", "cudnn.rnn", "mkldnn", "mkldnn.matmul", "mkldnn.conv",
                 "mkldnn.rnn"):
        node = torch.backends
        for part in filter(None, name.split(".")):
            node = getattr(node, part, None)
        if node is not None and hasattr(node, "fp32_precision"):
            nodes[name or "all"] = node
    return nodes


@contextlib.contextmanager
def precision_kept():
    """On leaving the block, every precision switch is as it was on entering it: TF32 for matmuls and cuDNN,
    the matmul precision, and the per-backend ``fp32_precision`` of torch >= 2.9."""
    matmul_precision, cudnn_tf32 = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    saved = {name: node.fp32_precision for name, node in _precision_nodes().items()}
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(matmul_precision)
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
        nodes = _precision_nodes()
        for name, value in saved.items():  # parents first ("all" before "cuda.matmul"), as they were saved
            nodes[name].fp32_precision = value


@contextlib.contextmanager
def true_fp32():
    """Inside the block, float32 matmuls and cuDNN convolutions compute in true fp32 (no TF32); on leaving,
    every precision switch is as it was (:func:`precision_kept`)."""
    with precision_kept():
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        yield


def plain_ddls_step(G, D, z, step_size):
    """One DDLS step written plainly (eager, fp32): the baseline the optimized sampler is measured against."""
    z = z.detach().requires_grad_(True)
    energy = 0.5 * (z ** 2).sum(1) - D(G(z))
    (grad,) = torch.autograd.grad(energy.sum(), z)
    return (z - 0.5 * step_size * grad + step_size ** 0.5 * torch.randn_like(z)).detach()


def plain_train_step(G, D, opt_g, opt_d, real, n_dis, loss=Hinge()):
    """One generator step after ``n_dis`` discriminator steps, eager fp32, no tricks."""
    for _ in range(n_dis):
        fake = G(torch.randn(real.shape[0], G.latent_dim, device=real.device)).detach()
        d_loss = loss.discriminator(D(real), D(fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    g_loss = loss.generator(D(G(torch.randn(real.shape[0], G.latent_dim, device=real.device))))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()


def fast_train_step(G, D, opt_g, opt_d, real, n_dis, loss=Hinge()):
    """The optimized step, as ``ebmlib.train_images.train_images`` takes it (``ebmlib.train``'s shared steps):
    bf16 autocast, real and fake in one D pass, D frozen during the G step."""
    def autocast():
        return torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=real.device.type == "cuda")

    for _ in range(n_dis):
        fake = fake_batch(G, real.shape[0], device=real.device, autocast=autocast)
        discriminator_step(D, real, fake, loss, opt_d, autocast=autocast)
    generator_step(G, D, loss, opt_g, real.shape[0], device=real.device, autocast=autocast)


def _nets(device, quick, channels_last=False):
    torch.manual_seed(0)
    ch = 8 if quick else 64
    G, D = SNGANGenerator(ch=ch).to(device), SNGANDiscriminator(ch=ch).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return G, D


def _precision(mode):
    return true_fp32() if mode == BASELINE else contextlib.nullcontext()


def _tf32_now():
    """The TF32 switches in force, recorded with each stage."""
    settings = precision_settings()
    return {k: settings[k] for k in ("cuda_matmul_allow_tf32", "cudnn_allow_tf32", "float32_matmul_precision")}


def bench_train(device, quick, mode, batch_size=None, n_dis=5):
    """One training stage: the numbers of a generator step (after ``n_dis`` D steps) in ``mode``, at
    ``batch_size`` (default 64, the paper's; 16 with ``quick``, which only checks that the stage runs)."""
    iters, warmup = (2, 1) if quick else (50, 10)
    batch_size = batch_size or (16 if quick else 64)
    fast = mode == "bf16-channels_last"
    cuda = device.type == "cuda"
    with _precision(mode):
        G, D = _nets(device, quick, channels_last=fast and cuda)
        opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9), fused=fast and cuda)
        opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9), fused=fast and cuda)
        real = torch.randn(batch_size, 3, 32, 32, device=device).clamp(-1, 1)
        if fast and cuda:
            real = real.contiguous(memory_format=torch.channels_last)
        step = fast_train_step if fast else plain_train_step
        run = lambda: step(G, D, opt_g, opt_d, real, n_dis)  # noqa: E731
        flops = _flops(run)
        seconds = _timed(run, iters, warmup, device)
        tf32 = _tf32_now()
    return {"batch_size": batch_size, "n_dis": n_dis, "tf32": tf32, "seconds_per_g_step": seconds,
            "img_per_s": n_dis * batch_size / seconds, "flops_per_g_step": flops, "tflops": flops / seconds / 1e12,
            "hours_for_100k_steps": 100_000 * seconds / 3600}


def bench_ddls(device, quick, mode, batch, steps):
    """One DDLS stage: ``batch`` chains of ``steps`` Langevin steps in ``mode`` (see the module's docstring)."""
    eps = pipeline.PAPER_DDLS["step_size"]
    pipelined = mode.startswith("pipeline")
    record = {"batch": batch, "steps": steps}
    with _precision(mode):
        G, D = _nets(device, quick)
        G.eval(), D.eval()
        d = calibration_model("head", D).to(device) if pipelined else D  # what `sample` differentiates
        z = torch.randn(batch, G.latent_dim, device=device)
        if pipelined:
            if mode.endswith("compiled"):
                G, d = torch.compile(G), torch.compile(d)
            options = pipeline.sampler_options("ddls", steps=steps)
            record["options"] = options

            def run():
                pipeline.run_sampler("ddls", G, d, batch, seed=0, **options)
        else:
            for p in (*G.parameters(), *D.parameters()):
                p.requires_grad_(False)

            def run():
                v = z
                for _ in range(steps):
                    v = plain_ddls_step(G, D, v, eps)

        def one_step():  # the FLOPs of one step: forward and backward of d(G(z)) with respect to z
            v = z.detach().requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=pipelined and device.type == "cuda"):
                energy = 0.5 * (v ** 2).sum(1) - d(G(v)).float()
            energy.sum().backward(inputs=[v])  # not autograd.grad, which the FLOP counter's module hooks refuse

        flops = _flops(one_step)
        seconds = _timed(run, 1 if quick else 3, 1, device)
        record["tf32"] = _tf32_now()
    rate = batch * steps / seconds
    return {**record, "seconds": seconds, "image_steps_per_s": rate, "flops_per_image_step": flops / batch,
            "tflops": flops * steps / seconds / 1e12, "minutes_for_50k_x_1000": 50_000 * 1000 / rate / 60}


def stages(device, quick, ddls_batch, ddls_steps=None):
    """(what, mode, measure) of every measurement, in the order they run; ``measure()`` returns the numbers."""
    steps = ddls_steps or (3 if quick else 50)
    ddls_modes = ["eager-fp32", "eager-default", "pipeline"]
    if device.type == "cuda" and not quick:
        ddls_modes.append("pipeline-compiled")
    return ([("train", mode, lambda mode=mode: bench_train(device, quick, mode))
             for mode in ("eager-fp32", "eager-default", "bf16-channels_last")] +
            [("ddls", mode, lambda mode=mode: bench_ddls(device, quick, mode, ddls_batch, steps))
             for mode in ddls_modes])


def _meta(device, quick):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu ({platform.processor() or platform.machine()})"
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "quick": quick,
            "net": "SN-GAN standard CNN" + (" (ch=8, quick)" if quick else " (ch=64)"),
            "precision": precision_settings(), "baseline": f"{BASELINE} (true fp32: TF32 off)"}


def summarize(records):
    """The headline numbers: the best DDLS mode and the optimized training step, against true fp32 eager."""
    by = {(r["what"], r["mode"]): r for r in records if "error" not in r}
    summary = {"failed_stages": [f"{r['what']} {r['mode']}" for r in records if "error" in r]}
    fast = [r for r in by.values() if r["what"] == "ddls" and r["mode"].startswith("pipeline")]
    best = max(fast, key=lambda r: r["image_steps_per_s"], default=None)
    if best:
        summary["ddls_best_mode"] = best["mode"]
        summary["ddls_image_steps_per_s"] = rate = best["image_steps_per_s"]
        for baseline, key in ((BASELINE, "ddls_speedup_over_true_fp32"), ("eager-default", "ddls_speedup_over_default_eager")):
            if ("ddls", baseline) in by:
                summary[key] = rate / by[("ddls", baseline)]["image_steps_per_s"]
        if "ddls_speedup_over_true_fp32" in summary:
            summary["ddls_meets_target"] = (rate >= DDLS_TARGET_IMAGE_STEPS_PER_S
                                            and summary["ddls_speedup_over_true_fp32"] >= DDLS_TARGET_SPEEDUP)
    if ("train", "bf16-channels_last") in by:
        fast = by[("train", "bf16-channels_last")]
        summary["train_img_per_s"] = fast["img_per_s"]
        summary["train_hours_for_100k_steps"] = fast["hours_for_100k_steps"]
        summary["train_meets_target"] = fast["img_per_s"] >= TRAIN_TARGET_IMG_PER_S
        if ("train", BASELINE) in by:
            summary["train_speedup_over_true_fp32"] = fast["img_per_s"] / by[("train", BASELINE)]["img_per_s"]
    return summary


def row(r):
    """One line of the printed table."""
    if "error" in r:
        return f"{r['what']:6s} {r['mode']:20s} FAILED: {r['error'][:80]}"
    if r["what"] == "train":
        return f"{r['what']:6s} {r['mode']:20s} {r['img_per_s']:>14,.0f} img/s {r['tflops']:8.2f}"
    return f"{r['what']:6s} {r['mode']:20s} {r['image_steps_per_s']:>8,.0f} img-steps/s {r['tflops']:8.2f}"


def table(records):
    return "\n".join([f"{'what':6s} {'mode':20s} {'throughput':>20s} {'TFLOP/s':>8s}", *map(row, records)])


def run(device=None, quick=False, ddls_batch=5000, ddls_steps=None, json_path=None, on_record=None):
    """Every stage; returns {"meta", "records", "summary", "finished"}. A stage that raises is recorded as
    {"what", "mode", "error"} and the next one runs; with ``json_path`` the result so far is written
    (atomically) after each stage, so a crash keeps what was measured. ``on_record(record)`` is called
    after each stage (the command line prints its row)."""
    device = default_device(device)
    result = {"meta": _meta(device, quick), "records": [], "summary": {}, "finished": False}
    todo = stages(device, quick, ddls_batch, ddls_steps)
    for i, (what, mode, measure) in enumerate(todo):
        try:
            record = {"what": what, "mode": mode, **measure()}
        except Exception as e:  # a failure is a result too: recorded, and the other stages still run
            record = {"what": what, "mode": mode, "error": f"{type(e).__name__}: {e}"[:500]}
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()  # an out-of-memory stage must not starve the next one
        result["records"].append(record)
        result["summary"] = summarize(result["records"])
        result["finished"] = i == len(todo) - 1
        if json_path:
            write_text(json_path, json.dumps(result, indent=2))
        if on_record:
            on_record(record)
    return result


def main(args):
    """``python -m ebmlib bench``: prints a row per stage and the summary; returns the result."""
    device = default_device(args.device)
    meta = _meta(device, args.quick)
    print(f"{meta['device']}, torch {meta['torch']}, {meta['net']}; speedups against {meta['baseline']}")
    print(table([]))
    result = run(device, args.quick, args.ddls_batch, json_path=args.json, on_record=lambda r: print(row(r), flush=True))
    for k, v in result["summary"].items():
        print(f"  {k}: {v:,.2f}" if isinstance(v, float) else f"  {k}: {v}")
    if args.json:
        print(f"wrote {args.json}")
    return result
