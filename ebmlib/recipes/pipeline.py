"""The DDLS paper's image pipeline as plain functions: train -> calibrate -> sample -> evaluate.

Each step reads the previous step's files in a run folder and writes its own (every file atomically):

    run.json          the data set, the architecture and the settings (written by ``train``)
    checkpoint.pt     nets, optimizers, EMA, step, RNGs (``ebmlib.train_images.train_images``)
    calibrated.pt     the calibrated logit d(x) ~ log p_data(x) / p_g(x) (``calibrate``)
    samples_<name>.pt uint8 samples (N, C, H, W), their latents and the sampler's settings (``sample``)

The command line (``python -m ebmlib train | calibrate | sample | evaluate``) and chapters 08-09 call
these functions; under ``torchrun``, ``train``, ``sample`` and ``evaluate`` share the work among the
ranks (``ebmlib.distributed``) and rank 0 writes the files. The data set is any name of
``ebmlib.images.DATASETS`` (``cifar10``; ``stacked-digits``, real digits with 1,000 countable modes that a
CPU trains on in minutes; ``tiny``, the small fake set in CIFAR-10's format for tests and smoke runs), read
from the folder ``root``; the nets are sized by it.
"""
import json
import time
from pathlib import Path

import torch

from .. import checkpoint as ckpt
from .. import distributed, features, images, metrics
from .._files import torch_save, write_text
from .._runtime import default_device, module_device
from ..energy import ANY_DIMENSION, load_calibration, save_calibration
from ..energy import calibrate as calibrate_logit
from ..nets import build_pair
from ..train_images import pick_memory_format, train_images
from . import ranks

# the pipeline's sampling call (``samplers.sample`` in one process, the chains shared among torchrun's ranks
# otherwise); the benchmark times exactly this
run_sampler = ranks.sample

# SN-GAN's CIFAR-10 recipe (Miyato et al. 2018). With it, pytorch-gan-collections reports IS 7.84 / FID 17.81
# for the standard CNN and 8.31 / 14.32 for the ResNet; torch_mimicry's ResNet: IS 7.97 / FID 16.77.
PAPER_TRAIN = dict(steps=100_000, n_dis=5, batch_size=64, loss="hinge", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9),
                   lr_decay="linear", ema=0.9999)
# DDLS on CIFAR-10: latent Langevin chains of this length and step size (eps in the paper's update)
PAPER_DDLS = dict(steps=1000, step_size=0.01)
# Calibration of a hinge-trained D: a logistic head a*D(x)+b fitted against the frozen generator
PAPER_CALIBRATION = dict(method="head", steps=2000, batch_size=256)
# what must agree between a run folder and a call that resumes it (device, channels_last and compile may change)
_RUN_IDENTITY = ("dataset", "arch", "latent_dim", "ch")


def build(arch="cnn", latent_dim=128, ch=None, dataset="cifar10"):
    """A fresh pair ``(G, D)`` of ``arch`` (``ebmlib.nets.ARCHITECTURES``) for the images of ``dataset``:
    G makes, and D reads, images of the data set's shape (C, S, S). ``ch`` is the base width (default:
    the paper's)."""
    return build_pair(arch, latent_dim, ch, image_shape=images.dataset(dataset).shape)


def read_run(run) -> dict:
    """The description ``run.json`` of a run folder; FileNotFoundError when the folder has none."""
    path = Path(run) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {run} is not a run folder written by "
                                f"`python -m ebmlib train` (or ebmlib.recipes.pipeline.train)")
    info = json.loads(path.read_text())
    if "dataset" not in info:  # run folders written before the data-set registry
        info["dataset"] = "tiny" if info.get("tiny") else "cifar10"
        info.setdefault("root", info.get("data"))
    return info


def train(run, arch="cnn", dataset="cifar10", root=None, device=None, latent_dim=128, ch=None, progress=None,
          **options):
    """Train a GAN pair on ``dataset`` into the folder ``run`` (resuming from its checkpoint if there).

    ``root``: the data set's folder (default: its own). ``options`` override :data:`PAPER_TRAIN` and go to
    ``ebmlib.train_images.train_images`` (``steps``, ``n_dis``, ``checkpoint_every``, ``compile``,
    ``channels_last``, ...). A run folder holds one pair: resuming it with another data set or other nets is
    refused before anything is written. A resume may switch device (CPU <-> CUDA), ``channels_last`` or
    ``compile``: it continues, not bit-for-bit (``train_images`` says when), and ``run.json`` records the
    layout of this call (``train.channels_last``). Under torchrun each rank trains on its own slice of every
    batch: ``batch_size`` is per rank, and run.json states the effective batch size
    (``batch_size * world_size``). Returns the training history.
    """
    run = Path(run)
    device = distributed.setup(device)
    settings = {**PAPER_TRAIN, **options}
    settings["channels_last"] = pick_memory_format(settings.get("channels_last"), device) is torch.channels_last
    info = {"dataset": dataset, "root": None if root is None else str(root), "arch": arch, "latent_dim": latent_dim,
            "ch": ch, "train": {**settings, "betas": list(settings["betas"])}}
    if (run / "run.json").exists():
        old = read_run(run)
        differ = {k: (old.get(k), info[k]) for k in _RUN_IDENTITY if old.get(k) != info[k]}
        if differ:
            raise ValueError(f"{run / 'run.json'} describes another run than asked for (was, asked): {differ}; "
                             "resume with the same settings, or train into another run folder")
    torch.manual_seed(settings.get("seed", 0))  # the initial weights: a run is reproducible from run.json
    G, D = build(arch, latent_dim, ch, dataset)
    with distributed.rank0_first():  # one download or cache write, then the others read it
        data, _ = images.load_images(dataset, root)
    if distributed.world_size() > 1:
        info["distributed"] = _ranks(settings["batch_size"])
    if distributed.is_rank0():
        write_text(run / "run.json", json.dumps(info, indent=2))
    batches = distributed.batches(data, settings["batch_size"], device=device, seed=settings.get("seed", 0),
                                  flip=images.dataset(dataset).flip)
    return train_images(G.to(device), D.to(device), batches, out_dir=run, device=device, progress=progress,
                        **settings)


def _ranks(batch_size):
    world = distributed.world_size()
    return {"world_size": world, "backend": torch.distributed.get_backend(), "batch_size_per_rank": batch_size,
            "effective_batch_size": batch_size * world}


def load_run(run, device=None, ema=True):
    """The trained ``(G, D)`` of a run folder in eval mode (G: the EMA copy when ``ema``); errors name the
    file and what does not match."""
    info = read_run(run)
    G, D = build(info["arch"], info["latent_dim"], info["ch"], info["dataset"])
    path = Path(run) / "checkpoint.pt"
    ckpt.load_generator(path, G, ema=ema)
    ckpt.load_discriminator(path, D)
    device = default_device(device)
    return G.to(device).eval(), D.to(device).eval()


def calibrate(run, root=None, device=None, seed=0, progress=None, **options):
    """Calibrate the run's discriminator against its frozen generator; writes ``calibrated.pt``.

    ``options`` override :data:`PAPER_CALIBRATION` (``method`` 'head' or 'finetune', ``steps``,
    ``batch_size``, ``lr``). ``root``: the data set's folder, when not the one the run was trained from.
    Returns the calibrated logit, a module (N, C, H, W) -> (N,) in eval mode.
    """
    settings = {**PAPER_CALIBRATION, **options}
    if settings["method"] not in ANY_DIMENSION:
        # the Fourier-feature residual is for low-dimensional data; on images its features mean nothing
        raise ValueError(f"image calibration method must be one of {ANY_DIMENSION}, got {settings['method']!r}")
    info = read_run(run)
    G, D = load_run(run, device)
    data, _ = images.load_images(info["dataset"], root if root is not None else info["root"])
    real = images.real_sampler(data, module_device(G), flip=images.dataset(info["dataset"]).flip)
    d = calibrate_logit(D, G, real, seed=seed, progress=progress, **settings)
    save_calibration(d, Path(run) / "calibrated.pt")
    return d


def load_calibrated(run, device=None):
    """``(G, d)``: the run's EMA generator and its calibrated logit (from ``calibrated.pt``), eval mode."""
    G, D = load_run(run, device)
    path = Path(run) / "calibrated.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `python -m ebmlib calibrate --run {run}` first")
    return G, load_calibration(path, D, map_location=module_device(G))


def sampler_options(sampler, **options):
    """The options ``sample`` runs ``sampler`` with: the pipeline's defaults, overridden by ``options``. DDLS:
    :data:`PAPER_DDLS` with bf16 on CUDA (and ``sample_ddls``'s fast set-up: frozen channels-last nets,
    cuDNN autotuning); DRS: Azadi et al.'s rule with γ at the 95th percentile of F (exact rejection, M the
    largest logit, accepts almost nothing on images). The benchmark times DDLS with these."""
    if sampler == "ddls":
        return {**PAPER_DDLS, "amp": True, **options}
    if sampler == "drs" and "log_m" not in options and "m_quantile" not in options:
        return {"shift_quantile": 0.95, **options}
    return options


def sample(run, sampler="ddls", n=50_000, seed=0, device=None, name=None, **options):
    """Draw ``n`` samples with ``sampler`` (a name of ``ebmlib.samplers.SAMPLERS``) from a calibrated run and
    write ``samples_<name>.pt`` (uint8 images, latents, settings). The settings are :func:`sampler_options`'s
    (DDLS: :data:`PAPER_DDLS`, bf16 on CUDA). Returns the :class:`ebmlib.samplers.Samples` (``x`` as float
    images in [-1, 1]). Under torchrun the chains are shared among the ranks and gathered
    (``ebmlib.recipes.ranks.sample``: the same samples as one process); rank 0 writes the file and returns
    the samples, the other ranks return None."""
    G, d = load_calibrated(run, distributed.setup(device))
    options = sampler_options(sampler, **options)
    start = time.perf_counter()
    out = run_sampler(sampler, G, d, n, seed=seed, **options)
    if out is None:  # a rank other than 0: its chains are in rank 0's file
        return None
    info = {k: v for k, v in out.info.items() if k != "snapshots"}
    torch_save({"images": images.to_uint8(out.x).cpu(), "z": out.z.cpu(), "sampler": sampler, "options": options,
                "seed": seed, "seconds": time.perf_counter() - start, "info": info},
               Path(run) / f"samples_{name or sampler}.pt")
    return out


def load_samples(path):
    """The dict that ``sample`` wrote: ``images`` uint8 (N, C, H, W), ``z``, ``sampler``, ``options``."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no sample file at {path}: write one with `python -m ebmlib sample --run RUN`")
    return torch.load(path, map_location="cpu", weights_only=True)


def extractor(kind="classifier", dataset="cifar10", root=None, device=None, steps=None, width=None, batch_size=None,
              inception_weights=None, progress=None):
    """A feature extractor for scores (``kind`` in ``ebmlib.features.EXTRACTORS``): 'inception' (the FID
    Inception-v3 from local weights: FID and IS) or 'classifier' (a classifier trained here: the Fréchet
    classifier distance and the classifier score, never called FID or IS). The classifier learns the
    training split of the data set, or of the data set named by its ``classifier_on`` (stacked digits are
    read by the digit classifier, channel by channel, which also gives each sample's mode). ``steps``,
    ``width`` and ``batch_size`` (default: that data set's ``classifier_steps``, ``classifier_width``,
    ``classifier_batch``) go to ``features.train_classifier``; the classifier is cached in that data set's
    folder as ``classifier_<steps>.pt`` (``classifier_<steps>_w<width>_b<batch_size>.pt`` for other widths
    or batches)."""
    device = distributed.setup(device)
    if kind == "inception":
        return features.load_inception(inception_weights, device)
    if kind not in features.EXTRACTORS:
        raise ValueError(f"unknown extractor {kind!r}; choose one of {sorted(features.EXTRACTORS)}")
    scored = images.dataset(dataset)
    info = images.dataset(scored.classifier_on or dataset)
    steps = steps or info.classifier_steps
    width, batch_size = width or info.classifier_width, batch_size or info.classifier_batch
    suffix = "" if (width, batch_size) == (info.classifier_width, info.classifier_batch) else f"_w{width}_b{batch_size}"
    cache = info.folder(root) / f"classifier_{steps}{suffix}.pt"
    model = features.ImageClassifier(width=width, n_classes=info.n_classes, in_shape=info.shape)
    with distributed.rank0_first():  # under torchrun rank 0 trains and caches it, the others read the cache
        if cache.exists():
            ckpt.load_state(model, torch.load(cache, map_location="cpu", weights_only=True), what="classifier",
                            path=cache)
            model = model.to(device).eval()
        else:
            data, labels = info.load(root)
            model = features.train_classifier(data, labels, steps=steps, batch_size=batch_size, width=width,
                                              device=device, progress=progress, n_classes=info.n_classes,
                                              flip=info.flip)
            torch_save(model.state_dict(), cache)
    if scored.classifier_on:
        return features.ChannelClassifierExtractor(model, channels=scored.shape[0])
    return features.ClassifierExtractor(model, name=f"{info.name}-classifier")


# the batch size of feature extraction: a group cuts the images into the batches one process scores
_SCORE_BATCH = 250


def reference_stats(extractor_module, dataset="cifar10", root=None):
    """The training split's feature statistics under an extractor (``metrics.reference_stats``), on every
    rank; under torchrun each rank extracts a share of the batches and rank 0 computes them."""
    with distributed.rank0_first():
        data = images.load_images(dataset, root)[0]
    ext = ranks.precomputed(extractor_module, data, _SCORE_BATCH)
    stats = metrics.reference_stats(data, ext, _SCORE_BATCH) if ext is not None else None
    return distributed.broadcast(stats)


def evaluate(samples, dataset="cifar10", root=None, kind="classifier", device=None, extractor_module=None,
             reference=None, **options):
    """Score uint8 or float samples (N, C, H, W) against the training split of ``dataset`` with one extractor;
    returns the ``ebmlib.metrics.score`` dict (every score with its sample counts). ``reference``: the
    training split's statistics under that extractor (``metrics.reference_stats``), computed here when
    not given; pass them when scoring several sample sets, since they cost a pass over the whole split.
    Under torchrun the images are shared among the ranks (the same scores as one process); rank 0 returns
    the scores, the other ranks None."""
    ext = extractor_module or extractor(kind, dataset=dataset, root=root, device=device, **options)
    if reference is None:
        reference = reference_stats(ext, dataset, root)
    scored = ranks.precomputed(ext, samples, _SCORE_BATCH)
    return metrics.score(samples, reference, scored, batch_size=_SCORE_BATCH) if scored is not None else None
