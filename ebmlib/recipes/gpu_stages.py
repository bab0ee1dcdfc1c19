"""What the stages of ``python -m ebmlib gpu-check`` (``ebmlib.recipes.gpu_check``) call, each inside its
own process: the machine's description, the suite's CUDA tests, a training-speed probe, and ``evaluate``
on whatever sample files the samplers wrote. Each writes its result as JSON to the path it is given.
"""
import json
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import torch

from .._files import write_text

ROOT = Path(__file__).resolve().parents[2]  # the repository: its tests/ folder holds the CUDA tests
TRAIN_TARGET_G_STEPS_PER_S = 100_000 / 3600  # 100k generator steps in under an hour


def environment(device, json_path):
    """Write the machine's description to ``json_path``: device, driver, versions and numeric settings.
    On a device that does not work (no CUDA, an old driver) it raises, saying what to do."""
    from .bench import precision_settings

    device = torch.device(device)
    precision = precision_settings()  # read as the benchmark reads them (a switch torch refuses to read is noted)
    info = {"device_type": device.type, "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": precision["cudnn_version"], "tf32_matmul": precision["cuda_matmul_allow_tf32"],
            "tf32_cudnn": precision["cudnn_allow_tf32"], "float32_matmul_precision": precision["float32_matmul_precision"],
            "cudnn_benchmark": precision["cudnn_benchmark"], "cudnn_deterministic": precision["cudnn_deterministic"],
            "precision": precision, "driver": nvidia_smi("driver_version"), "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"CUDA is not available to torch {torch.__version__} (built for CUDA "
                               f"{torch.version.cuda}): run on the GPU machine with a CUDA build of torch, "
                               f"or pass --device cpu for the dry run")
        props = torch.cuda.get_device_properties(device)
        info.update(device=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1), device_count=torch.cuda.device_count())
    else:
        info["device"] = f"cpu ({platform.processor() or platform.machine()})"
    write_text(json_path, json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))


def speed_probe(device, json_path, steps, warmup, batch_size=64, n_dis=5, ch=None, compile=False):
    """Generator steps per second of the SN-GAN standard CNN on random CIFAR-10-shaped data, through
    ``ebmlib.train_images.train_images`` with its defaults (bf16 autocast and channels_last on CUDA, EMA).
    ``warmup`` steps first (cuDNN's algorithm search, the allocator, and with ``compile`` the compilation),
    then ``steps`` timed ones."""
    from .. import images
    from ..train_images import train_images
    from .pipeline import build

    device = torch.device(device)
    torch.manual_seed(0)
    G, D = build("cnn", 128, ch, "cifar10")
    data = torch.randint(0, 256, (max(1024, batch_size), *images.dataset("cifar10").shape), dtype=torch.uint8)
    batches = images.Batches(data, batch_size, device=device, seed=0)
    options = dict(n_dis=n_dis, batch_size=batch_size, device=device, progress=False, compile=compile)
    train_images(G.to(device), D.to(device), batches, steps=warmup, log_every=warmup, **options)
    _sync(device)
    start = time.perf_counter()
    train_images(G, D, batches, steps=steps, log_every=steps, **options)
    _sync(device)
    seconds = time.perf_counter() - start
    rate = steps / seconds
    result = {"arch": "cnn", "ch": ch or "paper", "compile": bool(compile), "batch_size": batch_size, "n_dis": n_dis, "steps": steps,
              "warmup_steps": warmup, "seconds": seconds, "g_steps_per_s": rate,
              "real_img_per_s": rate * n_dis * batch_size, "hours_for_100k_steps": 100_000 / rate / 3600,
              "meets_target": rate >= TRAIN_TARGET_G_STEPS_PER_S}
    write_text(json_path, json.dumps(result, indent=2))
    print(f"{rate:.2f} generator steps/s (batch {batch_size}, n_dis {n_dis}): 100k steps in "
          f"{result['hours_for_100k_steps']:.2f} h")


class CudaTestsOnly:
    """A pytest plugin that keeps only the tests that need CUDA: those marked ``cuda``, or skipped by a
    ``skipif`` whose reason names CUDA or a GPU (the suite's way: ``skipif(not torch.cuda.is_available(),
    reason="needs CUDA")``). It writes the counts of passed, failed and skipped tests to ``json_path``."""

    def __init__(self, json_path):
        self.json_path = json_path

    @staticmethod
    def needs_cuda(item):
        for mark in item.iter_markers():
            reason = str(mark.kwargs.get("reason", ""))
            if mark.name == "cuda" or (mark.name == "skipif" and re.search(r"\b(cuda|gpu)\b", reason, re.I)):
                return True
        return False

    def pytest_collection_modifyitems(self, config, items):
        dropped = [item for item in items if not self.needs_cuda(item)]
        items[:] = [item for item in items if self.needs_cuda(item)]
        config.hook.pytest_deselected(items=dropped)

    def pytest_terminal_summary(self, terminalreporter):
        counts = {key: len(terminalreporter.stats.get(key, [])) for key in ("passed", "failed", "skipped", "error")}
        write_text(self.json_path, json.dumps(counts))


def cuda_tests(json_path, device, tests=None):
    """Run the suite's CUDA tests (``tests``: default the repository's tests/ folder). On ``device`` cuda a
    skipped CUDA test is a failure: it means pytest could not see the GPU."""
    import pytest

    tests = Path(tests) if tests is not None else ROOT / "tests"
    if not tests.is_dir():
        raise FileNotFoundError(f"no tests folder at {tests}: run gpu-check from a clone of the repository")
    status = pytest.main([str(tests), "-q", "-rs", "-p", "no:cacheprovider", "--rootdir", str(tests.parent)],
                         plugins=[CudaTestsOnly(json_path)])
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise RuntimeError(f"no CUDA tests found in {tests}")
    counts = json.loads(Path(json_path).read_text())
    if status == 0 and device == "cuda" and counts["skipped"]:
        raise RuntimeError(f"{counts['skipped']} CUDA tests were skipped: pytest does not see the GPU")
    return int(status)


def evaluate_samples(run, options):
    """``python -m ebmlib evaluate`` on every sample file in the folder ``run`` (those the samplers wrote)."""
    from ..__main__ import main as cli

    files = sorted(str(p) for p in Path(run).glob("samples_*.pt"))
    if not files:
        raise FileNotFoundError(f"no samples_*.pt in {run}: every sample stage failed")
    return cli(["evaluate", *files, *options])


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _quiet_run(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def nvidia_smi(query):
    """One field of ``nvidia-smi --query-gpu`` for the first GPU, or None without nvidia-smi."""
    if not shutil.which("nvidia-smi"):
        return None
    text = _quiet_run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader", "-i", "0"])
    return text.splitlines()[0].strip() if text else None


def _git(*args):
    return _quiet_run(["git", *args]) if (ROOT / ".git").exists() else None
