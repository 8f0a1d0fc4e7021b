"""Networks: shapes, spectral norm, conditional BN semantics, projection."""

import pytest
import torch

from cgt.nn import (ConditionalBatchNorm2d, Discriminator, GANConfig, Generator, count_parameters,
                    imagenet128_config, sn_conv)


@pytest.mark.parametrize("resolution,channels", [(32, 1), (64, 3), (128, 3)])
def test_generator_and_discriminator_shapes(resolution, channels):
    cfg = GANConfig(resolution=resolution, channels=channels, num_classes=5, ch=8, dim_z=24,
                    shared_dim=8, hier=True, attention=resolution // 2,
                    d_attention=resolution // 2, init="ortho")
    g, d = Generator(cfg), Discriminator(cfg)
    z, y = g.sample_inputs(3)
    x = g(z, y)
    assert x.shape == (3, channels, resolution, resolution)
    assert x.abs().max() <= 1
    assert d(x, y).shape == (3,)


def test_unconditional_variants_need_no_labels_and_conditional_ones_ask_for_them():
    cfg = GANConfig(num_classes=0, ch=4)
    g, d = Generator(cfg), Discriminator(cfg)
    z, y = g.sample_inputs(2)
    assert y is None and d(g(z)).shape == (2,)
    conditional = Generator(GANConfig(num_classes=3, ch=4))
    with pytest.raises(ValueError, match="pass class labels"):
        conditional(torch.randn(2, 128))


def test_imagenet128_matches_the_public_biggan_size():
    # REFERENCE.md §3: BigGAN-PyTorch ImageNet-128 G has 70.4 M parameters.
    g = Generator(imagenet128_config())
    assert round(count_parameters(g) / 1e6, 1) == 70.4


def test_spectral_norm_brings_the_top_singular_value_to_one():
    torch.manual_seed(0)
    conv = sn_conv(8, 16, 3, init="N02")
    with torch.no_grad():
        conv.parametrizations.weight.original.mul_(50)
    conv.train()
    for _ in range(50):  # one power iteration per training forward
        conv(torch.randn(1, 8, 5, 5))
    conv.eval()
    with torch.no_grad():
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=1e-3)


def test_table_conditional_bn_starts_as_plain_bn_and_scales_per_class():
    torch.manual_seed(0)
    bn = ConditionalBatchNorm2d(4, num_classes=3)
    x, y = torch.randn(6, 4, 5, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    plain = torch.nn.functional.batch_norm(x, None, None, training=True, eps=bn.norm.eps)
    assert torch.allclose(bn(x, y), plain, atol=1e-5)
    with torch.no_grad():
        bn.gain.weight[1] = 1.0   # class 1: gain 2
        bn.bias.weight[2] = 0.5   # class 2: shift 0.5
    out = bn(x, y)
    assert torch.allclose(out[y == 0], plain[y == 0], atol=1e-5)
    assert torch.allclose(out[y == 1], 2 * plain[y == 1], atol=1e-5)
    assert torch.allclose(out[y == 2], plain[y == 2] + 0.5, atol=1e-5)


def test_linear_conditional_bn_is_one_plus_a_linear_map():
    torch.manual_seed(0)
    bn = ConditionalBatchNorm2d(4, cond_dim=6, use_sn=False)
    cond = torch.randn(2, 6)
    gain, bias = bn.scale_shift(cond)
    assert torch.allclose(gain, 1 + cond @ bn.gain.weight.T)
    assert torch.allclose(bias, cond @ bn.bias.weight.T)


def test_bn_refuses_two_conditioning_forms():
    with pytest.raises(ValueError, match="not both"):
        ConditionalBatchNorm2d(4, num_classes=3, cond_dim=5)


def test_projection_term_is_the_class_embedding_dot_features():
    torch.manual_seed(0)
    d = Discriminator(GANConfig(num_classes=4, ch=4)).eval()
    x = torch.randn(2, 1, 32, 32)
    a, b = torch.tensor([0, 0]), torch.tensor([3, 3])
    with torch.no_grad():
        phi = d.features(x)
        expected = ((d.embed.weight[0] - d.embed.weight[3]) * phi).sum(1)
        assert torch.allclose(d(x, a) - d(x, b), expected, atol=1e-5)


def test_config_refuses_what_cannot_be_built():
    with pytest.raises(ValueError, match="valid: \\[32, 64, 128\\]"):
        GANConfig(resolution=48)
    with pytest.raises(ValueError, match="shared class embedding"):
        GANConfig(hier=True)


def test_truncated_sampling_stays_inside_the_bound():
    g = Generator(GANConfig(num_classes=3, ch=4))
    z, y = g.sample_inputs(64, classes=[1, 2], truncation=0.3, generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.3 and set(y.tolist()) == {1, 2}
    assert z.std() > 0.1  # resampled, not squashed to the bound
