"""The benchmark: every measurement is reported, a failing stage does not lose the others, its true fp32
baseline is what it says, its plain baselines compute what the library computes, and its DDLS mode is the
pipeline's own call."""
import json

import pytest
import torch

import ebmlib
from ebmlib.__main__ import main
from ebmlib.energy import CalibratedLogit
from ebmlib.recipes import bench, pipeline

from helpers import small_sngan_pair

MODES = {("train", "eager-fp32"), ("train", "eager-default"), ("train", "bf16-channels_last"),
         ("ddls", "eager-fp32"), ("ddls", "eager-default"), ("ddls", "pipeline")}


def test_bench_quick_runs_and_reports_every_measurement(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--ddls-batch", "4", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {(r["what"], r["mode"]) for r in result["records"] if "error" not in r} == MODES
    for r in result["records"]:
        assert r.get("tflops", 0) > 0 and (r.get("img_per_s") or r.get("image_steps_per_s")) > 0
    assert result["finished"] is True and result["summary"]["failed_stages"] == []
    assert result["meta"]["quick"] is True and "ddls_speedup_over_true_fp32" in result["summary"]
    assert "ddls_speedup_over_default_eager" in result["summary"]
    precision = result["meta"]["precision"]
    for key in ("cuda_matmul_allow_tf32", "cudnn_allow_tf32", "float32_matmul_precision", "cudnn_enabled",
                "cudnn_benchmark", "cudnn_version", "cudnn_deterministic", "deterministic_algorithms"):
        assert key in precision
    assert precision["float32_matmul_precision"] == torch.get_float32_matmul_precision()
    for r in result["records"]:  # the baseline ran with TF32 off, whatever the session's settings
        assert (r["tf32"]["cudnn_allow_tf32"] is False) == (r["mode"] == "eager-fp32")
    pipelined = next(r for r in result["records"] if r["mode"] == "pipeline")
    assert pipelined["options"] == pipeline.sampler_options("ddls", steps=3)
    assert "img-steps/s" in capsys.readouterr().out


def test_a_failing_stage_is_recorded_and_the_others_still_run_and_are_written(tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    real_train, written_before = bench.bench_train, []

    def train_or_fail(device, quick, mode):
        if mode == "eager-default":
            # the JSON already holds the stage before this one: a crash here would keep it
            written_before.append(json.loads(out.read_text()))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_train(device, quick, mode, batch_size=4, n_dis=1)

    monkeypatch.setattr(bench, "bench_train", train_or_fail)
    assert main(["bench", "--quick", "--ddls-batch", "4", "--device", "cpu", "--json", str(out)]) == 1
    result = json.loads(out.read_text())
    failed = [r for r in result["records"] if "error" in r]
    assert [(r["what"], r["mode"]) for r in failed] == [("train", "eager-default")]
    assert "OutOfMemoryError: CUDA out of memory (simulated)" in failed[0]["error"]
    assert {(r["what"], r["mode"]) for r in result["records"] if "error" not in r} == MODES - {("train", "eager-default")}
    assert result["summary"]["failed_stages"] == ["train eager-default"] and result["finished"] is True
    assert "ddls_speedup_over_true_fp32" in result["summary"]  # the summary of what was measured
    [early] = written_before
    assert [(r["what"], r["mode"]) for r in early["records"]] == [("train", "eager-fp32")] and not early["finished"]
    captured = capsys.readouterr()
    assert "FAILED: OutOfMemoryError" in captured.out and "train eager-default" in captured.err


def test_true_fp32_turns_tf32_off_inside_and_restores_every_switch():
    before = bench.precision_settings()
    with bench.precision_kept():
        torch.set_float32_matmul_precision("high")  # TF32 allowed for matmuls, as many training scripts set it
        start = bench.precision_settings()
        assert start["cuda_matmul_allow_tf32"] is True and start["cudnn_allow_tf32"] is True
        with pytest.raises(RuntimeError, match="inside"):
            with bench.true_fp32():
                inside = bench.precision_settings()
                raise RuntimeError("inside")
        assert inside["cuda_matmul_allow_tf32"] is False and inside["cudnn_allow_tf32"] is False
        assert inside["float32_matmul_precision"] == "highest"
        assert bench.precision_settings() == start
    assert bench.precision_settings() == before


def test_the_pipeline_mode_times_exactly_the_call_of_pipeline_sample(tmp_path, monkeypatch):
    calls = []
    real_sampler = pipeline.run_sampler

    def recording(method, G, d, n, **options):
        calls.append({"method": method, "n": n, "G": type(G), "d": type(d), "d_inner": type(d.d), "options": options})
        return real_sampler(method, G, d, n, **options)

    G, D = small_sngan_pair()
    head = CalibratedLogit(D)
    monkeypatch.setattr(pipeline, "run_sampler", recording)
    monkeypatch.setattr(pipeline, "load_calibrated", lambda run, device=None: (G, head))
    pipeline.sample(tmp_path, "ddls", n=4, device="cpu", steps=3)
    bench.bench_ddls(torch.device("cpu"), True, "pipeline", batch=4, steps=3)
    from_pipeline, from_bench = calls[0], calls[-1]
    assert len(calls) >= 2 and from_bench == {**from_pipeline, "G": ebmlib.nets.SNGANGenerator}
    assert from_pipeline["options"] == {**pipeline.PAPER_DDLS, "amp": True, "steps": 3, "seed": 0}


def test_plain_ddls_step_matches_the_library_update_without_noise():
    G, D = small_sngan_pair()
    z0 = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = bench.plain_ddls_step(G, D, z0, 0.0004)
    torch.manual_seed(0)
    noise = torch.randn_like(z0)
    lib = ebmlib.sample("ddls", G, D, 5, z0=z0, steps=1, step_size=0.0004, noise_scale=0.0).z
    torch.testing.assert_close(plain, lib + 0.02 * noise, rtol=1e-4, atol=1e-5)
