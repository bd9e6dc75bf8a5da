"""The course side of the segmentation practical: the generated scenes (deterministic, disjoint
handwriting between splits, consistent masks and instances), the baselines the handout quotes,
and the grader's fixed probes."""

import torch

from assignments.segmentation.data import (DIGIT_SIDE, NUM_CLASSES, digit_images, fine_detail_task, fit_full_batch,
                                           load_split, make_scenes)


def test_scenes_are_deterministic_given_the_seed():
    a = make_scenes(20, seed=4)
    b = make_scenes(20, seed=4)
    c = make_scenes(20, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_split_shapes_ranges_and_consistency():
    (x_train, y_train, i_train), (x_test, y_test, i_test) = load_split()
    assert x_train.shape == (400, 1, 32, 32) and x_test.shape == (200, 1, 32, 32)
    assert y_train.shape == i_train.shape == (400, 32, 32) and y_test.dtype == i_test.dtype == torch.int64
    for x, y, inst in ((x_train, y_train, i_train), (x_test, y_test, i_test)):
        assert 0 <= x.min() and x.max() <= 1
        assert set(y.unique().tolist()) == set(range(NUM_CLASSES))
        assert torch.equal(y == 0, inst == 0)  # the instances cover exactly the digits' pixels
        for scene_mask, scene_inst in zip(y[:50], inst[:50]):
            for k in scene_inst.unique()[1:]:
                assert len(scene_mask[scene_inst == k].unique()) == 1  # one class per digit
                assert (scene_inst == k).sum() <= DIGIT_SIDE ** 2
    # every scene has one to three digits, and many have two or more (the weight map matters)
    counts = torch.tensor([len(s.unique()) - 1 for s in i_train])
    assert counts.min() >= 1 and counts.max() <= 3 and (counts >= 2).float().mean() > 0.4


def test_held_out_scenes_use_unseen_handwriting():
    for digit in (0, 1):
        train, test = digit_images(digit, "train"), digit_images(digit, "test")
        assert len(test) > 0.15 * (len(train) + len(test))
        assert not any(torch.equal(t, s) for t in test for s in train)


def test_baselines_quoted_in_the_handout():
    """Background everywhere: mIoU 0.307 on the held-out scenes; the best global intensity
    threshold cannot tell zeros from ones, nor faint ink from bright texture."""
    _, (x_test, y_test, _) = load_split()
    background = (y_test == 0).float().mean().item()
    assert 0.90 < background < 0.94
    miou_background = background / NUM_CLASSES  # IoU of background = its share; the digits score 0
    assert abs(miou_background - 0.307) < 0.005
    best = 0.0
    for threshold in torch.linspace(0.1, 0.9, 33):
        for label in (1, 2):
            pred = torch.where(x_test[:, 0] > threshold, label, 0)
            ious = []
            for c in range(NUM_CLASSES):
                union = ((pred == c) | (y_test == c)).sum()
                ious.append((((pred == c) & (y_test == c)).sum() / union).item())
            best = max(best, sum(ious) / NUM_CLASSES)
    assert best < 0.6  # far below the training test's 0.70


def test_fine_detail_probe_is_learnable_only_with_full_resolution():
    images, masks = fine_detail_task(8, size=16, seed=0)
    assert images.shape == (8, 1, 16, 16) and torch.equal(images[:, 0].long(), masks)
    assert 0.4 < images.mean() < 0.6

    class PixelCopier(torch.nn.Module):  # a 1x1 convolution: full resolution, learns the copy at once
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 1)

        def forward(self, x):
            return self.conv(x)

    torch.manual_seed(0)
    model = PixelCopier()
    loss = fit_full_batch(model, images, masks, steps=100, lr=0.1)
    assert loss < 0.1 and not model.training
    assert (model(images).argmax(dim=1) == masks).all()
