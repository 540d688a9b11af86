"""Crash windows of a pretraining run: a run ended at every named point of a checkpoint write, and a run killed with
SIGKILL at twenty random moments, resume to the weights and history of a run that was never interrupted. The points
are `midol.runs.crash_point` calls; `MIDOL_CRASH_AT=<point>:<n>` ends the process the n-th time it gets there."""
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import load_file
from midol.runs import CRASH_EXIT, CRASH_ENV, REFERENCE_FILES, newest_checkpoint, verify_reference

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONHASHSEED='0')
EVERY_STEP = '{"ckpt_every": 1}'                     # a checkpoint after every step: the most writes to be killed in
SHORT, LONG = 4, 40                                  # epochs of the tiny preset: 12 and 120 steps

# Starting Python and importing torch and timm takes 5 s on an idle 2-core machine and over 15 s on a loaded one, while
# a tiny run trains in a second: forty fresh interpreters would make this file slow and its kills land mostly in
# imports. So a server process imports midol.pretrain once and forks one child per run; the child runs the module as
# `python -m midol.pretrain ARGS` does (runpy, __main__) and its exit status or killing signal comes back as is.
# tests/test_pretrain.py keeps a kill test of a freshly started interpreter.
SERVER = r"""
import json, os, runpy, sys, traceback
import midol.pretrain
for line in sys.stdin:
    req = json.loads(line)
    if req['op'] == 'wait':
        print(os.waitstatus_to_exitcode(os.waitpid(req['pid'], 0)[1]), flush=True); continue
    pid = os.fork()
    if pid:
        print(pid, flush=True); continue
    fd = os.open(req['log'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(fd, 1); os.dup2(fd, 2)
    os.environ.update(req['env']); sys.argv = ['midol.pretrain', *req['args']]
    try: runpy.run_module('midol.pretrain', run_name='__main__'); code = 0
    except SystemExit as e: code = e.code if isinstance(e.code, int) else 1
    except BaseException: traceback.print_exc(); code = 1
    sys.stdout.flush(); sys.stderr.flush(); os._exit(code)
"""


class Runs:
    "Tiny pretraining runs forked from one server process (see SERVER)."
    def __init__(self, logs:Path):
        self.logs, self.n = logs, 0
        self.server = subprocess.Popen([sys.executable, '-c', SERVER], env=ENV, cwd=ROOT, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
    def _ask(self, **req):
        self.server.stdin.write(json.dumps(req) + '\n'); self.server.stdin.flush()
        return int(self.server.stdout.readline())
    def start(self, out, epochs, resume=True, crash=None):
        "Start a run; (its pid, the file of its stdout and stderr)."
        self.n += 1; log = self.logs / f'run{self.n}.log'
        args = ['--preset', 'tiny', '--epochs', str(epochs), '--overrides', EVERY_STEP, '--resume', str(resume), '--out-dir', str(out)]
        return self._ask(op='start', args=args, env={CRASH_ENV: crash} if crash else {}, log=str(log)), log
    def wait(self, pid)->int: return self._ask(op='wait', pid=pid)   # exit status, or -signal
    def run(self, out, epochs, resume=True, crash=None)->tuple: # (exit status, stderr and stdout)
        "Run to its end (or to the crash point `crash`)."
        pid, log = self.start(out, epochs, resume, crash)
        return self.wait(pid), log.read_text()
    def close(self): self.server.stdin.close(); self.server.wait()


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    r = Runs(tmp_path_factory.mktemp('logs')); yield r; r.close()


def finished(runs, out, epochs)->str: # what the run printed
    "Run `out` to its end, failing with the run's output when it does not finish."
    code, log = runs.run(out, epochs)
    assert code == 0, f'the resumed run failed (exit {code}):\n{log[-3000:]}'
    return log


def assert_same_run(a, b):
    "Runs `a` and `b` wrote the same history, row by row, and the same teacher encoder."
    ha, hb = pd.read_csv(a / 'history.csv'), pd.read_csv(b / 'history.csv')
    assert ha.step.tolist() == hb.step.tolist() == list(range(1, len(ha) + 1))
    pd.testing.assert_frame_equal(ha, hb, rtol=1e-5)
    wa, wb = load_file(a / 'encoder.safetensors'), load_file(b / 'encoder.safetensors')
    assert wa.keys() == wb.keys()
    for k in wa: torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope='module')
def uninterrupted(runs, tmp_path_factory):
    "The short and the long run, never interrupted."
    base = tmp_path_factory.mktemp('uninterrupted')
    for epochs in (SHORT, LONG): assert runs.run(base / str(epochs), epochs, resume=False)[0] == 0
    return {e: base / str(e) for e in (SHORT, LONG)}


# (point, the step checkpoint.pt holds when the run ends at its 5th visit there). The first write has no previous
# checkpoint to keep, so the 5th visit of a 'ckpt-prev' point is in the write of step 6, the others' in that of step 5.
POINTS = [('ckpt-partial', 4), ('ckpt-written', 4), ('ckpt-prev-linked', 5), ('ckpt-prev-saved', 5), ('ckpt-saved', 5)]


@pytest.mark.parametrize('point,step', POINTS)
def test_a_crash_at_each_point_of_a_checkpoint_write_resumes(tmp_path, runs, uninterrupted, point, step):
    out = tmp_path / 'run'
    code, log = runs.run(out, SHORT, resume=False, crash=f'{point}:5')
    assert code == CRASH_EXIT, f'expected the crash hook to end the run at {point} (exit {code}):\n{log[-3000:]}'
    assert not (out / 'summary.json').exists()
    assert newest_checkpoint(out)[0]['step'] == step                 # the old or the new checkpoint, whole and verified
    log = finished(runs, out, SHORT)
    assert 'resuming from the older' not in log                      # no fallback was needed: the newest one verified
    assert not list(out.glob('.*.tmp'))                              # the dead writer's temporary was cleared
    assert_same_run(uninterrupted[SHORT], out)


def test_a_corrupt_checkpoint_resumes_from_the_older_one_and_says_so(tmp_path, runs, uninterrupted):
    out = tmp_path / 'run'
    assert runs.run(out, SHORT, resume=False, crash='ckpt-saved:6')[0] == CRASH_EXIT
    ck = out / 'checkpoint.pt'; raw = bytearray(ck.read_bytes()); raw[-100] ^= 0xFF; ck.write_bytes(bytes(raw))  # one bit rots
    log = finished(runs, out, SHORT)
    assert 'checkpoint.pt is truncated or corrupt' in log and 'resuming from the older checkpoint.prev.pt (step 5)' in log, log[-3000:]
    assert_same_run(uninterrupted[SHORT], out)


def _alive(pid)->bool:
    "Whether the child `pid` still runs (a finished child that nobody waited for yet is a zombie)."
    try: return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError: return False


def _wait_for_training(out, pid, since, timeout=900):
    "Wait until run `pid` has written a checkpoint after `since` (it is past its start and training)."
    t0 = time.time()
    while time.time() - t0 < timeout and _alive(pid):
        ck = out / 'checkpoint.pt'
        if ck.exists() and ck.stat().st_mtime > since: return True
        time.sleep(0.005)
    return False


def test_twenty_sigkills_at_random_moments_all_resume(tmp_path, runs, uninterrupted):
    out, rng, kills, torn = tmp_path / 'run', random.Random(0), 0, 0
    while kills < 20:
        started = time.time(); pid, log = runs.start(out, LONG)
        if _wait_for_training(out, pid, started):
            time.sleep(rng.uniform(0, 0.3))                          # anywhere in the steps and checkpoint writes after it
            os.kill(pid, signal.SIGKILL)
        code = runs.wait(pid)
        if code == 0: break                                          # it finished before it could be killed
        assert code == -signal.SIGKILL, f'the run failed on its own (exit {code}):\n{log.read_text()[-3000:]}'
        kills += 1; torn += bool(list(out.glob('.*.tmp')))
    assert kills == 20, f'the run finished after {kills} kills: give it more steps'
    print(f'{kills} kills, {torn} of them in the middle of a write (a temporary left behind)')
    finished(runs, out, LONG)
    assert_same_run(uninterrupted[LONG], out)


# ---- an evaluation sweep ended between its two writes ----------------------------------------------------------

SWEEP = """
import sys, torch
torch.set_num_threads(1)
from midol.floors import PixelEncoder
from midol.evaluate import run_protocols
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


# ---- a reference folder replaced while a kill comes ------------------------------------------------------------

REFERENCE = """
import sys
from pathlib import Path
from midol.pretrain import start_run, finish_run, run_config
from midol.runs import save_reference
out, dest = Path(sys.argv[1]), Path(sys.argv[2])
for seed in (0, 1):        # two finished (untrained) runs of the tiny preset: the second replaces the first's reference
    run = start_run(run_config('tiny', 'dino', str(out / f'seed{seed}'), seed=seed)); run.history.log(dict(step=1, epoch=0, loss=1.))
    finish_run(run, wall=1., n_images=0)
    save_reference(out / f'seed{seed}', dest, run_config('tiny', 'dino', seed=seed))
"""


@pytest.mark.parametrize('point,seed', [('ref-moved-out', 1), ('ref-swapped', 1)])
def test_a_reference_replaced_when_a_kill_comes_is_whole(tmp_path, point, seed):
    "Ended between the renames of its second save, the reference folder is the first run's or the second's, whole."
    dest = tmp_path / 'ref' / 'tiny-dino'
    env = dict(ENV, **{CRASH_ENV: f'{point}:2'})
    r = subprocess.run([sys.executable, '-c', REFERENCE, str(tmp_path / 'runs'), str(dest)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == CRASH_EXIT, r.stderr[-3000:]
    listed = verify_reference(dest)                                  # recovers the swap, then checks every file
    assert json.loads((dest / 'config.json').read_text())['seed'] == seed   # the new reference was staged whole: completed
    assert sorted(listed) == sorted(REFERENCE_FILES)
    assert not dest.with_name(dest.name + '.new').exists() and not dest.with_name(dest.name + '.old').exists()
