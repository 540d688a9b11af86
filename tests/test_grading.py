"""Issue 31: the teachers' grading flow with nbgrader (classroom/grade.py, `make grade`). The release made from the
teachers' notebooks (the reference solutions between nbgrader's solution markers, hidden tests that fail on a blank
answer) gives back the students' stubs; three submissions, blank, half right and all right, autograde to 0, half and
full marks in a grade table with one row per student and one column per exercise. Teachers' tree only: the students'
copy has no classroom/ and no solutions/."""
import csv, importlib.util, json, re, shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (ROOT / 'classroom').is_dir() or not (ROOT / 'solutions').is_dir(),
                                reason="no classroom/ or solutions/ (the students' copy)")


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'classroom' / f'{name}.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


def source(cell) -> str:
    return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])


@pytest.fixture(scope='module')
def grade():
    return load('grade')


@pytest.fixture(scope='module')
def released(grade, tmp_path_factory):
    course = tmp_path_factory.mktemp('course')
    return course, grade.release(course)


def answer_cells(nb) -> list:
    return [c for c in nb['cells'] if c['metadata'].get('nbgrader', {}).get('solution')]


def solve(nb: dict, solved: dict, names: set) -> dict:
    "The released notebook with the reference solution written into the answer cells of the functions in `names`."
    for cell in answer_cells(nb):
        name = cell['metadata']['nbgrader']['grade_id']
        if name in names:
            body = solved[name][0].split('\n')[1:-1]          # the solution's lines, without the two markers
            cell['source'] = re.sub(r'^\s+\.\.\.  # your code$', lambda m: '\n'.join(body), source(cell), flags=re.M)
    return nb


def test_the_release_gives_back_the_students_stubs(released, grade):
    """Each released notebook is the concept notebook of nbs/, its graded stubs split in an answer cell (the function) and
    a test cell (the checker's import and call): no answer cell mentions a checker, as `tests/test_run_all.py` asks."""
    course, notebooks = released
    assert len(notebooks) >= 5
    graded = 0
    for path in notebooks:
        release, original = json.loads(path.read_text()), json.loads((ROOT / 'nbs' / path.name).read_text())
        text = '\n'.join(map(source, release['cells']))
        assert 'BEGIN SOLUTION' not in text and 'HIDDEN TESTS' not in text and '.strict(' not in text
        stubs = [source(c) for c in original['cells'] if grade.split_stub(c, grade.answers()) is not None]
        for cell in answer_cells(release):
            graded += 1
            assert '...  # your code' in source(cell) and 'return' not in source(cell) and 'check_' not in source(cell), source(cell)
        lines = lambda cells: sorted(l.strip() for c in cells for l in re.sub(r'\.\.\.  # your code:? ?|#', '', source(c)).split('\n')
                                     if l.strip() and l.strip() != '| eval: false')
        assert lines(original['cells']) == lines(release['cells']) and len(stubs) >= 2, path.name   # the same lines, cells apart
    assert graded == 14


@pytest.mark.slow
def test_three_submissions_get_zero_half_and_full_marks(released, grade, tmp_path):
    "Blank, half right (7 of the 14 exercises solved) and all right: 0, 7 and 14 points, exercise by exercise."
    # 2 min 17 s to 4 min 6 s on the shared 2-core machine (2026-12-07, one thread, other jobs running): the release, then 15 notebooks
    # autograded, each a kernel start, its import and exported cells and its Exercises section
    course, notebooks = released
    solved = grade.answers()
    names = sorted(c['metadata']['nbgrader']['grade_id'] for p in notebooks for c in answer_cells(json.loads(p.read_text())))
    half = set(names[::2])
    submissions = tmp_path / 'submitted'
    for student, chosen in (('blank', set()), ('half', half), ('full', set(names))):
        (submissions / student).mkdir(parents=True)
        for path in notebooks:
            nb = solve(json.loads(path.read_text()), solved, chosen)
            (submissions / student / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    table = grade.grade(submissions, tmp_path / 'course')
    rows = {r['student']: r for r in csv.DictReader(open(table))}
    assert [float(rows[s]['total']) for s in ('blank', 'half', 'full')] == [0., len(half), 14.] == [0., 7., 14.]
    for student, score in (('blank', 0.), ('full', 1.)):
        assert len(rows[student]) == 14 + 3 and float(rows[student]['max']) == 14.   # student, 14 exercises, total, max
        assert all(float(v) == score for k, v in rows[student].items() if k.startswith('check_')), rows[student]
    assert sorted(float(v) for k, v in rows['half'].items() if k.startswith('check_')) == [0.] * 7 + [1.] * 7
    print(table.read_text())
