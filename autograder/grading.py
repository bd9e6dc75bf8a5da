"""Grading submissions: prepare each one, run the grading tests on it, write its results.

Each submission is graded by a separate *trusted* pytest process (``python -m pytest`` with the
plugin), which itself starts the *untrusted* worker for the student's code. The batch process
only prepares directories and reads results, so a submission that crashes anything, even the
trusted test process, costs that submission a clear zero and never the batch. Whatever the
outcome, a ``results.json`` is written for every submission.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.config import AssignmentConfig, find_tests_dir
from autograder.results import (SubmissionResult, TestResult, gradebook_csv, read_results_json,
                                write_atomic, write_results_json)
from autograder.submission import prepare_submission

MARGIN_SECONDS = 120  # beyond the submission budget: worker starts, imports, trusted overhead


def submission_name(source: Path) -> str:
    source = Path(source)
    return source.name if source.is_dir() else source.stem


def grade_submission(config: AssignmentConfig, source: Path, out_dir: Path, *, device: str = "auto",
                     seed: int | None = None, tests_dir: Path | None = None, quiet: bool = True) -> SubmissionResult:
    """Grade one submission and write ``out_dir/<name>/results.json``. Never raises for bad input."""
    name = submission_name(source)
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
        cmd = [
            sys.executable, "-m", "pytest", str(tests), "-p", "no:cacheprovider", "--confcutdir", str(tests),
            "--rootdir", str(tests), "-q" if quiet else "-v", "--tb=no", "-o", "addopts=",
            "--assignment", config.name, "--grading-device", device, "--results-json", str(raw),
            "--prepared-workdir", str(workdir),
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
        env = {**os.environ, "AUTOGRADER_HIDDEN_PATHS": os.pathsep.join(hidden)}
        try:
            proc = subprocess.run(cmd, cwd=private, capture_output=True, text=True, env=env,
                                  timeout=config.submission_seconds + MARGIN_SECONDS)
            log = proc.stdout + proc.stderr
            if proc.returncode not in (0, 1):
                error = f"the grader's test process ended with code {proc.returncode}"
        except subprocess.TimeoutExpired as exc:
            log = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            error = "grading took longer than the submission's time budget and was stopped"
        (target / "grader.log").write_text(log[-200_000:], encoding="utf-8")
        result = _collect(raw, name, config, prepared.notes, error or prepared.error)
    result.execution_time = time.monotonic() - started
    write_results_json(result, target / "results.json")
    return result


def _collect(raw: Path, name: str, config: AssignmentConfig, notes: list[str], error: str | None) -> SubmissionResult:
    """Build the result from the plugin's output; fall back to its per-test journal."""
    result = SubmissionResult(submission=name, assignment=config.name, notes=list(notes), error=error)
    if raw.is_file():
        data = json.loads(raw.read_text(encoding="utf-8"))
        result.tests = [TestResult(**t) for t in data["tests"]]
        result.seed, result.device, result.versions = data["seed"], data["device"], data["versions"]
        result.leaderboard = data.get("leaderboard", [])
        result.notes = list(dict.fromkeys(result.notes + data.get("notes", [])))
        return result
    journal = raw.with_suffix(".partial.jsonl")
    collected: list[str] = []
    done: dict[str, TestResult] = {}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if "collected" in record:
                collected = record["collected"]
            elif "result" in record:
                test = TestResult(**record["result"])
                done[test.nodeid] = test
    result.error = result.error or "the grader stopped before finishing"
    for nodeid in collected or list(done):
        if nodeid in done:
            result.tests.append(done[nodeid])
        else:
            result.tests.append(TestResult(
                name=nodeid.split("::")[-1], nodeid=nodeid, number="", max_score=0.0, status="failed",
                output=f"This test did not run: {result.error}.",
            ))
    return result


def write_gradebook(out_dir: Path) -> Path:
    """Rebuild ``gradebook.csv`` from every ``results.json`` under ``out_dir``."""
    results = [read_results_json(p) for p in sorted(Path(out_dir).glob("*/results.json"))]
    path = Path(out_dir) / "gradebook.csv"
    write_atomic(path, gradebook_csv(results))
    return path


def grade_batch(config: AssignmentConfig, sources: list[Path], out_dir: Path, *, device: str = "auto",
                seed: int | None = None, tests_dir: Path | None = None, progress=None) -> list[SubmissionResult]:
    results = []
    names = [submission_name(s) for s in sources]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"Two submissions would share an output folder: {', '.join(sorted(duplicates))}")
    for source in sources:
        try:
            result = grade_submission(config, source, out_dir, device=device, seed=seed, tests_dir=tests_dir)
        except Exception as exc:  # noqa: BLE001 - one submission must never end the batch
            result = SubmissionResult(submission=submission_name(source), assignment=config.name,
                                      error=f"internal grader error: {type(exc).__name__}: {exc}")
            write_results_json(result, Path(out_dir) / result.submission / "results.json")
        results.append(result)
        if progress:
            progress(result)
    write_gradebook(out_dir)
    return results
