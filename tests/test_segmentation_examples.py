"""The segmentation practical's graded examples beyond their verdicts (tests/test_examples.py checks
that each fails exactly the tests it lists): total scores, and what the feedback says."""

import pytest

from autograder.examples import BLANK, REFERENCE

pytestmark = pytest.mark.slow


@pytest.fixture
def graded(graded_assignment):
    return graded_assignment("segmentation")


def test_reference_full_marks_blank_zero_and_the_cuda_test_is_worth_nothing_here(graded):
    reference, blank = graded[REFERENCE][1], graded[BLANK][1]
    assert reference.score == reference.max_score == 36
    assert blank.score == 0 and blank.max_score == 36
    assert all("NotImplementedError" in t.output for t in blank.tests if t.status == "failed")
    cuda = next(t for t in reference.tests if t.name == "test_gpu_profile_trains_a_larger_unet")
    assert cuda.status == "skipped" and cuda.max_score == 0


def test_hard_coded_cuda_is_explained_not_crashed(graded):
    """On a grader without a GPU, `.cuda()` fails the device tests with a message that names the
    mistake; the batch goes on (the other tests of that submission pass)."""
    result = graded["bad_hard_coded_cuda"][1]
    failed = {t.name: t.output for t in result.tests if t.status == "failed"}
    for name in ("test_training_runs_on_the_device_it_is_given", "test_training_reaches_miou",
                 "test_training_leaves_the_model_in_eval_mode", "test_training_returns_the_mean_of_the_chosen_loss",
                 "test_training_shuffles_images_masks_and_weights_together"):
        assert "Never hard-code .cuda()" in failed[name] or "never .cuda()" in failed[name], failed[name]
    assert result.score == result.max_score - 9


def test_feedback_explains_without_showing_hidden_code(graded):
    result = graded["bad_missing_skip_connection"][1]
    test = next(t for t in result.tests if t.name == "test_skip_connections_carry_fine_detail")
    assert "skip connection" in test.output and "assert " not in test.output
    result = graded["bad_dice_loss_not_differentiable"][1]
    test = next(t for t in result.tests if t.name == "test_dice_loss_value_and_gradient_float64")
    assert "does not depend on the logits" in test.output or "dtype" in test.output, test.output
