"""BigGAN-PyTorch state dicts: the exact public layout, round trips, clear mismatches."""

import pytest
import torch

from cgt.biggan_pytorch import export_state, import_state, load_biggan_pytorch
from cgt.checkpoints import CheckpointError
from cgt.nn import Discriminator, GANConfig, Generator, imagenet128_config


def small_128(classes=7):
    return GANConfig(resolution=128, channels=3, num_classes=classes, ch=8, dim_z=24,
                     shared_dim=16, hier=True, attention=64, d_attention=64, init="ortho")


def test_imagenet128_export_has_the_public_key_layout():
    # REFERENCE.md §3: G 166 keys, D 88 keys; these shapes.
    g_state = export_state(Generator(imagenet128_config()))
    d_state = export_state(Discriminator(imagenet128_config()))
    assert len(g_state) == 166 and len(d_state) == 88
    assert g_state["shared.weight"].shape == (1000, 128)
    assert g_state["linear.weight"].shape == (24576, 20) and g_state["linear.u0"].shape == (1, 24576)
    assert g_state["blocks.0.0.bn1.gain.weight"].shape == (1536, 148)
    assert g_state["output_layer.2.weight"].shape == (3, 96, 3, 3)
    assert {"blocks.3.1.gamma", "blocks.3.1.theta.u0", "output_layer.0.stored_var"} <= set(g_state)
    assert d_state["embed.weight"].shape == (1000, 1536)


def test_round_trip_gives_identical_outputs():
    torch.manual_seed(0)
    g, d = Generator(small_128()), Discriminator(small_128())
    g.train()
    for _ in range(3):  # move u away from its initial value and fill BN statistics
        g(*g.sample_inputs(4))
        d(torch.randn(2, 3, 128, 128), torch.tensor([0, 1]))
    g.eval(), d.eval()
    g2, d2 = load_biggan_pytorch(export_state(g), export_state(d), small_128())
    z, y = g.sample_inputs(3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(g(z, y), g2(z, y), atol=1e-5)
        x = torch.randn(3, 3, 128, 128)
        assert torch.allclose(d(x, y), d2(x, y), atol=1e-4)


def test_imported_sigma_equals_the_stored_singular_value():
    g = Generator(small_128()).eval()
    state = export_state(g)
    state["linear.sv0"] = state["linear.sv0"] * 2  # as if BigGAN-PyTorch had stored this σ
    g2, _ = load_biggan_pytorch(state, None, small_128())
    with torch.no_grad():
        w_orig = g2.linear.parametrizations.weight.original
        assert torch.allclose(g2.linear.weight, w_orig / state["linear.sv0"], atol=1e-6)


def test_a_different_class_count_is_named():
    state = export_state(Generator(small_128(classes=7)))
    with pytest.raises(CheckpointError, match="7 classes .*shared.weight.* asks for 5"):
        load_biggan_pytorch(state, None, small_128(classes=5))


def test_missing_and_unexpected_keys_are_named():
    state = export_state(Generator(small_128()))
    state.pop("blocks.1.0.conv2.u0"), state.pop("blocks.1.0.conv2.sv0")
    state["blocks.9.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="(?s)missing keys \\(1\\): blocks.1.0.conv2.u0.*"
                                              "unexpected keys \\(1\\): blocks.9.0.conv1.weight"):
        import_state(Generator(small_128()), state, "generator")
