"""The adversarial-attacks practical's graded examples beyond their verdicts (tests/test_examples.py checks
that each fails exactly the tests it lists): total scores, and what the feedback says."""

import pytest

from autograder.examples import BLANK, REFERENCE

pytestmark = pytest.mark.slow


@pytest.fixture
def graded(graded_assignment):
    return graded_assignment("adversarial")


def test_reference_full_marks_blank_zero_and_the_cuda_test_is_worth_nothing_here(graded):
    reference, blank = graded[REFERENCE][1], graded[BLANK][1]
    assert reference.score == reference.max_score == 33
    assert blank.score == 0 and blank.max_score == 33
    assert all("NotImplementedError" in t.output for t in blank.tests if t.status == "failed")
    cuda = next(t for t in reference.tests if t.name == "test_cuda_and_cpu_agree")
    assert cuda.status == "skipped" and cuda.max_score == 0


def test_known_bad_attacks_are_far_from_the_tolerance(graded):
    """The comparison with torchattacks tolerates 2% of the images differing (rounding); the
    known-bad attacks it catches differ on far more, so the tolerance hides none of them."""
    import re

    for name in ("bad_steps_eps_every_iteration_notebook", "bad_returns_iterate_before_projection",
                 "bad_l2_raw_gradient_step", "bad_fgsm_no_clamp"):
        outputs = [t.output for t in graded[name][1].tests if t.name.endswith("matches_torchattacks")]
        counts = [int(a) / int(b) for out in outputs for a, b in re.findall(r"on (\d+) of (\d+) images", out)]
        assert counts and min(counts) >= 0.2, (name, counts)


def test_feedback_explains_without_showing_hidden_code(graded):
    result = graded["bad_targeted_ascends_target_loss"][1]
    test = next(t for t in result.tests if t.name == "test_targeted_attacks_reach_and_approach_target")
    assert "moves away from the target" in test.output
    assert "torchattacks_result" not in test.output and "assert " not in test.output
