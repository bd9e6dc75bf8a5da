"""The training tests that retry: in colorization and segmentation a run that misses the bar is
followed by another one with another seed, and one of up to TRAINING_RUNS runs must reach it
(grading_tests/<assignment>/test_hidden.py). Correct solutions written from the handout miss on
some seeds (the independent notebooks in examples/<assignment>/correct/: colorization at seed 11,
segmentation at seed 9), so one unlucky run must not cost their points, while a submission that
misses every time still gets none.

The hidden test functions are called directly with a stand-in submission whose "training" is
instant and whose results depend on the seed of the run. Seconds, no worker: what is tested is
the tests' own logic; tests/test_examples.py grades real submissions through them."""

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


# -- Segmentation: reseeded runs, and no retry for a run that learned nothing ---------------------

class SegmentationStandIn:
    """UNet(...) is a one-parameter module that returns, for the held-out scenes, logits of masks
    chosen by `quality(run)`: "good" (the true masks), "one class lost" (the 7s labelled
    background: mean IoU about 0.6, a miss worth retrying) or "background" (everything background:
    about 0.3, below the intensity threshold). The run is known from the reseeding the test does
    through the worker stand-in."""

    def __init__(self, scenes, quality):
        (_, _, _), (self.x_test, self.y_test, _) = scenes
        self.quality, self.run = quality, 0

    def UNet(self, in_channels, num_classes, base_channels=64, depth=4):
        stand_in = self

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = torch.nn.Parameter(torch.ones(()))

            def forward(self, x):
                masks = stand_in.y_test.clone()
                kind = stand_in.quality(stand_in.run)
                if kind == "one class lost":
                    masks[masks == 2] = 0
                elif kind == "background":
                    masks.zero_()
                return torch.nn.functional.one_hot(masks, num_classes).permute(0, 3, 1, 2).float() * self.scale

        return Model()

    def train_unet(self, model, images, masks, loss="ce", epochs=6, batch_size=16, lr=1e-3, device="cpu"):
        return [1.0 / (epoch + 1) for epoch in range(epochs)]


class WorkerStandIn:
    def __init__(self, stand_in):
        self.stand_in, self.seeds = stand_in, []

    def set_seed(self, seed):
        self.seeds.append(seed)
        self.stand_in.run += 1


@pytest.fixture(scope="module")
def segmentation_scenes(hidden_tests):
    hidden = hidden_tests("segmentation")
    from assignments.segmentation.data import load_split

    train, _ = load_split(n_test=0)
    return train, hidden.held_out_scenes(GRADING_SEED, n=40)


def _run_segmentation(hidden, scenes, quality):
    stand_in = SegmentationStandIn(scenes, quality)
    worker = WorkerStandIn(stand_in)
    images = []
    try:
        hidden.test_training_reaches_miou(stand_in, worker, torch.device("cpu"), scenes, GRADING_SEED,
                                          lambda title, grid, nrow: images.append(title))
        return worker.seeds, images, None
    except AssertionError as failure:
        return worker.seeds, images, str(failure)


def test_segmentation_a_good_first_run_is_the_only_one(hidden_tests, segmentation_scenes):
    seeds, images, failure = _run_segmentation(hidden_tests("segmentation"), segmentation_scenes, lambda run: "good")
    assert failure is None and seeds == [] and len(images) == 1


def test_segmentation_a_lost_class_is_retried_with_a_reseeded_run(hidden_tests, segmentation_scenes):
    hidden = hidden_tests("segmentation")
    quality = lambda run: "one class lost" if run == 0 else "good"  # noqa: E731
    seeds, images, failure = _run_segmentation(hidden, segmentation_scenes, quality)
    assert failure is None
    assert seeds == [hidden.training_seed(GRADING_SEED, 1)] and seeds[0] != GRADING_SEED
    assert len(images) == 2


def test_segmentation_missing_every_run_fails_with_each_run_in_the_message(hidden_tests, segmentation_scenes):
    hidden = hidden_tests("segmentation")
    seeds, _, failure = _run_segmentation(hidden, segmentation_scenes, lambda run: "one class lost")
    assert failure is not None and failure.count("held-out mean IoU") == hidden.TRAINING_RUNS
    assert seeds == [hidden.training_seed(GRADING_SEED, run) for run in range(1, hidden.TRAINING_RUNS)]


def test_segmentation_a_run_below_the_intensity_threshold_is_not_retried(hidden_tests, segmentation_scenes):
    hidden = hidden_tests("segmentation")
    seeds, _, failure = _run_segmentation(hidden, segmentation_scenes, lambda run: "background" if run == 0 else "good")
    assert failure is not None and "is not retried" in failure and seeds == []
