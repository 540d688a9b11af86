"""What the evaluation notebooks cannot check in a cell: properties of the metrics, schedules and statistics over many
random inputs (hypothesis), a segmentation run long enough to learn, and a results file that survives the process
writing it being killed. Unit checks of every function live under its definition in nbs/02e_metrics, nbs/04_evaluate
and nbs/04b_tables."""
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from midol.metrics import dice_counts, dice_score, knn_scores, multiclass_auc
from midol.finetune import SEGMENTATION_RECIPE, FinetuneRecipe, finetune_segmentation, lr_schedule, schedule_steps, updated
from midol.floors import PixelEncoder
from midol.evaluate import RESULT_COLUMNS, run_protocols
from midol.tables import aggregate
from midol.testing import tiny_swin, toy_split

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=60, deadline=None)


# ---- properties -------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings('ignore:Mean of empty slice')   # a mask pair with no foreground: Dice is nan
@SETTINGS
@given(hnp.arrays(np.int64, st.integers(2, 60), elements=st.integers(0, 2)),
       st.randoms(use_true_random=False), st.integers(1, 59))
def test_dice_counts_add_over_batches_and_dice_is_symmetric(pred, rnd, cut):
    "Counts of a whole test set equal the sum over any split of it, and Dice does not care which mask is the prediction."
    target = np.array([rnd.randrange(3) for _ in pred]); cut = min(cut, len(pred) - 1)
    whole = dice_counts(pred, target, 3)
    assert np.array_equal(whole, dice_counts(pred[:cut], target[:cut], 3) + dice_counts(pred[cut:], target[cut:], 3))
    a, b = dice_score(pred, target, 3), dice_score(target, pred, 3)
    assert (np.isnan(a) and np.isnan(b)) or np.isclose(a, b)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(1, 30), st.integers(1, 25))
def test_knn_scores_are_a_distribution_and_scale_free(seed, n_train, k):
    "k-NN scores are non-negative rows summing to 1, unchanged when a test feature is scaled (cosine similarity)."
    g = np.random.default_rng(seed)
    train, test = g.normal(size=(n_train, 5)), g.normal(size=(7, 5))
    labels = g.integers(0, 3, n_train)
    s = knn_scores(train, labels, test, k=k, num_classes=3)
    assert s.shape == (7, 3) and (s >= 0).all() and np.allclose(s.sum(1), 1)
    assert np.allclose(s, knn_scores(train, labels, test * g.uniform(0.1, 10, (7, 1)), k=k, num_classes=3), atol=1e-5)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(2, 5))
def test_multiclass_auc_ignores_monotone_rescaling(seed, C):
    "AUC depends only on the order of each class's scores: a strictly increasing map of the scores leaves it unchanged."
    g = np.random.default_rng(seed); y = np.arange(40) % C
    probs = g.dirichlet(np.ones(C), 40)
    assert np.isclose(multiclass_auc(y, probs), multiclass_auc(y, np.exp(3 * probs) + 1))


@SETTINGS
@given(st.sampled_from(['cosine', 'poly']), st.integers(1, 20), st.floats(0, 5), st.integers(1, 30),
       st.floats(1e-6, 1.), st.floats(0., 0.5))
def test_lr_schedule_length_bounds_and_decay(schedule, epochs, warmup, steps_per_epoch, lr, floor):
    "One value per step, within [0, lr], rising during the warm-up and never rising after it."
    recipe = FinetuneRecipe(schedule=schedule, epochs=epochs, warmup_epochs=warmup, lr=lr, min_lr=floor * lr)
    total, n_warm, _ = schedule_steps(recipe, steps_per_epoch)
    lrs = lr_schedule(recipe, steps_per_epoch)
    assert len(lrs) == total and lrs.min() >= 0 and lrs.max() <= lr * (1 + 1e-9)
    assert (np.diff(lrs[:n_warm + 1]) >= -1e-12).all() and (np.diff(lrs[n_warm:]) <= 1e-12).all()


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(2, 5))
def test_aggregate_marks_only_the_second_best(seed, n_encoders):
    "Each column carries one mark, on the entry with the second-highest mean."
    g = np.random.default_rng(seed)
    rows = [(f'e{e}', 'D', 'p', s, 'ACC', 50 + 5 * e * g.random() + g.normal()) for e in range(n_encoders) for s in range(3)]
    agg = aggregate(pd.DataFrame(rows, columns=RESULT_COLUMNS))
    assume(agg['mean'].nunique() == n_encoders)
    marked = agg[agg.mark != '']
    assert len(marked) == 1 and marked.encoder.item() == agg.sort_values('mean').encoder.iloc[-2]


# ---- training long enough to learn ------------------------------------------------------------------------------

def _squares(n, seed, px=32):
    "Dark noise with one bright square per image (at a different place each time) and its mask."
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 80, (n, 3, px, px), generator=g, dtype=torch.uint8)
    m = torch.zeros(n, px, px, dtype=torch.long)
    for i in range(n): a = 3 + 5 * i; m[i, a:a + 12, a:a + 12] = 1
    x[m[:, None].expand(-1, 3, -1, -1) == 1] += 150
    return x, m


def test_segmentation_overfits_a_few_images():
    "A tiny Swin with the FPN decoder learns to segment four training images: Dice on them above 80 %."
    split = _squares(4, 0)
    data = {'train': split, 'val': split, 'test': split, 'num_classes': 2}
    recipe = updated(SEGMENTATION_RECIPE, lr=2e-3, iterations=60, warmup_iterations=5, batch_size=4, image_size=32,
                     layer_decay=1.0, decoder_dim=16, eval_every_iterations=10)
    r = finetune_segmentation(tiny_swin(), data, recipe, seed=0, device='cpu')
    assert r['losses'][-1] < 0.5 * r['losses'][0]
    assert r['metrics']['Dice'] > 80, r['metrics']


# ---- a results file that survives a kill ------------------------------------------------------------------------

SWEEP = """
import sys, torch
torch.set_num_threads(1)   # tiny models: one thread is fastest, and the test shares the machine
from midol.floors import PixelEncoder
from midol.evaluate import run_protocols
from midol.testing import toy_split
toy = {{'train': toy_split(16, 0), 'val': toy_split(9, 1), 'test': toy_split(9, 2), 'num_classes': 3}}
run_protocols({{'pixels': PixelEncoder(32)}}, {{'toy': toy}}, {{'linear': {{'epochs': 3}}}}, seeds=range({n}), out_dir=sys.argv[1], device='cpu', verbose=False)
"""


def _wait_for_rows(csv, n, proc, timeout=900):  # generous: a loaded machine starts slowly
    t0 = time.time()
    while time.time() - t0 < timeout:
        if csv.is_file() and len(csv.read_text().splitlines()) > n: return
        if proc.poll() is not None: return
        time.sleep(0.2)
    raise TimeoutError(f'{csv} did not reach {n} rows')


def test_run_protocols_resumes_after_a_kill(tmp_path):
    "A sweep killed mid-way and run again ends with every run exactly once, with the numbers of an uninterrupted sweep."
    n = 40
    script = tmp_path / 'sweep.py'; script.write_text(textwrap.dedent(SWEEP.format(n=n)))
    cut, ref = tmp_path / 'cut', tmp_path / 'ref'
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([sys.executable, str(script), str(cut)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(cut / 'results.csv', 6, proc)
    proc.send_signal(signal.SIGKILL); proc.wait()
    killed = pd.read_csv(cut / 'results.csv')
    assert 0 < killed.seed.nunique() < n, 'the sweep finished before it could be killed'
    subprocess.run([sys.executable, str(script), str(cut)], env=env, cwd=ROOT, check=True, capture_output=True)
    toy = {'train': toy_split(16, 0), 'val': toy_split(9, 1), 'test': toy_split(9, 2), 'num_classes': 3}   # the same sweep, uninterrupted
    run_protocols({'pixels': PixelEncoder(32)}, {'toy': toy}, {'linear': {'epochs': 3}}, seeds=range(n), out_dir=ref, device='cpu', verbose=False)
    resumed, whole = (pd.read_csv(d / 'results.csv').sort_values(['seed', 'metric']).reset_index(drop=True) for d in (cut, ref))
    assert not resumed.duplicated(['encoder', 'dataset', 'protocol', 'seed', 'metric']).any()
    assert len(resumed) == 2 * n and np.allclose(resumed.value, whole.value)
