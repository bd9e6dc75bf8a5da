"""Results of grading: one ``SubmissionResult`` per submission, written as Gradescope's
``results.json``, and a ``gradebook.csv`` for a batch. Files are written atomically (temporary
file, then rename) so an interrupted run never leaves half a result behind."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Our visibility words -> Gradescope's. "public" tests are the ones students receive.
PUBLIC = "visible"


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    nodeid: str
    number: str
    max_score: float
    score: float = 0.0
    status: str = "failed"  # passed | failed | skipped
    visibility: str = PUBLIC
    output: str = ""
    duration: float = 0.0
    tags: list[str] = field(default_factory=list)

    def to_gradescope(self) -> dict:
        """Gradescope knows only "passed" and "failed": a test that did not run (skipped, such as a
        CUDA test on a CPU grader) is not listed among the tests (see SubmissionResult), so no
        student ever sees it as failed."""
        return {
            "name": self.name,
            "number": self.number,
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "status": "passed" if self.status == "passed" else "failed",
            "visibility": self.visibility,
            "output": self.output,
            "output_format": "md",
            "tags": self.tags,
            "extra_data": {"nodeid": self.nodeid, "outcome": self.status, "duration_s": round(self.duration, 3)},
        }


@dataclass
class SubmissionResult:
    submission: str
    assignment: str
    tests: list[TestResult] = field(default_factory=list)
    seed: int | None = None
    device: str | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the submission could not be graded normally (message for students)
    execution_time: float = 0.0
    leaderboard: list[dict] = field(default_factory=list)  # [{name, value, order}]

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)

    @property
    def ran(self) -> list[TestResult]:
        """The tests that ran (passed or failed), without the skipped ones."""
        return [t for t in self.tests if t.status != "skipped"]

    def summary(self) -> str:
        lines = [f"Score: {self.score:g} / {self.max_score:g}"]
        if self.error:
            lines.append(f"\n**Problem with the submission:** {self.error}")
        passed = sum(t.status == "passed" for t in self.tests)
        lines.append(f"{passed} of {len(self.ran)} tests passed.")
        skipped = [t for t in self.tests if t.status == "skipped"]
        if skipped:
            lines.append("Not run on this grader (worth no points here): " + "; ".join(
                f"{t.name} ({t.output.rpartition('Skipped: ')[2] or 'skipped'})" for t in skipped) + ".")
        for note in self.notes:
            lines.append(f"- {note}")
        lines.append(f"\nGraded with seed {self.seed} on {self.device}.")
        return "\n".join(lines)

    def to_gradescope(self) -> dict:
        return {
            "score": self.score,
            "execution_time": round(self.execution_time, 3),
            "output": self.summary(),
            "output_format": "md",
            "test_output_format": "md",
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "extra_data": {
                "submission": self.submission, "assignment": self.assignment, "seed": self.seed,
                "device": self.device, "versions": self.versions, "max_score": self.max_score,
                "error": self.error, "notes": self.notes,
                "skipped": [t.to_gradescope() for t in self.tests if t.status == "skipped"],
            },
            "tests": [t.to_gradescope() for t in self.ran],
            **({"leaderboard": self.leaderboard} if self.leaderboard else {}),
        }

    @classmethod
    def from_gradescope(cls, data: dict) -> "SubmissionResult":
        extra = data.get("extra_data", {})
        tests = [
            TestResult(
                name=t["name"], nodeid=t.get("extra_data", {}).get("nodeid", t["name"]), number=t.get("number", ""),
                max_score=t["max_score"], score=t["score"], status=t.get("extra_data", {}).get("outcome", t["status"]),
                visibility=t.get("visibility", PUBLIC), output=t.get("output", ""),
                duration=t.get("extra_data", {}).get("duration_s", 0.0), tags=t.get("tags", []),
            )
            for t in [*data.get("tests", []), *extra.get("skipped", [])]
        ]
        tests.sort(key=lambda t: _number_key(t.number))
        return cls(
            submission=extra.get("submission", ""), assignment=extra.get("assignment", ""), tests=tests,
            seed=extra.get("seed"), device=extra.get("device"), versions=extra.get("versions", {}),
            notes=extra.get("notes", []), error=extra.get("error"), execution_time=data.get("execution_time", 0.0),
            leaderboard=data.get("leaderboard", []),
        )


def _number_key(number: str) -> tuple:
    try:
        return tuple(int(part) for part in number.split("."))
    except ValueError:
        return (float("inf"),)


SCHEMA_PATH = Path(__file__).parent / "schemas" / "results.schema.json"


def validate_results(data: dict) -> None:
    """Raise ``jsonschema.ValidationError`` if ``data`` is not a valid results.json."""
    import jsonschema

    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")),
                        format_checker=jsonschema.FormatChecker())


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o640)  # mkstemp makes 0600: a TA account or a web server in the group must read results
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


MAX_TEXT_CHARS = 100_000  # any one string in a results file (a test's feedback, a note)


def _strict(value: Any) -> Any:
    """``value`` made valid JSON whatever a submission put in it: NaN and infinities become None
    (JSON has no such numbers, and Gradescope would reject the file), strings are cut to
    MAX_TEXT_CHARS, and anything that is not plain data becomes its text."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_CHARS else value[:MAX_TEXT_CHARS] + " [cut]"
    if isinstance(value, dict):
        return {str(k)[:200]: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return _strict(str(value))


def strict_json(value: Any, indent: int | None = 2) -> str:
    """The JSON text of ``value``, always valid JSON (see ``_strict``)."""
    return json.dumps(_strict(value), indent=indent, allow_nan=False)


def write_results_json(result: SubmissionResult, path: Path) -> None:
    write_atomic(path, strict_json(result.to_gradescope()))


def read_results_json(path: Path) -> SubmissionResult:
    return SubmissionResult.from_gradescope(json.loads(path.read_text(encoding="utf-8")))


def gradebook_csv(results: list[SubmissionResult]) -> str:
    """One row per submission: total, maximum, a column per test (in test order), problems."""
    test_names: list[str] = []
    for result in results:
        for test in result.tests:
            if test.name not in test_names:
                test_names.append(test.name)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "score", "max_score", "tests_passed", "tests_total", *test_names, "problem"])
    for result in sorted(results, key=lambda r: r.submission):
        by_name = {t.name: ("skipped" if t.status == "skipped" else f"{t.score:g}") for t in result.tests}
        writer.writerow([
            result.submission, f"{result.score:g}", f"{result.max_score:g}",
            sum(t.status == "passed" for t in result.tests), len(result.ran),
            *[by_name.get(n, "") for n in test_names],
            (result.error or "").splitlines()[0] if result.error else "",
        ])
    return buffer.getvalue()
