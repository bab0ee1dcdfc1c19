"""Atomic writes: a file appears under its name complete or not at all, and a failed write leaves the old one."""
import os

import pytest
import torch

from ebmlib._files import atomic_write, publish, temporary_beside, torch_save, write_text


def test_a_successful_write_replaces_the_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old"  # nothing shows under the name until the block ends
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failure_inside_the_block_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"good")
    with pytest.raises(type(error)):
        with atomic_write(path) as f:
            f.write(b"half a file")
            raise error
    assert path.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failed_first_write_leaves_no_file_at_all(tmp_path):
    with pytest.raises(OSError):
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"partial")
            raise OSError("disk full")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ["a", "r", "ab", "w+", "x"])
def test_only_whole_file_modes_are_accepted(tmp_path, mode):
    with pytest.raises(ValueError, match="'wb' or 'w'"):
        with atomic_write(tmp_path / "f", mode):
            pass
    assert os.listdir(tmp_path) == []


def test_write_text_and_torch_save_create_missing_folders(tmp_path):
    text = write_text(tmp_path / "a" / "run.json", '{"x": 1}')
    assert text.read_text() == '{"x": 1}'
    saved = torch_save({"w": torch.arange(3)}, tmp_path / "b" / "state.pt")
    assert torch.equal(torch.load(saved, weights_only=True)["w"], torch.arange(3))


def test_temporary_beside_is_removed_unless_published(tmp_path):
    with temporary_beside(tmp_path / "sub" / "x.pt") as tmp:
        assert tmp.parent == tmp_path / "sub" and tmp.exists() and tmp.name.endswith(".part")
    assert not tmp.exists()
    with temporary_beside(tmp_path / "y.pt") as tmp:
        tmp.write_bytes(b"done")
        publish(tmp, tmp_path / "y.pt")
    assert (tmp_path / "y.pt").read_bytes() == b"done" and not tmp.exists()
