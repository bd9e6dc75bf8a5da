"""Public tests of the segmentation practical: students get this file and run it with `pytest`.

The grader runs the same tests (and hidden ones) with your code in a separate process: `sub` is
your module, `device` the device the grader chose, and what your functions return comes back as
plain values.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from assignments.segmentation.data import NUM_CLASSES, make_scenes
from autograder.checks import expect_close, expect_raises, expect_scalar_close, expect_tensor
from autograder.errors import StudentCodeError


def six_binary_cases() -> tuple[torch.Tensor, torch.Tensor]:
    """Six 4x4 binary (prediction, target) pairs: empty/full, left/right halves, empty/empty,
    full/full, left/left, top-left quarter/left half. With eps, their Dice coefficient is
    [0, 0, 1, 1, 1, 2/3] (empty/empty: eps / eps = 1); without eps, as in the metrics, empty/empty
    has no score (NaN) and the IoU is [0, 0, NaN, 1, 1, 1/2]."""
    empty, full = torch.zeros(4, 4), torch.ones(4, 4)
    left, right = full.clone(), full.clone()
    left[:, 2:], right[:, :2] = 0, 0
    top_left = left.clone()
    top_left[2:] = 0
    pairs = [(empty, full), (left, right), (empty, empty), (full, full), (left, left), (top_left, left)]
    return torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs])


@pytest.mark.points(2)
@pytest.mark.public
def test_blocks_keep_or_change_the_resolution(sub):
    """DoubleConv keeps H and W, Down halves them, Up(x, skip) doubles x's and returns
    out_channels maps at the skip's resolution."""
    x = torch.rand(2, 3, 16, 12)
    expect_tensor(sub.DoubleConv(3, 8)(x), "DoubleConv(3, 8) of (2, 3, 16, 12)", shape=(2, 8, 16, 12))
    expect_tensor(sub.Down(3, 8)(x), "Down(3, 8) of (2, 3, 16, 12)", shape=(2, 8, 8, 6))
    up = sub.Up(16, 8)
    expect_tensor(up(torch.rand(2, 16, 4, 6), torch.rand(2, 8, 8, 12)), "Up(16, 8)(x (2, 16, 4, 6), skip (2, 8, 8, 12))",
                  shape=(2, 8, 8, 12))


@pytest.mark.points(2)
@pytest.mark.public
def test_unet_output_shape_for_several_sizes_and_depths(sub):
    """UNet(in_channels, num_classes, base_channels, depth) maps (B, in, H, W) to logits
    (B, num_classes, H, W) whenever H and W are divisible by 2 ** depth, and raises ValueError
    otherwise."""
    for in_channels, classes, base, depth, (height, width) in ((1, 3, 8, 1, (6, 10)), (1, 3, 8, 2, (32, 32)),
                                                               (3, 5, 4, 3, (16, 24)), (1, 2, 4, 4, (16, 48))):
        model = sub.UNet(in_channels, classes, base_channels=base, depth=depth)
        model.eval()
        expect_tensor(model(torch.rand(2, in_channels, height, width)),
                      f"UNet({in_channels}, {classes}, base_channels={base}, depth={depth}) of (2, {in_channels}, "
                      f"{height}, {width})", shape=(2, classes, height, width))
    model = sub.UNet(1, 3, base_channels=4, depth=3)
    expect_raises("ValueError", lambda: model(torch.rand(1, 1, 20, 16)), "UNet(depth=3) of a 20x16 image")
    expect_raises("ValueError", lambda: model(torch.rand(1, 1, 16, 20)), "UNet(depth=3) of a 16x20 image")


@pytest.mark.points(2)
@pytest.mark.public
def test_cross_entropy_matches_torch(sub):
    """cross_entropy_loss(logits, target) equals F.cross_entropy: softmax over the classes
    (dimension 1), mean over all pixels."""
    logits = torch.randn(2, 3, 5, 7)
    target = torch.randint(0, 3, (2, 5, 7))
    expect_scalar_close(sub.cross_entropy_loss(logits, target), F.cross_entropy(logits, target).item(),
                        "cross_entropy_loss on random logits", rtol=1e-5,
                        hint="log_softmax over dimension 1 (the classes), pick the target's entry, average.")


@pytest.mark.points(2)
@pytest.mark.public
def test_dice_coefficient_on_hand_computable_masks(sub):
    """dice_coefficient on six 4x4 binary cases (one per batch, one class) gives
    [0, 0, 1, 1, 1, 2/3]; in particular empty vs empty gives 1 (eps / eps)."""
    pred, target = six_binary_cases()
    expected = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 2 / 3])
    got = torch.stack([expect_tensor(sub.dice_coefficient(p[None, None], t[None, None]),
                                     f"dice_coefficient of case {i}", shape=(1,))[0] for i, (p, t) in
                       enumerate(zip(pred, target))])
    expect_close(got, expected, "dice_coefficient of [empty/full, left/right, empty/empty, full/full, left/left, "
                 "top-left/left]", atol=1e-5,
                 hint="Expected D = (2 sum(y * y_hat) + eps) / (sum(y) + sum(y_hat) + eps).",
                 known_mistakes={"leaving out the factor 2 of the numerator": torch.tensor([0.0, 0.0, 1.0, 0.5, 0.5, 1 / 3])})


@pytest.mark.points(2)
@pytest.mark.public
def test_metrics_on_hand_computable_masks(sub):
    """iou_per_class and dice_per_class of the six 4x4 cases (classes 0 and 1): for class 1,
    IoU [0, 0, NaN, 1, 1, 1/2] and Dice [0, 0, NaN, 1, 1, 2/3] (NaN: absent from both); the
    means skip NaN."""
    pred, target = (t.long() for t in six_binary_cases())
    expected_iou = [0.0, 0.0, math.nan, 1.0, 1.0, 0.5]
    expected_dice = [0.0, 0.0, math.nan, 1.0, 1.0, 2 / 3]
    for i in range(6):
        iou = expect_tensor(sub.iou_per_class(pred[i:i + 1], target[i:i + 1], 2), f"iou_per_class of case {i}",
                            shape=(2,), finite=False)
        dice = expect_tensor(sub.dice_per_class(pred[i:i + 1], target[i:i + 1], 2), f"dice_per_class of case {i}",
                             shape=(2,), finite=False)
        for name, got, want in (("IoU", iou[1].item(), expected_iou[i]), ("Dice", dice[1].item(), expected_dice[i])):
            ok = math.isnan(got) if math.isnan(want) else abs(got - want) < 1e-5
            assert ok, f"case {i}: the {name} of class 1 is {got}, expected {want} (NaN when the class is absent from both)."
    expect_scalar_close(sub.mean_iou(pred[2:3], target[2:3], 2), 1.0, "mean_iou of empty vs empty",
                        hint="Class 1 has no score (NaN); the mean is over the classes that have one.",
                        known_mistakes={"counting class 1, absent from both, as 0 in the mean": 0.5})
    expect_scalar_close(sub.mean_dice(pred[5:6], target[5:6], 2), (2 / 3 + 0.8) / 2, "mean_dice of top-left vs left")


@pytest.mark.points(2)
@pytest.mark.public
def test_training_runs_on_the_device_it_is_given(sub, device):
    """train_unet(..., device="cpu") trains and leaves the model on the CPU, whatever the machine
    has: no hard-coded .cuda(). One epoch on 16 scenes returns one finite loss."""
    images, masks, _ = make_scenes(16, seed=3)
    for wanted in dict.fromkeys(["cpu", device.type]):
        model = sub.UNet(1, NUM_CLASSES, base_channels=4, depth=2)
        try:
            losses = sub.train_unet(model, images, masks, epochs=1, batch_size=8, device=wanted)
        except StudentCodeError as exc:
            text = f"{exc.type_name} {exc.message}".lower()
            if "cuda" in text or "nvidia" in text:
                raise AssertionError(
                    f"train_unet(..., device='{wanted}') tried to use CUDA ({exc.type_name}: {exc.message}). "
                    "Never hard-code .cuda(): move the model and each batch with .to(device).") from None
            raise
        assert isinstance(losses, list) and len(losses) == 1 and math.isfinite(losses[0]), (
            f"one epoch should give a list of one finite loss, got {losses!r}.")
        devices = {p.device.type for p in model.parameters()}
        assert devices == {wanted}, (
            f"after train_unet(..., device='{wanted}') the model's parameters are on {sorted(devices)}: "
            "move the model with model.to(device), never .cuda().")
