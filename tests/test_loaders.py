"Tests of midol.loaders on small files written by the tests themselves."
import io, warnings
from pathlib import Path

import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import midol.loaders as L


# ---------- helpers ----------
def png(path, a=None, rgb=(120, 60, 30), size=(12, 8)):
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    (Image.new('RGB', size, rgb) if a is None else Image.fromarray(a)).save(path)
    return path

def dicom(path, a, photometric='MONOCHROME2', slope=None, intercept=None, window=None, bits=16):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset(); meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.1'
    meta.MediaStorageSOPInstanceUID = generate_uid(); meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset(); ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = a.shape; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    if slope is not None: ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None: ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = a.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path

def grey(im): return np.asarray(im)[..., 0]

RAMP = np.array([[0, 1000], [2000, 4000]], np.uint16)
RAMP8 = np.array([[0, 64], [128, 255]], np.uint8)


# ---------- reading images ----------
def test_rgba_png_composited_on_black(tmp_path):
    a = np.zeros((2, 2, 4), np.uint8); a[..., :3] = (200, 100, 50); a[0, 0, 3] = 255; a[1, 1, 3] = 128
    im = L.read_image(png(tmp_path / 'a.png', a))
    assert im.mode == 'RGB'
    assert np.asarray(im)[0, 0].tolist() == [200, 100, 50]
    assert np.asarray(im)[0, 1].tolist() == [0, 0, 0]             # fully transparent → black
    assert np.asarray(im)[1, 1].tolist() == [100, 50, 25]          # half transparent → halfway to black

def test_16bit_png_min_max(tmp_path):
    p = png(tmp_path / 'x16.png', RAMP)
    assert Image.open(p).mode.startswith('I')
    assert grey(L.read_image(p)).tolist() == RAMP8.tolist()

@pytest.mark.parametrize('mode,value,rgb', [('L', 77, [77, 77, 77]), ('1', 1, [255, 255, 255]),
                                            ('CMYK', (0, 0, 0, 255), [0, 0, 0]), ('LA', (90, 0), [0, 0, 0])])
def test_modes_to_rgb(mode, value, rgb):
    assert np.asarray(L.pil_to_rgb(Image.new(mode, (3, 3), value)))[1, 1].tolist() == rgb

def test_palette_with_transparency(tmp_path):
    im = Image.new('P', (2, 2), 1); im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762); im.info['transparency'] = 1
    im.save(tmp_path / 'p.png', transparency=1)
    assert np.asarray(L.read_image(tmp_path / 'p.png'))[0, 0].tolist() == [0, 0, 0]
    im2 = Image.new('P', (2, 2), 1); im2.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762); im2.save(tmp_path / 'q.png')
    assert np.asarray(L.read_image(tmp_path / 'q.png'))[0, 0].tolist() == [0, 255, 0]

def test_dicom_monochrome2_and_1(tmp_path):
    assert grey(L.read_image(dicom(tmp_path / 'm2.dcm', RAMP))).tolist() == RAMP8.tolist()
    assert grey(L.read_image(dicom(tmp_path / 'm1.dcm', RAMP, 'MONOCHROME1'))).tolist() == (255 - RAMP8).tolist()

def test_dicom_12bit_rescale_and_window(tmp_path):
    # stored 0..4000, slope 2, intercept -1000 → -1000..7000; window centre 1000 width 2000 → [0, 2000]
    p = dicom(tmp_path / 'w.dcm', RAMP, slope=2, intercept=-1000, window=(1000, 2000), bits=12)
    assert grey(L.read_image(p)).tolist() == [[0, 128], [255, 255]]
    # no window: min-max of the rescaled values
    p2 = dicom(tmp_path / 'r.dcm', RAMP, slope=2, intercept=-1000)
    assert grey(L.read_image(p2)).tolist() == RAMP8.tolist()

def test_dicom_without_extension_detected(tmp_path):
    p = dicom(tmp_path / 'noext', RAMP)
    assert grey(L.read_image(p)).tolist() == RAMP8.tolist()

def test_corrupt_jpeg_raises_naming_path(tmp_path):
    buf = io.BytesIO(); Image.new('RGB', (64, 64), (1, 2, 3)).save(buf, 'JPEG')
    (tmp_path / 'bad.jpg').write_bytes(buf.getvalue()[:300])
    with pytest.raises(L.UnreadableImage, match='bad.jpg') as e: L.read_image(tmp_path / 'bad.jpg')
    assert e.value.path == tmp_path / 'bad.jpg'
    (tmp_path / 'bad.dcm').write_bytes(b'nonsense')
    with pytest.raises(L.UnreadableImage, match='bad.dcm'): L.read_image(tmp_path / 'bad.dcm')

def test_fit_image():
    im = Image.new('RGB', (30, 10))
    assert L.fit_image(im, 8).size == (8, 8) and L.fit_image(im, 8, 'resize').size == (8, 8)
    with pytest.raises(ValueError, match='crop'): L.fit_image(im, 8, 'squash')


# ---------- manifests and PretrainImages ----------
@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / 'corpus'
    for m, n in [('xray', 2), ('derm', 3), ('fundus', 1)]:
        for k in range(n): png(root / m / 'a' / 'b' / f'{k}.jpg')
    (root / 'oct').mkdir()
    (root / 'path' / 'deep').mkdir(parents=True); (root / 'path' / 'deep' / 'notes.txt').write_text('x')
    return root

def test_manifest_from_folder_warns_on_empty_modalities(corpus):
    with pytest.warns(UserWarning) as rec: df = L.manifest_from_folder(corpus)
    msgs = ' '.join(str(r.message) for r in rec)
    assert 'oct' in msgs and 'path' in msgs
    assert df.modality.value_counts().to_dict() == {'derm': 3, 'xray': 2, 'fundus': 1}

def test_manifest_from_folder_errors_name_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'<modality>/\*\*/<image>'): L.manifest_from_folder(tmp_path / 'none')
    (tmp_path / 'e' / 'xray').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'found no images.*<modality>/\*\*/<image>'):
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); L.manifest_from_folder(tmp_path / 'e')

def test_manifest_csv_missing_file_reported_and_skipped(corpus, tmp_path):
    pd.DataFrame({'path': ['corpus/xray/a/b/0.jpg', 'corpus/xray/missing.jpg', str(corpus / 'derm/a/b/2.jpg')],
                  'modality': ['xray', 'xray', 'derm'], 'label': ['3', '3', '10'], 'split': ['train', 'val', 'train']}
                 ).to_csv(tmp_path / 'm.csv', index=False)
    with pytest.warns(UserWarning, match=r'1 of 3 files missing.*missing\.jpg'): df = L.read_manifest(tmp_path / 'm.csv')
    assert len(df) == 2 and all(Path(p).is_file() for p in df.path)
    with pytest.warns(UserWarning):
        ds = L.PretrainImages(tmp_path / 'm.csv', size=8, split='train')
    assert ds.classes == ('3', '10') and ds.labels.tolist() == [0, 1]      # numeric class names sorted numerically
    assert ds.modalities == ('derm', 'xray') and ds.modality.tolist() == [1, 0]

def test_manifest_all_missing_or_bad_columns(tmp_path):
    pd.DataFrame({'path': ['x.png', 'y.png'], 'modality': ['xray', 'oct']}).to_csv(tmp_path / 'm.csv', index=False)
    with pytest.raises(FileNotFoundError, match='none of its 2 files'): L.read_manifest(tmp_path / 'm.csv')
    pd.DataFrame({'file': ['x.png']}).to_csv(tmp_path / 'b.csv', index=False)
    with pytest.raises(ValueError, match='path, modality'): L.read_manifest(tmp_path / 'b.csv')
    with pytest.raises(FileNotFoundError, match='path, modality'): L.read_manifest(tmp_path / 'absent.csv')

def test_pretrain_images_triple_and_loader(corpus):
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); ds = L.PretrainImages(corpus, size=16)
    assert len(ds) == 6 and ds.modalities == ('derm', 'fundus', 'xray')
    assert ds.modality.dtype == torch.int64 and ds.labels.tolist() == [-1] * 6 and ds.classes == ()
    x, m, l = ds[3]
    assert x.shape == (3, 16, 16) and x.dtype == torch.uint8 and (m, l) == (1, -1)
    xb, mb, lb = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 3, 16, 16) and mb.tolist() == [0, 0, 0, 1]

def test_pretrain_images_skip_unreadable(tmp_path):
    good = png(tmp_path / 'g.png'); (tmp_path / 'b.jpg').write_bytes(b'\xff\xd8\xff garbage')
    df = pd.DataFrame({'path': [str(tmp_path / 'b.jpg'), str(good)], 'modality': ['derm', 'xray'], 'label': ['a', 'b']})
    ds = L.PretrainImages(df, size=8)
    with pytest.warns(UserWarning, match='b.jpg'): x, m, l = ds[0]
    assert (m, l) == (1, 1) and ds.unreadable == [str(tmp_path / 'b.jpg')]
    with warnings.catch_warnings():
        warnings.simplefilter('error'); ds[0]                            # no second warning, no crash
    assert len(ds.unreadable) == 1
    with pytest.raises(L.UnreadableImage, match='no image of this dataset is readable'):
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); L.PretrainImages(df.iloc[:1], size=8)[0]

def test_pretrain_split_errors(corpus):
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); df = L.manifest_from_folder(corpus)
    with pytest.raises(ValueError, match='no `split` column'): L.PretrainImages(df, 8, split='train')
    with pytest.raises(ValueError, match="splits present: \\['train'\\]"): L.PretrainImages(df.assign(split='train'), 8, split='val')


# ---------- MedMNIST ----------
def fake_medmnist(path, n=(5, 2, 3), rgb=False, n_labels=1, n_classes=3, hw=28, seed=0):
    rng = np.random.default_rng(seed); d = {}
    for s, k in zip(L.MEDMNIST_SPLITS, n):
        d[f'{s}_images'] = rng.integers(0, 256, (k, hw, hw, 3) if rgb else (k, hw, hw), dtype=np.uint8)
        d[f'{s}_labels'] = rng.integers(0, 2 if n_labels > 1 else n_classes, (k, n_labels))
    np.savez(path, **d)

def test_medmnist_pretrain(tmp_path):
    fake_medmnist(tmp_path / 'dermamnist.npz', rgb=True, n_classes=7)
    fake_medmnist(tmp_path / 'chestmnist_64.npz', n_labels=14, hw=64)
    fake_medmnist(tmp_path / 'octmnist.npz', n_classes=4)
    ds = L.MedMNISTPretrain(tmp_path, size=32, split='train')
    assert ds.modalities == ('derm', 'oct', 'xray') and len(ds) == 15
    assert ds.modality.tolist() == [2] * 5 + [0] * 5 + [1] * 5        # files in flag order: chest, derma, oct
    assert ds.labels[:5].tolist() == [-1] * 5                          # multi-label ChestMNIST
    assert ds.classes[0] == 'dermamnist:0' and ds.classes[7] == 'octmnist:0' and len(ds.classes) == 11
    assert ds.labels[5:].min() >= 0 and ds.labels[10:].min() >= 7
    x, m, l = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and torch.equal(x[0], x[1])   # grey → 3 channels
    assert len(L.MedMNISTPretrain(tmp_path, 28, split=None)) == 30
    assert L.open_pretrain_source(f'medmnist:{tmp_path}', 16).__class__ is L.MedMNISTPretrain

def test_medmnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='download the MedMNIST files yourself'): L.MedMNISTPretrain(tmp_path, 28)
    with pytest.raises(FileNotFoundError, match=r'pathmnist\.npz or pathmnist_\{size\}\.npz'):
        L.medmnist_files(tmp_path, flags=['pathmnist'])
    fake_medmnist(tmp_path / 'bloodmnist.npz')
    with pytest.raises(ValueError, match='bloodmnist.*known flags'): L.MedMNISTPretrain(tmp_path, 28)
    np.savez(tmp_path / 'pathmnist.npz', train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(KeyError, match='train_labels'): L.load_medmnist(tmp_path / 'pathmnist.npz')
    with pytest.raises(FileNotFoundError, match='medmnist.com'): L.load_medmnist(tmp_path / 'retinamnist.npz')

def test_medmnist_file_choice_and_load(tmp_path):
    for f in ['pathmnist.npz', 'pathmnist_64.npz', 'pathmnist_224.npz']: fake_medmnist(tmp_path / f, rgb=True, hw=8)
    assert L.medmnist_files(tmp_path, 100)['pathmnist'].name == 'pathmnist_224.npz'
    assert L.medmnist_files(tmp_path, 64)['pathmnist'].name == 'pathmnist_64.npz'
    assert L.medmnist_files(tmp_path, 500)['pathmnist'].name == 'pathmnist_224.npz'
    d = L.load_medmnist(tmp_path / 'pathmnist.npz')
    assert set(d) == {'train', 'val', 'test'} and d['val'][1].shape == (2,) and d['val'][1].dtype == np.int64


# ---------- splits, ImageFolder ----------
@given(st.integers(3, 60), st.integers(1, 5), st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_grouped_split_never_shares_a_group(n_groups, per, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'g': rng.integers(0, n_groups, n_groups * per)})
    if df.g.nunique() < 3: return
    out = L.grouped_split(df, 'g', (0.6, 0.2, 0.2), seed)
    assert out.groupby('g').split.nunique().max() == 1
    assert set(out.split) <= {'train', 'val', 'test'} and (out.split == 'train').any()

def test_grouped_split_sizes_and_errors():
    df = pd.DataFrame({'p': np.repeat(np.arange(100), 2)})
    out = L.grouped_split(df, 'p', (0.7, 0.1, 0.2), 0)
    assert out.split.value_counts().to_dict() == {'train': 140, 'test': 40, 'val': 20}
    assert not out.split.equals(L.grouped_split(df, 'p', (0.7, 0.1, 0.2), 1).split)
    assert L.grouped_split(df, None, (0.7, 0.15, 0.15), 0).split.value_counts()['test'] == 30
    with pytest.raises(ValueError, match='summing to 1'): L.grouped_split(df, 'p', (0.7, 0.1, 0.1))
    with pytest.raises(ValueError, match='empty values'): L.grouped_split(df.assign(p=np.nan), 'p')

def test_image_folder_split(tmp_path):
    for s in ('train', 'val', 'test'):
        for c in ('normal', 'glaucoma'): png(tmp_path / s / c / f'{s}{c}.png')
    png(tmp_path / 'train' / 'early' / 'x.png')
    with pytest.warns(UserWarning, match="no images of class\\(es\\) \\['early'\\]"): tabs, classes = L.image_folder_split(tmp_path)
    assert classes == ('early', 'glaucoma', 'normal')
    assert tabs['train'].label.tolist() == [0, 1, 2] and tabs['val'].label.tolist() == [1, 2]
    png(tmp_path / 'only' / 'train' / 'a' / 'x.png')
    with pytest.raises(FileNotFoundError, match=r"\['val', 'test'\].*\{train,val,test\}/<class>/<image>"):
        L.image_folder_split(tmp_path / 'only')


# ---------- label tables ----------
def test_aptos(tmp_path):
    for k in ('a', 'b'): png(tmp_path / 'imgs' / f'{k}.png')
    pd.DataFrame({'id_code': ['a', 'b', 'zz'], 'diagnosis': [3, 0, 1]}).to_csv(tmp_path / 'train.csv', index=False)
    with pytest.warns(UserWarning, match='zz'): df, classes = L.aptos_table(tmp_path / 'train.csv', tmp_path / 'imgs')
    assert df.label.tolist() == [3, 0] and len(classes) == 5
    pd.DataFrame({'id_code': ['a'], 'diagnosis': [7]}).to_csv(tmp_path / 'bad.csv', index=False)
    with pytest.raises(ValueError, match='0-4'): L.aptos_table(tmp_path / 'bad.csv', tmp_path / 'imgs')
    pd.DataFrame({'id': ['a']}).to_csv(tmp_path / 'cols.csv', index=False)
    with pytest.raises(ValueError, match=r"\['id_code', 'diagnosis'\].*<id_code>\.png"): L.aptos_table(tmp_path / 'cols.csv', tmp_path / 'imgs')

def test_ham10000_lesion_grouped(tmp_path):
    rows = [(f'HAM_{k // 3}', f'ISIC_{k:07d}', L.HAM10000_CLASSES[(k // 3) % 7]) for k in range(60)]
    for k, (_, i, _) in enumerate(rows): png(tmp_path / f'part_{k % 2}' / f'{i}.jpg')   # two part folders
    pd.DataFrame(rows, columns=['lesion_id', 'image_id', 'dx']).to_csv(tmp_path / 'meta.csv', index=False)
    df, classes = L.ham10000_table(tmp_path / 'meta.csv', tmp_path, seed=5)
    assert len(df) == 60 and df.groupby('lesion_id').split.nunique().max() == 1
    assert df.split.value_counts().to_dict() == {'train': 42, 'val': 9, 'test': 9}   # 14 / 3 / 3 lesions
    assert classes[df.label[0]] == 'akiec'
    pd.DataFrame([('L', 'ISIC_0000000', 'melanoma')], columns=['lesion_id', 'image_id', 'dx']).to_csv(tmp_path / 'bad.csv', index=False)
    with pytest.raises(ValueError, match="unknown dx \\['melanoma'\\]"): L.ham10000_table(tmp_path / 'bad.csv', tmp_path)

def test_isic_one_hot_binary_and_categorical(tmp_path):
    for k in range(3): png(tmp_path / 'img' / f'ISIC_{k:07d}.jpg')
    ids = [f'ISIC_{k:07d}' for k in range(3)]
    pd.DataFrame({'image': ids, 'MEL': [0, 1, 0.], 'NV': [1, 0, 0.], 'BCC': [0, 0, 1.]}).to_csv(tmp_path / 'onehot.csv', index=False)
    df, c = L.isic_table(tmp_path / 'onehot.csv', tmp_path / 'img')
    assert c == ('MEL', 'NV', 'BCC') and df.label.tolist() == [1, 0, 2]           # no rest class when one-hot
    pd.DataFrame({'image_id': ids, 'melanoma': [0, 1, 0], 'seborrheic_keratosis': [0, 0, 1]}).to_csv(tmp_path / 'bin.csv', index=False)
    df, c = L.isic_table(tmp_path / 'bin.csv', tmp_path / 'img', rest_class='nevus')
    assert c == ('nevus', 'melanoma', 'seborrheic_keratosis') and df.label.tolist() == [0, 1, 2]
    (tmp_path / 'gt2016.csv').write_text('ISIC_0000000,malignant\nISIC_0000001,benign\n')
    df, c = L.isic_table(tmp_path / 'gt2016.csv', tmp_path / 'img')
    assert c == ('benign', 'malignant') and df.label.tolist() == [1, 0]

def test_nih_parsing_and_patient_split(tmp_path):
    y = L.parse_nih_findings('Cardiomegaly|Effusion|Pleural_Thickening')
    assert y.dtype == np.float32 and [L.NIH_FINDINGS[i] for i in np.flatnonzero(y)] == ['Cardiomegaly', 'Effusion', 'Pleural_Thickening']
    assert L.parse_nih_findings('No Finding').sum() == 0
    assert L.parse_nih_findings('Hernia').tolist()[L.NIH_FINDINGS.index('Hernia')] == 1
    with pytest.raises(ValueError, match='Fracture'): L.parse_nih_findings('Mass|Fracture')
    names = [f'{p:08d}_{k:03d}.png' for p in range(30) for k in range(3)]
    for i, n in enumerate(names): png(tmp_path / f'images_{i % 4:03d}' / 'images' / n)
    labels = ['No Finding', 'Mass|Nodule', 'Effusion']
    pd.DataFrame({'Image Index': names, 'Finding Labels': labels * 30, 'Patient ID': [int(n[:8]) for n in names]}
                 ).to_csv(tmp_path / 'Data_Entry_2017.csv', index=False)
    df, f = L.nih_chestxray14_table(tmp_path / 'Data_Entry_2017.csv', tmp_path, seed=2)
    assert len(df) == 90 and df.groupby('patient').split.nunique().max() == 1
    assert df[list(f)].sum(axis=1).tolist()[:3] == [0, 2, 1] and df.Mass.iloc[1] == 1 and df.Nodule.iloc[1] == 1

def test_chexpert_policies(tmp_path):
    paths = [f'CheXpert-v1.0-small/train/patient{p:05d}/study1/view1_frontal.jpg' for p in range(4)]
    for p in paths: png(tmp_path / p)
    raw = pd.DataFrame({'Path': paths, 'Frontal/Lateral': ['Frontal', 'Frontal', 'Lateral', 'Frontal'],
                        **{c: [1, 0, -1, np.nan] for c in L.CHEXPERT_LABELS}})
    raw.to_csv(tmp_path / 'train.csv', index=False)
    expect = {'ones': [1, 0, 1, 0], 'zeros': [1, 0, 0, 0]}
    for policy, v in expect.items():
        df, labels = L.chexpert_table(tmp_path / 'train.csv', tmp_path, policy)
        assert labels == L.CHEXPERT_LABELS and df['Edema'].tolist() == v
    df, _ = L.chexpert_table(tmp_path / 'train.csv', tmp_path, 'ignore', labels=L.CHEXPERT_COMPETITION)
    assert df['Atelectasis'].isna().tolist() == [False, False, True, False] and df['Atelectasis'].iloc[3] == 0
    assert list(df.columns) == ['path', 'patient', *L.CHEXPERT_COMPETITION]
    df, _ = L.chexpert_table(tmp_path / 'train.csv', tmp_path / 'CheXpert-v1.0-small', frontal_only=True)
    assert len(df) == 3 and df.patient.tolist() == ['patient00000', 'patient00001', 'patient00003']
    with pytest.raises(ValueError, match="one of \\('ones', 'zeros', 'ignore'\\)"): L.chexpert_table(tmp_path / 'train.csv', tmp_path, 'u-ones')
    with pytest.raises(FileNotFoundError, match='none of its 4 files'): L.chexpert_table(tmp_path / 'train.csv', tmp_path / 'elsewhere')


# ---------- masks and RLE ----------
def test_read_mask_any_mode(tmp_path):
    m = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    cases = {'l255.png': m * 255, 'l01.png': m, 'rgb.png': np.stack([m * 0, m * 255, m * 0], -1),
             'la.png': None, 'i16.png': m.astype(np.uint16) * 40000}
    for name, a in cases.items():
        if a is None: Image.fromarray(np.stack([m * 255, np.full_like(m, 255)], -1), 'LA').save(tmp_path / name)
        else: png(tmp_path / name, a)
        assert L.read_mask(tmp_path / name).tolist() == m.tolist(), name
    p = Image.fromarray(m, 'P'); p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762); p.save(tmp_path / 'p.png')
    assert L.read_mask(tmp_path / 'p.png').tolist() == m.tolist()
    assert L.read_mask(png(tmp_path / 'zero.png', np.zeros((2, 2), np.uint8))).sum() == 0

def test_rle_convention():
    m = np.zeros((3, 4), np.uint8); m[1:3, 0] = 1; m[0, 1] = 1; m[2, 3] = 1
    # column-major pixel numbers (1-indexed): col 0 → 1,2,3; col 1 → 4,5,6; ...; col 3 → 10,11,12
    assert L.rle_encode(m) == '2 3 12 1'
    assert L.rle_encode(m, relative=True) == '1 3 7 1'     # SIIM: offsets from the end of the previous run
    assert L.rle_decode('2 3 12 1', (3, 4)).tolist() == m.tolist()
    assert L.rle_to_absolute('1 3 7 1') == '2 3 12 1'
    assert L.rle_encode(np.zeros((2, 2))) == '-1' and L.rle_decode(' -1', (2, 2)).sum() == 0
    assert L.rle_decode(np.nan, (2, 2)).sum() == 0
    with pytest.raises(ValueError, match='pairs'): L.rle_decode('1 2 3', (4, 4))
    with pytest.raises(ValueError, match='outside'): L.rle_decode('15 5', (4, 4))

@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 1)))
@settings(max_examples=100, deadline=None)
def test_rle_round_trip(m):
    assert np.array_equal(L.rle_decode(L.rle_encode(m), m.shape), m)
    assert np.array_equal(L.rle_decode(L.rle_encode(m, True), m.shape, True), m)
    assert L.rle_to_absolute(L.rle_encode(m, True)) == L.rle_encode(m)

def test_siim_table_merges_regions(tmp_path):
    m = np.zeros((8, 6), np.uint8); r1 = m.copy(); r1[2:4, 1] = 1; r2 = m.copy(); r2[5:8, 4:6] = 1
    for k in ('1.2.840.1', '1.2.840.2'): dicom(tmp_path / 'dicom-images-train' / k / k / f'{k}.dcm', np.arange(48).reshape(8, 6))
    pd.DataFrame({'ImageId': ['1.2.840.1', '1.2.840.1', '1.2.840.2', '1.2.840.3'],
                  ' EncodedPixels': [L.rle_encode(r1, True), L.rle_encode(r2, True), ' -1', '-1']}).to_csv(tmp_path / 'train-rle.csv', index=False)
    with pytest.warns(UserWarning, match='1.2.840.3'): df = L.siim_table(tmp_path / 'train-rle.csv', tmp_path)
    assert df.image_id.tolist() == ['1.2.840.1', '1.2.840.2']
    assert np.array_equal(L.rle_decode(df.rle[0], (8, 6)), r1 | r2) and df.rle[1] == '-1'
    ds = L.ImageTableDataset(df, size=8, label_cols='rle', fit='resize')
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and y.shape == (8, 8) and y.dtype == torch.int64
    assert set(y.unique().tolist()) == {0, 1} and y[:, 0].sum() == 0          # column 0 of the mask is empty

def test_mask_folder_table_and_seg_dataset(tmp_path):
    m = np.zeros((10, 20), np.uint8); m[:, 10:] = 255
    for k in range(3): png(tmp_path / 'img' / f'ISIC_{k}.jpg', size=(20, 10))
    for k in range(3): png(tmp_path / 'gt' / f'ISIC_{k}_segmentation.png', m)
    df = L.mask_folder_table(tmp_path / 'img', tmp_path / 'gt')
    assert len(df) == 3
    x, y = L.ImageTableDataset(df, size=10, label_cols='mask', fit='resize')[0]
    assert x.shape == (3, 10, 10) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (10, 10) and y[:, :5].sum() == 0 and y[:, 5:].sum() == 50
    flip = lambda a, b: (a.flip(-1), b.flip(-1))
    _, yf = L.ImageTableDataset(df, size=10, label_cols='mask', transform=flip)[0]
    assert yf[:, :5].sum() == 50
    png(tmp_path / 'gt' / 'ISIC_0_segmentation.png', np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='mask of'): L.ImageTableDataset(df, size=10, label_cols='mask')[0]


# ---------- downstream dataset ----------
def test_image_table_dataset_targets(tmp_path):
    p = [str(png(tmp_path / f'{k}.png', rgb=(k * 50, 0, 0))) for k in range(3)]
    df = pd.DataFrame({'path': p, 'label': [2, 0, 1], 'A': [1., 0., np.nan], 'B': [0., 1., 1.]})
    x, y = L.ImageTableDataset(df, size=6)[2]
    assert x.shape == (3, 6, 6) and y.dtype == torch.int64 and y.item() == 1 and abs(x[0, 0, 0].item() - 100 / 255) < 1e-6
    ds = L.ImageTableDataset(df, size=6, label_cols=['A', 'B'], transform=lambda t: t * 2)
    x, y = ds[2]
    assert y.dtype == torch.float32 and torch.isnan(y[0]) and y[1] == 1 and abs(x[0, 0, 0].item() - 200 / 255) < 1e-6
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    v, m = L.label_mask(yb)
    assert m.tolist() == [[1, 1], [1, 1], [0, 1]] and not torch.isnan(v).any()
    with pytest.raises(KeyError, match="\\['C'\\]"): L.ImageTableDataset(df, label_cols=['A', 'C'])
    with pytest.raises(ValueError, match='integer class indices'): L.ImageTableDataset(df, label_cols='A')
    (tmp_path / 'bad.png').write_bytes(b'x')
    with pytest.raises(L.UnreadableImage, match='bad.png'): L.ImageTableDataset(df.assign(path=str(tmp_path / 'bad.png')))[0]
