"""The exercise checkers of `midol.exercises` (issues 15, 25 and 31), tested without any answer: this file is in the
students' copy. Every checker prints `not answered yet` for an unfilled stub, rejects a wrong function with advice,
recognises every stored mistake by its stored result, refuses the library shortcuts its exercise forbids, and the
concept notebooks end with an "Exercises" section whose code cells never run under nbdev-test or papermill. The tests
that need the answers (the reference solutions, alternative correct answers, wrong answers one edit from right) are in
the teachers' `tests/test_exercise_answers.py`."""
import json, re
from pathlib import Path
import numpy as np
import pytest
import torch

import midol.exercises as exercises

ROOT = Path(__file__).resolve().parents[1]
CHECKERS = sorted(n for n in exercises.__all__ if n.startswith('check_'))
ADVICE = {'entropy': exercises.ENTROPY_ADVICE, 'conditional_mi': exercises.CONDITIONAL_MI_ADVICE,
          'infonce': exercises.INFONCE_ADVICE, 'solarize': exercises.SOLARIZE_ADVICE, 'contrast': exercises.CONTRAST_ADVICE,
          'crop_coverage': exercises.COVERAGE_ADVICE, 'sinkhorn_step': exercises.SINKHORN_STEP_ADVICE,
          'l_route': exercises.L_ROUTE_ADVICE, 'teacher_probs': exercises.TEACHER_PROBS_ADVICE,
          'center_update': exercises.CENTER_UPDATE_ADVICE, 'dino_loss': exercises.DINO_LOSS_ADVICE,
          'ema_update': exercises.EMA_ADVICE, 'ema_half_life': exercises.HALF_LIFE_ADVICE,
          'teacher_dispatch': exercises.DISPATCH_ADVICE}
SHORTCUTS = {  # checker: (exercise, the import paths it refuses)
    'check_entropy': exercises.ENTROPY_SHORTCUTS, 'check_conditional_mi': exercises.CONDITIONAL_MI_SHORTCUTS,
    'check_infonce': ('midol.information.infonce',), 'check_solarize': exercises.SOLARIZE_SHORTCUTS,
    'check_sinkhorn_step': ('midol.routing.sinkhorn_knopp', 'midol.routing.sinkhorn_released'),
    'check_l_route': ('midol.routing.l_route',), 'check_teacher_probs': exercises.ENTROPY_SHORTCUTS,
    'check_center_update': ('midol.dino.DINOLoss.update_center', 'midol.dino.DINOLoss.forward'),
    'check_dino_loss': ('midol.dino.DINOLoss.forward',), 'check_ema_update': ('midol.model.MIDoL.update_teacher',)}


def cells(path: Path, kind: str = 'code') -> list:
    return [c for c in json.loads(path.read_text())['cells'] if c['cell_type'] == kind]


def source(cell) -> str:
    return ''.join(cell['source'])


def concept_notebooks() -> list:
    "The notebooks of nbs/ that end with an Exercises section."
    return sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb')
                  if any(source(c).startswith('## Exercises') for c in cells(p, 'markdown')))


def checkers_called(text: str) -> set:
    return set(re.findall(r'\b(check_\w+)\(', text)) & set(CHECKERS)


def test_one_stored_exercise_per_checker():
    assert len(CHECKERS) == 14 and set(ADVICE) == set(exercises._stored())
    for name, advice in ADVICE.items():
        stored = exercises.cases(name)
        names = {k.split('#')[0] for c in stored for k in c.mistakes}
        assert names == set(advice), (name, names ^ set(advice))    # every stored mistake has advice, and every advice a mistake


@pytest.mark.parametrize('name', sorted(ADVICE))
def test_every_stored_mistake_gets_its_advice(name):
    "Fed back its own stored result, each known mistake is named (unless it coincides with the answer on that case)."
    seen = set()
    for c in exercises.cases(name):
        for key, value in c.mistakes.items():
            if value is None or name == 'ema_half_life': continue
            got = exercises.as_numbers(value, c.case)
            if np.isnan(got).any() or exercises._same(got, c.want, 1e-6): continue
            with pytest.raises(AssertionError) as verdict:
                exercises.judge(got, c.want, c.case, c.mistakes, ADVICE[name])
            seen.add(key.split('#')[0])
            assert f'on {c.case}: ' in str(verdict.value)
    assert name in ('ema_half_life', 'contrast') or seen == set(ADVICE[name]), (name, set(ADVICE[name]) - seen)


def test_every_checker_is_offered_in_a_concept_notebook():
    offered = set().union(*(checkers_called('\n'.join(map(source, cells(ROOT / 'nbs' / f'{s}.ipynb')))) for s in concept_notebooks()))
    assert offered == set(CHECKERS)


# ---- the concept notebooks' Exercises sections -------------------------------------------------------------------

def exercise_section(stem: str) -> list:
    nb = json.loads((ROOT / 'nbs' / f'{stem}.ipynb').read_text())['cells']
    starts = [i for i, c in enumerate(nb) if c['cell_type'] == 'markdown' and source(c).startswith('## Exercises')]
    assert len(starts) == 1, "one section '## Exercises'"
    return nb[starts[0]:]


@pytest.mark.parametrize('stem', concept_notebooks())
def test_concept_notebook_ends_with_exercises_that_never_run_in_tests(stem):
    section = exercise_section(stem)
    assert not any(source(c).startswith('## ') for c in section[1:] if c['cell_type'] == 'markdown'), 'the section is last'
    titles = [source(c).splitlines()[0] for c in section if c['cell_type'] == 'markdown' and source(c).startswith('### Exercise')]
    assert 2 <= len(titles) <= 5, titles
    assert any('implement' in t for t in titles), titles
    for cell in (c for c in section if c['cell_type'] == 'code'):
        assert source(cell).startswith('#| eval: false'), source(cell)[:80]
        assert 'skip-execution' in cell['metadata'].get('tags', []), source(cell)[:80]


@pytest.mark.parametrize('stem', concept_notebooks())
def test_predictions_are_behind_a_flag(stem):
    "A 'predict, then run' cell prints its numbers only once the student sets `reveal = True`."
    section = exercise_section(stem)
    for i, cell in enumerate(section):
        if cell['cell_type'] == 'markdown' and source(cell).startswith('### Exercise') and 'predict' in source(cell).splitlines()[0]:
            code = next(c for c in section[i:] if c['cell_type'] == 'code')
            assert 'reveal = False' in source(code) and '\nif reveal:' in source(code), source(code)[:120]


# ---- wrong or unfinished answers ---------------------------------------------------------------------------------

@torch.no_grad()
def _nudge_teacher(teacher, student, m, n):
    for p in teacher.parameters(): p.add_(0.1)


OFF = {  # checker: an answer of the right shape and wrong values that matches no known mistake
    'check_entropy': lambda n: 0.123,
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
def test_a_rejection_says_more_than_expected_x_got_y(checker, capsys):
    "A wrong answer that matches no known mistake still gets advice after the values, in one line."
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(OFF[checker])
    message = str(verdict.value)
    values = re.search(r'(got -?[0-9.e+-]+|yours -?[0-9.e+-]+|gives -?[0-9.e+-]+|L_route = [0-9.]+|updates?\b[^:]*)', message)
    assert len(message.splitlines()) == 1 and len(message) < 500, message
    assert values and len(message) - values.end() > 40, f'{checker}: no advice beyond the values: {message}'
    assert 'correct' not in capsys.readouterr().out


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
    with pytest.raises(exercises.NotAnswered): getattr(exercises, checker).strict(my_function)


@pytest.mark.parametrize('checker, path', [(c, p) for c, paths in SHORTCUTS.items() for p in paths
                                           if exercises._resolve(p)], ids=lambda v: v if isinstance(v, str) else '')
def test_a_forbidden_shortcut_is_refused(checker, path):
    "A function that calls a library function its exercise forbids is refused, whatever its arguments; afterwards it works."
    owner, name, original = exercises._resolve(path)
    def shortcut(*args): return getattr(owner, name)(*args)
    with pytest.raises(AssertionError) as verdict: getattr(exercises, checker)(shortcut)
    assert 'this exercise asks you to write it yourself' in str(verdict.value) and path in str(verdict.value), str(verdict.value)
    assert getattr(owner, name) is original


def test_the_checkers_hold_no_library_reference():
    "midol.exercises imports nothing from the modules whose functions the exercises ask for: it holds only numbers."
    text = (ROOT / 'midol' / 'exercises.py').read_text()
    assert not re.search(r'^from \.(information|data|views|routing|dino|model) import', text, re.M)


def test_a_notebooks_own_copy_of_a_forbidden_function_is_refused():
    "00_information defines midol's functions itself: inside that notebook, its own `cond_mutual_info` and `infonce` are refused too."
    ns = {'__name__': 'nb_00_information'}
    for cell in cells(ROOT / 'nbs' / '00_information.ipynb'):
        if source(cell).startswith('#| export'): exec(compile(source(cell), '00_information', 'exec'), ns)
    assert ns['cond_mutual_info'] is not __import__('midol.information').information.cond_mutual_info
    with pytest.raises(AssertionError, match='itself: this exercise asks you to write it yourself'):
        exercises.check_conditional_mi(ns['cond_mutual_info'])
    symmetric = eval('lambda s: (infonce(s) + infonce(s.T)) / 2', ns)
    with pytest.raises(AssertionError, match='called infonce'): exercises.check_infonce(symmetric)
    lookup = eval("lambda n: next(c.want for c in cases('entropy') if (c.args[0] == n).all())", {'cases': exercises.cases})
    with pytest.raises(AssertionError, match='called cases'): exercises.check_entropy(lookup)
