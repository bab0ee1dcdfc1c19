"""SN-GAN networks for 32x32 images: shapes, exact parameter counts, spectral norm, channels_last, bad input."""
import pytest
import torch
from torch import nn

from ebmlib.nets import (SNGANDiscriminator, SNGANGenerator, SNGANResDiscriminator, SNGANResGenerator,
                         count_parameters, spectral_norm_layers)

torch.set_num_threads(1)

PAIRS = [(SNGANGenerator, SNGANDiscriminator), (SNGANResGenerator, SNGANResDiscriminator)]


# --- parameter counts from the layer sizes (weights + biases; BN: scale + shift) ----------------------

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
