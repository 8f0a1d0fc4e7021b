"""Conditional Transferring Features: DCT, difference maps, pasted patches, CTF shapes."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.fft
import torch

from cgt import data, profiles
from cgt.experiments import ctf as study
from cgt.methods import ctf
from cgt.nn import GANConfig, Generator


def test_dct_matches_scipy_and_round_trips():
    x = torch.randn(2, 3, 8, 16, dtype=torch.float64)
    expected = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert np.allclose(ctf.dct2(x).numpy(), expected, atol=1e-12)
    assert torch.allclose(ctf.idct2(ctf.dct2(x)), x, atol=1e-12)
    c = ctf.dct_matrix(8, torch.float64)
    assert torch.allclose(c @ c.T, torch.eye(8, dtype=torch.float64), atol=1e-12)


def test_difference_maps_follow_eq_3_and_4_and_equal_pixel_differences():
    torch.manual_seed(0)
    current, previous = torch.randn(2, 5, 16, 16), torch.randn(2, 3, 8, 8)
    dct = ctf.difference_maps(current, previous, "dct")
    reference = ctf.upscale(previous, 16)
    by_hand = torch.stack([sum(current[:, t] - reference[:, s] for s in range(3)) / 3 for t in range(5)], 1)
    assert torch.allclose(dct, by_hand, atol=1e-5)
    # the DCT is linear and orthonormal, so the "no DCT" ablation is the same map
    assert torch.allclose(dct, ctf.difference_maps(current, previous, "pixel"), atol=1e-5)
    with pytest.raises(ValueError, match="difference domain"):
        ctf.difference_maps(current, previous, "fourier")


def test_pasted_patches_land_where_their_boxes_say():
    images = torch.zeros(6, 1, 32, 32)
    donors = torch.arange(3 * 32 * 32, dtype=torch.float32).view(3, 1, 32, 32)
    pasted, boxes = ctf.paste_patches(images, donors, torch.Generator().manual_seed(1))
    assert boxes.shape == (6, 4)
    for image, box in zip(pasted, boxes):
        x0, y0, x1, y1 = (box * 32).round().long().tolist()
        assert x1 - x0 == y1 - y0 == 8
        inside = image[:, y0:y1, x0:x1]
        assert (inside > 0).sum() >= inside.numel() - 1  # donor values (only one can be 0)
        outside = image.clone()
        outside[:, y0:y1, x0:x1] = 0
        assert outside.abs().sum() == 0
        # the patch is a contiguous piece of one donor: rows differ by 32, columns by 1
        assert torch.all(inside[:, 1:, :] - inside[:, :-1, :] == 32)
        assert torch.all(inside[:, :, 1:] - inside[:, :, :-1] == 1)
    with pytest.raises(ValueError, match="donor"):
        ctf.paste_patches(images, torch.zeros(2, 3, 32, 32))


def small_networks(domain="dct"):
    torch.manual_seed(0)
    low_to_high = ctf.LowToHigh(1, classes=4, low_classes=3, width=16, noise_dim=8,
                                noise_channels=2, ctf_channels=4, domain=domain)
    cfg = GANConfig(resolution=32, channels=1, num_classes=4, ch=8, dim_z=16)
    pool, labels = torch.rand(5, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0, 1])
    return low_to_high, ctf.CTFGenerator(Generator(cfg), low_to_high, pool, labels)


def test_ctf_shapes_at_every_block():
    low_to_high, _ = small_networks()
    low, g_low, c = torch.rand(3, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2]), torch.tensor([3, 0, 1])
    image, ctfs = low_to_high(low, g_low, c, low_to_high.sample_noise(3))
    assert image.shape == (3, 1, 32, 32) and image.abs().max() <= 1
    assert low_to_high.resolutions() == [16, 32]
    assert [tuple(f.shape) for f in ctfs] == [(3, 16 + 4, 16, 16), (3, 16 + 4, 32, 32)]
    # the embedded part depends on the class c and on the low-quality label g_L
    _, other = low_to_high(low, torch.tensor([2, 2, 2]), c, low_to_high.sample_noise(3))
    assert not torch.allclose(ctfs[0][:, 16:], other[0][:, 16:])
    with pytest.raises(ValueError, match="z must be"):
        low_to_high(low, g_low, c, torch.randn(3, 8))


def test_gradients_reach_g_a_and_the_embed_of_eq_2_and_the_rest_of_g_lh_stays_frozen():
    low_to_high, generator = small_networks()
    generator.train()
    y = torch.tensor([0, 1, 2, 3])
    ctfs = generator.transferring_features(y)
    for f in ctfs:
        f.retain_grad()
    out = generator(torch.randn(4, 16), y, ctfs)
    out.square().mean().backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in ctfs)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.ctf_convs.parameters())
    embed = {id(p) for p in low_to_high.ctf_embed.parameters()}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in low_to_high.ctf_embed.parameters())
    assert all(p.grad is None and not p.requires_grad for p in low_to_high.parameters()
               if id(p) not in embed)
    assert not low_to_high.training  # frozen statistics too
    # what the two phases' optimisers get: phase 2 the Embed and G_A, phase 1 the rest of G_LH
    phase_two = {id(p) for p in ctf.select_conditional(generator, torch.nn.Linear(1, 1))[0]}
    assert embed <= phase_two and phase_two.isdisjoint(
        id(p) for p in low_to_high.parameters() if id(p) not in embed)
    sampler = ctf.LowToHighSampler(low_to_high, generator.cfg, generator.pool, generator.pool_labels)
    phase_one = {id(p) for p in ctf.select_low_to_high(sampler, torch.nn.Linear(1, 1))[0]}
    assert phase_one.isdisjoint(embed) and len(phase_one) == len(list(low_to_high.parameters())) - len(embed)


def _box_training(discriminator, parameters, steps=80):
    """Train D's box head (through SelfSupervision, as a run does) on bright patches
    pasted into dark images; the mean box loss and floor of the last 10 steps."""
    images = torch.rand(16, 1, 32, 32) * 0.2 - 1
    donors = torch.rand(8, 1, 32, 32) * 1.6 - 0.8  # varied patches, none near-uniform
    supervision = ctf.SelfSupervision(donors, weight=1.0, seed=0)
    optimiser = torch.optim.Adam(parameters, 2e-3)
    for step in range(steps):
        if step == steps - 10:
            supervision.report()  # starts the means afresh
        loss = supervision(discriminator, images[:8], images[8:])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return supervision.report()


def test_the_box_head_beats_the_constant_predictor_floor_and_a_constant_head_cannot():
    torch.manual_seed(0)
    cfg = GANConfig(resolution=32, channels=1, num_classes=4, ch=8)
    learner = ctf.BoxDiscriminator(cfg)
    learned = _box_training(learner, learner.parameters())
    assert learned["box_loss"] < 0.5 * learned["box_floor"]
    # a head that ignores the image (zero weights, only its bias trains) learns the
    # average box at best: it cannot pass the test above
    constant = ctf.BoxDiscriminator(cfg)
    with torch.no_grad():
        constant.box_head.weight.zero_()
    blind = _box_training(constant, [constant.box_head.bias])
    assert blind["box_loss"] > 0.9 * blind["box_floor"]
    assert ctf.SelfSupervision(torch.zeros(1, 1, 32, 32), 1.0).report() == {}


def test_near_uniform_patches_are_drawn_again():
    images = torch.zeros(64, 1, 32, 32)
    donors = torch.full((4, 1, 32, 32), -1.0)
    donors[:, :, 12:20, 12:20] = torch.rand(4, 1, 8, 8)  # only the middle varies
    pasted, _ = ctf.paste_patches(images, donors, torch.Generator().manual_seed(0))
    spreads = torch.stack([p[p != 0].std() if (p != 0).sum() > 1 else torch.tensor(0.0) for p in pasted])
    assert (spreads > 0.1).float().mean() > 0.9  # a random 8×8 patch would mostly be flat -1


@pytest.mark.parametrize("profile", list(profiles.SIZES["ctf"]))
def test_every_profile_asks_its_datasets_only_for_what_they_hold(profile):
    sizes = profiles.SIZES["ctf"][profile]
    tables = [t for t in ("table1", "table2", "table1_real") if sizes.get(t)]
    problems = {(t, label): study.demands(s) for t in tables
                for label, (s, _) in study.settings(t, sizes).items()}
    assert {k: v for k, v in problems.items() if v} == {}


def test_a_demand_beyond_the_data_is_named_with_its_numbers():
    # the paper profile's Table I as it was: 6,000 + 1,200 per class of Fashion-MNIST's 6,000
    s = study.Setting("fashion_mnist", 10, 6000, 1.0, "downsampled", 12000)
    assert study.demands(replace(s, fraction=0.9)) == [
        "fashion_mnist: 5400 high-quality + 1200 low-quality images apart per class, but its "
        "smallest class has 6000"]
    assert study.demands(replace(s, per_class=7000))[0].endswith("6000")
    assert study.demands(replace(s, low="digits", low_count=1440)) == [
        "digits: 144 low-quality images per digit, but the smallest digit class has 140"]


def test_low_quality_images_lie_outside_the_fewer_hq_set_and_the_manifest_is_true():
    tiny = profiles.SIZES["ctf"]["smoke"]
    fewer, _ = study.settings("table1", tiny)["Ours (Fewer HQ)"]
    entire, _ = study.settings("table1", tiny)["Ours (Entire HQ)"]
    low = study.low_quality(fewer)[0]
    low_pixels = {x.tobytes() for x in study.to_uint8(low)}
    for s in (fewer, entire):
        high = data.low_quality(study.high_quality(s).images, s.low_size)
        assert sum(x.tobytes() in low_pixels for x in high) == study.low_in_high(s) == 0
    for name in data.DATASETS:  # the committed smallest classes are those of the arrays
        for split in ("train", "test"):
            labels = data.load(name, split, tiny=True).labels
            if len(labels):
                assert data.smallest_class(name, split, tiny=True) == np.bincount(labels).min()


class _Captured(Exception):
    pass


def test_the_claims_arms_at_one_seed_share_its_z_stream_and_nested_images(tmp_path, monkeypatch):
    """Pairing: ours (fewer HQ, after its phase 1) and the entire-HQ baseline at seed 1 train
    with that seed's batch and z stream (TrainConfig.seed) on nested high-quality images.
    The baseline holds more images, so its batches are matched, not shared."""
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    sizes = profiles.sizes("ctf", "smoke")
    seen = {}

    def fake_train_gan(generator, discriminator, real, labels, config, **kwargs):
        phase = "phase1" if isinstance(generator, ctf.LowToHighSampler) else "cell"
        seen.setdefault(phase, []).append((config.seed, real.clone()))
        if phase == "phase1":
            return type("Result", (), {"best": {"iteration": 0, "fid": 1.0}, "history": []})()
        raise _Captured

    monkeypatch.setattr(study, "train_gan", fake_train_gan)
    rows = study.settings("table1", sizes)
    for label in (study.FULL, study.BASELINE):
        setting, variant = rows[label]
        with pytest.raises(_Captured):
            study.run_cell(replace(setting, seed=1), variant, sizes, "smoke", progress=False)
    (phase_one_seed, _), = seen["phase1"]
    (ours_seed, ours_images), (baseline_seed, baseline_images) = seen["cell"]
    assert phase_one_seed == ours_seed == baseline_seed == 1
    assert len(ours_images) < len(baseline_images)
    flat = lambda x: {bytes(img.numpy().tobytes()) for img in x}  # noqa: E731
    assert flat(ours_images) <= flat(baseline_images)  # fewer HQ lies inside entire HQ


def test_the_pool_image_for_class_c_comes_from_class_c_when_the_pool_has_it():
    torch.manual_seed(0)
    labels = torch.tensor([2, 0, 2, 1, 0, 2])
    c = torch.tensor([0, 1, 2, 2, 0, 3] * 20)  # class 3 has no low-quality image
    index = ctf.pool_draw(labels, c, same_classes=True)
    known = c < 3
    assert torch.equal(labels[index[known]], c[known])
    assert set(index[c == 2].tolist()) == {0, 2, 5}  # every image of the class gets drawn
    assert index.min() >= 0 and index.max() < len(labels)
    # a pool of other classes (digits for characters) is drawn from at random
    anywhere = ctf.pool_draw(labels, c, same_classes=False)
    assert not torch.equal(labels[anywhere[known]], c[known])
