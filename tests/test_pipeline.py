"""The CIFAR-10 pipeline on the tiny fake data set: DDLS on images, calibration, the command line, bench."""
import json

import pytest
import torch
import torch.nn.functional as F

import ebmlib
from ebmlib import bench, cifar10, pipeline
from ebmlib.__main__ import main
from ebmlib.checkpoint import CheckpointError
from ebmlib.nets import SNGANDiscriminator, SNGANGenerator


def small_pair(seed=0):
    """A small SN-GAN pair whose d(G(z)) has a gradient well above rounding: at SN-GAN's own
    initialisation (weights N(0, 0.02^2)) the generator's output is nearly constant."""
    torch.manual_seed(seed)
    G, D = SNGANGenerator(latent_dim=8, ch=4), SNGANDiscriminator(ch=4)
    with torch.no_grad():
        for p in G.parameters():
            if p.dim() > 1:
                p.normal_(0, 1.0 / p[0].numel() ** 0.5)
    return G.eval(), D.eval()


class Scaled(torch.nn.Module):
    def __init__(self, D, factor):
        super().__init__()
        self.D, self.factor = D, factor

    def forward(self, x):
        return self.factor * self.D(x)


def test_image_ddls_step_is_the_langevin_update_with_the_discriminator_term():
    G, D = small_pair()
    D = Scaled(D, 100.0)  # a logit whose gradient dominates rounding (about 0.1 per latent coordinate)
    z0 = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    eps = 0.05
    out = ebmlib.sample("ddls", G, D, 6, z0=z0, steps=1, step_size=eps, noise_scale=0.0)

    z = z0.clone().requires_grad_(True)
    (grad_d,) = torch.autograd.grad(D(G(z)).sum(), z)
    expected = z0 - 0.5 * eps * (z0 - grad_d)
    assert grad_d.abs().max() > 1e-2, "the test needs a discriminator with a clear gradient"
    torch.testing.assert_close(out.z, expected, rtol=1e-4, atol=1e-5)  # the d term moves z by ~2.5e-3
    prior_only = z0 - 0.5 * eps * z0
    assert (out.z - prior_only).abs().max() > 1e-5, "DDLS on images dropped the discriminator's gradient"
    assert out.x.shape == (6, 3, 32, 32)
    assert all(p.grad is None for p in (*G.parameters(), *D.parameters())), "DDLS must not touch parameters' .grad"


def test_image_ddls_amp_flag_is_ignored_on_the_cpu_and_gives_the_same_chains():
    G, D = small_pair()
    a = ebmlib.sample("ddls", G, D, 4, seed=3, steps=3, step_size=0.01)
    b = ebmlib.sample("ddls", G, D, 4, seed=3, steps=3, step_size=0.01, amp=True)
    torch.testing.assert_close(a.z, b.z)


class Exploding(torch.nn.Module):
    """A logit that is finite at the start and overflows once a chain has moved (|z| grows)."""

    def __init__(self, D):
        super().__init__()
        self.D = D

    def forward(self, x):
        return self.D(x) * torch.exp(1e4 * (x.abs().mean((1, 2, 3)) - self.threshold))


def test_image_ddls_diverging_chain_names_the_step_and_keeps_the_states():
    G, D = small_pair()
    z0 = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    d = Exploding(D)
    with torch.no_grad():
        d.threshold = G(z0).abs().mean((1, 2, 3)).max().item() + 1e-3  # finite at z0, not after a large step
    with pytest.raises(ebmlib.LangevinDivergence, match="step size 5") as info:
        ebmlib.sample("ddls", G, d, 4, z0=z0, steps=5, step_size=5.0)
    assert info.value.step >= 1 and info.value.step_size == 5.0
    assert torch.isfinite(info.value.last_finite).all() and info.value.last_finite.shape == (4, 8)


@pytest.mark.parametrize("method", ["head", "finetune"])
def test_calibration_on_images_lowers_the_logistic_loss_of_a_frozen_generator(tmp_path, method):
    images, _ = cifar10.tiny(tmp_path / "tiny", n_train=200, n_test=20)
    G, D = small_pair()
    # at SN-GAN's initialisation D is ~0 everywhere: the head needs a logit that varies to rescale
    D = Scaled(D, 100.0) if method == "head" else D
    real = pipeline.real_sampler(images)
    gen = torch.Generator().manual_seed(5)

    def logistic_loss(d):
        with torch.no_grad():
            x_real, x_fake = real(256, gen), G(torch.randn(256, 8, generator=gen))
            return (F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()).item()

    before = logistic_loss(D)
    lr = 5e-2 if method == "head" else 1e-3
    d = ebmlib.calibrate(D, G, real, method=method, steps=40, batch_size=32, lr=lr, progress=False)
    after = logistic_loss(d)
    assert after < before - 0.05, (before, after)
    assert after < 2 * torch.log(torch.tensor(2.0)).item() - 0.05  # better than the constant logit 0


def test_the_pipeline_runs_end_to_end_from_the_command_line(tmp_path, capsys):
    run, data = tmp_path / "run", tmp_path / "tiny"
    common = ["--tiny", "--data", str(data), "--device", "cpu"]
    main(["train", "--run", str(run), "--ch", "4", "--steps", "3", "--n-dis", "1", "--batch-size", "8",
          "--checkpoint-every", "2", "--sample-every", "3", "--log-every", "1", "--quiet", *common])
    assert (run / "checkpoint.pt").exists() and (run / "run.json").exists()
    assert (run / "samples" / "step_000003.png").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3

    main(["calibrate", "--run", str(run), "--steps", "5", "--quiet", *common])
    assert (run / "calibrated.pt").exists()
    main(["sample", "--run", str(run), "--sampler", "ddls", "--n", "12", "--steps", "4", "--step-size", "0.01",
          "--device", "cpu"])
    main(["sample", "--run", str(run), "--sampler", "generator", "--n", "12", "--device", "cpu"])
    saved = pipeline.load_samples(run / "samples_ddls.pt")
    assert saved["images"].dtype == torch.uint8 and saved["images"].shape == (12, 3, 32, 32)
    assert saved["options"]["steps"] == 4 and len(saved["info"]["energy_trace"]) == 4

    scores = tmp_path / "scores.json"
    pipeline.extractor("classifier", data=data, tiny=True, device="cpu", steps=20)  # cached for evaluate
    main(["evaluate", str(run / "samples_ddls.pt"), str(run / "samples_generator.pt"), "--json", str(scores),
          "--classifier-steps", "20", *common])
    printed = capsys.readouterr().out
    assert "fcd" in printed and "fid" not in printed.lower().replace("fidelity", "")
    result = json.loads(scores.read_text())
    for record in result.values():
        assert record["n_samples"] == 12 and record["n_reference"] == 1000 and record["extractor"] == "cifar-classifier"


def test_a_run_folder_with_a_checkpoint_of_another_architecture_is_an_error(tmp_path):
    run, data = tmp_path / "run", tmp_path / "tiny"
    pipeline.train(run, ch=4, tiny=True, data=data, device="cpu", steps=1, n_dis=1, batch_size=4, progress=False)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "ch": 8}))  # the nets built now are twice as wide
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        pipeline.load_run(run, device="cpu")


def test_resuming_a_run_with_other_nets_is_an_error_that_keeps_run_json(tmp_path):
    run, data = tmp_path / "run", tmp_path / "tiny"
    pipeline.train(run, ch=4, tiny=True, data=data, device="cpu", steps=1, n_dis=1, batch_size=4, progress=False)
    before = (run / "run.json").read_text()
    with pytest.raises(ValueError, match="ch"):
        pipeline.train(run, ch=8, tiny=True, data=data, device="cpu", steps=2, n_dis=1, batch_size=4, progress=False)
    assert (run / "run.json").read_text() == before
    pipeline.load_run(run, device="cpu")  # still loads


def test_missing_run_or_calibration_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="ebmlib train"):
        pipeline.load_run(tmp_path, device="cpu")
    run, data = tmp_path / "run", tmp_path / "tiny"
    pipeline.train(run, ch=4, tiny=True, data=data, device="cpu", steps=1, n_dis=1, batch_size=4, progress=False)
    with pytest.raises(FileNotFoundError, match="ebmlib calibrate"):
        pipeline.load_calibrated(run, device="cpu")


def test_image_calibration_refuses_the_low_dimensional_residual(tmp_path):
    with pytest.raises(ValueError, match="head' or 'finetune"):
        pipeline.calibrate(tmp_path / "no-run", method="residual")


def test_unknown_architecture_is_a_value_error():
    with pytest.raises(ValueError, match="cnn"):
        pipeline.build("vgg")


def test_bench_quick_runs_and_reports_every_measurement(tmp_path, capsys):
    out = tmp_path / "bench.json"
    main(["bench", "--quick", "--ddls-batch", "4", "--device", "cpu", "--json", str(out)])
    result = json.loads(out.read_text())
    modes = {(r["what"], r["mode"]) for r in result["records"] if "error" not in r}
    assert modes == {("train", "eager-fp32"), ("train", "bf16-channels_last"),
                     ("ddls", "eager-fp32"), ("ddls", "bf16-channels_last")}
    for r in result["records"]:
        assert r.get("tflops", 0) > 0 and (r.get("img_per_s") or r.get("image_steps_per_s")) > 0
    assert result["meta"]["quick"] is True and "ddls_speedup_over_eager" in result["summary"]
    assert "img-steps/s" in capsys.readouterr().out


def test_plain_ddls_step_matches_the_library_update_without_noise():
    G, D = small_pair()
    z0 = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = bench.plain_ddls_step(G, D, z0, 0.0004)
    torch.manual_seed(0)
    noise = torch.randn_like(z0)
    lib = ebmlib.sample("ddls", G, D, 5, z0=z0, steps=1, step_size=0.0004, noise_scale=0.0).z
    torch.testing.assert_close(plain, lib + 0.02 * noise, rtol=1e-4, atol=1e-5)


def test_classifier_extractor_size_knobs_and_cache(tmp_path):
    data = tmp_path / "tiny"
    first = pipeline.extractor("classifier", data=data, tiny=True, device="cpu", steps=2, width=4, batch_size=8,
                               progress=False)
    assert (data / "classifier_2_w4_b8.pt").exists()
    again = pipeline.extractor("classifier", data=data, tiny=True, device="cpu", steps=2, width=4, batch_size=8,
                               progress=False)  # from the cache
    a, b = first.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sum(p.numel() for p in first.model.parameters()) < sum(
        p.numel() for p in pipeline.metrics.CifarClassifier(width=8).parameters())
