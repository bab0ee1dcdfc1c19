"""Runtime switches: the smoke switch, progress bars, devices, and eval mode for a block."""
import pytest
import torch
from torch import nn

import ebmlib
from ebmlib._runtime import default_device, evaluating, module_device, progress_bar, show_progress


def test_smoke_switch(monkeypatch):
    monkeypatch.setenv("EBMLIB_SMOKE", "1")
    assert ebmlib.smoke() and ebmlib.pick(5000, 200) == 200
    assert show_progress(None) is False and show_progress(True) is True
    monkeypatch.setenv("EBMLIB_SMOKE", "0")
    assert not ebmlib.smoke() and ebmlib.pick(5000, 200) == 5000
    assert show_progress(None) is True
    monkeypatch.delenv("EBMLIB_SMOKE")
    assert not ebmlib.smoke()


def test_progress_bar_is_silent_in_smoke_mode_unless_asked(monkeypatch):
    monkeypatch.setenv("EBMLIB_SMOKE", "1")
    with progress_bar(range(3)) as bar:
        assert bar.disable and list(bar) == [0, 1, 2]  # a silent bar still iterates
    with progress_bar(range(3), progress=True) as bar:
        assert not bar.disable and not bar.leave  # leave defaults to False


def test_default_device():
    assert default_device("cpu") == torch.device("cpu")
    assert default_device(torch.device("cpu")) == torch.device("cpu")
    assert default_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert ebmlib.default_device is default_device


def test_module_device():
    assert module_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU


def test_evaluating_restores_each_modules_mode():
    a, b = nn.BatchNorm1d(2).train(), nn.Dropout().eval()
    with evaluating(a, b) as (x, y):
        assert x is a and y is b and not a.training and not b.training
    assert a.training and not b.training
    with pytest.raises(RuntimeError, match="inside"):
        with evaluating(a) as m:
            assert m is a  # one module: the module itself, not a tuple
            raise RuntimeError("inside the block")
    assert a.training, "an error in the block must not leave the module in eval mode"
