"""The knowledge-transfer block's algebra, class extension and the cGANTransfer runner."""

import pytest
import torch

from cgt.methods import cgantransfer as kt
from cgt.methods.extension import (ExtendedGenerator, as_plain_generator, extend_discriminator,
                                   extend_independent, fold_new_classes)
from cgt.nn import Discriminator, GANConfig, Generator
from cgt.train import TrainConfig, train_gan

NEW = ["new-a", "new-b"]


def small_pair(shared: bool = False, classes: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    cfg = GANConfig(resolution=32, channels=1, num_classes=classes, ch=8, dim_z=32 if shared else 16,
                    shared_dim=8 if shared else 0, hier=shared,
                    class_names=[f"old-{i}" for i in range(classes)])
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    with torch.no_grad():  # non-trivial per-class parameters, so classes differ
        for module in generator.modules():
            if isinstance(module, torch.nn.Embedding):
                module.weight.normal_(0, 0.3)
    return generator.eval(), discriminator.eval()


def one_hot_scores(generator: ExtendedGenerator, old_class: int):
    with torch.no_grad():
        for pair in kt.transfer_blocks(generator):
            for block in pair:
                block.scores.zero_()
                block.scores[:, old_class] = 1.0


def outputs(generator, labels, seed=1):
    torch.manual_seed(seed)
    z = torch.randn(len(labels), generator.cfg.dim_z)
    with torch.no_grad():
        return generator.eval()(z, torch.as_tensor(labels))


@pytest.mark.parametrize("shared", [False, True])
def test_one_hot_score_on_unupdated_prior_gives_back_the_old_class(shared):
    source, _ = small_pair(shared)
    extended = kt.extend_with_transfer(source, NEW, kt.TransferConfig())
    one_hot_scores(extended, old_class=2)
    new = outputs(extended, [4, 5, 4, 5])
    old = outputs(source, [2, 2, 2, 2])
    assert (new - old).abs().max() < 1e-5


def test_spectral_norm_on_the_prior_breaks_the_one_hot_identity():
    source, _ = small_pair()
    extended = kt.extend_with_transfer(source, NEW, kt.TransferConfig(sn_prior=True))
    one_hot_scores(extended, old_class=2)
    assert (outputs(extended, [4, 5]) - outputs(source, [2, 2])).abs().max() > 1e-3


def test_trainable_parameters_grow_linearly_with_new_classes():
    source, _ = small_pair()
    layers, old = 6, source.cfg.num_classes
    channels = [block[0].bn1.num_features for block in source.blocks] + \
               [block[0].bn2.num_features for block in source.blocks]
    counts = []
    for m in range(1, 5):
        extended = kt.extend_with_transfer(source, [f"n{i}" for i in range(m)])
        counts.append(sum(p.numel() for p in extended.rows_parameters()))
    steps = {b - a for a, b in zip(counts, counts[1:])}
    assert len(steps) == 1
    # per new class and layer, for scale and shift: N scores + C residual entries
    assert steps.pop() == 2 * sum(old + c for c in channels)
    assert len(channels) == layers


def test_folded_and_plain_generators_give_identical_outputs():
    source, _ = small_pair()
    extended = kt.extend_with_transfer(source, NEW, kt.TransferConfig.official())
    with torch.no_grad():
        for p in extended.rows_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    labels = [0, 3, 4, 5, 5, 4]
    reference = outputs(extended, labels)
    assert torch.equal(outputs(fold_new_classes(extended), labels), reference)
    assert torch.equal(outputs(as_plain_generator(extended), labels), reference)
    folded = fold_new_classes(extended)
    assert sum(p.numel() for p in folded.rows_parameters()) == \
        2 * len(NEW) * sum(layer.base.num_features for layer in folded.extended_layers)


def test_training_leaves_old_classes_untouched_unless_statistics_update():
    source, discriminator = small_pair()
    images = torch.rand(16, 1, 32, 32) * 2 - 1
    labels = torch.tensor([4, 5] * 8)
    config = TrainConfig(iterations=3, batch_size=8, lr_g=1e-2, precision="fp32", device="cpu")
    before = outputs(source, [0, 1, 2, 3])
    for transfer, should_match in ((kt.TransferConfig(), True),
                                   (kt.TransferConfig(update_bn_stats=True), False)):
        extended = kt.extend_with_transfer(source, NEW, transfer)
        start_rows = [p.detach().clone() for p in extended.rows_parameters()]
        train_gan(extended, extend_discriminator(discriminator, NEW), images, labels, config,
                  select_parameters=kt.bn_stage_parameters, regulariser=kt.transfer_penalty,
                  progress=False)
        moved = any(not torch.equal(a, b) for a, b in zip(start_rows, extended.rows_parameters()))
        assert moved
        difference = (outputs(extended, [0, 1, 2, 3]) - before).abs().max().item()
        assert (difference == 0.0) is should_match


def test_penalty_matches_equation_7_and_the_official_means():
    source, _ = small_pair()
    for config in (kt.TransferConfig(lambda_r=0.3, lambda_s=0.7),
                   kt.TransferConfig.official(lambda_r=0.3, lambda_s=0.7)):
        extended = kt.extend_with_transfer(source, NEW, config)
        blocks = [b for pair in kt.transfer_blocks(extended) for b in pair]
        reduce = torch.mean if config.mean_penalties else torch.sum
        expected = 0.3 * sum(reduce(b.residual ** 2) for b in blocks) + \
            0.7 * sum(reduce(t.abs()) for b in blocks for t in b.score_tensors())
        assert torch.allclose(kt.transfer_penalty(extended), expected)


def test_shared_scores_are_one_tensor_per_parameter_kind():
    source, _ = small_pair()
    extended = kt.extend_with_transfer(source, NEW, kt.TransferConfig(shared_scores=True))
    pairs = kt.transfer_blocks(extended)
    assert all(pair[0].scores is pairs[0][0].scores for pair in pairs)
    assert pairs[0][0].scores is not pairs[0][1].scores


def test_pseudo_classes_and_first_layer_scores():
    source, _ = small_pair()
    extended = kt.extend_with_transfer(source, NEW)
    pseudo = kt.pseudo_class_generator(extended)
    # an un-updated prior: pseudo-class j is old class j
    assert (outputs(pseudo, [4 + 1, 4 + 3]) - outputs(source, [1, 3])).abs().max() < 1e-5
    with torch.no_grad():
        for pair in kt.transfer_blocks(extended):
            for block in pair:
                block.scores.normal_()
    full = kt.with_scores_of_first_layer(extended, len(extended.extended_layers))
    assert torch.equal(outputs(full, [4, 5]), outputs(extended, [4, 5]))
    first_only = kt.with_scores_of_first_layer(extended, 1)
    assert not torch.equal(outputs(first_only, [4, 5]), outputs(extended, [4, 5]))
    table = kt.learned_scores(extended)
    assert len(table) == 6 * 2 * len(NEW) * 4


def test_independent_rows_start_at_the_identity_and_keep_old_classes():
    source, discriminator = small_pair()
    extended = extend_independent(source, NEW)
    assert all(float(p.detach().abs().sum()) == 0.0 for p in extended.rows_parameters())
    assert torch.equal(outputs(extended, [0, 1, 2]), outputs(source, [0, 1, 2]))
    wider = extend_discriminator(discriminator, NEW)
    assert wider.embed.weight.shape[0] == 6
    x = torch.randn(2, 1, 32, 32)
    assert torch.allclose(wider.eval().features(x), discriminator.eval().features(x))


def test_the_mean_start_control_starts_where_cgantransfer_starts_but_moves_independently():
    source = small_pair()[0]
    labels = [4, 5, 4, 5]  # the new classes
    ours = kt.extend_with_transfer(source, NEW)
    control = extend_independent(source, NEW, start="mean")
    identity = outputs(extend_independent(source, NEW), labels)
    # a test that can fail: the mean start differs from BSA's identity start
    assert torch.allclose(outputs(control, labels), outputs(ours, labels), atol=1e-5)
    assert not torch.allclose(outputs(control, labels), identity, atol=1e-3)
    assert all(isinstance(layer.new_gain.weight, torch.nn.Parameter) for layer in control.extended_layers)
    with pytest.raises(ValueError, match="unknown start point"):
        extend_independent(source, NEW, start="median")


@pytest.mark.parametrize("tunable_prior", [True, False])
def test_fine_tuning_never_trains_a_prior_copy_or_old_class_tables(tunable_prior):
    source = small_pair()[0]
    extended = kt.extend_with_transfer(source, NEW, kt.TransferConfig(tunable_prior=tunable_prior))
    tuned = kt.finetune_stage(extended)
    trained = {id(p) for p in kt.finetune_parameters(tuned, small_pair()[1])[0]}
    priors = [p for pair in kt.transfer_blocks(tuned) for b in pair for p in b.prior.parameters()]
    scores = [p for pair in kt.transfer_blocks(tuned) for b in pair for p in b.score_tensors()]
    old_tables = [p for layer in tuned.extended_layers for p in layer.base.parameters()]
    assert priors and scores and old_tables
    assert not trained & {id(p) for p in priors + scores + old_tables}
    body = {id(p) for p in tuned.body_parameters()}
    assert body and body <= trained  # the copied convolutions and linear layers do train


def test_bad_extensions_are_refused():
    source, _ = small_pair()
    with pytest.raises(ValueError, match="already classes"):
        kt.extend_with_transfer(source, ["old-1"])
    with pytest.raises(ValueError, match="at least one"):
        extend_independent(source, [])
    cfg = GANConfig(num_classes=0, ch=8, dim_z=16)
    with pytest.raises(ValueError, match="class-conditional"):
        extend_independent(Generator(cfg), NEW)
    with pytest.raises(ValueError, match="residual_init"):
        kt.TransferConfig(residual_init="ortho")
    with pytest.raises(ValueError, match="shared-embedding"):
        as_plain_generator(kt.extend_with_transfer(small_pair(shared=True)[0], NEW))


def test_a_transfer_run_is_recorded_reloadable_and_skipped_when_complete(tmp_path, monkeypatch):
    from cgt import api
    from cgt.methods.runner import run_transfer
    from cgt.methods.transfer import TransferTask
    from cgt.metrics import SCORING_SEED
    from cgt.runs import load_run

    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    task = TransferTask("fashion8", "fashion_mnist", ("shirt",), shots=4, seed=0, tiny=True)
    config = TrainConfig(iterations=2, batch_size=4, eval_every=1, device="cpu")
    record = run_transfer("cgantransfer", task, config, profile="smoke", eval_samples=32,
                          score_samples=48, progress=False)
    assert record.status == "complete"
    assert [h["iteration"] for h in record.metrics["history"]] == [0, 1, 2]
    assert record.metrics["best"]["fid"] == min(h["fid"] for h in record.metrics["history"])
    score = record.metrics["score"]  # the chosen checkpoint scored afresh, on another z stream
    assert score["n_fake"] == 48 and score["seed"] == SCORING_SEED
    assert score["fid"] != record.metrics["best"]["fid"] and "kid_std" in score
    assert not (tmp_path / "cgantransfer" / record.name / "last.pt").exists()
    generator = load_run("cgantransfer", record.name, "smoke")  # from the record alone
    assert generator.new_classes == [8]
    assert api.sample_grid(api.load(record.path), 2).shape == (32, 2 * 33 - 1, 1)
    again = run_transfer("cgantransfer", task, config, profile="smoke", eval_samples=32,
                         score_samples=48, progress=False)
    assert again.started == record.started  # the complete record was reused, not rerun
    with pytest.raises(ValueError, match="unknown method"):
        run_transfer("magic", task, config, profile="smoke", eval_samples=32, score_samples=32)


def test_table3s_control_trains_the_bn_stage_of_a_copy_and_fine_tuning_the_body():
    from cgt.methods.transfer import TransferTask, build

    task = TransferTask("fashion8-16", "fashion_mnist", ("shirt",), shots=4, seed=0, tiny=True)
    start = build("cgantransfer", task)[0]
    control, d, select, _, _ = build("bn-continued", task, start=start)
    tuned, _, select_tuned, _, _ = build("finetune", task, start=start)
    trained = {id(p) for p in select(control, d)[0]}
    assert control is not start and trained == {id(p) for p in control.rows_parameters()}
    assert not trained & {id(p) for p in control.body_parameters()}
    assert {id(p) for p in tuned.body_parameters()} <= {id(p) for p in select_tuned(tuned, d)[0]}
    with pytest.raises(ValueError, match="bn-continued continues a trained"):
        build("bn-continued", task)


def test_a_runs_initialisation_does_not_depend_on_whether_the_source_was_loaded_before():
    from cgt import checkpoints
    from cgt.methods.transfer import TransferTask, build

    task = TransferTask("fashion8-16", "fashion_mnist", ("shirt",), shots=4, seed=3, tiny=True)
    checkpoints._loaded_source.cache_clear()
    first = build("bsa", task)[1].state_dict()  # this call loads the source
    again = build("bsa", task)[1].state_dict()  # this one finds it loaded
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)


class _Captured(Exception):
    pass


def test_the_arms_of_a_unit_share_images_discriminator_init_batches_and_z_stream(tmp_path, monkeypatch):
    """Pairing: ours, BSA and the mean-start control at one (setting, seed) train on the same
    k-shot images, from the same initial D, with that seed's batch order and z stream
    (TrainConfig.seed drives both in train_gan)."""
    from cgt.methods import runner
    from cgt.methods.transfer import TransferTask

    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    seen = {}

    def fake_train_gan(generator, discriminator, real, labels, config, **kwargs):
        seen[len(seen)] = (real.clone(), labels.clone(), config.seed,
                           {k: v.clone() for k, v in discriminator.state_dict().items()})
        raise _Captured

    monkeypatch.setattr(runner, "train_gan", fake_train_gan)
    task = TransferTask("fashion8-16", "fashion_mnist", ("shirt", "ankle-boot"), shots=4, seed=3, tiny=True)
    config = TrainConfig(iterations=2, batch_size=4, eval_every=1, device="cpu")
    for method in ("cgantransfer", "bsa", "bsa-mean"):
        with pytest.raises(_Captured):
            runner.run_transfer(method, task, config, profile="smoke", eval_samples=8,
                                score_samples=8, progress=False, name=f"{method}-pairing")
    (images, labels, seed, d_state), *others = seen.values()
    assert seed == 3
    for other_images, other_labels, other_seed, other_d in others:
        assert torch.equal(images, other_images) and torch.equal(labels, other_labels)
        assert other_seed == seed
        assert d_state.keys() == other_d.keys() and all(torch.equal(d_state[k], other_d[k]) for k in d_state)
