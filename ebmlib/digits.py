"""Handwritten digits and stacked digits: real images that a CPU can train a GAN on, with countable modes.

``digits``: the 1,797 8x8 handwritten digits of the UCI "Optical Recognition of Handwritten Digits" data
set (Alpaydin and Kaynak, 1998; https://archive.ics.uci.edu/dataset/80, licence CC BY 4.0), in the copy
that scikit-learn ships inside its wheel (``sklearn/datasets/data/digits.csv.gz``, 57 KB): no download.
Each row is 64 pixel counts in 0..16 and the digit's label; the file is checked by its SHA-256. Pixels
are scaled to uint8 (round(v * 255 / 16)), images are (N, 1, 8, 8). A fixed, class-stratified split
holds out a quarter of each class (450 digits) for testing; the rest (1,347) is the training split.

``stacked-digits``: three digits drawn independently (uniformly from one split) into the red, green
and blue channels of one (3, 8, 8) image, the Stacked-MNIST construction: every image belongs to one of
10^3 = 1,000 modes, the mode of (r, g, b) being ``100 r + 10 g + b``. A generator's coverage of those
modes, read off by a digit classifier channel by channel, is a mode count that needs no human.
"""
import gzip
import hashlib
import io

import numpy as np
import torch

from ._checks import positive_int

SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SOURCE = "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits"
IMAGE_SHAPE = (1, 8, 8)
STACKED_SHAPE = (3, 8, 8)
N_CLASSES = 10
N_MODES = N_CLASSES ** STACKED_SHAPE[0]
TEST_FRACTION = 0.25
# how many stacked images each split holds: enough to show every one of the 1,000 modes many times
STACKED_SIZES = {True: 50_000, False: 10_000}


class DigitsUnavailable(RuntimeError):
    """The digits file cannot be found (scikit-learn missing) or is not the expected file."""


def csv_bytes() -> bytes:
    """The bytes of ``digits.csv.gz`` from the installed scikit-learn, checked against :data:`SHA256`."""
    try:
        from importlib.resources import files

        data = (files("sklearn.datasets") / "data" / "digits.csv.gz").read_bytes()
    except (ImportError, FileNotFoundError) as e:
        raise DigitsUnavailable(
            f"the handwritten digits come with scikit-learn, which is missing or incomplete ({e}). Install it: "
            f"pip install scikit-learn (or pip install -e '.[digits]')") from e
    return check_sha256(data)


def check_sha256(data: bytes) -> bytes:
    """``data`` unchanged if its SHA-256 is :data:`SHA256`, else DigitsUnavailable naming both digests."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != SHA256:
        raise DigitsUnavailable(
            f"digits.csv.gz has SHA-256 {actual}, expected {SHA256}: it is not the UCI digits file that "
            f"scikit-learn ships. Reinstall scikit-learn (pip install --force-reinstall scikit-learn).")
    return data


def parse(data: bytes):
    """The gzipped CSV (rows of 64 pixel counts in 0..16, then the label) -> (uint8 (N, 1, 8, 8), int64 (N,))."""
    table = np.loadtxt(io.BytesIO(gzip.decompress(data)), delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape[1] != 65 or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise DigitsUnavailable(f"digits.csv.gz is not 64 pixel counts in 0..16 and a label per row "
                                f"(got {table.shape[1]} columns)")
    pixels = np.rint(table[:, :64] * (255 / 16)).astype(np.uint8)
    images = torch.from_numpy(pixels.reshape(-1, *IMAGE_SHAPE).copy())
    return images, torch.from_numpy(table[:, 64].astype(np.int64))


def split_indices(labels, train=True, test_fraction=TEST_FRACTION, seed=0):
    """Indices (int64) of one split: per class a fixed permutation (``seed``), its last ``test_fraction`` to
    test. Stratified, so both splits hold every digit in the data set's proportions."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(N_CLASSES):
        members = (labels == c).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=g)]
        n_test = round(len(members) * test_fraction)
        chosen.append(members[:len(members) - n_test] if train else members[len(members) - n_test:])
    return torch.cat(chosen).sort().values


def load(root=None, train=True):
    """The digits of one split: (uint8 (N, 1, 8, 8) in [0, 255], int64 labels (N,) in 0..9).

    1,347 training and 450 test digits. ``root`` is unused (the file comes with scikit-learn); it is
    accepted so that every registered data set loads the same way."""
    images, labels = parse(csv_bytes())
    idx = split_indices(labels, train)
    return images[idx], labels[idx]


def stack(images, labels, n, seed=0):
    """``n`` stacked images from single-channel digits: three independent uniform draws a row.

    ``images`` uint8 (M, 1, H, W), ``labels`` int64 (M,) in 0..9. Returns (uint8 (n, 3, H, W), int64 modes
    (n,) in 0..999), the mode of (r, g, b) digits being ``100 r + 10 g + b``. Deterministic in ``seed``."""
    positive_int(n, "n")
    if images.dim() != 4 or images.shape[1] != 1 or labels.shape != (images.shape[0],):
        raise ValueError(f"images must be (M, 1, H, W) with labels (M,), got {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(images.shape[0], (n, 3), generator=g)
    stacked = images[idx.flatten(), 0].view(n, 3, *images.shape[2:])
    digits = labels[idx]
    return stacked, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def mode_digits(modes):
    """Modes (N,) in 0..999 -> their (r, g, b) digits, int64 (N, 3)."""
    modes = torch.as_tensor(modes)
    return torch.stack([modes // 100, modes // 10 % 10, modes % 10], dim=1)


def load_stacked(root=None, train=True):
    """Stacked digits built from one split of the digits: (uint8 (N, 3, 8, 8), int64 modes (N,) in 0..999).

    50,000 training images from the 1,347 training digits, 10,000 test images from the 450 test digits;
    the same images on every call (seed 0 for train, 1 for test)."""
    digits, labels = load(root, train)
    return stack(digits, labels, STACKED_SIZES[bool(train)], seed=0 if train else 1)
