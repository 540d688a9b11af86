"Tests of midol.registry against the paper's Table 1 and Table 4."
import pandas as pd, pytest

import midol.loaders as L
from midol.registry import DOWNSTREAM, PRETRAIN, find_dataset, registry_markdown, registry_table, show_registry


def test_counts():
    assert len(DOWNSTREAM) == 21 and len(PRETRAIN) == 10
    assert len({d.name for d in DOWNSTREAM}) == 21 and len({d.table_name for d in DOWNSTREAM}) == 21

def test_pretraining_total_is_the_sum_of_table1_rows():
    assert sum(s.images for s in PRETRAIN) == 1_153_519
    per = registry_table('pretrain').groupby('modality').images.sum().to_dict()
    assert per == {'fundus': 190_144, 'xray': 277_827, 'oct': 125_297, 'path': 115_081, 'derm': 445_170}

@pytest.mark.parametrize('name,images', [('EYEPACS', 88_702), ('AIROGS', 101_442), ('MIMIC-CXR', 277_827),
    ('OCT2017', 84_484), ('OCT-8C', 24_000), ('NEH-OCT', 16_813), ('NCH', 107_180), ('PanNuke', 7_901),
    ('ISIC2020', 44_108), ('ISIC2024', 401_062)])
def test_pretraining_rows(name, images):
    assert {s.name: s.images for s in PRETRAIN}[name] == images

def test_modalities_and_tasks():
    df = registry_table()
    assert df.modality.value_counts().to_dict() == {'xray': 5, 'fundus': 4, 'oct': 4, 'path': 4, 'derm': 4}
    assert set(df.task) == {'multi-class', 'multi-label', 'segmentation'}
    assert sorted(df.table_name[df.task == 'segmentation']) == ['ISIC2018', 'SIIM-ARC']
    assert sorted(df.table_name[df.task == 'multi-label']) == ['CXP', 'NIH']
    assert set(df.metric[df.task == 'segmentation']) == {'Dice'} and set(df.metric[df.task == 'multi-label']) == {'AUC'}
    assert set(df.table_name[df.protocol == 'linear-probe']) == {'BreakHis-Binary', 'BreakHis-8C', 'Mitosis', 'MHIST'}
    assert (df[['train', 'val', 'test']] > 0).all().all() and (df.n_classes >= 2).all()

def test_every_loader_exists():
    for d in DOWNSTREAM:
        assert callable(getattr(L, d.loader, None)), f"{d.name}: midol.loaders has no {d.loader}"
        assert d.layout and d.split_policy

@pytest.mark.parametrize('name,sizes', [('APTOS', (2_048, 514, 1_100)), ('NIH', (78_484, 11_212, 22_424)),
    ('CXP', (219_082, 5_000, 234)), ('SIIM-ARC', (7_969, 1_898, 1_904)), ('OCTDL', (1_500, 241, 323)),
    ('Mitosis', (16_119, 3_454, 3_456)), ('HAM10000', (10_015, 193, 1_512)), ('ISIC2018', (1_796, 300, 500))])
def test_table1_sizes(name, sizes):
    d = find_dataset(name)
    assert (d.train, d.val, d.test) == sizes

@pytest.mark.parametrize('name,lr,epochs,iters,size,batch', [('APTOS', 5e-4, 50, None, 224, 64), ('PAPILA', 1e-3, 50, None, 224, 64),
    ('Retina', 8e-4, 50, None, 224, 64), ('OCTDL', 1e-4, 50, None, 224, 64), ('ISIC2016', 5e-6, 50, None, 224, 64),
    ('HAM10000', 5e-6, 50, None, 224, 64), ('ISIC2018', 2e-5, None, 160_000, 512, 2), ('NIH', 3e-3, None, 200_000, 224, 128),
    ('CXP', 3e-3, None, 200_000, 224, 128), ('RNSA', 5e-4, 50, None, 224, 64), ('SIIM-ARC', 2e-5, None, 160_000, 512, 2)])
def test_table4_hyperparameters(name, lr, epochs, iters, size, batch):
    d = find_dataset(name)
    assert (d.lr, d.epochs, d.iterations, d.input_size, d.batch_size) == (lr, epochs, iters, size, batch)
    assert d.batch_per_gpu == (d.task == 'segmentation')

def test_lookup_and_rendering(capsys):
    assert find_dataset('rsna') is find_dataset('RNSA') and find_dataset('nih chestx-ray14').table_name == 'NIH'
    with pytest.raises(KeyError, match='unknown downstream dataset'): find_dataset('CIFAR-10')
    with pytest.raises(ValueError, match="'downstream' or 'pretrain'"): registry_table('both')
    md = registry_markdown('pretrain').splitlines()
    assert len(md) == 12 and md[-1] == '| ISIC2024 | derm | 401,062 |'
    show_registry('pretrain')
    assert '| MIMIC-CXR | xray | 277,827 |' in capsys.readouterr().out
    assert registry_table()['epochs'].dtype == pd.Int64Dtype()
