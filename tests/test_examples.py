"""Every grading test of every assignment earns its points: the reference solution scores full
marks, the blank template zero, each known-bad submission (examples/<assignment>/
mutants.toml) fails exactly the tests it lists, and each correct solution written independently
from the handout (examples/<assignment>/correct/) scores full marks, all through the real
grading driver. The
assignments' own example files add what is particular to each (scores, feedback messages)."""

import pytest

from autograder.config import available_assignments, load_config
from autograder.examples import example_names, independent_solutions, mutants, verdict

pytestmark = pytest.mark.slow

EXAMPLES = [(assignment, name) for assignment in available_assignments()
            for name in example_names(load_config(assignment))]


def test_every_assignment_has_known_bad_and_independent_correct_submissions():
    for assignment in available_assignments():
        config = load_config(assignment)
        assert len(mutants(config)) >= 5, f"{assignment}: fewer than 5 known-bad submissions"
        correct = independent_solutions(config)
        assert len(correct) >= 3, f"{assignment}: fewer than 3 independently written correct solutions"
        assert any(p.suffix == ".ipynb" or any(p.glob("*.ipynb")) for p in correct), f"{assignment}: no notebook"


@pytest.mark.parametrize("assignment, name", EXAMPLES, ids=[f"{a}-{n}" for a, n in EXAMPLES])
def test_example_gets_the_expected_verdict(graded_assignment, assignment, name):
    example, result = graded_assignment(assignment)[name]
    assert result.tests, f"{name}: no test ran ({result.error})"
    assert verdict(example, result) is None, verdict(example, result)
