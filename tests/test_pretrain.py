"""Pretraining: every variant learns, kill-and-resume equivalence, encoder export, torchrun, papermill driver."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import load_file
from midol.pretrain import (run_config, pretrain, build_model, pretrain_dataset, load_checkpoint, CheckpointError,
                            save_checkpoint, check_resumable)
from midol.data import MultiCrop
from midol.model import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')


def _cli(*args, **kw):
    "Command line of a pretraining run in a fresh process."
    return [PY, '-m', 'midol.pretrain', *map(str, args)]


@pytest.mark.parametrize('variant', VARIANTS)
def test_variant_loss_decreases_on_fixed_batch(variant):
    torch.manual_seed(0)
    cfg = run_config('tiny', variant=variant, out_dir='unused')
    model = build_model(cfg)
    x = pretrain_dataset(cfg).images[:32]
    mc = MultiCrop(n_global=2, n_local=2, global_size=32, local_size=16)
    views = mc(x, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.student.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        out = model(views, epoch=0.)
        opt.zero_grad(); out['loss'].backward(); opt.step(); model.update_teacher(0.99)
        losses.append(out['loss'].item())
    assert losses[-1] < losses[0], (variant, losses)


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    ref, cut = tmp_path / 'ref', tmp_path / 'cut'
    common = ['--preset', 'tiny', '--epochs', 4, '--resume', 'False']
    subprocess.run(_cli(*common, '--out-dir', ref), check=True, env=ENV, cwd=ROOT, capture_output=True)
    p = subprocess.Popen(_cli(*common, '--out-dir', cut), env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hist, t0 = cut / 'history.csv', time.time()
    while time.time() - t0 < 120:             # kill it hard once it is a few steps in, past a checkpoint
        if hist.exists() and len(hist.read_text().splitlines()) >= 6 and (cut / 'checkpoint.pt').exists(): break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (cut / 'summary.json').exists(), 'the run finished before it could be killed'
    subprocess.run(_cli('--preset', 'tiny', '--epochs', 4, '--resume', 'True', '--out-dir', cut), check=True, env=ENV, cwd=ROOT, capture_output=True)
    a, b = pd.read_csv(ref / 'history.csv'), pd.read_csv(cut / 'history.csv')
    assert a.step.tolist() == b.step.tolist()
    pd.testing.assert_frame_equal(a.tail(5).reset_index(drop=True), b.tail(5).reset_index(drop=True), rtol=1e-5)
    wa, wb = load_file(ref / 'encoder.safetensors'), load_file(cut / 'encoder.safetensors')
    assert wa.keys() == wb.keys()
    for k in wa: torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def test_outputs_and_encoder_loads_into_timm(tmp_path):
    import timm
    cfg = run_config('tiny', out_dir=str(tmp_path), epochs=1)
    summary = pretrain(cfg, progress=False)
    for f in ('config.json', 'history.csv', 'checkpoint.pt', 'encoder.safetensors', 'summary.json'): assert (tmp_path / f).exists(), f
    for k in ('routing_nmi', 'expert_usage', 'knn_accuracy', 'wall_seconds', 'images_per_second'): assert k in summary, k
    assert abs(sum(summary['expert_usage']) - 1) < 1e-6 and 0 <= summary['routing_nmi'] <= 1
    hist = pd.read_csv(tmp_path / 'history.csv')
    for c in ('step', 'epoch', 'loss', 'l_route', 'l_cst', 'lr', 'momentum', 'usage_0'): assert c in hist, c
    spec = json.load(open(tmp_path / 'config.json'))['backbone']
    enc = timm.create_model(spec['name'], pretrained=False, num_classes=0, **spec['kwargs'])
    enc.load_state_dict(load_file(tmp_path / 'encoder.safetensors'))
    ck = load_checkpoint(tmp_path / 'checkpoint.pt')
    for k in ('model', 'optimizer', 'scaler', 'step', 'rng'): assert k in ck, k
    x = torch.rand(2, 3, 32, 32)
    teacher = build_model(cfg); teacher.load_state_dict(ck['model'])
    torch.testing.assert_close(enc.eval()(x), teacher.teacher.backbone.eval()(x))


def test_truncated_checkpoint_is_refused_on_resume(tmp_path):
    cfg = run_config('tiny', out_dir=str(tmp_path), epochs=1)
    pretrain(cfg, progress=False)
    ck = tmp_path / 'checkpoint.pt'
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    with pytest.raises(CheckpointError, match='truncated or corrupt'): pretrain(cfg, resume=True, progress=False)


def test_resume_refuses_other_settings(tmp_path):
    pretrain(run_config('tiny', out_dir=str(tmp_path), epochs=1), progress=False)
    with pytest.raises(ValueError, match='variant'): check_resumable(run_config('tiny', variant='dino', out_dir=str(tmp_path), epochs=1))


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


def test_papermill_driver_tiny(tmp_path):
    out = tmp_path / 'run'
    r = subprocess.run([str(Path(PY).parent / 'papermill'), '-k', 'python3', '--cwd', 'nbs', 'nbs/03_pretrain.ipynb',
                        str(tmp_path / 'executed.ipynb'), '-p', 'preset', 'tiny', '-p', 'out_dir', str(out)],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ('summary.json', 'losses.png', 'expert_usage.png', 'routing.png', 'knn.png'): assert (out / f).exists(), f
