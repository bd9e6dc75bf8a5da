"""Gradescope: the zip, and run_autograder in a folder laid out like /autograder.

setup.sh needs Ubuntu 22.04 and the network, so here the "setup" is this test environment (the
package is installed); run_autograder itself, the grading tests from the zip and the results are
the real ones. Verdicts must match local grading of the same files.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.examples import verdict
from autograder.gradescope import build_zip
from autograder.grading import grade_submission
from autograder.results import SubmissionResult, validate_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def config():
    return load_config("autoencoder")


@pytest.fixture(scope="module")
def autograder_zip(config, tmp_path_factory):
    return build_zip(config, tmp_path_factory.mktemp("zip") / "autoencoder.zip")


def test_zip_has_the_grader_and_nothing_secret(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = zf.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        texts = [zf.read(n).decode("utf-8", "replace") for n in names]
    assert {"setup.sh", "run_autograder", "requirements.txt", "ASSIGNMENT", "pyproject.toml"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert "grading_tests/autoencoder/test_hidden.py" in names and "assignments/autoencoder/data.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "examples/", "student_template/")) or "__pycache__" in n]
    from autograder.templates import _solution_only_lines, solution_path

    secret = _solution_only_lines(solution_path(load_config("autoencoder")).read_text())
    assert len(secret) > 10
    assert not [line for line in secret for t in texts if line in t]
    requirements = texts[names.index("requirements.txt")]
    assert "torch==" in requirements and "+cu" not in requirements


def make_root(tmp_path: Path, autograder_zip: Path, submission: Path | None, metadata: dict | None = None) -> Path:
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    if submission is not None:
        shutil.copy(submission, root / "submission" / submission.name)
    if metadata is not None:
        (root / "submission_metadata.json").write_text(json.dumps(metadata))
    return root


def run_autograder(root: Path, python: str | None = None) -> dict:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python or shutil.which("python") or "python"}
    env["AUTOGRADER_PYTHON"] = python or os.environ.get("AUTOGRADER_TEST_PYTHON", __import__("sys").executable)
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    return data


EXAMPLES = ["reference", "blank_template", "bad_exp_rho_notebook", "bad_mean_over_pixels", "bad_forgot_optimizer_step",
            "bad_denoiser_noisy_target_notebook", "bad_anomaly_sign", "cheat_sys_exit",
            "cheat_monkeypatch_comparisons", "cheat_always_equal"]


METADATA = {"id": 7, "created_at": "2026-11-22T10:00:00Z", "assignment": {"id": 3, "due_date": "2026-12-01"},
            "users": [{"email": "alice@example.org", "name": "Alice"}], "previous_submissions": []}


@pytest.fixture(scope="module")
def gradescope_results(autograder_zip, graded_examples, tmp_path_factory):
    """run_autograder's results.json for each of EXAMPLES, two at a time (each Gradescope run grades
    one submission in one worker thread, so one at a time would leave a core idle in CI)."""
    from concurrent.futures import ThreadPoolExecutor

    def grade(name):
        root = make_root(tmp_path_factory.mktemp(f"gradescope-{name}"), autograder_zip, graded_examples[name][0].path,
                         METADATA)
        return run_autograder(root)

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        return dict(zip(EXAMPLES, pool.map(grade, EXAMPLES)))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_gets_the_same_verdict_as_local_grading(gradescope_results, graded_examples, name):
    example, local = graded_examples[name]
    data = gradescope_results[name]
    assert data["score"] == local.score
    assert {t["name"]: t["status"] for t in data["tests"]} == {
        t.name: "passed" if t.status == "passed" else "failed" for t in local.tests}
    assert verdict(example, SubmissionResult.from_gradescope(data)) is None
    assert data["extra_data"]["gradescope"]["submission_id"] == 7
    assert "alice" not in json.dumps(data).lower()  # no names or e-mails copied into results
    visibility = {t["name"]: t["visibility"] for t in data["tests"]}
    assert visibility["test_autoencoder_shapes"] == "visible"
    assert visibility["test_training_reaches_pca_baseline"] == "after_published"
    assert os.geteuid() != 0 or "namespaces" in data["extra_data"]["versions"]["sandbox"]


def test_broken_empty_and_exiting_submissions_get_valid_results(autograder_zip, tmp_path):
    broken = tmp_path / "autoencoder.ipynb"
    broken.write_text('{"cells": [{"cell_type": "code", "source": "def f(:\\n", "metadata": {}, "outputs": []}], '
                      '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    exiting = tmp_path / "autoencoder.py"
    exiting.write_text("import os\nos._exit(1)\n")
    outputs = {}
    for label, submission in [("broken", broken), ("empty", None), ("exiting", exiting)]:
        data = run_autograder(make_root(tmp_path / label, autograder_zip, submission))
        assert data["score"] == 0 and len(data["tests"]) == 17, label
        assert all(t["score"] == 0 for t in data["tests"])
        outputs[label] = data["tests"][0]["output"]
    assert "SyntaxError" in outputs["broken"] and "notebook cell 1" in outputs["broken"]
    assert "Could not find the file to grade" in outputs["empty"]
    assert "exited with code 1" in outputs["exiting"]



def test_a_grader_that_cannot_start_still_writes_a_valid_results_json(autograder_zip, tmp_path):
    root = make_root(tmp_path, autograder_zip, None)
    data = run_autograder(root, python="/bin/false")
    assert data["score"] == 0 and "not your submission" in data["output"]


def test_leaderboard_metrics_reach_results_json(config, tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_board.py").write_text(
        "import pytest\n\n@pytest.mark.points(1)\n@pytest.mark.public\n"
        "def test_board(sub, leaderboard):\n    leaderboard('precision', sub.PRECISION)\n"
        "    leaderboard('fid', 12.5, order='asc')\n")
    (tmp_path / "autoencoder.py").write_text("PRECISION = 0.75\n")
    result = grade_submission(config, tmp_path / "autoencoder.py", tmp_path / "out", device="cpu", tests_dir=tests)
    data = json.loads((tmp_path / "out" / "autoencoder" / "results.json").read_text())
    validate_results(data)
    assert result.score == 1
    assert data["leaderboard"] == [{"name": "precision", "value": 0.75, "order": "desc"},
                                   {"name": "fid", "value": 12.5, "order": "asc"}]


def test_gradescope_scripts_are_valid_bash(autograder_zip, tmp_path):
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(tmp_path)
    for script in ("setup.sh", "run_autograder"):
        check = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
