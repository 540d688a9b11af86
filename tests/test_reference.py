"""Reference runs (issue 15): `tools/make_reference.py` copies finished runs into reference folders with SHA-256
checksums; the 03 driver with `use_reference True` installs one instead of training and draws the figures of a real
run; a corrupted file is refused by name; an installed run is what the reproduction, the evaluation and the figures
read as a finished run. The unit checks live in nbs/02f_runs.ipynb and nbs/03_pretrain.ipynb."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch
from midol.synthmed import MODALITIES
from midol.figures import (plot_knn, plot_losses, plot_routing, plot_usage, read_run, routing_by_modality, run_features,
                           run_images, run_layout)
from midol.model import VARIANTS
from midol.pretrain import finish_run, pretrain, reference_dir, resolve_config, run_config, save_run, start_run
from midol.runs import CHECKPOINT_FILES, CHECKSUMS, REFERENCE_FILES, ReferenceError, install_reference, verify_reference
from midol.reproduce import ablation_encoders, install_ablation_references, pretrain_state

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')
FIGURES = ('losses', 'expert_usage', 'routing', 'knn')  # what the 03 driver draws after a run
SAVED = ('history.csv', 'summary.json', 'encoder.safetensors')  # copied byte for byte (config.json: out_dir rewritten)


def untrained_run(out_dir, variant:str, seed:int=0):
    "A finished tiny run whose model was never trained (every output file and a checkpoint, in a second)."
    run = start_run(run_config('tiny', variant, str(out_dir), seed=seed))
    run.history.log(dict(step=1, epoch=0, loss=1.)); save_run(run, epoch=0); finish_run(run, wall=1., n_images=0)


def make_reference(runs_dir, root, *options):
    "Run tools/make_reference.py for the tiny preset in a fresh process."
    return subprocess.run([sys.executable, 'tools/make_reference.py', 'tiny', '--runs-dir', str(runs_dir), '--root', str(root),
                           *options], cwd=ROOT, env=ENV, capture_output=True, text=True)


@pytest.fixture(scope='module')
def references(tmp_path_factory):
    "Finished tiny runs of the four variants (midol trained, the others not), and references made by the tool."
    tmp = tmp_path_factory.mktemp('reference')
    for v in VARIANTS:
        out = tmp / 'runs' / 'pretrain' / f'tiny-{v}'
        if v == 'midol': pretrain(resolve_config('tiny', v, out_dir=str(out)), progress=False)
        else: untrained_run(out, v)
    r = make_reference(tmp / 'runs', tmp / 'reference')
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp


def test_tool_writes_checked_references(references):
    for v in VARIANTS:
        ref = reference_dir('tiny', v, references / 'reference')
        assert sorted(p.name for p in ref.iterdir()) == sorted(REFERENCE_FILES + (CHECKSUMS,)), v   # no checkpoint
        assert sorted(verify_reference(ref)) == sorted(REFERENCE_FILES)
        assert subprocess.run(['sha256sum', '-c', '--quiet', CHECKSUMS], cwd=ref).returncode == 0
        run = references / 'runs' / 'pretrain' / f'tiny-{v}'
        for f in SAVED: assert (ref / f).read_bytes() == (run / f).read_bytes(), f
        assert json.loads((ref / 'config.json').read_text())['out_dir'] == f'runs/pretrain/tiny-{v}'   # no machine path


def test_tool_keeps_checkpoints_when_asked(references, tmp_path):
    "--checkpoint: the checkpoint travels too (listed, verified), so 05's routing figure can read an installed run."
    r = make_reference(references / 'runs', tmp_path / 'reference', '--checkpoint')
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(verify_reference(tmp_path / 'reference' / 'tiny-moe')) == sorted(REFERENCE_FILES + CHECKPOINT_FILES)
    install_reference(reference_dir('tiny', 'moe', tmp_path / 'reference'), tmp_path / 'run', run_config('tiny', 'moe', str(tmp_path / 'run')))
    R, nmi = routing_by_modality(tmp_path / 'run', 4)
    assert len(R) == len(MODALITIES) and 0 <= nmi <= 1


def test_tool_keeps_every_seed_asked_for(tmp_path):
    "--seeds 2: seed 1 of each variant goes to <preset>-<variant>-seed1, and installs for a run of that seed."
    for v in VARIANTS:
        for seed in (0, 1): untrained_run(tmp_path / 'runs' / 'pretrain' / f"tiny-{v}{'-seed1' if seed else ''}", v, seed)
    r = make_reference(tmp_path / 'runs', tmp_path / 'reference', '--seeds', '2')
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(f'tiny-{v}{s}' for v in VARIANTS for s in ('', '-seed1'))
    assert sorted(p.name for p in (tmp_path / 'reference').iterdir()) == names
    seed1 = run_config('tiny', 'dino', str(tmp_path / 'out'), seed=1)
    summary = install_reference(reference_dir('tiny', 'dino', tmp_path / 'reference', 1), tmp_path / 'out', seed1)
    assert summary == json.loads((tmp_path / 'runs' / 'pretrain' / 'tiny-dino-seed1' / 'summary.json').read_text())


def test_tool_refuses_unfinished_runs(tmp_path):
    r = make_reference(tmp_path / 'runs', tmp_path / 'reference')
    assert r.returncode != 0 and 'is not a finished run' in r.stderr


def test_driver_installs_the_reference_instead_of_training(references, tmp_path):
    "papermill 03 with use_reference True: no training (history unchanged, no checkpoint), every figure drawn."
    out = tmp_path / 'run'
    r = subprocess.run([str(BIN / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/03_pretrain.ipynb',
                        str(tmp_path / 'executed.ipynb'), '-p', 'preset', 'tiny', '-p', 'variant', 'midol', '-p', 'out_dir', str(out),
                        '-p', 'use_reference', 'True', '-p', 'reference_root', str(references / 'reference')],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = reference_dir('tiny', 'midol', references / 'reference')
    for f in SAVED: assert (out / f).read_bytes() == (ref / f).read_bytes(), f             # history unchanged ...
    assert not (out / 'checkpoint.pt').exists()                                         # ... and no training
    for name in FIGURES:
        for ext in ('png', 'pdf'): assert (out / f'{name}.{ext}').stat().st_size > 0, name
    params = dict(preset='tiny', variant='midol', num_experts=0, fidelity='', out_dir=str(out))
    assert pretrain_state(params) == 'done'                                            # the reproduction counts it finished


def test_corrupted_reference_is_refused_by_name(references, tmp_path):
    root = tmp_path / 'reference'
    shutil.copytree(reference_dir('tiny', 'dino', references / 'reference'), root / 'tiny-dino')
    enc = root / 'tiny-dino' / 'encoder.safetensors'
    data = bytearray(enc.read_bytes()); data[-1] ^= 1; enc.write_bytes(bytes(data))              # one bit flipped
    with pytest.raises(ReferenceError, match=r'encoder\.safetensors is corrupt .*make_reference\.py tiny'):
        install_reference(reference_dir('tiny', 'dino', root), tmp_path / 'out', run_config('tiny', 'dino', str(tmp_path / 'out')))
    assert not (tmp_path / 'out' / 'summary.json').exists()                             # nothing installed
    (root / 'tiny-dino' / 'history.csv').unlink()
    with pytest.raises(ReferenceError, match=r'history\.csv is missing'): verify_reference(root / 'tiny-dino')


def test_installed_runs_are_read_as_finished_runs(references, tmp_path):
    "The evaluation finds the four runs finished (trains nothing); the figures read history, summary and encoder."
    layout = run_layout('tiny', tmp_path / 'runs', pretrain_seeds=2)                  # seed 1 has no reference: left to train
    filled = install_ablation_references('tiny', tmp_path / 'runs', 2, references / 'reference')
    assert filled == list(layout['variants'].values())
    assert install_ablation_references('tiny', tmp_path / 'runs', 2, references / 'reference') == []   # finished: left alone
    found = ablation_encoders('tiny', runs_dir=tmp_path / 'runs', progress=False, pretrain_seeds=1)   # the references: seed 0
    assert found == {v: str(d) for v, d in layout['variants'].items()}
    assert not list((tmp_path / 'runs').rglob('checkpoint.pt'))                         # nothing was trained
    run = read_run(layout['variants']['midol'])
    assert len(run['history']) == len(pd.read_csv(references / 'runs/pretrain/tiny-midol/history.csv'))
    x, _, _ = run_images(run['config'], 'train', 4)
    f = run_features(layout['variants']['midol'], x)
    assert f.shape[0] == len(x) and torch.isfinite(torch.as_tensor(f)).all()
    summary, history = run['summary'], run['history']
    for fig in (plot_losses({'midol': history}), plot_usage({'midol': history}), plot_knn({'midol': summary}),
                plot_routing({'midol': (summary['routing_matrix'], summary['routing_nmi'])}, MODALITIES)):
        assert fig.axes
