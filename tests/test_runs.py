"""Profiles and run records."""

import dataclasses
import json
import platform

import numpy as np
import pytest
import torch

from cgt import atomic, builders, claims, data, machine, profiles, runs
from cgt.checkpoints import export_model
from cgt.metrics.evaluate import ImageScoring, RunScoring, Scoring, SplitScoring
from cgt.experiments import bsa as bsa_study
from cgt.experiments import ctf as ctf_study


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="'fast'; valid: smoke, quick, paper"):
        profiles.check_profile("fast")
    monkeypatch.setenv("CGT_PROFILE", "smoke")
    assert profiles.default_profile() == "smoke"
    monkeypatch.delenv("CGT_PROFILE")
    assert profiles.default_profile() == "quick"
    with pytest.raises(KeyError, match="known: .*data"):
        profiles.sizes("nope", "quick")


def test_sizes_are_read_only():
    sizes = profiles.sizes("data", "smoke")
    with pytest.raises(TypeError):
        sizes["tiny"] = False


def test_run_record_is_written_atomically_with_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    with runs.RunRecord("demo", "first", "smoke", config={"k": 3}, seed=7) as record:
        record.metrics["fid"] = 12.5
        claim = claims.Claim("demo", "cgantransfer-old-classes", "it works", "exact", "Δ", ("a", "b"))
        record.add_claim(claims.exact(claim, 0.0, 0.0, "Δ = 0"))
    saved = json.loads((tmp_path / "demo" / "first.json").read_text())
    assert saved["status"] == "complete" and saved["metrics"] == {"fid": 12.5}
    assert saved["seed"] == 7 and saved["wall_time_s"] >= 0
    assert {"python", "torch", "numpy", "cgt"} <= set(saved["versions"])
    assert saved["git_revision"] and saved["device"].startswith(("cpu", "cuda"))
    assert not list(tmp_path.rglob("*.tmp"))
    assert runs.summary_table("smoke").empty  # a construction check is not a paper's claim
    checks = runs.summary_table("smoke", checks=True).to_dict("records")
    assert len(checks) == 1 and checks[0]["claim"] == "it works" and checks[0]["verdict"] == "supported"
    assert checks[0]["ours"] == "Δ = 0" and checks[0]["paper"] == claim.paper


def test_a_failing_run_is_recorded_as_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    with pytest.raises(RuntimeError):
        with runs.RunRecord("demo", "broken", "smoke"):
            raise RuntimeError("diverged")
    saved = json.loads((tmp_path / "demo" / "broken.json").read_text())
    assert saved["status"] == "failed: RuntimeError: diverged"


def test_cpu_description_names_the_model_its_bf16_units_and_kernel_caps(monkeypatch):
    cpuinfo = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
               "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    monkeypatch.setattr(machine, "_cpuinfo", lambda: cpuinfo)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    described = machine.cpu_description()
    assert described.startswith("cpu (Intel(R) Xeon(R) Platinum 8481C, ")
    assert described.endswith("; amx_bf16 avx512_bf16 avx512f avx2; ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16)")
    assert machine.cpu_has_bf16()
    monkeypatch.setattr(machine, "_cpuinfo", lambda: "model name\t: AMD EPYC\nflags\t\t: fpu avx2\n")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert machine.cpu_description().endswith(f"{platform.machine()}; avx2)")
    assert not machine.cpu_has_bf16()


def test_short_device_names():
    assert runs.short_device("cuda (NVIDIA H100 80GB HBM3)") == "H100"
    assert runs.short_device("cpu (2 cores, x86_64)") == "CPU"


def _spec(config, name="a", profile="quick", **fields):
    return runs.RunSpec("demo", name, profile, config, 0, **fields)


def test_the_run_layer_records_the_kept_state_and_drops_the_resume_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))

    def train(record, folder):
        atomic.write_text(folder / "last.pt", "what an interrupted run resumes from")
        return {"fid": 3.0, "iteration": 2}

    record = runs.run(_spec({"k": 1}), train)
    assert record.metrics["best"] == {"fid": 3.0, "iteration": 2}
    assert not (record.path.with_suffix("") / "last.pt").exists()
    assert json.loads(record.path.read_text())["metrics"]["best"]["iteration"] == 2


def test_typed_run_sizes_take_their_fields_from_every_profile_and_name_a_missing_one():
    @dataclasses.dataclass(frozen=True)
    class Demo(profiles.RunSizes):
        iterations: int
        lr: float

    assert Demo.of({"iterations": 3, "lr": 0.1, "seeds": [0]}) == Demo(3, 0.1)
    assert Demo.of(Demo(3, 0.1)) == Demo(3, 0.1)
    with pytest.raises(KeyError, match="needs the sizes lr"):
        Demo.of({"iterations": 3})
    for profile in profiles.PROFILES:
        bsa_study.AdaptationSizes.of(profiles.sizes("bsa", profile))
        cell = ctf_study.CellSizes.of(profiles.sizes("ctf", profile))
        assert ctf_study.PhaseOneSizes.of(cell).g_lh == cell.g_lh


def test_a_run_is_skipped_when_complete_and_rerun_when_what_it_computes_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    calls = []

    def work(record, folder):
        calls.append(folder)
        record.metrics["fid"] = 1.0

    first = runs.run(_spec({"k": 1}), work)
    again = runs.run(_spec({"k": 1}), work)
    assert len(calls) == 1 and again.metrics == {"fid": 1.0} and again.status == "complete"
    assert again.key == first.key == _spec({"k": 1}).key
    runs.run(_spec({"k": 2}), work)  # another config: run again
    assert len(calls) == 2 and calls[0] == tmp_path / "demo" / "a"
    monkeypatch.setattr(runs, "code_fingerprint", lambda modules: "other code")
    runs.run(_spec({"k": 2}), work)  # the same config computed by other code: run again
    assert len(calls) == 3 and first.path == again.path


def test_the_key_follows_what_is_computed_not_the_name():
    assert _spec({"k": 1}, name="a").key == _spec({"k": 1}, name="b").key
    assert _spec({"k": 1}).key != _spec({"k": 1.5}).key
    assert _spec({"k": 1}).key != _spec({"k": 1}, code=runs.COMPUTING_CODE + ("cgt.experiments.bsa",)).key


def test_the_key_tells_machines_that_compute_differently_apart(monkeypatch):
    here = _spec({"k": 1}).key
    monkeypatch.setattr(runs, "compute_kind", lambda: "cuda-fp32")
    assert _spec({"k": 1}).key != here


def test_the_code_fingerprint_changes_with_the_source(tmp_path, monkeypatch):
    package = tmp_path / "fingerprinted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "part.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = runs.code_fingerprint(("fingerprinted",))
    (package / "part.py").write_text("VALUE = 2\n")
    runs.code_fingerprint.cache_clear()
    assert runs.code_fingerprint(("fingerprinted",)) != before
    runs.code_fingerprint.cache_clear()


def test_an_interrupted_run_resumes_only_under_its_own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    seen = []

    def interrupted(record, folder):
        seen.append((folder / "last.pt").exists())
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "last.pt").write_text("checkpoint")
        raise KeyboardInterrupt

    for config in ({"k": 1}, {"k": 1}, {"k": 2}):
        with pytest.raises(KeyboardInterrupt):
            runs.run(_spec(config), interrupted)
    assert seen == [False, True, False]  # resumed once; another key's files were discarded
    assert json.loads(_spec({"k": 2}).path.read_text())["key"] == _spec({"k": 2}).key


def tiny_model(config):
    return torch.nn.Linear(config["width"], 1)


def test_a_run_is_rebuilt_and_scored_from_its_record_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    monkeypatch.setitem(builders.BUILDERS, "tiny", tiny_model)
    scored = []

    @dataclasses.dataclass(frozen=True)
    class Scoring:  # stands in for cgt.metrics.Scoring: records what it is given
        select_by: str = "fid"
        final_samples: int = 10

        def evaluator(self):
            return lambda model, iteration: {}

        def final(self, model, best=None):
            scored.append(model)
            return {"fid": 2.0}

    def work(record, folder):
        model = tiny_model({"width": 3})
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"generator": model.state_dict()}, folder / "best.pt")
        scored.append(model)

    spec = runs.RunSpec("demo", "m", "quick", {"width": 3}, 0, builder="tiny",
                        scoring=Scoring())
    record = runs.run(spec, work)
    assert record.metrics["score"] == {"fid": 2.0}
    trained, rescored = scored
    assert torch.equal(rescored.weight, trained.weight) and rescored is not trained
    loaded = runs.load_run("demo", "m", "quick")
    assert torch.equal(loaded.weight, trained.weight) and not loaded.training
    with pytest.raises(FileNotFoundError, match="run the experiment first"):
        runs.load_run("demo", "missing", "quick")


def test_one_load_reads_a_source_by_name_a_model_file_and_a_run_record(tmp_path, monkeypatch):
    monkeypatch.setitem(builders.BUILDERS, "tiny", tiny_model)
    source = builders.load("fashion8")
    assert source.cfg.num_classes == 8 and not source.training
    export_model(tmp_path / "mine.pt", source, None)
    exported = builders.load(tmp_path / "mine.pt").state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in source.state_dict().items())
    trained = tiny_model({"width": 3})
    (tmp_path / "run").mkdir()
    for which, factor in (("best", 1.0), ("last", 2.0)):
        torch.save({"generator": {k: v * factor for k, v in trained.state_dict().items()}},
                   tmp_path / "run" / f"{which}.pt")
    (tmp_path / "run.json").write_text(json.dumps({"name": "run", "builder": "tiny",
                                                   "config": {"width": 3}}))
    assert torch.equal(builders.load(tmp_path / "run.json").weight, trained.weight)
    assert torch.equal(builders.load(tmp_path / "run.json", "last").weight, 2 * trained.weight)
    (tmp_path / "chapter.json").write_text(json.dumps({"name": "chapter", "config": {}}))
    with pytest.raises(builders.CheckpointError, match="keeps no model"):
        builders.load(tmp_path / "chapter.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(builders.CheckpointError, match="is not a run record"):
        builders.load(tmp_path / "list.json")
    with pytest.raises(builders.CheckpointError, match="neither a source model"):
        builders.load("no-such-source")


def test_every_scoring_is_what_the_run_layer_asks_for_and_nothing_else_is_taken():
    images = data.load("lfw", tiny=True).subset(np.arange(4))
    for scoring in (Scoring("fashion_mnist", tiny=True), ImageScoring.of(images),
                    SplitScoring.of(images, images)):
        assert isinstance(scoring, RunScoring) and dataclasses.is_dataclass(scoring)
        runs.RunSpec("demo", "a", "quick", {}, scoring=scoring)
    for wrong in (lambda model: {"fid": 0.0}, Scoring):  # a function; the class, not a scoring
        with pytest.raises(TypeError, match="must be a RunScoring dataclass"):
            runs.RunSpec("demo", "a", "quick", {}, scoring=wrong)


def test_a_table_row_gets_no_score_from_a_failed_or_collapsed_run():
    record = runs.RunRecord("demo", "a", "quick", metrics={"score": {"fid": 3.0, "collapsed": False}},
                            status="complete")
    assert record.reported_score() == ({"fid": 3.0, "collapsed": False}, "complete")
    record.metrics["score"]["collapsed"] = True
    assert record.reported_score() == ({}, "collapsed")
    record.status = "failed: DivergenceError: nan"
    assert record.reported_score() == ({}, "failed: DivergenceError: nan")


def test_a_diverged_run_is_recorded_and_the_book_goes_on_except_in_smoke(tmp_path, monkeypatch):
    from cgt.train import DivergenceError

    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))

    def diverge(record, folder):
        raise DivergenceError("the generator loss became nan at iteration 3")

    record = runs.run(_spec({}, name="bad"), diverge)
    assert record.status.startswith("failed: DivergenceError: the generator loss became nan")
    with pytest.raises(DivergenceError):
        runs.run(_spec({}, name="bad", profile="smoke"), diverge)
