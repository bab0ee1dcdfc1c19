"""The handwritten digits (checksum, parsing, the split) and stacked digits (1,000 modes)."""
import gzip
import hashlib

import pytest
import torch

from ebmlib import digits, images


def _csv(rows):
    return gzip.compress("\n".join(",".join(str(v) for v in row) for row in rows).encode())


def test_the_shipped_file_has_the_recorded_checksum():
    data = digits.csv_bytes()
    assert hashlib.sha256(data).hexdigest() == digits.SHA256 and len(data) == 57523


def test_a_file_with_another_checksum_is_refused_naming_both():
    with pytest.raises(digits.DigitsUnavailable, match=f"SHA-256 {hashlib.sha256(b'x').hexdigest()}.*{digits.SHA256}"):
        digits.check_sha256(b"x")


def test_missing_scikit_learn_says_what_to_install(monkeypatch):
    import importlib.resources

    def no_package(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", no_package)
    with pytest.raises(digits.DigitsUnavailable, match="pip install scikit-learn"):
        digits.csv_bytes()


def test_parse_scales_counts_to_uint8_and_keeps_the_layout():
    row = [0] * 64 + [7]
    row[0], row[9], row[63] = 16, 8, 1  # pixel (0, 0), pixel (1, 1), pixel (7, 7)
    images_, labels = digits.parse(_csv([row, [16] * 64 + [0]]))
    assert images_.dtype == torch.uint8 and images_.shape == (2, 1, 8, 8) and labels.tolist() == [7, 0]
    assert images_[0, 0, 0, 0] == 255 and images_[0, 0, 1, 1] == 128 and images_[0, 0, 7, 7] == 16
    assert images_[0].sum() == 255 + 128 + 16 and (images_[1] == 255).all()


def test_parse_rejects_a_table_of_another_shape():
    with pytest.raises(digits.DigitsUnavailable, match="64 pixel counts"):
        digits.parse(_csv([[1, 2, 3]]))


def test_the_split_is_fixed_stratified_and_disjoint():
    x_train, y_train = digits.load(train=True)
    x_test, y_test = digits.load(train=False)
    assert (len(y_train), len(y_test)) == (1347, 450) and x_train.shape[1:] == digits.IMAGE_SHAPE
    everything, labels = digits.parse(digits.csv_bytes())
    train_idx, test_idx = digits.split_indices(labels, True), digits.split_indices(labels, False)
    assert len(set(train_idx.tolist()) | set(test_idx.tolist())) == 1797
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    assert torch.equal(x_test, everything[test_idx]) and torch.equal(y_test, labels[test_idx])
    per_class = torch.bincount(y_test, minlength=10).float() / torch.bincount(labels, minlength=10)
    assert per_class.min() > 0.24 and per_class.max() < 0.26  # a quarter of every digit
    assert torch.equal(digits.load(train=False)[0], x_test)  # the same split on every call


def test_stacking_puts_three_labelled_digits_into_the_channels():
    x, y = digits.load(train=False)
    stacked, modes = digits.stack(x, y, 500, seed=3)
    assert stacked.shape == (500, 3, 8, 8) and stacked.dtype == torch.uint8 and modes.shape == (500,)
    channel_digits = digits.mode_digits(modes)
    assert torch.equal(channel_digits[:, 0] * 100 + channel_digits[:, 1] * 10 + channel_digits[:, 2], modes)
    flat = x.flatten(1)
    for i in range(20):  # every channel is one of the digits, with the label the mode says
        for c in range(3):
            matches = (flat == stacked[i, c].flatten()).all(1).nonzero().squeeze(1)
            assert len(matches) > 0 and channel_digits[i, c].item() in y[matches].tolist()
    assert torch.equal(digits.stack(x, y, 500, seed=3)[0], stacked)
    assert not torch.equal(digits.stack(x, y, 500, seed=4)[0], stacked)


def test_stack_rejects_colour_images():
    with pytest.raises(ValueError, match=r"\(M, 1, H, W\)"):
        digits.stack(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), 2)


def test_stacked_digits_hold_every_mode_about_equally_often():
    x, modes = images.load_images("stacked-digits")
    assert x.shape == (50_000, 3, 8, 8) and x.dtype == torch.uint8
    counts = torch.bincount(modes, minlength=1000)
    assert (counts > 0).all() and counts.sum() == 50_000
    assert counts.float().mean() == 50 and counts.max() < 90  # Poisson(50) tails, not a skewed sampler
    x_test, modes_test = images.load_images("stacked-digits", train=False)
    assert x_test.shape == (10_000, 3, 8, 8) and len(modes_test.unique()) > 990
