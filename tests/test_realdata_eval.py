"""The evaluation driver on data read from disk, through papermill as a user runs it: MedMNIST files (with the multi-label
ChestMNIST), a manifest CSV, an image folder and a registry dataset in its original layout, in one `data` string. The
unit checks of each reader live in nbs/04a_tasks.ipynb."""
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import save_file
from midol.encoders import load_encoder
from midol.model import backbone_spec, create_backbone
from midol.testing import TINY_SWIN, tiny_swin, write_medmnist, write_manifest, write_image_folder

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')


def _encoder(folder, seed):
    "A pretraining-like folder (config.json + encoder.safetensors) holding a tiny random Swin."
    folder.mkdir(parents=True)
    (folder / 'config.json').write_text(json.dumps({'backbone': {'name': 'swin_tiny_patch4_window7_224', 'kwargs': TINY_SWIN}}))
    save_file(tiny_swin(seed).state_dict(), str(folder / 'encoder.safetensors'))
    return folder


def _sources(tmp):
    "One source of each kind: (data string, the task names it gives)."
    write_medmnist(tmp / 'mnist', flags=(('pathmnist', 28, 3), ('chestmnist', 28, 1)), n=(16, 8, 8))
    csv = write_manifest(tmp / 'mine' / 'mine.csv', n=10, n_classes=2)
    lesions = write_image_folder(tmp / 'lesions', ('benign', 'malignant'), n=10)
    for split in ('train', 'val', 'test'): write_image_folder(tmp / 'aptos' / split, [str(c) for c in range(5)], n=2)
    data = f"medmnist:{tmp / 'mnist'},{csv},{lesions},aptos2019={tmp / 'aptos'}"
    return data, {'pathmnist', 'chestmnist', 'mine', 'lesions', 'APTOS'}


@pytest.mark.slow
def test_evaluate_driver_reads_every_kind_of_data(tmp_path):
    "papermill nbs/04_evaluate.ipynb with every data kind: results for each task and a Table 3 analogue per protocol."
    data, tasks = _sources(tmp_path)
    encoders = [str(_encoder(tmp_path / 'enc' / name, seed)) for seed, name in enumerate(('enc_a', 'enc_b'))]
    out, figs = tmp_path / 'eval', tmp_path / 'figs'
    cmd = [str(BIN / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/04_evaluate.ipynb', str(tmp_path / 'executed.ipynb'),
           '-p', 'preset', 'tiny', '-p', 'data', data, '-y', json.dumps({'encoders': encoders, 'protocols': ['knn', 'linear']}),
           '-p', 'seeds', '2', '-p', 'out_dir', str(out), '-p', 'fig_dir', str(figs)]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    res = pd.read_csv(out / 'results.csv')
    assert set(res.dataset) == tasks
    assert set(res.encoder) == {'random init', 'pixels', 'histogram', 'random conv', 'enc_a', 'enc_b', 'supervised'}       # the reference rows too
    runs = res.groupby(['dataset', 'protocol']).seed.nunique()
    assert (runs == 2).all() and len(runs) == 2 * len(tasks)                                   # every task, both protocols, both seeds
    chest = res[res.dataset == 'chestmnist']
    assert {'AUC', 'AUC_atelectasis', 'AUC_hernia'} <= set(chest.metric) and 'ACC' not in set(chest.metric)
    assert chest.query("metric == 'AUC'").value.between(0, 100).all()
    for protocol in ('knn', 'linear'):
        text = (figs / 'tables' / f'table3_{protocol}.md').read_text()
        for name in ('pathmnist', 'chestmnist', 'mine', 'lesions', 'APTOS', 'RETFound (paper)'): assert name in text, (protocol, name)
    assert not (figs / 'tables' / 'table2_ablation.md').exists()                               # no SynthMed-5 table for real data


def test_random_init_takes_midol_arch_names():
    "'random:swin_cpu' names midol's own architecture (not a timm name): the random-init floor of a cpu run."
    enc = load_encoder('random:swin_cpu')
    assert enc.num_features == create_backbone(backbone_spec('swin_cpu')).num_features and not enc.training
