"""Grading submissions: prepare each one, run the grading tests on it, write its results.

Each submission is graded by a separate *trusted* pytest process (``python -m pytest`` with the
plugin), which itself starts the *untrusted* worker for the student's code. The batch process
only prepares directories and reads results, so a submission that crashes anything, even the
trusted test process, costs that submission a clear zero and never the batch. Whatever the
outcome, a ``results.json`` is written for every submission.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from autograder.config import AssignmentConfig, find_tests_dir
from autograder.results import (SubmissionResult, TestResult, gradebook_csv, read_results_json,
                                write_atomic, write_results_json)
from autograder.inputs import SubmissionInput, safe_name, unique_names
from autograder.sandbox import WALL_FACTOR
from autograder.submission import prepare_submission

MARGIN_SECONDS = 120  # beyond the submission budget: worker starts, imports, trusted overhead
MAX_ATTEMPTS = 3  # interrupted starts before a submission is recorded as stopping the grader
DEFAULT_PER_GPU = 2  # submissions sharing one GPU


def submission_name(source: Path) -> str:
    source = Path(source)
    return safe_name(source.name if source.is_dir() else source.stem)


def grade_submission(config: AssignmentConfig, source: Path, out_dir: Path, *, device: str = "auto",
                     seed: int | None = None, tests_dir: Path | None = None, quiet: bool = True,
                     name: str | None = None, env: dict[str, str] | None = None) -> SubmissionResult:
    """Grade one submission and write ``out_dir/<name>/results.json`` (and the images its tests
    attached, under ``out_dir/<name>/images/``). Never raises for bad input. ``env`` adds
    variables for the test process (a slot's ``CUDA_VISIBLE_DEVICES``)."""
    name = name or submission_name(source)
    tests = find_tests_dir(config, tests_dir)
    target = Path(out_dir) / name
    target.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Two unrelated temporary folders: the student's working directory, and a private one for the
    # trusted test process's results, so the worker finds nothing of the grader's next to it.
    with tempfile.TemporaryDirectory(prefix="submission-") as tmp, \
            tempfile.TemporaryDirectory(prefix="grader-") as private:
        workdir = Path(tmp) / "submission"
        prepared = prepare_submission(Path(source), workdir, config.files, config.module)
        raw = Path(private) / "raw-results.json"
        artifacts = Path(private) / "artifacts"
        cmd = [
            sys.executable, "-m", "pytest", str(tests), "-p", "no:cacheprovider", "--confcutdir", str(tests),
            "--rootdir", str(tests), "-q" if quiet else "-v", "--tb=no", "-o", "addopts=",
            "--assignment", config.name, "--grading-device", device, "--results-json", str(raw),
            "--prepared-workdir", str(workdir), "--artifacts-dir", str(artifacts),
            "--import-seconds", str(config.import_seconds),
        ]
        if prepared.entry:
            cmd += ["--entry", prepared.entry]
        if prepared.error:
            cmd += ["--submission-error", prepared.error]
        if seed is not None:
            cmd += ["--grading-seed", str(seed)]
        error = None
        # The worker must not see the other students' submissions nor the results folder.
        hidden = [str(Path(out_dir).resolve()), str(Path(source).resolve().parent), private]
        env = {**os.environ, **(env or {}), "AUTOGRADER_HIDDEN_PATHS": os.pathsep.join(hidden)}
        # Budgets are CPU seconds of the worker; on a loaded machine they take longer in wall time.
        wall_limit = WALL_FACTOR * (config.submission_seconds + config.import_seconds) + MARGIN_SECONDS
        returncode, log = run_test_process(cmd[3:], Path(private), env, wall_limit)
        if returncode is None:
            error = "grading took longer than the submission's time budget and was stopped"
        elif returncode not in (0, 1):
            error = f"the grader's test process ended with code {returncode}"
        (target / "grader.log").write_text(log[-200_000:], encoding="utf-8")
        result = _collect(raw, name, config, prepared.notes, error or prepared.error)
        images = target / "images"
        shutil.rmtree(images, ignore_errors=True)
        if artifacts.is_dir() and any(artifacts.iterdir()):
            shutil.copytree(artifacts, images)
    result.execution_time = time.monotonic() - started
    write_results_json(result, target / "results.json")
    return result


# --- the trusted test process --------------------------------------------------------------
# Starting Python and importing torch, pytest and the engine costs seconds; a batch pays it once.
# With prewarming, each submission's test process is forked from a multiprocessing *forkserver*
# that imported them at start (and never touched CUDA, so a fork can still choose its GPU).
# The forked process is as separate from the others as a fresh one: its own memory, its own
# pytest session; the student's worker is still a fresh interpreter in its own sandbox.
ENGINE_PRELOAD = ["torch", "numpy", "pytest", "autograder.plugin", "autograder.remote", "autograder.checks"]
# What the grading tests and the course packages import besides: imported in each test process,
# they cost about 1.3 s a submission more on the 2-core CI machine (README, "Prewarmed"). None of
# them asks CUDA anything at import, so a fork can still pick its GPU, and the list covers every
# third-party package the grading tests and the course modules they use import directly
# (tests/test_batch.py checks both). A module that is not installed is skipped by the forkserver.
LIBRARY_PRELOAD = ["scipy.ndimage", "scipy.stats", "sklearn.metrics", "sklearn.datasets", "pandas", "PIL.Image",
                   "rich.console", "gymnasium", "torchvision", "torchmetrics.functional.segmentation",
                   "torchattacks"]
_forkserver = None
# The test processes running now, so that an interrupted batch (Ctrl-C) stops them at once instead
# of waiting for every queued submission; and the flag that says the batch was interrupted.
_RUNNING: set = set()
_RUNNING_LOCK = threading.Lock()
INTERRUPTED = threading.Event()


def _track(process, running: bool) -> None:
    with _RUNNING_LOCK:
        (_RUNNING.add if running else _RUNNING.discard)(process)
    if running and INTERRUPTED.is_set():  # started just after the interrupt's sweep: stop it too
        with contextlib.suppress(Exception):
            process.kill()


def stop_running_test_processes() -> None:
    """Kill every test process this grader started (their workers see their pipes close and exit)."""
    with _RUNNING_LOCK:
        processes = list(_RUNNING)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()


def _prewarmed_context():
    global _forkserver
    if _forkserver is None:
        import multiprocessing

        _forkserver = multiprocessing.get_context("forkserver")
        engine_only = os.environ.get("AUTOGRADER_PREWARM") == "engine"  # for autograder.benchmark
        _forkserver.set_forkserver_preload(ENGINE_PRELOAD + ([] if engine_only else LIBRARY_PRELOAD))
    return _forkserver


def prewarm_enabled() -> bool:
    """On unless AUTOGRADER_PREWARM=0, and where multiprocessing may start children (not in a
    daemonic process such as a Dask worker's)."""
    import multiprocessing

    return os.environ.get("AUTOGRADER_PREWARM", "1") != "0" and not multiprocessing.current_process().daemon


def _pytest_in_fork(args: list[str], cwd: str, env: dict[str, str], log_path: str) -> None:
    """Body of a prewarmed test process: become what ``python -m pytest ARGS`` in ``cwd`` with
    ``env`` would be, output to ``log_path``."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdin = open(os.devnull)
    import pytest

    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


# multiprocessing reports exit code 255 when the forkserver cannot tell how a child ended: the
# forkserver itself was killed (OOM killer, a stray `pkill`). That says nothing of the submission.
LOST_FORKSERVER = 255


def run_test_process(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Run ``pytest ARGS`` as a separate process; returns (exit code, or None on timeout; output).
    A prewarmed process whose forkserver died is killed and run again as a fresh interpreter."""
    if prewarm_enabled():
        log_path = cwd / "pytest-output.log"
        process = _prewarmed_context().Process(target=_pytest_in_fork, args=(args, str(cwd), env, str(log_path)))
        process.start()
        _track(process, True)
        try:
            process.join(timeout)
        finally:
            _track(process, False)
        if process.is_alive():
            process.kill()
            process.join()
            code = None
        else:
            code = process.exitcode if process.exitcode is not None and process.exitcode >= 0 else 128 - process.exitcode
        if code != LOST_FORKSERVER:
            return code, log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)  # the orphan, if it still runs
    return _run_fresh(args, cwd, env, timeout)


def _run_fresh(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", env=env)
    _track(proc, True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out or ""
    finally:
        _track(proc, False)


def _collect(raw: Path, name: str, config: AssignmentConfig, notes: list[str], error: str | None) -> SubmissionResult:
    """Build the result from the plugin's output, falling back to its per-test journal. Every test
    the journal says was collected is in the result, whatever happened to the test process: one
    that never reported is a failure worth its points, never a test that disappears."""
    result = SubmissionResult(submission=name, assignment=config.name, notes=list(notes), error=error)
    collected, points, done = _read_journal(raw.with_suffix(".partial.jsonl"))
    if raw.is_file():
        try:
            data = json.loads(raw.read_text(encoding="utf-8", errors="replace"))
            done.update({t["nodeid"]: TestResult(**t) for t in data["tests"]})
            result.seed, result.device, result.versions = data["seed"], data["device"], data["versions"]
            result.leaderboard = data.get("leaderboard", [])
            result.notes = list(dict.fromkeys(result.notes + data.get("notes", [])))
            result.error = result.error or data.get("error")  # e.g. the file could not be imported
        except (ValueError, KeyError, TypeError) as exc:
            result.error = result.error or f"the grader's results could not be read ({type(exc).__name__})"
    order = collected or list(done)
    missing = [nodeid for nodeid in order if nodeid not in done]
    if missing or not raw.is_file():
        result.error = result.error or "the grader stopped before finishing"
    for nodeid in order:
        result.tests.append(done.get(nodeid) or TestResult(
            name=nodeid.split("::")[-1], nodeid=nodeid, number="", max_score=points.get(nodeid, 0.0),
            status="failed", output=f"This test did not run: {result.error}.",
        ))
    listed = set(order)
    result.tests += [t for nodeid, t in done.items() if nodeid not in listed]
    return result


def _read_journal(journal: Path) -> tuple[list[str], dict[str, float], dict[str, TestResult]]:
    """(collected node ids, their points, results reported so far) from the plugin's journal."""
    collected: list[str] = []
    points: dict[str, float] = {}
    done: dict[str, TestResult] = {}
    if not journal.is_file():
        return collected, points, done
    for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if "collected" in record:
            collected = record["collected"]
            points = record.get("points", {})
        elif "result" in record:
            test = TestResult(**record["result"])
            done[test.nodeid] = test
    return collected, points, done


def write_gradebook(out_dir: Path) -> Path:
    """Rebuild ``gradebook.csv`` from every ``results.json`` under ``out_dir``."""
    results = [read_results_json(p) for p in sorted(Path(out_dir).glob("*/results.json"))]
    path = Path(out_dir) / "gradebook.csv"
    write_atomic(path, gradebook_csv(results))
    return path


@dataclass
class BatchPlan:
    """What a (re)run of a batch has to do: ``todo`` is graded, ``done`` is kept from disk."""
    todo: list[SubmissionInput]
    done: list[SubmissionInput]


def fingerprint(source: Path, salt: str = "") -> str:
    """SHA-256 of a submission's content (a file, or every file of a folder but .git), salted
    with what grades it (``grading_fingerprint``): a rerun regrades a submission whose content or
    grading changed and keeps one that did not."""
    digest = hashlib.sha256(salt.encode())
    source = Path(source)
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and ".git" not in p.relative_to(source).parts)
    for path in files:
        digest.update(str(path.relative_to(source) if source.is_dir() else path.name).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def grading_fingerprint(config: AssignmentConfig, tests_dir: Path | None = None) -> str:
    """What grading depends on besides the submission: the grading tests and the course folder."""
    tests = find_tests_dir(config, tests_dir)
    return fingerprint(tests) + fingerprint(config.course_dir)


def _fingerprint_file(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / name / ".source-sha256"


def _attempts_file(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / name / ".attempts"


def plan_batch(submissions: list[SubmissionInput], out_dir: Path, regrade: bool = False, salt: str = "") -> BatchPlan:
    """A submission is done when its results.json exists and was graded from the same content."""
    todo, done = [], []
    for sub in submissions:
        results = Path(out_dir) / sub.name / "results.json"
        marker = _fingerprint_file(out_dir, sub.name)
        finished = (not regrade and results.is_file() and marker.is_file()
                    and marker.read_text().strip() == fingerprint(sub.source, salt))
        (done if finished else todo).append(sub)
    return BatchPlan(todo, done)


def record_result(result: SubmissionResult, sub: SubmissionInput, out_dir: Path, salt: str = "") -> None:
    """Commit one graded submission: results.json (atomically), then its content fingerprint.
    A kill between the two only means this submission is graded again on the next run."""
    write_results_json(result, Path(out_dir) / sub.name / "results.json")
    write_atomic(_fingerprint_file(out_dir, sub.name), fingerprint(sub.source, salt))
    _attempts_file(out_dir, sub.name).unlink(missing_ok=True)


def _start_attempt(sub: SubmissionInput, config: AssignmentConfig, out_dir: Path) -> SubmissionResult | None:
    """Count attempts on disk. A submission that already stopped the grader (no result after
    MAX_ATTEMPTS starts: it took the whole machine down) gets a recorded zero, not a new try."""
    path = _attempts_file(out_dir, sub.name)
    attempts = int(path.read_text() or 0) if path.is_file() else 0
    if attempts >= MAX_ATTEMPTS:
        return SubmissionResult(submission=sub.name, assignment=config.name, error=(
            f"grading this submission stopped the grader {attempts} times; it was not retried "
            "(regrade it alone with --regrade to try again)"))
    write_atomic(path, str(attempts + 1))
    return None


def _undo_attempt(sub: SubmissionInput, out_dir: Path) -> None:
    """An interrupted grading (Ctrl-C) is the instructor's doing, not the submission's: it does not
    count as one of its MAX_ATTEMPTS."""
    path = _attempts_file(out_dir, sub.name)
    with contextlib.suppress(OSError, ValueError):
        attempts = int(path.read_text() or 0) - 1
        if attempts > 0:
            write_atomic(path, str(attempts))
        else:
            path.unlink()


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch: what was graded is kept; the rest is graded by the next run."""

    def __init__(self, graded: int, remaining: int):
        super().__init__(f"{graded} graded and kept, {remaining} left for the next run")
        self.graded, self.remaining = graded, remaining


def _internal_error(config: AssignmentConfig, sub: SubmissionInput, exc: BaseException) -> SubmissionResult:
    return SubmissionResult(submission=sub.name, assignment=config.name,
                            error=f"internal grader error: {type(exc).__name__}: {exc}")


def grade_batch(config: AssignmentConfig, sources: list, out_dir: Path, *, device: str = "auto",
                seed: int | None = None, tests_dir: Path | None = None, progress=None, jobs: int | None = None,
                regrade: bool = False, scheduler: str | None = None, per_gpu: int = DEFAULT_PER_GPU,
                ) -> list[SubmissionResult]:
    """Grade many submissions; returns every submission's result, graded now or kept from disk.

    ``sources`` are paths or SubmissionInput. Each result is committed as soon as it is known, so
    an interrupted batch resumes where it stopped (``regrade=True`` grades everything again).
    Locally, ``jobs`` submissions run at once (default: see ``default_slots``); with
    ``scheduler`` (a Dask address, "local" or "slurm") each submission is a Dask task.
    ``progress`` gets ``start(total, already_done)`` and ``advance(result)`` calls.
    """
    submissions = [s if isinstance(s, SubmissionInput) else SubmissionInput(submission_name(s), Path(s))
                   for s in sources]
    names = unique_names([s.name for s in submissions])
    submissions = [SubmissionInput(name, s.source) for name, s in zip(names, submissions)]
    out_dir = Path(out_dir)
    salt = grading_fingerprint(config, tests_dir)
    plan = plan_batch(submissions, out_dir, regrade, salt)
    if progress:
        progress.start(len(submissions), len(plan.done))
    options = dict(device=device, seed=seed, tests_dir=tests_dir)
    if scheduler:
        from autograder.cluster import grade_on_dask

        completed = grade_on_dask(config, plan.todo, out_dir, scheduler, salt=salt, **options)
    else:
        completed = _grade_locally(config, plan.todo, out_dir, default_slots(config, device, jobs, per_gpu), salt,
                                   **options)
    for sub, result in completed:
        if progress:
            progress.advance(result)
    write_gradebook(out_dir)
    return [read_results_json(out_dir / s.name / "results.json") for s in submissions]


def default_slots(config: AssignmentConfig, device: str = "auto", jobs: int | None = None,
                  per_gpu: int = DEFAULT_PER_GPU) -> list[dict[str, str]]:
    """One environment per submission that may run at once.

    Policy: on CPU, one submission per ``threads`` cores (the worker's torch threads; the trusted
    process mostly waits). With GPUs (device auto or cuda), ``per_gpu`` submissions share each
    GPU (a small model leaves most of a GPU idle), pinned with CUDA_VISIBLE_DEVICES, and no more
    slots than cores. ``jobs`` overrides the count.
    """
    cores = os.cpu_count() or 1
    cpu_slots = max(1, cores // max(1, int(config.threads or 1)))
    gpus = _gpu_count() if device != "cpu" else 0
    if gpus:
        count = jobs or min(cores, gpus * per_gpu)
        return [{"CUDA_VISIBLE_DEVICES": str(i % gpus)} for i in range(count)]
    return [{} for _ in range(jobs or cpu_slots)]


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA means no GPU slots
        return 0


def _grade_locally(config: AssignmentConfig, todo: list[SubmissionInput], out_dir: Path, slots: list[dict],
                   salt: str, **options) -> Iterator[tuple[SubmissionInput, SubmissionResult]]:
    """Grade on this machine, ``len(slots)`` at a time. The work happens in subprocesses (the
    trusted pytest process and its worker), so threads are enough to keep them all busy."""
    free: queue.Queue = queue.Queue()
    for slot in slots:
        free.put(slot)

    started: list[SubmissionInput] = []

    def run(sub: SubmissionInput) -> SubmissionResult | None:
        if INTERRUPTED.is_set():
            return None
        stopped = _start_attempt(sub, config, out_dir)
        if stopped:
            return stopped
        started.append(sub)
        slot = free.get()
        try:
            return grade_submission(config, sub.source, out_dir, name=sub.name, env=slot, **options)
        except Exception as exc:  # noqa: BLE001 - one submission must never end the batch
            return _internal_error(config, sub, exc)
        finally:
            free.put(slot)

    INTERRUPTED.clear()
    recorded: set[str] = set()
    pool = ThreadPoolExecutor(max_workers=len(slots))
    finished = False
    try:
        futures = {pool.submit(run, sub): sub for sub in todo}
        for future in as_completed(futures):
            sub, result = futures[future], future.result()
            if INTERRUPTED.is_set() or result is None:
                continue
            record_result(result, sub, out_dir, salt)
            recorded.add(sub.name)
            yield sub, result
        finished = True
    except KeyboardInterrupt:
        INTERRUPTED.set()
        raise BatchInterrupted(len(recorded), len(todo) - len(recorded)) from None
    finally:
        if not finished:  # Ctrl-C (or the caller stopped early): stop now, keep what is recorded
            INTERRUPTED.set()
            pool.shutdown(wait=False, cancel_futures=True)
            stop_running_test_processes()
        pool.shutdown(wait=True)
        for sub in started:
            if sub.name not in recorded and INTERRUPTED.is_set():
                _undo_attempt(sub, out_dir)
