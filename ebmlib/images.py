"""Image tensors and image data sets: conversions, flips, grids, batches on the device, and the registry.

Units: data sets hold images as uint8 (N, C, H, W) in [0, 255]; networks see float32 in [-1, 1]
(``to_float``: x / 127.5 - 1); ``to_uint8`` is its inverse (rounded, clipped).

``load_images(name, root, train)`` is the one door to every image data set (``DATASETS``): the pipeline,
the command line and the chapters name a data set and never a file format.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import cifar10, digits
from ._checks import positive_int
from ._files import atomic_write

# --- conversions, flips, grids ---------------------------------------------------------------------


def to_float(images):
    """uint8 images in [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1), on the same device, same shape."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(x):
    """float images in [-1, 1] -> uint8 in [0, 255], rounded; values outside [-1, 1] are clipped."""
    return ((x.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def as_uint8(images):
    """uint8 images (N, C, H, W) as they are; float images (read as [-1, 1], a generator's range) quantised
    to uint8. Real data is uint8, so generated samples are quantised the same way before a net scores them."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a tensor (N, C, H, W), got {tuple(getattr(images, 'shape', ()))}")
    return images if images.dtype == torch.uint8 else to_uint8(images)


def uint8_batches(images, batch_size):
    """Yield uint8 batches of at most ``batch_size`` from a tensor (N, C, H, W), uint8 or float in [-1, 1],
    or from an iterable of such tensors (a generator producing samples batch by batch: never all in memory)."""
    positive_int(batch_size, "batch_size")
    if isinstance(images, torch.Tensor):
        images = as_uint8(images)
        for start in range(0, images.shape[0], batch_size):
            yield images[start:start + batch_size]
    else:
        for chunk in images:
            yield as_uint8(chunk)


def flip_random(x, generator):
    """Flip each image of a batch (B, C, H, W) left-right with probability 1/2, in one op on its device.

    The coin flips are drawn on ``generator``'s device (a CPU generator may drive a GPU batch)."""
    device = generator.device if generator is not None else x.device
    flip = (torch.rand(x.shape[0], device=device, generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def image_grid(images, nrow=8, pad=2):
    """Tile images (N, C, H, W) in [-1, 1] into one uint8 array (rows*(H+pad)+pad, nrow*(W+pad)+pad, C)."""
    x = to_uint8(images.detach().cpu())
    n, c, h, w = x.shape
    rows = -(-n // nrow)
    grid = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        top, left = pad + (i // nrow) * (h + pad), pad + (i % nrow) * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def save_grid(images, path, nrow=8):
    """Save images (N, 3, H, W) (or (N, 1, H, W)) in [-1, 1] as one PNG grid at ``path`` (atomically)."""
    from matplotlib.image import imsave

    grid = image_grid(images, nrow=nrow)
    gray = grid.shape[-1] == 1
    with atomic_write(path) as f:
        imsave(f, grid[..., 0] if gray else grid, cmap="gray" if gray else None, format="png")
    return Path(path)


# --- batches on the device ---------------------------------------------------------------------------


class Batches:
    """An endless stream of random batches drawn from images held on the device, no DataLoader.

    ``images``: uint8 (N, C, H, W) (all of CIFAR-10's train split is 150 MB as uint8: it stays on the
    GPU); ``labels``: optional int64 (N,). Each epoch is a fresh permutation on the device; a batch is
    ``batch_size`` images converted to float32 in [-1, 1] and (``flip=True``) flipped left-right at
    random, image by image, in one op on the whole batch. ``next(batches)`` returns x (B, C, H, W), or
    (x, y) when labels were given. The same ``seed`` gives the same batches on the CPU.
    """

    def __init__(self, images, batch_size, labels=None, device=None, seed=0, flip=True):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            what = f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}"
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {what}")
        positive_int(batch_size, "batch_size")
        if batch_size > images.shape[0]:
            raise ValueError(f"batch_size {batch_size} is larger than the {images.shape[0]} images")
        if labels is not None and tuple(labels.shape) != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)
        self.labels = None if labels is None else labels.to(self.device, torch.int64)
        self.batch_size, self.flip = batch_size, flip
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._order, self._pos, self.epoch = None, 0, 0  # epoch: permutations used up so far

    def state_dict(self):
        """Where the stream stands: the generator's state, the current permutation and the position in it,
        so that a resumed training run draws exactly the batches an uninterrupted one would."""
        return {"generator": self.generator.get_state(), "epoch": self.epoch, "pos": self._pos,
                "order": None if self._order is None else self._order.cpu()}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (the images themselves are not part of the state)."""
        order = state["order"]
        if order is not None and (order.numel() != self.images.shape[0] or state["pos"] > order.numel()):
            raise ValueError(f"this batch state belongs to a data set of {order.numel()} images, not "
                             f"{self.images.shape[0]}: resume with the same images")
        self.generator.set_state(state["generator"])
        self.epoch, self._pos = state["epoch"], state["pos"]
        self._order = None if order is None else order.to(self.device)

    def __len__(self):
        """Full batches in one epoch (the tail of each permutation is dropped)."""
        return self.images.shape[0] // self.batch_size

    def __iter__(self):
        return self

    def __next__(self):
        if self._order is None or self._pos + self.batch_size > self._order.numel():
            self.epoch += self._order is not None
            self._order = torch.randperm(self.images.shape[0], device=self.device, generator=self.generator)
            self._pos = 0
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        x = to_float(self.images[idx])
        if self.flip:
            x = flip_random(x, self.generator)
        return x if self.labels is None else (x, self.labels[idx])


def real_sampler(images, device=None, flip=True):
    """``f(n, generator) -> (n, C, H, W)`` float images in [-1, 1], drawn at random (flipped left-right at
    random when ``flip``) from uint8 ``images`` kept on ``device``: the real-data argument of
    ``ebmlib.calibrate``."""
    device = torch.device(device) if device is not None else images.device
    held = images.to(device)

    def draw(n, generator=None):
        idx = torch.randint(held.shape[0], (n,), generator=generator).to(device)
        x = to_float(held[idx])
        return flip_random(x, generator) if flip else x

    return draw


# --- the registry of image data sets ---------------------------------------------------------------


@dataclass(frozen=True)
class ImageDataset:
    """A named image data set: ``load(root, train) -> (uint8 (N, *shape), int64 labels (N,))``.

    ``folder(root)`` is where it lives (and where caches made from it, such as a trained feature
    classifier, are kept): ``root`` when given, else the data set's default folder.
    ``classifier_steps``, ``classifier_width``, ``classifier_batch``: how the feature classifier that
    scores samples of it is trained (``ebmlib.features.train_classifier``).
    ``flip``: whether a left-right flip keeps an image in the data set (true for photographs, false for
    digits), so whether training batches may flip.
    ``classifier_on``: another data set whose classifier reads each channel of these images (stacked
    digits are scored by the digit classifier, channel by channel); None: a classifier of this one.
    """

    name: str
    shape: tuple
    n_classes: int
    description: str
    loader: Callable
    default_folder: Callable
    classifier_steps: int = 5000
    classifier_width: int = 32
    classifier_batch: int = 256
    flip: bool = True
    classifier_on: str = None

    def folder(self, root=None) -> Path:
        return Path(root).expanduser() if root is not None else self.default_folder()

    def load(self, root=None, train=True):
        return self.loader(self.folder(root), train)


DATASETS = {d.name: d for d in (
    ImageDataset("cifar10", cifar10.IMAGE_SHAPE, len(cifar10.CLASSES),
                 "CIFAR-10, 50,000 + 10,000 RGB images 32x32 (downloaded once, md5-checked)",
                 lambda root, train: cifar10.load(root, train=train), cifar10.data_dir),
    ImageDataset("tiny", cifar10.IMAGE_SHAPE, len(cifar10.CLASSES),
                 "a small fake data set in the CIFAR-10 archive format (coloured discs, 1,000 + 200 images): "
                 "for tests and smoke runs only",
                 lambda root, train: cifar10.tiny(root, train=train), lambda: cifar10.data_dir() / "tiny",
                 classifier_steps=300),
    ImageDataset("digits", digits.IMAGE_SHAPE, digits.N_CLASSES,
                 "the UCI handwritten digits, 1,347 + 450 grey images 8x8 (shipped with scikit-learn, SHA-256-checked)",
                 digits.load, lambda: cifar10.data_dir() / "digits", classifier_steps=300, classifier_width=16,
                 classifier_batch=128, flip=False),
    ImageDataset("stacked-digits", digits.STACKED_SHAPE, digits.N_MODES,
                 "three independent handwritten digits in the RGB channels, 8x8: 1,000 modes, "
                 "50,000 + 10,000 images", digits.load_stacked, lambda: cifar10.data_dir() / "digits",
                 flip=False, classifier_on="digits"),
)}


def dataset(name) -> ImageDataset:
    """The registered image data set called ``name``; a ValueError lists the choices."""
    if name not in DATASETS:
        raise ValueError(f"unknown image data set {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def load_images(name="cifar10", root=None, train=True):
    """The images and labels of a registered data set: (uint8 (N, C, H, W) in [0, 255], int64 (N,)).

    ``root``: the folder that holds it (default: the data set's own, e.g. ``$EBMLIB_DATA`` or ``./data``
    for CIFAR-10); ``train``: the training split, else the test split.
    """
    return dataset(name).load(root, train=train)
