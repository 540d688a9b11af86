"Tests of midol.data: SynthMed-5 (generator, splits, cache, Dataset) and batched multi-crop views."
import numpy as np
import pytest
import torch

from midol.data import (CLASSES, MODALITIES, MULTICROP_PRESETS, MultiCrop, SynthMed5, adjust_hue, gaussian_blur,
                        load_synthmed, make_synthmed, random_resized_crop, render_synthmed)


@pytest.mark.parametrize('modality', MODALITIES)
def test_deterministic_across_chunkings(modality):
    whole, labels = render_synthmed(modality, range(9), size=32, seed=7, chunk=9)
    parts = np.concatenate([render_synthmed(modality, range(0, 4), 32, 7, chunk=1)[0],
                            render_synthmed(modality, range(4, 9), 32, 7, chunk=2)[0]])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(render_synthmed(modality, [8, 3], 32, 7)[0], whole[[8, 3]])
    np.testing.assert_array_equal(labels, np.arange(9) % len(CLASSES[modality]))


@pytest.mark.parametrize('size', [32, 57, 224])
def test_shapes_and_dtypes(size):
    d = make_synthmed(1, 1, (1, 0, 2, 0, 1), size=size, seed=0)
    for split, n in (('train', 5), ('val', 5), ('test', 4)):
        assert d[f'{split}_images'].shape == (n, size, size, 3) and d[f'{split}_images'].dtype == np.uint8
        assert d[f'{split}_labels'].shape == (n,) and d[f'{split}_labels'].dtype == np.int64
        assert d[f'{split}_modality'].dtype == np.int64
    np.testing.assert_array_equal(np.bincount(d['test_modality'], minlength=5), [1, 0, 2, 0, 1])


def test_images_are_not_blank_and_differ_between_modalities():
    d = make_synthmed(3, 0, 0, size=32, seed=0)
    ims, mods = d['train_images'].astype(float), d['train_modality']
    assert ims.std(axis=(1, 2, 3)).min() > 5                                 # every image has content
    means = np.stack([ims[mods == m].mean(0) for m in range(5)])
    assert min(np.abs(means[i] - means[j]).mean() for i in range(5) for j in range(i)) > 5


def test_splits_disjoint_and_independent_of_other_sizes():
    a = make_synthmed(4, 4, 4, size=32, seed=2)
    keys = {s: {im.tobytes() for im in a[f'{s}_images']} for s in ('train', 'val', 'test')}
    assert not keys['train'] & keys['val'] and not keys['train'] & keys['test'] and not keys['val'] & keys['test']
    b = make_synthmed(1, 4, 0, size=32, seed=2)                              # val does not depend on n_train
    assert {im.tobytes() for im in b['val_images']} == keys['val']
    c = make_synthmed(4, 4, 4, size=32, seed=2)                              # fully reproducible, same order
    for k in a: np.testing.assert_array_equal(a[k], c[k])


def test_class_balance():
    d = make_synthmed(9, 0, 0, size=32, seed=1)
    counts = np.bincount(d['train_modality'] * 3 + d['train_labels'], minlength=15)
    np.testing.assert_array_equal(counts, np.full(15, 3))


@pytest.mark.parametrize('bad', [dict(size=31), dict(size=225), dict(size=64.0), dict(n_train=-1),
                                 dict(n_val=(1, 2, 3)), dict(n_test=(1, 1, 1, 1, -2)), dict(seed=-1)])
def test_bad_parameters_raise_value_error(bad):
    kw = dict(n_train=1, n_val=1, n_test=1, size=32, seed=0) | bad
    with pytest.raises(ValueError):
        make_synthmed(**kw)


def test_bad_dataset_arguments(tmp_path):
    with pytest.raises(ValueError, match='split must be'):
        SynthMed5('validation', root=tmp_path)
    with pytest.raises(ValueError, match='size must be'):
        SynthMed5('train', size=16, n_per_modality=1, root=tmp_path)
    with pytest.raises(ValueError, match='n_train must be'):
        SynthMed5('train', n_per_modality=-3, root=tmp_path)


def test_cache_round_trip_and_corrupt_regeneration(tmp_path):
    a = load_synthmed(32, 2, 1, 1, seed=3, root=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == '.npz'                   # no temporary file left
    b = load_synthmed(32, 2, 1, 1, seed=3, root=tmp_path)
    for k in a: np.testing.assert_array_equal(a[k], b[k])
    files[0].write_bytes(b'not an npz file')                                 # corrupt
    c = load_synthmed(32, 2, 1, 1, seed=3, root=tmp_path)
    for k in a: np.testing.assert_array_equal(a[k], c[k])
    with np.load(files[0]) as z: np.testing.assert_array_equal(z['test_images'], a['test_images'])
    np.savez(files[0], train_images=np.zeros((1, 32, 32, 3), np.uint8))    # readable but wrong content
    d = load_synthmed(32, 2, 1, 1, seed=3, root=tmp_path)
    np.testing.assert_array_equal(d['train_images'], a['train_images'])


def test_dataset_interface(tmp_path):
    ds = SynthMed5('test', size=32, n_per_modality=2, seed=0, root=tmp_path)
    assert len(ds) == 10 and ds.images.shape == (10, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.modality.dtype == torch.int64 and ds.labels.dtype == torch.int64
    img, mod, lab = ds[3]
    assert img.shape == (3, 32, 32) and isinstance(mod, int) and isinstance(lab, int)
    assert ds.modalities == MODALITIES and ds.classes == CLASSES
    ref = make_synthmed(0, 0, 2, size=32, seed=0)
    np.testing.assert_array_equal(ds.images.permute(0, 2, 3, 1).numpy(), ref['test_images'])


def _batch(n=6, size=32):
    return torch.from_numpy(make_synthmed(2, 0, 0, size=size, seed=0)['train_images'][:n]).permute(0, 3, 1, 2)


@pytest.mark.parametrize('name', list(MULTICROP_PRESETS))
def test_multicrop_shapes_and_count(name):
    mc = MultiCrop.preset(name)
    x = _batch(3, 64)
    views = mc(x, generator=torch.Generator().manual_seed(0))
    p = MULTICROP_PRESETS[name]
    assert len(views) == p['n_global'] + p['n_local']
    assert [tuple(v.shape) for v in views] == ([(3, 3, p['global_size'], p['global_size'])] * p['n_global']
                                                + [(3, 3, p['local_size'], p['local_size'])] * p['n_local'])
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)


def test_multicrop_normalisation_and_float_input():
    mc = MultiCrop(2, 3, 16, 8, global_scale=(1., 1.), local_scale=(1., 1.), ratio=(1., 1.), p_jitter=0., p_gray=0.,
                   p_blur=(0., 0., 0.), p_solarize=(0., 0., 0.), mean=(0.5, 0.25, 0.), std=(0.5, 0.25, 1.))
    x = torch.full((2, 3, 16, 16), 0.5)
    expect = torch.tensor([0., 1., 0.5]).view(1, 3, 1, 1)
    for v in mc(x): torch.testing.assert_close(v, expect.expand_as(v))
    u8 = torch.full((2, 3, 16, 16), 255, dtype=torch.uint8)                # uint8 is scaled by 1/255
    torch.testing.assert_close(mc(u8)[0], torch.tensor([1., 3., 1.]).view(1, 3, 1, 1).expand(2, 3, 16, 16))


def test_multicrop_generator_determinism_and_per_sample_randomness():
    mc = MultiCrop.preset('cpu')
    x = _batch(1).repeat(12, 1, 1, 1)                                      # 12 copies of one image
    a = mc(x, generator=torch.Generator().manual_seed(5))
    b = mc(x, generator=torch.Generator().manual_seed(5))
    for u, v in zip(a, b): torch.testing.assert_close(u, v, rtol=0, atol=0)
    c = mc(x, generator=torch.Generator().manual_seed(6))
    assert any(not torch.equal(u, v) for u, v in zip(a, c))
    for v in a:                                                            # copies of one image get different views
        flat = v.flatten(1)
        assert (flat[:, None] - flat[None]).abs().amax(-1).add(torch.eye(12) * 1e9).min() > 1e-3


def test_blur_and_solarisation_probabilities_follow_the_recipe():
    "Blur p 1.0 / 0.1 / 0.5 on global 1 / global 2 / locals; solarisation p 0.2 on global view 2 only."
    kw = dict(n_global=2, n_local=2, global_size=32, local_size=32, global_scale=(1., 1.), local_scale=(1., 1.),
              ratio=(1., 1.), p_jitter=0., p_gray=0., mean=(0., 0., 0.), std=(1., 1., 1.))
    x = torch.rand(600, 3, 32, 32)                                         # white noise: std 0.29, blur lowers it
    blur = MultiCrop(**kw, blur_sigma=(7., 14.), p_solarize=(0., 0., 0.))  # sigma 1..2 px at 32 px
    v = blur(x, generator=torch.Generator().manual_seed(0))
    rate = [(u.flatten(1).std(1) < 0.2).float().mean().item() for u in v]
    assert rate[0] == 1.0 and 0.05 < rate[1] < 0.15 and 0.4 < rate[2] < 0.6 and 0.4 < rate[3] < 0.6
    sol = MultiCrop(**kw, p_blur=(0., 0., 0.))
    v = sol(x, generator=torch.Generator().manual_seed(0))
    rate = [(u.flatten(1).amax(1) < 128 / 255).float().mean().item() for u in v]   # solarised: nothing above 128/255
    assert rate[0] == 0 and 0.15 < rate[1] < 0.25 and rate[2] == 0 and rate[3] == 0


def test_random_resized_crop_identity_and_flip():
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(random_resized_crop(x, 8, (1., 1.), (1., 1.), flip=0.), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(random_resized_crop(x, 8, (1., 1.), (1., 1.), flip=1.), x.flip(3), atol=1e-5, rtol=0)


def test_colour_ops_per_sample():
    x = torch.rand(3, 3, 6, 6)
    y = adjust_hue(x, torch.tensor([0., 0.5, 0.]))
    torch.testing.assert_close(y[[0, 2]], x[[0, 2]], atol=1e-5, rtol=0)
    assert (y[1] - x[1]).abs().max() > 0.1
    b = gaussian_blur(x, torch.tensor([1e-3, 2., 1e-3]))
    torch.testing.assert_close(b[[0, 2]], x[[0, 2]], atol=1e-5, rtol=0)


def test_multicrop_bad_input():
    with pytest.raises(ValueError, match='expects a batch'):
        MultiCrop.preset('cpu')(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match='unknown preset'):
        MultiCrop.preset('huge')
    with pytest.raises(ValueError, match='global_scale'):
        MultiCrop(global_scale=(0., 1.))
