"""train_images: exact resume after a crash or Ctrl-C, atomic checkpoints during training, checkpoints that do
not fit, the learning rate schedule, the EMA, the metrics log and sample grids, the losses it accepts; resume
from a checkpoint of another device type or memory layout; torch.compile against eager. Tiny nets on 3x32x32
so that a run takes a fraction of a second on one CPU thread (the compiled run: about half a minute)."""
import json
import math
import os
import shutil
import signal

import pytest
import torch
from matplotlib.image import imread
from torch import nn

from ebmlib import checkpoint as ckpt
from ebmlib import cifar10
from ebmlib.images import Batches
from ebmlib.nets import ConvAutoencoder, SNGANGenerator
from ebmlib.train_images import ema_decay, learning_rate, train_images, update_ema

from helpers import CountingPT, CrashAt, TinyD, TinyG

# torch.compile's CPU code generator builds C++ kernels
CXX = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("clang++")


class Data:
    """Real batches from a seeded generator (the trainer saves and restores its state); ``crash_at``:
    raise on that call, ``interrupt_at``: send this process SIGINT (Ctrl-C) on that call."""

    def __init__(self, seed=7, crash_at=None, interrupt_at=None):
        self.generator = torch.Generator().manual_seed(seed)
        self.calls, self.crash_at, self.interrupt_at = 0, crash_at, interrupt_at

    def __call__(self, n):
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("simulated crash")
        if self.calls == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return torch.rand(n, 3, 32, 32, generator=self.generator) * 2 - 1


def nets(seed=0, ch=4):
    torch.manual_seed(seed)
    return TinyG(), TinyD(ch)


OPTIONS = dict(steps=9, n_dis=2, batch_size=8, ema=0.9, checkpoint_every=3, log_every=2, sample_every=4,
               n_samples=16, lr_g=1e-3, lr_d=1e-3, progress=False)


def train(out_dir, data=None, seed=0, init=0, **kw):
    G, D = nets(init)
    history = train_images(G, D, data or Data(), out_dir=out_dir, seed=seed, **{**OPTIONS, **kw})
    return G, D, history


def states(G, D, history):
    """Every parameter and buffer of G, D and the EMA copy."""
    out = {f"G.{k}": v for k, v in G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in D.state_dict().items()})
    out.update({f"E.{k}": v for k, v in history["G_ema"].state_dict().items()})
    return out


def assert_identical(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"differ: {different}"


def log_steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


# --- resume ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_resume_after_a_crash_ends_bit_for_bit_where_an_uninterrupted_run_ends(tmp_path, loss):
    G1, D1, h1 = train(tmp_path / "straight", loss=loss)

    # a crash in step 5's second D update (data calls 2 per step): the last checkpoint is step 3's
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "crashed", Data(crash_at=10), loss=loss)
    assert ckpt.load(tmp_path / "crashed" / "checkpoint.pt")["step"] == 3
    # resume with other initial weights and a fresh data source: everything comes from the checkpoint
    G2, D2, h2 = train(tmp_path / "crashed", Data(), init=1, loss=loss)

    assert h2["start_step"] == 3 and h1["start_step"] == 0
    assert_identical(states(G1, D1, h1), states(G2, D2, h2))
    for key in ("step", "d_loss", "g_loss", "lr_g", "lr_d"):
        assert h1[key] == h2[key], key
    # the log holds each step once: the crashed run's lines past the checkpoint were dropped
    assert log_steps(tmp_path / "crashed" / "metrics.jsonl") == log_steps(tmp_path / "straight" / "metrics.jsonl")
    assert h1["step"] == [2, 4, 6, 8, 9]


def test_ctrl_c_saves_the_finished_step_and_resumes_exactly(tmp_path):
    G1, D1, h1 = train(tmp_path / "straight")
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job
    # SIGINT during step 4 (data call 7): the step finishes, a checkpoint is written, KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt, match="step 4 of 9"):
        train(tmp_path / "stopped", Data(interrupt_at=7))
    assert ckpt.load(tmp_path / "stopped" / "checkpoint.pt")["step"] == 4  # not a multiple of checkpoint_every
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    G2, D2, h2 = train(tmp_path / "stopped", Data(), init=1)
    assert h2["start_step"] == 4
    assert_identical(states(G1, D1, h1), states(G2, D2, h2))
    assert h1["d_loss"] == h2["d_loss"] and h1["g_loss"] == h2["g_loss"]


def test_a_finished_run_returns_at_once_and_resume_false_starts_afresh(tmp_path):
    G1, D1, h1 = train(tmp_path)
    G2, D2, h2 = train(tmp_path, Data(), init=1)  # the checkpoint is at step 9 of 9: nothing to do
    assert h2["start_step"] == 9 and h2["step"] == h1["step"]
    assert_identical(states(G1, D1, h1), states(G2, D2, h2))
    G3, D3, h3 = train(tmp_path, Data(), init=0, resume=False)
    assert h3["start_step"] == 0
    assert_identical(states(G1, D1, h1), states(G3, D3, h3))  # same seed, same init: same run


def test_same_seed_same_run_without_out_dir():
    G1, D1, h1 = train(None)
    G2, D2, h2 = train(None)
    G3, D3, h3 = train(None, seed=1)
    assert h1["checkpoint"] is None
    assert_identical(states(G1, D1, h1), states(G2, D2, h2))
    assert not torch.equal(G1.net[0].weight, G3.net[0].weight)
    assert not G1.training and not D1.training


def test_iterators_with_labels_work_as_data():
    gen = torch.Generator().manual_seed(0)

    def stream():
        while True:
            yield torch.rand(8, 3, 32, 32, generator=gen) * 2 - 1, torch.zeros(8, dtype=torch.long)

    G, D = nets()
    history = train_images(G, D, stream(), steps=3, n_dis=1, batch_size=8, ema=None, progress=False)
    assert history["G_ema"] is None and history["step"] == [3]


# --- checkpoints ---------------------------------------------------------------------------------------

def test_checkpoint_holds_everything_the_loop_needs(tmp_path):
    train(tmp_path, steps=3)
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert {"G", "D", "G_ema", "opt_g", "opt_d", "step", "rng", "config", "history"} <= state.keys()
    assert {"torch", "latent", "data"} <= state["rng"].keys() and state["rng"]["data"] is not None
    assert state["config"]["G"] == "TinyG" and state["config"]["n_dis"] == 2 and state["config"]["loss"] == "hinge"
    assert state["step"] == 3


def test_a_failed_write_during_training_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path, Data(crash_at=9))  # leaves step 3's checkpoint
    good = (tmp_path / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train(tmp_path, Data())  # resumes at 3, fails writing step 6's checkpoint
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]


def test_truncated_checkpoint_is_an_error_naming_the_file(tmp_path):
    train(tmp_path, steps=3)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ckpt.CheckpointError) as info:
        train(tmp_path, Data(), steps=6)
    assert str(path) in str(info.value) and "truncated" in str(info.value)


def test_checkpoint_of_another_architecture_is_an_error_naming_what_differs(tmp_path):
    train(tmp_path, steps=3)
    G, D = TinyG(), TinyD(ch=6)  # D is wider than the one that wrote the checkpoint
    before = [p.detach().clone() for p in list(G.parameters()) + list(D.parameters())]
    with pytest.raises(ckpt.CheckpointError) as info:
        train_images(G, D, Data(), out_dir=tmp_path, **{**OPTIONS, "steps": 6})
    msg = str(info.value)
    assert str(tmp_path / "checkpoint.pt") in msg and "D" in msg
    assert "conv.parametrizations.weight.original: checkpoint (4, 3, 4, 4), network (6, 3, 4, 4)" in msg, msg
    after = list(G.parameters()) + list(D.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # nothing half-loaded, G neither

    class OtherG(nn.Module):
        def __init__(self):
            super().__init__()
            self.latent_dim = 8
            self.body = nn.Linear(8, 3 * 32 * 32)

        def forward(self, z):
            return torch.tanh(self.body(z)).view(-1, 3, 32, 32)

    with pytest.raises(ckpt.CheckpointError) as info:
        train_images(OtherG(), TinyD(), Data(), out_dir=tmp_path, **{**OPTIONS, "steps": 6})
    msg = str(info.value)
    assert "saved from TinyG, loading into OtherG" in msg and "missing body.weight" in msg, msg


def test_resuming_with_other_settings_warns(tmp_path):
    train(tmp_path, steps=3)
    with pytest.warns(UserWarning, match="n_dis 2 -> 1"):
        train(tmp_path, Data(), steps=4, n_dis=1)


# --- schedule and EMA ---------------------------------------------------------------------------------------

def test_learning_rate_is_a_linear_function_of_the_step():
    assert learning_rate(0, 10, 2e-4) == pytest.approx(2e-4)
    assert learning_rate(5, 10, 2e-4) == pytest.approx(1e-4)
    assert learning_rate(9, 10, 2e-4) == pytest.approx(2e-5)
    assert learning_rate(9, 10, 2e-4, decay="constant") == learning_rate(9, 10, 2e-4, decay=None) == 2e-4
    with pytest.raises(ValueError, match="lr_decay"):
        learning_rate(0, 10, 1e-3, decay="cosine")


def test_the_loop_uses_the_scheduled_rates():
    _, _, h = train(None, lr_g=1e-3, lr_d=3e-3)
    # logged at steps 2, 4, 6, 8, 9: the rate of that step's update is base * (1 - (step - 1) / 9)
    assert h["lr_g"] == pytest.approx([1e-3 * (1 - (s - 1) / 9) for s in h["step"]])
    assert h["lr_d"] == pytest.approx([3e-3 * (1 - (s - 1) / 9) for s in h["step"]])
    _, _, h = train(None, lr_decay="constant")
    assert h["lr_g"] == [1e-3] * len(h["step"])


def test_ema_update_math():
    assert ema_decay(1, 0.9999) == pytest.approx(2 / 11)
    assert ema_decay(80, 0.9999) == pytest.approx(0.9)
    assert ema_decay(10 ** 6, 0.9999) == 0.9999
    ema, model = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        ema.weight.fill_(1.0), model.weight.fill_(3.0)
        ema.bias.fill_(-1.0), model.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
        model.running_mean.fill_(5.0)
    update_ema(ema, model, 0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 0.75 * 1 + 0.25 * 3))
    assert torch.allclose(ema.bias, 0.75 * -1 + 0.25 * torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(ema.running_mean, model.running_mean)  # buffers are copied, not averaged


def test_the_loop_keeps_an_ema_of_g():
    # one step: G_ema = d * G_0 + (1 - d) * G_1 with d = ema_decay(1, 0.9)
    G0, _ = nets()
    G, D = nets()
    history = train_images(G, D, Data(), **{**OPTIONS, "steps": 1, "out_dir": None})
    d = ema_decay(1, 0.9)
    for p0, p1, pe in zip(G0.parameters(), G.parameters(), history["G_ema"].parameters()):
        assert torch.allclose(pe, d * p0 + (1 - d) * p1, atol=1e-7)
        assert not pe.requires_grad
    assert not torch.equal(G0.net[0].weight, G.net[0].weight)


# --- outputs --------------------------------------------------------------------------------------------------

def test_metrics_log_and_sample_grids_are_written(tmp_path):
    _, _, history = train(tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == history["step"] == [2, 4, 6, 8, 9]
    assert {"step", "d_loss", "g_loss", "lr_g", "lr_d", "img_per_s", "seconds"} <= lines[0].keys()
    assert all(line["img_per_s"] > 0 for line in lines)
    assert [line["d_loss"] for line in lines] == history["d_loss"]
    grids = sorted(os.listdir(tmp_path / "samples"))
    assert grids == ["step_000004.png", "step_000008.png", "step_000009.png"]
    image = imread(tmp_path / "samples" / "step_000009.png")
    # 16 samples, 8 a row, 2-pixel gaps: 2 rows of 32 + 3 gaps, 8 columns of 32 + 9 gaps
    assert image.shape[:2] == (2 * 34 + 2, 8 * 34 + 2)
    assert history["checkpoint"] == tmp_path / "checkpoint.pt"


# --- bad input ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [(dict(steps=0), "steps"), (dict(n_dis=0), "n_dis"), (dict(ema=1.5), "ema"),
                                       (dict(lr_decay="cosine"), "lr_decay"), (dict(loss="wgan_gp"), "wgan-gp"),
                                       (dict(lr_g=0), "lr_g"), (dict(checkpoint_every=0), "checkpoint_every")])
def test_bad_arguments_are_value_errors(kw, match):
    G, D = nets()
    with pytest.raises(ValueError, match=match):
        train_images(G, D, Data(), **{**OPTIONS, **kw})


def test_batches_of_the_wrong_shape_are_a_value_error():
    G, D = nets()
    with pytest.raises(ValueError, match=r"\(8, C, H, W\).*\(4, 3, 32, 32\)"):
        train_images(G, D, lambda n: torch.zeros(4, 3, 32, 32), **OPTIONS)


class CrashingBatches(CrashAt, Batches):
    """Batches that raises on its ``crash_at``-th batch."""


def test_resume_in_the_middle_of_an_epoch_of_real_batches_is_exact(tmp_path):
    # 40 images in batches of 8: an epoch is 5 batches; 2 batches a step, so step 3's checkpoint falls
    # in the middle of the second epoch, and the resumed run must continue that epoch's permutation
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    G1, D1, h1 = train(tmp_path / "straight", Batches(images, 8, seed=5))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "crashed", CrashingBatches(images, 8, seed=5, crash_at=10))
    G2, D2, h2 = train(tmp_path / "crashed", Batches(images, 8, seed=99), init=1)
    assert h2["start_step"] == 3
    assert_identical(states(G1, D1, h1), states(G2, D2, h2))


# --- the losses it accepts ------------------------------------------------------------------------------------

def test_a_wgan_loss_needs_a_spectrally_normalised_d(tmp_path):
    G, _ = nets()
    plain = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 1), nn.Flatten(0))  # a critic without spectral norm
    before = [p.detach().clone() for p in plain.parameters()]
    with pytest.raises(ValueError, match="Lipschitz"):
        train_images(G, plain, Data(), **{**OPTIONS, "loss": "wgan", "out_dir": tmp_path / "run"})
    assert all(torch.equal(a, b) for a, b in zip(before, plain.parameters()))
    assert not (tmp_path / "run").exists()  # refused before anything is written
    _, _, history = train(None, loss="wgan", steps=1)  # TinyD is spectrally normalised
    assert history["step"] == [1]


def test_a_pulling_away_loss_needs_an_autoencoder_d():
    G, D = nets()
    with pytest.raises(ValueError, match="embed"):
        train_images(G, D, Data(), **{**OPTIONS, "loss": "ebgan-pt"})


def test_train_images_with_ebgan_pt_on_the_tiny_data(tmp_path):
    stored, _ = cifar10.tiny(tmp_path / "tiny", n_train=40, n_test=10)
    torch.manual_seed(0)
    G, D = SNGANGenerator(latent_dim=16, ch=4), ConvAutoencoder(ch=4, code_dim=8)
    loss = CountingPT(margin=0.2)
    history = train_images(G, D, Batches(stored, 8, seed=0), steps=3, n_dis=1, loss=loss, batch_size=8,
                           out_dir=tmp_path / "run", log_every=1, checkpoint_every=3, sample_every=3,
                           n_samples=8, progress=False)
    assert loss.calls == 3
    assert all(math.isfinite(v) and v >= 0 for v in history["d_loss"] + history["g_loss"])
    saved = torch.load(history["checkpoint"], weights_only=False)
    assert saved["config"]["loss"] == "ebgan-pt" and saved["config"]["D"] == "ConvAutoencoder"
    # by name, too: train_images accepts 'ebgan'
    G2, D2 = SNGANGenerator(latent_dim=16, ch=4), ConvAutoencoder(ch=4, code_dim=8)
    h = train_images(G2, D2, Batches(stored, 8, seed=0), steps=2, n_dis=1, loss="ebgan", batch_size=8,
                     log_every=1, progress=False, ema=None)
    assert len(h["g_loss"]) == 2


# --- resume on another device, in another memory layout --------------------------------------------------------

def philox_state(seed):
    """A CUDA generator's state as ``get_state()`` returns it: 16 bytes (seed, offset), not a CPU one's 5,056."""
    return torch.tensor([seed, 0], dtype=torch.int64).view(torch.uint8)


def as_if_written_on_cuda(path):
    """Rewrite a CPU checkpoint as a CUDA run writes it: CUDA generator states for the latents, the data
    source and the device, fused Adam, bf16 autocast and channels_last."""
    state = ckpt.load(path)
    rng = state["rng"]
    rng.update(device="cuda", latent=philox_state(1), cuda=[philox_state(2)])
    data = rng["data"]["state_dict"] if "state_dict" in rng["data"] else rng["data"]
    data["generator"] = philox_state(3)
    for opt in ("opt_g", "opt_d"):
        for group in state[opt]["param_groups"]:
            group["fused"] = True
    state["config"].update(amp=True, channels_last=True)
    ckpt.save(state, path)


@pytest.mark.parametrize("source", ["generator", "batches"])
def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu_with_one_line_saying_it_is_not_exact(tmp_path, source):
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))

    def data(**kw):
        return Data(**kw) if source == "generator" else CrashingBatches(images, 8, seed=5, **kw)

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "a", data(crash_at=10))
    as_if_written_on_cuda(tmp_path / "a" / "checkpoint.pt")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "checkpoint.pt").write_bytes((tmp_path / "a" / "checkpoint.pt").read_bytes())

    with pytest.warns(UserWarning) as caught:
        G1, D1, h1 = train(tmp_path / "a", data(), init=1)
    device_lines = [str(w.message) for w in caught if "written on cuda" in str(w.message)]
    assert len(device_lines) == 1 and "\n" not in device_lines[0], device_lines
    assert "on cpu: the run continues but will not end bit-for-bit" in device_lines[0]
    assert "the latent generator" in device_lines[0] and "the data source's generator" in device_lines[0]
    assert h1["start_step"] == 3 and h1["step"][-1] == 9
    # the reseeding is a function of the checkpoint: the same checkpoint resumes into the same run
    with pytest.warns(UserWarning) as caught:
        G2, D2, h2 = train(tmp_path / "b", data(), init=2)
    assert any("written on cuda" in str(w.message) for w in caught)
    assert_identical(states(G1, D1, h1), states(G2, D2, h2))
    # the run records where it ran on: a later resume on the CPU is exact again
    final = ckpt.load(tmp_path / "a" / "checkpoint.pt")
    assert final["rng"]["device"] == "cpu" and final["config"]["channels_last"] is False
    assert not any(group["fused"] for group in final["opt_d"]["param_groups"])


def test_switching_channels_last_on_resume_works_and_ends_where_a_run_that_never_switched_ends(tmp_path):
    G1, D1, h1 = train(tmp_path / "contiguous", channels_last=False)
    G2, D2, h2 = train(tmp_path / "nhwc", channels_last=True)
    assert D2.conv.parametrizations.weight.original.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "switched", Data(crash_at=10), channels_last=False)
    with pytest.warns(UserWarning, match="channels_last False -> True"):
        G3, D3, h3 = train(tmp_path / "switched", Data(), init=1, channels_last=True)
    assert h3["start_step"] == 3
    assert D3.conv.parametrizations.weight.original.is_contiguous(memory_format=torch.channels_last)
    assert ckpt.load(tmp_path / "switched" / "checkpoint.pt")["config"]["channels_last"] is True
    # the two layouts round differently, and Adam turns a gradient that is zero up to rounding (the bias
    # before G's batch norm) into steps of the learning rate's size: the switched run must be as close to
    # each run that never switched as those two are to each other
    contiguous, nhwc, switched = states(G1, D1, h1), states(G2, D2, h2), states(G3, D3, h3)
    assert contiguous.keys() == nhwc.keys() == switched.keys()
    for key in contiguous:
        a, b, c = contiguous[key].double(), nhwc[key].double(), switched[key].double()
        layouts_apart = (a - b).abs().max().item()
        assert max((c - a).abs().max().item(), (c - b).abs().max().item()) <= 2 * layouts_apart + 1e-6, key


# --- torch.compile ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(CXX is None, reason="torch.compile on the CPU needs a C++ compiler (g++ or clang++); none found")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own code
def test_compiled_training_gives_the_eager_losses_and_writes_plain_checkpoints(tmp_path):
    # one short run each way (compiling is slow); wgan-gp: its penalty differentiates D twice, on the eager D
    options = dict(steps=3, n_dis=1, ema=None, log_every=1, loss="wgan-gp")
    G1, D1, eager = train(None, **options)
    G2, D2, compiled = train(tmp_path, compile=True, **options)
    # measured: 4e-7 apart at most (fused kernels round differently)
    torch.testing.assert_close(compiled["d_loss"], eager["d_loss"], rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(compiled["g_loss"], eager["g_loss"], rtol=2e-6, atol=1e-6)
    # the power iteration ran inside the compiled graphs: u moved, as in the eager run
    u_start = nets()[1].conv.parametrizations.weight[0]._u
    u_eager, u_compiled = (D.conv.parametrizations.weight[0]._u for D in (D1, D2))
    assert not torch.allclose(u_compiled, u_start, atol=1e-4)
    torch.testing.assert_close(u_compiled, u_eager, rtol=0, atol=1e-6)
    # the checkpoint holds the plain modules' weights: it loads without compiling
    saved = ckpt.load(tmp_path / "checkpoint.pt")
    assert saved["config"]["compile"] is True and not any("_orig_mod" in k for k in saved["D"])
    D = ckpt.load_discriminator(tmp_path / "checkpoint.pt", TinyD())
    torch.testing.assert_close(D.conv.parametrizations.weight.original, D2.conv.parametrizations.weight.original)
