"""Image tensors and image data sets: conversions, grids, batches on the device, and the registry."""
import pytest
import torch
from matplotlib.image import imread

from ebmlib import cifar10, images
from ebmlib.images import Batches, image_grid, save_grid, to_float, to_uint8


def asymmetric_images(n):
    """Images that differ from each other and from their mirror images."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


# --- conversions and grids --------------------------------------------------------------------------

def test_float_conversion_round_trips_every_value():
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = to_float(values)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8(x), values)
    assert torch.equal(to_uint8(torch.tensor([-3.0, 3.0])), torch.tensor([0, 255], dtype=torch.uint8))


def test_as_uint8_and_uint8_batches():
    stored = asymmetric_images(10)
    assert images.as_uint8(stored) is stored  # real data passes through untouched
    assert torch.equal(images.as_uint8(to_float(stored)), stored)  # generated floats are quantised the same way
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        images.as_uint8(torch.zeros(3, 32, 32))
    sizes = [len(b) for b in images.uint8_batches(to_float(stored), 4)]
    assert sizes == [4, 4, 2]
    streamed = list(images.uint8_batches((to_float(stored[i:i + 5]) for i in (0, 5)), 4))
    assert torch.equal(torch.cat(streamed), stored)  # an iterable's chunks come through as they are


def test_image_grid_places_each_image():
    x = torch.stack([torch.full((3, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(x, nrow=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    assert (grid[1:3, 1:3] == 0).all() and (grid[1:3, 4:6] == 128).all() and (grid[4:6, 1:3] == 255).all()
    assert (grid[0] == 255).all()  # the padding is white


def test_save_grid_writes_a_png(tmp_path):
    path = save_grid(torch.zeros(4, 3, 8, 8), tmp_path / "sub" / "grid.png", nrow=2)
    assert imread(path).shape[:2] == (2 * 10 + 2, 2 * 10 + 2)


# --- batches ----------------------------------------------------------------------------------------

def test_batches_shapes_range_and_epochs():
    stored = asymmetric_images(50)
    batches = Batches(stored, 16, labels=torch.arange(50), seed=0)
    assert len(batches) == 3
    seen = []
    for _ in range(3):
        x, idx = next(batches)
        assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
        seen += idx.tolist()
    assert len(set(seen)) == 48  # one epoch: a permutation, no repeats
    assert batches.epoch == 0
    next(batches)
    assert batches.epoch == 1


def test_batches_flip_whole_images_about_half_the_time():
    stored = asymmetric_images(64)
    batches = Batches(stored, 32, labels=torch.arange(64), seed=1)
    flipped = 0
    for _ in range(20):
        x, idx = next(batches)
        plain = to_float(stored[idx])
        same, mirrored = (x == plain).flatten(1).all(1), (x == plain.flip(-1)).flatten(1).all(1)
        assert (same ^ mirrored).all(), "each image is either as stored or mirrored left-right"
        flipped += int(mirrored.sum())
    assert 0.4 < flipped / 640 < 0.6
    x, idx = next(Batches(stored, 32, labels=torch.arange(64), seed=1, flip=False))
    assert torch.equal(x, to_float(stored[idx]))


def test_batches_are_deterministic_for_a_seed():
    stored = asymmetric_images(40)
    a, b, c = (Batches(stored, 8, seed=s) for s in (5, 5, 6))
    xa, xb, xc = ([next(it) for _ in range(7)] for it in (a, b, c))
    assert all(torch.equal(u, v) for u, v in zip(xa, xb))
    assert not all(torch.equal(u, v) for u, v in zip(xa, xc))


@pytest.mark.parametrize("kw", [dict(images=torch.zeros(10, 3, 32, 32)), dict(batch_size=0),
                                dict(batch_size=11), dict(labels=torch.zeros(9, dtype=torch.int64))])
def test_batches_reject_bad_input(kw):
    args = dict(images=torch.zeros(10, 3, 32, 32, dtype=torch.uint8), batch_size=4)
    with pytest.raises(ValueError):
        Batches(**{**args, **kw})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_stay_on_the_gpu():
    stored = asymmetric_images(64)
    batches = Batches(stored, 32, labels=torch.arange(64), device="cuda", seed=0)
    assert batches.images.is_cuda
    x, idx = next(batches)
    assert x.is_cuda and idx.is_cuda
    plain = to_float(stored[idx.cpu()]).cuda()
    assert ((x == plain).flatten(1).all(1) ^ (x == plain.flip(-1)).flatten(1).all(1)).all()
    a, b = Batches(stored, 8, device="cuda", seed=3), Batches(stored, 8, device="cuda", seed=3)
    assert torch.equal(next(a), next(b))


def test_batches_state_round_trip_continues_the_same_stream():
    stored = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    a = Batches(stored, 7, seed=2)
    for _ in range(5):  # into the second epoch (4 batches an epoch)
        next(a)
    state = a.state_dict()
    expected = [next(a) for _ in range(6)]
    b = Batches(stored, 7, seed=123)
    b.load_state_dict(state)
    for want in expected:
        torch.testing.assert_close(next(b), want, rtol=0, atol=0)
    assert b.epoch == a.epoch
    with pytest.raises(ValueError, match="same images"):
        Batches(stored[:20], 7).load_state_dict(state)


def test_real_sampler_draws_stored_images_possibly_mirrored():
    stored = asymmetric_images(20)
    draw = images.real_sampler(stored)
    x = draw(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    plain = to_float(stored).flatten(1)
    as_stored = (x.flatten(1)[:, None] == plain[None]).all(2).any(1)
    mirrored = (x.flip(-1).flatten(1)[:, None] == plain[None]).all(2).any(1)
    assert (as_stored | mirrored).all() and as_stored.any() and mirrored.any()
    assert torch.equal(x, draw(64, torch.Generator().manual_seed(0)))  # the generator decides every draw


# --- the registry -----------------------------------------------------------------------------------

def test_unknown_data_set_lists_the_choices():
    with pytest.raises(ValueError, match=r"'mnist'.*\['cifar10', 'digits', 'stacked-digits', 'tiny'\]"):
        images.dataset("mnist")
    with pytest.raises(ValueError, match="cifar10"):
        images.load_images("mnist")


def test_tiny_loads_through_the_registry(tmp_path):
    x, y = images.load_images("tiny", tmp_path / "tiny")
    assert x.dtype == torch.uint8 and x.shape == (1000, 3, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (1000,) and set(y.tolist()) == set(range(10))
    xt, yt = images.load_images("tiny", tmp_path / "tiny", train=False)
    assert xt.shape == (200, 3, 32, 32) and yt.shape == (200,)
    assert (tmp_path / "tiny" / cifar10.ARCHIVE_NAME).exists() and (tmp_path / "tiny" / "FAKE_DATA").exists()
    assert torch.equal(x, cifar10.tiny(tmp_path / "other")[0])  # the registry's tiny is cifar10.tiny's


def test_registered_data_sets_describe_themselves(monkeypatch, tmp_path):
    shapes = {"cifar10": ((3, 32, 32), 10), "tiny": ((3, 32, 32), 10), "digits": ((1, 8, 8), 10),
              "stacked-digits": ((3, 8, 8), 1000)}
    assert set(images.DATASETS) == set(shapes)
    for name, info in images.DATASETS.items():
        assert info.name == name and (info.shape, info.n_classes) == shapes[name]
        assert info.folder(tmp_path) == tmp_path
    monkeypatch.setenv("EBMLIB_DATA", str(tmp_path / "env"))
    assert images.dataset("cifar10").folder() == tmp_path / "env"
    assert images.dataset("tiny").folder() == tmp_path / "env" / "tiny"
    assert images.dataset("stacked-digits").folder() == tmp_path / "env" / "digits"
    # photographs may be flipped; digits may not (a flipped 2 is not a 2)
    assert images.dataset("cifar10").flip and not images.dataset("digits").flip
    assert not images.dataset("stacked-digits").flip and images.dataset("stacked-digits").classifier_on == "digits"
