"""The pytest plugin that turns plain pytest files into graded tests.

A grading test declares its points, its visibility and (optionally) its time budget::

    @pytest.mark.points(2)
    @pytest.mark.public            # students get this test; @pytest.mark.hidden otherwise
    @pytest.mark.budget(20)        # seconds; default from assignment.toml
    def test_latent_shape(sub, device):
        \"\"\"The encoder maps (B, 64) inputs to (B, m) codes with m < 64.\"\"\"
        model = sub.Autoencoder(64, 8)
        ...

Fixtures: ``sub`` (the student's module, through the proxy), ``worker`` (the session: ``vjp``,
``parameter_grads``, ``import_course``), ``device`` (``torch.device`` chosen by the grader),
``grading_seed`` and ``partial_credit``. Before every test the plugin seeds ``random``, numpy and
torch in both processes with the run's seed, and sets the CPU-time budget for the student's code.

The plugin is inert unless a submission is given (``--submission``, or ``--prepared-workdir`` when
the grading driver runs it) or the ini file names an assignment (``autograder_assignment``, as in
the student template, where the submission is found next to the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from autograder import __version__
from autograder.errors import StudentCodeError, SubmissionError
from autograder.results import TestResult, strict_json
from autograder.worker import seed_everything

STATE_KEY = pytest.StashKey["GradingState"]()
FAILURE_KEY = pytest.StashKey[dict]()
PARTIAL_KEY = pytest.StashKey[list]()
OUTPUT_KEY = pytest.StashKey[str]()

MARKERS = [
    "points(n): how many points the test is worth",
    "public: the test is given to students and its feedback shows in full",
    "hidden: the test is kept from students; its feedback never shows its code",
    "budget(seconds): CPU-time budget for the student's code in this test",
    "cuda: the test needs a CUDA device; skipped (worth 0) elsewhere",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading a student submission")
    group.addoption("--submission", help="student script, notebook, folder or zip to test")
    group.addoption("--assignment", help="assignment name (default: the ini option autograder_assignment)")
    group.addoption("--isolated", action="store_true",
                    help="run the student's code in a separate worker process, as the grader does")
    group.addoption("--grading-device", default="auto", choices=["auto", "cpu", "cuda"], help="device for the tests")
    group.addoption("--grading-seed", type=int, default=None, help="seed (default: the assignment's)")
    group.addoption("--import-seconds", type=float, default=None,
                    help="CPU-time budget for importing the submission (default: the assignment's)")
    group.addoption("--results-json", help="write the per-test results to this JSON file")
    group.addoption("--artifacts-dir", help="where tests save images for the feedback page (default: none saved)")
    # Used by the grading driver, which has already prepared a clean working directory.
    group.addoption("--prepared-workdir", help=argparse.SUPPRESS)
    group.addoption("--entry", help=argparse.SUPPRESS)
    group.addoption("--submission-error", help=argparse.SUPPRESS)
    parser.addini("autograder_assignment", "assignment these tests belong to (student template)")



def _runtime_paths() -> list[Path]:
    """Folders the worker reads to run at all: the interpreter and its packages, the engine, the
    course code."""
    import sysconfig

    import assignments
    import autograder

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent,
             Path(autograder.__file__).parent, Path(assignments.__file__).parent}
    paths |= {Path(p) for key in ("purelib", "platlib", "stdlib") if (p := sysconfig.get_paths().get(key))}
    return [p.resolve() for p in paths]


def checkout_hidden_paths(root: Path) -> list[Path]:
    """Everything in a checkout ``root`` (a folder with pyproject.toml) except the packages the
    worker imports: the engine and the course code are all it needs of the repository."""
    if not (root / "pyproject.toml").is_file():
        return [root / "solutions", root / "grading_tests", root / "examples"]
    return [child for child in root.iterdir() if child.name not in ("autograder", "assignments")]


def _around(path: Path, needed: list[Path]) -> list[Path]:
    """``path`` if it holds nothing in ``needed``; else its children that hold nothing needed
    (recursively), so hiding a folder never hides what the worker runs from."""
    inside = [n for n in needed if n == path or n.is_relative_to(path)]
    if not inside:
        return [path]
    if any(n == path for n in inside) or not path.is_dir():
        return []
    try:
        children = list(path.iterdir())
    except OSError:
        return []
    return [hidden for child in children for hidden in _around(child, inside)]


class GradingState:
    """Everything the plugin knows about the current grading run."""

    def __init__(self, config: pytest.Config):
        from autograder.config import load_config

        opt = config.getoption
        self.pytest_config = config
        name = opt("--assignment") or config.getini("autograder_assignment")
        if not name:
            raise pytest.UsageError("autograder: give --assignment (or set autograder_assignment in the ini file)")
        self.assignment = load_config(name)
        self.seed = opt("--grading-seed") if opt("--grading-seed") is not None else self.assignment.seed
        wanted = opt("--grading-device")
        if wanted == "cuda" and not torch.cuda.is_available():
            raise pytest.UsageError("autograder: --grading-device cuda was asked for but CUDA is not available")
        self.device = torch.device("cuda" if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()) else "cpu")
        self.results_path = Path(opt("--results-json")) if opt("--results-json") else None
        self.results: list[TestResult] = []
        self.started = time.monotonic()
        self.submission_error: str | None = opt("--submission-error")
        self.notes: list[str] = []
        self.leaderboard: dict[str, dict] = {}
        self.figures_saved = False
        self.worker_info: dict = {}
        self._session = None
        self.sandbox = "not started"
        self._tmp: tempfile.TemporaryDirectory | None = None

        workdir, entry = opt("--prepared-workdir"), opt("--entry")
        self.isolated = bool(opt("--isolated") or workdir)
        if workdir:
            self.workdir, self.entry = Path(workdir), entry
        else:
            self.workdir, self.entry = self._locate_submission(config)

    def _locate_submission(self, config: pytest.Config) -> tuple[Path | None, str | None]:
        from autograder.submission import prepare_submission

        given = config.getoption("--submission")
        if given:
            source = Path(given).resolve()
        else:  # student template: autoencoder.py or autoencoder.ipynb next to tests/, chosen as the grader does
            from autograder.submission import choose_entry

            candidates = [Path(config.rootpath) / f for f in self.assignment.files]
            existing = [p for p in candidates if p.is_file()]
            if not existing:
                self.submission_error = f"No submission found: expected one of {', '.join(map(str, candidates))}."
                return None, None
            source, note = choose_entry(existing)
            if note:
                self.notes.append(note)
        if not self.isolated and source.suffix == ".py":
            return source.parent, source.name  # import in place: tracebacks point at the student's file
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-")
        prepared = prepare_submission(source, Path(self._tmp.name), self.assignment.files, self.assignment.module)
        self.notes += prepared.notes
        self.submission_error = prepared.error
        return prepared.workdir, prepared.entry

    @property
    def session(self):
        from autograder.remote import InProcessBackend, Session, SubprocessBackend
        from autograder.sandbox import Limits, sandbox_description

        if self._session is None:
            self.sandbox = "in-process (local mode)"
            if self.isolated:
                limits = Limits(memory_mb=self.assignment.memory_mb, threads=self.assignment.threads,
                                user=os.environ.get("AUTOGRADER_WORKER_USER"), hidden_paths=self.hidden_paths())
                backend = SubprocessBackend(self.workdir, limits, device=self.device.type)
                try:
                    self.sandbox = sandbox_description(limits)
                except ValueError as exc:  # a bad AUTOGRADER_SANDBOX: starting the worker will say so
                    self.sandbox = f"unavailable: {exc}"
            else:
                backend = InProcessBackend(self.workdir)
            self._session = Session(backend, entry=self.entry, module_name=self.assignment.module)
        return self._session

    def hidden_paths(self) -> tuple[str, ...]:
        """What the worker must not see: the whole checkout but the packages it imports (the engine
        and the course code; so solutions, grading tests, examples, .git, other graders' output
        folders...), the tests being run, and what the driver adds (other students' submissions
        and results) through AUTOGRADER_HIDDEN_PATHS."""
        root = self.assignment.repo_root
        paths = [Path(self.pytest_config.rootpath), *checkout_hidden_paths(root)]
        paths += [Path(p) for p in os.environ.get("AUTOGRADER_HIDDEN_PATHS", "").split(os.pathsep) if p]
        workdir = Path(self.workdir).resolve() if self.workdir else None
        needed = [p for p in (workdir, *_runtime_paths()) if p is not None]
        # Never hide a folder the worker needs (its working directory, the interpreter, the engine):
        # hide what is around it instead.
        keep: list[Path] = []
        for path in (p.resolve() for p in paths):
            keep += _around(path, needed)
        return tuple(dict.fromkeys(str(p) for p in keep))

    def locate_in_notebook(self, text: str) -> str:
        """Point traceback lines of a converted notebook at the notebook's cells."""
        from autograder.submission import annotate_notebook_traceback

        if not self.entry or self.workdir is None:
            return text
        script_path = Path(self.workdir) / self.entry
        try:
            script = script_path.read_text(encoding="utf-8", errors="replace")  # a cp1252 script must not crash us
        except OSError:
            return text
        if "# %% notebook cell " not in script:
            return text
        return annotate_notebook_traceback(text, script, self.entry)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _state(config: pytest.Config) -> GradingState | None:
    return config.stash.get(STATE_KEY, None)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    active = (config.getoption("--submission") or config.getoption("--prepared-workdir")
              or config.getoption("--submission-error") or config.getini("autograder_assignment"))
    if active:
        config.stash[STATE_KEY] = GradingState(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = _state(config)
    if state is None:
        return []
    mode = "isolated worker process" if state.isolated else "in-process (local mode)"
    where = f"{state.workdir / state.entry}" if state.entry else "no submission"
    return [f"autograder: {state.assignment.name}: {where}; {mode}; device {state.device}; seed {state.seed}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    if state is None:
        return
    problems = []
    for item in items:
        points = item.get_closest_marker("points")
        public, hidden = item.get_closest_marker("public"), item.get_closest_marker("hidden")
        if points is None or not points.args or bool(public) == bool(hidden):
            problems.append(item.nodeid)
        if item.get_closest_marker("cuda") and state.device.type != "cuda":
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
    if problems:
        raise pytest.UsageError(
            "autograder: every grading test needs @pytest.mark.points(n) and exactly one of "
            "@pytest.mark.public / @pytest.mark.hidden. Missing on: " + ", ".join(problems)
        )
    file_numbers: dict[str, int] = {}
    tests_in_file: dict[str, int] = {}
    for item in items:  # Gradescope's "number": file.test, in collection order
        path = str(item.path)
        file_numbers.setdefault(path, len(file_numbers) + 1)
        tests_in_file[path] = tests_in_file.get(path, 0) + 1
        item.user_properties.append(("number", f"{file_numbers[path]}.{tests_in_file[path]}"))
    if state.results_path:  # what every test is worth, so a crash later cannot make a test disappear
        _append_partial(state, {"collected": [item.nodeid for item in items],
                                "points": {item.nodeid: 0.0 if any(m.name == "skip" for m in item.iter_markers())
                                           else float(item.get_closest_marker("points").args[0]) for item in items}})


# -- fixtures ----------------------------------------------------------------------------------

def _require_state(request: pytest.FixtureRequest) -> GradingState:
    state = _state(request.config)
    if state is None:
        raise pytest.UsageError("autograder fixtures need a submission: run with --submission PATH")
    return state


@pytest.fixture(scope="session")
def grading_state(request: pytest.FixtureRequest) -> GradingState:
    return _require_state(request)


@pytest.fixture
def worker(grading_state: GradingState):
    """The session with the student's worker: ``vjp``, ``parameter_grads``, ``import_course``."""
    return grading_state.session


@pytest.fixture
def sub(grading_state: GradingState):
    """The student's module. Attribute access, calls and indexing are forwarded to it."""
    return grading_state.session.module


@pytest.fixture(scope="session")
def device(grading_state: GradingState) -> torch.device:
    return grading_state.device


@pytest.fixture(scope="session")
def grading_seed(grading_state: GradingState) -> int:
    return grading_state.seed


@pytest.fixture
def partial_credit(request: pytest.FixtureRequest):
    """``partial_credit(fraction, note)``: the share of the points the test earns if it passes."""
    def record(fraction: float, note: str = "") -> None:
        request.node.stash[PARTIAL_KEY] = [max(0.0, min(1.0, float(fraction))), note]
    return record


@pytest.fixture
def leaderboard(grading_state: GradingState):
    """``leaderboard(name, value, order="desc")``: publish a metric on Gradescope's leaderboard
    (for example a GAN's precision and recall). Students are ranked, not graded, on it."""
    def record(name: str, value: float, order: str = "desc") -> None:
        if order not in ("asc", "desc"):
            raise ValueError("order must be 'asc' or 'desc'")
        grading_state.leaderboard[name] = {"name": name, "value": float(value), "order": order}
    return record


@pytest.fixture
def attach_images(request: pytest.FixtureRequest):
    """``attach_images(title, images, nrow=8)``: show a grid of images (N, [C,] H, W) in [0, 1]
    on the student's feedback page (for example inputs, reconstructions and targets, stacked).
    Saved by this trusted process as ``<artifacts-dir>/<test>--<title>.png``; ignored when the
    run has no artifacts folder (a student's local run)."""
    folder = request.config.getoption("--artifacts-dir")

    def attach(title: str, images, nrow: int = 8) -> None:
        if not folder:
            return
        from autograder.images import save_png
        from autograder.inputs import safe_name

        save_png(Path(folder) / f"{request.node.name}--{safe_name(title)}.png", images, nrow=nrow)
    return attach


@pytest.fixture(autouse=True)
def _autograder_per_test(request: pytest.FixtureRequest):
    state = _state(request.config)
    if state is None:
        yield
        return
    if state.submission_error:
        raise SubmissionError(state.submission_error)
    seed_everything(state.seed)
    session = state.session
    marker = request.node.get_closest_marker("budget")
    test_budget = float(marker.args[0]) if marker else state.assignment.test_seconds
    total = state.assignment.submission_seconds
    left = total - session.cpu_used  # CPU seconds of the student's code, not the machine's load
    if left <= 0:
        session.budget_exhausted = total
    given = request.config.getoption("--import-seconds")
    session.import_budget = given if given is not None else state.assignment.import_seconds
    session.budget_left = max(0.0, min(test_budget, left))
    session.budget_text = (f"the budget for this test is {test_budget:g} s of CPU time" if left >= test_budget else
                           f"the budget for this test is {test_budget:g} s of CPU time, but only {max(left, 0.0):.1f} s "
                           f"were left of the {total:g} s for the whole submission")
    session.set_seed(state.seed)
    if not state.worker_info:
        from autograder.remote import plain_worker_info

        state.worker_info = session.worker_info or plain_worker_info(session.hello())
    mark = session.output_mark()
    yield
    request.node.stash[OUTPUT_KEY] = session.output_since(mark)
    session.budget_left = None
    _save_import_figures(request, state)


def _save_import_figures(request: pytest.FixtureRequest, state: GradingState) -> None:
    """Once the submission is imported, put the figures it drew at import (a notebook's plots) on
    its feedback page. Never costs the student a test: failures here are ignored."""
    folder = request.config.getoption("--artifacts-dir")
    session = state._session
    if state.figures_saved or not folder or session is None or session._module is None:
        return
    state.figures_saved = True
    from autograder.images import save_figure_png

    try:
        session.budget_left = 30.0
        figures = session.request("figures")
    except Exception:  # noqa: BLE001 - the figures are a courtesy, not a test
        return
    finally:
        session.budget_left = None
    for i, image in enumerate(figures if isinstance(figures, list) else []):
        save_figure_png(Path(folder) / f"your-notebook--figure-{i + 1}.png", image)


# -- results -----------------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    state = _state(item.config)
    if state is None:
        return
    failures = item.stash.setdefault(FAILURE_KEY, {})
    if (report.failed or report.skipped) and "first" not in failures:
        failures["first"] = (report.when, call.excinfo, report)
    if report.when == "call":
        failures["call_passed"] = report.passed
    failures["duration"] = failures.get("duration", 0.0) + report.duration
    if report.when == "teardown":
        result = _build_result(item, state, failures)
        state.results.append(result)
        if state.results_path:
            _append_partial(state, {"result": result.__dict__})


def _build_result(item: pytest.Item, state: GradingState, failures: dict) -> TestResult:
    points = float(item.get_closest_marker("points").args[0])
    hidden = item.get_closest_marker("hidden") is not None
    visibility = state.assignment.hidden_visibility if hidden else "visible"
    number = dict(item.user_properties).get("number", "")
    doc = " ".join((getattr(item, "obj", None).__doc__ or "").split()) if getattr(item, "obj", None) else ""
    result = TestResult(name=item.name, nodeid=item.nodeid, number=number, max_score=points,
                        visibility=visibility, duration=failures.get("duration", 0.0))
    first = failures.get("first")
    lines = [f"**Checks:** {doc}"] if doc else []
    if first is None and failures.get("call_passed"):
        fraction, note = item.stash.get(PARTIAL_KEY, [1.0, ""])
        result.status, result.score = "passed", round(points * fraction, 4)
        if note:
            lines.append(note)
        lines.append("Passed." if fraction == 1.0 else f"Partial credit: {fraction:.0%} of the points.")
    elif first is not None and first[2].skipped:
        result.status, result.max_score = "skipped", 0.0
        lines.append(f"Skipped: {_skip_reason(first[2])}")
    else:
        lines.append(_failure_feedback(first, hidden, state))
        output = item.stash.get(OUTPUT_KEY, "")
        if output.strip():
            lines.append(f"Output of your code during this test:\n```\n{output.rstrip()}\n```")
    result.output = "\n\n".join(lines)
    return result


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _failure_feedback(first, hidden: bool, state: GradingState) -> str:
    """What the student reads when a test fails. Hidden tests never show test code."""
    if first is None:
        return "Failed."
    _, excinfo, report = first
    exc = excinfo.value if excinfo is not None else None
    if isinstance(exc, StudentCodeError):
        return state.locate_in_notebook(exc.feedback())
    if isinstance(exc, SubmissionError):
        return state.locate_in_notebook(str(exc))
    if isinstance(exc, AssertionError):
        message = str(exc)
        if hidden:
            message = message.split("\nassert ")[0].strip()
            if message.startswith("assert ") or not message:
                message = "A hidden check failed."
        return f"Failed: {message}"
    if exc is not None and type(exc).__name__ == "Failed":  # pytest.fail(...)
        return f"Failed: {exc}"
    if exc is not None:
        detail = f"{type(exc).__name__}: {exc}".replace(
            "RemoteObject", "an object from your code that is not a tensor or plain value")
        return ("The test could not use what your code returned or did "
                f"({detail[:1500]}). Check the types and shapes the handout asks for.")
    return "Failed." if hidden else f"Failed:\n```\n{str(report.longrepr)[-2000:]}\n```"


def _append_partial(state: GradingState, record: dict) -> None:
    path = state.results_path.with_suffix(".partial.jsonl")
    with open(path, "a", encoding="utf-8") as f:
        f.write(strict_json(record, indent=None) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state is None:
        return
    if state.results_path:
        from autograder.results import write_atomic

        payload = {
            "tests": [r.__dict__ for r in state.results],
            "seed": state.seed,
            "device": str(state.device),
            "notes": state.notes,
            "error": state.submission_error or (state._session.import_problem if state._session else None),
            "leaderboard": list(state.leaderboard.values()),
            "versions": {
                "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                "autograder": __version__, "worker": state.worker_info, "isolated": state.isolated,
                "sandbox": state.sandbox,
            },
        }
        write_atomic(state.results_path, strict_json(payload))
    state.close()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if state is None or not state.results:
        return
    total = sum(r.score for r in state.results)
    maximum = sum(r.max_score for r in state.results)
    terminalreporter.section("autograder")
    for note in state.notes:
        terminalreporter.write_line(f"note: {note}")
    for r in state.results:
        terminalreporter.write_line(f"{r.status:>7}  {r.score:g}/{r.max_score:g}  {r.name}")
    terminalreporter.write_line(f"score on these tests: {total:g} / {maximum:g}")
