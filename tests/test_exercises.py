"""The exercises of issue 15: every reference solution in `solutions/` passes its checker from `midol.exercises`, every
checker rejects wrong solutions with advice a student can act on, and the concept notebooks end with an "Exercises"
section whose code cells never run under nbdev-test or papermill."""
import json, math, re
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import midol.exercises as exercises
from midol.data import grayscale
from midol.information import cond_entropy, interaction_info, regroup

ROOT = Path(__file__).resolve().parents[1]
CONCEPT = ['00_information', '01_data', '02b_routing', '02c_dino', '02d_model']
CHECKERS = sorted(n for n in exercises.__all__ if n.startswith('check_'))


def cells(path: Path, kind: str = 'code') -> list:
    return [c for c in json.loads(path.read_text())['cells'] if c['cell_type'] == kind]


def source(cell) -> str:
    return ''.join(cell['source'])


def checkers_called(text: str) -> set:
    return set(re.findall(r'\b(check_\w+)\(', text)) & set(CHECKERS)


def solutions(stem: str) -> Path:
    return ROOT / 'solutions' / f'{stem}_solutions.ipynb'


# ---- the reference solutions ----------------------------------------------------------------------------------

def test_one_solutions_notebook_per_concept_notebook():
    assert sorted(p.name for p in (ROOT / 'solutions').glob('*.ipynb')) == [f'{s}_solutions.ipynb' for s in CONCEPT]


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


def test_every_checker_is_used_by_a_solution_and_offered_in_a_concept_notebook():
    used = set().union(*(checkers_called('\n'.join(map(source, cells(solutions(s))))) for s in CONCEPT))
    offered = set().union(*(checkers_called('\n'.join(map(source, cells(ROOT / 'nbs' / f'{s}.ipynb')))) for s in CONCEPT))
    assert used == offered == set(CHECKERS)


@pytest.mark.parametrize('stem', CONCEPT)
def test_solutions_are_saved_without_outputs(stem):
    for cell in cells(solutions(stem)):
        assert cell['outputs'] == [] and cell['execution_count'] is None, source(cell)[:80]


# ---- the concept notebooks' Exercises sections -------------------------------------------------------------------

@pytest.mark.parametrize('stem', CONCEPT)
def test_concept_notebook_ends_with_exercises_that_never_run_in_tests(stem):
    nb = json.loads((ROOT / 'nbs' / f'{stem}.ipynb').read_text())['cells']
    starts = [i for i, c in enumerate(nb) if c['cell_type'] == 'markdown' and source(c).startswith('## Exercises')]
    assert len(starts) == 1, "one section '## Exercises'"
    section = nb[starts[0]:]
    assert not any(source(c).startswith('## ') for c in section[1:] if c['cell_type'] == 'markdown'), 'the section is last'
    titles = [source(c).splitlines()[0] for c in section if c['cell_type'] == 'markdown' and source(c).startswith('### Exercise')]
    assert 3 <= len(titles) <= 5, titles
    assert any('predict' in t for t in titles) and any('implement' in t for t in titles), titles
    for cell in (c for c in section if c['cell_type'] == 'code'):
        assert source(cell).startswith('#| eval: false'), source(cell)[:80]
        assert 'skip-execution' in cell['metadata'].get('tags', []), source(cell)[:80]


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


def _blend(x, m, f):  # contrast with a given grey level m
    return (m + f.view(-1, 1, 1, 1) * (x - m)).clamp(0, 1)


def _coverage_no_clip(w, x):
    return 1. if w >= 1 else (2 * w) / (2 * (1 - w))


def _coverage_divides_by_zero(w, x):
    return max(min(x + w, 1 - w) - max(x - w, w - 1), 0.) / (2 * (1 - w))


def _sinkhorn_rows_to_one(q):
    q = q / q.sum(0, keepdim=True) / q.shape[1]
    return q / q.sum(1, keepdim=True)


def _dino_pairs(s, t, c, n_global, ts, tt):
    b = len(t) // n_global
    log_p = F.log_softmax(s / ts, -1).view(-1, b, s.shape[-1])
    q = F.softmax((t - c) / tt, -1).view(n_global, b, -1)
    return -torch.einsum('gbk,vbk->gvb', q, log_p).mean(-1)  # [V_t, V_s]


def _dino_globals_only(s, t, c, n_global, ts, tt):
    ce = _dino_pairs(s, t, c, n_global, ts, tt)[:, :n_global]
    return ce[~torch.eye(n_global, dtype=torch.bool)].mean()


def _dino_image_major(s, t, c, n_global, ts, tt):
    b = len(t) // n_global
    s, t = (x.view(b, -1, x.shape[-1]).transpose(0, 1).reshape(-1, x.shape[-1]) for x in (s, t))
    ce = _dino_pairs(s, t, c, n_global, ts, tt)
    return ce[~torch.eye(n_global, ce.shape[1], dtype=torch.bool)].mean()


def _dino_not_centred(s, t, c, n_global, ts, tt):
    ce = _dino_pairs(s, t, 0 * c, n_global, ts, tt)
    return ce[~torch.eye(n_global, ce.shape[1], dtype=torch.bool)].mean()


def _dino_pairs_summed(s, t, c, n_global, ts, tt):
    ce = _dino_pairs(s, t, c, n_global, ts, tt)
    return ce[~torch.eye(n_global, ce.shape[1], dtype=torch.bool)].sum()


@torch.no_grad()
def _ema_moves_both(teacher, student, m):
    for p_t, p_s in zip(teacher.parameters(), student.parameters()):
        p_t.mul_(m).add_(p_s, alpha=1 - m)
        p_s.copy_(p_t)


@torch.no_grad()
def _ema_new_parameters(teacher, student, m):
    for (name, p_t), p_s in zip(list(teacher.named_parameters()), student.parameters()):
        owner, _, attr = name.rpartition('.')
        setattr(teacher.get_submodule(owner), attr, nn.Parameter(m * p_t + (1 - m) * p_s, requires_grad=False))


@torch.no_grad()
def _ema_copies_student(teacher, student, m):
    for p_t, p_s in zip(teacher.parameters(), student.parameters()): p_t.copy_(p_s)


WRONG = [  # (checker, wrong solution, words the advice must contain)
    ('check_entropy', lambda p: float((p[p > 0] * np.log(p[p > 0])).sum()), 'wrong sign'),
    ('check_entropy', lambda p: _entropy_flat(p.sum(0)) if p.ndim > 1 else _entropy_flat(p), 'entropy of a marginal'),
    ('check_conditional_mi', interaction_info, 'interaction information'),
    ('check_conditional_mi', lambda p: cond_entropy(regroup(p, 0, 2)), 'H(X|Z) alone'),
    ('check_conditional_mi', lambda p: cond_entropy(regroup(p, 0, (1, 2))) - cond_entropy(regroup(p, 0, 2)), 'wrong sign'),
    ('check_infonce', lambda s: float(np.diag(_log_softmax_rows(s)).mean()), 'forgot the + log K'),
    ('check_infonce', lambda s: float(np.log(len(s)) + np.diag(_log_softmax_rows(s)).sum()), "don't sum them"),
    ('check_solarize', lambda x, t: torch.where(x < t, 1 - x, x), 'inverted the dark pixels'),
    ('check_solarize', lambda x, t: torch.where(x >= 128 / 255, 1 - x, x), 'ignored the `threshold`'),
    ('check_contrast', lambda x, f: _blend(x, grayscale(x).mean(), f), 'not over the whole batch'),
    ('check_contrast', lambda x, f: _blend(x, x.mean((1, 2, 3), keepdim=True), f), 'weights the channels by luma'),
    ('check_contrast', lambda x, f: (grayscale(x).mean((1, 2, 3), keepdim=True) + f * (x - grayscale(x).mean((1, 2, 3), keepdim=True))).clamp(0, 1), 'broadcast along the image width'),
    ('check_crop_coverage', _coverage_no_clip, 'a probability never exceeds 1'),
    ('check_crop_coverage', _coverage_divides_by_zero, 'w = 1 is the whole image'),
    ('check_sinkhorn_step', lambda q: q / q.sum(0, keepdim=True) / q.shape[1], 'skipped the row step'),
    ('check_sinkhorn_step', _sinkhorn_rows_to_one, 'not 1'),
    ('check_l_route', lambda a_s, a_t: (a_s * a_t.clamp_min(1e-12).log()).sum(-1).mean(), 'wrong sign'),
    ('check_l_route', lambda a_s, a_t: -(a_s * a_t.clamp_min(1e-12).log()).sum(), 'average over the B images'),
    ('check_teacher_probs', lambda t, c, temp: F.softmax((t - c) / temp, 0), 'not over the batch'),
    ('check_teacher_probs', lambda t, c, temp: F.log_softmax((t - c) / temp, -1), 'not log-probabilities'),
    ('check_teacher_probs', lambda t, c, temp: (t - c) / temp, 'apply a softmax'),
    ('check_center_update', lambda c, t, m: m * c + (1 - m) * t.sum(0, keepdim=True), "don't sum them"),
    ('check_center_update', lambda c, t, m: t.mean(0, keepdim=True), 'replaced the centre'),
    ('check_center_update', lambda c, t, m: m * c + (1 - m) * t.mean(1, keepdim=True), 'not over the prototypes'),
    ('check_dino_loss', _dino_globals_only, 'ALL its views'),
    ('check_dino_loss', _dino_image_major, 'view-major'),
    ('check_dino_loss', _dino_pairs_summed, 'average over the pairs'),
    ('check_dino_loss', _dino_not_centred, 'centre the teacher outputs'),
    ('check_ema_update', _ema_moves_both, 'you changed the student'),
    ('check_ema_update', _ema_new_parameters, 'in place'),
    ('check_ema_update', _ema_copies_student, 'copy of the student'),
    ('check_ema_half_life', lambda m: math.log(0.5) / math.log(m), 'whole number'),
    ('check_ema_half_life', lambda m: math.ceil(math.log(0.5) / math.log(1 - m)), 'not 1 − m'),
    ('check_teacher_dispatch', lambda a_t: a_t[-1].argmax(-1), 'last global view'),
    ('check_teacher_dispatch', lambda a_t: a_t.mean(0), 'not its probabilities'),
    ('check_teacher_dispatch', lambda a_t: a_t.mean(1).argmax(-1), 'not over the images'),
]


@pytest.mark.parametrize('checker, wrong, advice', WRONG, ids=[f'{c}-{i}' for i, (c, _, _) in enumerate(WRONG)])
def test_a_wrong_solution_is_rejected_with_advice(checker, wrong, advice, capsys):
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(wrong)
    assert advice in str(verdict.value), str(verdict.value)
    assert 'correct' not in capsys.readouterr().out


def test_every_checker_meets_a_wrong_solution_here():
    assert {c for c, _, _ in WRONG} == set(CHECKERS)


@pytest.mark.parametrize('checker', CHECKERS)
def test_an_unfilled_stub_is_told_to_return_its_result(checker):
    "The stub `...` returns None; the EMA update returns nothing by design, so its stub leaves the teacher unchanged."
    def my_function(*args): ...
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(my_function)
    assert ('did not change' if checker == 'check_ema_update' else 'returned None') in str(verdict.value)
