"""The whole CUDA path in one call: ``python -m ebmlib gpu-check`` (``make gpu-check``), under 9 minutes.

It runs what a CPU cannot show, stage by stage, each in its own process with its own time limit:

    environment     device, driver, torch, CUDA and cuDNN versions, TF32 and cuDNN settings
    cuda-tests      the test-suite's CUDA tests (those skipped without a GPU), with pytest
    bench           ``python -m ebmlib bench``: SN-GAN training and DDLS throughput
    speed-probe     generator steps per second of the SN-GAN CNN at batch 64, n_dis 5, CIFAR-10 shapes
    train, resume   ``python -m ebmlib train`` on the small ``tiny`` data set, then a few more steps
    calibrate       ``python -m ebmlib calibrate``
    sample-NAME     ``python -m ebmlib sample`` with every sampler of ``ebmlib.samplers.SAMPLERS``
    evaluate        ``python -m ebmlib evaluate`` with the classifier features

A failing stage never stops the check: its status, seconds, output and error are recorded and the next
stage runs (a stage whose input a failed stage should have made is skipped, saying which). One JSON and
one log go to ``out`` (``gpu_check_<tag>.json``, ``.log``); the JSON is rewritten, atomically, after every
stage, so a check that is killed still leaves what it measured. ``--device cpu`` (or ``--dry-run``) runs
the same stages with tiny sizes: the test suite runs it.

Stages run in processes forked from a server that has imported torch but never touched CUDA (Python's
``forkserver``): each gets a fresh CUDA context, a crash or a hang ends only that stage, and no stage
pays for importing torch again.
"""
import datetime
import importlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .._files import write_text
from .gpu_stages import nvidia_smi

BUDGET_SECONDS = 530  # the whole check on a GPU: 9 minutes, less the time to start and to write files
STAGES = "ebmlib.recipes.gpu_stages"  # the functions that stages call in their own process
OUTPUT_TAIL = 3000  # characters of a stage's output kept in the JSON (the log holds all of it)

# How big each stage is: on a GPU, big enough to mean something and small enough for the 9 minutes;
# the dry run (``--device cpu``), as small as still runs every line on 2 CPU cores.
SIZES = {
    "gpu": dict(train_steps=200, resume_steps=250, batch_size=64, n_dis=5, ch=None, calibration_steps=300,
                n_samples=2000, ddls_steps=100, classifier_steps=300, probe_steps=200, probe_warmup=20,
                probe_batch=64, probe_n_dis=5, probe_ch=None, bench=[]),
    "dry": dict(train_steps=2, resume_steps=3, batch_size=8, n_dis=1, ch=4, calibration_steps=3, n_samples=12,
                ddls_steps=3, classifier_steps=2, probe_steps=2, probe_warmup=1, probe_batch=8, probe_n_dis=1,
                probe_ch=4, bench=["--quick", "--ddls-batch", "16"]),
}
# seconds each stage may take (the budget of the whole check caps them further)
TIMEOUTS = {
    "gpu": {"environment": 60, "cuda-tests": 120, "bench": 240, "speed-probe": 90, "train": 90, "resume": 60,
            "calibrate": 60, "sample": 60, "evaluate": 90, "speed-probe-compiled": 240},
    "dry": {"environment": 60, "cuda-tests": 180, "bench": 300, "speed-probe": 120, "train": 120, "resume": 120,
            "calibrate": 120, "sample": 180, "evaluate": 180},
}


@dataclass
class Stage:
    """One isolated step of the check: ``target`` ("module:function") is called with ``args`` in a child
    process; the stage passes when it returns None or 0 and its output holds ``expect`` (if given).

    ``needs``: stages that must have passed first (else this one is skipped); ``result``: a JSON file the
    stage writes, copied into its record; ``command``: how a user runs the same thing by hand.
    """

    name: str
    target: str
    args: tuple = ()
    timeout: float = 60
    needs: tuple = ()
    result: str = None
    expect: str = None
    command: str = ""
    env: dict = field(default_factory=dict)


# --- the plan --------------------------------------------------------------------------------------------


def _cli(name, argv, timeout, **kw):
    """A stage that runs ``python -m ebmlib ARGV``."""
    argv = [str(a) for a in argv]
    return Stage(name, "ebmlib.__main__:main", (argv,), timeout, command="python -m ebmlib " + " ".join(argv), **kw)


def plan(device, work, dry_run):
    """The stages of the check on ``device``, writing their files under the folder ``work``."""
    from ..samplers import SAMPLERS

    size, limit = SIZES["dry" if dry_run else "gpu"], TIMEOUTS["dry" if dry_run else "gpu"]
    work, device = Path(work), str(device)
    run, data = work / "run", work / "data"
    width = ["--ch", size["ch"]] if size["ch"] else []
    train = ["train", "--run", run, "--data", "tiny", "--data-dir", data, "--device", device, "--batch-size",
             size["batch_size"], "--n-dis", size["n_dis"], "--log-every", size["train_steps"], "--checkpoint-every",
             size["train_steps"], "--sample-every", size["train_steps"], "--quiet", *width]
    probe = dict(steps=size["probe_steps"], warmup=size["probe_warmup"], batch_size=size["probe_batch"],
                 n_dis=size["probe_n_dis"], ch=size["probe_ch"])
    stages = [
        Stage("environment", f"{STAGES}:environment", (device, str(work / "environment.json")),
              limit["environment"], result=str(work / "environment.json"), command="(python, torch, nvidia-smi)"),
        Stage("cuda-tests", f"{STAGES}:cuda_tests", (str(work / "tests.json"), device), limit["cuda-tests"],
              result=str(work / "tests.json"), env={"EBMLIB_SMOKE": "1"},
              command="EBMLIB_SMOKE=1 python -m pytest tests (only the tests that need CUDA)"),
        _cli("bench", ["bench", "--json", work / "bench.json", "--device", device, *size["bench"]], limit["bench"],
             result=str(work / "bench.json")),
        Stage("speed-probe", f"{STAGES}:speed_probe", (device, str(work / "probe.json"), *probe.values()),
              limit["speed-probe"],
              result=str(work / "probe.json"), command=f"ebmlib.recipes.gpu_check.speed_probe({probe})"),
        _cli("train", [*train, "--steps", size["train_steps"]], limit["train"],
             expect=f"trained to step {size['train_steps']}"),
        _cli("resume", [*train, "--steps", size["resume_steps"]], limit["resume"], needs=("train",),
             expect=f"trained to step {size['resume_steps']}"),
        _cli("calibrate", ["calibrate", "--run", run, "--steps", size["calibration_steps"], "--device", device,
                           "--quiet"], limit["calibrate"], needs=("train",)),
    ]
    for name in SAMPLERS:
        ddls = ["--steps", size["ddls_steps"]] if name == "ddls" else []
        stages.append(_cli(f"sample-{name}", ["sample", "--run", run, "--sampler", name, "--n", size["n_samples"],
                                              "--device", device, *ddls], limit["sample"], needs=("calibrate",)))
    scoring = [str(a) for a in ("--features", "classifier", "--classifier-steps", size["classifier_steps"], "--json",
                                work / "scores.json", "--device", device)]
    stages.append(Stage("evaluate", f"{STAGES}:evaluate_samples", (str(run), scoring), limit["evaluate"],
                        needs=("calibrate",), result=str(work / "scores.json"),
                        command=f"python -m ebmlib evaluate {run}/samples_*.pt {' '.join(scoring)}"))
    if not dry_run:  # last, so that a slow compilation spends only what the budget has left
        stages.append(Stage("speed-probe-compiled", f"{STAGES}:speed_probe",
                            (device, str(work / "probe_compiled.json"), *probe.values(), True),
                            limit["speed-probe-compiled"], result=str(work / "probe_compiled.json"),
                            command=f"ebmlib.recipes.gpu_check.speed_probe({probe}, compile=True)"))
    return stages


# --- running the stages --------------------------------------------------------------------------------


def _child(target, args, log_path, env):
    """The body of a stage's process: output appended to the log, ``target(*args)`` called, exit status
    0 when it returns None or 0, its value when an int, 1 on an exception (traceback in the log)."""
    os.setsid()  # its own process group: a timeout ends the stage and whatever it started
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1), os.dup2(fd, 2)
    sys.stdout.reconfigure(line_buffering=True), sys.stderr.reconfigure(line_buffering=True)
    try:
        module, name = target.split(":")
        value = getattr(importlib.import_module(module), name)(*args)
        status = value if isinstance(value, int) else 0
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # the stage's failure is its result: into the log, and a non-zero status
        traceback.print_exc()
        status = 1
    sys.stdout.flush(), sys.stderr.flush()
    sys.exit(status)


def _error_line(output, status):
    """The line that says why a stage failed: ``ebmlib: error: ...``, an exception's last line, else the
    last line printed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("ebmlib: error:") or re.match(r"^[\w.]+(Error|Exception|Unavailable)\b", line):
            return line[:500]
    return (lines[-1][:500] if lines else "") + f" (exit status {status})"


def _run_stage(ctx, stage, log_path, seconds_left):
    """Run one stage in a child process; returns its record."""
    timeout = min(stage.timeout, seconds_left)
    with open(log_path, "a") as log:
        log.write(f"\n=== {stage.name}: {stage.command} (at most {timeout:.0f} s) ===\n")
        start_offset = log.tell()
    if stage.result:
        Path(stage.result).unlink(missing_ok=True)
    start = time.perf_counter()
    child = ctx.Process(target=_child, args=(stage.target, stage.args, str(log_path), stage.env))
    child.start()
    child.join(timeout)
    timed_out = child.is_alive()
    if timed_out:
        _kill(child)
    seconds = time.perf_counter() - start
    with open(log_path) as log:
        log.seek(start_offset)
        output = log.read()
    record = {"status": "passed", "seconds": round(seconds, 2), "exit_status": child.exitcode,
              "output": output[-OUTPUT_TAIL:], "error": None}
    if timed_out:
        record.update(status="timeout", error=f"stopped after {timeout:.0f} s (its limit, or the check's budget)")
    elif child.exitcode != 0:
        signal_name = f"killed by {signal.Signals(-child.exitcode).name}" if child.exitcode < 0 else None
        record.update(status="failed", error=signal_name or _error_line(output, child.exitcode))
    elif stage.expect and stage.expect not in output:
        record.update(status="failed", error=f"its output lacks {stage.expect!r}")
    if stage.result and Path(stage.result).is_file():
        try:
            record["result"] = json.loads(Path(stage.result).read_text())
        except ValueError as e:
            record["result"] = {"unreadable": str(e)}
    return record


def _kill(child):
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the stage's whole group (pytest's or torch.compile's workers too)
    except (ProcessLookupError, PermissionError):
        child.kill()
    child.join(10)


def _summary(records):
    counts = {s: sum(r["status"] == s for r in records) for s in ("passed", "failed", "timeout", "skipped", "pending")}
    return {**counts, "all_passed": counts["passed"] == len(records)}


def run_stages(stages, out, tag, budget=BUDGET_SECONDS, meta=None):
    """Run ``stages`` one after another within ``budget`` seconds in all; writes ``out/gpu_check_<tag>.json``
    after every stage (atomically) and appends every stage's output to ``out/gpu_check_<tag>.log``.

    No stage stops the check: a failed, crashed or timed-out stage is recorded, a stage whose ``needs``
    did not pass is skipped, and so is any stage once the budget is spent. Returns the JSON's dict:
    {"meta", "environment", "stages": [{"name", "command", "status" (passed | failed | timeout | skipped),
    "seconds", "exit_status", "output" (its last characters), "error", "result" (its JSON, if any)}],
    "summary"}.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, log_path = out / f"gpu_check_{tag}.json", out / f"gpu_check_{tag}.log"
    log_path.write_text(f"gpu-check {tag}, started {_now()}\n")
    report = {"meta": {**(meta or {}), "tag": tag, "budget_seconds": budget, "started": _now(), "finished": None,
                       "seconds": None, "log": log_path.name},
              "environment": None,
              "stages": [{"name": s.name, "command": s.command, "status": "pending"} for s in stages]}
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "ebmlib.__main__"])  # imported once; children fork from it
    start, status = time.perf_counter(), {}
    try:
        for i, stage in enumerate(stages):
            left = budget - (time.perf_counter() - start)
            missing = [n for n in stage.needs if status.get(n) != "passed"]
            if missing:
                record = {"status": "skipped", "seconds": 0, "error": f"needs {', '.join(missing)}, which did not pass"}
            elif left < 1:
                record = {"status": "skipped", "seconds": 0, "error": f"the check's budget of {budget} s is spent"}
            else:
                record = _run_stage(ctx, stage, log_path, left)
            status[stage.name] = record["status"]
            report["stages"][i].update(record)
            if stage.name == "environment" and "result" in record:
                report["environment"] = record["result"]
            print(f"[{i + 1}/{len(stages)}] {stage.name:18s} {record['status']:8s} {record['seconds']:7.1f} s"
                  + (f"  {record['error']}" if record["error"] else ""), flush=True)
            _write(json_path, report, start, stages)
    finally:  # Ctrl-C or a crash of the runner itself: what was measured is still written
        report["meta"]["finished"] = _now()
        _write(json_path, report, start, stages)
    return report


def _write(json_path, report, start, stages):
    report["meta"]["seconds"] = round(time.perf_counter() - start, 1)
    report["summary"] = _summary(report["stages"])
    write_text(json_path, json.dumps(report, indent=2))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def default_tag(device):
    """A file name for the device: the GPU's name as nvidia-smi gives it (``nvidia-h200``), else its type."""
    name = nvidia_smi("name") if str(device).startswith("cuda") else None
    return re.sub(r"[^a-z0-9]+", "-", (name or str(device).split(":")[0]).lower()).strip("-")


def select(stages, names):
    """The stages named in ``names`` (names or prefixes: 'sample' means every sample-NAME), in plan order."""
    chosen = [s for s in stages if any(s.name == n or s.name.startswith(n + "-") for n in names)]
    unknown = [n for n in names if not any(s.name == n or s.name.startswith(n + "-") for s in stages)]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose among {[s.name for s in stages]}")
    return chosen


def main(args):
    """``python -m ebmlib gpu-check``: plan, run and report; returns 0 when every stage passed, else 1."""
    device = args.device or ("cpu" if args.dry_run else "cuda")
    dry_run = args.dry_run or device == "cpu"
    tag = args.tag or default_tag(device)
    budget = args.budget or (BUDGET_SECONDS if not dry_run else 1200)
    work = Path(tempfile.mkdtemp(prefix="ebmlib-gpu-check-"))
    try:
        stages = plan(device, work, dry_run)
        if args.stages:
            stages = select(stages, [n.strip() for n in args.stages.split(",") if n.strip()])
        meta = {"device": device, "dry_run": dry_run, "work": str(work),
                "stages_asked": args.stages or "all", "python_executable": sys.executable}
        report = run_stages(stages, args.out, tag, budget, meta)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = report["summary"]
    print(f"{summary['passed']} of {len(report['stages'])} stages passed in {report['meta']['seconds']:.0f} s; "
          f"wrote {Path(args.out) / f'gpu_check_{tag}.json'} and its .log" + (f" (work folder {work})" if args.keep else ""))
    return 0 if summary["all_passed"] else 1
