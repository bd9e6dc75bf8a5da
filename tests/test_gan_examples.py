"""The GAN practical's examples (tests/test_examples.py checks their verdicts): the reference
(gan.py with its generator.pt) scores full marks and tops the leaderboard, and the ways of handing
in a checkpoint, right and wrong, get the verdicts and messages they should. Submissions are
folders or zips holding the script or notebook and the checkpoint."""

import io
import zipfile
from pathlib import Path

import pytest
import torch

from autograder.config import load_config
from autograder.examples import BLANK, REFERENCE, Example, verdict
from autograder.grading import grade_batch
from autograder.templates import solution_path

pytestmark = pytest.mark.slow

CONFIG = load_config("gan")
CHECKPOINT = solution_path(CONFIG).with_name("generator.pt")
CHECKPOINT_TESTS = ["test_checkpoint_fits_the_fixed_generator", "test_checkpoint_quality"]


def _extra_submissions(dest: Path) -> list[Example]:
    """Ways of handing in the checkpoint, right and wrong, beyond the mutants."""
    dest.mkdir(parents=True, exist_ok=True)
    solution = solution_path(CONFIG).read_text()
    state = torch.load(CHECKPOINT, weights_only=True)
    extras = []

    single = dest / "single_file_without_checkpoint.py"
    single.write_text(solution)
    extras.append(Example(single.stem, single, "gan.py alone", CHECKPOINT_TESTS))

    wrapped = dest / "zip_with_folder_and_dataparallel_prefix.zip"
    buffer = io.BytesIO()
    torch.save({f"module.{k}": v for k, v in state.items()}, buffer)
    with zipfile.ZipFile(wrapped, "w") as zf:
        zf.writestr("my_gan/gan.py", solution)
        zf.writestr("my_gan/generator.pt", buffer.getvalue())
    extras.append(Example(wrapped.stem, wrapped, "a zip wrapping a folder; keys saved from DataParallel", []))

    for name, payload in (("checkpoint_whole_module", "module"), ("untrained_generator", "untrained")):
        folder = dest / name
        folder.mkdir()
        (folder / "gan.py").write_text(solution)
        from assignments.gan.models import Generator

        torch.manual_seed(0)
        generator = Generator()
        torch.save(generator if payload == "module" else generator.state_dict(), folder / "generator.pt")
        expected = CHECKPOINT_TESTS if payload == "module" else ["test_checkpoint_quality"]
        extras.append(Example(name, folder, payload, expected))
    return extras


EXTRAS = ["single_file_without_checkpoint", "zip_with_folder_and_dataparallel_prefix", "checkpoint_whole_module",
          "untrained_generator"]


@pytest.fixture(scope="module")
def graded(graded_assignment, tmp_path_factory):
    """The standard examples (folders: gan.py + generator.pt) and the hand-in variants."""
    folder = tmp_path_factory.mktemp("examples-gan-extra")
    extras = _extra_submissions(folder / "submissions")
    results = grade_batch(CONFIG, [e.path for e in extras], folder / "results", device="cpu")
    return {**graded_assignment("gan"), **{e.name: (e, r) for e, r in zip(extras, results)}}


@pytest.mark.parametrize("name", EXTRAS)
def test_hand_in_variant_gets_the_expected_verdict(graded, name):
    example, result = graded[name]
    assert result.tests, f"{name}: no test ran ({result.error})"
    assert verdict(example, result) is None, verdict(example, result)


def test_reference_full_marks_blank_zero_and_leaderboard(graded):
    reference, blank = graded[REFERENCE][1], graded[BLANK][1]
    assert reference.score == reference.max_score == 36
    assert blank.score == 0 and blank.max_score == 36
    stubs = [t for t in blank.tests if t.name not in CHECKPOINT_TESTS]
    assert all("NotImplementedError" in t.output for t in stubs)
    for test in (t for t in blank.tests if t.name in CHECKPOINT_TESTS):
        assert "no generator.pt in the submission" in test.output and "Traceback" not in test.output


def test_quality_feedback_and_leaderboard(graded):
    reference = graded[REFERENCE][1]
    quality = next(t for t in reference.tests if t.name == "test_checkpoint_quality")
    assert "precision 0.7420, recall 0.8673, F-score 0.7998" in quality.output
    assert {e["name"]: e["value"] for e in reference.leaderboard} == {"precision": 0.742, "recall": 0.8673,
                                                                       "f_score": 0.7998}
    assert all(e["order"] == "desc" for e in reference.leaderboard)
    assert graded[BLANK][1].leaderboard == []  # nothing published without a checkpoint


def test_checkpoint_feedback_says_what_is_wrong(graded):
    def output(name, test="test_checkpoint_fits_the_fixed_generator"):
        return next(t.output for t in graded[name][1].tests if t.name == test)

    other = output("bad_checkpoint_other_architecture")
    assert "does not fit the fixed generator" in other
    assert "net.0.weight: (256, 100) instead of (128, 100)" in other and "net.4.weight: (64, 512) instead of (64, 256)" in other
    assert "weights_only=True" in output("checkpoint_whole_module")
    assert "not the module itself" in output("checkpoint_whole_module")
    assert "no generator.pt in the submission" in output("single_file_without_checkpoint")
    untrained = output("untrained_generator", "test_checkpoint_quality")
    assert "F-score 0.0000" in untrained and "earns no points" in untrained
