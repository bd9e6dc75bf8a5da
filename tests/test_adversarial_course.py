"""The course side of the adversarial practical: the pinned classifier and its training script."""

import subprocess
import sys

import pytest
import torch

import assignments.adversarial.model as course_model
from assignments.adversarial.data import load_digit_images


def test_pinned_classifier_loads_and_is_accurate():
    model = course_model.load_classifier()
    assert not model.training
    _, _, x_test, y_test = load_digit_images()
    assert x_test.shape == (297, 1, 8, 8) and 0 <= x_test.min() and x_test.max() <= 1
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    assert accuracy == pytest.approx(course_model.CLEAN_TEST_ACCURACY, abs=1e-4)
    assert accuracy > 0.98  # attack success rates mean something only on an accurate model


def test_weights_that_are_not_the_pinned_ones_are_refused(monkeypatch):
    monkeypatch.setattr(course_model, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not the pinned classifier"):
        course_model.load_classifier()


def test_weights_load_without_unpickling_code(tmp_path):
    """The file holds tensors only: torch's weights_only loader accepts it."""
    state = torch.load(course_model.WEIGHTS, weights_only=True)
    assert set(state) == set(course_model.DigitsClassifier().state_dict())


@pytest.mark.slow
def test_training_script_reproduces_the_pinned_weights(tmp_path, check_reproduction):
    out = tmp_path / "c.pt"
    proc = subprocess.run([sys.executable, "-m", "assignments.adversarial.train_classifier", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_reproduction(out, course_model.WEIGHTS_SHA256, proc.stdout, "clean test accuracy",
                       course_model.CLEAN_TEST_ACCURACY, tolerance=0.01)
