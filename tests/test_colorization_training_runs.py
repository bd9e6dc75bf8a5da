"""The colorization training test's runs: a run that misses the bars is followed by another one
with another training seed, and one run must clear them all (grading_tests/colorization/
test_hidden.py, TRAINING_RUNS). A correct solution misses on some seeds (the independent notebook
in examples/colorization/correct/ did at seed 11), so one unlucky run must not cost its points,
while a submission that misses every time still gets none.

The hidden test function is called directly with a stand-in submission whose "training" is
instant: its colorize returns the true colours (clears the bars) or flat gray (misses them)
depending on the seed it was trained with. Seconds, no worker: what is tested is the test's
own logic; tests/test_examples.py grades real submissions through it."""

import math

import pytest
import torch

from assignments.colorization.data import load_crops

GRADING_SEED = 7


class StandIn:
    """train_colorizer records its seeds and returns the seed as the "generator"; colorize gives the
    held-out targets for a seed in `good_seeds`, `bad_output` (default: flat gray) for the others."""

    def __init__(self, hidden, good_seeds=(), bad_output=None):
        self.targets = load_crops()[1].repeat(hidden.HINT_DRAWS, 1, 1, 1)
        self.good_seeds, self.bad_output, self.seeds = set(good_seeds), bad_output, []

    def train_colorizer(self, images, steps=400, batch_size=16, device="cpu", seed=0):
        assert steps == 400 and len(images) == 100
        self.seeds.append(seed)
        return seed

    def colorize(self, generator, lineart, hints, refine_mask=None):
        if generator in self.good_seeds:
            return self.targets.clone()
        return self.bad_output(self.targets) if self.bad_output else torch.full_like(self.targets, 0.5)


def _run(hidden, stand_in):
    images = []
    hidden.test_training_beats_the_baselines(stand_in, load_crops(), GRADING_SEED,
                                             lambda title, grid, nrow: images.append(title))
    return images


def test_a_first_run_that_clears_the_bars_is_the_only_one(hidden_tests):
    hidden = hidden_tests("colorization")
    stand_in = StandIn(hidden, good_seeds={GRADING_SEED})
    images = _run(hidden, stand_in)
    assert stand_in.seeds == [GRADING_SEED]
    assert len(images) == 1 and f"training seed {GRADING_SEED}" in images[0]


def test_a_missed_first_run_is_followed_by_another_seed(hidden_tests):
    hidden = hidden_tests("colorization")
    assert hidden.TRAINING_RUNS >= 2
    second = hidden.training_seed(GRADING_SEED, 1)
    stand_in = StandIn(hidden, good_seeds={second})
    images = _run(hidden, stand_in)
    assert stand_in.seeds == [GRADING_SEED, second] and second != GRADING_SEED
    assert len(images) == 2  # the feedback shows the missed run and the one that cleared the bars


def test_missing_on_every_run_fails_and_says_what_each_run_missed(hidden_tests):
    hidden = hidden_tests("colorization")
    stand_in = StandIn(hidden)
    with pytest.raises(AssertionError) as failure:
        _run(hidden, stand_in)
    seeds = [hidden.training_seed(GRADING_SEED, run) for run in range(hidden.TRAINING_RUNS)]
    assert stand_in.seeds == seeds and len(set(seeds)) == len(seeds)
    message = str(failure.value)
    assert f"none of {hidden.TRAINING_RUNS} training runs" in message
    for run, seed in enumerate(seeds):
        assert f"run {run + 1} (training seed {seed})" in message
    assert "flat gray" in message  # flat gray output: no better than the flat-gray baseline


@pytest.mark.parametrize("bar", ["l1", "psnr"])
def test_each_bar_alone_fails_a_submission(hidden_tests, bar):
    """Colours that beat flat gray but miss only the L1 bar, or only the PSNR bar, on every run."""
    hidden = hidden_tests("colorization")

    def output(targets):
        if bar == "l1":  # far off everywhere: worse than propagation in L1
            return (targets + 0.3).clamp(0, 1) * 0.5 + 0.25
        # exact except one pixel in 16 pushed to the far end: L1 about half of propagation's, but
        # the squared errors put the PSNR below propagation's
        wrong = targets.clone()
        wrong[:, :, ::4, ::4] = (targets[:, :, ::4, ::4] < 0.5).float()
        return wrong

    stand_in = StandIn(hidden, bad_output=output)
    with pytest.raises(AssertionError) as failure:
        _run(hidden, stand_in)
    message = str(failure.value)
    assert ("spreading the hint colours" in message) if bar == "l1" else ("dB from hint propagation" in message)
    assert len(stand_in.seeds) == hidden.TRAINING_RUNS


def test_nan_colours_fail_at_once_without_another_run(hidden_tests):
    hidden = hidden_tests("colorization")
    stand_in = StandIn(hidden, bad_output=lambda targets: torch.full_like(targets, math.nan))
    with pytest.raises(AssertionError, match="NaN"):
        _run(hidden, stand_in)
    assert stand_in.seeds == [GRADING_SEED]
