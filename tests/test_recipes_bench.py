"""The benchmark: every measurement is reported, and its plain baselines compute what the library computes."""
import json

import torch

import ebmlib
from ebmlib.__main__ import main
from ebmlib.recipes import bench

from helpers import small_sngan_pair


def test_bench_quick_runs_and_reports_every_measurement(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--ddls-batch", "4", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    modes = {(r["what"], r["mode"]) for r in result["records"] if "error" not in r}
    assert modes == {("train", "eager-fp32"), ("train", "bf16-channels_last"),
                     ("ddls", "eager-fp32"), ("ddls", "bf16-channels_last")}
    for r in result["records"]:
        assert r.get("tflops", 0) > 0 and (r.get("img_per_s") or r.get("image_steps_per_s")) > 0
    assert result["meta"]["quick"] is True and "ddls_speedup_over_eager" in result["summary"]
    assert "img-steps/s" in capsys.readouterr().out


def test_plain_ddls_step_matches_the_library_update_without_noise():
    G, D = small_sngan_pair()
    z0 = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = bench.plain_ddls_step(G, D, z0, 0.0004)
    torch.manual_seed(0)
    noise = torch.randn_like(z0)
    lib = ebmlib.sample("ddls", G, D, 5, z0=z0, steps=1, step_size=0.0004, noise_scale=0.0).z
    torch.testing.assert_close(plain, lib + 0.02 * noise, rtol=1e-4, atol=1e-5)

