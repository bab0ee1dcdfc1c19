"""Command line: ``python -m ebmlib COMMAND`` (or ``ebmlib COMMAND``).

    toy-table   Table 1 of the DDLS paper on the 25-Gaussian grid (generator, DRS, MH-GAN, DDLS, DOT)
    image-table Table 1 on stacked digits: modes of 1,000, KL, quality, Fréchet classifier distance
    train       train an image GAN into a run folder (resumes from its checkpoint)
    calibrate   calibrate the run's discriminator against its frozen generator
    sample      draw samples from a calibrated run (generator, DRS, MH-GAN or DDLS)
    evaluate    score sample files against the run's data set (Fréchet distance, Inception-style score)
    bench       GPU throughput of SN-GAN training and DDLS, true fp32 eager against the optimized path
    gpu-check   the whole CUDA path in one call: CUDA tests, bench, the pipeline, a training-speed probe

Under ``torchrun --nproc_per_node N -m ebmlib COMMAND``, train, sample and evaluate share the work among N
processes (``ebmlib.distributed``); rank 0 prints and writes the files.

An expected failure (a missing or damaged data set, a checkpoint that does not match, a diverging
chain, a bad argument) is answered by one line ``ebmlib: error: ...`` on stderr and exit status 1
(2 for a bad command line); ``--debug`` shows the traceback instead.
"""
import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from . import distributed, energy, features, images, losses, nets, samplers
from ._files import write_text
from .cifar10 import ArchiveError, DownloadError

# Failures a user can fix, each with a message that says how (bad arguments and shapes, checkpoints that
# do not match, diverging chains: ValueError; missing files: OSError); anything else keeps its traceback.
EXPECTED_ERRORS = (ValueError, OSError, ArchiveError, DownloadError, features.InceptionUnavailable,
                   torch.cuda.OutOfMemoryError)


def _positive(cast, what):
    def check(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    check.__name__ = f"positive {cast.__name__}"
    return check


positive_int, positive_float = _positive(int, "a whole number"), _positive(float, "a number")


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error in one line: ``ebmlib: error: <what> (see <command> --help)``, status 2."""

    def error(self, message):
        self.exit(2, f"ebmlib: error: {message} (see `{self.prog} --help`)\n")


def _write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2))
    print(f"wrote {path}")


def _cpu_seconds():
    """CPU seconds of this process and its finished children: what the work costs on an idle machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _toy_table(args):
    from .recipes.table1 import DEFAULT_METHODS, format_table, table1

    start = time.perf_counter()
    workers = args.workers or os.cpu_count() or 1
    methods = DEFAULT_METHODS + (("ddls_paper",) if args.paper_ula else ())
    records = table1(seeds=args.seeds, n_samples=args.samples, methods=methods, wgan=args.wgan, workers=workers,
                     progress=args.progress)
    total, cpu_seconds = time.perf_counter() - start, _cpu_seconds()
    print(f"Table 1 on the 25-Gaussian grid: {args.samples} samples per method, mean ± std over {args.seeds} seeds")
    print(format_table(records))
    print(f"total {total:.1f} s, {cpu_seconds:.0f} CPU seconds with {workers} workers")
    if args.json:
        meta = {"seeds": args.seeds, "n_samples": args.samples, "total_seconds": total,
                "cpu_seconds": cpu_seconds, "paper_ula": args.paper_ula, "wgan": args.wgan,
                "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                "torch": torch.__version__, "workers": workers, "cpus": os.cpu_count(),
                "threads": 1 if workers > 1 else torch.get_num_threads(), "device": "cpu"}
        _write_json(args.json, {"meta": meta, "records": records})


def _image_table(args):
    from .recipes.image_table import format_table, image_table

    train = {"steps": args.steps} if args.steps else None
    calibration = {"steps": args.calibration_steps} if args.calibration_steps else None
    table = image_table(dataset=args.dataset, seeds=args.seeds, n_samples=args.samples, root=args.data,
                        runs=args.runs, train=train, calibration=calibration, progress=not args.quiet)
    meta = table["meta"]
    print(f"Table 1 on {meta['dataset']}: {meta['n_samples']} samples a row, mean ± std over {meta['seeds']} seeds")
    print(format_table(table))
    print(f"total {meta['total_seconds']:.1f} s")
    if args.json:
        meta.update(machine=platform.machine(), processor=platform.processor() or platform.machine(),
                    cpus=os.cpu_count())
        _write_json(args.json, table)


def _train(args):
    from .recipes.pipeline import PAPER_TRAIN, train

    options = {k: v for k, v in dict(steps=args.steps, n_dis=args.n_dis, batch_size=args.batch_size, loss=args.loss,
                                     lr_g=args.lr, lr_d=args.lr, ema=args.ema, checkpoint_every=args.checkpoint_every,
                                     sample_every=args.sample_every, log_every=args.log_every, seed=args.seed,
                                     channels_last=args.channels_last, compile=args.compile or None).items()
               if v is not None}
    history = train(args.run, arch=args.arch, dataset=args.dataset, root=args.data, device=args.device, ch=args.ch,
                    latent_dim=args.latent_dim, progress=not args.quiet, **options)
    last = f"d_loss {history['d_loss'][-1]:.3f}, g_loss {history['g_loss'][-1]:.3f}" if history["step"] else ""
    print(f"trained to step {history['step'][-1] if history['step'] else 0} in {history['seconds']:.1f} s; {last}; "
          f"checkpoint {history['checkpoint']}")
    if distributed.world_size() > 1:
        batch = args.batch_size or PAPER_TRAIN["batch_size"]
        print(f"{distributed.world_size()} ranks: effective batch size {batch * distributed.world_size()} "
              f"({batch} a rank x {distributed.world_size()} ranks)")


def _calibrate(args):
    from .recipes.pipeline import calibrate

    options = {k: v for k, v in dict(method=args.method, steps=args.steps, lr=args.lr).items() if v is not None}
    calibrate(args.run, root=args.data, device=args.device, progress=not args.quiet, **options)
    print(f"wrote {Path(args.run) / 'calibrated.pt'}")


def _sample(args):
    from .recipes.pipeline import PAPER_DDLS, sample

    options = {}
    if args.sampler == "ddls":
        options = {k: v for k, v in dict(steps=args.steps, step_size=args.step_size, mala=args.mala or None).items()
                   if v is not None}
    elif args.sampler == "dot" and args.steps:
        options["steps"] = args.steps
    if args.batch_size:
        options["batch_size"] = args.batch_size
    out = sample(args.run, sampler=args.sampler, n=args.n, seed=args.seed, device=args.device, name=args.name,
                 **options)
    if out is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    steps = options.get("steps", PAPER_DDLS["steps"])
    rate = f", {args.n * steps / out.seconds:,.0f} image-steps/s" if args.sampler == "ddls" else ""
    print(f"{args.n} samples with {args.sampler} in {out.seconds:.1f} s{rate}; wrote "
          f"{Path(args.run) / f'samples_{args.name or args.sampler}.pt'}")


def _run_dataset(sample_path):
    """The data set and folder of the run that wrote a sample file (its run.json), else None."""
    from .recipes.pipeline import read_run

    try:
        info = read_run(Path(sample_path).parent)
    except FileNotFoundError:
        return None
    return info["dataset"], info.get("root")


def _evaluate(args):
    from .metrics import describe
    from .recipes.pipeline import evaluate, extractor, load_samples, reference_stats

    dataset, root = args.dataset, args.data
    if dataset is None:
        dataset, run_root = _run_dataset(args.samples[0]) or ("cifar10", None)
        root = root if root is not None else run_root
    ext = extractor(args.features, dataset=dataset, root=root, device=args.device,
                    inception_weights=args.inception_weights, steps=args.classifier_steps)
    reference = reference_stats(ext, dataset, root)  # once for every sample file
    results = {}
    for path in args.samples:
        loaded = load_samples(path)
        scores = evaluate(loaded["images"], extractor_module=ext, reference=reference)
        if scores is None:  # a rank other than 0 under torchrun: rank 0 reports
            continue
        results[path] = {**scores, "sampler": loaded["sampler"], "dataset": dataset}
        print(f"{path} ({loaded['sampler']}): {describe(scores)}")
    if args.json:
        _write_json(args.json, results)


def _bench(args):
    from .recipes.bench import main as bench_main

    failed = bench_main(args)["summary"]["failed_stages"]
    if failed:  # every other stage was measured (and written); the status says the run is incomplete
        print(f"ebmlib: error: {len(failed)} benchmark stage(s) failed: {', '.join(failed)} (their errors are "
              f"in the table{' and in ' + args.json if args.json else ''})", file=sys.stderr)
        return 1
    return 0


def _gpu_check(args):
    from .recipes.gpu_check import main as gpu_check_main

    return gpu_check_main(args)


def _data_args(p, dataset="cifar10"):
    """--data NAME (alias --dataset; default ``dataset``; None: the run's own; False: no such option),
    --data-dir FOLDER and --device."""
    if dataset is not False:
        default = "default: the run's, from its run.json" if dataset is None else f"default {dataset}"
        p.add_argument("--data", "--dataset", dest="dataset", choices=sorted(images.DATASETS), default=dataset,
                       help=f"the image data set ({default}; 'stacked-digits' trains on a CPU in minutes, "
                            f"'tiny' is a small fake set for tests)")
    p.add_argument("--data-dir", dest="data", help="the data set's folder (for cifar10: the one holding "
                                                   "cifar-10-python.tar.gz; default $EBMLIB_DATA or ./data)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")


# torchrun's own parser reads abbreviations of its options even after the script, and --run and --n are
# ambiguous there: under torchrun, write --run-dir and --n-samples
_RUN_DIR = "the run folder (--run-dir under torchrun)"


def build_parser():
    """The argument parser of ``python -m ebmlib``; every choice comes from a registry of the library."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of a failure instead of one line")
    parser = _Parser(prog="python -m ebmlib", description=__doc__, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("toy-table", parents=[common], help="the DDLS paper's Table 1 on the 25-Gaussian grid")
    p.add_argument("--seeds", type=positive_int, default=5, help="number of trained pairs (default 5)")
    p.add_argument("--samples", type=positive_int, default=10_000, help="samples per method and seed (default 10000)")
    p.add_argument("--json", help="also write the records to this JSON file")
    p.add_argument("--paper-ula", action="store_true",
                   help="add DDLS as the paper writes it (unadjusted, 1,000 steps: the table's longest row)")
    p.add_argument("--wgan", action="store_true", help="add the WGAN rows (a WGAN-GP pair a seed, DDLS on its critic)")
    p.add_argument("--workers", type=positive_int, help="processes, one thread each (default: one per CPU core)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(run_fn=_toy_table)

    p = sub.add_parser("image-table", parents=[common],
                       help="Table 1 on stacked digits: generator, DRS, MH-GAN, DDLS on the same trained pairs")
    p.add_argument("--data", "--dataset", dest="dataset", default="stacked-digits",
                   choices=sorted(k for k, v in images.DATASETS.items() if v.classifier_on),
                   help="a data set with countable modes (default stacked-digits)")
    p.add_argument("--data-dir", dest="data", help="the folder for the data set's caches (the digit classifier)")
    p.add_argument("--seeds", type=positive_int, default=3, help="number of trained pairs (default 3)")
    p.add_argument("--samples", type=positive_int, default=5000, help="samples per row and seed (default 5000)")
    p.add_argument("--steps", type=positive_int, help="generator training steps a pair (default: the recipe's)")
    p.add_argument("--calibration-steps", type=positive_int, help="calibration steps a pair (default: the recipe's)")
    p.add_argument("--runs", help="keep each seed's run folder here (default: a temporary folder)")
    p.add_argument("--json", help="also write the table to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run_fn=_image_table)

    p = sub.add_parser("train", parents=[common], help="train an image GAN (SN-GAN's settings by default)")
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="the run folder: checkpoint, metrics.jsonl, samples/ (--run-dir under torchrun)")
    p.add_argument("--arch", choices=sorted(nets.ARCHITECTURES), default="cnn")
    p.add_argument("--ch", type=positive_int, help="base channel width (default: the paper's)")
    p.add_argument("--latent-dim", type=positive_int, default=128, help="size of the latent z (default 128)")
    p.add_argument("--steps", type=positive_int, help="generator steps (default 100000)")
    p.add_argument("--n-dis", type=positive_int, help="D steps per G step (default 5)")
    p.add_argument("--batch-size", type=positive_int, help="default 64")
    p.add_argument("--loss", choices=sorted({**losses.LOSSES, **losses.WASSERSTEIN_LOSSES}), help="default hinge")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate of G and D (default 2e-4, linear decay)")
    p.add_argument("--ema", type=positive_float, help="decay of the generator's moving average (default 0.9999)")
    p.add_argument("--checkpoint-every", type=positive_int)
    p.add_argument("--sample-every", type=positive_int)
    p.add_argument("--log-every", type=positive_int)
    p.add_argument("--seed", type=int)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile G and D: fewer kernel launches a step on a GPU, after a compile of minutes")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="nets and batches in NHWC memory layout (default: on CUDA only); a resume may switch it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _data_args(p)
    p.set_defaults(run_fn=_train)

    p = sub.add_parser("calibrate", parents=[common],
                       help="fit d(x) ~ log p_data/p_g against the run's frozen generator")
    p.add_argument("--run", "--run-dir", dest="run", required=True, help=_RUN_DIR)
    p.add_argument("--method", choices=energy.ANY_DIMENSION, help="default head (a logistic head on D)")
    p.add_argument("--steps", type=positive_int, help="default 2000")
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--quiet", action="store_true")
    _data_args(p, dataset=False)
    p.set_defaults(run_fn=_calibrate)

    p = sub.add_parser("sample", parents=[common], help="sample a calibrated run")
    p.add_argument("--run", "--run-dir", dest="run", required=True, help=_RUN_DIR)
    p.add_argument("--sampler", choices=sorted(samplers.SAMPLERS), default="ddls")
    p.add_argument("--n", "--n-samples", dest="n", type=positive_int, default=50_000,
                   help="number of samples (default 50000; --n-samples under torchrun)")
    p.add_argument("--steps", type=positive_int, help="DDLS steps (default 1000); DOT's Adam steps (default 100)")
    p.add_argument("--step-size", type=positive_float, help="DDLS step size eps (default 0.01)")
    p.add_argument("--mala", action="store_true", help="DDLS with the Metropolis correction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=positive_int,
                   help="chains evaluated together (default 10000); under torchrun, chunks of this size are dealt "
                        "to the ranks, so about N / ranks keeps each busy (one process gives the same samples)")
    p.add_argument("--name", help="the file is samples_NAME.pt (default: the sampler's name)")
    p.add_argument("--device")
    p.set_defaults(run_fn=_sample)

    p = sub.add_parser("evaluate", parents=[common], help="score sample files against a data set's training split")
    p.add_argument("samples", nargs="+", help="samples_*.pt files written by `sample`")
    p.add_argument("--features", choices=sorted(features.EXTRACTORS), default="classifier",
                   help="classifier: Fréchet classifier distance (not FID); inception: FID and IS (local weights)")
    p.add_argument("--inception-weights", help="path of the FID Inception-v3 weights (or $EBMLIB_INCEPTION_WEIGHTS)")
    p.add_argument("--classifier-steps", type=positive_int,
                   help="training steps of the feature classifier (default: the data set's); cached by steps")
    p.add_argument("--json", help="also write the scores to this JSON file")
    _data_args(p, dataset=None)
    p.set_defaults(run_fn=_evaluate)

    p = sub.add_parser("bench", parents=[common],
                       help="GPU throughput: SN-GAN training and DDLS, true fp32 eager vs optimized (exit 1 if a stage fails)")
    p.add_argument("--json", help="write the results to this JSON file (rewritten after every stage)")
    p.add_argument("--ddls-batch", type=positive_int, default=5000, help="chains in one DDLS batch (default 5000)")
    p.add_argument("--quick", action="store_true", help="a few iterations only (checks that it runs)")
    p.add_argument("--device")
    p.set_defaults(run_fn=_bench)

    p = sub.add_parser("gpu-check", parents=[common],
                       help="the whole CUDA path in under 9 minutes: CUDA tests, bench, the pipeline, a speed probe")
    p.add_argument("--device", help="default cuda; cpu: the dry run with tiny sizes")
    p.add_argument("--out", default=os.environ.get("EBMLIB_GPU_CHECK_OUT", "benchmarks/results"),
                   help="folder of gpu_check_TAG.json and .log (default $EBMLIB_GPU_CHECK_OUT or benchmarks/results)")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes (on the CPU unless --device says otherwise)")
    p.add_argument("--tag", help="the files' TAG (default: the GPU's name, e.g. nvidia-h200; cpu for the CPU)")
    p.add_argument("--stages", help="only these stages, comma-separated (a prefix such as 'sample' picks several)")
    p.add_argument("--budget", type=positive_float, help="seconds for the whole check (default 530; dry run 1200)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (run, data set, samples)")
    p.set_defaults(run_fn=_gpu_check)
    return parser


def _exit_status(value):
    """A command's exit status: the int it returned (gpu-check: 1 when a stage failed), else 0."""
    return value if isinstance(value, int) else 0


def main(argv=None) -> int:
    """Run one command; returns the exit status (0 done, 1 a run failure, 2 a bad command line)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already printed in one line
        return e.code if isinstance(e.code, int) else 2
    if getattr(args, "debug", False):
        with distributed.command():
            return _exit_status(args.run_fn(args))
    try:
        with distributed.command():
            status = _exit_status(args.run_fn(args))  # a command may report a partial failure by its status (bench)
    except KeyboardInterrupt as e:
        print(f"ebmlib: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"ebmlib: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
