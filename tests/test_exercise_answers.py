"""The exercises' tests that need the answers (issues 15, 25 and 31), for the teachers' tree only: `make student` leaves
this file out of the students' copy. Every reference solution of `solutions/` passes its checker; other correct
answers (numpy, scipy, torch, loops) pass too; wrong answers a student may write, some one edit from right, are
rejected with the advice for their mistake; and `midol/exercise_cases.json` is what `classroom/cases.py` writes."""
import importlib.util, json, math, re
from pathlib import Path
import numpy as np
import pytest
import scipy.special
import torch
import torch.nn as nn
import torch.nn.functional as F

import midol.exercises as exercises

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (ROOT / 'solutions').is_dir(), reason="no solutions/ (the students' copy)")
CHECKERS = sorted(n for n in exercises.__all__ if n.startswith('check_'))
SOLUTIONS = sorted((ROOT / 'solutions').glob('*_solutions.ipynb'))


def load_cases_tool():
    spec = importlib.util.spec_from_file_location('cases', ROOT / 'classroom' / 'cases.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


def code_cells(path: Path) -> list:
    return [''.join(c['source']) for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code']


def test_the_stored_cases_are_what_the_teachers_script_writes():
    tool = load_cases_tool()
    assert (ROOT / 'midol' / 'exercise_cases.json').read_text(encoding='utf-8') == tool.text(tool.build())


@pytest.mark.parametrize('path', SOLUTIONS, ids=lambda p: p.stem)
def test_every_reference_solution_passes_its_checker(path, capsys, monkeypatch):
    "Run the solutions notebook's code cells in order, as a teacher would; every checker call prints `correct`."
    monkeypatch.chdir(ROOT / 'solutions')
    namespace, calls = {'__name__': '__main__'}, 0
    for code in code_cells(path):
        exec(compile(code, path.stem, 'exec'), namespace)
        calls += len(re.findall(r'^check_\w+(?:\.strict)?\(', code, re.M))
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith('correct: ')]
    assert calls >= 2 and len(verdicts) == calls, verdicts


def test_every_checker_is_used_by_a_solution():
    used = set().union(*(re.findall(r'\b(check_\w+)\(', '\n'.join(code_cells(p))) for p in SOLUTIONS))
    assert used & set(CHECKERS) == set(CHECKERS)


@pytest.mark.parametrize('path', SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_are_saved_without_outputs(path):
    for cell in json.loads(path.read_text())['cells']:
        if cell['cell_type'] == 'code': assert cell['outputs'] == [] and cell['execution_count'] is None, ''.join(cell['source'])[:80]


# ---- other correct answers pass ------------------------------------------------------------------------------------

def _entropy_loop(n):
    total, h = float(np.sum(n)), 0.
    for count in np.ravel(n):
        if count > 0: h -= count / total * math.log(count / total)
    return h


def _infonce_scipy(s):
    rows = np.diag(scipy.special.log_softmax(s, axis=1)).mean()
    cols = np.diag(scipy.special.log_softmax(s, axis=0)).mean()
    return math.log(len(s)) + (rows + cols) / 2


def _infonce_torch(s):
    s, labels = torch.as_tensor(s), torch.arange(len(s))
    return math.log(len(s)) - (F.cross_entropy(s, labels) + F.cross_entropy(s.T, labels)) / 2


def _cond_mi_loop(p):
    total = 0.
    p_z, p_xz, p_yz = p.sum((0, 1)), p.sum(1), p.sum(0)
    for x, y, z in np.ndindex(p.shape):
        if p[x, y, z] > 0: total += p[x, y, z] * math.log(p[x, y, z] * p_z[z] / (p_xz[x, z] * p_yz[y, z]))
    return total


def _textbook_contrast(x, y):  # grey weights 0.299 / 0.587 / 0.114, a ratio of spreads
    grey = lambda z: 0.299 * z[:, 0] + 0.587 * z[:, 1] + 0.114 * z[:, 2]
    return grey(y).std((1, 2)) / grey(x).std((1, 2))


def _half_life_loop(m):
    n, gap = 0, 1.
    while gap > 0.5: gap, n = gap * m, n + 1
    return n


def _teacher_entropy_numpy(t, c, temp):
    z = ((t - c) / temp).double().numpy()
    log_q = z - scipy.special.logsumexp(z, axis=-1, keepdims=True)
    return -(np.exp(log_q) * log_q).sum(-1)


def _dispatch_loop(a_t, n_global):
    b = len(a_t) // n_global
    return torch.tensor([int(sum(a_t[v * b + i] for v in range(n_global)).argmax()) for i in range(b)])


ALTERNATIVES = [
    ('check_entropy', _entropy_loop), ('check_entropy', lambda n: float(scipy.special.entr(n / n.sum()).sum())),
    ('check_conditional_mi', _cond_mi_loop), ('check_infonce', _infonce_scipy), ('check_infonce', _infonce_torch),
    ('check_contrast', _textbook_contrast), ('check_ema_half_life', _half_life_loop),
    ('check_teacher_probs', _teacher_entropy_numpy), ('check_teacher_dispatch', _dispatch_loop),
]


@pytest.mark.parametrize('checker, answer', ALTERNATIVES, ids=[f'{c}-{i}' for i, (c, _) in enumerate(ALTERNATIVES)])
def test_other_correct_answers_pass(checker, answer, capsys):
    getattr(exercises, checker)(answer)
    assert capsys.readouterr().out.startswith('correct: '), checker


# ---- wrong solutions are rejected with advice ----------------------------------------------------------------------

def _entropy_flat(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _log_softmax_rows(s):
    s = s - s.max(1, keepdims=True)
    return s - np.log(np.exp(s).sum(1, keepdims=True))


def _slope(x, y):  # the contrast factor, by least squares
    dx, dy = (z - z.mean((1, 2, 3), keepdim=True) for z in (x, y))
    return (dx * dy).sum((1, 2, 3)) / (dx * dx).sum((1, 2, 3))


def _coverage_no_clip(w, x):
    return 1. if w >= 1 else (2 * w) / (2 * (1 - w))


def _coverage_divides_by_zero(w, x):
    return max(min(x + w, 1 - w) - max(x - w, w - 1), 0.) / (2 * (1 - w))


def _sinkhorn_rows_to_one(q, r):
    q = q / q.sum(0, keepdim=True) * r
    return q / q.sum(1, keepdim=True)


def _dino_pairs(s, t, c, n_global, ts, tt):
    b = len(t) // n_global
    log_p = F.log_softmax(s / ts, -1).view(-1, b, s.shape[-1])
    q = F.softmax((t - c) / tt, -1).view(n_global, b, -1)
    return -torch.einsum('gbk,vbk->gvb', q, log_p).mean(-1)  # [V_t, V_s]


def _dino_image_major(s, t, c, n_global, ts, tt):
    b = len(t) // n_global
    s, t = (x.view(b, -1, x.shape[-1]).transpose(0, 1).reshape(-1, x.shape[-1]) for x in (s, t))
    return _dino_pairs(s, t, c, n_global, ts, tt)


@torch.no_grad()
def _ema_moves_both(teacher, student, m, n):
    for p_t, p_s in zip(teacher.parameters(), student.parameters()):
        p_t.lerp_(p_s, 1 - m ** n)
        p_s.copy_(p_t)


@torch.no_grad()
def _ema_new_parameters(teacher, student, m, n):
    for (name, p_t), p_s in zip(list(teacher.named_parameters()), student.parameters()):
        owner, _, attr = name.rpartition('.')
        setattr(teacher.get_submodule(owner), attr, nn.Parameter(m ** n * p_t + (1 - m ** n) * p_s, requires_grad=False))


@torch.no_grad()
def _ema_copies_student(teacher, student, m, n):
    for p_t, p_s in zip(teacher.parameters(), student.parameters()): p_t.copy_(p_s)


@torch.no_grad()
def _ema_one_update(teacher, student, m, n):
    for p_t, p_s in zip(teacher.parameters(), student.parameters()): p_t.lerp_(p_s, 1 - m)


@torch.no_grad()
def _ema_swapped(teacher, student, m, n):
    for p_t, p_s in zip(teacher.parameters(), student.parameters()): p_t.lerp_(p_s, m ** n)


WRONG = [  # (checker, wrong solution, words the advice must contain)
    ('check_entropy', lambda n: -_entropy_flat(n / n.sum()), 'wrong sign'),
    ('check_entropy', lambda n: _entropy_flat(n.sum(0) / n.sum()) if n.ndim > 1 else _entropy_flat(n / n.sum()), 'entropy of a marginal'),
    ('check_entropy', lambda n: float(-(n[n > 0] * np.log(n[n > 0])).sum()), 'normalise first'),
    ('check_entropy', lambda n: _entropy_flat(n / n.sum()) / np.log(2), 'bits'),
    ('check_conditional_mi', lambda p: -_cond_mi_loop(p), 'wrong sign'),
    ('check_conditional_mi', lambda p: _cond_mi_loop(p.transpose(0, 2, 1)), 'conditioned on Y'),
    ('check_infonce', lambda s: float(np.log(len(s)) + np.diag(_log_softmax_rows(s)).mean()), "rows' estimate alone"),
    ('check_infonce', lambda s: float(np.log(len(s)) + np.diag(_log_softmax_rows(s.T)).mean()), "columns' estimate alone"),
    ('check_infonce', lambda s: float((np.diag(_log_softmax_rows(s)).mean() + np.diag(_log_softmax_rows(s.T)).mean()) / 2), 'forgot the + log K'),
    ('check_infonce', lambda s: float(2 * np.log(len(s)) + np.diag(_log_softmax_rows(s)).mean() + np.diag(_log_softmax_rows(s.T)).mean()), "don't add them"),
    ('check_solarize', lambda x, t: torch.where(x < t.view(-1, 1, 1, 1), 1 - x, x), 'inverted the dark pixels'),
    ('check_solarize', lambda x, t: torch.where(x >= 128 / 255, 1 - x, x), 'ignored the thresholds'),
    ('check_solarize', lambda x, t: torch.where(x >= t, 1 - x, x), 'image WIDTH'),
    ('check_solarize', lambda x, t: torch.where(x > t.view(-1, 1, 1, 1), 1 - x, x), 'compare with >='),
    ('check_contrast', lambda x, y: _slope(y, x), 'swapped x and y'),
    ('check_contrast', lambda x, y: y.mean((1, 2, 3)) / x.mean((1, 2, 3)), 'DEVIATIONS'),
    ('check_contrast', lambda x, y: _slope(x, y).view(-1, 1, 1, 1), 'one factor per image'),
    ('check_crop_coverage', _coverage_no_clip, 'a probability never exceeds 1'),
    ('check_crop_coverage', _coverage_divides_by_zero, 'w = 1 is the whole image'),
    ('check_sinkhorn_step', lambda q, r: q / q.sum(0, keepdim=True) * r, 'skipped the row step'),
    ('check_sinkhorn_step', _sinkhorn_rows_to_one, 'not 1'),
    ('check_sinkhorn_step', lambda q, r: _sinkhorn_rows_to_one(q, 1 / len(r)) / len(q), 'equally'),
    ('check_l_route', lambda a_t: a_t, 'other way round'),
    ('check_l_route', lambda a_t: F.one_hot(a_t.argmin(-1), a_t.shape[-1]).float(), 'LARGEST'),
    ('check_l_route', lambda a_t: F.softmax(a_t / 0.1, -1), 'linear function'),
    ('check_l_route', lambda a_t: F.one_hot(a_t.argmax(-1), a_t.shape[-1]).float() * 2, 'probability distribution'),
    ('check_l_route', lambda a_t: F.one_hot(a_t.argmax(-1), a_t.shape[-1]).float().T, 'wrong shape'),
    ('check_teacher_probs', lambda t, c, temp: -(F.softmax((t - c) / temp, 0) * F.log_softmax((t - c) / temp, 0)).sum(0), 'not over the batch'),
    ('check_teacher_probs', lambda t, c, temp: -(F.softmax(t / temp, -1) * F.log_softmax(t / temp, -1)).sum(-1), 'did not centre'),
    ('check_teacher_probs', lambda t, c, temp: -(F.softmax((t - c) / temp, -1) * F.log_softmax((t - c) / temp, -1)).sum(-1).mean(), 'per row'),
    ('check_teacher_probs', lambda t, c, temp: -(F.softmax((t - c) / temp, -1) * F.softmax((t - c) / temp, -1).log()).sum(-1), '0 log 0'),
    ('check_center_update', lambda c, t, m, n: m ** n * c + (1 - m ** n) * t.sum(0, keepdim=True), "don't sum them"),
    ('check_center_update', lambda c, t, m, n: t.mean(0, keepdim=True), 'replaced the centre'),
    ('check_center_update', lambda c, t, m, n: m ** n * c + (1 - m ** n) * t.mean(1, keepdim=True), 'not over the prototypes'),
    ('check_center_update', lambda c, t, m, n: m * c + (1 - m) * t.mean(0, keepdim=True), 'ONE update'),
    ('check_center_update', lambda c, t, m, n: (1 - m ** n) * c + m ** n * t.mean(0, keepdim=True), 'swapped momentum'),
    ('check_dino_loss', lambda *a: _dino_pairs(*a).T, 'one row per teacher'),
    ('check_dino_loss', _dino_image_major, 'view-major'),
    ('check_dino_loss', lambda s, t, c, n, ts, tt: _dino_pairs(s, t, 0 * c, n, ts, tt), 'centre the teacher'),
    ('check_dino_loss', lambda s, t, c, n, ts, tt: len(t) // n * _dino_pairs(s, t, c, n, ts, tt), 'average over the B images'),
    ('check_dino_loss', lambda s, t, c, n, ts, tt: _dino_pairs(s, t, c, n, tt, ts), 'swapped them'),
    ('check_ema_update', _ema_moves_both, 'you changed the student'),
    ('check_ema_update', _ema_new_parameters, 'in place'),
    ('check_ema_update', _ema_copies_student, 'copy of the student'),
    ('check_ema_update', _ema_one_update, 'ONE update'),
    ('check_ema_update', _ema_swapped, 'swapped momentum'),
    ('check_ema_half_life', lambda m: math.log(0.5) / math.log(m), 'whole number'),
    ('check_ema_half_life', lambda m: math.ceil(math.log(0.5) / math.log(1 - m)), 'not 1 − m'),
    ('check_ema_half_life', lambda m: round(math.log(0.5) / math.log(m)), 'round UP'),
    ('check_ema_half_life', lambda m: math.ceil(math.log(0.5) / math.log(m)) + 1, 'SMALLEST'),
    ('check_ema_half_life', lambda m: math.ceil(math.log(2) / (1 - m)), 'approximation'),
    ('check_ema_half_life', lambda m: math.ceil(0.693 / (1 - m)), 'approximation'),
    ('check_teacher_dispatch', lambda a_t, v: a_t[:len(a_t) // v].argmax(-1), 'first global view'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(-1, v, a_t.shape[-1]).mean(1).argmax(-1), 'view-major'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(v, -1, a_t.shape[-1]).mean(0), 'not its probabilities'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(v, -1, a_t.shape[-1]).mean(0).argmax(-1).float(), 'not floats'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(v, -1, a_t.shape[-1]).mean(1).argmax(-1), 'not over the images'),
]


@pytest.mark.parametrize('checker, wrong, advice', WRONG, ids=[f'{c}-{i}' for i, (c, _, _) in enumerate(WRONG)])
def test_a_wrong_solution_is_rejected_with_advice(checker, wrong, advice, capsys):
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(wrong)
    assert advice in str(verdict.value), str(verdict.value)
    assert 'correct' not in capsys.readouterr().out


def test_every_checker_meets_a_wrong_solution_here():
    assert {c for c, _, _ in WRONG} == set(CHECKERS)


def test_the_half_life_approximation_is_not_called_an_extra_update():
    "Issue 31: ⌈ln 2 / (1 − m)⌉ is one update too many only at small m; the advice names the approximation, not '+1'."
    with pytest.raises(AssertionError) as verdict: exercises.check_ema_half_life(lambda m: math.ceil(math.log(2) / (1 - m)))
    assert 'approximation' in str(verdict.value) and 'add one' not in str(verdict.value)
