"""Properties of midol.data checked over many random inputs (hypothesis). The unit checks live in nbs/01_data.ipynb."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from midol.data import (CLASSES, CLASSES_BY_VERSION, MODALITIES, SYNTHMED_VERSIONS, MultiCrop, PretrainData, SynthMed5, adjust_hue, check_pretrain_data,
                        gaussian_blur, make_synthmed, render_synthmed)


@given(st.sampled_from(MODALITIES), st.lists(st.integers(0, 5000), min_size=1, max_size=6), st.integers(1, 4),
       st.integers(0, 3), st.sampled_from(SYNTHMED_VERSIONS))
@settings(max_examples=15, deadline=None)
def test_an_image_does_not_depend_on_its_chunk_or_neighbours(modality, index, chunk, seed, version):
    together, labels = render_synthmed(modality, index, size=32, seed=seed, chunk=chunk, version=version)
    alone = np.concatenate([render_synthmed(modality, [i], size=32, seed=seed, version=version)[0] for i in index])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(labels, np.array(index) % len(CLASSES_BY_VERSION[version][modality]))


@given(st.sampled_from(MODALITIES), st.integers(0, 5000), st.integers(0, 3))
@settings(max_examples=10, deadline=None)
def test_versions_2_and_3_label_alike_and_render_differently(modality, i, seed):
    # images 3i, 3i+1, 3i+2 have classes 0, 1, 2 in every version; the same index and seed give another image in v2
    ims, labels = render_synthmed(modality, np.arange(3 * i, 3 * i + 3), size=32, seed=seed, version=3)
    assert list(labels) == [0, 1, 2] and ims.dtype == np.uint8 and ims.shape == (3, 32, 32, 3)
    assert not (ims[0] == render_synthmed(modality, [3 * i], size=32, seed=seed, version=2)[0][0]).all()


@given(st.lists(st.integers(0, 4), min_size=5, max_size=5), st.integers(0, 5))
@settings(max_examples=10, deadline=None)
def test_make_synthmed_counts_and_balanced_classes(counts, seed):
    d = make_synthmed(counts, 0, 0, size=32, seed=seed)
    mods, labels = d['train_modality'], d['train_labels']
    np.testing.assert_array_equal(np.bincount(mods, minlength=5), counts)
    for m, c in enumerate(counts):                                          # class = index mod 3 within a modality
        np.testing.assert_array_equal(np.bincount(labels[mods == m], minlength=3), [len(range(k, c, 3)) for k in range(3)])


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


@given(st.lists(st.integers(0, 9), max_size=12))
@settings(max_examples=20, deadline=None)
def test_synthmed_batch_is_the_items(tmp_path_factory, idx):
    ds = SynthMed5('test', size=32, n_per_modality=2, seed=0, root=tmp_path_factory.mktemp('cache'))
    assert isinstance(check_pretrain_data(ds), PretrainData)
    x = ds.batch(idx)
    assert x.dtype == torch.uint8 and x.shape == (len(idx), 3, 32, 32)
    assert all(torch.equal(x[k], ds[i][0]) for k, i in enumerate(idx))
