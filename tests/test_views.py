"""Properties of midol.views checked over many random inputs (hypothesis): multi-crop shapes and seeding, and each
batched operation against its one-image counterpart in torchvision.transforms.v2.functional. The unit checks live
in nbs/01c_views.ipynb."""
import math
import torch
import torchvision.transforms.v2.functional as TF
from hypothesis import given, settings, strategies as st
from torchvision.transforms import InterpolationMode

from midol.views import (MultiCrop, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, box_theta, crop_boxes,
                         gaussian_blur, grayscale, random_resized_crop, resized_crop, solarize)


@given(st.integers(1, 3), st.integers(0, 3), st.integers(8, 24), st.integers(4, 16), st.integers(8, 40), st.integers(0, 99))
@settings(max_examples=15, deadline=None)
def test_multicrop_shapes_and_seeded_views(n_global, n_local, global_size, local_size, side, seed):
    mc = MultiCrop(n_global, n_local, global_size, local_size)
    x = torch.randint(0, 256, (3, 3, side, side), dtype=torch.uint8)
    a = mc(x, generator=torch.Generator().manual_seed(seed))
    b = mc(x, generator=torch.Generator().manual_seed(seed))
    assert [tuple(v.shape) for v in a] == [(3, 3, global_size, global_size)] * n_global + [(3, 3, local_size, local_size)] * n_local
    assert all(torch.equal(u, v) and torch.isfinite(u).all() for u, v in zip(a, b))


@given(st.lists(st.floats(0.01, 4.), min_size=1, max_size=4), st.integers(0, 99))
@settings(max_examples=20, deadline=None)
def test_blur_keeps_the_mean_and_hue_turns_back(sigmas, seed):
    x = torch.rand(len(sigmas), 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(gaussian_blur(x, torch.tensor(sigmas)).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.02, rtol=0)
    f = torch.rand(len(sigmas), generator=torch.Generator().manual_seed(seed)) - 0.5
    torch.testing.assert_close(adjust_hue(adjust_hue(x, f), -f), x, atol=1e-4, rtol=0)



def per_image(op, x, *params):
    "torchvision's one-image `op` on each image of `x`, with its own parameters (tensors [B]): stacked."
    return torch.stack([op(x[i], *(float(p[i]) for p in params)) for i in range(len(x))])


@given(st.integers(1, 6), st.integers(2, 20), st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_colour_operations_match_torchvision_image_by_image(B, side, seed):
    # tolerances: float32 rounding (the blends agree to about 1e-7, hue and blur to about 1e-6; see nbs/01c_views.ipynb)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, 3, side, side, generator=g)
    f, hue, sigma = 2 * torch.rand(B, generator=g), torch.rand(B, generator=g) - 0.5, 0.05 + 3 * torch.rand(B, generator=g)
    close = lambda a, b, tol: torch.testing.assert_close(a, b, atol=tol, rtol=0)
    close(adjust_brightness(x, f), per_image(TF.adjust_brightness, x, f), 1e-6)
    close(adjust_contrast(x, f), per_image(TF.adjust_contrast, x, f), 1e-6)
    close(adjust_saturation(x, f), per_image(TF.adjust_saturation, x, f), 1e-6)
    close(adjust_hue(x, hue), per_image(TF.adjust_hue, x, hue), 1e-5)
    close(grayscale(x), TF.rgb_to_grayscale(x), 1e-6)
    assert torch.equal(solarize(x), TF.solarize(x, 128 / 255))
    k = 2 * max(1, min(math.ceil(3 * float(sigma.max())), side - 1)) + 1     # the kernel size gaussian_blur uses
    close(gaussian_blur(x, sigma), per_image(lambda im, s: TF.gaussian_blur(im, [k, k], [s, s]), x, sigma), 1e-5)


@given(st.integers(8, 40), st.integers(4, 16), st.data())
@settings(max_examples=40, deadline=None)
def test_crop_matches_torchvision_on_integer_boxes_at_least_the_output(side, size, data):
    # a box at least as large as the output: every output pixel reads inside the box, so crop-then-resize agrees
    size = min(size, side)
    h, w = data.draw(st.integers(size, side)), data.draw(st.integers(size, side))
    top, left = data.draw(st.integers(0, side - h)), data.draw(st.integers(0, side - w))
    flip = data.draw(st.booleans())
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side * size))
    ours = resized_crop(x, box_theta(torch.tensor([[top, left, h, w]]), side, side, torch.tensor([flip])), size)[0]
    ref = TF.resized_crop(x[0], top, left, h, w, [size, size], InterpolationMode.BILINEAR, antialias=False)
    torch.testing.assert_close(ours, ref.flip(-1) if flip else ref, atol=1e-5, rtol=0)


@given(st.integers(0, 99))
@settings(max_examples=10, deadline=None)
def test_random_resized_crop_is_resized_crop_of_the_drawn_boxes(seed):
    x = torch.rand(6, 3, 20, 20)
    a = random_resized_crop(x, 12, (0.1, 0.9), generator=torch.Generator().manual_seed(seed))
    b = resized_crop(x, crop_boxes(x, (0.1, 0.9), generator=torch.Generator().manual_seed(seed)), 12)
    assert torch.equal(a, b)
