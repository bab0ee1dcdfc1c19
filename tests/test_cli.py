"""The command line and the Table 1 formatter."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import torch

from ebmlib import toy_table, wasserstein
from ebmlib.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"modes_mean", "modes_std", "hq_mean", "hq_std", "hq_sample_std_mean", "seconds"}


def record(method, name, modes, hq, std, seconds):
    return {"method": method, "name": name, "modes_mean": modes[0], "modes_std": modes[1], "hq_mean": hq[0],
            "hq_std": hq[1], "hq_sample_std_mean": std[0], "hq_sample_std_std": std[1], "seconds": seconds}


def test_seeds_zero_is_an_error_from_the_command_line():
    env = {**os.environ, "EBMLIB_SMOKE": "1"}
    proc = subprocess.run([sys.executable, "-m", "ebmlib", "toy-table", "--seeds", "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--seeds must be positive" in proc.stderr
    assert "Table 1" not in proc.stdout


@pytest.mark.parametrize("argv", [["toy-table", "--seeds", "0"], ["toy-table", "--samples", "0"],
                                  ["toy-table", "--seeds", "-2"], ["toy-table", "--seeds", "two"], [],
                                  ["train"]])
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_format_table_on_hand_made_records():
    records = [record("generator", "Generator only", (23.4, 0.55), (0.901, 0.0123), (0.071, 0.004), 0.01),
               record("ddls", "GAN w. DDLS", (25.0, 0.0), (0.987, 0.0056), (0.0523, 0.0011), 1.5)]
    text = toy_table.format_table(records)
    lines = text.splitlines()
    assert len(lines) == 2 + len(records)
    assert "# recovered modes" in lines[0] and "% high quality" in lines[0] and "std high quality" in lines[0]
    assert set(lines[1]) == {"-"}
    gen, ddls = lines[2], lines[3]
    assert gen.startswith("Generator only")
    assert "23.4 ± 0.6" in gen and "90.1 ± 1.2" in gen and "0.071 ± 0.004" in gen and gen.endswith("0.01")
    assert ddls.startswith("GAN w. DDLS")
    assert "25.0 ± 0.0" in ddls and "98.7 ± 0.6" in ddls and "0.052 ± 0.001" in ddls and ddls.endswith("1.50")
    # columns line up
    assert len({line.index("±") for line in lines[2:]}) == 1


def test_toy_table_command_writes_json(tmp_path, monkeypatch, capsys):
    # shrink the training, calibration, nets and samplers so the whole pipeline runs in about a second
    monkeypatch.setitem(toy_table.TRAIN, "steps", 20)
    monkeypatch.setitem(toy_table.TRAIN, "batch_size", 64)
    monkeypatch.setitem(toy_table.CALIBRATION, "steps", 10)
    monkeypatch.setitem(toy_table.CALIBRATION, "batch_size", 64)
    monkeypatch.setitem(toy_table.NETS, "hidden", 16)
    monkeypatch.setitem(toy_table.NETS, "d_hidden", 16)
    monkeypatch.setitem(toy_table.SAMPLER_OPTIONS, "mh", {"steps": 5})
    monkeypatch.setitem(toy_table.SAMPLER_OPTIONS, "ddls", {"steps": 5, "step_size": 1e-3})
    monkeypatch.setitem(wasserstein.WGAN_TRAIN, "steps", 20)
    monkeypatch.setitem(wasserstein.WGAN_TRAIN, "batch_size", 64)
    monkeypatch.setitem(wasserstein.WGAN_NETS, "hidden", 16)
    monkeypatch.setitem(wasserstein.WGAN_NETS, "d_hidden", 16)
    out = tmp_path / "table.json"
    # two worker processes: the settings patched here must travel with the tasks
    assert main(["toy-table", "--seeds", "1", "--samples", "200", "--workers", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Table 1" in printed and f"wrote {out}" in printed

    data = json.loads(out.read_text())
    assert data["meta"]["seeds"] == 1 and data["meta"]["n_samples"] == 200
    records = data["records"]
    assert [r["method"] for r in records] == ["generator", "drs", "mh", "ddls", "wgan_generator", "wgan_ddls"]
    assert data["meta"]["workers"] == 2
    for r in records:
        assert KEYS <= set(r), KEYS - set(r)
        assert 0 <= r["modes_mean"] <= 25 and r["modes_std"] == 0.0  # one seed: no spread
        assert 0 <= r["hq_mean"] <= 1 and r["seconds"] >= 0
        assert r["n_samples"] == 200 and r["seeds"] == 1 and len(r["per_seed"]) == 1
    assert records[3]["options"] == records[5]["options"] == {"steps": 5, "step_size": 1e-3}
    # the printed table is format_table of the same records
    assert toy_table.format_table(records) in printed

    # the worker processes computed what one process computes (both with one thread)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = toy_table.table1(seeds=1, n_samples=200, workers=1)
    finally:
        torch.set_num_threads(threads)
    assert json.dumps([r["per_seed"] for r in again]) == json.dumps([r["per_seed"] for r in records])  # nan-safe
