"""The deep Q-learning practical's graded examples beyond their verdicts (tests/test_examples.py checks
that each fails exactly the tests it lists): total scores, and what the feedback says."""

import pytest

from autograder.examples import BLANK, REFERENCE

pytestmark = pytest.mark.slow


@pytest.fixture
def graded(graded_assignment):
    return graded_assignment("reinforcement")


def test_reference_full_marks_and_blank_zero(graded):
    reference, blank = graded[REFERENCE][1], graded[BLANK][1]
    assert reference.score == reference.max_score == 33
    assert blank.score == 0 and blank.max_score == 33
    assert all("NotImplementedError" in t.output for t in blank.tests)


def test_the_known_bad_submissions_cover_the_classic_bugs(graded):
    bad = {e.name: e for e, _ in graded.values() if e.name not in (REFERENCE, BLANK)}
    for bug in ("epsilon_never_decays", "argmin", "no_terminal_mask", "gradient_through_target", "replay_keeps_last"):
        assert any(bug in name for name in bad), bug
    assert {e.path.suffix for e in bad.values()} == {".py", ".ipynb"}


def test_fake_scores_gain_nothing_and_feedback_explains(graded):
    """evaluate's numbers are never trusted: the grader replays the untrained network itself."""
    result = graded["cheat_fake_scores"][1]
    mouse = next(t for t in result.tests if t.name == "test_mouse_agent")
    assert mouse.status == "failed" and "your trained mouse scored run 1:" in mouse.output
    assert "A random mouse scores -1.65" in mouse.output
    assert "check.run" not in mouse.output and "assert " not in mouse.output  # hidden: no test code shown


def test_cartpole_feedback_points_at_terminal_masking(graded):
    result = graded["bad_no_terminal_mask_notebook"][1]
    test = next(t for t in result.tests if t.name == "test_cartpole_agent")
    assert "must not bootstrap" in test.output and test.visibility == "after_published"
