"""Crash windows of a pretraining run: a run ended at every named point of a checkpoint write, and a run killed with
SIGKILL at twenty random moments, resume to the weights and history of a run that was never interrupted. The points
are `midol.pretrain.crash_point` calls; `MIDOL_CRASH_AT=<point>:<n>` ends the process the n-th time it gets there."""
import os, random, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import load_file
from midol.pretrain import CRASH_EXIT, CRASH_ENV, newest_checkpoint

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')
EVERY_STEP = '{"ckpt_every": 1}'                     # a checkpoint after every step: the most writes to be killed in
SHORT, LONG = 4, 40                                  # epochs of the tiny preset: 12 and 120 steps


def cli(out, epochs, resume=True):
    "Command line of a tiny pretraining run that checkpoints every step."
    return [sys.executable, '-m', 'midol.pretrain', '--preset', 'tiny', '--epochs', str(epochs), '--overrides', EVERY_STEP,
            '--resume', str(resume), '--out-dir', str(out)]


def run(out, epochs, resume=True, crash=None):
    "Run it to its end (or to the crash point `crash`); the finished process, its stderr kept for the messages."
    env = dict(ENV, **{CRASH_ENV: crash}) if crash else ENV
    return subprocess.run(cli(out, epochs, resume), env=env, cwd=ROOT, capture_output=True, text=True)


def finished(out, epochs):
    "Run `out` to its end, failing with the process's stderr when it does not finish."
    r = run(out, epochs)
    assert r.returncode == 0, f'the resumed run failed (exit {r.returncode}):\n{r.stderr[-3000:]}'
    return r


def assert_same_run(a, b):
    "Runs `a` and `b` wrote the same history, row by row, and the same teacher encoder."
    ha, hb = pd.read_csv(a / 'history.csv'), pd.read_csv(b / 'history.csv')
    assert ha.step.tolist() == hb.step.tolist() == list(range(1, len(ha) + 1))
    pd.testing.assert_frame_equal(ha, hb, rtol=1e-5)
    wa, wb = load_file(a / 'encoder.safetensors'), load_file(b / 'encoder.safetensors')
    assert wa.keys() == wb.keys()
    for k in wa: torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    "The short and the long run, never interrupted."
    base = tmp_path_factory.mktemp('uninterrupted')
    for epochs in (SHORT, LONG): assert run(base / str(epochs), epochs, resume=False).returncode == 0
    return {e: base / str(e) for e in (SHORT, LONG)}


# (point, the step checkpoint.pt holds when the run ends at its 5th visit there). The first write has no previous
# checkpoint to keep, so the 5th visit of a 'ckpt-prev' point is in the write of step 6, the others' in that of step 5.
POINTS = [('ckpt-partial', 4), ('ckpt-written', 4), ('ckpt-prev-linked', 5), ('ckpt-prev-saved', 5), ('ckpt-saved', 5)]


@pytest.mark.parametrize('point,step', POINTS)
def test_a_crash_at_each_point_of_a_checkpoint_write_resumes(tmp_path, uninterrupted, point, step):
    out = tmp_path / 'run'
    r = run(out, SHORT, resume=False, crash=f'{point}:5')
    assert r.returncode == CRASH_EXIT, f'expected the crash hook to end the run at {point}:\n{r.stderr[-3000:]}'
    assert not (out / 'summary.json').exists()
    assert newest_checkpoint(out)[0]['step'] == step                 # the old or the new checkpoint, whole and verified
    r = finished(out, SHORT)
    assert 'resuming from the older' not in r.stderr                 # no fallback was needed: the newest one verified
    assert not list(out.glob('.*.tmp'))                              # the dead writer's temporary was cleared
    assert_same_run(uninterrupted[SHORT], out)


def test_a_corrupt_checkpoint_resumes_from_the_older_one_and_says_so(tmp_path, uninterrupted):
    out = tmp_path / 'run'
    assert run(out, SHORT, resume=False, crash='ckpt-saved:6').returncode == CRASH_EXIT
    ck = out / 'checkpoint.pt'; raw = bytearray(ck.read_bytes()); raw[-100] ^= 0xFF; ck.write_bytes(bytes(raw))  # one bit rots
    r = finished(out, SHORT)
    assert 'checkpoint.pt is truncated or corrupt' in r.stderr and 'resuming from the older checkpoint.prev.pt (step 5)' in r.stderr, r.stderr[-3000:]
    assert_same_run(uninterrupted[SHORT], out)


def _wait_for_training(out, proc, since, timeout=120):
    "Wait until the run `proc` has written a checkpoint after `since` (it is past its start-up and training)."
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        ck = out / 'checkpoint.pt'
        if ck.exists() and ck.stat().st_mtime > since: return True
        time.sleep(0.01)
    return False


def test_twenty_sigkills_at_random_moments_all_resume(tmp_path, uninterrupted):
    out, rng, kills, torn = tmp_path / 'run', random.Random(0), 0, 0
    while kills < 20:
        started = time.time()
        p = subprocess.Popen(cli(out, LONG), env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if _wait_for_training(out, p, started):
            time.sleep(rng.uniform(0, 0.3))                          # anywhere in the steps and checkpoint writes after it
            p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        if p.returncode == 0: break                                  # it finished before it could be killed
        assert p.returncode == -signal.SIGKILL, f'the run failed on its own (exit {p.returncode}):\n{err[-3000:]}'
        kills += 1; torn += bool(list(out.glob('.*.tmp')))
    assert kills == 20, f'the run finished after {kills} kills: give it more steps'
    print(f'{kills} kills, {torn} of them in the middle of a write (a temporary left behind)')
    finished(out, LONG)
    assert_same_run(uninterrupted[LONG], out)


# ---- an evaluation sweep ended between its two writes ----------------------------------------------------------

SWEEP = """
import sys, torch
torch.set_num_threads(1)
from midol.evaluate import PixelEncoder, run_protocols
from midol.testing import toy_split
toy = {'train': toy_split(16, 0), 'val': toy_split(9, 1), 'test': toy_split(9, 2), 'num_classes': 3}
run_protocols({'pixels': PixelEncoder(32)}, {'toy': toy}, ['knn', 'logreg'], seeds=range(3), out_dir=sys.argv[1], device='cpu', verbose=False)
"""


def sweep(out, crash=None):
    "Run the sweep of `SWEEP` into `out` in a fresh process (ended at `crash` when given)."
    env = dict(ENV, **{CRASH_ENV: crash}) if crash else ENV
    return subprocess.run([sys.executable, '-c', SWEEP, str(out)], env=env, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize('point', ['eval-predictions-saved', 'eval-result-recorded'])
def test_an_evaluation_ended_between_its_writes_resumes_without_redoing_work(tmp_path, point):
    whole, cut = tmp_path / 'whole', tmp_path / 'cut'
    assert sweep(whole).returncode == 0
    r = sweep(cut, f'{point}:3')
    assert r.returncode == CRASH_EXIT, r.stderr[-3000:]
    before = pd.read_csv(cut / 'results.csv')
    assert len(before[['protocol', 'seed']].drop_duplicates()) == (2 if point == 'eval-predictions-saved' else 3)
    kept = {p.name: p.stat().st_mtime_ns for p in (cut / 'predictions').iterdir()}
    r = sweep(cut); assert r.returncode == 0, r.stderr[-3000:]
    a, b = (pd.read_csv(d / 'results.csv').sort_values(['protocol', 'seed', 'metric']).reset_index(drop=True) for d in (whole, cut))
    pd.testing.assert_frame_equal(a, b)                                    # every run once, with the uninterrupted numbers
    names = {f'pixels__toy__{p}__seed{s}.npz' for p, s in zip(b.protocol, b.seed)}
    assert names == {p.name for p in (cut / 'predictions').iterdir()}      # each recorded run has its predictions
    recorded = {f'pixels__toy__{p}__seed{s}.npz' for p, s in zip(before.protocol, before.seed)}
    assert all((cut / 'predictions' / n).stat().st_mtime_ns == kept[n] for n in recorded)  # finished runs were not redone
