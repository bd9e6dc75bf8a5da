"""The colorization practical's graded examples beyond their verdicts (tests/test_examples.py checks
that each fails exactly the tests it lists): total scores, and what the feedback says."""

import pytest
import torch

from autograder.examples import BLANK, REFERENCE

pytestmark = pytest.mark.slow


@pytest.fixture
def graded(graded_assignment):
    return graded_assignment("colorization")


def test_reference_full_marks_and_blank_zero(graded):
    reference, blank = graded[REFERENCE][1], graded[BLANK][1]
    assert reference.score == reference.max_score == 33
    assert blank.score == 0 and blank.max_score == 33


def test_baselines_are_what_the_handout_says():
    from assignments.colorization.data import load_crops
    from assignments.colorization.models import flat_gray_baseline, hint_propagation_baseline

    train, held_out = load_crops()
    assert train.shape == (100, 3, 32, 32) and held_out.shape == (20, 3, 32, 32)
    assert not any(torch.equal(h, t) for h in held_out for t in train)
    hints = torch.zeros(1, 4, 8, 8)
    hints[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    spread = hint_propagation_baseline(hints, (32, 32))
    assert torch.allclose(spread[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))  # next to the stroke: its colour
    assert torch.allclose(spread[0, :, 31, 31], torch.full((3,), 0.5))  # far from any stroke: mid-gray
    assert flat_gray_baseline(torch.zeros(2, 1, 4, 4)).shape == (2, 3, 4, 4)
