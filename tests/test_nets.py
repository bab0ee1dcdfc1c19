"""Networks: the MLPs of the toy world, the SN-GAN nets for 32x32 images (shapes, exact parameter counts,
spectral norm, channels_last), the architecture registry, and the EBGAN autoencoders."""
import pytest
import torch
from torch import nn

from ebmlib.nets import (
    ARCHITECTURES,
    ConvAutoencoder,
    MLPAutoencoder,
    MLPDiscriminator,
    MLPGenerator,
    SNGANDiscriminator,
    SNGANGenerator,
    SNGANResDiscriminator,
    SNGANResGenerator,
    build_pair,
    count_parameters,
    frozen,
    reconstruction_energy,
    spectral_norm_layers,
)

PAIRS = [(SNGANGenerator, SNGANDiscriminator), (SNGANResGenerator, SNGANResDiscriminator)]


# --- MLPs -----------------------------------------------------------------------------------------------

def test_mlp_shapes():
    torch.manual_seed(0)
    G = MLPGenerator(latent_dim=3, out_dim=2, hidden=8, depth=2)
    D = MLPDiscriminator(in_dim=2, hidden=8, depth=2)
    x = G(torch.randn(5, 3))
    assert x.shape == (5, 2) and G.latent_dim == 3 and G.out_dim == 2
    assert D(x).shape == (5,)
    assert torch.autograd.grad(D(G(torch.randn(4, 3, requires_grad=True))).sum(), D.net[0].weight)[0].abs().sum() > 0


def mlp_generator():
    return MLPGenerator(latent_dim=3, hidden=8, depth=1)


def mlp_discriminator():
    return MLPDiscriminator(in_dim=2, hidden=8, depth=1)


@pytest.mark.parametrize("build, want, shape", [(mlp_generator, "(N, 3)", s) for s in [(5, 2), (5,), (5, 3, 1), (3,)]]
                         + [(mlp_discriminator, "(N, 2)", s) for s in [(4, 3), (4,), (4, 2, 1)]])
def test_mlp_wrong_input_shape_names_expected_and_given(build, want, shape):
    with pytest.raises(ValueError) as info:
        build()(torch.zeros(shape))
    msg = str(info.value)
    assert want in msg, msg
    assert str(shape) in msg, msg


def test_non_tensor_input_is_a_value_error():
    with pytest.raises(ValueError, match="Tensor"):
        MLPGenerator(latent_dim=2, hidden=4, depth=1)([[0.0, 0.0]])


def test_count_parameters_and_frozen():
    G = MLPGenerator(latent_dim=2, out_dim=2, hidden=4, depth=1)
    assert count_parameters(G) == (2 * 4 + 4) + (4 * 2 + 2)
    frozen(G)
    assert count_parameters(G) == 0 and not G.training


def test_spectral_norm_mlp_has_unit_spectral_norm_per_layer():
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=2, hidden=32, depth=2, spectral_norm=True)
    plain = MLPDiscriminator(in_dim=2, hidden=32, depth=2)
    assert len(spectral_norm_layers(D)) == 3 and not spectral_norm_layers(plain)
    D.train()
    with torch.no_grad():
        for _ in range(30):  # one power iteration a forward pass in training mode
            D(torch.randn(8, 2))
    D.eval()
    for _, layer in spectral_norm_layers(D):
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=0.02)
    # so d is at most 1-Lipschitz (LeakyReLU is): the input gradient's norm stays below 1
    x = torch.randn(500, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    assert grad.norm(dim=1).max().item() <= 1.02


# --- SN-GAN networks for 32x32 images ------------------------------------------------------------------
# parameter counts from the layer sizes (weights + biases; BN: scale + shift)

def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def linear(n_in, n_out):
    return n_in * n_out + n_out


def bn(c):
    return 2 * c


def standard_cnn_g(z=128):
    # z -> 4x4x512, BN, then deconvs 512->256->128->64 (each + BN), conv3x3 64->3
    return (linear(z, 4 * 4 * 512) + bn(512) + conv(512, 256, 4) + bn(256) + conv(256, 128, 4) + bn(128)
            + conv(128, 64, 4) + bn(64) + conv(64, 3, 3))


def standard_cnn_d():
    convs = [(3, 64, 3), (64, 64, 4), (64, 128, 3), (128, 128, 4), (128, 256, 3), (256, 256, 4), (256, 512, 3)]
    return sum(conv(*c) for c in convs) + linear(4 * 4 * 512, 1)


def resnet_g(z=128, ch=256):
    block = bn(ch) + conv(ch, ch, 3) + bn(ch) + conv(ch, ch, 3) + conv(ch, ch, 1)  # 1x1 shortcut (upsampling)
    return linear(z, 4 * 4 * ch) + 3 * block + bn(ch) + conv(ch, 3, 3)


def resnet_d(ch=128):
    first = conv(3, ch, 3) + conv(ch, ch, 3) + conv(3, ch, 1)
    down = conv(ch, ch, 3) + conv(ch, ch, 3) + conv(ch, ch, 1)  # the 1x1 shortcut: the block downsamples
    plain = conv(ch, ch, 3) + conv(ch, ch, 3)  # identity shortcut
    return first + down + 2 * plain + linear(ch, 1)


def test_parameter_counts_match_the_layer_sizes():
    assert count_parameters(SNGANGenerator()) == standard_cnn_g() == 3_813_379
    assert count_parameters(SNGANDiscriminator()) == standard_cnn_d() == 2_935_873
    assert count_parameters(SNGANResGenerator()) == resnet_g() == 4_276_739
    assert count_parameters(SNGANResDiscriminator()) == resnet_d() == 1_053_825
    # the numbers usually quoted for the CIFAR-10 ResNet pair: G about 4.3M, D about 1.05M
    assert 4.2e6 < resnet_g() < 4.35e6 and 1.0e6 < resnet_d() < 1.1e6


def test_width_argument_scales_the_nets():
    assert count_parameters(SNGANResDiscriminator(ch=16)) == resnet_d(16)
    assert count_parameters(SNGANResGenerator(latent_dim=8, ch=16)) == resnet_g(8, 16)


# --- shapes and ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("G_cls, D_cls", PAIRS)
def test_shapes_and_range(G_cls, D_cls):
    torch.manual_seed(0)
    G, D = G_cls(latent_dim=16, ch=8), D_cls(ch=8)
    assert G.latent_dim == 16
    x = G(torch.randn(3, 16))
    assert x.shape == (3, 3, 32, 32)
    assert x.abs().max() <= 1.0
    out = D(x)
    assert out.shape == (3,) and out.dtype == torch.float32
    # every D parameter gets a gradient (spectral norm's original weights included)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())


@pytest.mark.parametrize("G_cls, D_cls", PAIRS)
def test_default_nets_run(G_cls, D_cls):
    torch.manual_seed(0)
    G, D = G_cls(), D_cls()
    assert G.latent_dim == 128
    with torch.no_grad():
        assert D(G(torch.randn(2, 128))).shape == (2,)


@pytest.mark.parametrize("G_cls, _", PAIRS)
@pytest.mark.parametrize("z_shape", [(2, 15), (2,), (2, 16, 1), (16,)])
def test_generator_rejects_wrong_latent_shape(G_cls, _, z_shape):
    G = G_cls(latent_dim=16, ch=4)
    with pytest.raises(ValueError) as info:
        G(torch.zeros(z_shape))
    assert "(N, 16)" in str(info.value) and str(tuple(z_shape)) in str(info.value)


@pytest.mark.parametrize("_, D_cls", PAIRS)
@pytest.mark.parametrize("x_shape", [(2, 3, 64, 64), (2, 1, 32, 32), (3, 32, 32), (2, 3, 32, 31)])
def test_discriminator_rejects_wrong_image_shape(_, D_cls, x_shape):
    D = D_cls(ch=4)
    with pytest.raises(ValueError) as info:
        D(torch.zeros(x_shape))
    assert "(N, 3, 32, 32)" in str(info.value) and str(tuple(x_shape)) in str(info.value)


def test_discriminator_rejects_non_tensors():
    with pytest.raises(ValueError, match="Tensor"):
        SNGANDiscriminator(ch=4)([[0.0]])


# --- spectral norm --------------------------------------------------------------------------------------

def sigma_max(layer):
    w = layer.weight
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


@pytest.mark.parametrize("D_cls, n_layers", [(SNGANDiscriminator, 8), (SNGANResDiscriminator, 11)])
def test_every_discriminator_layer_is_spectrally_normalised(D_cls, n_layers):
    torch.manual_seed(0)
    D = D_cls()
    weighted = {name for name, m in D.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    normalised = {name for name, _ in spectral_norm_layers(D)}
    assert weighted == normalised and len(normalised) == n_layers

    # each training-mode forward pass is one power iteration; sigma_max(W / sigma_est) -> 1 from above
    x = torch.randn(1, 3, 32, 32)
    D.train()
    with torch.no_grad():
        for _ in range(30):
            D(x)
    D.eval()
    with torch.no_grad():
        sigmas = [sigma_max(m) for _, m in spectral_norm_layers(D)]
    assert min(sigmas) > 1 - 1e-4 and max(sigmas) < 1.03, sigmas

    # the normalised weight does not depend on the scale of the raw weight
    layer = spectral_norm_layers(D)[0][1]
    before = layer.weight.detach().clone()
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(7.0)
    assert torch.allclose(layer.weight, before, rtol=1e-5, atol=1e-7)


def test_generators_are_not_spectrally_normalised():
    assert spectral_norm_layers(SNGANGenerator(ch=4)) == [] and spectral_norm_layers(SNGANResGenerator(ch=4)) == []


# --- channels_last -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("G_cls, D_cls", PAIRS)
def test_channels_last_gives_the_same_outputs(G_cls, D_cls):
    torch.manual_seed(0)
    G, D = G_cls(latent_dim=16, ch=8).eval(), D_cls(ch=8).eval()  # eval: no power iteration, no BN update
    z = torch.randn(4, 16)
    with torch.no_grad():
        x = G(z)
        d = D(x)
    G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    with torch.no_grad():
        x_cl = G(z)
        d_cl = D(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(x_cl, x, atol=1e-5) and torch.allclose(d_cl, d, atol=1e-5)
    # and it trains: gradients reach the first layer of D
    D.train()
    D(x_cl.contiguous(memory_format=torch.channels_last)).sum().backward()
    assert all(p.grad is not None for p in D.parameters())


# --- the registry of image architectures -------------------------------------------------------------

@pytest.mark.parametrize("arch, widths", [("cnn", (64, 64)), ("resnet", (256, 128))])
def test_build_pair_makes_the_registered_classes_at_the_papers_widths(arch, widths):
    G, D = build_pair(arch, latent_dim=16)
    assert (type(G), type(D)) == ARCHITECTURES[arch] and G.latent_dim == 16
    assert (G.ch, D.ch) == widths
    G, D = build_pair(arch, latent_dim=16, ch=4)
    assert (G.ch, D.ch) == (4, 4) and D(G(torch.randn(2, 16))).shape == (2,)


def test_build_pair_rejects_an_unknown_architecture():
    with pytest.raises(ValueError, match=r"'vgg'.*\['cnn', 'resnet'\]"):
        build_pair("vgg")


# --- autoencoder discriminators (EBGAN) --------------------------------------------------------------

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


def test_autoencoder_shapes_embeddings_and_bad_input():
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


# --- nets sized by the images --------------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 16, 16), (3, 32, 32), (3, 64, 64)])
def test_the_image_nets_follow_the_image_shape(arch, shape):
    G, D = build_pair(arch, latent_dim=8, ch=4, image_shape=shape)
    x = G(torch.randn(3, 8))
    assert x.shape == (3, *shape) and D(x).shape == (3,) and tuple(D.in_shape) == shape
    with pytest.raises(ValueError, match=r"\(N, " + ", ".join(map(str, shape)) + r"\)"):
        D(torch.zeros(3, shape[0] + 1, shape[1], shape[2]))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_the_image_nets_keep_the_papers_layout_at_32x32(arch):
    # the default shape is CIFAR-10's: the same parameter names and shapes as a net built without one
    torch.manual_seed(0)
    G, D = build_pair(arch, latent_dim=16, ch=8)
    G32, D32 = build_pair(arch, latent_dim=16, ch=8, image_shape=(3, 32, 32))
    for a, b in ((G, G32), (D, D32)):
        assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


@pytest.mark.parametrize("shape", [(3, 12, 12), (3, 8, 16), (3, 4, 4), (8, 8)])
def test_image_shapes_the_nets_cannot_make_are_refused(shape):
    with pytest.raises(ValueError, match=r"S in \(8, 16, 32, 64\)"):
        build_pair("cnn", image_shape=shape)
    with pytest.raises(ValueError, match=r"S in \(8, 16, 32, 64\)"):
        ConvAutoencoder(ch=4, code_dim=8, in_shape=shape)


def test_the_conv_autoencoder_follows_the_image_shape():
    D = ConvAutoencoder(ch=4, code_dim=6, in_shape=(3, 8, 8))
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    assert D.reconstruct(x).shape == x.shape and D.embed(x).shape == (5, 6) and (D(x) >= 0).all()


def test_noisy_generator_adds_sigma_times_the_second_latent():
    from ebmlib.nets import MLPGenerator, NoisyGenerator

    torch.manual_seed(0)
    G = MLPGenerator(latent_dim=1, out_dim=2, hidden=8, depth=1)
    noisy = NoisyGenerator(G, data_dim=2, sigma=0.5)
    assert noisy.latent_dim == 3
    latent = torch.randn(7, 3)
    assert torch.allclose(noisy(latent), G(latent[:, :1]) + 0.5 * latent[:, 1:])
    # zero noise latents give G's own outputs
    assert torch.equal(noisy(torch.cat([latent[:, :1], torch.zeros(7, 2)], dim=1)), G(latent[:, :1]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        noisy(torch.randn(7, 2))
    with pytest.raises(ValueError, match="sigma must be positive"):
        NoisyGenerator(G, data_dim=2, sigma=0.0)
