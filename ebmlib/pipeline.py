"""The CIFAR-10 pipeline of the DDLS paper as plain functions: train -> calibrate -> sample -> evaluate.

Each step reads the previous step's files in a run folder and writes its own:

    run.json          the architecture and settings (written by ``train``)
    checkpoint.pt     nets, optimizers, EMA, step, RNGs (``ebmlib.train.train_images``)
    calibrated.pt     the calibrated logit d(x) ~ log p_data(x) / p_g(x) (``calibrate``)
    samples_<name>.pt uint8 samples (N, 3, 32, 32), their latents and the sampler's settings (``sample``)

The command line (``python -m ebmlib train | calibrate | sample | evaluate``) and chapters 08-09 call
these functions. Data: the real CIFAR-10 (``data`` = its folder) or, with ``tiny=True``, the small fake
archive of the same format that ``ebmlib.cifar10.tiny`` writes (tests and smoke runs).
"""
import json
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import cifar10, metrics
from .energy import CalibratedLogit, calibrate as calibrate_logit
from .nets import SNGANDiscriminator, SNGANGenerator, SNGANResDiscriminator, SNGANResGenerator
from .samplers import sample as run_sampler
from .train import train_images

ARCHS = {"cnn": (SNGANGenerator, SNGANDiscriminator), "resnet": (SNGANResGenerator, SNGANResDiscriminator)}
# SN-GAN's CIFAR-10 recipe (Miyato et al. 2018). With it, pytorch-gan-collections reports IS 7.84 / FID 17.81
# for the standard CNN and 8.31 / 14.32 for the ResNet; torch_mimicry's ResNet: IS 7.97 / FID 16.77.
PAPER_TRAIN = dict(steps=100_000, n_dis=5, batch_size=64, loss="hinge", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9),
                   lr_decay="linear", ema=0.9999)
# DDLS on CIFAR-10: latent Langevin chains of this length and step size (eps in the paper's update)
PAPER_DDLS = dict(steps=1000, step_size=0.01)
# Calibration of a hinge-trained D: a logistic head a*D(x)+b fitted against the frozen generator
PAPER_CALIBRATION = dict(method="head", steps=2000, batch_size=256)


def default_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(arch="cnn", latent_dim=128, ch=None):
    """A fresh SN-GAN pair ``(G, D)`` for 32x32 images: ``arch`` 'cnn' (standard CNN) or 'resnet'.

    ``ch`` is the base width (default: the paper's, 64 for the CNN and 256 / 128 for the ResNet).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHS)}")
    G_cls, D_cls = ARCHS[arch]
    g_kw, d_kw = {"latent_dim": latent_dim}, {}
    if ch is not None:
        g_kw["ch"] = d_kw["ch"] = ch
    return G_cls(**g_kw), D_cls(**d_kw)


def load_images(data=None, tiny=False, train=True, n_tiny=1000):
    """CIFAR-10 (uint8 (N, 3, 32, 32), labels (N,)) from the folder ``data`` (``$EBMLIB_DATA``, ``./data``);
    with ``tiny=True`` the fake archive of ``n_tiny`` training images written into ``data`` (default
    ``./data/tiny``)."""
    if tiny:
        return cifar10.tiny(data or Path("data") / "tiny", train=train, n_train=n_tiny, n_test=max(n_tiny // 5, 10))
    return cifar10.load(data, train=train)


def real_sampler(images, device=None):
    """``f(n, generator) -> (n, 3, 32, 32)`` float images in [-1, 1], drawn at random (with flips) from
    uint8 ``images`` kept on ``device``: the real-data argument of ``ebmlib.calibrate``."""
    device = torch.device(device) if device is not None else images.device
    held = images.to(device)

    def draw(n, generator=None):
        idx = torch.randint(held.shape[0], (n,), generator=generator).to(device)
        return cifar10.flip_random(cifar10.to_float(held[idx]), generator)

    return draw


def _run_file(run):
    path = Path(run) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {run} is not a run folder written by "
                                f"`python -m ebmlib train` (or ebmlib.pipeline.train)")
    return json.loads(path.read_text())


def train(run, arch="cnn", data=None, tiny=False, device=None, latent_dim=128, ch=None, progress=None, **options):
    """Train an SN-GAN pair on CIFAR-10 into the folder ``run`` (resuming from its checkpoint if there).

    ``options`` override :data:`PAPER_TRAIN` and go to ``ebmlib.train.train_images`` (``steps``,
    ``n_dis``, ``checkpoint_every``, ...). Returns the training history.
    """
    run = Path(run)
    device = torch.device(device) if device is not None else default_device()
    images, _ = load_images(data, tiny=tiny)
    settings = {**PAPER_TRAIN, **options}
    torch.manual_seed(settings.get("seed", 0))  # the initial weights: a run is reproducible from run.json
    G, D = build(arch, latent_dim, ch)
    G.to(device), D.to(device)
    info = {"arch": arch, "latent_dim": latent_dim, "ch": ch, "tiny": bool(tiny),
            "data": None if data is None else str(data),
            "train": {k: v for k, v in settings.items() if k != "betas"} | {"betas": list(settings["betas"])}}
    path = run / "run.json"
    if path.exists():
        # a run folder holds one pair of nets: resuming it with other nets would overwrite the description
        # of its checkpoint before the checkpoint itself refuses to load
        old = json.loads(path.read_text())
        differ = {k: (old.get(k), info[k]) for k in ("arch", "latent_dim", "ch", "tiny") if old.get(k) != info[k]}
        if differ:
            raise ValueError(f"{path} describes other nets than asked for (was, asked): {differ}; resume with "
                             f"the same settings, or train into another run folder")
    run.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    batches = cifar10.Batches(images, settings["batch_size"], device=device, seed=settings.get("seed", 0))
    return train_images(G, D, batches, out_dir=run, device=device, progress=progress, **settings)


def load_run(run, device=None, ema=True):
    """The trained ``(G, D)`` of a run folder in eval mode (G: the EMA copy when ``ema``); errors name the
    file and what does not match."""
    info = _run_file(run)
    device = torch.device(device) if device is not None else default_device()
    G, D = build(info["arch"], info["latent_dim"], info["ch"])
    path = Path(run) / "checkpoint.pt"
    ckpt.load_generator(path, G, ema=ema)
    ckpt.load_discriminator(path, D)
    return G.to(device).eval(), D.to(device).eval()


def calibrate(run, data=None, tiny=None, device=None, seed=0, progress=None, **options):
    """Calibrate the run's discriminator against its frozen generator; writes ``calibrated.pt``.

    ``options`` override :data:`PAPER_CALIBRATION` (``method`` 'head' or 'finetune', ``steps``,
    ``batch_size``, ``lr``). Returns the calibrated logit, a module (N, 3, 32, 32) -> (N,) in eval mode.
    """
    settings = {**PAPER_CALIBRATION, **options}
    if settings["method"] not in ("head", "finetune"):
        # the Fourier-feature residual is for low-dimensional data; on images its features mean nothing
        raise ValueError(f"image calibration method must be 'head' or 'finetune', got {settings['method']!r}")
    info = _run_file(run)
    tiny = info["tiny"] if tiny is None else tiny
    G, D = load_run(run, device)
    images, _ = load_images(data if data is not None else info["data"], tiny=tiny)
    d = calibrate_logit(D, G, real_sampler(images, next(G.parameters()).device), seed=seed, progress=progress,
                        **settings)
    torch.save({"method": settings["method"], "state": d.state_dict(), "settings": settings},
               Path(run) / "calibrated.pt")
    return d


def load_calibrated(run, device=None):
    """``(G, d)``: the run's EMA generator and its calibrated logit (from ``calibrated.pt``), eval mode."""
    G, D = load_run(run, device)
    path = Path(run) / "calibrated.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `python -m ebmlib calibrate --run {run}` first")
    saved = torch.load(path, map_location=next(G.parameters()).device, weights_only=True)
    d = CalibratedLogit(D) if saved["method"] == "head" else D
    ckpt.load_state(d, saved["state"], what="calibrated logit", path=path)
    return G, d.eval()


def sample(run, sampler="ddls", n=50_000, seed=0, device=None, name=None, **options):
    """Draw ``n`` samples with ``sampler`` ('generator', 'drs', 'mh', 'ddls') from a calibrated run and
    write ``samples_<name>.pt`` (uint8 images, latents, settings). DDLS defaults: :data:`PAPER_DDLS`,
    bf16 on CUDA; DRS: log M at the 0.99 quantile of the logits. Returns the :class:`ebmlib.samplers.Samples` (``x`` as float images in [-1, 1])."""
    G, d = load_calibrated(run, device)
    if sampler == "ddls":
        options = {**PAPER_DDLS, "amp": True, **options}
    elif sampler == "drs":
        # exact DRS (M = the largest logit) accepts almost nothing on images: practical DRS caps log M
        options = {"m_quantile": 0.99, **options}
    start = time.perf_counter()
    out = run_sampler(sampler, G, d, n, seed=seed, **options)
    info = {k: v for k, v in out.info.items() if k != "snapshots"}
    torch.save({"images": cifar10.to_uint8(out.x).cpu(), "z": out.z.cpu(), "sampler": sampler, "options": options,
                "seed": seed, "seconds": time.perf_counter() - start, "info": info},
               Path(run) / f"samples_{name or sampler}.pt")
    return out


def load_samples(path):
    """The dict that ``sample`` wrote: ``images`` uint8 (N, 3, 32, 32), ``z``, ``sampler``, ``options``."""
    return torch.load(path, map_location="cpu", weights_only=True)


def extractor(kind="classifier", data=None, tiny=False, device=None, steps=None, width=32, batch_size=256,
              inception_weights=None, progress=None):
    """A feature extractor for scores: 'inception' (the FID Inception-v3 from local weights: FID and IS)
    or 'classifier' (a CIFAR-10 classifier trained here on the training split: the Fréchet classifier
    distance and the classifier score, never called FID or IS). ``steps``, ``width`` and ``batch_size``
    go to ``metrics.train_classifier``; the classifier is cached next to the data as
    ``classifier_<steps>.pt`` (``classifier_<steps>_w<width>_b<batch_size>.pt`` for other widths or batches)."""
    device = torch.device(device) if device is not None else default_device()
    if kind == "inception":
        return metrics.load_inception(inception_weights, device)
    if kind != "classifier":
        raise ValueError(f"unknown extractor {kind!r}; choose 'classifier' or 'inception'")
    steps = steps or (300 if tiny else 5000)
    folder = Path(data or ("data/tiny" if tiny else cifar10.data_dir()))
    suffix = "" if (width, batch_size) == (32, 256) else f"_w{width}_b{batch_size}"
    cache = folder / f"classifier_{steps}{suffix}.pt"
    model = metrics.CifarClassifier(width=width)
    if cache.exists():
        model.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        model = model.to(device).eval()
    else:
        images, labels = load_images(data, tiny=tiny)
        model = metrics.train_classifier(images, labels, steps=steps, batch_size=batch_size, width=width,
                                         device=device, progress=progress)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), cache)
    return metrics.ClassifierExtractor(model)


def evaluate(samples, data=None, tiny=False, kind="classifier", device=None, extractor_module=None, reference=None,
             **options):
    """Score uint8 or float samples (N, 3, 32, 32) against CIFAR-10's training split with one extractor;
    returns the ``ebmlib.metrics.score`` dict (every score with its sample counts). ``reference``: the
    training split's statistics under that extractor (``metrics.reference_stats``), computed here when
    not given; pass them when scoring several sample sets, since they cost a pass over 50,000 images."""
    ext = extractor_module or extractor(kind, data=data, tiny=tiny, device=device, **options)
    if reference is None:
        reference = metrics.reference_stats(load_images(data, tiny=tiny)[0], ext)
    return metrics.score(samples, reference, ext)
