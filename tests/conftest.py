import pytest
import torch

from ebmlib import cifar10, features

# The suite runs beside other jobs on 2 cores; the tensors here are small, so one thread is enough.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fake(tmp_path_factory):
    """The fake CIFAR-10 data of ``cifar10.tiny``: (train (400), test (200)) splits of (images, labels)."""
    root = tmp_path_factory.mktemp("fake")
    return cifar10.tiny(root, n_train=400, n_test=200), cifar10.tiny(root, train=False, n_train=400, n_test=200)


@pytest.fixture(scope="module")
def classifier(fake):
    """A small classifier trained on the fake data (eval mode), trained afresh for each test module so that one
    module's tests cannot change what another's see."""
    (x, y), _ = fake
    return features.train_classifier(x, y, steps=80, batch_size=32, width=8, lr=1e-2, device="cpu", seed=0,
                                     progress=False)


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """A folder for the digits' caches that holds the digit classifier with its registered settings, trained once
    for the session (the pipeline and the image table find it there)."""
    from ebmlib.recipes import pipeline

    root = tmp_path_factory.mktemp("digits")
    pipeline.extractor("classifier", "stacked-digits", root=root, device="cpu", progress=False)
    return root


@pytest.fixture(scope="session")
def digit_extractor(digits_root):
    """The instrument of the stacked-digits world: the digit classifier read channel by channel
    (``ebmlib.features.ChannelClassifierExtractor``)."""
    from ebmlib.recipes import pipeline

    return pipeline.extractor("classifier", "stacked-digits", root=digits_root, device="cpu", progress=False)
