"""The command line: the pipeline end to end on the tiny data set, and failures a user can fix answered by one
line ``ebmlib: error: ...`` (status 1; 2 for a bad command line) unless ``--debug`` asks for the traceback."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ebmlib import cifar10
from ebmlib.__main__ import main
from ebmlib.cifar10 import ARCHIVE_NAME, DownloadError
from ebmlib.recipes import pipeline

ROOT = Path(__file__).resolve().parent.parent


def error_line(err):
    """The one line a failure prints on stderr (no traceback)."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ebmlib: error: "), err
    return lines[0]


def run_cli(*argv):
    """``python -m ebmlib ARGV`` in a fresh process, as a user runs it."""
    env = {**os.environ, "EBMLIB_SMOKE": "1"}
    return subprocess.run([sys.executable, "-m", "ebmlib", *map(str, argv)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def damaged_archive(folder):
    folder.mkdir()
    (folder / ARCHIVE_NAME).write_bytes(b"<html>503 Service Unavailable</html>")
    return folder


# --- bad command lines ----------------------------------------------------------------------------------------

def test_seeds_zero_is_an_error_from_the_command_line():
    proc = run_cli("toy-table", "--seeds", "0")
    assert proc.returncode == 2
    assert "--seeds: must be positive" in error_line(proc.stderr)
    assert "Table 1" not in proc.stdout


@pytest.mark.parametrize("argv", [["toy-table", "--seeds", "0"], ["toy-table", "--samples", "0"],
                                  ["toy-table", "--seeds", "-2"], ["toy-table", "--seeds", "two"], [],
                                  ["train"], ["train", "--run", "r", "--steps", "0"],
                                  ["train", "--run", "r", "--dataset", "mnist"]])
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    assert main(argv) == 2
    assert "--help" in error_line(capsys.readouterr().err)  # the line says where the usage is


# --- the pipeline end to end ----------------------------------------------------------------------------------

def test_the_pipeline_runs_end_to_end_from_the_command_line(tmp_path, capsys):
    run, data = tmp_path / "run", tmp_path / "tiny"
    assert main(["train", "--run", str(run), "--ch", "4", "--steps", "3", "--n-dis", "1", "--batch-size", "8",
                 "--checkpoint-every", "2", "--sample-every", "3", "--log-every", "1", "--quiet",
                 "--data", "tiny", "--data-dir", str(data), "--device", "cpu"]) == 0
    assert (run / "checkpoint.pt").exists() and (run / "run.json").exists()
    assert (run / "samples" / "step_000003.png").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3

    # calibrate and evaluate find the data set and its folder in the run's run.json
    assert main(["calibrate", "--run", str(run), "--steps", "5", "--quiet", "--device", "cpu"]) == 0
    assert (run / "calibrated.pt").exists()
    assert main(["sample", "--run", str(run), "--sampler", "ddls", "--n", "12", "--steps", "4", "--step-size",
                 "0.01", "--device", "cpu"]) == 0
    assert main(["sample", "--run", str(run), "--sampler", "generator", "--n", "12", "--device", "cpu"]) == 0
    saved = pipeline.load_samples(run / "samples_ddls.pt")
    assert saved["images"].dtype == torch.uint8 and saved["images"].shape == (12, 3, 32, 32)
    assert saved["options"]["steps"] == 4 and len(saved["info"]["energy_trace"]) == 4

    scores = tmp_path / "scores.json"
    pipeline.extractor("classifier", dataset="tiny", root=data, device="cpu", steps=2)  # cached for evaluate
    assert (data / "classifier_2.pt").exists()
    assert main(["evaluate", str(run / "samples_ddls.pt"), str(run / "samples_generator.pt"), "--json", str(scores),
                 "--classifier-steps", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "fcd" in printed and "fid" not in printed.lower().replace("fidelity", "")
    result = json.loads(scores.read_text())
    for record in result.values():
        assert record["n_samples"] == 12 and record["n_reference"] == 1000 and record["extractor"] == "tiny-classifier"
        assert record["dataset"] == "tiny"


def test_stacked_digits_run_through_the_same_commands(tmp_path, digits_root, capsys):
    run = tmp_path / "digits_run"
    assert main(["train", "--run", str(run), "--data", "stacked-digits", "--data-dir", str(digits_root), "--ch", "4",
                 "--latent-dim", "8", "--steps", "2", "--n-dis", "1", "--batch-size", "8", "--quiet",
                 "--device", "cpu"]) == 0
    assert json.loads((run / "run.json").read_text())["dataset"] == "stacked-digits"
    assert main(["calibrate", "--run", str(run), "--steps", "3", "--quiet", "--device", "cpu"]) == 0
    for sampler in ("generator", "drs", "mh", "ddls", "dot"):
        assert main(["sample", "--run", str(run), "--sampler", sampler, "--n", "30", "--steps", "3",
                     "--device", "cpu"]) == 0
        assert pipeline.load_samples(run / f"samples_{sampler}.pt")["images"].shape == (30, 3, 8, 8)
    scores = tmp_path / "scores.json"
    assert main(["evaluate", str(run / "samples_generator.pt"), str(run / "samples_ddls.pt"), "--json", str(scores),
                 "--device", "cpu"]) == 0
    assert "modes" in capsys.readouterr().out
    for record in json.loads(scores.read_text()).values():
        assert record["extractor"] == "stacked-digit-classifier" and record["n_reference"] == 50_000
        assert 1 <= record["modes"] <= 30 and 0 < record["kl"] <= math.log(1000) + 1e-9


def test_the_image_table_runs_from_the_command_line(tmp_path, digits_root, capsys):
    out = tmp_path / "table.json"
    assert main(["image-table", "--seeds", "2", "--samples", "40", "--steps", "2", "--calibration-steps", "2",
                 "--data-dir", str(digits_root), "--runs", str(tmp_path / "runs"), "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "DDLS (paper: ULA 0.01)" in printed and "KL" in printed
    table = json.loads(out.read_text())
    assert [r["row"] for r in table["rows"]] == ["generator", "drs", "mh", "ddls_paper", "ddls", "dot"]
    for record in table["rows"]:
        assert len(record["per_seed"]) == 2 and record["seconds_mean"] > 0
        assert record["modes_mean"] == sum(s["modes"] for s in record["per_seed"]) / 2
        assert 0 <= record["high_quality_mean"] <= 1 and record["fcd_mean"] > 0
    assert table["meta"]["seeds"] == 2 and table["meta"]["n_samples"] == 40 and table["meta"]["train"]["steps"] == 2
    assert (tmp_path / "runs" / "seed_1" / "calibrated.pt").exists()


def test_the_image_table_needs_a_data_set_with_countable_modes(capsys):
    assert main(["image-table", "--data", "tiny"]) == 2
    assert "stacked-digits" in error_line(capsys.readouterr().err)


# --- failures a user can fix ----------------------------------------------------------------------------------

def offline(monkeypatch, tmp_path):
    """CIFAR-10's URL pointing at a file that does not exist: the download fails as it does offline."""
    monkeypatch.setattr(cifar10, "URL", (tmp_path / "offline" / ARCHIVE_NAME).as_uri())


def test_train_passes_compile_and_the_memory_layout_to_the_pipeline(tmp_path, monkeypatch, capsys):
    calls = []

    def train(run, **kw):
        calls.append(kw)
        return {"step": [], "seconds": 0.0, "checkpoint": None}

    monkeypatch.setattr(pipeline, "train", train)
    argv = ["train", "--run", str(tmp_path / "run"), "--device", "cpu", "--quiet"]
    for flags in ([], ["--compile", "--channels-last"], ["--no-channels-last"]):
        assert main([*argv, *flags]) == 0
    assert "compile" not in calls[0] and "channels_last" not in calls[0]  # the defaults: train_images's own
    assert calls[1]["compile"] is True and calls[1]["channels_last"] is True
    assert calls[2]["channels_last"] is False


def test_a_failed_download_is_one_line_naming_the_folder(tmp_path, monkeypatch, capsys):
    offline(monkeypatch, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    assert main(["train", "--run", str(tmp_path / "run"), "--data-dir", str(data), "--device", "cpu", "--quiet"]) == 1
    line = error_line(capsys.readouterr().err)
    assert str(data.resolve()) in line and "could not be downloaded" in line
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_exception_instead(tmp_path, monkeypatch, where):
    offline(monkeypatch, tmp_path)
    argv = ["train", "--run", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"), "--device", "cpu", "--quiet"]
    with pytest.raises(DownloadError, match="could not be downloaded"):
        main(["--debug", *argv] if where == "before" else [*argv, "--debug"])


def test_a_damaged_archive_is_one_line_about_its_md5(tmp_path, capsys):
    data = damaged_archive(tmp_path / "data")
    assert main(["train", "--run", str(tmp_path / "run"), "--data-dir", str(data), "--device", "cpu", "--quiet"]) == 1
    line = error_line(capsys.readouterr().err)
    assert "md5" in line and str(data / ARCHIVE_NAME) in line
    assert (data / ARCHIVE_NAME).exists()  # left in place for the user to look at


def test_a_checkpoint_of_another_width_is_one_line_naming_the_file(tmp_path, capsys):
    run, data = tmp_path / "run", tmp_path / "tiny"
    tiny = ["--data", "tiny", "--data-dir", str(data), "--device", "cpu", "--quiet"]
    assert main(["train", "--run", str(run), "--ch", "8", "--steps", "2", "--n-dis", "1", "--batch-size", "4",
                 *tiny]) == 0
    capsys.readouterr()
    # training on with other nets is refused before anything is written
    assert main(["train", "--run", str(run), "--ch", "16", "--steps", "3", *tiny]) == 1
    assert "describes another run" in error_line(capsys.readouterr().err)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "ch": 16}))  # the nets built now are twice as wide
    for argv in (["calibrate", "--run", str(run), "--steps", "2", "--quiet"], ["sample", "--run", str(run), "--n", "4"]):
        assert main([*argv, "--device", "cpu"]) == 1
        line = error_line(capsys.readouterr().err)
        assert str(run / "checkpoint.pt") in line and "shapes differ" in line, line
    assert not (run / "calibrated.pt").exists()


def test_a_damaged_archive_from_a_real_process(tmp_path):
    data = damaged_archive(tmp_path / "data")
    proc = run_cli("train", "--run", tmp_path / "run", "--data-dir", data, "--device", "cpu", "--quiet")
    assert proc.returncode == 1
    assert "md5" in error_line(proc.stderr)
