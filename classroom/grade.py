"""The teachers' grading flow with nbgrader: release the exercises, autograde a folder of submissions, write a grade table.

    python classroom/grade.py release COURSE              # nbgrader course in COURSE; release/exercises/ = the students' notebooks
    python classroom/grade.py grade SUBMISSIONS [COURSE]  # autograde SUBMISSIONS/<student>/<notebook>.ipynb into COURSE/grades.csv

The course's source notebooks are built from the teachers' tree: each concept notebook of `nbs/` whose Exercises section
holds graded stubs (`def my_...: ...  # your code` followed by `check_...(my_...)`) becomes one nbgrader notebook in
which each stub is split in two cells: the answer cell (the function), with the reference solution of `solutions/`
between `### BEGIN SOLUTION` and `### END SOLUTION`, and the graded test cell (1 point), with the checker's import,
the visible check and the hidden
test of `solutions/` between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` (the checker's `.strict` form, which
fails on a blank answer). `nbgrader generate_assignment` then clears the solutions (back to `...  # your code`) and the
hidden tests: that release is what `make student` puts in the students' copy. `nbgrader autograde` runs the submitted
notebooks with the hidden tests put back. Only the Exercises section and what it needs (the import cells and the
library's exported cells) run: the lesson cells are skipped, so that grading a class takes seconds per notebook.
The grade table has one row per student and one column per exercise (the checker's name), then the total.
"""
import csv, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = 'exercises'
STUB = re.compile(r'^(?P<indent>\s+)\.\.\.\s*#\s*your code(?::\s*(?P<hint>.*))?$')
CODE_STUB = '...  # your code'


def _source(cell) -> str:
    return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])


def _region(code: str, begin: str, end: str) -> str | None:
    "The lines from the one holding `begin` to the one holding `end`, both included."
    lines = code.split('\n')
    starts = [i for i, l in enumerate(lines) if begin in l]
    if not starts: return None
    stop = next(i for i in range(starts[0], len(lines)) if end in lines[i])
    return '\n'.join(lines[starts[0]:stop + 1])


def answers(root: Path = ROOT) -> dict:
    "From the reference solutions: function name -> (its solution region, the hidden test that grades it)."
    found = {}
    for path in sorted((root / 'solutions').glob('*.ipynb')):
        for cell in json.loads(path.read_text(encoding='utf-8'))['cells']:
            code = _source(cell)
            if (m := re.search(r'^def (my_\w+)\(', code, re.M)) and 'BEGIN SOLUTION' in code:
                found.setdefault(m.group(1), [None, None])[0] = _region(code, '### BEGIN SOLUTION', '### END SOLUTION')
            if (hidden := _region(code, '### BEGIN HIDDEN TESTS', '### END HIDDEN TESTS')):
                for name in re.findall(r'\((my_\w+)\)', hidden): found.setdefault(name, [None, None])[1] = hidden
    missing = sorted(k for k, (s, h) in found.items() if s is None or h is None)
    if missing: raise ValueError(f"solutions/ lacks a solution region or a hidden test for {missing}")
    return {k: tuple(v) for k, v in found.items()}


def _meta(cell, **nbgrader) -> dict:
    return {**cell.get('metadata', {}), 'nbgrader': {'schema_version': 3, **nbgrader}}


def split_stub(cell, solved: dict) -> list | None:
    "An exercise's stub cell as nbgrader's answer cell and graded test cell; None when it is not a graded stub."
    code = _source(cell)
    m = re.search(r'^def (my_\w+)\(', code, re.M)
    check = m and re.search(rf'^(check_\w+)\({m.group(1)}\)', code, re.M)
    if not check: return None
    name, grade_id = m.group(1), check.group(1)
    if name not in solved: raise ValueError(f"no reference solution for {name} in solutions/")
    solution, hidden = solved[name]
    lines = code[m.start():check.start()].rstrip('\n').split('\n')                # the def and its stub
    preamble = [l for l in code[:m.start()].split('\n') if l.strip() and l.strip() != '#| eval: false']   # the checker's import
    stub = [i for i, l in enumerate(lines) if STUB.match(l)]
    if len(stub) != 1: raise ValueError(f"the stub of {name} must hold one line `...  # your code`: {code!r}")
    s = STUB.match(lines[stub[0]])
    hint = [f"{s['indent']}# {s['hint']}"] if s['hint'] else []
    answer = '\n'.join(['#| eval: false'] + lines[:stub[0]] + hint + [solution] + lines[stub[0] + 1:])
    after = code[check.start():].split('\n')
    test = '\n'.join(['#| eval: false'] + preamble + [after[0], hidden] + after[1:]).rstrip('\n')
    return [{**cell, 'id': f'{cell.get("id", name)}-answer', 'source': answer,
             'metadata': _meta(cell, grade=False, solution=True, locked=False, grade_id=name)},
            {**cell, 'id': f'{cell.get("id", name)}-test', 'source': test,
             'metadata': _meta(cell, grade=True, solution=False, locked=True, points=1, grade_id=grade_id)}]


def source_notebook(path: Path, solved: dict) -> dict | None:
    "The nbgrader source of a concept notebook: its graded stubs split and solved; None when it grades nothing."
    nb = json.loads(path.read_text(encoding='utf-8'))
    cells, graded = [], 0
    for cell in nb['cells']:
        split = split_stub(cell, solved) if cell['cell_type'] == 'code' else None
        cells += split or [cell]
        graded += bool(split)
    return {**nb, 'cells': cells} if graded else None


CONFIG = '''# nbgrader settings of the midol exercises course (written by classroom/grade.py)
import sys
sys.path.insert(0, {root!r})
from nbgrader.preprocessors import *
from classroom.grade import SkipLesson
c = get_config()
c.CourseDirectory.root = {course!r}
c.CourseDirectory.db_url = 'sqlite:///' + {db!r}
c.ClearSolutions.code_stub = {{'python': {stub!r}}}
# the lesson's committed outputs (figures, tables) stay in the students' notebooks: no ClearOutput
c.GenerateAssignment.preprocessors = [IncludeHeaderFooter, InstantiateTests, LockCells, ClearSolutions, CheckCellMetadata,
    ComputeChecksums, SaveCells, ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata]
# autograde runs the Exercises section (and the import and exported cells it needs), not the lesson
c.Autograde.autograde_preprocessors = [SkipLesson, Execute, IgnorePattern, LimitOutput, SaveAutoGrades, AssignLatePenalties,
    CheckCellMetadata]
c.Execute.skip_cells_with_tag = 'lesson'
c.Execute.timeout = 300
'''


try:
    from nbconvert.preprocessors import Preprocessor
except ImportError:  # the module is also read without nbconvert (the students' copy never imports it)
    Preprocessor = object


class SkipLesson(Preprocessor):
    "Tag every code cell before '## Exercises' with `lesson`, except import-only and exported cells: autograde skips them."
    enabled = True   # nbconvert runs a registered preprocessor only when it is enabled
    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type == 'markdown' and cell.source.startswith('## Exercises'): break
            if cell.cell_type != 'code' or _needed(cell.source): continue
            cell.metadata.setdefault('tags', [])
            if 'lesson' not in cell.metadata['tags']: cell.metadata['tags'].append('lesson')
        return nb, resources


def _needed(code: str) -> bool:
    "An exported cell (it defines what the exercises may use) or a cell of imports only."
    if code.lstrip().startswith(('#| export', '#|export', '#| exporti')): return True
    if re.search(r'^#\|\s*(slow|gpu|eval:\s*false)', code, re.M): return False   # cells the notebook tests skip too
    lines = [l for l in code.split('\n') if l.strip() and not l.lstrip().startswith('#')]
    return bool(lines) and all(re.match(r'(from\s+\S+\s+import\b|import\s)', l) or l.startswith((' ', '\t', ')')) for l in lines)


def nbgrader(course: Path, *args):
    "Run one nbgrader command in the course folder; its log goes to COURSE/nbgrader.log."
    with open(course / 'nbgrader.log', 'a') as log:
        env = {**os.environ, 'PATH': f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # nbgrader calls alembic
        run = subprocess.run([sys.executable, '-m', 'nbgrader', *args], cwd=course, stdout=log, stderr=subprocess.STDOUT, env=env)
    if run.returncode: raise RuntimeError(f"nbgrader {' '.join(args)} failed: see {course / 'nbgrader.log'}")


def release(course, root: Path = ROOT) -> list:
    "Build the course in `course` (replaced) from `root`'s notebooks and solutions, and release it; returns the released notebooks."
    course = Path(course).resolve()
    if course.exists(): shutil.rmtree(course)
    (course / 'source' / ASSIGNMENT).mkdir(parents=True)
    (course / 'nbgrader_config.py').write_text(CONFIG.format(root=str(ROOT), course=str(course), db=str(course / 'gradebook.db'), stub=CODE_STUB))
    solved = answers(root)
    for path in sorted((root / 'nbs').glob('*.ipynb')):
        if (nb := source_notebook(path, solved)):
            (course / 'source' / ASSIGNMENT / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    nbgrader(course, 'generate_assignment', ASSIGNMENT, '--force', '--create')
    return sorted((course / 'release' / ASSIGNMENT).glob('*.ipynb'))


def grade(submissions, course=ROOT / 'runs' / 'grading', root: Path = ROOT) -> Path:
    "Autograde `submissions/<student>/<notebook>.ipynb` in a fresh course; write and return COURSE/grades.csv."
    course = Path(course).resolve()
    released = {p.name for p in release(course, root)}
    students = sorted(p for p in Path(submissions).iterdir() if p.is_dir())
    if not students: raise ValueError(f"no student folders in {submissions}: expected {submissions}/<student>/<notebook>.ipynb")
    for student in students:
        target = course / 'submitted' / student.name / ASSIGNMENT
        target.mkdir(parents=True)
        for nb in student.glob('*.ipynb'):
            if nb.name in released: shutil.copy2(nb, target / nb.name)
    nbgrader(course, 'autograde', ASSIGNMENT, '--create', '--force')
    return table(course, [s.name for s in students])


def table(course: Path, students: list) -> Path:
    "The gradebook as a CSV: one row per student, one column per exercise (its checker), then the total and the maximum."
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment(ASSIGNMENT)
        cells = [(nb.name, cell.name, cell.max_score) for nb in assignment.notebooks for cell in nb.grade_cells]
        rows = []
        for student in students:
            scores = {}
            for nb, cell, _ in cells:
                try: scores[cell] = gb.find_grade(cell, nb, ASSIGNMENT, student).score
                except MissingEntry: scores[cell] = 0.
            rows.append({'student': student, **scores, 'total': sum(scores.values()), 'max': sum(m for *_, m in cells)})
    out = course / 'grades.csv'
    with open(out, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['student'] + [c for _, c, _ in cells] + ['total', 'max'])
        writer.writeheader(); writer.writerows(rows)
    return out


if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] not in ('release', 'grade'): sys.exit(__doc__)
    if sys.argv[1] == 'release':
        print(f"released {len(release(sys.argv[2]))} notebooks into {Path(sys.argv[2]) / 'release' / ASSIGNMENT}")
    else:
        out = grade(sys.argv[2], *sys.argv[3:4])
        print(out.read_text(), end='')
        print(f"grade table: {out}")
