"""CIFAR-10 data: the archive format, checksums, bad archives, offline errors, the cache, and the fake set."""
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch

from ebmlib import cifar10
from ebmlib.cifar10 import ARCHIVE_NAME, ArchiveError, DownloadError

N_TRAIN, N_TEST = 60, 20


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A fake archive (and its md5) built once for the module; tests copy it into their own folder."""
    path = tmp_path_factory.mktemp("built") / ARCHIVE_NAME
    md5 = cifar10.make_fake_archive(path, n_train=N_TRAIN, n_test=N_TEST, seed=0)
    return path, md5


@pytest.fixture
def root(tmp_path, built):
    """A data folder holding a copy of the fake archive under the official name."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(built[0], folder / ARCHIVE_NAME)
    return folder


def unpickle_member(archive, name):
    with tarfile.open(archive, "r:gz") as tar:
        return pickle.load(tar.extractfile(f"{cifar10.FOLDER}/{name}"), encoding="bytes")


def write_tar(path, members):
    """A tar.gz holding ``members`` {name: bytes}; returns its md5."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return cifar10.md5sum(path)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# --- data_dir and the fake archive ------------------------------------------------------------------

def test_data_dir_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("EBMLIB_DATA", str(tmp_path / "env"))
    assert cifar10.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert cifar10.data_dir() == tmp_path / "env"
    monkeypatch.delenv("EBMLIB_DATA")
    assert cifar10.data_dir() == cifar10.Path("data")


def test_fake_archive_has_the_official_layout_and_a_reproducible_md5(built, tmp_path):
    path, md5 = built
    assert md5 == cifar10.md5sum(path)
    with tarfile.open(path, "r:gz") as tar:
        names = set(tar.getnames())
    expected = {f"cifar-10-batches-py/{n}" for n in
                ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"]}
    assert names == expected
    batch = unpickle_member(path, "data_batch_1")
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (N_TRAIN // 5, 3072)
    assert isinstance(batch[b"labels"], list) and len(batch[b"labels"]) == N_TRAIN // 5
    assert unpickle_member(path, "test_batch")[b"data"].shape == (N_TEST, 3072)
    # same arguments, same bytes; another seed, other images
    assert cifar10.make_fake_archive(tmp_path / "a.tar.gz", n_train=N_TRAIN, n_test=N_TEST, seed=0) == md5
    assert cifar10.make_fake_archive(tmp_path / "b.tar.gz", n_train=N_TRAIN, n_test=N_TEST, seed=1) != md5


@pytest.mark.parametrize("kw", [dict(n_train=4), dict(n_test=0), dict(n_train=2.5)])
def test_fake_archive_rejects_bad_sizes(tmp_path, kw):
    with pytest.raises(ValueError):
        cifar10.make_fake_archive(tmp_path / "x.tar.gz", **kw)


# --- load: good archive, cache ------------------------------------------------------------------------

def test_load_decodes_the_batches_in_order(root, built):
    md5 = built[1]
    images, labels = cifar10.load(root, train=True, download=False, md5=md5)
    assert images.shape == (N_TRAIN, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (N_TRAIN,) and labels.dtype == torch.int64
    assert set(labels.tolist()) <= set(range(10))
    # an independent decoding of batch 1: a row is 1024 red, then green, then blue values, row-major
    first = unpickle_member(root / ARCHIVE_NAME, "data_batch_1")
    row = first[b"data"][3]
    assert np.array_equal(images[3, 0].numpy(), row[:1024].reshape(32, 32))
    assert np.array_equal(images[3, 2].numpy(), row[2048:].reshape(32, 32))
    assert labels[: len(first[b"labels"])].tolist() == first[b"labels"]
    last = unpickle_member(root / ARCHIVE_NAME, "data_batch_5")
    assert labels[-len(last[b"labels"]):].tolist() == last[b"labels"]
    test_images, test_labels = cifar10.load(root, train=False, download=False, md5=md5)
    assert test_images.shape == (N_TEST, 3, 32, 32) and test_labels.shape == (N_TEST,)
    assert test_labels.tolist() == unpickle_member(root / ARCHIVE_NAME, "test_batch")[b"labels"]


def test_cache_is_reused_without_reading_the_archive(root, built, monkeypatch):
    first = cifar10.load(root, download=False, md5=built[1])
    assert (root / "cifar-10-train.pt").exists() and (root / "cifar-10-test.pt").exists()

    def fail(*args, **kwargs):
        raise AssertionError("the archive was read again")

    monkeypatch.setattr(cifar10, "read_archive", fail)
    monkeypatch.setattr(cifar10, "md5sum", fail)
    again = cifar10.load(root, download=False, md5=built[1])
    test = cifar10.load(root, train=False, download=False, md5=built[1])
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert test[0].shape[0] == N_TEST


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_cache_is_detected_and_rebuilt(root, built, damage):
    images, labels = cifar10.load(root, download=False, md5=built[1])
    cache = root / "cifar-10-train.pt"
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a cache")
    with pytest.warns(UserWarning, match="cifar-10-train.pt"):
        again = cifar10.load(root, download=False, md5=built[1])
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    assert cache.read_bytes() != b"not a cache" and len(cache.read_bytes()) >= len(data) - 64


def test_cache_of_another_archive_is_not_used(root, built, tmp_path):
    fake0 = cifar10.load(root, download=False, md5=built[1])
    md5_other = cifar10.make_fake_archive(root / ARCHIVE_NAME, n_train=N_TRAIN, n_test=N_TEST, seed=7)
    other = cifar10.load(root, download=False, md5=md5_other)
    assert not torch.equal(fake0[0], other[0])
    assert torch.equal(other[0], cifar10.read_archive(root / ARCHIVE_NAME)["train"][0])


# --- bad archives -----------------------------------------------------------------------------------

def test_wrong_md5_is_an_error_and_the_file_is_kept_and_not_used(root, built):
    before = (root / ARCHIVE_NAME).read_bytes()
    with pytest.raises(ArchiveError) as info:
        cifar10.load(root, download=False)  # the official md5: the fake archive does not match it
    message = str(info.value)
    assert str(root / ARCHIVE_NAME) in message and cifar10.MD5 in message and built[1] in message
    assert "delete it" in message
    assert (root / ARCHIVE_NAME).read_bytes() == before
    assert not (root / "cifar-10-train.pt").exists()


def test_truncated_archive_with_official_name_fails_the_md5(root, built):
    data = (root / ARCHIVE_NAME).read_bytes()
    (root / ARCHIVE_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="expected " + built[1]):
        cifar10.load(root, download=False, md5=built[1])
    assert (root / ARCHIVE_NAME).exists()


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_tar_is_an_error_even_when_its_md5_matches(root, cut):
    data = (root / ARCHIVE_NAME).read_bytes()
    (root / ARCHIVE_NAME).write_bytes(data[: int(len(data) * cut)])
    md5 = cifar10.md5sum(root / ARCHIVE_NAME)
    with pytest.raises(ArchiveError, match="not a readable CIFAR-10 archive") as info:
        cifar10.load(root, download=False, md5=md5)
    assert str(root / ARCHIVE_NAME) in str(info.value)
    assert (root / ARCHIVE_NAME).exists() and not (root / "cifar-10-train.pt").exists()


def test_not_a_gzip_file_is_an_error(tmp_path):
    (tmp_path / ARCHIVE_NAME).write_bytes(b"<html>404 not found</html>")
    md5 = cifar10.md5sum(tmp_path / ARCHIVE_NAME)
    with pytest.raises(ArchiveError, match="not a readable CIFAR-10 archive"):
        cifar10.load(tmp_path, download=False, md5=md5)


def test_archive_missing_a_batch_names_it(tmp_path, built):
    members = {f"cifar-10-batches-py/{n}": pickle.dumps(unpickle_member(built[0], n), 2)
               for n in cifar10.TRAIN_BATCHES}  # no test_batch
    md5 = write_tar(tmp_path / ARCHIVE_NAME, members)
    with pytest.raises(ArchiveError, match="cifar-10-batches-py/test_batch"):
        cifar10.load(tmp_path, download=False, md5=md5)


def test_batch_of_the_wrong_dtype_is_an_error(tmp_path, built):
    members = {f"cifar-10-batches-py/{n}": pickle.dumps(unpickle_member(built[0], n), 2)
               for n in cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)}
    bad = unpickle_member(built[0], "data_batch_2")
    bad[b"data"] = bad[b"data"].astype(np.float32)
    members["cifar-10-batches-py/data_batch_2"] = pickle.dumps(bad, 2)
    md5 = write_tar(tmp_path / ARCHIVE_NAME, members)
    with pytest.raises(ArchiveError, match="data_batch_2.*uint8"):
        cifar10.load(tmp_path, download=False, md5=md5)


# --- missing archive, download -------------------------------------------------------------------------

def test_missing_archive_without_download_names_the_url_and_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        cifar10.load(tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert cifar10.URL in message and str((tmp_path / "nowhere").resolve()) in message
    assert ARCHIVE_NAME in message


def test_offline_download_names_the_url_and_the_folder_and_leaves_nothing(tmp_path):
    url = (tmp_path / "no-such-server" / ARCHIVE_NAME).as_uri()  # fails like an unreachable host
    with pytest.raises(DownloadError) as info:
        cifar10.load(tmp_path / "data", download=True, url=url, progress=False)
    message = str(info.value)
    assert url in message and str((tmp_path / "data").resolve()) in message
    assert not (tmp_path / "data").exists()  # the folder it made for the download is gone again
    (tmp_path / "mine").mkdir()
    with pytest.raises(DownloadError):
        cifar10.download(tmp_path / "mine", url=url, progress=False)
    assert list((tmp_path / "mine").iterdir()) == []  # a folder that was there stays, empty


def test_the_default_url_is_read_when_called(tmp_path, monkeypatch):
    url = (tmp_path / "mirror" / ARCHIVE_NAME).as_uri()
    monkeypatch.setattr(cifar10, "URL", url)
    with pytest.raises(DownloadError, match="mirror"):
        cifar10.download(tmp_path / "data", progress=False)
    with pytest.raises(FileNotFoundError, match="mirror"):
        cifar10.load(tmp_path / "data", download=False)


def test_download_from_a_url_checks_the_md5_and_loads(tmp_path, built):
    url = built[0].as_uri()
    images, labels = cifar10.load(tmp_path / "data", url=url, md5=built[1], progress=False)
    assert images.shape == (N_TRAIN, 3, 32, 32)
    assert cifar10.md5sum(tmp_path / "data" / ARCHIVE_NAME) == built[1]
    assert leftovers(tmp_path / "data") == []
    # an archive already there is checked, not fetched again
    assert cifar10.download(tmp_path / "data", url="file:///nonexistent", md5=built[1]) == \
        tmp_path / "data" / ARCHIVE_NAME


def test_download_with_the_wrong_md5_is_kept_aside_and_not_used(tmp_path, built):
    folder = tmp_path / "data"
    with pytest.raises(ArchiveError) as info:
        cifar10.download(folder, url=built[0].as_uri(), md5="0" * 32, progress=False)
    message = str(info.value)
    assert "0" * 32 in message and built[1] in message and built[0].as_uri() in message
    kept = folder / (ARCHIVE_NAME + ".bad-md5")
    assert str(kept) in message and kept.read_bytes() == built[0].read_bytes()
    assert not (folder / ARCHIVE_NAME).exists() and leftovers(folder) == []


# --- tiny -------------------------------------------------------------------------------------------

def test_tiny_builds_and_loads_and_never_overwrites_a_real_archive(tmp_path):
    images, labels = cifar10.tiny(tmp_path / "fake", n_train=50, n_test=10, seed=3)
    assert images.shape == (50, 3, 32, 32) and labels.shape == (50,)
    assert cifar10.tiny(tmp_path / "fake", train=False, n_train=50, n_test=10, seed=3)[0].shape[0] == 10
    bigger = cifar10.tiny(tmp_path / "fake", n_train=100, n_test=10, seed=3)[0]
    assert bigger.shape[0] == 100  # other sizes replace the old fake and its cache
    real = tmp_path / "real"
    real.mkdir()
    (real / ARCHIVE_NAME).write_bytes(b"pretend this is the real archive")
    with pytest.raises(ArchiveError, match="left alone"):
        cifar10.tiny(real)
    assert (real / ARCHIVE_NAME).read_bytes() == b"pretend this is the real archive"


def test_fake_classes_differ_in_colour():
    labels = np.repeat(np.arange(10), 20)
    images = cifar10.fake_images(labels, np.random.default_rng(0)).astype(np.float64)
    brightest = images.reshape(200, 3, -1).max(axis=2).reshape(10, 20, 3).mean(axis=1)  # (class, channel)
    gaps = np.linalg.norm(brightest[:, None] - brightest[None], axis=2)
    assert gaps[~np.eye(10, dtype=bool)].min() > 20
