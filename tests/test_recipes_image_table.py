"""Table 1 on stacked digits: the sampler-free reference, the table's shape, and the committed results."""
import json
import math
from pathlib import Path

import pytest
import torch

from ebmlib import images, metrics
from ebmlib.recipes import image_table

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "image_table_cpu.json"


class ConstantLogit(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0])


class OneImageLogit(torch.nn.Module):
    """d = 0 on the first image of a batch of 1,000 and -60 elsewhere: p_t is (almost) one image."""

    def forward(self, x):
        d = torch.full((x.shape[0],), -60.0)
        d[0] = 0.0
        return d


def test_the_target_reference_is_the_plain_histogram_under_a_flat_logit(digit_extractor):
    x, _ = images.load_images("stacked-digits", train=False)
    x = images.to_float(x[:1000])
    flat = image_table.target_weights(x, ConstantLogit(), digit_extractor, batch_size=1000)
    plain = metrics.score(x, {"mu": torch.zeros(3 * digit_extractor.model.feature_dim),
                              "sigma": torch.eye(3 * digit_extractor.model.feature_dim), "n": 1,
                              "extractor": digit_extractor.name}, digit_extractor)
    assert flat["kl"] == pytest.approx(plain["kl"], rel=1e-9) and flat["ess"] == pytest.approx(1000, rel=1e-9)
    assert flat["high_quality"] == pytest.approx(plain["high_quality"], rel=1e-9) and flat["logit_std"] == 0
    peaked = image_table.target_weights(x, OneImageLogit(), digit_extractor, batch_size=1000)
    assert peaked["ess"] == pytest.approx(1, rel=1e-6) and peaked["kl"] == pytest.approx(math.log(1000), rel=1e-6)


def test_the_table_needs_a_data_set_whose_modes_can_be_counted():
    with pytest.raises(ValueError, match="stacked-digits"):
        image_table.image_table(dataset="tiny")


def test_format_table_prints_every_row_and_the_target():
    row = {k: 0.5 for c in image_table.COLUMNS for k in (f"{c}_mean", f"{c}_std")}
    table = {"rows": [{**row, "name": image_table.ROW_NAMES[r]} for r in image_table.ROWS],
             "target": {"name": image_table.ROW_NAMES["p_t"], "kl_mean": 0.1, "kl_std": 0.0,
                        "high_quality_mean": 0.2, "high_quality_std": 0.0, "ess_mean": 4000.0},
             "meta": {"n_samples": 5000, "seeds": 3, "kl_floor": 0.0999}}
    text = image_table.format_table(table)
    for name in image_table.ROW_NAMES.values():
        assert name in text
    assert "effective sample size 4,000" in text and "KL floor" in text


# --- the committed results (benchmarks/results/image_table_cpu.json, `make image-table`) -----------------


@pytest.fixture(scope="module")
def committed():
    return json.loads(RESULTS.read_text())


def test_the_committed_table_was_made_by_the_current_recipe(committed):
    meta = committed["meta"]
    assert meta["dataset"] == "stacked-digits" and meta["seeds"] == 3 and meta["n_samples"] == 5000
    assert meta["train"] == {**image_table.TRAIN, "betas": list(image_table.TRAIN["betas"])}
    assert meta["nets"] == image_table.NETS and meta["calibration"] == image_table.CALIBRATION
    assert {r["row"]: (r["sampler"], r["options"]) for r in committed["rows"]} == {
        name: (sampler, options) for name, (sampler, options) in image_table.ROWS.items()}
    # the design's 15 minutes on 2 CPU cores are for the DDLS table (three pairs, the generator, DRS, MH-GAN and
    # both DDLS rows); the DOT row, added beside them, is timed on its own and counted on top
    rows = {r["row"]: r for r in committed["rows"]}
    dot_seconds = sum(s["seconds"] for s in rows["dot"]["per_seed"])
    assert meta["total_seconds"] - dot_seconds < 15 * 60, (meta["total_seconds"], dot_seconds)


def test_the_committed_means_are_the_means_of_its_seeds(committed):
    for record in [*committed["rows"], committed["target"]]:
        for key in record:
            if key.endswith("_mean"):
                values = [s[key[:-5]] for s in record["per_seed"]]
                assert len(values) == 3 and record[key] == pytest.approx(sum(values) / 3, rel=1e-12)


def test_ddls_at_the_papers_settings_raises_the_high_quality_fraction_on_every_seed(committed):
    rows = {r["row"]: r for r in committed["rows"]}
    for gen, ddls in zip(rows["generator"]["per_seed"], rows["ddls_paper"]["per_seed"]):
        assert ddls["high_quality"] > gen["high_quality"] + 0.005


def test_the_target_p_t_has_the_generators_mode_weights_within_the_noise(committed):
    # The reason DDLS cannot lower the mode KL here: the calibrated logit hardly varies over the generator's
    # samples, so p_t = p_g e^d / Z itself weighs the modes as the generator does. Compared above each
    # histogram's finite-sample floor ((K - 1) / 2N, with N the effective sample size of the weights).
    rows = {r["row"]: r for r in committed["rows"]}
    for gen, target in zip(rows["generator"]["per_seed"], committed["target"]["per_seed"]):
        excess_gen = gen["kl"] - 999 / (2 * 5000)
        excess_target = target["kl"] - 999 / (2 * target["ess"])
        assert abs(excess_target - excess_gen) < 0.1 * excess_gen and target["logit_std"] < 0.5
