"""Write the students' copy of the repository (`make student`): the committed files without the teachers' answers.

Usage: `python tools/make_student.py [OUT_DIR] [--docs]` (default `student/`, which git ignores). The copy holds every
file git tracks except the teachers' own:
- `solutions/` (the reference solutions, with nbgrader's solution and hidden-test markers) and `classroom/` (the
  script that computes the checkers' stored results, and the grading flow);
- the tests that need the answers (`tests/test_student.py`, `tests/test_exercise_answers.py`, `tests/test_grading.py`);
- this tool's own outputs (`student/`, `docs/`).
The concept notebooks with graded exercises are nbgrader's release (`classroom/grade.py release`): each exercise's stub
in an answer cell and its check in a locked test cell, the hidden tests removed, so that a submitted notebook can be
autograded. The checkers' notebook `09_exercises` is copied as it is: its checkers hold the answers only as stored
numbers (`midol/exercise_cases.json`). Links from the notebooks' markdown to the solutions notebooks become plain text,
and the README's teaching paragraph speaks to the students. With `--docs` it also renders the copy's HTML pages into
OUT_DIR/docs (no solution pages: there is no `solutions/` to render).
"""
import importlib.util, json, re, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = ('solutions/', 'classroom/', 'student/', 'docs/', 'tests/test_student.py', 'tests/test_exercise_answers.py',
            'tests/test_grading.py')
SOLUTION_LINK = re.compile(r'\[([^\]]*)\]\((?:\.\./)?solutions/[^)]*\)')
STUDENT_TEACHING = (
    "This is the students' copy of midol, made by the teacher with `make student`. `nbs/teaching.ipynb` is the course "
    "plan: three 90-minute sessions on laptops without a GPU, the sections to run and each notebook's measured run time "
    "on a 2-core CPU; `make lab` opens the notebooks in JupyterLab. Every concept notebook ends with exercises: write "
    "your function where the stub says `...  # your code`, then run the `check_…` cell under it, which runs your "
    "function on fixed cases, compares its results with stored ones and prints a line starting with `correct` or says "
    "what is wrong (\"Run All\" runs through the exercises: an unanswered one prints `not answered yet`). Some exercises "
    "ask you to write what the library already has: while their check runs, those library functions refuse to help. "
    "Hand in the notebooks as they are, with their cells in place: the teacher grades them with nbgrader. The pages in "
    "`docs/` work offline. ")


def tracked(root=ROOT)->list[str]:
    "The files git tracks (relative paths), those that exist in the working tree."
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=root, capture_output=True, text=True, check=True).stdout
    return [p for p in out.split('\0') if p and (root / p).is_file()]


def keep(path:str)->bool:
    return not path.startswith(LEFT_OUT)


def unlink_solutions(nb:dict)->dict:
    "Markdown links to the solutions notebooks as plain text."
    for cell in (c for c in nb['cells'] if c['cell_type'] == 'markdown'):
        source = cell['source'] if isinstance(cell['source'], list) else [cell['source']]
        cell['source'] = [SOLUTION_LINK.sub(r'\1', line) for line in source]
    return nb


def student_readme(text:str)->str:
    "The README for students: the teaching paragraph rewritten for them, no mention of the teachers' `solutions/`."
    text = re.sub(r"(## Teaching\n\n).*?(To skip the pretraining)", lambda m: m[1] + STUDENT_TEACHING + m[2], text, count=1, flags=re.S)
    text = re.sub(r" ?\((?:reference )?solutions in `solutions/`\)", '', text)
    return re.sub(r",? and the teachers' `solutions/`", '', text)


def write_notebook(nb:dict, target:Path):
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')


def released(root=ROOT)->dict:
    "nbgrader's release of the concept notebooks (built in a temporary course): name -> notebook."
    spec = importlib.util.spec_from_file_location('grade', root / 'classroom' / 'grade.py')
    grade = importlib.util.module_from_spec(spec); spec.loader.exec_module(grade)
    with tempfile.TemporaryDirectory() as course:
        return {p.name: json.loads(p.read_text(encoding='utf-8')) for p in grade.release(Path(course) / 'course', root)}


def build(out_dir, root=ROOT, docs:bool=False)->list[str]:
    "Write the students' copy into `out_dir` (replaced if it exists); returns the relative paths written."
    out_dir = Path(out_dir).resolve()
    if out_dir == root.resolve() or root.resolve().is_relative_to(out_dir): raise ValueError(f'refusing to replace {out_dir}')
    release = released(root)
    if out_dir.exists(): shutil.rmtree(out_dir)
    written = [p for p in tracked(root) if keep(p)]
    for rel in written:
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith('nbs/') and rel.endswith('.ipynb'):
            name = Path(rel).name
            nb = release[name] if rel == f'nbs/{name}' and name in release else json.loads((root / rel).read_text(encoding='utf-8'))
            write_notebook(unlink_solutions(nb), target)
        elif rel == 'README.md': target.write_text(student_readme((root / rel).read_text(encoding='utf-8')), encoding='utf-8')
        else: shutil.copy2(root / rel, target)
    clean = Path(sys.executable).parent / 'nbdev-clean'
    if release and clean.exists():   # the released notebooks in nbdev's clean form (nbgrader's metadata is kept)
        subprocess.run([str(clean)], cwd=out_dir, check=True, capture_output=True)
    if docs: subprocess.run([sys.executable, 'tools/build_docs.py', 'docs'], cwd=out_dir, check=True)
    return written


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    out = Path(args[0]) if args else ROOT / 'student'
    files = build(out, docs='--docs' in sys.argv)
    print(f"students' copy: {len(files)} files in {out}" + (f", HTML pages in {out / 'docs'}" if '--docs' in sys.argv else ''))
