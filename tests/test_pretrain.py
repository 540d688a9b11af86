"""Pretraining across processes and sources: kill-and-resume equivalence, the out_dir lock, the command line's errors,
torchrun, every kind of pretraining source end to end, and the papermill driver. The unit checks live in
nbs/03_pretrain.ipynb."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import load_file
from midol.pretrain import resolve_config, pretrain
from midol.runs import RunLock
from midol.testing import write_medmnist, write_image_folder, write_manifest

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')


def _cli(*args):
    "Command line of a pretraining run in a fresh process."
    return [PY, '-m', 'midol.pretrain', *map(str, args)]


def _strict_json(path):
    "The JSON of `path`, refusing NaN and infinities (which standard JSON does not have)."
    def refuse(c): raise ValueError(f'{path} holds {c}, which is not JSON')
    return json.loads(Path(path).read_text(), parse_constant=refuse)


def _wait_for_rows(hist, rows, proc, need_checkpoint=False, timeout=900):  # generous: a loaded machine starts slowly
    "Wait until `hist` has `rows` data rows (and a checkpoint beside it when asked) while `proc` runs."
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if hist.exists() and len(hist.read_text().splitlines()) > rows and (not need_checkpoint or (hist.parent / 'checkpoint.pt').exists()): return
        time.sleep(0.05)
    raise AssertionError(f'{hist} did not reach {rows} rows (process exit code {proc.poll()})')


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    ref, cut = tmp_path / 'ref', tmp_path / 'cut'
    common = ['--preset', 'tiny', '--epochs', 4, '--resume', 'False']
    r = subprocess.run(_cli(*common, '--out-dir', ref), env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    p = subprocess.Popen(_cli(*common, '--out-dir', cut), env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(cut / 'history.csv', 5, p, need_checkpoint=True)   # kill it hard a few steps in, past a checkpoint
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (cut / 'summary.json').exists(), 'the run finished before it could be killed'
    r = subprocess.run(_cli('--preset', 'tiny', '--epochs', 4, '--resume', 'True', '--out-dir', cut), env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f'the resumed run failed (exit {r.returncode}):\n{r.stderr[-3000:]}'
    a, b = pd.read_csv(ref / 'history.csv'), pd.read_csv(cut / 'history.csv')
    assert a.step.tolist() == b.step.tolist()
    pd.testing.assert_frame_equal(a.tail(5).reset_index(drop=True), b.tail(5).reset_index(drop=True), rtol=1e-5)
    wa, wb = load_file(ref / 'encoder.safetensors'), load_file(cut / 'encoder.safetensors')
    assert wa.keys() == wb.keys()
    for k in wa: torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def test_second_run_on_a_live_out_dir_is_refused_and_the_lock_dies_with_its_run(tmp_path):
    out = tmp_path / 'run'
    first = subprocess.Popen(_cli('--preset', 'tiny', '--epochs', 100, '--resume', 'False', '--out-dir', out), env=ENV, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_rows(out / 'history.csv', 1, first)
        second = subprocess.run(_cli('--preset', 'tiny', '--epochs', 100, '--out-dir', out), env=ENV, cwd=ROOT, capture_output=True, text=True)
        assert first.poll() is None, 'the first run ended before the second one started'
        assert second.returncode != 0 and 'being written by another run' in second.stderr, second.stderr[-2000:]
        assert f'process {first.pid}' in second.stderr
    finally:
        first.send_signal(signal.SIGKILL); first.wait()
    with RunLock(out): pass                               # the killed run holds nothing: it can be resumed at once
    steps = pd.read_csv(out / 'history.csv').step.tolist()
    assert steps == list(range(1, len(steps) + 1))        # one writer: no interleaved rows


def test_malformed_overrides_name_the_option(tmp_path):
    r = subprocess.run(_cli('--preset', 'tiny', '--out-dir', tmp_path / 'x', '--overrides', "{lr: 1}"), env=ENV, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and 'overrides is not valid JSON' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'x').exists()                  # refused before anything is written


def test_torchrun_two_processes_match_one(tmp_path):
    "2 gloo processes x 20 images give the first-step loss of 1 process x 40 (Sinkhorn and L_cst gathered across ranks)."
    one, two = tmp_path / 'one', tmp_path / 'two'
    args = ['--preset', 'tiny', '--epochs', 1, '--augment', 'False', '--resume', 'False', '--overrides', '{"drop_path_rate": 0}']
    subprocess.run(_cli(*args, '--batch-size', 40, '--out-dir', one), check=True, env=ENV, cwd=ROOT, capture_output=True)
    torchrun = [PY, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29533', '-m', 'midol.pretrain']
    r = subprocess.run(torchrun + [str(a) for a in args] + ['--batch-size', '20', '--out-dir', str(two)], env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = pd.read_csv(one / 'history.csv'), pd.read_csv(two / 'history.csv')
    for k in ('loss', 'l_route', 'l_cst'): assert abs(a[k][0] - b[k][0]) < 1e-4, (k, a[k][0], b[k][0])


def _source(kind, tmp):
    "(data setting, images it trains on, unreadable files in it) of a pretraining source of `kind` written into `tmp`."
    if kind == 'synthmed': return 'synthmed', 120, 0
    if kind == 'medmnist':   # two flags of different sizes and channel counts: pathmnist 28 px RGB, octmnist 64 px grey
        write_medmnist(tmp / 'mnist', flags=(('pathmnist', 28, 3), ('octmnist', 64, 1)), n=(6, 2, 2))
        return f"medmnist:{tmp / 'mnist'}", 12, 0
    if kind == 'manifest': return str(write_manifest(tmp / 'm' / 'manifest.csv', n=4, n_classes=2, corrupt=1)), 9, 1
    return str(write_image_folder(tmp / 'folder', n=4, corrupt=1)), 9, 1


@pytest.mark.parametrize('kind', ['synthmed', 'medmnist', 'manifest', 'folder'])
def test_every_source_kind_pretrains_end_to_end(tmp_path, kind):
    data, n, unreadable = _source(kind, tmp_path)
    batch = 40 if kind == 'synthmed' else 4
    summary = pretrain(resolve_config('tiny', out_dir=str(tmp_path / 'run'), data=data, epochs=1, batch_size=batch), progress=False)
    for f in ('config.json', 'history.csv', 'checkpoint.pt', 'encoder.safetensors', 'summary.json'): assert (tmp_path / 'run' / f).is_file(), f
    assert _strict_json(tmp_path / 'run' / 'summary.json') == json.loads(json.dumps(summary))
    assert len(pd.read_csv(tmp_path / 'run' / 'history.csv')) == n // batch
    assert summary['skipped_files'] == unreadable and len(summary['skipped_files_first']) == unreadable
    assert all('corrupt' in f for f in summary['skipped_files_first'])
    assert abs(sum(summary['expert_usage']) - 1) < 1e-6
    if kind in ('synthmed', 'medmnist'): assert summary['knn_accuracy'] and summary['knn_accuracy_mean'] is not None
    else: assert summary['knn_accuracy'] == {} and summary['knn_accuracy_mean'] is None   # no test split: null, not NaN


def test_papermill_driver_on_medmnist_files(tmp_path):
    "The driver notebook end to end on MedMNIST-layout files (the real-data path), with its figures."
    write_medmnist(tmp_path / 'mnist', flags=(('pathmnist', 28, 3), ('octmnist', 64, 1)), n=(8, 2, 2))
    out = tmp_path / 'run'
    r = subprocess.run([str(Path(PY).parent / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/03_pretrain.ipynb',
                        str(tmp_path / 'executed.ipynb'), '-p', 'preset', 'tiny', '-p', 'out_dir', str(out),
                        '-p', 'data', f"medmnist:{tmp_path / 'mnist'}", '-p', 'batch_size', '4'],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    _strict_json(out / 'summary.json')
    for f in ('losses', 'expert_usage', 'routing', 'knn'):
        for ext in ('png', 'pdf'): assert (out / f'{f}.{ext}').stat().st_size > 0, f


def test_imbalance_settings_from_the_command_line_are_recorded(tmp_path):
    "routing_prior, its strength and floor, balance='source' and mix='paper' through --overrides, in config.json and history."
    settings = {'routing_prior': 'ema', 'prior_floor': 0.5, 'balance': 'source', 'mix': 'paper'}
    out = tmp_path / 'run'
    r = subprocess.run(_cli('--preset', 'tiny', '--epochs', 1, '--out-dir', out, '--overrides', json.dumps(settings)),
                       env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((out / 'config.json').read_text())
    assert {k: cfg[k] for k in settings} == settings and cfg['model']['routing_prior'] == 'ema' and cfg['model']['prior_floor'] == 0.5
    assert {f'mass_{i}' for i in range(5)} <= set(pd.read_csv(out / 'history.csv').columns)   # the plan's expert masses
    _strict_json(out / 'summary.json')


def test_papermill_driver_takes_routing_overrides(tmp_path):
    "The driver's -p overrides reaches the model and the run's config.json."
    out = tmp_path / 'run'
    r = subprocess.run([str(Path(PY).parent / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/03_pretrain.ipynb',
                        str(tmp_path / 'executed.ipynb'), '-p', 'preset', 'tiny', '-p', 'epochs', '1', '-p', 'out_dir', str(out),
                        '-p', 'overrides', '{"routing_prior": "unbalanced", "prior_lambda": 3.0}'],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((out / 'config.json').read_text())
    assert (cfg['routing_prior'], cfg['prior_lambda'], cfg['model']['routing_prior'], cfg['model']['prior_lambda']) == ('unbalanced', 3.0, 'unbalanced', 3.0)
