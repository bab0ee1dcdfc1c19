"""Command line: ``python -m ebmlib COMMAND``.

    toy-table   Table 1 of the DDLS paper on the 25-Gaussian grid, with WGAN-critic DDLS rows
    train       train an SN-GAN on CIFAR-10 into a run folder (resumes from its checkpoint)
    calibrate   calibrate the run's discriminator against its frozen generator
    sample      draw samples from a calibrated run (generator, DRS, MH-GAN or DDLS)
    evaluate    score sample files against CIFAR-10 (Fréchet distance and Inception-style score)
    bench       GPU throughput of SN-GAN training and DDLS, eager fp32 against the optimized path
"""
import argparse
import json
import os
import platform
import sys
import time

import torch


def _toy_table(args):
    from .toy_table import format_table, table1

    start = time.perf_counter()
    workers = min(args.workers or os.cpu_count() or 1, args.seeds * (1 if args.no_wgan else 2))
    records = table1(seeds=args.seeds, n_samples=args.samples, wgan=not args.no_wgan, workers=workers,
                     progress=args.progress)
    total = time.perf_counter() - start
    print(f"Table 1 on the 25-Gaussian grid: {args.samples} samples per method, mean ± std over {args.seeds} seeds")
    print(format_table(records))
    print(f"total {total:.1f} s")
    if args.json:
        meta = {"seeds": args.seeds, "n_samples": args.samples, "total_seconds": total,
                "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                "torch": torch.__version__, "workers": workers, "cpus": os.cpu_count(),
                "threads": 1 if workers > 1 else torch.get_num_threads(), "device": "cpu"}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "records": records}, f, indent=2)
        print(f"wrote {args.json}")


def _data_args(p):
    p.add_argument("--data", help="the folder holding cifar-10-python.tar.gz (default $EBMLIB_DATA or ./data)")
    p.add_argument("--tiny", action="store_true", help="use the small fake CIFAR-format data set (tests, smoke runs)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")


def _train(args):
    from .pipeline import train

    options = {k: v for k, v in dict(steps=args.steps, n_dis=args.n_dis, batch_size=args.batch_size, loss=args.loss,
                                     lr_g=args.lr, lr_d=args.lr, checkpoint_every=args.checkpoint_every,
                                     sample_every=args.sample_every, log_every=args.log_every, seed=args.seed).items()
               if v is not None}
    history = train(args.run, arch=args.arch, data=args.data, tiny=args.tiny, device=args.device, ch=args.ch,
                    progress=not args.quiet, **options)
    last = f"d_loss {history['d_loss'][-1]:.3f}, g_loss {history['g_loss'][-1]:.3f}" if history["step"] else ""
    print(f"trained to step {history['step'][-1] if history['step'] else 0} in {history['seconds']:.1f} s; {last}; "
          f"checkpoint {history['checkpoint']}")


def _calibrate(args):
    from .pipeline import calibrate

    options = {k: v for k, v in dict(method=args.method, steps=args.steps, lr=args.lr).items() if v is not None}
    calibrate(args.run, data=args.data, tiny=args.tiny or None, device=args.device, progress=not args.quiet, **options)
    print(f"wrote {args.run}/calibrated.pt")


def _sample(args):
    from .pipeline import sample

    options = {}
    if args.sampler == "ddls":
        options = {k: v for k, v in dict(steps=args.steps, step_size=args.step_size, mala=args.mala or None).items()
                   if v is not None}
    out = sample(args.run, sampler=args.sampler, n=args.n, seed=args.seed, device=args.device, name=args.name,
                 **options)
    rate = f", {args.n * options.get('steps', 1000) / out.seconds:,.0f} image-steps/s" if args.sampler == "ddls" else ""
    print(f"{args.n} samples with {args.sampler} in {out.seconds:.1f} s{rate}; wrote "
          f"{args.run}/samples_{args.name or args.sampler}.pt")


def _evaluate(args):
    from .metrics import describe, reference_stats
    from .pipeline import evaluate, extractor, load_images, load_samples

    ext = extractor(args.features, data=args.data, tiny=args.tiny, device=args.device,
                    inception_weights=args.inception_weights, steps=args.classifier_steps)
    reference = reference_stats(load_images(args.data, tiny=args.tiny)[0], ext)  # once for every sample file
    results = {}
    for path in args.samples:
        samples = load_samples(path)
        scores = evaluate(samples["images"], extractor_module=ext, reference=reference)
        results[path] = {**scores, "sampler": samples["sampler"]}
        print(f"{path} ({samples['sampler']}): {describe(scores)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")


def _bench(args):
    from .bench import main as bench_main

    bench_main(args)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ebmlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("toy-table", help="the DDLS paper's Table 1 on the 25-Gaussian grid")
    p.add_argument("--seeds", type=int, default=5, help="number of trained pairs (default 5)")
    p.add_argument("--samples", type=int, default=10_000, help="samples per method and seed (default 10000)")
    p.add_argument("--json", help="also write the records to this JSON file")
    p.add_argument("--no-wgan", action="store_true", help="only the paper's rows (no WGAN-critic rows)")
    p.add_argument("--workers", type=int, help="processes, one thread each (default: one per CPU core)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(run_fn=_toy_table, positive=("seeds", "samples", "workers"))

    p = sub.add_parser("train", help="train an SN-GAN on CIFAR-10 (SN-GAN's settings by default)")
    p.add_argument("--run", required=True, help="the run folder (checkpoint, metrics.jsonl, samples/)")
    p.add_argument("--arch", choices=("cnn", "resnet"), default="cnn")
    p.add_argument("--ch", type=int, help="base channel width (default: the paper's)")
    p.add_argument("--steps", type=int, help="generator steps (default 100000)")
    p.add_argument("--n-dis", type=int, help="D steps per G step (default 5)")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument("--loss", choices=("hinge", "ns", "wgan-gp"), help="default hinge")
    p.add_argument("--lr", type=float, help="Adam learning rate of G and D (default 2e-4, linear decay)")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _data_args(p)
    p.set_defaults(run_fn=_train, positive=("steps", "n_dis", "batch_size", "checkpoint_every", "sample_every",
                                            "log_every"))

    p = sub.add_parser("calibrate", help="fit d(x) ~ log p_data/p_g against the run's frozen generator")
    p.add_argument("--run", required=True)
    p.add_argument("--method", choices=("head", "finetune"), help="default head (a logistic head on D)")
    p.add_argument("--steps", type=int, help="default 2000")
    p.add_argument("--lr", type=float)
    p.add_argument("--quiet", action="store_true")
    _data_args(p)
    p.set_defaults(run_fn=_calibrate, positive=("steps",))

    p = sub.add_parser("sample", help="sample a calibrated run")
    p.add_argument("--run", required=True)
    p.add_argument("--sampler", choices=("generator", "drs", "mh", "ddls"), default="ddls")
    p.add_argument("--n", type=int, default=50_000, help="number of samples (default 50000)")
    p.add_argument("--steps", type=int, help="DDLS steps (default 1000)")
    p.add_argument("--step-size", type=float, help="DDLS step size eps (default 0.01)")
    p.add_argument("--mala", action="store_true", help="DDLS with the Metropolis correction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="the file is samples_NAME.pt (default: the sampler's name)")
    p.add_argument("--device")
    p.set_defaults(run_fn=_sample, positive=("n", "steps"))

    p = sub.add_parser("evaluate", help="score sample files against CIFAR-10's training split")
    p.add_argument("samples", nargs="+", help="samples_*.pt files written by `sample`")
    p.add_argument("--features", choices=("classifier", "inception"), default="classifier",
                   help="classifier: Fréchet classifier distance (not FID); inception: FID and IS (local weights)")
    p.add_argument("--inception-weights", help="path of the FID Inception-v3 weights (or $EBMLIB_INCEPTION_WEIGHTS)")
    p.add_argument("--classifier-steps", type=int,
                   help="training steps of the feature classifier (default 5000; 300 on --tiny); cached by steps")
    p.add_argument("--json", help="also write the scores to this JSON file")
    _data_args(p)
    p.set_defaults(run_fn=_evaluate, positive=("classifier_steps",))

    p = sub.add_parser("bench", help="GPU throughput: SN-GAN training and DDLS, eager fp32 vs optimized")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--ddls-batch", type=int, default=5000, help="chains in one DDLS batch (default 5000)")
    p.add_argument("--quick", action="store_true", help="a few iterations only (checks that it runs)")
    p.add_argument("--device")
    p.set_defaults(run_fn=_bench, positive=("ddls_batch",))

    args = parser.parse_args(argv)
    for name in args.positive:
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    args.run_fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
