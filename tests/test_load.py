"""A busy machine does not change a verdict: budgets count the worker's CPU time, not wall time.

The machine is loaded with twice as many busy processes as it has cores (other graders, other
students' jobs, a shared Gradescope runner) while submissions are graded; the verdicts must equal
those at rest. A submission that sleeps is still stopped, by the wall-clock ceiling.
"""

import contextlib
import os
import subprocess
import sys
import textwrap
import time

import pytest

from autograder.config import load_config
from autograder.examples import build_examples, verdict
from autograder.grading import grade_batch, grade_submission

pytestmark = pytest.mark.slow

GRADING_TESTS = '''
import pytest

@pytest.mark.points(1)
@pytest.mark.public
@pytest.mark.budget(4)
def test_work(sub):
    """work() computes for 2.5 s of CPU: within its 4 s budget, busy machine or not (on a machine
    loaded 2x over it takes about 6 s of wall time, so a wall-clock budget would fail it)."""
    assert sub.work() > 0

@pytest.mark.points(1)
@pytest.mark.hidden
@pytest.mark.budget(3)
def test_sleep(sub):
    assert sub.sleepy() == 1
'''

SUBMISSION = '''
import time

def work():
    end = time.process_time() + 2.5
    n = 0
    while time.process_time() < end:
        n += 1
    return n

def sleepy():
    time.sleep(1000)
    return 1
'''


@contextlib.contextmanager
def busy_machine(factor: int = 2):
    """``factor`` x cores processes that spin, for as long as the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(factor * os.cpu_count())]
    try:
        time.sleep(1)
        yield
    finally:
        for process in spinners:
            process.kill()
        for process in spinners:
            process.wait()


def grade_toy(tmp_path):
    tests_dir = tmp_path / "grading_tests"
    tests_dir.mkdir(parents=True)
    (tests_dir / "test_grading.py").write_text(GRADING_TESTS)
    (tmp_path / "student.py").write_text(textwrap.dedent(SUBMISSION))
    started = time.monotonic()
    result = grade_submission(load_config("autoencoder"), tmp_path / "student.py", tmp_path / "out", device="cpu",
                              tests_dir=tests_dir)
    return {t.name: (t.status, t.output) for t in result.tests}, time.monotonic() - started


def test_cpu_budgets_hold_under_load_and_sleepers_are_still_stopped(tmp_path):
    at_rest, _ = grade_toy(tmp_path / "rest")
    with busy_machine():
        loaded, seconds = grade_toy(tmp_path / "busy")
    assert {name: status for name, (status, _) in at_rest.items()} == {"test_work": "passed", "test_sleep": "failed"}
    assert {name: status for name, (status, _) in loaded.items()} == {"test_work": "passed", "test_sleep": "failed"}
    assert "waiting (sleeping" in loaded["test_sleep"][1] and "3 s of CPU time" in loaded["test_sleep"][1]
    assert seconds < 120  # the sleeper cost seconds, not its 1000 s


def test_reference_and_a_known_bad_submission_keep_their_verdicts_on_a_busy_machine(tmp_path):
    config = load_config("autoencoder")
    examples = {e.name: e for e in build_examples(config, tmp_path / "submissions")}
    chosen = [examples["reference"], examples["bad_forgot_optimizer_step"]]
    with busy_machine():
        results = grade_batch(config, [e.path for e in chosen], tmp_path / "out", device="cpu", jobs=1)
    for example, result in zip(chosen, results):
        assert verdict(example, result) is None, verdict(example, result)
