"""BigGAN-PyTorch state dicts: the exact public layout, round trips, clear mismatches."""

import pytest
import torch
from torch.nn import functional as F

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


def biggan_pytorch_sigma(weight: torch.Tensor, u0: torch.Tensor) -> torch.Tensor:
    """σ as BigGAN-PyTorch's eval forward computes it (layers.py: power_iteration with
    update=False from the stored u0, then W / svs[0]), written out here independently."""
    w = weight.reshape(weight.shape[0], -1).double()
    v = F.normalize(u0.double() @ w, eps=1e-12)  # 1 × in
    u = F.normalize(v @ w.t(), eps=1e-12)  # 1 × out
    return (v @ w.t() @ u.t()).squeeze()


def _spectral_prefixes(state: dict) -> list[str]:
    return [key[:-3] for key in state if key.endswith(".u0")]


@pytest.mark.parametrize("network", [Generator, Discriminator])
def test_imported_layers_divide_by_the_sigma_biggan_pytorch_computes(network):
    torch.manual_seed(0)
    state = export_state(network(small_128()))
    for prefix in _spectral_prefixes(state):  # any stored u0, and an sv0 that is not σ
        state[prefix + ".u0"] = F.normalize(torch.randn_like(state[prefix + ".u0"]))
        state[prefix + ".sv0"] = biggan_pytorch_sigma(state[prefix + ".weight"],
                                                      state[prefix + ".u0"]).reshape(1).float() / 2
    imported = network(small_128())
    import_state(imported, state, "test")
    imported.eval()
    with torch.no_grad():
        for prefix in _spectral_prefixes(state):
            expected = state[prefix + ".weight"].double() / biggan_pytorch_sigma(
                state[prefix + ".weight"], state[prefix + ".u0"])
            got = imported.get_submodule(prefix).weight.double()
            assert torch.allclose(got, expected, rtol=1e-5, atol=1e-8), prefix


def test_a_meaningless_sv0_cannot_break_the_import():
    state = export_state(Generator(small_128()))
    for prefix in _spectral_prefixes(state):
        state[prefix + ".sv0"] = torch.zeros(1)  # an sv0 of 0 once gave W / 0
    generator, _ = load_biggan_pytorch(state, None, small_128())
    with torch.no_grad():
        assert torch.isfinite(generator(*generator.sample_inputs(2))).all()


def _converge(module: torch.nn.Module) -> None:
    """Set every spectral norm's vectors to the top singular pair (power iteration done)."""
    for name, layer in module.named_modules():
        if hasattr(layer, "parametrizations") and hasattr(layer.parametrizations, "weight"):
            norm = layer.parametrizations.weight[0]
            w = layer.parametrizations.weight.original.detach().flatten(1).double()
            u, _, vh = torch.linalg.svd(w, full_matrices=False)
            norm._u.copy_(u[:, 0]), norm._v.copy_(vh[0])


def test_a_round_trip_is_exact_once_the_power_iteration_has_converged():
    torch.manual_seed(0)
    g, d = Generator(small_128()), Discriminator(small_128())
    g.train()
    for _ in range(3):  # fill the BN statistics
        g(*g.sample_inputs(4))
    _converge(g), _converge(d)
    g.eval(), d.eval()
    g2, d2 = load_biggan_pytorch(export_state(g), export_state(d), small_128())
    z, y = g.sample_inputs(3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(g(z, y), g2(z, y), atol=1e-5)
        x = torch.randn(3, 3, 128, 128)
        assert torch.allclose(d(x, y), d2(x, y), atol=1e-4)


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
