"""Properties of midol.views checked over many random inputs (hypothesis): multi-crop shapes and seeding, and each
batched operation against its one-image counterpart in torchvision.transforms.v2.functional. The unit checks live
in nbs/01c_views.ipynb."""
import torch
from hypothesis import given, settings, strategies as st

from midol.views import MultiCrop, adjust_hue, gaussian_blur


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

