"""CIFAR-10: download, check, extract once, cache, and draw batches on the device.

The official archive is a gzipped tar of pickled batches (``cifar-10-batches-py/data_batch_1..5`` and
``test_batch``), each a dict with ``b"data"``: uint8 (n, 3072) rows in channel-first order (1024 red,
1024 green, 1024 blue values, each a 32x32 image in row-major order) and ``b"labels"``: n ints in 0..9.

``load`` reads the archive once and caches the uint8 arrays next to it (``cifar-10-train.pt``,
``cifar-10-test.pt``); later calls read only the cache. ``make_fake_archive`` writes a small archive of
the same format (coloured discs, one colour a class) for tests and for smoke runs of the GPU chapters.
Images are uint8 (N, 3, 32, 32) in [0, 255]; ``ebmlib.images`` converts them and registers both sets.
"""
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from ._checks import positive_int
from ._files import atomic_write, publish, temporary_beside, torch_save
from ._runtime import progress_bar

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)
_CACHE_FORMAT = 1


class ArchiveError(RuntimeError):
    """The archive (or a download of it) is damaged, the wrong file, or not in the CIFAR-10 format."""


class DownloadError(RuntimeError):
    """The archive is missing and could not be downloaded (offline, or the URL failed)."""


def data_dir(root=None) -> Path:
    """The folder that holds the archive and its caches: ``root``, else ``$EBMLIB_DATA``, else ``./data``."""
    if root is None:
        root = os.environ.get("EBMLIB_DATA") or "data"
    return Path(root).expanduser()


def md5sum(path, chunk_bytes=1 << 20) -> str:
    """Hex md5 digest of the file at ``path``, read in chunks of ``chunk_bytes``."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _missing_message(folder, url, reason=None):
    why = f" ({reason})" if reason else ""
    return (f"CIFAR-10 is not in {folder.resolve()} and could not be downloaded from {url}{why}. "
            f"Download {url} on a machine with network access and put the file {ARCHIVE_NAME} (not extracted) "
            f"in the folder {folder.resolve()}; or set EBMLIB_DATA to the folder that holds it.")


def check_md5(path, md5) -> None:
    """Raise ArchiveError if the file's md5 is not ``md5``; the file is left in place and not used."""
    actual = md5sum(path)
    if actual != md5:
        raise ArchiveError(
            f"{path} has md5 {actual}, expected {md5}: it is damaged or not the CIFAR-10 archive. "
            f"It was not used and has been left in place; delete it and run again to download a fresh copy.")


def download(root=None, url=None, md5=MD5, progress=None) -> Path:
    """Download the archive into ``data_dir(root)`` and check its md5; returns the archive's path.

    An archive already there is checked, not downloaded again. The download goes to a temporary file
    that is renamed only when complete and correct, so a crash never leaves a half-written archive
    under the real name. A download with the wrong md5 is kept as ``<archive>.bad-md5`` (never used,
    never silently deleted) and an ArchiveError names it with both checksums. No network: DownloadError
    naming the URL and the folder to put the archive in. ``url``: default :data:`URL`. ``progress``: a
    progress bar (default: on, off in smoke mode).
    """
    url = url or URL
    folder = data_dir(root)
    archive = folder / ARCHIVE_NAME
    if archive.exists():
        check_md5(archive, md5)
        return archive
    created = not folder.exists()
    with temporary_beside(archive) as tmp:
        try:
            with open(tmp, "wb") as out:
                actual = _stream(url, out, progress)
        except (urllib.error.URLError, OSError, ValueError) as e:
            message = _missing_message(folder, url, reason=f"{type(e).__name__}: {e}")
            tmp.unlink()
            if created:  # leave no empty folder behind where there was none
                folder.rmdir()
            raise DownloadError(message) from e
        if actual != md5:
            bad = publish(tmp, archive.with_name(ARCHIVE_NAME + ".bad-md5"))
            raise ArchiveError(
                f"the file downloaded from {url} has md5 {actual}, expected {md5}. It was not used; it is kept "
                f"as {bad} for inspection. Delete it and run again, or download the archive by hand into {folder}.")
        return publish(tmp, archive)


def _stream(url, out, progress):
    """Copy ``url`` into the open file ``out`` with a progress bar; returns the md5 of what was written."""
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with progress_bar(total=total, unit="B", unit_scale=True, desc=ARCHIVE_NAME, progress=progress,
                          leave=True) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def _cache_path(folder, train):
    return folder / f"cifar-10-{'train' if train else 'test'}.pt"


def _read_cache(path, md5):
    """The cached (images, labels), or None when the cache is absent, stale or unreadable."""
    if not path.exists():
        return None
    try:
        cache = torch.load(path, weights_only=True)
        images, labels = cache["images"], cache["labels"]
        ok = (cache.get("format") == _CACHE_FORMAT and images.dtype == torch.uint8
              and images.shape[1:] == IMAGE_SHAPE and labels.dtype == torch.int64
              and labels.shape == (images.shape[0],))
    except Exception as e:  # a truncated zip, a foreign pickle, a missing key: all mean "rebuild"
        warnings.warn(f"the cache {path} is unreadable ({type(e).__name__}: {e}); rebuilding it from the archive")
        return None
    if not ok:
        warnings.warn(f"the cache {path} does not hold CIFAR-10 arrays; rebuilding it from the archive")
        return None
    if cache.get("md5") != md5:  # built from another archive (e.g. the fake one): not this data set
        return None
    return images, labels


def _write_cache(path, images, labels, md5):
    torch_save({"images": images, "labels": labels, "md5": md5, "format": _CACHE_FORMAT}, path)


def _decode_batch(raw, name):
    """One pickled batch -> (uint8 (n, 3, 32, 32), int64 (n,)); ValueError says what is wrong."""
    batch = pickle.loads(raw, encoding="bytes")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{name}: data must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.min() < 0 or labels.max() >= len(CLASSES):
        raise ValueError(f"{name}: expected {data.shape[0]} labels in 0..9, got shape {labels.shape}")
    images = torch.from_numpy(data.reshape(-1, *IMAGE_SHAPE).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


def read_archive(archive):
    """Read the train and test splits from the tar.gz at ``archive`` without extracting files to disk.

    Returns {"train": (images, labels), "test": (images, labels)}: images uint8 (N, 3, 32, 32),
    labels int64 (N,). The pickles are trusted only because the archive's md5 was checked first.
    Raises ArchiveError naming the file when it is not a readable CIFAR-10 archive.
    """
    wanted = {f"{FOLDER}/{name}": name for name in TRAIN_BATCHES + (TEST_BATCH,)}
    found = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # one pass over the gzip stream: no seeking back
                if member.name in wanted:
                    found[wanted[member.name]] = _decode_batch(tar.extractfile(member).read(), member.name)
    except (tarfile.TarError, EOFError, zlib.error, OSError, KeyError, ValueError,
            pickle.UnpicklingError) as e:
        raise ArchiveError(f"{archive} is not a readable CIFAR-10 archive ({type(e).__name__}: {e}). "
                           f"Delete it and run again to download a fresh copy.") from e
    missing = [name for name in wanted.values() if name not in found]
    if missing:
        raise ArchiveError(f"{archive} lacks {', '.join(f'{FOLDER}/{m}' for m in missing)}: it is not a complete "
                           f"CIFAR-10 archive. Delete it and run again to download a fresh copy.")
    train = [found[name] for name in TRAIN_BATCHES]
    return {"train": (torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])),
            "test": found[TEST_BATCH]}


_download = download  # load() has an argument named ``download``


def load(root=None, train=True, download=True, url=None, md5=MD5, progress=None):
    """CIFAR-10 as tensors: (images uint8 (N, 3, 32, 32) in [0, 255], labels int64 (N,) in 0..9).

    N is 50000 for ``train=True``, 10000 for the test split. The first call checks the archive's md5,
    reads it and writes a cache of both splits next to it; later calls read only the cache (a cache that
    is unreadable or was built from another archive is rebuilt). A missing archive is downloaded when
    ``download`` is true; otherwise, or offline, the error names the URL and the folder to put it in.
    ``url`` (default :data:`URL`) and ``md5`` select another archive of the same format (tests point them
    at a fake one).
    """
    folder = data_dir(root)
    cached = _read_cache(_cache_path(folder, train), md5)
    if cached is not None:
        return cached
    archive = folder / ARCHIVE_NAME
    if archive.exists():
        check_md5(archive, md5)
    elif download:
        _download(folder, url=url, md5=md5, progress=progress)
    else:
        raise FileNotFoundError(_missing_message(folder, url or URL, reason="download=False"))
    splits = read_archive(archive)
    for split, (images, labels) in splits.items():
        _write_cache(_cache_path(folder, split == "train"), images, labels, md5)
    return splits["train" if train else "test"]


# --- a fake archive of the same format -------------------------------------------------------------

# One clearly different colour a class, so that a small classifier separates them in a few hundred steps.
_PALETTE = np.array([[230, 40, 40], [40, 200, 40], [50, 80, 240], [240, 220, 40], [220, 50, 220],
                     [40, 220, 220], [250, 140, 20], [130, 60, 200], [245, 245, 245], [120, 80, 40]], np.float32)


def fake_images(labels, rng):
    """Structured 32x32 images for the given labels: a class-coloured disc on a dark noisy background.

    ``labels``: int array (n,) in 0..9; ``rng``: a numpy Generator. Returns uint8 (n, 3, 32, 32).
    Disc position, radius, colour shade and background vary from image to image.
    """
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    centre = rng.uniform(9, 23, size=(n, 2, 1, 1)).astype(np.float32)
    radius = rng.uniform(5, 9, size=(n, 1, 1)).astype(np.float32)
    dist = np.sqrt((yy - centre[:, 0]) ** 2 + (xx - centre[:, 1]) ** 2)
    disc = np.clip(radius + 0.5 - dist, 0, 1)[:, None]                     # (n, 1, 32, 32), soft edge
    colour = _PALETTE[labels] * rng.uniform(0.8, 1.0, size=(n, 1)).astype(np.float32)
    background = rng.uniform(0, 60, size=(n, 3, 1, 1)) + rng.normal(0, 8, size=(n, 3, 32, 32))
    images = disc * colour[:, :, None, None] + (1 - disc) * background
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _pickled_batch(images, labels, name):
    batch = {b"batch_label": name.encode(), b"labels": [int(y) for y in labels],
             b"data": images.reshape(len(images), -1), b"filenames": [f"{name}_{i}.png".encode()
                                                                       for i in range(len(images))]}
    return pickle.dumps(batch, protocol=2)  # protocol 2, like the official (Python 2) pickles


def make_fake_archive(path, n_train=1000, n_test=200, seed=0) -> str:
    """Write a small tar.gz in the exact CIFAR-10 format to ``path``; returns its md5 (hex).

    ``n_train`` images are split over the five ``data_batch_i`` (n_train >= 5), ``n_test`` go to
    ``test_batch``; labels cycle evenly through the 10 classes (then shuffled). The bytes depend only on
    the arguments (tar and gzip timestamps are fixed), so the md5 is reproducible. Written to a temporary
    file and renamed into place.
    """
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 5:
        raise ValueError(f"n_train must be an integer >= 5 (one image per train batch at least), got {n_train!r}")
    positive_int(n_test, "n_test")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_train + n_test) % len(CLASSES))
    images = fake_images(labels, rng)
    members = {"batches.meta": pickle.dumps({b"label_names": [c.encode() for c in CLASSES],
                                             b"num_cases_per_batch": -(-n_train // 5), b"num_vis": 3072}, 2)}
    for name, idx in zip(TRAIN_BATCHES, np.array_split(np.arange(n_train), 5)):
        members[name] = _pickled_batch(images[idx], labels[idx], name)
    members[TEST_BATCH] = _pickled_batch(images[n_train:], labels[n_train:], TEST_BATCH)
    with atomic_write(path) as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size, info.mtime, info.mode = len(payload), 0, 0o644
            tar.addfile(info, io.BytesIO(payload))
    return md5sum(path)


def tiny(root, train=True, n_train=1000, n_test=200, seed=0):
    """Write the fake archive into ``root`` and load it: (uint8 (N, 3, 32, 32), int64 (N,)).

    The stand-in for CIFAR-10 in tests and smoke runs (registered as the image data set ``tiny``). ``root`` must be a folder of its own: a marker file
    ``FAKE_DATA`` says that its archive is a fake, and an archive found in a folder without the marker
    (the real one, perhaps damaged) is never overwritten (ArchiveError).
    """
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    archive, marker = folder / ARCHIVE_NAME, folder / "FAKE_DATA"
    if archive.exists() and not marker.exists():
        raise ArchiveError(f"{archive} is not a fake archive written by tiny() (no {marker.name} file next to "
                           f"it); it is left alone. Give tiny() a folder of its own.")
    marker.write_text("The CIFAR-10 archive in this folder is a small fake written by ebmlib.cifar10.tiny().\n")
    # Always rewrite: the bytes depend only on the arguments, so an unchanged fake keeps its md5 and its
    # cache, and a fake of other sizes or another seed replaces the old one.
    md5 = make_fake_archive(archive, n_train=n_train, n_test=n_test, seed=seed)
    return load(folder, train=train, download=False, md5=md5)
