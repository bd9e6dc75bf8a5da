"""Every grading test of every assignment earns its points: the reference solution scores full
marks, the blank template zero, and each known-bad submission (examples/<assignment>/
mutants.toml) fails exactly the tests it lists, all through the real grading driver. The
assignments' own example files add what is particular to each (scores, feedback messages)."""

import pytest

from autograder.config import available_assignments, load_config
from autograder.examples import example_names, verdict

pytestmark = pytest.mark.slow

EXAMPLES = [(assignment, name) for assignment in available_assignments()
            for name in example_names(load_config(assignment))]


def test_every_assignment_has_known_bad_submissions():
    for assignment in available_assignments():
        assert len(example_names(load_config(assignment))) >= 2 + 5, f"{assignment}: fewer than 5 known-bad submissions"


@pytest.mark.parametrize("assignment, name", EXAMPLES, ids=[f"{a}-{n}" for a, n in EXAMPLES])
def test_example_gets_the_expected_verdict(graded_assignment, assignment, name):
    example, result = graded_assignment(assignment)[name]
    assert result.tests, f"{name}: no test ran ({result.error})"
    assert verdict(example, result) is None, verdict(example, result)
