"""Checkpoint files: atomic saves, loads that name the file and what is wrong, the nets of a training run, and
optimizer and generator states that move between devices and memory layouts."""
import os

import pytest
import torch
from torch import nn

from ebmlib import checkpoint as ckpt
from ebmlib.train_images import train_images

from helpers import TinyD, TinyG


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save({"format": ckpt.FORMAT, "value": torch.arange(3)}, path)
    good = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")  # some bytes reach the temporary file, then the disk fills up
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        ckpt.save({"format": ckpt.FORMAT, "value": torch.arange(5)}, path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]  # no temporary file left behind
    assert path.read_bytes() == good  # the old checkpoint is untouched
    assert torch.equal(ckpt.load(path)["value"], torch.arange(3))

    def interrupted_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save({"format": ckpt.FORMAT}, path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"] and path.read_bytes() == good


def test_a_file_that_is_not_a_checkpoint_is_an_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ckpt.CheckpointError, match="not the file expected here"):
        ckpt.load(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.load(tmp_path / "missing.pt")


def test_a_file_of_another_format_names_both_formats(tmp_path):
    path = ckpt.save({"format": "ebmlib-calibration/1"}, tmp_path / "calibrated.pt")
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "its format is 'ebmlib-calibration/1', expected 'ebmlib-checkpoint/1'" in message, message
    assert ckpt.load(path, format="ebmlib-calibration/1") == {"format": "ebmlib-calibration/1"}


def test_truncated_files_and_missing_keys_are_errors_naming_the_file(tmp_path):
    path = ckpt.save({"format": ckpt.FORMAT, "G": {"w": torch.zeros(100)}}, tmp_path / "checkpoint.pt")
    with pytest.raises(ckpt.CheckpointError, match=r"lacks \['D'\]"):
        ckpt.load(path, required=("G", "D"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ckpt.CheckpointError, match="truncated") as info:
        ckpt.load(path)
    assert str(path) in str(info.value)


def test_mismatch_lists_missing_unexpected_and_reshaped_weights():
    net = nn.Linear(3, 2)
    assert ckpt.mismatch(net, net.state_dict()) == []
    other = {"weight": torch.zeros(2, 4), "scale": torch.ones(())}
    assert ckpt.mismatch(net, other) == ["missing bias", "unexpected scale",
                                         "shapes differ for weight: checkpoint (2, 4), network (2, 3)"]
    before = net.weight.detach().clone()
    with pytest.raises(ckpt.CheckpointError, match="does not match G") as info:
        ckpt.load_state(net, other, what="G", path="run/checkpoint.pt")
    assert "run/checkpoint.pt" in str(info.value) and torch.equal(net.weight, before)


def test_load_generator_reads_the_ema_copy(tmp_path):
    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    history = train_images(G, D, lambda n: torch.rand(n, 3, 32, 32) * 2 - 1, steps=3, n_dis=1, batch_size=8,
                           ema=0.9, out_dir=tmp_path, progress=False)
    G_loaded = ckpt.load_generator(tmp_path / "checkpoint.pt", TinyG())
    assert_identical(G_loaded.state_dict(), history["G_ema"].state_dict())
    assert not G_loaded.training
    G_raw = ckpt.load_generator(tmp_path / "checkpoint.pt", TinyG(), ema=False)
    assert_identical(G_raw.state_dict(), G.state_dict())
    D_loaded = ckpt.load_discriminator(tmp_path / "checkpoint.pt", TinyD())
    assert_identical(D_loaded.state_dict(), D.state_dict())
    with pytest.raises(ckpt.CheckpointError, match=r"does not match D \(TinyD\)"):
        ckpt.load_discriminator(tmp_path / "checkpoint.pt", TinyD(ch=6))


def assert_identical(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"differ: {different}"


# --- state that moves between devices and memory layouts ------------------------------------------------------

def adam_after_a_step(fused=None, channels_last=False):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    if channels_last:
        conv.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(conv.parameters(), lr=1e-3, fused=fused)
    conv(torch.randn(2, 3, 8, 8)).square().mean().backward()
    opt.step()
    return conv, opt


@pytest.mark.parametrize("saved_fused, own_fused", [(True, None), (None, True)])
def test_an_optimizer_keeps_its_own_implementation_when_loading_another_ones_state(saved_fused, own_fused):
    # a CUDA run's Adam is fused; resumed on the CPU it runs plain, and a CPU run's state resumes fused
    _, saved = adam_after_a_step(fused=saved_fused)
    conv, opt = adam_after_a_step(fused=own_fused)
    ckpt.load_optimizer(opt, saved.state_dict(), what="D", path="checkpoint.pt")
    assert opt.param_groups[0]["fused"] is own_fused
    state = opt.state[conv.weight]
    assert torch.equal(state["exp_avg"], saved.state[next(iter(saved.state))]["exp_avg"])
    assert state["step"].device.type == "cpu" and state["step"].dtype == torch.float32
    opt.step()  # and it runs
    assert float(opt.state[conv.weight]["step"]) == 2


@pytest.mark.parametrize("saved_nhwc", [False, True])
def test_optimizer_moments_take_the_memory_layout_of_their_parameters(saved_nhwc):
    _, saved = adam_after_a_step(channels_last=saved_nhwc)
    conv, opt = adam_after_a_step(channels_last=not saved_nhwc)
    ckpt.load_optimizer(opt, saved.state_dict(), what="D", path="checkpoint.pt")
    for name in ("exp_avg", "exp_avg_sq"):
        moment, saved_moment = opt.state[conv.weight][name], saved.state[next(iter(saved.state))][name]
        assert moment.stride() == conv.weight.stride() != saved_moment.stride()
        assert torch.equal(moment, saved_moment)


def test_a_generator_state_of_another_device_type_is_refused_without_changing_the_generator():
    gen = torch.Generator().manual_seed(1)
    other = torch.Generator().manual_seed(2).get_state()
    cuda_state = torch.tensor([7, 0], dtype=torch.int64).view(torch.uint8)  # a CUDA generator's 16 bytes
    before = gen.get_state()
    assert ckpt.set_generator_state(gen, cuda_state) is False
    assert torch.equal(gen.get_state(), before)
    assert ckpt.set_generator_state(gen, other) is True and torch.equal(gen.get_state(), other)
