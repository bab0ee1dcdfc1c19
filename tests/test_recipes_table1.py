"""Table 1 of the DDLS paper: the formatter on hand-made records, and the whole table (GAN and WGAN rows) run
small through the command line, in worker processes and in one."""
import json
from pathlib import Path

import pytest
import torch

from ebmlib.__main__ import main
from ebmlib.recipes import table1, wgan

KEYS = {"modes_mean", "modes_std", "hq_mean", "hq_std", "hq_sample_std_mean", "seconds", "mode_tv_mean", "mode_tv_std",
        "data_tv_mean", "data_tv_std"}
REFERENCE_KEYS = {"mode_tv_mean", "mode_tv_std", "sampling_floor_mean", "data_tv_mean", "hq_mean", "ess_mean"}
COMMITTED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "toy_table_cpu.json"
EXTENDED = COMMITTED.with_name("toy_table_extended_cpu.json")


def record(method, name, modes, hq, std, seconds, tv=(0.123, 0.0456)):
    return {"method": method, "name": name, "modes_mean": modes[0], "modes_std": modes[1], "hq_mean": hq[0],
            "hq_std": hq[1], "hq_sample_std_mean": std[0], "hq_sample_std_std": std[1], "seconds": seconds,
            "mode_tv_mean": tv[0], "mode_tv_std": tv[1], "data_tv_mean": 0.2, "data_tv_std": 0.01}


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
    assert "0.123 ± 0.046" in ddls and "TV to p_t" in lines[0]
    # columns line up
    assert len({line.index("±") for line in lines[2:]}) == 1
    # a reference row prints its noise floor below the table
    ref = {"method": "reference", "name": "p_t quadrature", "mode_tv_mean": 0.0004, "mode_tv_std": 0.0001,
           "sampling_floor_mean": 0.019, "sampling_floor_std": 0.001, "data_tv_mean": 0.15, "data_tv_std": 0.05,
           "hq_mean": 0.995, "hq_std": 0.002, "ess_mean": 2300.0, "n_samples": 10_000}
    text = table1.format_table(records + [ref]).splitlines()
    assert text[-2].startswith("p_t quadrature") and "99.5 ± 0.2" in text[-2]
    assert text[-1] == ("noise floor: p_t quadrature: two lattices differ by 0.0004 (TV, mean over seeds); 10000 exact "
                        "draws from p_t differ from it by 0.019 by chance; effective sample size 2300")


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
    monkeypatch.setitem(table1.SAMPLER_OPTIONS, "ddls_paper", {"steps": 4, "step_size": 1e-3})
    monkeypatch.setitem(table1.SAMPLER_OPTIONS, "dot", {"space": "latent", "steps": 3})
    monkeypatch.setitem(table1.SAMPLER_OPTIONS, "dot_target", {"space": "target", "steps": 3})
    monkeypatch.setitem(table1.REFERENCE, "n", 20_000)
    monkeypatch.setitem(wgan.WGAN_TRAIN, "steps", 20)
    monkeypatch.setitem(wgan.WGAN_TRAIN, "batch_size", 64)
    monkeypatch.setitem(wgan.WGAN_NETS, "hidden", 16)
    monkeypatch.setitem(wgan.WGAN_NETS, "d_hidden", 16)
    out = tmp_path / "table.json"
    # two worker processes: the settings patched here must travel with the tasks
    assert main(["toy-table", "--seeds", "1", "--samples", "200", "--workers", "2", "--paper-ula", "--wgan",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Table 1" in printed and f"wrote {out}" in printed

    data = json.loads(out.read_text())
    assert data["meta"]["seeds"] == 1 and data["meta"]["n_samples"] == 200
    records = data["records"]
    assert [r["method"] for r in records] == ["generator", "drs", "mh", "ddls", "dot", "dot_target", "ddls_paper",
                                              "reference", "wgan_generator", "wgan_ddls", "wgan_reference"]
    assert data["meta"]["workers"] == 2 and data["meta"]["paper_ula"] and data["meta"]["wgan"]
    assert data["meta"]["cpu_seconds"] > 0
    samplers = [r for r in records if "reference" not in r["method"]]
    for r in samplers:
        assert KEYS <= set(r), KEYS - set(r)
        assert 0 <= r["modes_mean"] <= 25 and r["modes_std"] == 0.0  # one seed: no spread
        assert 0 <= r["hq_mean"] <= 1 and r["seconds"] >= 0 and 0 <= r["mode_tv_mean"] <= 1
        assert r["n_samples"] == 200 and r["seeds"] == 1 and len(r["per_seed"]) == 1
    for r in records[7], records[10]:
        assert REFERENCE_KEYS <= set(r), REFERENCE_KEYS - set(r)
        assert len(r["per_seed"][0]["weights"]) == 25 and sum(r["per_seed"][0]["weights"]) == pytest.approx(1.0)
        # two lattices of 20,000 points agree at least as well as 200 exact draws do by chance (a pair
        # trained for 20 steps may put all of p_t on one mode: then both are 0)
        assert r["mode_tv_mean"] <= r["sampling_floor_mean"]
    by = {r["method"]: r for r in records}
    assert by["ddls"]["options"] == by["wgan_ddls"]["options"] == {"steps": 5, "step_size": 1e-3}
    assert by["ddls_paper"]["options"] == {"steps": 4, "step_size": 1e-3}
    assert by["drs"]["options"] == {"shift_quantile": 0.95}
    assert by["dot"]["options"] == {"space": "latent", "steps": 3}
    assert by["dot_target"]["options"] == {"space": "target", "steps": 3}
    assert "noise floor: p_t quadrature" in printed
    # the printed table is format_table of the same records
    assert table1.format_table(records) in printed

    # the worker processes computed what one process computes (both with one thread)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = table1.table1(seeds=1, n_samples=200, methods=table1.DEFAULT_METHODS + ("ddls_paper",), wgan=True,
                              workers=1)
    finally:
        torch.set_num_threads(threads)
    assert json.dumps([r["per_seed"] for r in again]) == json.dumps([r["per_seed"] for r in records])  # nan-safe


def test_committed_toy_table_has_the_rows_and_the_bars():
    data = json.loads(COMMITTED.read_text())
    assert data["meta"]["seeds"] == 5 and data["meta"]["n_samples"] == 10_000
    assert [r["method"] for r in data["records"]] == list(table1.DEFAULT_METHODS) + ["reference"]
    by = {r["method"]: r for r in data["records"]}
    for r in data["records"]:
        assert "mode_tv_mean" in r and "mode_tv_std" in r, r["method"]
        if r["method"] != "reference":
            assert len(r["per_seed"]) == 5 and all("mode_tv" in s for s in r["per_seed"])
            # the recipe the JSON was made with is today's
            assert r["options"] == table1.SAMPLER_OPTIONS[r["method"]], r["method"]
    # the paper's bar for DDLS as tuned: at least 98% high quality and no mode lost
    assert by["ddls"]["hq_mean"] >= 0.98 and by["ddls"]["modes_mean"] >= 24.8
    # DOT, in either space, raises the share of high-quality samples over the generator's on every pair
    for method in ("dot", "dot_target"):
        gains = [a["hq_fraction"] - b["hq_fraction"] for a, b in zip(by[method]["per_seed"], by["generator"]["per_seed"])]
        assert min(gains) > 0, (method, gains)
    # the reference's own error is far below what 10,000 samples can resolve
    assert by["reference"]["mode_tv_mean"] < 0.1 * by["reference"]["sampling_floor_mean"]


def test_committed_extended_toy_table_was_made_with_todays_paper_and_wgan_rows():
    data = json.loads(EXTENDED.read_text())
    assert data["meta"]["seeds"] == 5 and data["meta"]["n_samples"] == 10_000
    by = {r["method"]: r for r in data["records"]}
    assert {"ddls_paper", "wgan_generator", "wgan_ddls", "wgan_reference"} <= set(by)
    assert by["ddls_paper"]["options"] == table1.SAMPLER_OPTIONS["ddls_paper"]
    assert by["ddls_paper"]["options"].get("mala", False) is False and "decay" not in by["ddls_paper"]["options"]
    assert by["wgan_ddls"]["options"] == table1.SAMPLER_OPTIONS["ddls"]
    # the pairs are the default table's: the generator's samples are the same, seed by seed
    default = {r["method"]: r for r in json.loads(COMMITTED.read_text())["records"]}
    assert by["generator"]["per_seed"] == default["generator"]["per_seed"]
