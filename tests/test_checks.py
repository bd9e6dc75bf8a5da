"""The assertion helpers grading tests use: they fail with messages that say what was expected."""

import pytest
import torch

from autograder.checks import expect_parameter_grads


def test_parameter_grads_match_within_tolerance():
    want = {"w": torch.tensor([1.0, 2.0]), "b": None}
    expect_parameter_grads({"w": torch.tensor([1.0, 2.0 + 1e-9]), "b": None}, want, "the loss")
    expect_parameter_grads({"w": torch.tensor([1.0, 2.0]), "b": torch.zeros(1)}, want, "the loss")


@pytest.mark.parametrize("actual, message", [
    ({"w": None}, "the loss does not depend on the parameter w. Use create_graph"),
    ({"w": torch.tensor([1.0, 3.0])}, "d the loss / d w is not what was expected"),
    ({"w": torch.tensor([1.0, 2.0]), "b": torch.ones(1)}, "d the loss / d b should be zero"),
])
def test_parameter_grads_fail_with_a_clear_message(actual, message):
    want = {"w": torch.tensor([1.0, 2.0]), "b": None}
    with pytest.raises(AssertionError, match=message.replace(".", r"\.")):
        expect_parameter_grads(actual, want, "the loss", missing_hint="Use create_graph")
