"""Properties of midol.loaders and midol.downstream checked over many random inputs (hypothesis), on files the tests
write with midol.testing. The unit checks live in nbs/01d_loaders.ipynb and nbs/01e_downstream.ipynb."""
import warnings

import numpy as np, pandas as pd, pytest, torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import midol.downstream as D
import midol.loaders as L
from midol.data import PretrainData, check_pretrain_data
from midol.testing import write_image_folder, write_manifest, write_medmnist


@given(st.integers(3, 60), st.integers(1, 5), st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_grouped_split_never_shares_a_group(n_groups, per, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'g': rng.integers(0, n_groups, n_groups * per)})
    if df.g.nunique() < 3: return
    out = D.grouped_split(df, 'g', (0.6, 0.2, 0.2), seed)
    assert out.groupby('g').split.nunique().max() == 1
    assert set(out.split) <= {'train', 'val', 'test'} and (out.split == 'train').any()


@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 1)))
@settings(max_examples=100, deadline=None)
def test_rle_round_trip(m):
    assert np.array_equal(D.rle_decode(D.rle_encode(m), m.shape), m)
    assert np.array_equal(D.rle_decode(D.rle_encode(m, True), m.shape, True), m)
    assert D.rle_to_absolute(D.rle_encode(m, True)) == D.rle_encode(m)


@given(arrays(np.float64, st.integers(2, 20), elements=st.floats(-1e6, 1e6)))
@settings(max_examples=50, deadline=None)
def test_scale_to_uint8_maps_min_to_0_and_max_to_255_monotonically(a):
    u = L.scale_to_uint8(a)
    assert u.dtype == np.uint8
    if a.max() > a.min(): assert u[a.argmin()] == 0 and u[a.argmax()] == 255
    else: assert (u == 0).all()
    order = np.argsort(a, kind='stable')
    assert (np.diff(u[order].astype(int)) >= 0).all()


@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 40), st.sampled_from(['crop', 'resize']))
@settings(max_examples=30, deadline=None)
def test_fit_image_always_gives_the_asked_size(w, h, size, fit):
    assert L.fit_image(Image.new('RGB', (w, h)), size, fit).size == (size, size)


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    "One source of each kind: MedMNIST files of two sizes and channel counts, a folder with a corrupt file, a manifest."
    root = tmp_path_factory.mktemp('sources')
    write_medmnist(root / 'medmnist', (('pathmnist', 28, 3), ('octmnist', 64, 1), ('chestmnist', 32, 1)), n=(4, 1, 1))
    write_image_folder(root / 'folder', ('xray', 'derm', 'oct'), n=3, size=20, corrupt=1)
    write_manifest(root / 'manifest' / 'm.csv', n=4, size=12, n_classes=2)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return {kind: L.open_pretrain_source(spec, size=24) for kind, spec in
                [('medmnist', f"medmnist:{root / 'medmnist'}"), ('folder', str(root / 'folder')),
                 ('manifest', str(root / 'manifest' / 'm.csv'))]}


@pytest.mark.parametrize('kind', ['medmnist', 'folder', 'manifest'])
@given(idx=st.lists(st.integers(0, 7), max_size=10))
@settings(max_examples=15, deadline=None)
def test_every_source_meets_the_contract_and_batch_is_the_items(sources, kind, idx):
    ds = sources[kind]
    assert isinstance(check_pretrain_data(ds), PretrainData)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); x = ds.batch(idx)
        items = [ds[i][0] for i in idx]
    assert x.dtype == torch.uint8 and x.shape == (len(idx), 3, 24, 24)
    assert all(torch.equal(x[k], item) for k, item in enumerate(items))
    assert all(p.endswith('corrupt0.png') for p in ds.skipped) if kind == 'folder' else ds.skipped == []   # only the bad file
