"""The autoencoder practical's graded examples beyond their verdicts (tests/test_examples.py checks
that each fails exactly the tests it lists): total scores, and what the feedback says."""

import shutil
import subprocess
import sys

import pytest

from autograder.config import load_config
from autograder.examples import BLANK, REFERENCE

pytestmark = pytest.mark.slow


@pytest.fixture
def graded(graded_examples):
    return graded_examples


def test_there_are_enough_known_bad_submissions_in_both_formats(graded):
    bad = [e for e, _ in graded.values() if e.name not in (REFERENCE, BLANK)]
    assert len(bad) >= 4
    assert {e.path.suffix for e in bad} == {".py", ".ipynb"}


def test_reference_full_marks_and_blank_template_zero(graded):
    reference = graded[REFERENCE][1]
    blank = graded[BLANK][1]
    assert reference.score == reference.max_score == 31
    assert blank.score == 0 and blank.max_score == 31
    assert all("NotImplementedError" in t.output for t in blank.tests)
    with_traceback = [t for t in blank.tests if "Traceback" in t.output]
    assert len(with_traceback) >= 10
    assert all("notebook cell" in t.output for t in with_traceback)  # tracebacks point at notebook cells


def test_feedback_is_readable_and_hidden_tests_do_not_show_code(graded):
    result = graded["bad_anomaly_sign"][1]
    test = next(t for t in result.tests if t.name == "test_anomaly_scores_flag_out_of_distribution_inputs")
    assert test.visibility == "after_published"
    assert "AUROC" in test.output and "higher = more anomalous" in test.output
    assert "assert " not in test.output and "roc_auc_score" not in test.output


def test_student_runs_public_tests_locally_with_pytest(tmp_path):
    """The student's workflow: `pytest` in the template folder tests the newer of .py/.ipynb."""
    config = load_config("autoencoder")
    folder = tmp_path / "autoencoder"
    shutil.copytree(config.repo_root / "student_template" / "autoencoder", folder)
    run = lambda: subprocess.run([sys.executable, "-m", "pytest"], cwd=folder, capture_output=True, text=True)
    blank = run()
    assert blank.returncode == 1 and "NotImplementedError" in blank.stdout and "in-process" in blank.stdout
    assert "remote.py" not in blank.stdout  # the engine's frames are hidden from the student
    solution = (config.repo_root / "solutions" / "autoencoder" / "autoencoder.py").read_text()
    (folder / "autoencoder.py").write_text(solution)  # now the newer file
    done = run()
    assert done.returncode == 0, done.stdout[-3000:]
    assert "score on these tests: 10 / 10" in done.stdout


def test_autograder_check_isolated_mode(tmp_path):
    config = load_config("autoencoder")
    solution = config.repo_root / "solutions" / "autoencoder" / "autoencoder.py"
    tests = config.repo_root / "student_template" / "autoencoder" / "tests"
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "check", str(solution), "--isolated",
                           "--tests-dir", str(tests)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "isolated worker process" in proc.stdout and "10 / 10" in proc.stdout
