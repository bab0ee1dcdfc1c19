"""The GPU check's dry run on the CPU: every stage really runs (tiny sizes), each in its own process; a
failing, crashing or hanging stage is recorded and the stages after it still run; the JSON is rewritten
after every stage."""
import json

import torch

from ebmlib.__main__ import build_parser, main
from ebmlib.recipes import gpu_check
from ebmlib.recipes.gpu_check import Stage, plan, run_stages, select

# the real stages the dry run here covers (the benchmark and the CUDA tests have tests of their own)
REAL = ["environment", "speed-probe", "train", "resume", "calibrate", "sample-generator", "sample-ddls", "evaluate"]


def test_the_dry_run_runs_every_stage_and_goes_on_past_failures(tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    stages = select(plan("cpu", work, dry_run=True), REAL)
    at = [s.name for s in stages].index("train") + 1
    stages[at:at] = [
        # a command that fails the way a user's would: one error line, exit status 1
        Stage("bad-sample", "ebmlib.__main__:main", (["sample", "--run", str(tmp_path / "nowhere"), "--n", "2"],)),
        Stage("crash", "os:kill", (0, 9)),  # a process killed without a word (as the kernel kills one out of memory)
        Stage("hang", "time:sleep", (120,), timeout=2),
        Stage("after-crash", "builtins:print", ("runs only if crash passed",), needs=("crash",)),
        # the JSON as it stands while this stage runs: written after every stage, not only at the end
        Stage("snapshot", "shutil:copy", (str(out / "gpu_check_dry.json"), str(tmp_path / "snapshot.json"))),
    ]
    report = run_stages(stages, out, "dry", budget=600, meta={"device": "cpu"})

    assert json.loads((out / "gpu_check_dry.json").read_text()) == report
    status = {r["name"]: r["status"] for r in report["stages"]}
    assert [r["name"] for r in report["stages"]] == [s.name for s in stages]
    assert all(status[name] == "passed" for name in REAL), {r["name"]: r["error"] for r in report["stages"]}
    assert status["bad-sample"] == "failed" and status["crash"] == "failed" and status["hang"] == "timeout"
    assert status["after-crash"] == "skipped" and status["snapshot"] == "passed"
    record = {r["name"]: r for r in report["stages"]}
    assert record["bad-sample"]["error"].startswith("ebmlib: error:") and "nowhere" in record["bad-sample"]["error"]
    assert record["bad-sample"]["exit_status"] == 1
    assert record["crash"]["error"] == "killed by SIGKILL"
    assert record["hang"]["seconds"] < 60 and "stopped after 2 s" in record["hang"]["error"]
    assert "needs crash" in record["after-crash"]["error"]
    for r in report["stages"]:
        assert {"name", "command", "status", "seconds", "error"} <= r.keys()
        assert (r["error"] is None) == (r["status"] == "passed")
    assert report["summary"] == {"passed": len(REAL) + 1, "failed": 2, "timeout": 1, "skipped": 1, "pending": 0,
                                 "all_passed": False}

    snapshot = {r["name"]: r["status"] for r in json.loads((tmp_path / "snapshot.json").read_text())["stages"]}
    assert snapshot["train"] == "passed" and snapshot["crash"] == "failed" and snapshot["snapshot"] == "pending"
    assert snapshot["resume"] == "pending"

    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["device_type"] == "cpu" and env["device"].startswith("cpu")
    assert {"cuda", "cudnn", "driver", "tf32_matmul", "tf32_cudnn", "cudnn_benchmark"} <= env.keys()
    assert "trained to step 3" in record["resume"]["output"]  # the resume went on from the first run's step 2
    probe = record["speed-probe"]["result"]
    assert probe["g_steps_per_s"] > 0 and probe["batch_size"] == 8 and probe["n_dis"] == 1
    scores = record["evaluate"]["result"]
    assert sorted(v["sampler"] for v in scores.values()) == ["ddls", "generator"]
    assert all(v["n_samples"] == 12 and v["extractor"] == "tiny-classifier" for v in scores.values())
    log = (out / "gpu_check_dry.log").read_text()
    assert all(f"=== {s.name}:" in log for s in stages if s.name != "after-crash")
    assert "Traceback" not in record["bad-sample"]["output"]


def test_a_spent_budget_skips_the_remaining_stages_and_says_so(tmp_path):
    stages = [Stage("slow", "time:sleep", (60,), timeout=120), Stage("late", "builtins:print", ("too late",))]
    report = run_stages(stages, tmp_path, "budget", budget=2)
    slow, late = report["stages"]
    assert slow["status"] == "timeout" and slow["seconds"] < 30
    assert late["status"] == "skipped" and "budget of 2 s" in late["error"]


def test_the_cuda_tests_are_those_skipped_for_want_of_a_gpu(tmp_path):
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_some.py").write_text(
        "import pytest, torch\n\n"
        "@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')\n"
        "def test_on_the_gpu():\n    assert torch.ones(1, device='cuda').item() == 1\n\n"
        "@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')\n"
        "def test_on_the_gpu_too():\n    assert torch.cuda.device_count() > 0\n\n"
        "def test_on_the_cpu():\n    raise AssertionError('a CPU test must not be picked')\n")
    counts = [str(tmp_path / "cpu.json"), str(tmp_path / "cuda.json")]
    target = "ebmlib.recipes.gpu_stages:cuda_tests"
    stages = [Stage("on-cpu", target, (counts[0], "cpu", str(tests))),
              Stage("on-cuda", target, (counts[1], "cuda", str(tests)), result=counts[1])]
    on_cpu, on_cuda = run_stages(stages, tmp_path / "out", "tests", budget=300)["stages"]
    assert json.loads(open(counts[0]).read()) == {"passed": 0, "failed": 0, "skipped": 2, "error": 0}
    assert on_cpu["status"] == "passed"
    if not torch.cuda.is_available():  # asked for CUDA without one: the skips are a failure, said plainly
        assert on_cuda["status"] == "failed" and "2 CUDA tests were skipped" in on_cuda["error"]
    else:
        assert on_cuda["status"] == "passed" and on_cuda["result"]["passed"] == 2


def test_the_command_line_runs_the_check_and_refuses_unknown_stages(tmp_path, capsys):
    args = build_parser().parse_args(["gpu-check", "--dry-run"])
    assert args.device is None and args.dry_run and args.out == "benchmarks/results"
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path), "--stages", "environment,warp"]) == 1
    error = capsys.readouterr().err
    assert "unknown stages ['warp']" in error and "sample-ddls" in error
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path), "--stages", "environment"]) == 0
    report = json.loads((tmp_path / "gpu_check_cpu.json").read_text())
    assert [r["name"] for r in report["stages"]] == ["environment"] and report["summary"]["all_passed"]
    assert report["meta"]["dry_run"] and report["environment"]["torch"] == torch.__version__


def test_the_plan_samples_with_every_sampler_and_keeps_the_gpu_sizes_within_nine_minutes(tmp_path):
    from ebmlib.samplers import SAMPLERS

    names = [s.name for s in plan("cuda", tmp_path, dry_run=False)]
    assert [n for n in names if n.startswith("sample-")] == [f"sample-{name}" for name in SAMPLERS]
    assert {"environment", "cuda-tests", "bench", "speed-probe", "train", "resume", "calibrate", "evaluate"} <= set(names)
    assert gpu_check.BUDGET_SECONDS <= 9 * 60
    probe = next(s for s in plan("cuda", tmp_path, dry_run=False) if s.name == "speed-probe")
    assert probe.args[2:6] == (200, 20, 64, 5)  # steps, warmup, batch 64, n_dis 5
    # the compiled probe: the same sizes through torch.compile, last so that it only spends what is left
    assert names[-1] == "speed-probe-compiled"
    compiled = next(s for s in plan("cuda", tmp_path, dry_run=False) if s.name == "speed-probe-compiled")
    assert compiled.args[2:] == (*probe.args[2:], True)
    assert "speed-probe-compiled" not in [s.name for s in plan("cpu", tmp_path, dry_run=True)]
