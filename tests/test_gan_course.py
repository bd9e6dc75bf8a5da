"""The course side of the GAN practical: the reference precision/recall (validated against prdc
and torch-fidelity), the pinned feature network, the checkpoint checks at the trust boundary,
the reference generator and the scripts that produce them."""

import contextlib
import hashlib
import io
import subprocess
import sys

import pytest
import torch

import assignments.gan.metric as metric
import assignments.gan.models as models
from assignments.gan.checkpoint import (SCORE_CURVE, CheckpointError, clean_state_dict, load_generator,
                                        points_fraction, read_state_dict, score)
from assignments.gan.data import load_digits_pm1
from autograder.config import load_config
from autograder.templates import solution_path

REFERENCE_CHECKPOINT = solution_path(load_config("gan")).with_name("generator.pt")
REFERENCE_SHA256 = "021a16f3e0f338f82081afdc284249f38aff4027ae045ad89f6c0f6526169024"


def _prdc(real, fake, k):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):
        out = compute_prdc(real.numpy(), fake.numpy(), k)
    return float(out["precision"]), float(out["recall"])


def _fidelity(real, fake, k):
    from torch_fidelity.metric_prc import prc_features_to_metric

    out = prc_features_to_metric(fake, real, prc_neighborhood=k, verbose=False)  # (generated, real)
    return out["precision"], out["recall"]


def _continuous_sets():
    g = torch.Generator().manual_seed(3)
    centers = 5 * torch.randn(8, 16, generator=g)
    return [
        (torch.randn(600, 64, generator=g), 1.1 * torch.randn(900, 64, generator=g) + 0.1, 3),
        (torch.randn(1000, 8, generator=g), 0.6 * torch.randn(400, 8, generator=g) + 0.3, 5),
        (centers[torch.arange(700) % 8] + torch.randn(700, 16, generator=g),
         centers[torch.arange(500) % 4] + 0.8 * torch.randn(500, 16, generator=g) + 0.2, 3),
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_metric_equals_prdc_and_torch_fidelity_on_continuous_features(dtype):
    for real, fake, k in _continuous_sets():
        real, fake = real.to(dtype), fake.to(dtype)
        ours = metric.precision_recall(real, fake, k)
        assert ours == pytest.approx(_prdc(real, fake, k), abs=1e-12)
        assert ours == pytest.approx(_fidelity(real, fake, k), abs=1e-6)  # torch-fidelity returns float32 means
        assert any(0.05 < v < 0.99 for v in ours)  # informative sets, not saturated


def test_ties_follow_torch_fidelity_and_differ_from_prdc_strict_inequality():
    """Digit pixels are on a 1/8 grid: exact ties. The reference counts them inside (<=), as
    torch-fidelity does; prdc (<) counts them outside."""
    x_train, _, x_test, _ = load_digits_pm1()
    ours = metric.precision_recall(x_train, x_test, 3)
    assert ours == pytest.approx(_fidelity(x_train, x_test, 3), abs=1e-6)
    assert ours == pytest.approx((271 / 297, 1414 / 1500), abs=1e-12)
    prdc_p, prdc_r = _prdc(x_train, x_test, 3)
    assert prdc_p == pytest.approx(270 / 297) and ours[0] > prdc_p  # one test digit sits exactly on a boundary


def test_blocks_do_not_change_the_result(monkeypatch):
    real, fake, k = _continuous_sets()[0]
    whole = metric.precision_recall(real, fake, k)
    monkeypatch.setattr(metric, "BLOCK_ELEMENTS", 5000)  # blocks of 5-8 rows
    assert metric.precision_recall(real, fake, k) == whole


def test_radius_excludes_the_sample_but_not_its_duplicates():
    x = torch.tensor([[0.0], [0.0], [1.0], [3.0], [7.0]])
    assert metric.knn_radii(x, 1).tolist() == [0.0, 0.0, 1.0, 2.0, 4.0]
    assert metric.knn_radii(x, 2).tolist() == [1.0, 1.0, 1.0, 3.0, 6.0]
    with pytest.raises(ValueError):
        metric.knn_radii(x, 5)


def test_invariants_of_the_reference():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(800, 16, generator=g)
    assert metric.precision_recall(x, x.clone()) == (1.0, 1.0)
    assert metric.precision_recall(x, x + 100) == (0.0, 0.0)
    a, b = torch.randn(300, 4, generator=g), 1.5 * torch.randn(500, 4, generator=g)
    p_ab, r_ab = metric.precision_recall(a, b)
    p_ba, r_ba = metric.precision_recall(b, a)
    assert (p_ab, r_ab) == (r_ba, p_ba)
    assert metric.f_score(0.0, 0.0) == 0.0 and metric.f_score(0.5, 1.0) == pytest.approx(2 / 3)


@pytest.mark.cuda
def test_reference_metric_on_gpu_equals_cpu():
    real, fake, k = _continuous_sets()[0]
    real, fake = real.double(), fake.double()
    assert metric.precision_recall(real.cuda(), fake.cuda(), k) == metric.precision_recall(real, fake, k)


def test_benchmark_script_prints_the_table():
    proc = subprocess.run([sys.executable, "-m", "assignments.gan.benchmark_metric", "--n", "2000", "--repeat", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "| reference (torch) | cpu" in proc.stdout and "| prdc 0.2" in proc.stdout
    assert "same precision and recall: True" in proc.stdout


# -- the pinned feature network ------------------------------------------------------------------

def test_pinned_feature_network_loads_and_is_accurate():
    net = models.load_feature_net()
    assert not net.training
    _, _, x_test, y_test = load_digits_pm1()
    with torch.no_grad():
        accuracy = (net(x_test).argmax(dim=1) == y_test).float().mean().item()
        features = net.features(x_test)
    assert accuracy == pytest.approx(models.FEATURE_TEST_ACCURACY, abs=1e-4) and accuracy > 0.97
    assert features.shape == (297, models.FEATURE_DIM)
    assert set(torch.load(models.FEATURE_WEIGHTS, weights_only=True)) == set(models.FeatureNet().state_dict())


def test_feature_weights_that_are_not_pinned_are_refused(monkeypatch):
    monkeypatch.setattr(models, "FEATURE_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not the pinned feature network"):
        models.load_feature_net()


def test_feature_training_script_reproduces_the_pinned_weights(tmp_path, check_reproduction):
    out = tmp_path / "f.pt"
    proc = subprocess.run([sys.executable, "-m", "assignments.gan.train_features", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_reproduction(out, models.FEATURE_WEIGHTS_SHA256, proc.stdout, "test accuracy",
                       models.FEATURE_TEST_ACCURACY, tolerance=0.01)


# -- the checkpoint at the trust boundary ----------------------------------------------------------

@pytest.fixture
def good_state():
    torch.manual_seed(0)
    return models.Generator().state_dict()


def test_clean_state_dict_accepts_the_fixed_generator_and_dataparallel_keys(good_state):
    for state in (dict(good_state), {f"module.{k}": v.double() for k, v in good_state.items()}):
        cleaned = clean_state_dict(state)
        assert list(cleaned) == list(good_state)
        assert all(v.dtype == torch.float32 and torch.equal(v, good_state[k]) for k, v in cleaned.items())
        load_generator(cleaned)


@pytest.mark.parametrize("change, message", [
    (lambda s: [1, 2], "should be a state dict"),
    (lambda s: {**s, "net.0.weight": [[0.0]]}, "should map parameter names to tensors"),
    (lambda s: {**s, 3: torch.zeros(1)}, "should map parameter names to tensors"),
    (lambda s: {k: v for k, v in s.items() if k != "net.4.bias"}, "missing net.4.bias"),
    (lambda s: {**s, "net.6.weight": torch.zeros(2)}, "unexpected net.6.weight"),
    (lambda s: {**s, "net.0.weight": torch.zeros(256, 100)}, "net.0.weight: (256, 100) instead of (128, 100)"),
    (lambda s: {**s, "net.0.bias": torch.full((128,), float("nan"))}, "NaN or infinite"),
    (lambda s: {**s, "net.0.bias": torch.zeros(128, dtype=torch.int64)}, "dtype torch.int64"),
    (lambda s: {**s, "huge": torch.zeros(2_000_000)}, "far larger"),
    (lambda s: {**s, "module.net.0.bias": s["net.0.bias"]}, "appears twice"),
])
def test_clean_state_dict_refuses_with_a_clear_message(good_state, change, message):
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        clean_state_dict(change(dict(good_state)))


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_read_state_dict_never_runs_pickled_code(tmp_path, capsys):
    path = tmp_path / "generator.pt"
    torch.save({"net.0.weight": _Exploit()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        read_state_dict(str(path))
    assert "pwned" not in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no generator.pt in the submission"):
        read_state_dict(str(tmp_path / "missing" / "generator.pt"))
    torch.save(models.Generator(), path)  # the whole module, not its state dict
    with pytest.raises(ValueError, match="not the module itself"):
        read_state_dict(str(path))
    (tmp_path / "big.pt").write_bytes(b"0" * (9 * 1024 * 1024))
    with pytest.raises(ValueError, match="Save generator.state_dict\\(\\) only"):
        read_state_dict(str(tmp_path / "big.pt"))


# -- the reference generator and the score curve ---------------------------------------------------

def test_reference_checkpoint_is_pinned_small_and_not_given_to_students():
    from autograder.templates import template_dir

    data = REFERENCE_CHECKPOINT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == REFERENCE_SHA256 and len(data) < 300_000
    assert not list(template_dir(load_config("gan")).rglob("*.pt"))


def test_student_bundle_has_the_feature_weights_but_no_generator(tmp_path):
    import zipfile

    from autograder.templates import build_student_bundle

    names = zipfile.ZipFile(build_student_bundle(load_config("gan"), tmp_path / "gan.zip")).namelist()
    assert "gan/assignments/gan/features_digits.pt" in names
    assert not [n for n in names if n.endswith("generator.pt")]


def test_score_curve_calibration():
    """The reference checkpoint earns full points for the grading seed and 10 other sampling seeds
    (F-score 0.7716-0.7998, the curve is full from 0.70), an untrained generator none (F 0.0)."""
    reference = load_generator(clean_state_dict(read_state_dict(str(REFERENCE_CHECKPOINT))))
    seed = load_config("gan").seed
    f_scores = [score(reference, s)["f_score"] for s in [seed, *range(10)]]
    assert f_scores[0] == pytest.approx(0.7998, abs=1e-4)
    assert min(f_scores) >= 0.77 and max(f_scores) <= 0.81, f_scores
    assert min(f_scores) >= SCORE_CURVE[-1][0] + 0.05  # margin above full points
    torch.manual_seed(0)
    assert score(models.Generator().eval(), seed)["f_score"] == 0.0
    assert [points_fraction(f) for f in (0.0, 0.30, 0.50, 0.70, 0.95)] == pytest.approx([0, 0, 0.5, 1, 1])


def test_pixel_space_is_an_option():
    reference = load_generator(clean_state_dict(read_state_dict(str(REFERENCE_CHECKPOINT))))
    pixels = score(reference, load_config("gan").seed, space="pixels")
    assert 0.5 < pixels["precision"] < 0.9 and 0.4 < pixels["recall"] < 0.9


def test_checkpoint_command_scores_like_the_grader(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "assignments.gan.checkpoint", str(REFERENCE_CHECKPOINT)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "precision 0.7420, recall 0.8673, F-score 0.7998 (seed 2027); 100% of the checkpoint's points" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "assignments.gan.checkpoint", str(tmp_path / "generator.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "no generator.pt in the submission" in proc.stdout


@pytest.mark.slow
def test_training_script_reproduces_the_reference_checkpoint(tmp_path, check_reproduction):
    """The reference generator.pt is what the course script makes of the solution's losses (about
    a minute on one thread), byte for byte."""
    out = tmp_path / "generator.pt"
    proc = subprocess.run([sys.executable, "-m", "assignments.gan.train_generator", str(solution_path(load_config("gan"))),
                           "--out", str(out), "--log-every", "0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_reproduction(out, REFERENCE_SHA256, proc.stdout, "F-score", 0.7998, tolerance=0.03)
