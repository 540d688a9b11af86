"""Reproduction: the whole pipeline (pretraining, sweep, official mode, evaluation, Grad-CAM, figures) on the tiny preset,
through papermill as `make reproduce` runs it. The unit checks live in nbs/06_reproduce.ipynb."""
import json, re, subprocess, sys
from pathlib import Path
import pytest
from PIL import Image
from midol.figures import FIGURES, TABLES

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _reproduce(tmp, *extra):
    "Run nbs/06_reproduce.ipynb with the tiny preset into `tmp` (runs and figures), the way `make reproduce` does."
    out = tmp / 'executed.ipynb'
    cmd = [str(BIN / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/06_reproduce.ipynb', str(out), '-p', 'preset', 'tiny',
           '-p', 'runs_dir', str(tmp / 'runs'), '-p', 'fig_dir', str(tmp / 'figures'), *extra]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(out.read_text())


def _log(nb):
    "The step lines the driver printed: step name -> status."
    text = ''.join(''.join(o.get('text', '')) for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'stream')
    lines = [m.groups() for m in re.finditer(r'^\[\s*\d+/(\d+)\]\s+(\S+)\s+(\S+)', text, re.M)]
    n = max(int(t) for t, _, _ in lines)                                     # the driver's steps, not the notebook's own tests
    return {name: status for t, name, status in lines if int(t) == n}


def _committed_figures():
    "Every file under the project's figures/ with its modification time."
    return {str(p): p.stat().st_mtime_ns for p in (ROOT / 'figures').rglob('*') if p.is_file()}


@pytest.mark.slow
def test_tiny_reproduction_makes_every_figure_and_resumes(tmp_path):
    committed = _committed_figures()
    nb = _reproduce(tmp_path)
    figs = tmp_path / 'figures'
    for name in FIGURES:
        png, pdf = figs / f'{name}.png', figs / f'{name}.pdf'
        assert png.is_file() and pdf.is_file(), name
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            assert im.format == 'PNG' and min(im.size) > 100, (name, im.size)
        assert pdf.read_bytes()[:5] == b'%PDF-', name
    for t in TABLES:
        for ext in ('md', 'csv'): assert (figs / 'tables' / f'{t}.{ext}').stat().st_size > 0
    for ext in ('md', 'tex', 'csv'): assert (figs / 'tables' / f'table2_ablation.{ext}').is_file()
    readme = (figs / 'README.md').read_text()
    assert all(f'`{n}.{{pdf,png}}`' in readme for n in FIGURES) and 'make reproduce PRESET=tiny' in readme
    assert 'Preset `tiny`' in readme and not (tmp_path / 'README.md').exists()   # an explicit fig_dir leaves the index alone
    assert _committed_figures() == committed                                   # the committed figures are untouched
    first = _log(nb)
    assert set(first.values()) == {'ran'}
    assert not list((ROOT / 'nbs').glob('*executed*'))                       # executed copies never land in nbs/
    assert (tmp_path / 'runs' / 'reproduce' / 'tiny' / 'notebooks' / '05_figures.ipynb').is_file()
    # a second run finds every step done and retrains nothing
    log = _log(_reproduce(tmp_path))
    assert set(log.values()) == {'skipped'}, log
    assert sorted(log) == sorted(first)                                       # the same steps, every one of them skipped


@pytest.mark.slow
def test_a_reproduction_killed_in_its_evaluation_resumes_without_redoing_work(tmp_path):
    "Killed (crash hook) at its evaluation's 4th recorded run, then run again: nothing finished is redone."
    env = dict(__import__('os').environ, MIDOL_CRASH_AT='eval-result-recorded:4',     # the 4th run recorded ...
               MIDOL_CRASH_DIR=str(tmp_path / 'runs' / 'evaluate'))                   # ... by the evaluation step (not by the notebooks' own checks)
    out = tmp_path / 'executed.ipynb'
    cmd = [str(BIN / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/06_reproduce.ipynb', str(out), '-p', 'preset', 'tiny',
           '-p', 'runs_dir', str(tmp_path / 'runs'), '-p', 'fig_dir', str(tmp_path / 'figures')]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode != 0, 'the crash hook did not end the evaluation'
    ev = tmp_path / 'runs' / 'evaluate' / 'tiny'
    done = {p.name: p.stat().st_mtime_ns for p in (ev / 'predictions').iterdir()}
    assert len(done) == 4
    log = _log(_reproduce(tmp_path))
    assert all(s == 'skipped' for n, s in log.items() if n.startswith('pretrain')), log   # the pretrainings finished before
    assert log['evaluate'] == 'ran'
    assert all((ev / 'predictions' / n).stat().st_mtime_ns == t for n, t in done.items())  # the 4 finished runs were kept
