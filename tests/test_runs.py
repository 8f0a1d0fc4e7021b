"""Profiles and run records."""

import json
import platform

import pytest

from cgt import claims, machine, profiles, runs


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
    table = runs.summary_table("smoke")
    assert table.to_dict("records") == [{"chapter": "demo", "claim": "it works", "paper": claim.paper,
                                         "ours": "Δ = 0", "seeds": 0, "verdict": "supported",
                                         "reason": ""}]


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


def test_run_once_skips_complete_runs_and_reruns_changed_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))
    calls = []

    def work(record, folder):
        calls.append(folder)
        record.metrics["fid"] = 1.0

    first = runs.run_once("demo", "a", "quick", {"k": 1}, 0, work)
    again = runs.run_once("demo", "a", "quick", {"k": 1}, 0, work)
    assert len(calls) == 1 and again.metrics == {"fid": 1.0} and again.status == "complete"
    runs.run_once("demo", "a", "quick", {"k": 2}, 0, work)  # another config: run again
    assert len(calls) == 2 and calls[0] == tmp_path / "demo" / "a"
    assert first.path == again.path


def test_run_once_records_a_diverged_run_and_goes_on_except_in_smoke(tmp_path, monkeypatch):
    from cgt.train import DivergenceError

    monkeypatch.setenv("CGT_RUNS_DIR", str(tmp_path))

    def diverge(record, folder):
        raise DivergenceError("the generator loss became nan at iteration 3")

    record = runs.run_once("demo", "bad", "quick", {}, 0, diverge)
    assert record.status.startswith("failed: DivergenceError: the generator loss became nan")
    with pytest.raises(DivergenceError):
        runs.run_once("demo", "bad", "smoke", {}, 0, diverge)
