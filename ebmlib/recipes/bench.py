"""Throughput of SN-GAN training and of DDLS, each as a plain eager fp32 loop and as the optimized path.

``python -m ebmlib bench --json FILE`` runs both on random inputs of CIFAR shape (throughput does not
depend on the data) and writes one JSON record a measurement: images/s (training: real images seen by D)
or image-steps/s (DDLS: chains x Langevin steps per second), the FLOPs of one step counted by PyTorch's
FLOP counter, and the achieved TFLOP/s. The targets (H100, SN-GAN standard CNN): DDLS at
least 100,000 image-steps/s and 3x the eager fp32 loop; training 100k generator steps with n_dis 5 at
batch 64 in under an hour (that is, at least 100k * 5 * 64 / 3600 = 8,900 real images/s).
"""
import json
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .._files import write_text
from .._runtime import default_device
from ..losses import Hinge
from ..nets import SNGANDiscriminator, SNGANGenerator
from ..samplers import sample_ddls
from ..train import discriminator_step, fake_batch, generator_step

TRAIN_TARGET_IMG_PER_S = 100_000 * 5 * 64 / 3600
DDLS_TARGET_IMAGE_STEPS_PER_S = 100_000


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


def _nets(device, quick, channels_last=False, compile=False):
    torch.manual_seed(0)
    ch = 8 if quick else 64
    G, D = SNGANGenerator(ch=ch).to(device), SNGANDiscriminator(ch=ch).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if compile:
        G, D = torch.compile(G), torch.compile(D)
    return G, D


def bench_train(device, quick, batch_size=64, n_dis=5):
    records = []
    iters, warmup = (2, 1) if quick else (50, 10)
    for mode in ("eager-fp32", "bf16-channels_last"):
        fast = mode != "eager-fp32"
        G, D = _nets(device, quick, channels_last=fast and device.type == "cuda")
        opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9), fused=fast and device.type == "cuda")
        opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9), fused=fast and device.type == "cuda")
        real = torch.randn(batch_size, 3, 32, 32, device=device).clamp(-1, 1)
        if fast and device.type == "cuda":
            real = real.contiguous(memory_format=torch.channels_last)
        step = (fast_train_step if fast else plain_train_step)
        run = lambda: step(G, D, opt_g, opt_d, real, n_dis)  # noqa: E731
        flops = _flops(run)
        seconds = _timed(run, iters, warmup, device)
        img_per_s = n_dis * batch_size / seconds
        records.append({"what": "train", "mode": mode, "batch_size": batch_size, "n_dis": n_dis,
                        "seconds_per_g_step": seconds, "img_per_s": img_per_s, "flops_per_g_step": flops,
                        "tflops": flops / seconds / 1e12, "hours_for_100k_steps": 100_000 * seconds / 3600})
    return records


def bench_ddls(device, quick, batch, steps=None):
    records = []
    steps = steps or (3 if quick else 50)
    eps = 0.01
    for mode in ("eager-fp32", "bf16-channels_last", "bf16-channels_last-compiled"):
        if mode.endswith("compiled") and (quick or device.type != "cuda"):
            continue
        fast = mode != "eager-fp32"
        try:
            G, D = _nets(device, quick, channels_last=fast and device.type == "cuda", compile=mode.endswith("compiled"))
            G.eval(), D.eval()
            for p in (*G.parameters(), *D.parameters()):
                p.requires_grad_(False)
            z = torch.randn(batch, G.latent_dim, device=device)
            if fast:
                def run():
                    sample_ddls(G, D, batch, z0=z, steps=steps, step_size=eps, amp=True, batch_size=batch)
            else:
                def run():
                    v = z
                    for _ in range(steps):
                        v = plain_ddls_step(G, D, v, eps)

            def one_step():  # the FLOPs of one step: forward and backward of d(G(z)) with respect to z
                v = z.detach().requires_grad_(True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast and device.type == "cuda"):
                    energy = 0.5 * (v ** 2).sum(1) - D(G(v)).float()
                energy.sum().backward()

            flops = _flops(one_step)
            seconds = _timed(run, 1 if quick else 3, 1, device)
            rate = batch * steps / seconds
            records.append({"what": "ddls", "mode": mode, "batch": batch, "steps": steps, "seconds": seconds,
                            "image_steps_per_s": rate, "flops_per_image_step": flops / batch,
                            "tflops": flops * steps / seconds / 1e12,
                            "minutes_for_50k_x_1000": 50_000 * 1000 / rate / 60})
        except Exception as e:  # a compile failure is a result too: it is recorded, not hidden
            records.append({"what": "ddls", "mode": mode, "error": f"{type(e).__name__}: {e}"[:500]})
    return records


def table(records):
    lines = [f"{'what':6s} {'mode':30s} {'throughput':>22s} {'TFLOP/s':>8s}"]
    for r in records:
        if "error" in r:
            lines.append(f"{r['what']:6s} {r['mode']:30s} failed: {r['error'][:60]}")
        elif r["what"] == "train":
            lines.append(f"{r['what']:6s} {r['mode']:30s} {r['img_per_s']:>14,.0f} img/s {r['tflops']:8.2f}")
        else:
            lines.append(f"{r['what']:6s} {r['mode']:30s} {r['image_steps_per_s']:>11,.0f} img-steps/s {r['tflops']:8.2f}")
    return "\n".join(lines)


def run(device=None, quick=False, ddls_batch=5000):
    """Both benchmarks; returns {"meta": ..., "records": [...], "summary": ...}."""
    device = default_device(device)
    records = bench_train(device, quick) + bench_ddls(device, quick, ddls_batch)
    meta = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
            "torch": torch.__version__, "quick": quick, "net": "SN-GAN standard CNN" + (" (ch=8, quick)" if quick else " (ch=64)")}
    ok = [r for r in records if "error" not in r]
    by = {(r["what"], r["mode"]): r for r in ok}
    ddls_best = max((r for r in ok if r["what"] == "ddls"), key=lambda r: r["image_steps_per_s"], default=None)
    summary = {}
    if ddls_best and ("ddls", "eager-fp32") in by:
        summary["ddls_best_mode"] = ddls_best["mode"]
        summary["ddls_image_steps_per_s"] = ddls_best["image_steps_per_s"]
        summary["ddls_speedup_over_eager"] = ddls_best["image_steps_per_s"] / by[("ddls", "eager-fp32")]["image_steps_per_s"]
        summary["ddls_meets_target"] = (ddls_best["image_steps_per_s"] >= DDLS_TARGET_IMAGE_STEPS_PER_S
                                        and summary["ddls_speedup_over_eager"] >= 3)
    if ("train", "bf16-channels_last") in by:
        fast = by[("train", "bf16-channels_last")]
        summary["train_img_per_s"] = fast["img_per_s"]
        summary["train_hours_for_100k_steps"] = fast["hours_for_100k_steps"]
        summary["train_meets_target"] = fast["img_per_s"] >= TRAIN_TARGET_IMG_PER_S
    return {"meta": meta, "records": records, "summary": summary}


def main(args):
    result = run(args.device, args.quick, args.ddls_batch)
    print(f"{result['meta']['device']}, torch {result['meta']['torch']}, {result['meta']['net']}")
    print(table(result["records"]))
    for k, v in result["summary"].items():
        print(f"  {k}: {v:,.2f}" if isinstance(v, float) else f"  {k}: {v}")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return result
