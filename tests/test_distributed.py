"""Training, sampling and scoring over two gloo ranks on the CPU: torchrun's command line trains and resumes,
a crashed run of two ranks resumes bit for bit, the ranks keep identical nets, and sampling and scoring under
two ranks give exactly what one process gives. Without torchrun nothing changes."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from ebmlib import distributed, images, samplers
from ebmlib.__main__ import build_parser
from ebmlib.images import Batches
from ebmlib.recipes import pipeline, ranks
from ebmlib.train_images import train_images

from helpers import CrashAt, TinyD, TinyG

ROOT = Path(__file__).resolve().parent.parent
WORLD = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- one process: nothing changes -----------------------------------------------------------------------------

def test_without_torchrun_everything_is_the_single_process_case():
    assert not distributed.launched() and (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.rank_seed(7) == 7 and distributed.setup("cpu") == torch.device("cpu")
    G, D = TinyG(), TinyD()
    assert distributed.replicate(D, torch.device("cpu")) is D
    loss = torch.tensor(1.5)
    assert distributed.mean(loss)[0] is loss and distributed.gather({"a": 1}) is None
    data = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    assert type(distributed.batches(data, 4, seed=1)) is Batches
    with torch.no_grad():
        one = ranks.sample("generator", G.eval(), None, 5, seed=3)
    assert torch.equal(one.x, samplers.sample("generator", G, None, 5, seed=3).x)


def test_the_ranks_slice_one_global_batch():
    data = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8)
    whole = Batches(data, 8, seed=5)
    ranks = [distributed.RankBatches(data, 4, rank=r, world_size=WORLD, seed=5) for r in range(WORLD)]
    for _ in range(9):  # past several epochs (three global batches an epoch)
        parts = [next(r) for r in ranks]
        assert all(p.shape == (4, 3, 32, 32) for p in parts) and not torch.equal(parts[0], parts[1])
        assert torch.equal(torch.cat(parts), next(whole))
    assert ranks[0].state_dict()["pos"] == ranks[1].state_dict()["pos"] == whole.state_dict()["pos"]
    with pytest.raises(ValueError, match="rank"):
        distributed.RankBatches(data, 4, rank=2, world_size=WORLD)


def test_each_rank_has_a_seed_of_its_own():
    seeds = [distributed.rank_seed(0, r) for r in range(4)]
    assert seeds[0] == 0 and len(set(seeds)) == 4
    assert distributed.rank_seed(1, 1) != seeds[1] and distributed.rank_seed(-3, 1) >= 0


def test_only_the_batch_norm_buffers_are_copied_from_rank_0():
    d_buffers = [name for name, _ in TinyD().named_buffers()]
    g_buffers = [name for name, _ in TinyG().named_buffers()]
    assert d_buffers and all(distributed._spectral_norm_buffer(n) for n in d_buffers)
    assert g_buffers and not any(distributed._spectral_norm_buffer(n) for n in g_buffers)


def test_every_option_gets_through_torchruns_own_parser():
    """torchrun reads abbreviations of its options after the script too: each option of ours has a spelling
    that reaches ebmlib unchanged (--run-dir for --run, --n-samples for --n)."""
    from torch.distributed.run import get_args_parser

    torchrun = get_args_parser()
    torchrun.exit_on_error = False
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, command in commands.items():
        for action in command._actions:
            spellings = [s for s in action.option_strings if s.startswith("--")]
            passed = []
            for spelling in spellings:
                argv = [name, spelling, "1"]
                try:
                    args = torchrun.parse_args(["--nproc-per-node", "2", "-m", "ebmlib", *argv])
                except (SystemExit, Exception):
                    continue
                passed.append(args.training_script_args == argv)
            assert not spellings or any(passed), (name, spellings)


# --- torchrun from the command line -----------------------------------------------------------------------------

def torchrun(*argv):
    env = {**os.environ, "EBMLIB_SMOKE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "ebmlib", *map(str, argv)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_torchrun_trains_on_two_ranks_and_resumes(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--run-dir", run, "--data", "tiny", "--data-dir", tmp_path / "tiny", "--device", "cpu",
            "--ch", "4", "--batch-size", "4", "--n-dis", "2", "--log-every", "1", "--sample-every", "2", "--quiet"]
    first = torchrun(*argv, "--steps", "2")
    assert first.stdout.count("effective batch size 8 (4 a rank x 2 ranks)") == 1  # rank 0 prints, alone
    info = json.loads((run / "run.json").read_text())
    assert info["distributed"] == {"world_size": 2, "backend": "gloo", "batch_size_per_rank": 4,
                                   "effective_batch_size": 8}
    before = torch.load(run / "checkpoint.pt", weights_only=True)

    torchrun(*argv, "--steps", "4")  # the same command, longer: resumes at step 2
    after = torch.load(run / "checkpoint.pt", weights_only=True)
    assert before["step"] == 2 and after["step"] == 4 and after["history"]["step"] == [1, 2, 3, 4]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert (run / "samples" / "step_000004.png").exists()
    for ckpt in (before, after):
        ranks = ckpt["rng_ranks"]
        assert len(ranks) == 2 and torch.equal(ranks[0]["latent"], ckpt["rng"]["latent"])
        assert not torch.equal(ranks[0]["latent"], ranks[1]["latent"])  # each rank its own latents
        assert torch.equal(ranks[0]["data"]["state_dict"]["order"], ranks[1]["data"]["state_dict"]["order"])
    # rank 1 went on from its saved stream: its state at step 4 is not where a fresh rank 1 would be after 2 steps
    assert not torch.equal(after["rng_ranks"][1]["latent"], before["rng_ranks"][1]["latent"])
    # one global stream of batches of 2 x 4 images, 2 a step: 4 steps used 64 of the 1000 images
    assert after["rng"]["data"]["state_dict"]["pos"] == 4 * 2 * 8


# --- two ranks in one test: exact resume, identical ranks, sampling and scoring -------------------------------

class Crashing(CrashAt, distributed.RankBatches):
    """A rank's batches that raise on one call (the same on every rank): a crash between two checkpoints."""


TRAIN = dict(steps=4, n_dis=2, batch_size=4, ema=0.9, checkpoint_every=2, log_every=1, sample_every=4, n_samples=4,
             lr_g=1e-3, lr_d=1e-3, progress=False, device="cpu")


def _train(out, data, crash_at=None):
    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    batches = Crashing(data, TRAIN["batch_size"], rank=distributed.rank(), world_size=WORLD, seed=3, crash_at=crash_at)
    history = train_images(G, D, batches, out_dir=out, seed=0, **TRAIN)
    return G, D, history["G_ema"]


def same(a, b):
    """Equal to the bit: tensors, and dicts, lists and tuples of them."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def _flat(*modules):
    return torch.cat([t.detach().double().flatten() for m in modules for t in m.state_dict().values()])


def scored_images():
    """600 images to score: three batches of 250 and a shorter one, so the two ranks score unequal shares."""
    return images.to_uint8(torch.rand(600, 3, 32, 32, generator=torch.Generator().manual_seed(9)) * 2 - 1)


def _worker(rank, port, folder, data, run):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.setup("cpu")
    try:
        folder = Path(folder)
        nets = _train(folder / "whole", data)
        every = distributed.gather(_flat(*nets))
        with pytest.raises(RuntimeError, match="simulated crash"):
            _train(folder / "crashed", data, crash_at=5)  # the first draw of step 3, after the checkpoint at step 2
        _train(folder / "crashed", data)  # resumes at step 2
        for name, options in (("ddls", dict(steps=3, step_size=0.01, mala=True, batch_size=5)),
                              ("generator", dict(batch_size=5))):
            pipeline.sample(run, sampler=name, n=12, seed=4, device="cpu", name=f"{name}_two", **options)
        ext = pipeline.extractor("classifier", dataset="tiny", root=Path(run).parent / "tiny", device="cpu", steps=2)
        two = pipeline.evaluate(scored_images(), dataset="tiny", root=Path(run).parent / "tiny", extractor_module=ext)
        if distributed.is_rank0():
            torch.save({"ranks": every, "scores": two}, folder / "ranks.pt")
    finally:
        distributed.shutdown()


def test_two_ranks_resume_exactly_stay_identical_and_sample_as_one_process(tmp_path, fake):
    (data, _), _ = fake
    run = tmp_path / "run"
    pipeline.train(run, dataset="tiny", root=tmp_path / "tiny", ch=4, device="cpu", steps=1, n_dis=1, batch_size=4,
                   progress=False)
    pipeline.calibrate(run, device="cpu", steps=3, batch_size=8, progress=False)
    ext = pipeline.extractor("classifier", dataset="tiny", root=tmp_path / "tiny", device="cpu", steps=2)

    mp.spawn(_worker, args=(free_port(), str(tmp_path), data, str(run)), nprocs=WORLD)

    whole, resumed = (torch.load(tmp_path / f / "checkpoint.pt", weights_only=True) for f in ("whole", "crashed"))
    assert whole["step"] == resumed["step"] == 4 and len(whole["rng_ranks"]) == WORLD
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "rng_ranks", "window"):
        assert same(whole[key], resumed[key]), key  # every tensor, every rank's random state
    assert whole["history"]["d_loss"] == resumed["history"]["d_loss"]
    saved = torch.load(tmp_path / "ranks.pt", weights_only=True)
    assert torch.equal(saved["ranks"][0], saved["ranks"][1])  # G, D (spectral-norm vectors too) and the EMA

    # one process, the same seed and options: the same samples, and the same scores
    one_scores = pipeline.evaluate(scored_images(), dataset="tiny", root=tmp_path / "tiny", extractor_module=ext)
    for name, options in (("ddls", dict(steps=3, step_size=0.01, mala=True, batch_size=5)),
                          ("generator", dict(batch_size=5))):
        pipeline.sample(run, sampler=name, n=12, seed=4, device="cpu", name=f"{name}_one", **options)
        one, two = (pipeline.load_samples(run / f"samples_{name}_{k}.pt") for k in ("one", "two"))
        assert torch.equal(one["images"], two["images"]) and torch.equal(one["z"], two["z"]), name
    one, two = (pipeline.load_samples(run / f"samples_ddls_{k}.pt")["info"] for k in ("one", "two"))
    assert one["accept_rate"] == pytest.approx(two["accept_rate"]) and 0 < one["accept_rate"] <= 1
    assert one["energy_trace"] == pytest.approx(two["energy_trace"])
    assert saved["scores"] == one_scores
