"""Properties of midol.synthmed (the generator) and midol.data (the dataset) checked over many random inputs
(hypothesis). The unit checks live in nbs/01a_synthmed.ipynb and nbs/01b_data.ipynb; the views' are in tests/test_views.py."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from midol.synthmed import CLASSES, CLASSES_BY_VERSION, MODALITIES, SYNTHMED_VERSIONS, make_synthmed, render_synthmed
from midol.data import PretrainData, SynthMed5, check_pretrain_data


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


@given(st.lists(st.integers(0, 9), max_size=12))
@settings(max_examples=20, deadline=None)
def test_synthmed_batch_is_the_items(tmp_path_factory, idx):
    ds = SynthMed5('test', size=32, n_per_modality=2, seed=0, root=tmp_path_factory.mktemp('cache'))
    assert isinstance(check_pretrain_data(ds), PretrainData)
    x = ds.batch(idx)
    assert x.dtype == torch.uint8 and x.shape == (len(idx), 3, 32, 32)
    assert all(torch.equal(x[k], ds[i][0]) for k, i in enumerate(idx))
