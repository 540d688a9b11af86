"""Issue 25: `make student` (tools/make_student.py) writes a students' copy with no `solutions/`, no reference answer
anywhere in it (each solution function of `solutions/`, searched for in every file of the copy), none of the
derivations' closed forms in the checkers (`midol/exercises.py`, `nbs/09_exercises.ipynb`), and no solution pages in
its docs. Needs the teachers' copy (it reads the answers from `solutions/`), so it is skipped in the students' copy."""
import importlib.util, json, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (ROOT / 'solutions').is_dir(), reason="no solutions/ (the students' copy)")
DERIVED = [  # the derivations' answers, as code and as formulas
    'max(min(x + w, 1 - w) - max(x - w, w - 1), 0.) / (2 * (1 - w))', 'max(hi - lo, 0.) / (2 * (1 - w))',
    'math.ceil(math.log(0.5) / math.log(m))', r'\lceil \log', '⌈log(1/2) / log m⌉', 'log(1/2) / log(m)',
    r'y - \bar y = f_b (x - \bar x)', '(dx * dy).sum((1, 2, 3)) / (dx * dx).sum((1, 2, 3))',
    '1 - m ** n', 'keeps m**n', 'log N - (1/N)', 'log N − (1/N)', 'F.one_hot(a_t.argmax(-1)']


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def copy(tmp_path_factory):
    out = tmp_path_factory.mktemp('student') / 'student'
    load_tool('make_student').build(out)
    return out


def text_of(path: Path) -> str:
    if path.suffix == '.ipynb': return '\n'.join(''.join(c['source']) for c in json.loads(path.read_text())['cells'])
    return path.read_text(errors='ignore')


def squeeze(code: str) -> str:
    "Code without comments and whitespace, so that a reformatted copy of an answer still matches."
    return re.sub(r'\s+', '', re.sub(r'#[^\n]*', '', code))


def answers() -> dict:
    "Each reference solution function of solutions/: name -> its body (the lines under `def my_...`)."
    found = {}
    for path in sorted((ROOT / 'solutions').glob('*.ipynb')):
        for cell in json.loads(path.read_text())['cells']:
            for m in re.finditer(r'^def (my_\w+)\(.*?\):\n((?:[ \t]+.*\n?)+)', ''.join(cell['source']), re.M):
                found[f'{path.stem}:{m.group(1)}'] = m.group(2)
    return found


def test_answers_found():
    assert len(answers()) >= 12, sorted(answers())


def test_copy_has_no_solutions(copy):
    assert (copy / 'nbs' / 'teaching.ipynb').is_file() and (copy / 'midol' / 'exercises.py').is_file()
    assert not (copy / 'solutions').exists()
    assert not [p for p in copy.rglob('*') if 'solution' in p.name.lower()]


def test_no_reference_answer_in_the_copy(copy):
    "Search every text file of the copy for every reference solution's body."
    texts = {p: squeeze(text_of(p)) for p in copy.rglob('*') if p.is_file() and p.suffix in ('.py', '.ipynb', '.md', '.txt', '.toml')}
    found = [(name, str(p.relative_to(copy))) for name, body in answers().items() for p, text in texts.items() if squeeze(body) in text]
    assert not found, found


def test_the_checkers_hold_no_derivation(copy):
    for rel in ('midol/exercises.py', 'nbs/09_exercises.ipynb'):
        text = text_of(copy / rel)
        assert not [d for d in DERIVED if d in text], (rel, [d for d in DERIVED if d in text])
    assert '@grader' in text_of(copy / 'midol' / 'exercises.py')


def test_the_copy_is_in_sync_and_links_no_solution(copy):
    "The copy's checkers' notebook exports the same library; no notebook links a solutions notebook."
    assert (copy / 'midol' / 'exercises.py').read_text() == (ROOT / 'midol' / 'exercises.py').read_text()
    nb09 = json.loads((copy / 'nbs' / '09_exercises.ipynb').read_text())['cells']
    assert sum(''.join(c['source']).startswith('#| export') for c in nb09) >= 15
    for path in (copy / 'nbs').glob('*.ipynb'):
        assert not re.search(r'\]\((\.\./)?solutions/', text_of(path)), path.name


def test_the_copys_docs_have_no_solution_pages(copy):
    assert 'solutions' not in load_tool('build_docs').notebooks(copy)


def test_the_copy_passes_its_exercise_tests(copy):
    "The copy's own test of the checkers runs green on its own library (the solution tests skip themselves)."
    run = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests/test_exercises.py'],
                         cwd=copy, capture_output=True, text=True, env={'PYTHONPATH': str(copy), 'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1'})
    assert run.returncode == 0 and ' skipped' in run.stdout, run.stdout[-2000:]
