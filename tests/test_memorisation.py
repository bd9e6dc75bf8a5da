"""A submission that memorises the course's data instead of learning scores nothing on the tests
that measure what a model learned.

The worker can import the digits (scikit-learn ships them), so the hidden autoencoder tests train
and evaluate on jittered copies drawn with a secret the worker cannot read
(grading_tests/autoencoder/test_hidden.py, assignments/autoencoder/data.py:jitter_digits). The
"model" below looks up the nearest of the 1797 course digits: before the copies it passed the
reconstruction, denoising and VAE tests (8 points); now it fails all three.

Likewise the segmentation training test evaluates on held-out scenes drawn with a secret seed
(grading_tests/segmentation/test_hidden.py:held_out_scenes), not on load_split()'s, which the
worker can import: a "U-Net" that returns the mask of the nearest course scene got a mean IoU of
1.0 on those (4 points); it now fails.

And the colorization training test trains and evaluates on crops of two photographs kept in
grading_tests/colorization/photos/ (test_hidden.py:load_grader_crops), not on load_crops()'s
tiles of scikit-learn's photos, which the worker can import: a `colorize` that returns the course
tile whose colours match the hints gets 0.00-0.04 of hint propagation's L1 on the course's held-out
crops (the test asks for at most 1.0 of it), and passed the test before; on the grader's crops it
gets 1.38-1.51, and the nearest of the training crops it is given 1.06-1.20: it now fails.

These submissions read no file of the grader's, so the sandbox mode does not matter: they are
graded in the strongest one.
"""

import textwrap

import pytest

from autograder.config import load_config
from autograder.grading import grade_submission
from autograder.templates import solution_path


def _grade_the_reference_with(assignment, appended, tmp_path):
    """Grade the reference solution with `appended` (the lookup) added at its end, as a student's file."""
    config = load_config(assignment)
    reference = solution_path(config)
    source = tmp_path / reference.name
    source.write_text(reference.read_text() + textwrap.dedent(appended))
    return grade_submission(config, source, tmp_path / "out", device="cpu")


LOOKUP_TABLE = '''

# -- Everything below replaces learning by a lookup in the course's data ---------------------------
from sklearn.datasets import load_digits as _load_digits

_COURSE_DIGITS = torch.tensor(_load_digits().data / 16.0, dtype=torch.float32)


class _Lookup(nn.Module):
    """The code is the index of the nearest course digit; decoding returns that digit."""

    def __init__(self, input_dim, latent_dim, hidden_dim=128):
        super().__init__()
        if latent_dim >= input_dim:
            raise ValueError("latent_dim must be smaller than input_dim")
        self.latent_dim = latent_dim
        self.encoder = nn.Identity()
        self.decoder = nn.Identity()

    def encode(self, x):
        index = torch.cdist(x.float().cpu(), _COURSE_DIGITS).argmin(dim=1)
        code = torch.zeros(len(x), self.latent_dim, device=x.device, dtype=x.dtype)
        code[:, 0] = index.to(code)
        return code

    def decode(self, z):
        index = z[:, 0].round().long().clamp(0, len(_COURSE_DIGITS) - 1).cpu()
        return _COURSE_DIGITS[index].to(device=z.device, dtype=z.dtype)


class Autoencoder(_Lookup):
    def forward(self, x):
        return self.decode(self.encode(x))


class VAE(_Lookup):
    def encode(self, x):
        mu = super().encode(x)
        return mu, torch.zeros_like(mu)

    def forward(self, x):
        mu, rho = self.encode(x)
        return self.decode(mu), mu, rho


def train_autoencoder(model, x_train, *, epochs=60, batch_size=64, lr=1e-3, noise_std=0.0, device="cpu"):
    model.eval()
    return [1.0 / (epoch + 1) for epoch in range(epochs)]


def train_vae(model, x_train, *, epochs=60, batch_size=64, lr=1e-3, kl_weight=1.0, device="cpu"):
    model.eval()
    return [1.0 / (epoch + 1) for epoch in range(epochs)]
'''

# The tests that measure what the model learned from its training data.
LEARNING_TESTS = ("test_training_reaches_pca_baseline", "test_denoising_beats_the_noisy_input", "test_vae_trains")


@pytest.mark.slow
def test_a_lookup_table_of_the_course_digits_scores_nothing_on_the_learning_tests(tmp_path):
    result = _grade_the_reference_with("autoencoder", LOOKUP_TABLE, tmp_path)
    tests = {t.name: t for t in result.tests}
    for name in LEARNING_TESTS:
        assert tests[name].status == "failed", f"{name}: {tests[name].status}\n{tests[name].output[-2000:]}"
    # The lookup is what it claims to be: it passes the structural test of the bottleneck (so the
    # failures above come from the data, not from a broken lookup) ...
    assert tests["test_decoder_only_sees_the_code"].status == "passed"
    # ... and nearest-neighbour distance is a sound anomaly score: that test grades anomaly_scores,
    # not learning, and the lookup passes it (README, "What is graded").
    assert tests["test_anomaly_scores_flag_out_of_distribution_inputs"].status == "passed"


SCENE_LOOKUP = '''

# -- Everything below replaces learning by a lookup in the course's scenes ---------------------------
from assignments.segmentation.data import load_split as _load_split

(_train_x, _train_y, _), (_test_x, _test_y, _) = _load_split()
_COURSE_X = torch.cat([_train_x, _test_x]).flatten(1)
_COURSE_Y = torch.cat([_train_y, _test_y])


class UNet(nn.Module):
    """Returns the one-hot mask of the nearest course scene, as logits."""

    def __init__(self, in_channels, num_classes, base_channels=64, depth=4):
        super().__init__()
        self.num_classes = num_classes
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        index = torch.cdist(x.flatten(1).float().cpu(), _COURSE_X).argmin(dim=1)
        mask = _COURSE_Y[index].to(x.device)
        return 10 * self.scale * F.one_hot(mask, self.num_classes).permute(0, 3, 1, 2).float()


def train_unet(model, images, masks, *, loss="ce", epochs=10, batch_size=16, lr=1e-3, weights=None, device="cpu"):
    model.to(device).eval()
    return [1.0 / (epoch + 1) for epoch in range(epochs)]
'''


@pytest.mark.slow
def test_a_lookup_of_the_course_scenes_fails_the_segmentation_training_test(tmp_path):
    result = _grade_the_reference_with("segmentation", SCENE_LOOKUP, tmp_path)
    test = next(t for t in result.tests if t.name == "test_training_reaches_miou")
    # It fails on the measure itself (the lookup runs and answers), not on a crash.
    assert test.status == "failed" and "held-out mean IoU" in test.output, f"{test.status}\n{test.output[-2000:]}"


TILE_LOOKUP = '''

# -- Everything below replaces learning by a lookup in the course's photo crops ----------------------
from assignments.colorization.data import load_crops as _load_crops

_COURSE_TILES = torch.cat(_load_crops())


def _nearest_tiles(hints, tiles=_COURSE_TILES):
    """For each hint map, the tile whose 4x4-pooled colours match the strokes best."""
    pooled = F.avg_pool2d(tiles, 4)  # (T, 3, 8, 8), the resolution of the hints
    colours, mask = hints[:, None, :3].cpu(), hints[:, None, 3:].cpu()  # (B, 1, ., 8, 8)
    distance = ((pooled[None] - colours).abs() * mask).sum(dim=(2, 3, 4))  # (B, T)
    return tiles[distance.argmin(dim=1)]


def train_colorizer(images, steps=400, batch_size=16, device="cpu", seed=0):
    return Generator().eval()


@torch.no_grad()
def colorize(generator, lineart, hints, refine_mask=None, tiles=_COURSE_TILES):
    return _nearest_tiles(hints, tiles).to(hints.device)
'''


def _course_tile_lookup():
    namespace = {}
    exec("import torch\nimport torch.nn.functional as F\nGenerator = None\n" + textwrap.dedent(TILE_LOOKUP), namespace)
    return namespace["colorize"]


def test_the_tile_lookup_finds_the_course_held_out_crops(hidden_tests):
    """What the lookup does on the course's held-out crops, which the hidden training test evaluated
    on until it moved to the grader's photos: far better than any model (the reference got 0.66-0.97
    of propagation's L1 there). This is why the course's crops are no test set."""
    import torch

    hidden = hidden_tests("colorization")
    from assignments.colorization.data import load_crops
    from assignments.colorization.models import hint_propagation_baseline

    held_out = load_crops()[1].repeat(hidden.HINT_DRAWS, 1, 1, 1)
    rng = torch.Generator().manual_seed(0)
    hints = torch.stack([hidden.grader_hints(image, 10, rng) for image in held_out])
    looked_up = _course_tile_lookup()(None, None, hints)
    l1 = (looked_up - held_out).abs().mean().item()
    l1_propagation = (hint_propagation_baseline(hints, (32, 32)) - held_out).abs().mean().item()
    assert l1 < 0.1 * l1_propagation, f"the lookup got {l1 / l1_propagation:.3f} of propagation's L1"


def test_lookups_are_behind_hint_propagation_on_the_grader_photos(hidden_tests):
    """On the held-out crops of the grader's photos, with the grader's hints of 10 seeds, looking up
    the course tile or the training crop whose colours match the hints is worse than hint
    propagation in L1, the test's first bar (measured 1.38-1.51 and 1.06-1.20 of it)."""
    import torch

    hidden = hidden_tests("colorization")
    from assignments.colorization.data import load_crops
    from assignments.colorization.models import hint_propagation_baseline

    train, held_out = hidden.load_grader_crops()
    assert train.shape == (98, 3, 32, 32) and held_out.shape == (20, 3, 32, 32)
    held_out = held_out.repeat(hidden.HINT_DRAWS, 1, 1, 1)
    lookup, course_tiles = _course_tile_lookup(), torch.cat(load_crops())
    for seed in range(10):
        rng = torch.Generator().manual_seed(seed)
        hints = torch.stack([hidden.grader_hints(image, 10, rng) for image in held_out])
        l1_propagation = (hint_propagation_baseline(hints, (32, 32)) - held_out).abs().mean().item()
        for tiles, name in ((course_tiles, "course tiles"), (train, "training crops")):
            looked_up = lookup(None, None, hints, tiles=tiles)
            ratio = (looked_up - held_out).abs().mean().item() / l1_propagation
            assert ratio > hidden.MAX_L1_OVER_PROPAGATION, f"hint seed {seed}, a lookup of the {name}: {ratio:.3f}"


@pytest.mark.slow
def test_a_lookup_of_the_course_crops_fails_the_colorization_training_test(tmp_path):
    result = _grade_the_reference_with("colorization", TILE_LOOKUP, tmp_path)
    test = next(t for t in result.tests if t.name == "test_training_beats_the_baselines")
    # It fails on the measure itself (the lookup runs and answers), not on a crash.
    assert test.status == "failed" and "held-out L1" in test.output, f"{test.status}\n{test.output[-2000:]}"
