"""The MedMNIST-5 recipe through papermill, as a user runs it: the error that names the missing files, and the whole
recipe (pretraining of the four variants, evaluation, Table 3 analogue, Fig. 3a and Fig. 5) on small MedMNIST-layout
files of the five modalities, then a rerun that skips every step. The unit checks live in nbs/06b_medmnist.ipynb."""
import json, os, re, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from midol.testing import write_medmnist

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')
FIVE = (('chestmnist', 28, 1), ('retinamnist', 28, 3), ('octmnist', 28, 1), ('dermamnist', 28, 3), ('pathmnist', 28, 3))


def _recipe(tmp, folder, *extra):
    "Run nbs/06b_medmnist.ipynb with the tiny preset into `tmp`; the completed process."
    cmd = [str(BIN / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/06b_medmnist.ipynb', str(tmp / 'executed.ipynb'),
           '-p', 'folder', str(folder), '-p', 'preset', 'tiny', '-p', 'seeds', '1', '-p', 'tsne_per_modality', '8',
           '-p', 'runs_dir', str(tmp / 'runs'), '-p', 'fig_dir', str(tmp / 'figures'), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)


def _steps(tmp):
    "The step lines the driver printed: step name -> status."
    nb = json.loads((tmp / 'executed.ipynb').read_text())
    text = ''.join(''.join(o.get('text', '')) for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'stream')
    return {name: status for name, status in re.findall(r'^\[\s*\d+/\d+\]\s+(\S+)\s+(\S+)', text, re.M)}


def test_missing_files_are_named_with_their_fetch_command(tmp_path):
    write_medmnist(tmp_path / 'mnist', flags=FIVE[2:], n=2)                    # no X-ray, no fundus file
    r = _recipe(tmp_path, tmp_path / 'mnist')
    assert r.returncode != 0
    err = r.stderr + r.stdout
    for part in ('chestmnist.npz', 'retinamnist.npz', 'medmnist.ChestMNIST', 'medmnist.RetinaMNIST', str(tmp_path / 'mnist')):
        assert part in err, part
    assert not (tmp_path / 'runs').exists()                                     # it stopped before doing anything


@pytest.mark.slow
def test_recipe_end_to_end_on_five_modalities_and_rerun_skips(tmp_path):
    write_medmnist(tmp_path / 'mnist', flags=FIVE, n=(24, 8, 8))
    r = _recipe(tmp_path, tmp_path / 'mnist')
    assert r.returncode == 0, r.stderr[-4000:]
    figs, runs = tmp_path / 'figures', tmp_path / 'runs' / 'medmnist' / 'tiny-28px'
    for v in ('dino', 'moe', 'moe_route', 'midol'):
        summary = json.loads((runs / 'pretrain' / v / 'summary.json').read_text())
        assert json.loads((runs / 'pretrain' / v / 'config.json').read_text())['data'] == f"medmnist:{runs / 'files'}"
        if v != 'dino': assert len(summary['routing_matrix']) == 5                # one row per modality
    res = pd.read_csv(runs / 'evaluate' / 'results.csv')
    assert set(res.dataset) == {f for f, _, _ in FIVE} and set(res.encoder) == {'dino', 'moe', 'moe_route', 'midol'}
    for protocol in ('knn', 'linear'):
        text = (figs / 'tables' / f'table3_{protocol}.md').read_text()
        for block in ('Retinology (Fundus)', 'Ophthalmology (OCT)', 'Histopathology (Pathology)', 'Dermatology (Dermoscopy)', 'Radiology (X-ray)'):
            assert block in text, block
        assert 'chestmnist AUC' in text and 'pathmnist ACC' in text
    assert 'SwAVDerm' in (figs / 'tables' / 'table3_paper.md').read_text()        # the paper's rows for HAM10000 (and NIH)
    for name in ('fig3a_routing', 'fig5_tsne'):
        for ext in ('png', 'pdf'): assert (figs / f'{name}.{ext}').stat().st_size > 0, name
    assert 'dermamnist.npz' in (figs / 'README.md').read_text()
    assert set(_steps(tmp_path).values()) == {'ran'}
    r = _recipe(tmp_path, tmp_path / 'mnist')                                   # a rerun skips pretraining and evaluation
    assert r.returncode == 0, r.stderr[-4000:]
    steps = _steps(tmp_path)
    assert all(steps[s] == 'skipped' for s in steps if s != 'tables-and-figures'), steps
