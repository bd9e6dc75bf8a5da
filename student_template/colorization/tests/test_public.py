"""Public tests of the colorization practical: students get this file and run it with `pytest`.

The grader runs the same tests (and hidden ones) with your code in a separate process: `sub` is
your module, and what your functions return comes back as plain values.
"""

import pytest
import torch

from autograder.checks import expect_close, expect_scalar_close, expect_tensor


def square_image(size: int = 32) -> torch.Tensor:
    """A light-gray page with a dark square in the middle: edges along the square only."""
    image = torch.full((size, size), 0.8)
    image[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 0.2
    return image


@pytest.mark.points(2)
@pytest.mark.public
def test_xdog_is_binary_with_dark_lines_on_edges(sub):
    """xdog gives a binary (H, W) image: 0 (ink) along the square's edges, 1 (paper) in flat
    areas far from them; a flat image is blank paper."""
    lineart = expect_tensor(sub.xdog(square_image()), "xdog(image of shape (32, 32))", shape=(32, 32))
    values = set(lineart.unique().tolist())
    assert values <= {0.0, 1.0}, f"xdog must return only 0 and 1 (after Otsu's threshold); got values like {sorted(values)[:5]}."
    assert lineart[:4, :4].min() == 1 and lineart[14:18, 14:18].min() == 1, (
        "flat areas (the corners of the page, the middle of the square) must be paper (1).")
    border = torch.cat([lineart[6:10, 8:24].flatten(), lineart[8:24, 6:10].flatten()])
    assert (border == 0).any(), "no ink (0) along the square's edges: lines must be dark on white."
    flat = expect_tensor(sub.xdog(torch.full((16, 16), 0.5)), "xdog(flat image)", shape=(16, 16))
    assert flat.min() == 1, "a flat image has no edge: its lineart is all paper (1)."


@pytest.mark.points(2)
@pytest.mark.public
def test_hints_shapes_and_colours(sub):
    """simulate_hints(image, n, seed) is (4, H/4, W/4): stroke colours where the mask is 1
    (the image's colour), 0 elsewhere; no stroke gives an empty hint."""
    colour = torch.tensor([0.9, 0.3, 0.1])
    image = colour.view(3, 1, 1).expand(3, 32, 32).clone()
    hints = expect_tensor(sub.simulate_hints(image, 6, 0),
                          "simulate_hints(image 3x32x32, 6 strokes)", shape=(4, 8, 8))
    mask = hints[3]
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() >= 1, "the mask channel holds 1 on strokes, 0 elsewhere."
    on, off = mask == 1, mask == 0
    expect_close(hints[:3][:, on], colour[:, None].expand(3, int(on.sum())), "stroke colours on a one-colour image")
    assert (hints[:3][:, off] == 0).all(), "colour channels must be 0 wherever the mask is 0."
    empty = expect_tensor(sub.simulate_hints(image, 0, 0), "simulate_hints(image, 0)",
                          shape=(4, 8, 8))
    assert (empty == 0).all(), "with no stroke, the hints are all zeros."


@pytest.mark.points(1)
@pytest.mark.public
def test_composite(sub):
    """composite = illustration * (1 - m) + lineart * m, the lineart broadcast over RGB."""
    illustration, lineart = torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    expect_close(sub.composite(illustration, lineart, mask), illustration * (1 - mask) + lineart * mask,
                 "composite(illustration, lineart, mask)")


@pytest.mark.points(2)
@pytest.mark.public
def test_generator_shapes_and_range(sub, device):
    """Generator() maps lineart (B, 1, H, W) and hints (B, 4, H/4, W/4), with or without a
    composite and a mask, to colours (B, 3, H, W) in [0, 1]."""
    generator = sub.Generator()
    generator.to(device)
    for size in (32, 16):
        lineart = torch.rand(2, 1, size, size, device=device)
        hints = torch.rand(2, 4, size // 4, size // 4, device=device)
        out = expect_tensor(generator(lineart, hints), f"Generator()(lineart, hints) at {size}x{size}",
                            shape=(2, 3, size, size))
        assert out.min() >= 0 and out.max() <= 1, "the generator's colours must lie in [0, 1] (end with a Sigmoid)."
        mask = torch.ones(2, 1, size, size, device=device)
        expect_tensor(generator(lineart, hints, torch.rand(2, 3, size, size, device=device), mask),
                      "Generator()(lineart, hints, composite, mask)", shape=(2, 3, size, size))


@pytest.mark.points(1)
@pytest.mark.public
def test_generator_loss_value(sub, worker):
    """generator_loss = -E[C(fake)] + l1_weight * mean |fake - target| (here with C(x) = ||x||^2 / 2)."""
    critic = worker.import_course("assignments.colorization.models", "QuadraticCritic")()
    fake, target = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    expected = -(0.5 * (fake ** 2).flatten(1).sum(1)).mean() + 100 * (fake - target).abs().mean()
    expect_scalar_close(sub.generator_loss(critic, fake, target), expected.item(), "generator_loss(critic, fake, target)",
                        rtol=1e-5)
