"""The MedMNIST recipe through papermill, as a user runs it: the errors for a folder it cannot use (one modality, a file
that is not MedMNIST), and the whole recipe (pretraining of the four variants, evaluation, Table 3 analogue beside
MedMNIST v2's baselines, the claims, Fig. 3a and Fig. 5) on small MedMNIST-layout files of two and of three
modalities, then a rerun that skips every step; and the reference runs (`use_reference`): made from a recipe by
tools/make_reference.py, installed by a second recipe instead of pretraining, refused for files of another MD5. The
unit checks live in nbs/06b_medmnist.ipynb."""
import json, os, re, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from midol.testing import write_medmnist

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')
THREE = (('retinamnist', 28, 3), ('pneumoniamnist', 28, 1), ('breastmnist', 28, 1))   # fundus, X-ray, ultrasound
TWO = (('bloodmnist', 28, 3), ('organamnist', 28, 1))                                   # microscopy, CT


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


def _refused(tmp, folder, *parts):
    "The recipe fails on `folder` before doing anything, with an error holding every one of `parts`."
    r = _recipe(tmp, folder)
    assert r.returncode != 0
    err = r.stderr + r.stdout
    for part in parts: assert part in err, part
    assert not (tmp / 'runs').exists()                                          # it stopped before doing anything


def test_one_modality_is_refused(tmp_path):
    write_medmnist(tmp_path / 'mnist', flags=(('pneumoniamnist', 28, 1), ('chestmnist', 28, 1)), n=2)   # two files, both X-ray
    _refused(tmp_path, tmp_path / 'mnist', 'one modality only (chest X-ray', 'at least two', str(tmp_path / 'mnist'))


def test_a_file_that_is_not_medmnist_is_refused(tmp_path):
    write_medmnist(tmp_path / 'mnist', flags=THREE, n=2)
    np.savez(tmp_path / 'mnist' / 'cifar10.npz', x=np.zeros(2))
    _refused(tmp_path, tmp_path / 'mnist', "not MedMNIST 2-D files: ['cifar10.npz']", 'breastmnist')
    (tmp_path / 'mnist' / 'cifar10.npz').unlink()
    np.savez(tmp_path / 'mnist' / 'dermamnist.npz', images=np.zeros((2, 28, 28), np.uint8))   # a MedMNIST name, other contents
    _refused(tmp_path, tmp_path / 'mnist', 'dermamnist.npz is not a MedMNIST file', "lacks ['train_images'")


def _check_run(tmp, flags, runs, experts, folder='tiny-28px'):
    "The outputs of a finished recipe on the files `flags`, with pretraining runs `runs` of `experts` experts."
    figs, base = tmp / 'figures', tmp / 'runs' / 'medmnist' / folder
    n_modalities = len({f for f, _, _ in flags})
    for name in runs:
        cfg = json.loads((base / 'pretrain' / name / 'config.json').read_text())
        assert cfg['data'] == f"medmnist:{base / 'files'}" and cfg['num_experts'] == experts
        summary = json.loads((base / 'pretrain' / name / 'summary.json').read_text())
        if not name.startswith('dino'): assert np.shape(summary['routing_matrix']) == (n_modalities, experts)
    res = pd.read_csv(base / 'evaluate' / 'results.csv')
    assert set(res.dataset) == {f for f, _, _ in flags} and set(runs) <= set(res.encoder)
    assert set(res.protocol) == {'knn', 'logreg'}
    for protocol in ('knn', 'logreg'): assert (figs / 'tables' / f'table3_{protocol}.md').stat().st_size > 0
    for name in ('fig3a_routing', 'fig5_tsne'):
        for ext in ('png', 'pdf'): assert (figs / f'{name}.{ext}').stat().st_size > 0, name
    assert (figs / 'tables' / 'claim_verdicts.csv').is_file() and (figs / 'tables' / 'claim_quantities.csv').is_file()
    return res, (figs / 'README.md').read_text()


@pytest.mark.slow
def test_recipe_on_two_modalities_with_two_pretraining_seeds_and_rerun_skips(tmp_path):
    write_medmnist(tmp_path / 'mnist', flags=TWO, n=(24, 8, 8))
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'pretrain_seeds', '2')
    assert r.returncode == 0, r.stderr[-4000:]
    runs = [f'{v}@{s}' for s in (0, 1) for v in ('dino', 'moe', 'moe_route', 'midol')]
    res, readme = _check_run(tmp_path, TWO, runs, experts=2)                    # one expert per modality by default
    assert {'random init', 'pixels', 'supervised'} <= set(res.encoder)
    text = (tmp_path / 'figures' / 'tables' / 'table3_logreg.md').read_text()
    for block in ('Microscopy', 'Abdominal CT'): assert block in text, block
    assert '± nan' not in text and 'supervised' in text
    assert 'bloodmnist.npz' in readme and 'routing NMI of midol' in readme
    assert set(_steps(tmp_path).values()) == {'ran'} and len(_steps(tmp_path)) == len(runs) + 2
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'pretrain_seeds', '2')       # a rerun skips pretraining and evaluation
    assert r.returncode == 0, r.stderr[-4000:]
    steps = _steps(tmp_path)
    assert all(steps[s] == 'skipped' for s in steps if s != 'tables-and-figures'), steps


@pytest.mark.slow
def test_recipe_on_three_modalities_with_more_experts(tmp_path):
    write_medmnist(tmp_path / 'mnist', flags=THREE, n=(24, 8, 8))
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'pretrain_seeds', '1', '-p', 'num_experts', '4', '-p', 'reference_rows', 'False')
    assert r.returncode == 0, r.stderr[-4000:]
    _, readme = _check_run(tmp_path, THREE, ['dino', 'moe', 'moe_route', 'midol'], experts=4)
    text = (tmp_path / 'figures' / 'tables' / 'table3_knn.md').read_text()
    for block in ('Retinology (Fundus)', 'Radiology (X-ray)', 'Ultrasound'): assert block in text, block
    assert 'ResNet-18 (28) [MedMNIST v2]' in text and 'auto-sklearn [MedMNIST v2]' in text   # the published rows beside ours
    assert 'ZhangCXR' in (tmp_path / 'figures' / 'tables' / 'table3_paper.md').read_text()   # the paper's rows for pneumoniamnist
    for name in ('retinamnist.npz', 'pneumoniamnist.npz', 'breastmnist.npz', 'breast ultrasound'): assert name in readme, name


@pytest.mark.slow
def test_recipe_with_overrides_trains_in_folders_of_its_own(tmp_path):
    "-p overrides reaches every pretraining run, whose folder is named after it; the recipe's own folder stays untouched."
    write_medmnist(tmp_path / 'mnist', flags=THREE, n=(24, 8, 8))
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'pretrain_seeds', '1', '-p', 'reference_rows', 'False',
                '-p', 'overrides', '{"balance": "source"}')
    assert r.returncode == 0, r.stderr[-4000:]
    runs = ['dino', 'moe', 'moe_route', 'midol']
    _check_run(tmp_path, THREE, runs, experts=3, folder='tiny-28px-balance-source')
    base = tmp_path / 'runs' / 'medmnist' / 'tiny-28px-balance-source'
    for v in runs: assert json.loads((base / 'pretrain' / v / 'config.json').read_text())['balance'] == 'source', v
    assert not (tmp_path / 'runs' / 'medmnist' / 'tiny-28px').exists()


def test_overrides_with_use_reference_are_refused(tmp_path):
    "References were trained with the preset's settings: asking for both is refused before anything runs."
    write_medmnist(tmp_path / 'mnist', flags=THREE, n=2)
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'use_reference', 'True', '-p', 'overrides', '{"balance": "source"}')
    assert r.returncode != 0 and 'drop one of the two' in r.stderr + r.stdout
    assert not (tmp_path / 'runs').exists()
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'overrides', 'balance=source')             # not JSON
    assert r.returncode != 0 and 'overrides is not valid JSON' in r.stderr + r.stdout
    assert not (tmp_path / 'runs').exists()


def _make_references(runs, root):
    "Run tools/make_reference.py medmnist on a recipe's pretrain folder in a fresh process."
    r = subprocess.run([sys.executable, 'tools/make_reference.py', 'medmnist', '--runs', str(runs), '--root', str(root)],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return sorted(p.name for p in Path(root).iterdir())


def test_use_reference_refuses_files_of_another_md5(tmp_path):
    "References made from (untrained) recipe runs are refused, before any pretraining, when a file's MD5 differs."
    from midol.medmnist import file_md5, link_files, pretrain_params, recipe_layout, save_medmnist_reference
    from midol.pretrain import finish_run, run_config, start_run
    files = write_medmnist(tmp_path / 'mnist', flags=TWO, n=(24, 4, 4))
    first = recipe_layout('tiny', 28, tmp_path / 'first'); link_files({f.name: f for f in files.values()}, first['files'])
    for v, out in first['variants'].items():
        run = start_run(run_config(**pretrain_params('tiny', v, f"medmnist:{first['files']}", out, num_experts=2)))
        run.history.log(dict(step=1, epoch=0, loss=1.)); finish_run(run, wall=1., n_images=0)
        save_medmnist_reference(out, 28, tmp_path / 'ref')
    old = file_md5(files['organamnist'])
    new = write_medmnist(tmp_path / 'mnist', flags=TWO, n=(24, 4, 4), seed=1)['organamnist']   # same names, other bytes
    r = _recipe(tmp_path, tmp_path / 'mnist', '-p', 'use_reference', 'True', '-p', 'reference_root', str(tmp_path / 'ref'))
    assert r.returncode != 0
    for part in (f'organamnist.npz has MD5 {file_md5(new)} here, {old} in the reference', 'use_reference=False'):
        assert part in r.stderr + r.stdout, part
    assert not list((tmp_path / 'runs').rglob('03_pretrain-*.ipynb'))                       # nothing was trained


@pytest.mark.slow
def test_recipe_takes_references_instead_of_pretraining(tmp_path):
    "References made from a first tiny recipe fill a second recipe in a fresh runs_dir: no pretraining, same encoders, finished runs."
    write_medmnist(tmp_path / 'mnist', flags=TWO, n=(24, 8, 8)); (tmp_path / 'a').mkdir(); (tmp_path / 'b').mkdir()
    fast = ('-p', 'pretrain_seeds', '1', '-p', 'protocols', 'knn', '-p', 'reference_rows', 'False')
    r = _recipe(tmp_path / 'a', tmp_path / 'mnist', *fast)
    assert r.returncode == 0, r.stderr[-4000:]
    first = tmp_path / 'a' / 'runs' / 'medmnist' / 'tiny-28px'
    assert len(_make_references(first / 'pretrain', tmp_path / 'ref')) == 4
    use = ('-p', 'use_reference', 'True', '-p', 'reference_root', str(tmp_path / 'ref'))
    r = _recipe(tmp_path / 'b', tmp_path / 'mnist', *fast, *use)
    assert r.returncode == 0, r.stderr[-4000:]
    second, runs = tmp_path / 'b' / 'runs' / 'medmnist' / 'tiny-28px', ['dino', 'moe', 'moe_route', 'midol']
    steps = _steps(tmp_path / 'b')
    assert [steps[f'pretrain-{v}'] for v in runs] == ['installed'] * 4 and steps['evaluate'] == 'ran', steps
    assert not list(second.rglob('03_pretrain-*.ipynb'))                                          # nothing was trained
    for v in runs: assert (second / 'pretrain' / v / 'encoder.safetensors').read_bytes() == (first / 'pretrain' / v / 'encoder.safetensors').read_bytes()
    for v in runs: assert json.loads((second / 'pretrain' / v / 'config.json').read_text())['data'] == f"medmnist:{second / 'files'}"
    assert set(pd.read_csv(second / 'evaluate' / 'results.csv').encoder) == set(runs)
    for name in ('fig3a_routing.png', 'fig5_tsne.png', 'tables/table3_knn.md'): assert (tmp_path / 'b' / 'figures' / name).stat().st_size > 0
    assert '| pretrain-midol | installed |' in (tmp_path / 'b' / 'figures' / 'README.md').read_text()
    from midol.medmnist import pretrain_params
    from midol.reproduce import pretrain_state
    for v in runs:                                                                             # a rerun would skip them
        assert pretrain_state(pretrain_params('tiny', v, f"medmnist:{second / 'files'}", second / 'pretrain' / v, num_experts=2)) == 'done'
