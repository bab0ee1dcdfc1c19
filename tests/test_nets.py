"""MLP generator and discriminator: shapes, and shape errors that name the expected and given shapes."""
import pytest
import torch

from ebmlib.nets import MLPDiscriminator, MLPGenerator


def test_shapes():
    torch.manual_seed(0)
    G = MLPGenerator(latent_dim=3, out_dim=2, hidden=8, depth=2)
    D = MLPDiscriminator(in_dim=2, hidden=8, depth=2)
    x = G(torch.randn(5, 3))
    assert x.shape == (5, 2) and G.latent_dim == 3 and G.out_dim == 2
    assert D(x).shape == (5,)
    assert torch.autograd.grad(D(G(torch.randn(4, 3, requires_grad=True))).sum(), D.net[0].weight)[0].abs().sum() > 0


@pytest.mark.parametrize("z", [torch.zeros(5, 2), torch.zeros(5), torch.zeros(5, 3, 1), torch.zeros(3)])
def test_generator_wrong_latent_shape(z):
    G = MLPGenerator(latent_dim=3, hidden=8, depth=1)
    with pytest.raises(ValueError) as info:
        G(z)
    msg = str(info.value)
    assert "(N, 3)" in msg, msg
    assert str(tuple(z.shape)) in msg, msg


@pytest.mark.parametrize("x", [torch.zeros(4, 3), torch.zeros(4), torch.zeros(4, 2, 1)])
def test_discriminator_wrong_input_shape(x):
    D = MLPDiscriminator(in_dim=2, hidden=8, depth=1)
    with pytest.raises(ValueError) as info:
        D(x)
    msg = str(info.value)
    assert "(N, 2)" in msg, msg
    assert str(tuple(x.shape)) in msg, msg


def test_non_tensor_input_is_a_value_error():
    with pytest.raises(ValueError, match="Tensor"):
        MLPGenerator(latent_dim=2, hidden=4, depth=1)([[0.0, 0.0]])
