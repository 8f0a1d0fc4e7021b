"""BSA's adapter and losses (Eq. 3)."""

import itertools
import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cgt import claims as protocol
from cgt import profiles
from cgt.experiments import bsa as study
from cgt.methods import bsa, runner
from cgt.nn import GANConfig, Generator
from cgt.runs import RunRecord
from cgt.train import BestCheckpoint


def small_generator(classes: int = 3):
    torch.manual_seed(0)
    cfg = GANConfig(resolution=32, channels=1, num_classes=classes, ch=8, dim_z=16)
    generator = Generator(cfg)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, nn.Embedding):
                module.weight.normal_(0, 0.3)
    return generator.eval()


def test_identity_adapter_leaves_the_generator_unchanged():
    generator = small_generator()
    adapted = bsa.AdaptedGenerator(generator, num_images=4, reset_class=False).train()
    z, y = torch.randn(5, 16), torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        assert torch.equal(adapted(z, y), generator(z, y))


def test_only_scale_shift_and_latents_receive_gradients():
    adapted = bsa.AdaptedGenerator(small_generator(), num_images=6).train()
    network = nn.Module()  # a stand-in classifier: two conv stages
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    terms = bsa.bsa_loss(adapted, images, torch.tensor([0, 2, 5]), bsa.classifier_layers(network),
                         [1.0, 1.0])
    terms["loss"].backward()
    trainable = {id(p) for p in adapted.adapter_parameters()} | {id(adapted.latents)}
    for name, p in adapted.named_parameters():
        if id(p) in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None and not p.requires_grad, name
    assert len(adapted.adapters) == 2 * 3 + 2  # two per block, the output BN, the extra first pair
    assert adapted.latents.grad[[1, 3, 4]].abs().sum() == 0  # codes not in the batch stay put


def test_chamfer_regulariser_matches_brute_force():
    torch.manual_seed(1)
    z, r = torch.randn(4, 7), torch.randn(9, 7)
    d = [[float(((a - b) ** 2).sum()) / 7 for b in r] for a in z]
    expected = sum(min(d[i][j] for i in range(4)) for j in range(9)) / 9 + \
        sum(min(d[i][j] for j in range(9)) for i in range(4)) / 4
    assert bsa.chamfer_regulariser(z, r).item() == pytest.approx(expected, rel=1e-5)


def test_scale_shift_regulariser_is_zero_at_identity_and_truncation_holds():
    adapted = bsa.AdaptedGenerator(small_generator(), num_images=2)
    assert bsa.scale_shift_regulariser(adapted.adapters).item() == 0.0
    z = bsa.truncated_normal(500, 8, 0.3, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.3 and z.std() > 0.1
    pairs = list(itertools.islice(adapted.adapters, 2))
    with torch.no_grad():
        pairs[0].gamma.add_(1.0)
    assert bsa.scale_shift_regulariser(adapted.adapters).item() == pytest.approx(1.0)


def test_fitting_reduces_the_reconstruction_loss_and_rejects_mismatched_codes():
    generator = small_generator()
    torch.manual_seed(3)
    # targets the frozen generator can reach (reconstruction is possible), far enough from
    # its output at the zero codes the fit starts from (at z × 0.5 the start was already as
    # close as 60 steps get: the old check measured from iteration 10, after a warm-up bump)
    with torch.no_grad():
        targets = generator(torch.randn(4, 16) * 3.0, torch.zeros(4, dtype=torch.long))
    network = nn.Module()
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    adapted = bsa.AdaptedGenerator(generator, num_images=4, reset_class=False)
    config = bsa.BSAConfig(iterations=60, batch_size=4, lr_adapters=0.01, lr_latents=0.05,
                           eval_every=10)
    history = bsa.fit_bsa(adapted, targets, bsa.classifier_layers(network), [1.0], config,
                          progress=False)
    assert [h["iteration"] for h in history] == [0, 10, 20, 30, 40, 50, 60]
    # measured 0.85× the start: this tiny random generator's output moves little with z
    assert history[-1]["pixel"] < 0.9 * history[0]["pixel"]
    with pytest.raises(ValueError, match="latent codes"):
        bsa.fit_bsa(adapted, targets[:3], bsa.classifier_layers(network), [1.0],
                    bsa.BSAConfig(iterations=1, batch_size=2))
    with pytest.raises(ValueError, match="unknown also_train"):
        bsa.BSAConfig(iterations=1, batch_size=2, also_train="middle")


@pytest.mark.parametrize("part", ["first", "last", "all"])
def test_comparison_methods_update_the_chosen_weights_instead_of_scale_shift(part):
    generator = small_generator()
    adapted = bsa.AdaptedGenerator(generator, num_images=2)
    network = nn.Module()
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    before = {n: p.detach().clone() for n, p in adapted.generator.named_parameters()}
    bsa.fit_bsa(adapted, torch.rand(2, 1, 32, 32) * 2 - 1, bsa.classifier_layers(network), [1.0],
                bsa.BSAConfig(iterations=2, batch_size=2, also_train=part, lr_body=1e-2),
                progress=False)
    changed = {n for n, p in adapted.generator.named_parameters() if not torch.equal(p, before[n])}
    adapters = {n for n in before if ".adapt." in n}
    assert not changed & adapters  # the scale/shift stay at the identity
    assert torch.equal(adapted.first.gamma, torch.ones_like(adapted.first.gamma))
    body_changed = changed - adapters
    if part == "first":
        assert body_changed and all(n.startswith("linear.") for n in body_changed)
    elif part == "last":
        assert body_changed and all(n.startswith(("blocks.2.", "output_layer.")) for n in body_changed)
    else:
        assert any(n.startswith("blocks.0.") for n in body_changed)
    with pytest.raises(ValueError, match="unknown part"):
        bsa.body_parameters(adapted, "middle")


def test_calibrated_weights_equalise_layers_and_unknown_networks_are_refused(monkeypatch):
    network = nn.Module()
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    features = bsa.classifier_layers(network)
    images = torch.rand(6, 1, 32, 32) * 2 - 1
    weights = bsa.calibrated_weights(features, images, total=2.0)
    assert sum(weights) == pytest.approx(2.0)
    with torch.no_grad():
        contributions = [w * float(layer.abs().mean()) for w, layer in zip(weights, features(images))]
    assert contributions[0] == pytest.approx(contributions[1], rel=1e-4)
    with pytest.raises(ValueError, match="unknown perceptual"):
        bsa.perceptual_features("resnet")
    monkeypatch.delenv("CGT_VGG16", raising=False)
    with pytest.raises(FileNotFoundError, match="CGT_VGG16"):
        bsa.perceptual_features("vgg16")
    name, cgt_features = bsa.perceptual_features("auto")
    assert name.startswith("cgt-percnet-") and len(cgt_features(images)) == 6


def test_morphing_blends_from_the_exact_source_to_the_adapted_generator():
    generator = small_generator()
    adapted = bsa.AdaptedGenerator(generator, num_images=2)
    with torch.no_grad():
        for pair in adapted.adapters:
            pair.gamma.uniform_(0.5, 1.5)
            pair.beta.normal_(0, 0.3)
    z, y = torch.randn(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        adapted_out = adapted(z, y)
        with adapted.morphing(0.0):
            assert torch.equal(adapted(z, y), generator(z, y))
        with adapted.morphing(1.0):
            assert torch.equal(adapted(z, y), adapted_out)
        with adapted.morphing(0.5):
            halfway = adapted(z, y)
        assert not torch.equal(halfway, adapted_out) and not torch.equal(halfway, generator(z, y))
        assert torch.equal(adapted(z, y), adapted_out)  # the blend is restored on exit
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        with adapted.morphing(1.5):
            pass


def test_encoder_baseline_trains_encoder_and_scale_shift_but_not_the_codes():
    adapted = bsa.AdaptedGenerator(small_generator(), num_images=3).train()
    encoder = bsa.Encoder(1, 16)
    network = nn.Module()
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    terms = bsa.bsa_loss(adapted, images, torch.arange(3), bsa.classifier_layers(network), [1.0],
                         lambda_z=0.0, lambda_bn=0.0, encoder=encoder)
    terms["loss"].backward()
    assert terms["latent"].item() == 0.0 and terms["scale_shift"].item() == 0.0
    assert terms["loss"].item() == pytest.approx(terms["pixel"].item() + terms["perceptual"].item())
    assert all(p.grad is not None for p in encoder.parameters())
    assert all(p.grad is not None for p in adapted.adapter_parameters())
    assert adapted.latents.grad is None


def test_adversarial_scale_shift_starts_at_identity_and_trains_only_its_pairs():
    from cgt.methods.extension import extend_discriminator, extend_independent
    from cgt.nn import Discriminator

    generator = small_generator()
    torch.manual_seed(2)
    discriminator = extend_discriminator(Discriminator(generator.cfg).eval(), ["new"])
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.tensor([0, 1, 3, 3])
    with torch.no_grad():
        before = discriminator(x, y)
        wrapped = bsa.with_scale_shift(discriminator)
        assert torch.allclose(wrapped(x, y), before, atol=1e-6)
        pair = next(m for m in wrapped.modules() if isinstance(m, bsa.NormalisedScaleShift))
        pair.gamma.mul_(5.0)  # a uniform scale-up is divided away: D's Lipschitz bound holds
        assert torch.allclose(wrapped(x, y), before, atol=1e-6)
    extended = extend_independent(generator, ["new"], frozen_body=True)
    g_params, d_params = bsa.adversarial_scale_shift_parameters(extended, wrapped)
    assert {id(p) for p in g_params} == {id(p) for p in extended.rows_parameters()}
    pairs = [p for m in wrapped.modules() if isinstance(m, bsa.NormalisedScaleShift) for p in m.parameters()]
    assert len(pairs) == 2 * len(wrapped.blocks)
    assert {id(p) for p in d_params} == {id(p) for p in pairs} | {id(p) for p in wrapped.embed.parameters()}


def test_emoji_faces_are_the_face_subgroups_as_one_class():
    from cgt import data

    faces = data.load("emoji_faces", tiny=True)
    assert faces.classes == ["face"] and set(faces.labels) == {0}
    assert len(faces) > 25 and all(group.startswith("face-") for group in faces.info["subgroups"])
    assert faces.channels == 3


def test_evaluating_does_not_change_what_is_learned():
    network = nn.Module()
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    targets = torch.rand(3, 1, 32, 32) * 2 - 1
    latents = []
    for eval_every in (0, 2):
        torch.manual_seed(0)
        adapted = bsa.AdaptedGenerator(small_generator(), num_images=3)
        history = bsa.fit_bsa(adapted, targets, bsa.classifier_layers(network), [1.0],
                              bsa.BSAConfig(iterations=4, batch_size=2, eval_every=eval_every),
                              evaluate=lambda model, it: {"drawn": float(torch.randn(()))},
                              progress=False)
        latents.append(adapted.latents.detach().clone())
    assert [h["iteration"] for h in history] == [0, 2, 4]
    assert torch.equal(latents[0], latents[1])


def test_bsa_keeps_its_best_evaluation_across_a_resume_and_its_last_state_if_all_collapsed(tmp_path):
    network = nn.Module()
    network.trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    layers, targets = bsa.classifier_layers(network), torch.rand(3, 1, 32, 32) * 2 - 1
    fid = {0: 5.0, 2: 2.0, 4: 3.0, 6: 4.0}
    config = bsa.BSAConfig(iterations=6, batch_size=2, eval_every=2)

    def fit(keep, iterations, evaluate=lambda model, it: {"fid": fid[it]}, folder=tmp_path):
        adapted = bsa.AdaptedGenerator(small_generator(), num_images=3)
        bsa.fit_bsa(adapted, targets, layers, [1.0], replace(config, iterations=iterations),
                    evaluate=evaluate, keep=keep, checkpoint=folder / "last.pt", progress=False)
        return keep

    fit(BestCheckpoint(tmp_path), 4)  # interrupted after iteration 4
    kept = torch.load(tmp_path / "best.pt", weights_only=True)
    resumed = fit(BestCheckpoint(tmp_path), 6)
    assert resumed.metrics["iteration"] == 2 and resumed.metrics["fid"] == 2.0
    after = torch.load(tmp_path / "best.pt", weights_only=True)
    assert torch.equal(after["generator"]["latents"], kept["generator"]["latents"])
    assert after["metrics"] == resumed.metrics
    flat = fit(BestCheckpoint(tmp_path / "flat"), 4, lambda model, it: {"fid": 1.0, "collapsed": True},
               tmp_path / "flat")
    assert flat.metrics["iteration"] == 4 and flat.metrics["collapsed"]  # kept, flagged
    assert (tmp_path / "flat" / "best.pt").exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_every_method_of_a_row_trains_on_the_same_images(monkeypatch, seed):
    specs = {}

    def capture(spec, work):  # the run layer, stopped before any training
        specs[spec.name] = spec
        return RunRecord(spec.chapter, spec.name, spec.profile, config=spec.config, status="planned")

    monkeypatch.setattr(study, "run", capture)
    monkeypatch.setattr(runner, "run", capture)
    sizes = profiles.SIZES["bsa"]["smoke"]
    t = study.target("lfw", sizes["focus_shots"], sizes, seed=seed)
    for method in list(study.SUPERVISED) + list(study.ADVERSARIAL):
        study.fit(method, t, sizes, "smoke", progress=False)
    digests = {name: spec.config.get("images") or spec.config["target"]["images"]
               for name, spec in specs.items()}
    expected = study.faces(t).subset(study.training_indices(t)).digest()
    assert len(digests) == 8 and set(digests.values()) == {expected}
    scored = {(s.validation, s.test, s.selection_samples, s.final_samples, s.truncations, s.select_by)
              for s in (spec.scoring for spec in specs.values())}
    assert len(scored) == 1  # chosen and scored on the same splits, samples and thresholds
    # every run's random streams (batches; z for the adversarial arms, per-image codes for the
    # same-loss ones, so those two families are matched rather than shared) come from the seed
    assert {spec.seed for spec in specs.values()} == {seed}
    assert all(spec.config["train"]["seed"] == seed for spec in specs.values() if "train" in spec.config)
    assert {spec.scoring.training for spec in specs.values()} == {expected}  # novelty against them
    read = {"iterations", "batch_size", "eval_every", "eval_samples", "score_samples",
            "score_truncation", "lr_adapters", "lr_latents", "lr_body", "decay_at", "warmup",
            "perceptual", "perceptual_weight"}  # every size a same-loss run reads is in its key
    same_loss = [spec.config["sizes"] for spec in specs.values() if "sizes" in spec.config]
    assert len(same_loss) == len(study.SUPERVISED)
    assert all(s == {k: sizes[k] for k in read} for s in same_loss)


def test_a_seeds_split_is_disjoint_nested_and_its_own():
    sizes = profiles.SIZES["bsa"]["quick"]
    small, large = (study.target("lfw", n, sizes, seed=3) for n in (25, 50))
    parts = study.split(small)
    everything = np.concatenate([parts["test"], parts["validation"], parts["pool"]])
    assert sorted(everything) == list(range(len(study.faces(small))))
    assert (len(parts["test"]), len(parts["validation"])) == (25, 15)
    assert set(study.training_indices(small)) < set(study.training_indices(large))  # nested
    assert not set(study.training_indices(large)) & (set(parts["test"]) | set(parts["validation"]))
    other = study.split(study.target("lfw", 25, sizes, seed=4))
    assert not np.array_equal(other["test"], parts["test"])
    assert study.split_counts(large) == {"train": 50, "pool": 60, "validation": 15, "test": 25}
    with pytest.raises(ValueError, match="pool holds 60"):
        study.training_indices(study.target("lfw", 61, sizes))
    with pytest.raises(ValueError, match="leave none"):
        study.split(study.Target("lfw", 5, "animals", test=60, validation=40))


def test_split_scoring_chooses_a_threshold_on_validation_and_reports_it_on_test():
    sizes = profiles.SIZES["bsa"]["smoke"]
    t = study.target("lfw", 5, sizes)
    scoring = study.scoring(t, sizes)
    adapted = bsa.AdaptedGenerator(small_generator(), 5)
    metrics = scoring.evaluator()(adapted, 0)
    assert set(metrics["by_truncation"]) == {str(x) for x in sizes["truncation_grid"]} >= {"0.3", "None"}
    assert metrics["kid"] == min(metrics["by_truncation"].values())
    assert metrics["by_truncation"][str(metrics["truncation"])] == metrics["kid"]
    final = scoring.final(adapted, {"truncation": 0.5})
    assert final["truncation"] == 0.5 and final["n_real"] == sizes["split"]["test"]
    assert final["n_fake"] == sizes["score_samples"] and "test split" in final["real"]


def _record(history, best, score):
    return RunRecord("bsa", "r", "smoke", config={}, status="complete",
                     metrics={"history": history, "best": best, "score": score})


def test_collapsed_and_stuck_runs_are_failures_not_scores():
    good = {"kid": 3.0, "fid": 50.0, "kmmd": 0.2, "collapsed": False, "sample_std": 30.0}
    history = [{"iteration": 0, "pixel": 0.8}, {"iteration": 100, "pixel": 0.3}]
    t = study.Target("lfw", 5, "animals")
    assert study.failure(_record(history, {"iteration": 100}, good)) == ""
    assert study.row("bsa", t, _record(history, {"iteration": 100}, good))["kid"] == 3.0
    stuck = _record([{"iteration": 0, "pixel": 0.8}, {"iteration": 100, "pixel": 0.78}],
                    {"iteration": 100}, good)
    assert study.failure(stuck).startswith("never left the source")
    kept_start = _record(history, {"iteration": 0}, good)  # trained, but the start scored best
    assert study.failure(kept_start) == ""
    collapsed = _record(history, {"iteration": 100}, {**good, "collapsed": True, "sample_std": 0.4})
    assert "collapsed" in study.failure(collapsed)
    row = study.row("bsa", t, collapsed)
    assert np.isnan(row["kid"]) and np.isnan(row["fid"]) and "collapsed" in row["failure"]


def test_a_failed_arm_makes_its_claim_untestable_and_missing_size_runs_say_why():
    sizes = profiles.SIZES["bsa"]["quick"]
    worked = {"history": [{"iteration": 0, "kid": 9.0}, {"iteration": 100, "kid": 2.0},
                          {"iteration": 200, "kid": 2.1}], "best_iteration": 100, "memorisation_ratio": 1.0,
              "fitted_share": 1.0, "coverage": 0.5}
    frame = pd.DataFrame([{"method": m, "seed": s, "shots": 25, "target": "lfw", **worked,
                           "kid": np.nan if (m, s) == ("bsa", 1) else 1.0 + s,
                           "failure": "collapsed" if (m, s) == ("bsa", 1) else "—"}
                          for m in ("bsa", "transfergan", "update-all") for s in (0, 1, 2)])
    claim = study._claim("bsa-quality", "x", "superiority", ("BSA", "TransferGAN"))
    result = protocol.superiority(claim, study.by_seed(frame, "bsa"), study.by_seed(frame, "transfergan"))
    assert result.verdict == "untestable" and "BSA failed" in result.reason
    empty = pd.DataFrame([], columns=study.COLUMNS)
    disturbance = {"bsa": {"max_abs_difference": 0.0}}
    rows = study.claims(frame, empty, empty, pd.DataFrame(), disturbance, sizes)
    trend = [r for r in rows if "gains on BSA" in r.claim]
    assert len(trend) == 2 and all(r.verdict == "untestable" and "paper profile" in r.reason
                                   and "no runs of this arm" not in r.reason for r in trend)
    # quick runs neither the random source nor Update all on the emoji: their rows say so
    source = next(r for r in rows if r.claim.startswith("A pretrained source"))
    assert source.verdict == "untestable" and "source comparison is judged in the paper" in source.reason
    emoji = next(r for r in rows if r.claim == "At 25 images (emoji) BSA beats Update all")
    assert emoji.verdict == "untestable" and "Update all on emoji" in emoji.reason
    assert all(r.verdict == "untestable" for r in rows if r.claim.endswith(("(fidelity)", "(diversity)")))


def test_fitted_share_counts_reconstructions_nearest_their_own_image():
    images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (6, 3, 32, 32))).float()

    class Rendering:  # stands in for a fitted model: reconstruct(index) renders codes
        def __init__(self, render):
            self.reconstruct = render

    assert study.fitted_share(Rendering(lambda index: images[index]), images) == 1.0
    # one featureless image for every code: only the image it happens to be nearest matches
    blank = Rendering(lambda index: torch.zeros(len(index), 3, 32, 32))
    assert study.fitted_share(blank, images) == pytest.approx(1 / 6)
    # the codes of images 0 and 1 swapped: those two reconstructions match the wrong image
    swapped = Rendering(lambda index: images[index[[1, 0, 2, 3, 4, 5]]])
    assert study.fitted_share(swapped, images) == pytest.approx(4 / 6)


def test_the_random_source_gets_batch_statistics_of_its_own():
    generator = bsa.source_generator("random", seed=0)
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not generator.training
    assert all(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in norms)


def test_the_perceptual_network_is_shipped_checked_and_not_the_scorer(tmp_path):
    from cgt.metrics import feature_network_id
    from cgt.metrics import features as featmod
    from cgt.metrics import perceptual

    info = json.loads(perceptual.weights_file().with_suffix(".json").read_text())
    assert "lfw" not in info["test_accuracy"] and "emoji" not in info["test_accuracy"]
    assert info["test_accuracy"]["fashion_mnist"] > 0.8  # it learned its classes
    assert perceptual.perceptual_network_id() != feature_network_id()
    assert bsa.perceptual_choice("percnet") == perceptual.perceptual_network_id()
    copy = tmp_path / "perceptual_net.pt"
    shutil.copy(perceptual.weights_file(), copy)
    shutil.copy(perceptual.weights_file().with_suffix(".json"), tmp_path / "perceptual_net.json")
    copy.write_bytes(copy.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RuntimeError, match="train-perceptual"):
        featmod._load_checked(copy, perceptual.PerceptualNetwork, perceptual.COMMAND)


def test_the_stability_rule_takes_the_largest_rate_that_passes_at_every_seed():
    sizes = profiles.SIZES["bsa"]["smoke"]
    check = study.stability_check(sizes, [0.1], [100])
    assert list(check.columns) == ["rate", "seed", "start_l1", "end_l1", "least_spread"]
    frame = pd.DataFrame({"rate": [0.1, 0.1, 0.03, 0.03], "seed": [0, 1, 0, 1],
                          "start_l1": [0.8] * 4, "end_l1": [0.2, 0.2, 0.2, 0.2],
                          "least_spread": [2.0, 20.0, 6.0, 9.0]})
    assert study.stable_rate(frame) == 0.03  # 0.1 fell under twice the collapse threshold once
    assert study.stable_rate(frame.assign(end_l1=0.79)) is None  # every run stayed at the source


def test_the_perceptual_weight_is_checked_by_the_books_tuning_rule_on_tuning_seeds():
    sizes = {**profiles.SIZES["bsa"]["smoke"], "perceptual_grid": [0.3, 1.0, 3.0], "tuning_seeds": [100, 101]}
    outcome, trials = study.perceptual_check(sizes, profile="smoke")
    assert outcome.parameter == "perceptual weight" and "perceptual weight" in outcome.precondition("bsa").description
    assert set(trials.weight) >= {0.3, 1.0, 3.0} and set(trials.seed) == {100, 101}
    assert len(trials) == len(outcome.table)  # every trial of the rule, an edge's extension included
    assert trials.late_validation_kid.notna().all() and trials.fitted_share.between(0, 1).all()
    records = {json.loads(p.read_text())["config"]["sizes"]["perceptual_weight"]
               for p in study.record_path(study.CHAPTER, "x", "smoke").parent.glob("check-pw*-bsa-lfw-*.json")}
    assert records >= {0.3, 1.0, 3.0}  # each weight trained a run of its own, keyed by it
    with pytest.raises(ValueError, match="verdict seeds"):
        study.perceptual_check({**sizes, "tuning_seeds": [0, 101]}, profile="smoke")


def test_reference_rows_score_a_copy_of_the_training_set_and_the_untouched_source():
    sizes = profiles.SIZES["bsa"]["smoke"]
    t = study.target("lfw", sizes["focus_shots"], sizes, seed=1)
    copy, source = study.reference_rows(t, sizes)
    assert (copy["method"], source["method"]) == ("copy", "source")
    # the copy: every sample is a training image, so it is nearer than any held-out image is
    assert copy["memorisation_ratio"] == 0.0 and copy["nearer_than_held_out"] == 1.0
    assert copy["training_neighbours"] == len(study.training_indices(t))
    # the source draws animals, far from any face: nothing like a copy, and a worse test KID
    assert source["memorisation_ratio"] > 1.0 and source["kid"] > copy["kid"]
    assert source["truncation"] in {study.threshold_text(x) for x in sizes["truncation_grid"]}
