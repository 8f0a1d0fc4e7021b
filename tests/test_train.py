"""The training loop: parameter selection, resume, divergence, best-by-FID."""

import pytest
import torch

from cgt.nn import Discriminator, GANConfig, Generator
from cgt.train import DivergenceError, TrainConfig, plateaued, train_gan


def _setup(seed=0):
    torch.manual_seed(seed)
    cfg = GANConfig(num_classes=2, ch=4, dim_z=8)
    images = torch.rand(40, 1, 32, 32) * 2 - 1
    labels = torch.arange(40) % 2
    return Generator(cfg), Discriminator(cfg), images, labels


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_only_selected_parameters_change():
    g, d, x, y = _setup()
    before = {k: v.clone() for k, v in g.named_parameters()}
    bn_only = lambda g, d: ([p for n, p in g.named_parameters() if ".bn" in n], list(d.parameters()))
    train_gan(g, d, x, y, TrainConfig(iterations=2, batch_size=8, device="cpu"),
              select_parameters=bn_only, progress=False)
    after = dict(g.named_parameters())
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {k for k in before if ".bn" in k}


def test_resume_after_interruption_is_bit_identical(tmp_path):
    config = TrainConfig(iterations=6, batch_size=8, checkpoint_every=3, ema_decay=0.9,
                         device="cpu", seed=1)
    g, d, x, y = _setup()
    train_gan(g, d, x, y, config, out_dir=tmp_path / "straight", progress=False)

    g2, d2, _, _ = _setup()
    halfway = TrainConfig(**{**config.__dict__, "iterations": 3})
    train_gan(g2, d2, x, y, halfway, out_dir=tmp_path / "resumed", progress=False)
    g3, d3, _, _ = _setup(seed=99)  # fresh objects: everything must come from the checkpoint
    result = train_gan(g3, d3, x, y, config, out_dir=tmp_path / "resumed", progress=False)
    for key, value in g.state_dict().items():
        assert torch.equal(value, g3.state_dict()[key]), key
    for key, value in d.state_dict().items():
        assert torch.equal(value, d3.state_dict()[key]), key
    assert result.ema is not None


def test_divergence_names_the_iteration_and_term():
    g, d, x, y = _setup()
    with pytest.raises(DivergenceError, match="generator loss became nan at iteration 1"):
        train_gan(g, d, x, y, TrainConfig(iterations=3, batch_size=8, device="cpu"),
                  regulariser=lambda g: torch.tensor(float("nan")), progress=False)


def test_best_by_fid_is_tracked_and_history_recorded(tmp_path):
    g, d, x, y = _setup()
    scores = iter([6.0, 5.0, 3.0, 4.0])
    result = train_gan(g, d, x, y, TrainConfig(iterations=3, batch_size=8, eval_every=1,
                                               device="cpu"),
                       evaluate=lambda gen, it: {"fid": next(scores)}, out_dir=tmp_path,
                       progress=False)
    assert [h["iteration"] for h in result.history] == [0, 1, 2, 3]  # the start is logged
    assert [h["fid"] for h in result.history] == [6.0, 5.0, 3.0, 4.0]
    assert result.best["iteration"] == 2
    assert torch.load(tmp_path / "best.pt", weights_only=False)["metrics"]["fid"] == 3.0


def test_a_run_that_only_gets_worse_keeps_its_start(tmp_path):
    g, d, x, y = _setup()
    start = {k: v.clone() for k, v in g.state_dict().items()}
    scores = iter([1.0, 2.0, 3.0])
    result = train_gan(g, d, x, y, TrainConfig(iterations=2, batch_size=8, eval_every=1,
                                               device="cpu"),
                       evaluate=lambda gen, it: {"fid": next(scores)}, out_dir=tmp_path,
                       progress=False)
    assert result.best["iteration"] == 0
    kept = torch.load(tmp_path / "best.pt", weights_only=False)["generator"]
    assert all(torch.equal(kept[k], start[k]) for k in start)


def test_a_collapsed_evaluation_is_never_the_best(tmp_path):
    g, d, x, y = _setup()
    scores = iter([(6.0, False), (5.0, False), (1.0, True), (4.0, False)])  # FID 1.0 from a constant output
    result = train_gan(g, d, x, y, TrainConfig(iterations=3, batch_size=8, eval_every=1,
                                               device="cpu"),
                       evaluate=lambda gen, it: dict(zip(("fid", "collapsed"), next(scores))),
                       out_dir=tmp_path, progress=False)
    assert result.best["iteration"] == 3 and result.best["fid"] == 4.0
    g, d, x, y = _setup()
    flat = train_gan(g, d, x, y, TrainConfig(iterations=2, batch_size=8, eval_every=1, device="cpu"),
                     evaluate=lambda gen, it: {"fid": 1288.0, "collapsed": True},
                     out_dir=tmp_path / "flat", progress=False)
    assert flat.best["collapsed"] and flat.best["iteration"] == 2  # kept, flagged, never a score
    assert (tmp_path / "flat" / "best.pt").exists()


def test_patience_stops_a_run_whose_score_stopped_improving(tmp_path):
    g, d, x, y = _setup()
    scores = iter([6.0, 5.0, 3.0, 4.0, 3.5, 1.0, 0.5])
    result = train_gan(g, d, x, y, TrainConfig(iterations=6, batch_size=8, eval_every=1, patience=2,
                                               device="cpu"),
                       evaluate=lambda gen, it: {"fid": next(scores)}, out_dir=tmp_path,
                       progress=False)
    # 4.0 and 3.5 did not beat 3.0: stopped after iteration 4, never saw the later 1.0
    assert [h["iteration"] for h in result.history] == [0, 1, 2, 3, 4]
    assert result.iterations == 4 and result.best["iteration"] == 2
    assert plateaued([{"fid": 3.0}, {"fid": 2.0}, {"fid": 2.5}], "fid", 1)
    assert not plateaued([{"fid": 3.0}, {"fid": 2.0}, {"fid": 1.5}], "fid", 1)
    assert not plateaued([{"fid": 3.0}, {"fid": 4.0}], "fid", 2)  # too few evaluations to judge
    assert plateaued([{"fid": 3.0}, {"fid": 1.0, "collapsed": True}], "fid", 1)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=2)  # without evaluations there is nothing to be patient about


def test_wrong_images_and_labels_are_refused_with_what_to_do():
    g, d, x, y = _setup()
    config = TrainConfig(iterations=1, batch_size=4, device="cpu")
    with pytest.raises(ValueError, match="N×1×32×32 .* got \\(40, 3, 32, 32\\).*resized"):
        train_gan(g, d, x.repeat(1, 3, 1, 1), y, config, progress=False)
    with pytest.raises(ValueError, match="floats in \\[-1, 1\\].*to_tensor"):
        train_gan(g, d, (x + 1) * 127.5, y, config, progress=False)
    with pytest.raises(ValueError, match="labels must lie in 0..1, got 0..5"):
        train_gan(g, d, x, y * 5, config, progress=False)
    with pytest.raises(ValueError, match="one label per image"):
        train_gan(g, d, x, None, config, progress=False)


def test_an_unwritable_output_folder_is_refused_before_training(tmp_path):
    g, d, x, y = _setup()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write checkpoints to .*a-file/run.*writable folder"):
        train_gan(g, d, x, y, TrainConfig(iterations=1, batch_size=4, device="cpu"),
                  out_dir=blocker / "run", progress=False)


def test_non_finite_weights_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    g, d, x, y = _setup()
    config = TrainConfig(iterations=2, batch_size=4, checkpoint_every=1, device="cpu")
    train_gan(g, d, x, y, config, out_dir=tmp_path, progress=False)

    def poison_at_iteration_three(generator):
        if torch.load(tmp_path / "last.pt", weights_only=False)["iteration"] == 2:
            with torch.no_grad():  # the loss stays finite; only the weights go bad
                generator.output_layer[0].bias.fill_(float("nan"))
        return torch.zeros(())

    longer = TrainConfig(**{**config.__dict__, "iterations": 4})
    with pytest.raises(DivergenceError, match="generator weights became non-finite "
                                              "\\(output_layer.0.bias\\) by iteration 3"):
        train_gan(g, d, x, y, longer, out_dir=tmp_path, regulariser=poison_at_iteration_three,
                  progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["iteration"] == 2


def test_precision_switch_and_fast_path_choice():
    from cgt.train import fast_path

    cpu = torch.device("cpu")
    assert fast_path(cpu, "fp32") == (None, False)
    assert fast_path(cpu, "bf16") == (torch.bfloat16, True)
    with pytest.raises(ValueError, match="valid: auto, fp32, bf16"):
        TrainConfig(precision="fp16")
    results = {}
    for precision in ("fp32", "bf16"):
        g, d, x, y = _setup()
        train_gan(g, d, x, y, TrainConfig(iterations=2, batch_size=8, device="cpu",
                                          precision=precision), progress=False)
        results[precision] = g.output_layer[2].parametrizations.weight.original.detach().clone()
    assert all(torch.isfinite(r).all() for r in results.values())
    assert not torch.equal(results["fp32"], results["bf16"])  # the switch really changes the path


def test_fast_autocast_follows_the_precision_switch():
    from cgt.train import fast_autocast

    cpu = torch.device("cpu")
    a = torch.randn(4, 4)
    with fast_autocast(cpu, "fp32"):
        assert (a @ a).dtype == torch.float32
    with fast_autocast(cpu, "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        fast_autocast(cpu, "fp8")


def test_evaluating_does_not_change_what_is_trained():
    class DrawsFromTheGlobalRNG(Generator):  # as CTF's generator draws its low-quality inputs
        def forward(self, z, y=None):
            return super().forward(z + 0.1 * torch.randn_like(z), y)

    weights = []
    for eval_every in (0, 1):
        _, d, x, y = _setup()
        g = DrawsFromTheGlobalRNG(GANConfig(num_classes=2, ch=4, dim_z=8))
        train_gan(g, d, x, y, TrainConfig(iterations=2, batch_size=8, eval_every=eval_every,
                                          device="cpu"),
                  evaluate=lambda gen, it: {"fid": float(gen(torch.randn(2, 8), torch.zeros(2).long()).mean())},
                  progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in g.parameters()]))
    assert torch.equal(weights[0], weights[1])
