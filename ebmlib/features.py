"""Feature extractors for the scores of ``ebmlib.metrics``, and the classifiers trained here.

Three extractors share one interface: the FID Inception-v3 (TF weights ported by torch-fidelity, loaded
from a local file, optional extra ``inception``), whose scores are the FID and the Inception Score;
``ClassifierExtractor``, a small CNN (``ImageClassifier``) trained here on the data set itself; and
``ChannelClassifierExtractor``, a digit classifier read channel by channel on stacked digits, whose
joint prediction names one of the 1,000 modes. The classifiers' scores are named the "Fréchet
classifier distance" (FCD) and the "classifier score" -- never FID or IS, since they are not comparable
with published numbers. An extractor is an ``nn.Module`` mapping uint8 images (B, C, H, W) to (features
(B, D), logits (B, K)), with a ``name`` and ``score_names`` (distance key, score key).
"""
import contextlib
import os
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import positive_int
from ._runtime import default_device, evaluating, module_device, progress_bar
from .images import Batches, to_float, uint8_batches

# What the extractors are called where a user picks one (``ebmlib.recipes.pipeline.extractor``, the CLI)
EXTRACTORS = {
    "classifier": "a classifier trained here: Fréchet classifier distance and classifier score (not FID/IS)",
    "inception": "the FID Inception-v3 from a local weights file: FID and Inception Score",
}

# --- the FID Inception-v3, from local weights (optional extra) -------------------------------------

INCEPTION_WEIGHTS_ENV = "EBMLIB_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                         "weights-inception-2015-12-05-6726825d.pth")


class InceptionUnavailable(RuntimeError):
    """The Inception-v3 extractor cannot be built: its library or its weights file is missing."""


def inception_weights_path(path=None) -> Path:
    """The weights file: ``path``, else ``$EBMLIB_INCEPTION_WEIGHTS``; InceptionUnavailable when absent."""
    path = path or os.environ.get(INCEPTION_WEIGHTS_ENV)
    advice = (f"Download {INCEPTION_WEIGHTS_URL} (the TF FID Inception-v3 ported to PyTorch by torch-fidelity) "
              f"and pass its path as `weights`, or set {INCEPTION_WEIGHTS_ENV} to it.")
    if not path:
        raise InceptionUnavailable(f"no Inception-v3 weights file given. {advice}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise InceptionUnavailable(f"the Inception-v3 weights file {path} does not exist. {advice}")
    return path


class InceptionExtractor(nn.Module):
    """The FID Inception-v3: uint8 (B, 3, H, W) -> (pool features (B, 2048), logits (B, 1008)).

    Wraps torch-fidelity's port of the TF graph (images resized to 299x299 inside, as in TF), so its FID
    and IS are comparable with numbers computed by the TF code; torchvision's Inception weights are not.
    """

    name = "inception-v3-fid"
    score_names = ("fid", "inception_score")

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        features, logits = self.net(x.to(module_device(self.net)))
        return features, logits


TORCH_WHEEL_INDEX = "https://download.pytorch.org/whl"


def torchvision_requirement(torch_version=None):
    """The torchvision release built for a torch release, and the wheel index that holds it.

    ``torch_version``: default the installed torch's, e.g. '2.13.0+cpu'. Returns (requirement, index):
    ``('torchvision==0.28.*', 'https://download.pytorch.org/whl/cpu')``. torch 2.N pairs with torchvision
    0.(N+15); a build with a local tag (+cpu, +cu126, +rocm6.4, +xpu) comes from PyTorch's index of that
    tag (PyPI's torchvision is built against PyPI's torch, and beside a CPU build of torch fails to import
    with "operator torchvision::nms does not exist"); a torch without a tag pairs with PyPI's (index None).
    """
    version = str(torch_version or torch.__version__)
    match = re.fullmatch(r"2\.(\d+)\.\d+(?:\.post\d+)?(?:\+(cpu|cu\d+|rocm[\d.]+|xpu))?", version)
    if match is None:
        raise ValueError(f"no torchvision release is known to pair with torch {version}: build torchvision "
                         f"from source against it, or install a released torch 2.x")
    minor, tag = match.groups()
    return f"torchvision==0.{int(minor) + 15}.*", (f"{TORCH_WHEEL_INDEX}/{tag}" if tag else None)


def torchvision_pip_args(torch_version=None, index=""):
    """``pip install`` arguments for the torchvision of :func:`torchvision_requirement`, with torch pinned to
    ``torch_version`` (default: the installed one) so that pip keeps it or fails, never replaces it.
    ``index``: '' for the index that torch's build tag names, 'default' for pip's own, or a URL."""
    version = str(torch_version or torch.__version__)
    requirement, tag_index = torchvision_requirement(version)
    index = tag_index if index == "" else (None if index == "default" else index)
    return [requirement, f"torch=={version}", *(["--index-url", index] if index else [])]


def inception_install_advice(torch_version=None):
    """One sentence: the commands that install torch-fidelity and a torchvision for this torch, keeping it."""
    version = str(torch_version or torch.__version__)
    try:
        args = torchvision_pip_args(version)
    except ValueError as e:
        return str(e)
    quoted = " ".join(a if a.startswith("-") or a.startswith("http") else f"'{a}'" for a in args)
    return (f"Install them with `make setup-inception`, or by hand: pip install {quoted} && "
            f"pip install -e '.[inception]' 'torch=={version}'")


def load_inception(weights=None, device=None):
    """The FID Inception-v3 extractor from a local weights file, in eval mode on ``device``.

    ``weights``: path to ``weights-inception-2015-12-05-6726825d.pth``, else ``$EBMLIB_INCEPTION_WEIGHTS``.
    Needs the optional extra ``inception`` (torch-fidelity, and a torchvision built for the installed
    torch: ``make setup-inception``). Raises InceptionUnavailable, in one line, saying what to install or
    download and where to put it, whatever broke: a missing package, a torchvision built for another
    torch ("operator torchvision::nms does not exist"), a shared library that does not load.
    """
    path = inception_weights_path(weights)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as e:  # ImportError, and the RuntimeError or OSError of a torchvision for another torch
        reason = " ".join(str(e).split()) or type(e).__name__
        raise InceptionUnavailable(
            f"the FID Inception-v3 needs torch-fidelity and a torchvision built for torch {torch.__version__}; "
            f"importing them failed ({type(e).__name__}: {reason[:300]}). {inception_install_advice()}") from e
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                          feature_extractor_weights_path=str(path))
    except Exception as e:  # a truncated file, or another network's weights
        raise InceptionUnavailable(f"could not load Inception-v3 weights from {path} ({type(e).__name__}: {e}). "
                                   f"Download a fresh copy of {INCEPTION_WEIGHTS_URL}.") from e
    return InceptionExtractor(net).to(device or "cpu").eval()


# --- a small classifier as a feature extractor -------------------------------------------------------


def _conv_block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class ImageClassifier(nn.Module):
    """A small fast CNN: float images (B, C, H, W) in [-1, 1] of ``in_shape`` (C, H, W) -> logits (B, n_classes).

    Three stages of conv-BN-GELU blocks with max-pooling (32 -> 16 -> 8 -> 4 on CIFAR-10, 8 -> 4 -> 2 -> 1
    on digits), then global average pooling to the penultimate features (B, 4 * width) and a linear head.
    ``features(x)`` returns them.
    """

    def __init__(self, width=32, n_classes=10, in_shape=(3, 32, 32)):
        super().__init__()
        positive_int(width, "width")
        if len(in_shape) != 3 or min(in_shape[1:]) < 8:
            raise ValueError(f"in_shape must be (C, H, W) with H, W >= 8, got {tuple(in_shape)}")
        w, self.in_shape = width, tuple(in_shape)
        self.body = nn.Sequential(
            _conv_block(self.in_shape[0], w), _conv_block(w, w), nn.MaxPool2d(2),
            _conv_block(w, 2 * w), _conv_block(2 * w, 2 * w), nn.MaxPool2d(2),
            _conv_block(2 * w, 4 * w), _conv_block(4 * w, 4 * w), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, n_classes)
        self.feature_dim, self.n_classes = 4 * w, n_classes

    def features(self, x):
        """Penultimate features (B, 4 * width) of float images (B, *in_shape) in [-1, 1]."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, self.in_shape))}), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


class ClassifierExtractor(nn.Module):
    """A trained ``ImageClassifier`` as an extractor: uint8 (B, *in_shape) -> (features, logits).

    Its scores are the Fréchet classifier distance (``fcd``) and the classifier score: not FID or IS.
    """

    score_names = ("fcd", "classifier_score")

    def __init__(self, model, name="classifier"):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, x):
        features = self.model.features(to_float(x.to(module_device(self.model))))
        return features, self.model.head(features)


class ChannelClassifierExtractor(nn.Module):
    """A single-channel classifier (K classes) read on each of the C channels of an image:
    uint8 (B, C, H, W) -> (features (B, C * D), joint log-probabilities (B, K^C)).

    The channels are classified independently, so the joint log-probability of the classes (k_1, ..., k_C)
    is the sum of the channels' log-probabilities, laid out with the first channel most significant
    (on stacked digits, class 100 r + 10 g + b: the data set's mode numbering). ``channels`` and
    ``n_classes`` say how to split the joint classes back (``ebmlib.metrics.mode_scores``). Its scores are
    the Fréchet classifier distance and the classifier score over the K^C modes: not FID or IS.
    """

    score_names = ("fcd", "classifier_score")

    def __init__(self, model, channels=3, name="stacked-digit-classifier"):
        super().__init__()
        if model.in_shape[0] != 1:
            raise ValueError(f"the per-channel classifier must read one channel, got in_shape {model.in_shape}")
        self.model, self.channels, self.n_classes, self.name = model, channels, model.n_classes, name

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"images must have shape (B, {self.channels}, H, W), got {tuple(x.shape)}")
        b, c = x.shape[:2]
        single = to_float(x.to(module_device(self.model)).reshape(b * c, 1, *x.shape[2:]))
        features = self.model.features(single)
        log_p = self.model.head(features).float().log_softmax(1).view(b, c, self.n_classes)
        joint = log_p[:, 0]
        for i in range(1, c):  # outer sum: joint[b, k_1..k_i] = joint[b, k_1..k_{i-1}] + log_p[b, i, k_i]
            joint = (joint[:, :, None] + log_p[:, i, None, :]).flatten(1)
        return features.view(b, -1), joint


def train_classifier(images, labels, steps=2000, batch_size=256, device=None, seed=0, width=32, lr=3e-3,
                     progress=None, n_classes=10, flip=True):
    """Train an ``ImageClassifier`` on uint8 images (N, C, H, W) with labels int64 (N,) in 0..``n_classes``-1;
    returns it in eval mode.

    Batches are drawn on the device (``ebmlib.images.Batches``), flipped left-right at random when ``flip``
    (not for digits); Adam with a learning rate that falls linearly to 0 over ``steps``; bf16 autocast on
    CUDA. Deterministic for a ``seed`` on the CPU. The model carries ``model.history``: {"step", "loss",
    "seconds"}.
    """
    positive_int(steps, "steps")
    device = default_device(device)
    torch.manual_seed(seed)  # the initial weights
    model = ImageClassifier(width=width, n_classes=n_classes, in_shape=tuple(images.shape[1:])).to(device)
    batches = Batches(images, batch_size, labels=labels, device=device, seed=seed, flip=flip)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    history, start = {"step": [], "loss": []}, time.perf_counter()
    model.train()
    for step in progress_bar(range(1, steps + 1), progress=progress, desc="classifier"):
        x, y = next(batches)
        with autocast:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % 50 == 0 or step == steps:
            history["step"].append(step)
            history["loss"].append(loss.item())
    history["seconds"] = time.perf_counter() - start
    model.history = history
    return model.eval()


@torch.no_grad()
def _classifier_outputs(model, images, batch_size):
    extractor = ClassifierExtractor(model)
    feats, logits = [], []
    with evaluating(model):
        for x in uint8_batches(images, batch_size):
            f, out = extractor(x)
            feats.append(f.float().cpu())
            logits.append(out.float().cpu())
    return torch.cat(feats), torch.cat(logits)


def classifier_features(model, images, batch_size=500):
    """Penultimate features (N, D) float32 on the CPU of images (uint8, or float in [-1, 1]), in eval mode."""
    return _classifier_outputs(model, images, batch_size)[0]


def classifier_probs(model, images, batch_size=500):
    """Class probabilities (N, n_classes) float32 on the CPU of images (uint8, or float in [-1, 1]), in eval mode."""
    return _classifier_outputs(model, images, batch_size)[1].softmax(1)


def classifier_accuracy(model, images, labels, batch_size=500) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels`` (N,): the check that makes FCD meaningful."""
    predicted = classifier_probs(model, images, batch_size).argmax(1)
    return float((predicted == labels.cpu()).float().mean())
