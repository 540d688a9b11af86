"""The exercises of issue 15 and issue 25: every reference solution in `solutions/` passes its checker from
`midol.exercises` (skipped in the students' copy, which has no `solutions/`), every checker rejects wrong solutions with
advice a student can act on, an unanswered stub prints `not answered yet` instead of stopping "Run All", and the
concept notebooks end with an "Exercises" section whose code cells never run under nbdev-test or papermill."""
import json, math, re
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import midol.exercises as exercises
from midol.information import cond_entropy, interaction_info, regroup

ROOT = Path(__file__).resolve().parents[1]
CONCEPT = ['00_information', '01_data', '02b_routing', '02c_dino', '02d_model']
CHECKERS = sorted(n for n in exercises.__all__ if n.startswith('check_'))
needs_solutions = pytest.mark.skipif(not (ROOT / 'solutions').is_dir(),
                                     reason="no solutions/ (the students' copy made by `make student`)")


def cells(path: Path, kind: str = 'code') -> list:
    return [c for c in json.loads(path.read_text())['cells'] if c['cell_type'] == kind]


def source(cell) -> str:
    return ''.join(cell['source'])


def checkers_called(text: str) -> set:
    return set(re.findall(r'\b(check_\w+)\(', text)) & set(CHECKERS)


def solutions(stem: str) -> Path:
    return ROOT / 'solutions' / f'{stem}_solutions.ipynb'


# ---- the reference solutions ----------------------------------------------------------------------------------

@needs_solutions
def test_one_solutions_notebook_per_concept_notebook():
    assert sorted(p.name for p in (ROOT / 'solutions').glob('*.ipynb')) == [f'{s}_solutions.ipynb' for s in CONCEPT]


@needs_solutions
@pytest.mark.parametrize('stem', CONCEPT)
def test_every_reference_solution_passes_its_checker(stem, capsys, monkeypatch):
    "Run the solutions notebook's code cells in order, as a teacher would; every checker call prints `correct`."
    monkeypatch.chdir(ROOT / 'solutions')
    namespace, calls = {}, 0
    for cell in cells(solutions(stem)):
        namespace['__name__'] = '__main__'
        exec(compile(source(cell), f'{stem}_solutions', 'exec'), namespace)
        calls += len(re.findall(r'^check_\w+\(', source(cell), re.M))
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith('correct: ')]
    assert calls >= 1 and len(verdicts) == calls, verdicts


def test_every_checker_is_offered_in_a_concept_notebook():
    offered = set().union(*(checkers_called('\n'.join(map(source, cells(ROOT / 'nbs' / f'{s}.ipynb')))) for s in CONCEPT))
    assert offered == set(CHECKERS)


@needs_solutions
def test_every_checker_is_used_by_a_solution():
    assert set().union(*(checkers_called('\n'.join(map(source, cells(solutions(s))))) for s in CONCEPT)) == set(CHECKERS)


@needs_solutions
@pytest.mark.parametrize('stem', CONCEPT)
def test_solutions_are_saved_without_outputs(stem):
    for cell in cells(solutions(stem)):
        assert cell['outputs'] == [] and cell['execution_count'] is None, source(cell)[:80]


# ---- the concept notebooks' Exercises sections -------------------------------------------------------------------

def exercise_section(stem: str) -> list:
    nb = json.loads((ROOT / 'nbs' / f'{stem}.ipynb').read_text())['cells']
    starts = [i for i, c in enumerate(nb) if c['cell_type'] == 'markdown' and source(c).startswith('## Exercises')]
    assert len(starts) == 1, "one section '## Exercises'"
    return nb[starts[0]:]


@pytest.mark.parametrize('stem', CONCEPT)
def test_concept_notebook_ends_with_exercises_that_never_run_in_tests(stem):
    section = exercise_section(stem)
    assert not any(source(c).startswith('## ') for c in section[1:] if c['cell_type'] == 'markdown'), 'the section is last'
    titles = [source(c).splitlines()[0] for c in section if c['cell_type'] == 'markdown' and source(c).startswith('### Exercise')]
    assert 3 <= len(titles) <= 5, titles
    assert any('predict' in t for t in titles) and any('implement' in t for t in titles), titles
    for cell in (c for c in section if c['cell_type'] == 'code'):
        assert source(cell).startswith('#| eval: false'), source(cell)[:80]
        assert 'skip-execution' in cell['metadata'].get('tags', []), source(cell)[:80]


@pytest.mark.parametrize('stem', CONCEPT)
def test_predictions_are_behind_a_flag(stem):
    "A 'predict, then run' cell prints its numbers only once the student sets `reveal = True`."
    section = exercise_section(stem)
    for i, cell in enumerate(section):
        if cell['cell_type'] == 'markdown' and source(cell).startswith('### Exercise') and 'predict' in source(cell).splitlines()[0]:
            code = next(c for c in section[i:] if c['cell_type'] == 'code')
            assert 'reveal = False' in source(code) and '\nif reveal:' in source(code), source(code)[:120]


@needs_solutions
@pytest.mark.parametrize('stem', CONCEPT)
def test_each_stub_is_graded_by_the_checker_its_solution_uses(stem):
    stubs = '\n'.join(source(c) for c in cells(ROOT / 'nbs' / f'{stem}.ipynb') if 'skip-execution' in c['metadata'].get('tags', []))
    answers = '\n'.join(map(source, cells(solutions(stem))))
    assert checkers_called(stubs) == checkers_called(answers) != set()


# ---- wrong solutions are rejected with advice ------------------------------------------------------------------

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


WRONG = [  # (checker, wrong solution, words the advice must contain)
    ('check_entropy', lambda n: -_entropy_flat(n / n.sum()), 'wrong sign'),
    ('check_entropy', lambda n: _entropy_flat(n.sum(0) / n.sum()) if n.ndim > 1 else _entropy_flat(n / n.sum()), 'entropy of a marginal'),
    ('check_entropy', lambda n: float(-(n[n > 0] * np.log(n[n > 0])).sum()), 'normalise first'),
    ('check_conditional_mi', interaction_info, 'interaction information'),
    ('check_conditional_mi', lambda p: cond_entropy(regroup(p, 0, 2)), 'H(X|Z) alone'),
    ('check_conditional_mi', lambda p: cond_entropy(regroup(p, 0, (1, 2))) - cond_entropy(regroup(p, 0, 2)), 'wrong sign'),
    ('check_infonce', lambda s: float(np.log(len(s)) + np.diag(_log_softmax_rows(s)).mean()), "rows' estimate alone"),
    ('check_infonce', lambda s: float(np.log(len(s)) + np.diag(_log_softmax_rows(s.T)).mean()), "columns' estimate alone"),
    ('check_infonce', lambda s: float((np.diag(_log_softmax_rows(s)).mean() + np.diag(_log_softmax_rows(s.T)).mean()) / 2), 'forgot the + log K'),
    ('check_infonce', lambda s: float(2 * np.log(len(s)) + np.diag(_log_softmax_rows(s)).mean() + np.diag(_log_softmax_rows(s.T)).mean()), "don't add them"),
    ('check_solarize', lambda x, t: torch.where(x < t.view(-1, 1, 1, 1), 1 - x, x), 'inverted the dark pixels'),
    ('check_solarize', lambda x, t: torch.where(x >= 128 / 255, 1 - x, x), 'ignored the thresholds'),
    ('check_solarize', lambda x, t: torch.where(x >= t, 1 - x, x), 'image WIDTH'),
    ('check_contrast', lambda x, y: _slope(y, x), 'swapped x and y'),
    ('check_contrast', lambda x, y: y.mean((1, 2, 3)) / x.mean((1, 2, 3)), 'DEVIATIONS'),
    ('check_contrast', lambda x, y: _slope(x, y).view(-1, 1, 1, 1), 'one factor per image'),
    ('check_crop_coverage', _coverage_no_clip, 'a probability never exceeds 1'),
    ('check_crop_coverage', _coverage_divides_by_zero, 'w = 1 is the whole image'),
    ('check_sinkhorn_step', lambda q, r: q / q.sum(0, keepdim=True) * r, 'skipped the row step'),
    ('check_sinkhorn_step', _sinkhorn_rows_to_one, 'not 1'),
    ('check_sinkhorn_step', lambda q, r: _sinkhorn_rows_to_one(q, 1 / len(r)) / len(q), 'equally'),
    ('check_l_route', lambda a_t: a_t, 'other way round'),
    ('check_l_route', lambda a_t: F.one_hot(a_t.argmin(-1), a_t.shape[-1]).float(), 'linear function'),
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
    ('check_dino_loss', lambda *a: _dino_pairs(*a).T, 'one row per teacher'),
    ('check_dino_loss', _dino_image_major, 'view-major'),
    ('check_dino_loss', lambda s, t, c, n, ts, tt: _dino_pairs(s, t, 0 * c, n, ts, tt), 'centre the teacher'),
    ('check_dino_loss', lambda s, t, c, n, ts, tt: len(t) // n * _dino_pairs(s, t, c, n, ts, tt), 'average over the B images'),
    ('check_ema_update', _ema_moves_both, 'you changed the student'),
    ('check_ema_update', _ema_new_parameters, 'in place'),
    ('check_ema_update', _ema_copies_student, 'copy of the student'),
    ('check_ema_update', _ema_one_update, 'ONE update'),
    ('check_ema_half_life', lambda m: math.log(0.5) / math.log(m), 'whole number'),
    ('check_ema_half_life', lambda m: math.ceil(math.log(0.5) / math.log(1 - m)), 'not 1 − m'),
    ('check_ema_half_life', lambda m: round(math.log(0.5) / math.log(m)), 'round UP'),
    ('check_ema_half_life', lambda m: math.ceil(math.log(0.5) / math.log(m)) + 1, 'SMALLEST'),
    ('check_teacher_dispatch', lambda a_t, v: a_t[:len(a_t) // v].argmax(-1), 'first global view'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(-1, v, a_t.shape[-1]).mean(1).argmax(-1), 'view-major'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(v, -1, a_t.shape[-1]).mean(0), 'not its probabilities'),
    ('check_teacher_dispatch', lambda a_t, v: a_t.view(v, -1, a_t.shape[-1]).mean(1).argmax(-1), 'not over the images'),
]


@pytest.mark.parametrize('checker, wrong, advice', WRONG, ids=[f'{c}-{i}' for i, (c, _, _) in enumerate(WRONG)])
def test_a_wrong_solution_is_rejected_with_advice(checker, wrong, advice, capsys):
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(wrong)
    assert advice in str(verdict.value), str(verdict.value)
    assert 'correct' not in capsys.readouterr().out


def test_every_checker_meets_a_wrong_solution_here():
    assert {c for c, _, _ in WRONG} == set(CHECKERS)


def test_textbook_luma_is_accepted(capsys):
    "The contrast checker accepts grey weights 0.299 / 0.587 / 0.114 (midol rounds R to 0.2989)."
    def textbook(x, y):
        grey = lambda z: (0.299 * z[:, 0] + 0.587 * z[:, 1] + 0.114 * z[:, 2])
        gx, gy = grey(x), grey(y)
        return gy.std((1, 2)) / gx.std((1, 2))
    exercises.check_contrast(textbook)
    assert capsys.readouterr().out.startswith('correct: textbook')


@torch.no_grad()
def _nudge_teacher(teacher, student, m, n):
    for p in teacher.parameters(): p.add_(0.1)


OFF = {  # checker: an answer of the right shape and wrong values that matches no known mistake
    'check_entropy': lambda n: 1.1 * _entropy_flat(n / n.sum()),
    'check_conditional_mi': lambda p: 0.123,
    'check_infonce': lambda s: 0.123,
    'check_solarize': lambda x, t: 0.5 * x,
    'check_contrast': lambda x, y: torch.full((len(x),), 0.7),
    'check_crop_coverage': lambda w, x: 0.123,
    'check_sinkhorn_step': lambda q, r: 1.1 * q,
    'check_l_route': lambda a_t: torch.full_like(a_t, 1 / a_t.shape[-1]),
    'check_teacher_probs': lambda t, c, temp: torch.zeros(len(t)),
    'check_center_update': lambda c, t, m, n: c + 0.1,
    'check_dino_loss': lambda s, t, c, n, ts, tt: torch.zeros(n, len(s) // (len(t) // n)),
    'check_ema_update': _nudge_teacher,
    'check_ema_half_life': lambda m: 2,
    'check_teacher_dispatch': lambda a_t, n: torch.zeros(len(a_t) // n, dtype=torch.long),
}


@pytest.mark.parametrize('checker', CHECKERS)
def test_a_rejection_says_more_than_expected_x_got_y(checker):
    "A wrong answer that matches no known mistake still gets advice after the values, in one line."
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(OFF[checker])
    message = str(verdict.value)
    values = re.search(r'(got -?[0-9.e+-]+|yours -?[0-9.e+-]+|gives -?[0-9.e+-]+|updates?\b[^:]*)', message)
    assert len(message.splitlines()) == 1 and len(message) < 500, message
    assert values and len(message) - values.end() > 40, f'{checker}: no advice beyond the values: {message}'


def test_an_array_rejection_is_a_summary_not_a_dump():
    with pytest.raises(AssertionError) as verdict: exercises.check_solarize(lambda x, t: x.clone() * 0.5)
    message = str(verdict.value)
    assert len(message.splitlines()) == 1 and len(message) < 400, message
    assert 'shape (4, 3, 4, 4)' in message and 'largest error' in message and 'at index' in message, message


@pytest.mark.parametrize('checker', CHECKERS)
def test_an_unfilled_stub_prints_not_answered_yet(checker, capsys):
    "The stub `...` returns None (the EMA update returns nothing by design: its stub leaves the teacher unchanged)."
    def my_function(*args): ...
    getattr(exercises, checker)(my_function)
    out = capsys.readouterr().out
    assert out.startswith('not answered yet: my_function') and 'correct' not in out, out
