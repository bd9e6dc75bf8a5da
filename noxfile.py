"""Sessions for instructors and for CI.

    nox -s tests                              the project's test suite (what CI runs)
    nox -s demo                               grade the example submissions, print the gradebooks
    nox -s grade -- ASSIGNMENT SUB...|FOLDER [--out DIR] [--jobs N] [--scheduler ADDR] [--regrade]
    nox -s release                            regenerate the student templates from the solutions
    nox -s gradescope -- ASSIGNMENT           build dist/gradescope/ASSIGNMENT.zip for Gradescope
    nox -s benchmark [-- -n 12 --jobs 2]      whole-class grading throughput: slots, prewarming, Dask
    nox -s mutation -- ASSIGNMENT [--jobs N]  mutation testing: which edits of the solution the tests miss
    nox -s lock                               regenerate requirements/*.txt from pyproject.toml (needs the index)

Every session installs the same locked versions (requirements/grader.txt). With uv on the PATH
(`python3 -m pip install uv`; .ci/run does it), nox builds the environments with uv, which links
the packages from one cache: the sessions together cost about one environment on disk, and a
session after the first starts in seconds. Without uv, nox falls back to virtualenv and pip.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"  # torch is large: build each session's environment once
nox.options.default_venv_backend = "uv|virtualenv"

ROOT = Path(__file__).parent
LOCK = "requirements/grader.txt"


def _install(session: nox.Session) -> None:
    """The locked versions, then the project itself without resolving anything again."""
    # uv does not compile .pyc files unless asked (pip does): without them every worker, which
    # runs on a read-only file system, would compile torch's modules again at each start.
    session.env["UV_COMPILE_BYTECODE"] = "1"
    session.install("-r", LOCK)
    session.install("--no-deps", "-e", ".")
    session.env["AUTOGRADER_LOCKED_ENV"] = LOCK  # tests/test_lock.py then checks the installed versions


@nox.session
def tests(session: nox.Session) -> None:
    """The project's test suite: engine, templates, and every assignment's known submissions."""
    _install(session)
    # The 25 slowest tests at the end of the log: where CI time goes, on whatever machine runs it.
    session.run("pytest", "tests", "--durations=25", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Grade every assignment's examples (reference, blank template, known-bad submissions),
    print the gradebooks and fail if any verdict is not the expected one."""
    _install(session)
    session.run("autograder", "demo", "--out", str(ROOT / "grading-output" / "demo"), *session.posargs)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade submissions: nox -s grade -- ASSIGNMENT SUBMISSION... [--out DIR] [--device cuda]."""
    if len(session.posargs) < 2:
        session.error("usage: nox -s grade -- ASSIGNMENT SUBMISSION... [--out DIR]")
    _install(session)
    args = list(session.posargs)
    if "--out" not in args:
        args += ["--out", str(ROOT / "grading-output" / args[0])]
    session.run("autograder", "grade", *args)


@nox.session
def release(session: nox.Session) -> None:
    """Regenerate student_template/ from solutions/ (script, notebook, public tests, handout)."""
    _install(session)
    session.run("autograder", "release", *session.posargs)
    session.run("autograder", "release", "--check")


@nox.session
def gradescope(session: nox.Session) -> None:
    """Build the Gradescope autograder zip: nox -s gradescope -- ASSIGNMENT [--out ZIP]."""
    if not session.posargs:
        session.error("usage: nox -s gradescope -- ASSIGNMENT [--out ZIP]")
    _install(session)
    session.run("autograder", "gradescope", "build", *session.posargs)


@nox.session
def benchmark(session: nox.Session) -> None:
    """Grade N copies of the sample submissions one slot vs prewarmed vs N slots vs local Dask,
    and print submissions per minute and per-submission overhead as ratios from the same run."""
    _install(session)
    session.run("python", "-m", "autograder.benchmark", *session.posargs)


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing of one assignment's grading tests (Cosmic Ray on the reference solution's
    solution regions): nox -s mutation -- ASSIGNMENT [--jobs N] [--timeout S]. Writes
    build/mutation/ASSIGNMENT/report.md (survivors listed) and report.json."""
    if not session.posargs:
        session.error("usage: nox -s mutation -- ASSIGNMENT [--jobs N]")
    _install(session)
    session.run("python", "-m", "autograder.mutation", *session.posargs)


@nox.session
def lock(session: nox.Session) -> None:
    """Regenerate requirements/grader.txt, runtime.txt and runtime-cpu.txt from pyproject.toml
    (uv pip compile; see autograder/lock.py), then check that they agree with it."""
    session.install("packaging>=24", "uv==0.13.9")
    session.run("python", "-m", "autograder.lock", *session.posargs)


@nox.session(name="benchmark-metric")
def benchmark_metric(session: nox.Session) -> None:
    """The GAN practical's precision/recall: the reference in torch (CPU, and CUDA when present)
    against prdc on the same features, in the same run."""
    _install(session)
    session.run("python", "-m", "assignments.gan.benchmark_metric", *session.posargs)
