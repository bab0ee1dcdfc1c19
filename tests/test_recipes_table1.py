"""Table 1 of the DDLS paper: the formatter on hand-made records, and the whole table (GAN and WGAN rows) run
small through the command line, in worker processes and in one."""
import json

import torch

from ebmlib.__main__ import main
from ebmlib.recipes import table1, wgan

KEYS = {"modes_mean", "modes_std", "hq_mean", "hq_std", "hq_sample_std_mean", "seconds"}


def record(method, name, modes, hq, std, seconds):
    return {"method": method, "name": name, "modes_mean": modes[0], "modes_std": modes[1], "hq_mean": hq[0],
            "hq_std": hq[1], "hq_sample_std_mean": std[0], "hq_sample_std_std": std[1], "seconds": seconds}


def test_format_table_on_hand_made_records():
    records = [record("generator", "Generator only", (23.4, 0.55), (0.901, 0.0123), (0.071, 0.004), 0.01),
               record("ddls", "GAN w. DDLS", (25.0, 0.0), (0.987, 0.0056), (0.0523, 0.0011), 1.5)]
    text = table1.format_table(records)
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
    monkeypatch.setitem(table1.TRAIN, "steps", 20)
    monkeypatch.setitem(table1.TRAIN, "batch_size", 64)
    monkeypatch.setitem(table1.CALIBRATION, "steps", 10)
    monkeypatch.setitem(table1.CALIBRATION, "batch_size", 64)
    monkeypatch.setitem(table1.NETS, "hidden", 16)
    monkeypatch.setitem(table1.NETS, "d_hidden", 16)
    monkeypatch.setitem(table1.SAMPLER_OPTIONS, "mh", {"steps": 5})
    monkeypatch.setitem(table1.SAMPLER_OPTIONS, "ddls", {"steps": 5, "step_size": 1e-3})
    monkeypatch.setitem(wgan.WGAN_TRAIN, "steps", 20)
    monkeypatch.setitem(wgan.WGAN_TRAIN, "batch_size", 64)
    monkeypatch.setitem(wgan.WGAN_NETS, "hidden", 16)
    monkeypatch.setitem(wgan.WGAN_NETS, "d_hidden", 16)
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
    assert table1.format_table(records) in printed

    # the worker processes computed what one process computes (both with one thread)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = table1.table1(seeds=1, n_samples=200, workers=1)
    finally:
        torch.set_num_threads(threads)
    assert json.dumps([r["per_seed"] for r in again]) == json.dumps([r["per_seed"] for r in records])  # nan-safe
