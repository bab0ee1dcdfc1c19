"""The image pipeline on the tiny fake data set: run folders and what they refuse, calibration and sampling from
a run, and the cached feature classifier."""
import dataclasses
import json

import pytest
import torch

from ebmlib import checkpoint as ckpt
from ebmlib import features, images
from ebmlib.checkpoint import CheckpointError
from ebmlib.nets import SNGANDiscriminator, SNGANGenerator
from ebmlib.recipes import pipeline

SMALL = dict(ch=4, device="cpu", steps=1, n_dis=1, batch_size=4, progress=False)


@pytest.fixture
def data(tmp_path):
    return tmp_path / "tiny"


def test_train_writes_a_run_that_loads_back(tmp_path, data):
    run = tmp_path / "run"
    history = pipeline.train(run, dataset="tiny", root=data, **SMALL)
    assert history["checkpoint"] == run / "checkpoint.pt"
    info = json.loads((run / "run.json").read_text())
    assert set(info) == {"dataset", "root", "arch", "latent_dim", "ch", "train"}
    assert (info["dataset"], info["root"], info["arch"], info["ch"]) == ("tiny", str(data), "cnn", 4)
    assert info["train"]["steps"] == 1 and info["train"]["loss"] == "hinge"  # the paper's settings, overridden
    G, D = pipeline.load_run(run, device="cpu")
    assert isinstance(G, SNGANGenerator) and isinstance(D, SNGANDiscriminator) and not G.training


def test_a_run_folder_with_a_checkpoint_of_another_architecture_is_an_error(tmp_path, data):
    run = tmp_path / "run"
    pipeline.train(run, dataset="tiny", root=data, **SMALL)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "ch": 8}))  # the nets built now are twice as wide
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        pipeline.load_run(run, device="cpu")


def test_resuming_a_run_with_other_nets_is_an_error_that_keeps_run_json(tmp_path, data):
    run = tmp_path / "run"
    pipeline.train(run, dataset="tiny", root=data, **SMALL)
    before = (run / "run.json").read_text()
    with pytest.raises(ValueError, match="ch"):
        pipeline.train(run, dataset="tiny", root=data, **{**SMALL, "ch": 8, "steps": 2})
    with pytest.raises(ValueError, match="dataset"):
        pipeline.train(run, dataset="cifar10", root=data, **{**SMALL, "steps": 2})
    assert (run / "run.json").read_text() == before
    pipeline.load_run(run, device="cpu")  # still loads


def test_missing_run_or_calibration_says_what_to_run(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="ebmlib train"):
        pipeline.load_run(tmp_path, device="cpu")
    run = tmp_path / "run"
    pipeline.train(run, dataset="tiny", root=data, **SMALL)
    with pytest.raises(FileNotFoundError, match="ebmlib calibrate"):
        pipeline.load_calibrated(run, device="cpu")


def test_calibrate_and_sample_write_their_files(tmp_path, data):
    run = tmp_path / "run"
    pipeline.train(run, dataset="tiny", root=data, **SMALL)
    d = pipeline.calibrate(run, device="cpu", steps=3, batch_size=8, progress=False)  # the run's data folder
    G, loaded = pipeline.load_calibrated(run, device="cpu")
    x = G(torch.randn(3, G.latent_dim))
    with torch.no_grad():
        assert torch.equal(loaded(x), d(x))
    out = pipeline.sample(run, sampler="mh", n=6, device="cpu", name="mh_small", steps=2)
    saved = pipeline.load_samples(run / "samples_mh_small.pt")
    assert torch.equal(saved["images"], images.to_uint8(out.x)) and saved["sampler"] == "mh"
    assert saved["options"] == {"steps": 2} and 0 <= saved["info"]["accept_rate"] <= 1
    with pytest.raises(FileNotFoundError, match="ebmlib sample"):
        pipeline.load_samples(run / "samples_none.pt")
    # DDLS with the pipeline's settings, written beside the samples
    out = pipeline.sample(run, sampler="ddls", n=4, device="cpu", steps=2, mala=True)
    saved = pipeline.load_samples(run / "samples_ddls.pt")
    assert saved["options"] == {**pipeline.PAPER_DDLS, "amp": True, "steps": 2, "mala": True}
    assert saved["options"] == pipeline.sampler_options("ddls", steps=2, mala=True)
    assert torch.equal(saved["z"], out.z) and 0 <= saved["info"]["accept_rate"] <= 1


def test_sampler_options_are_the_pipeline_defaults_under_the_given_ones():
    assert pipeline.sampler_options("ddls") == {**pipeline.PAPER_DDLS, "amp": True}
    assert pipeline.sampler_options("ddls", step_size=0.1, amp=False) == {"steps": 1000, "step_size": 0.1, "amp": False}
    assert pipeline.sampler_options("drs") == {"shift_quantile": 0.95}
    # a bound of one's own turns the rule off: rejection with that bound
    assert pipeline.sampler_options("drs", m_quantile=0.99) == {"m_quantile": 0.99}
    assert pipeline.sampler_options("mh", steps=5) == {"steps": 5}


def test_image_calibration_refuses_the_low_dimensional_residual(tmp_path):
    with pytest.raises(ValueError, match="'head', 'finetune'"):
        pipeline.calibrate(tmp_path / "no-run", method="residual")


def test_unknown_architecture_is_a_value_error():
    with pytest.raises(ValueError, match="cnn"):
        pipeline.build("vgg")


def test_the_nets_are_sized_by_the_data_set_and_refuse_sizes_they_cannot_make(monkeypatch):
    for name, shape in (("stacked-digits", (3, 8, 8)), ("tiny", (3, 32, 32))):
        G, D = pipeline.build("cnn", latent_dim=8, ch=4, dataset=name)
        assert G(torch.randn(2, 8)).shape == (2, *shape) and tuple(D.in_shape) == shape
    gray = dataclasses.replace(images.DATASETS["tiny"], name="gray", shape=(1, 28, 28))
    monkeypatch.setitem(images.DATASETS, "gray", gray)
    with pytest.raises(ValueError, match=r"S in \(8, 16, 32, 64\), got \(1, 28, 28\)"):
        pipeline.build("cnn", ch=4, dataset="gray")


def test_run_json_of_an_older_version_still_reads(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"tiny": True, "data": "old/tiny", "arch": "cnn", "ch": 4}))
    info = pipeline.read_run(tmp_path)
    assert info["dataset"] == "tiny" and info["root"] == "old/tiny"
    (tmp_path / "run.json").write_text(json.dumps({"arch": "cnn"}))
    assert pipeline.read_run(tmp_path)["dataset"] == "cifar10"


def test_classifier_extractor_size_knobs_and_cache(data):
    first = pipeline.extractor("classifier", dataset="tiny", root=data, device="cpu", steps=2, width=4, batch_size=8,
                               progress=False)
    assert (data / "classifier_2_w4_b8.pt").exists()
    again = pipeline.extractor("classifier", dataset="tiny", root=data, device="cpu", steps=2, width=4, batch_size=8,
                               progress=False)  # from the cache
    a, b = first.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sum(p.numel() for p in first.model.parameters()) < sum(
        p.numel() for p in features.ImageClassifier(width=8).parameters())
    with pytest.raises(ValueError, match="classifier"):
        pipeline.extractor("pixels", dataset="tiny", root=data)


def test_resuming_a_run_in_another_memory_layout_works_and_run_json_records_it(tmp_path, data):
    run = tmp_path / "run"
    pipeline.train(run, dataset="tiny", root=data, **SMALL)
    assert json.loads((run / "run.json").read_text())["train"]["channels_last"] is False  # the CPU's default
    with pytest.warns(UserWarning) as caught:  # steps 1 -> 2 warns too
        history = pipeline.train(run, dataset="tiny", root=data, **{**SMALL, "steps": 2}, channels_last=True)
    assert any("channels_last False -> True" in str(w.message) for w in caught)
    assert history["start_step"] == 1 and history["step"][-1] == 2
    assert json.loads((run / "run.json").read_text())["train"]["channels_last"] is True
    assert ckpt.load(run / "checkpoint.pt")["config"]["channels_last"] is True
