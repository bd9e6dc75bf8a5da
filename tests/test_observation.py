"""What a grading test can see of the student's code, and what it reports.

Values cross the process boundary by value, so without the observation API a test could not see
that a function modified its input in place, returned a tensor still attached to a graph, or left
a model in train mode. These tests check that API in both backends (the grader's isolated worker
and the student's in-process local mode), that numeric checks reject NaN and infinities, that
failure messages name a cause only when the evidence points there, that time-outs state the
budget, and that a test that did not run is never reported as failed.
"""

import json
import math
import textwrap

import pytest
import torch

from autograder.checks import (expect_close, expect_detached, expect_finite, expect_scalar, expect_scalar_close,
                               expect_tensor, expect_unchanged, format_pair)
from autograder.protocol import tensor_origin
from autograder.remote import InProcessBackend, Session, SubprocessBackend
from autograder.results import SubmissionResult, TestResult, gradebook_csv, read_results_json

STUDENT = '''
import torch

def scale_in_place(x):
    x.mul_(2)
    return x

def scale(x):
    return x * 2

def attached():
    w = torch.ones(3, requires_grad=True)
    return w * 2

def make_leaf(x):
    x.requires_grad_(True)
    return x.detach() * 2

def trained_model():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1))
    model(torch.ones(1, 2)).sum().backward()
    return model
'''


@pytest.fixture(params=["in-process", "isolated"])
def session(request, tmp_path):
    (tmp_path / "student.py").write_text(STUDENT)
    backend = InProcessBackend(tmp_path) if request.param == "in-process" else SubprocessBackend(tmp_path)
    session = Session(backend, entry="student.py", module_name=f"student_{request.param.replace('-', '_')}")
    yield session
    session.close()


# -- by-value arguments no longer hide side effects ----------------------------------------------

def test_a_held_tensor_shows_in_place_changes(session):
    x = torch.arange(4.0)
    held = session.hold(x)
    session.module.scale_in_place(held)
    state = session.tensor_state(held)
    assert torch.equal(state.value, 2 * x) and state.version >= 1
    assert torch.equal(session.fetch(held), 2 * x)
    with pytest.raises(AssertionError, match="was modified in place"):
        expect_unchanged(state, x, "x")


def test_a_held_tensor_left_alone_passes(session):
    x = torch.arange(4.0)
    held = session.hold(x)
    assert torch.equal(session.module.scale(held), 2 * x)
    state = session.tensor_state(held)
    assert state.version == 0 and not state.requires_grad
    expect_unchanged(state, x, "x")


def test_switching_the_callers_tensor_to_requires_grad_is_seen(session):
    held = session.hold(torch.ones(2))
    session.module.make_leaf(held)
    with pytest.raises(AssertionError, match="requires_grad=True in place"):
        expect_unchanged(session.tensor_state(held), torch.ones(2), "x")


def test_returned_tensors_carry_how_they_looked_in_the_worker(session):
    out = session.module.attached()
    origin = tensor_origin(out)
    assert origin.requires_grad and origin.grad_fn == "MulBackward0" and not origin.is_leaf
    assert not out.requires_grad  # what the test holds is a plain, detached copy
    with pytest.raises(AssertionError, match="should be detached.*MulBackward0"):
        expect_detached(out, "attached()")
    plain = session.module.scale(torch.ones(2))
    assert not tensor_origin(plain).requires_grad
    expect_detached(plain, "scale(x)")
    expect_detached(torch.ones(2), "a tensor made by the test")  # no origin: nothing to hold against it


def test_module_state_shows_mode_gradients_and_buffers(session):
    model = session.module.trained_model()
    state = session.module_state(model)
    assert state.training and state.in_train_mode() == ["(root)", "0", "1"]
    assert sorted(state.with_grad()) == ["0.bias", "0.weight"]
    assert state.requires_grad == {"0.weight": True, "0.bias": True}
    model.eval()
    assert session.module_state(model).in_train_mode() == []


# -- NaN and infinities fail every numeric check ------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_scalars_fail_scalar_checks(bad):
    word = "NaN" if math.isnan(bad) else "infinite"
    with pytest.raises(AssertionError, match=word):
        expect_scalar_close(bad, 1.0, "the loss", atol=1e9)
    with pytest.raises(AssertionError, match=word):
        expect_scalar_close(torch.tensor(bad), 1.0, "the loss", rtol=1e9)
    with pytest.raises(AssertionError, match=word):
        expect_scalar(bad, "the loss")
    with pytest.raises(AssertionError, match="NaN or infinite"):
        expect_finite(bad, "the test MSE")
    assert expect_scalar(bad, "an allowed special value", finite=False) != 1.0


def test_non_finite_tensors_fail_tensor_checks():
    bad = torch.tensor([1.0, math.nan, math.inf])
    with pytest.raises(AssertionError, match="1 NaN and 1 infinite value"):
        expect_tensor(bad, "the output")
    with pytest.raises(AssertionError, match="NaN or infinite values .*where finite values were expected"):
        expect_close(bad, torch.ones(3), "the output", atol=1e9)
    expect_tensor(bad, "NaN allowed here", finite=False)


# -- messages that say no more than the evidence -------------------------------------------------

def test_a_known_mistake_is_named_only_when_the_result_matches_it():
    expected = torch.tensor([1.0, 2.0])
    mistakes = {"forgetting the factor 2": torch.tensor([0.5, 1.0])}
    with pytest.raises(AssertionError, match="exactly what forgetting the factor 2 gives") as matched:
        expect_close(torch.tensor([0.5, 1.0]), expected, "f(x)", hint="general hint", known_mistakes=mistakes)
    assert "general hint" not in str(matched.value)
    with pytest.raises(AssertionError) as other:
        expect_close(torch.tensor([0.0, 7.0]), expected, "f(x)", hint="general hint", known_mistakes=mistakes)
    assert "general hint" in str(other.value) and "factor 2" not in str(other.value)
    with pytest.raises(AssertionError, match="exactly what the saturating loss gives"):
        expect_scalar_close(-0.25, 0.75, "g", known_mistakes={"the saturating loss": -0.25})
    with pytest.raises(AssertionError) as other:
        expect_scalar_close(3.0, 0.75, "g", known_mistakes={"the saturating loss": -0.25})
    assert "saturating" not in str(other.value)


def test_different_numbers_never_print_the_same():
    a, b = format_pair(0.30000001, 0.3)
    assert a != b
    a, b = format_pair(1.0 + 2**-50, 1.0)
    assert a != b
    with pytest.raises(AssertionError) as failure:
        expect_scalar_close(1.0000001, 1.0, "x", rtol=0, atol=0)
    assert "is 1.0000001, expected 1 " in str(failure.value)
    with pytest.raises(AssertionError, match="dtype float32, the expected float64") as failure:
        expect_close(torch.tensor([1.0000001], dtype=torch.float32), torch.tensor([1.0], dtype=torch.float64), "y",
                     rtol=0, atol=0)


# -- end to end: time-out budget, skipped tests -------------------------------------------------

GRADING_TESTS = '''
import pytest
import torch

@pytest.mark.points(1)
@pytest.mark.public
def test_quick(sub):
    assert sub.double(2) == 4

@pytest.mark.points(1)
@pytest.mark.hidden
@pytest.mark.budget(2)
def test_slow(sub):
    """slow() returns within 2 seconds."""
    assert sub.slow() == 1

@pytest.mark.points(3)
@pytest.mark.public
@pytest.mark.cuda
def test_on_the_gpu(sub):
    """Runs only where a GPU is."""
    assert sub.double(1) == 2
'''

SUBMISSION = '''
def double(x):
    return 2 * x
def slow():
    while True:
        pass
'''


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a CPU-only grader reports")
def test_time_outs_state_the_budget_and_skipped_tests_are_not_failed(tmp_path):
    from autograder.config import load_config
    from autograder.grading import grade_batch, write_gradebook

    tests_dir = tmp_path / "grading_tests"
    tests_dir.mkdir()
    (tests_dir / "test_grading.py").write_text(GRADING_TESTS)
    (tmp_path / "student.py").write_text(textwrap.dedent(SUBMISSION))
    config = load_config("autoencoder")
    [result] = grade_batch(config, [tmp_path / "student.py"], tmp_path / "out", device="cpu", tests_dir=tests_dir)
    tests = {t.name: t for t in result.tests}
    assert "the budget for this test is 2 s" in tests["test_slow"].output
    assert tests["test_on_the_gpu"].status == "skipped" and result.max_score == 2

    results_file = tmp_path / "out" / "student" / "results.json"
    assert results_file.stat().st_mode & 0o777 == 0o640  # readable by the group (a TA account, a web server)
    data = json.loads(results_file.read_text())
    assert [t["name"] for t in data["tests"]] == ["test_quick", "test_slow"]  # nothing shown as failed
    assert data["extra_data"]["skipped"][0]["name"] == "test_on_the_gpu"
    assert "Not run on this grader" in data["output"] and "needs a CUDA device" in data["output"]
    back = read_results_json(tmp_path / "out" / "student" / "results.json")
    assert [t.status for t in back.tests] == ["passed", "failed", "skipped"]
    gradebook = write_gradebook(tmp_path / "out").read_text().splitlines()
    assert gradebook[0].endswith("test_quick,test_slow,test_on_the_gpu,problem")
    assert gradebook[1].startswith("student,1,2,1,2,1,0,skipped,")


def test_the_gradebook_and_summary_say_skipped():
    result = SubmissionResult("ann", "x", tests=[
        TestResult("test_a", "t::test_a", "1.1", 1.0, 1.0, "passed"),
        TestResult("test_gpu", "t::test_gpu", "1.2", 0.0, 0.0, "skipped", output="Skipped: needs a CUDA device"),
    ])
    assert "1 of 1 tests passed" in result.summary()
    assert [t["name"] for t in result.to_gradescope()["tests"]] == ["test_a"]
    assert gradebook_csv([result]).splitlines()[1] == "ann,1,1,1,1,1,skipped,"


def test_starting_the_worker_is_not_charged_to_the_student(tmp_path):
    """Python, torch and the engine take about 2 s of CPU to start; no student code runs then, so
    the first test's budget (and the submission's) must not pay for it: a 1 s budget on a fresh
    worker still leaves the test its whole second."""
    (tmp_path / "student.py").write_text(STUDENT)
    session = Session(SubprocessBackend(tmp_path), entry="student.py")
    try:
        session.budget_left = 1.0
        session.set_seed(0)
        assert session.worker_info.get("python")
        assert session.backend.process.cpu_seconds() > 0.5  # the start-up did cost something
        assert session.cpu_used < 0.5 and session.budget_left > 0.5
    finally:
        session.close()
