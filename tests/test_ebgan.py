"""EBGAN: the margin loss, the pulling-away term, the autoencoder energies, and both training loops
with the pulling-away hook."""
import math

import pytest
import torch

from ebmlib import cifar10, toy
from ebmlib.losses import EBGAN, EBGANPT, LOSSES, get_loss, pulling_away
from ebmlib.nets import (ConvAutoencoder, MLPAutoencoder, MLPGenerator, SNGANGenerator, count_parameters,
                         reconstruction_energy)
from ebmlib.train import train_discriminator, train_gan, train_images

torch.set_num_threads(1)


# --- the margin loss -----------------------------------------------------------------------------------

def test_margin_loss_by_hand():
    real = torch.tensor([0.5, 1.0, 1.5])
    fake = torch.tensor([0.2, 2.0, 0.9])
    loss = EBGAN(margin=1.0)
    # D: mean(real) = 1.0; [1 - fake]^+ = (0.8, 0, 0.1), mean 0.3
    assert loss.discriminator(real, fake).item() == pytest.approx(1.3)
    assert loss.generator(fake).item() == pytest.approx(3.1 / 3)
    # a larger margin: [3 - fake]^+ = (2.8, 1.0, 2.1), mean 1.9667
    assert EBGAN(margin=3.0).discriminator(real, fake).item() == pytest.approx(1.0 + 5.9 / 3)


def test_margin_loss_gradients_stop_at_the_margin():
    fake = torch.tensor([0.5, 2.0], requires_grad=True)
    EBGAN(margin=1.0).discriminator(torch.zeros(2), fake).backward()
    # below the margin D pushes the energy up (gradient -1/N); above it, nothing
    assert fake.grad.tolist() == [-0.5, 0.0]


def test_ebgan_losses_are_registered():
    assert isinstance(get_loss("ebgan"), EBGAN) and get_loss("ebgan").margin == 1.0
    pt = get_loss("ebgan-pt")
    assert isinstance(pt, EBGANPT) and pt.pt_weight == 0.1 and hasattr(pt, "generator_penalty")
    assert not hasattr(get_loss("ebgan"), "generator_penalty")
    assert {"ebgan", "ebgan-pt"} <= set(LOSSES)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="margin"):
            EBGAN(margin=bad)
    with pytest.raises(ValueError, match="pt_weight"):
        EBGANPT(pt_weight=-0.1)


# --- the pulling-away term -----------------------------------------------------------------------------

def test_pulling_away_orthogonal_is_zero_and_parallel_is_one():
    assert pulling_away(torch.eye(3)).item() == pytest.approx(0.0, abs=1e-7)
    same_line = torch.tensor([[1.0, 2.0], [2.0, 4.0], [-3.0, -6.0]])  # cos = +-1
    assert pulling_away(same_line).item() == pytest.approx(1.0, abs=1e-6)


def test_pulling_away_by_hand():
    S = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # cos^2: (1,2) 1/2, (1,3) 0, (2,3) 1/2; both orders: 2; over N(N-1) = 6
    assert pulling_away(S).item() == pytest.approx(1 / 3, abs=1e-6)
    S3 = torch.tensor([[1.0, 2.0, 2.0], [2.0, -1.0, 0.0], [0.0, 0.0, 3.0]])
    # cos(1,2) = 0; cos(1,3) = 6/(3*3) = 2/3; cos(2,3) = 0  ->  2 * 4/9 / 6
    assert pulling_away(S3).item() == pytest.approx(2 * (4 / 9) / 6, abs=1e-6)


def test_pulling_away_normalises_each_row():
    S = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0], [0.0, 1.0, -1.0], [0.3, -0.2, 1.0]])
    scaled = S * torch.tensor([[2.0], [0.1], [7.0], [30.0]])  # a different scale for each sample
    assert pulling_away(scaled).item() == pytest.approx(pulling_away(S).item(), abs=1e-6)
    # rows of very different lengths along two directions: only per-row normalisation gives cos^2 = 1, 0
    pair = torch.tensor([[100.0, 0.0], [0.01, 0.0], [0.0, 5.0]])
    assert pulling_away(pair).item() == pytest.approx(2 / 6, abs=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        pulling_away(torch.ones(1, 3))


# --- autoencoder energies ------------------------------------------------------------------------------

def identity_autoencoder(dim=3):
    D = MLPAutoencoder(in_dim=dim, depth=0, code_dim=dim)
    with torch.no_grad():
        for layer in (D.encoder[0], D.decoder[0]):
            layer.weight.copy_(torch.eye(dim)), layer.bias.zero_()
    return D


def test_perfect_reconstruction_has_zero_energy_and_a_shift_costs_its_square():
    D = identity_autoencoder(3)
    x = torch.randn(5, 3)
    assert torch.equal(D(x), torch.zeros(5))
    with torch.no_grad():
        D.decoder[0].bias.copy_(torch.tensor([1.0, 2.0, 2.0]))
    assert D(x).tolist() == pytest.approx([3.0] * 5)  # mean of (1, 4, 4)
    D.energy = "sum"
    assert D(x).tolist() == pytest.approx([9.0] * 5)


def test_sum_energy_is_dim_times_mean_energy():
    torch.manual_seed(0)
    mlp = MLPAutoencoder(in_dim=2, hidden=8)
    x = torch.randn(6, 2)
    mean = mlp(x)
    mlp.energy = "sum"
    assert torch.allclose(mlp(x), 2 * mean)
    conv = ConvAutoencoder(ch=4, code_dim=8)
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    mean = conv(images)
    conv_sum = ConvAutoencoder(ch=4, code_dim=8, energy="sum")
    conv_sum.load_state_dict(conv.state_dict())
    assert torch.allclose(conv_sum(images), 3072 * mean, rtol=1e-5)
    assert (mean > 0).all()


def test_reconstruction_energy_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x_hat = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert reconstruction_energy(x, x_hat, "mean").tolist() == [2.0, 12.5]
    assert reconstruction_energy(x, x_hat, "sum").tolist() == [4.0, 25.0]
    with pytest.raises(ValueError, match="energy"):
        reconstruction_energy(x, x_hat, "l1")
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_energy(x, x_hat[:, :1])


def test_shapes_embeddings_and_bad_input():
    mlp = MLPAutoencoder(in_dim=2, hidden=8, code_dim=5)
    assert mlp(torch.randn(7, 2)).shape == (7,) and mlp.embed(torch.randn(7, 2)).shape == (7, 5)
    conv = ConvAutoencoder(ch=4, code_dim=6)
    assert conv(torch.zeros(2, 3, 32, 32)).shape == (2,) and conv.embed(torch.zeros(2, 3, 32, 32)).shape == (2, 6)
    assert conv.reconstruct(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\(N, 2\).*\(4, 3\)"):
        mlp(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\).*\(2, 3, 16, 16\)"):
        conv(torch.zeros(2, 3, 16, 16))
    for cls in (MLPAutoencoder, ConvAutoencoder):
        with pytest.raises(ValueError, match="energy"):
            cls(energy="max")
    assert count_parameters(ConvAutoencoder(ch=4, code_dim=6)) > 0


# --- training ------------------------------------------------------------------------------------------

class CountingPT(EBGANPT):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.calls = 0

    def generator_penalty(self, D, fake):
        self.calls += 1
        return super().generator_penalty(D, fake)


def toy_run(loss, seed=0, steps=8):
    torch.manual_seed(0)
    G, D = MLPGenerator(hidden=16, depth=2), MLPAutoencoder(hidden=16, depth=1, code_dim=4)
    history = train_gan(G, D, toy.sample_grid25, steps=steps, batch_size=32, loss=loss, lr_g=1e-3, lr_d=1e-3,
                        seed=seed, log_every=4)
    return [p.detach().clone() for p in G.parameters()], history


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_train_gan_with_pulling_away_is_deterministic_and_uses_the_hook():
    counting = CountingPT(margin=0.5, pt_weight=1.0)
    g1, h1 = toy_run(counting, seed=3)
    assert counting.calls == 8  # once a generator step
    g2, h2 = toy_run(EBGANPT(margin=0.5, pt_weight=1.0), seed=3)
    assert same(g1, g2) and h1["g_loss"] == h2["g_loss"]
    g_plain, _ = toy_run(EBGAN(margin=0.5), seed=3)
    g_zero, _ = toy_run(EBGANPT(margin=0.5, pt_weight=0.0), seed=3)
    assert same(g_plain, g_zero), "with weight 0 the pulling-away term must change nothing"
    assert not same(g1, g_plain), "the pulling-away term must change the generator's updates"
    assert all(math.isfinite(v) for v in h1["d_loss"] + h1["g_loss"])


def test_margin_loss_with_p_g_equal_p_data_drives_the_value_to_the_margin():
    # p_g = p_data: any energy <= m on the support gives V = m; an untrained AE starts above (E x^2 = 2)
    torch.manual_seed(0)
    D = MLPAutoencoder(hidden=32, depth=1, code_dim=4)
    m = 0.5
    train_discriminator(D, toy.sample_grid25, toy.sample_grid25, steps=300, batch_size=256, lr=3e-3,
                        loss=EBGAN(margin=m), seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        real, fake = D(toy.sample_grid25(4000, gen)), D(toy.sample_grid25(4000, gen))
    value = EBGAN(margin=m).discriminator(real, fake).item()
    assert abs(value - m) < 0.03 * m, value


def test_train_images_with_ebgan_pt_on_the_tiny_data(tmp_path):
    images, _ = cifar10.tiny(tmp_path / "tiny", n_train=40, n_test=10)
    torch.manual_seed(0)
    G, D = SNGANGenerator(latent_dim=16, ch=4), ConvAutoencoder(ch=4, code_dim=8)
    loss = CountingPT(margin=0.2)
    history = train_images(G, D, cifar10.Batches(images, 8, seed=0), steps=3, n_dis=1, loss=loss, batch_size=8,
                           out_dir=tmp_path / "run", log_every=1, checkpoint_every=3, sample_every=3,
                           n_samples=8, progress=False)
    assert loss.calls == 3
    assert all(math.isfinite(v) and v >= 0 for v in history["d_loss"] + history["g_loss"])
    saved = torch.load(history["checkpoint"], weights_only=False)
    assert saved["config"]["loss"] == "ebgan-pt" and saved["config"]["D"] == "ConvAutoencoder"
    # by name, too: train_images accepts 'ebgan'
    G2, D2 = SNGANGenerator(latent_dim=16, ch=4), ConvAutoencoder(ch=4, code_dim=8)
    h = train_images(G2, D2, cifar10.Batches(images, 8, seed=0), steps=2, n_dis=1, loss="ebgan", batch_size=8,
                     log_every=1, progress=False, ema=None)
    assert len(h["g_loss"]) == 2
