"""Write the students' copy of the repository (`make student`): the committed files without the teachers' answers.

Usage: `python tools/make_student.py [OUT_DIR] [--docs]` (default `student/`, which git ignores). The copy holds every
file git tracks except:
- `solutions/` (the reference solutions) and this tool's own outputs (`student/`, `docs/`);
- in `nbs/09_exercises.ipynb`, the notes and tests under each checker, which hold the reference answers (a correct
  function per checker and the derivations' closed forms): the students' copy keeps the title, the exported checkers
  (so `midol/exercises.py` is unchanged and in sync) and a note that says what was left out;
- links from the notebooks' markdown to the solutions notebooks, which become plain text.
The exercise cells of the concept notebooks are already blank stubs. With `--docs` it also renders the copy's HTML
pages into OUT_DIR/docs (no solution pages: there is no `solutions/` to render).
"""
import json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = ('solutions/', 'student/', 'docs/')
SOLUTION_LINK = re.compile(r'\[([^\]]*)\]\((?:\.\./)?solutions/[^)]*\)')
NOTE_09 = ("This is the students' copy of the checkers' notebook: it keeps the exported checkers, which grade on hidden "
           "cases and hold none of the answers. The notes and tests that work each checker through a correct answer are "
           "in the teachers' copy of the repository.")


def tracked(root=ROOT)->list[str]:
    "The files git tracks (relative paths), those that exist in the working tree."
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=root, capture_output=True, text=True, check=True).stdout
    return [p for p in out.split('\0') if p and (root / p).is_file()]


def keep(path:str)->bool:
    return not path.startswith(LEFT_OUT)


def strip_09(nb:dict)->dict:
    "The checkers' notebook without its notes and tests: title, `default_exp`, the exported cells and one note."
    cells, title = nb['cells'], nb['cells'][0]
    exported = [c for c in cells if c['cell_type'] == 'code' and ''.join(c['source']).lstrip().startswith(('#| export', '#| default_exp'))]
    note = {'cell_type': 'markdown', 'id': 'students-copy-note', 'metadata': {}, 'source': [NOTE_09]}
    return {**nb, 'cells': [title, note] + exported}


def unlink_solutions(nb:dict)->dict:
    "Markdown links to the solutions notebooks as plain text."
    for cell in (c for c in nb['cells'] if c['cell_type'] == 'markdown'):
        cell['source'] = [SOLUTION_LINK.sub(r'\1', line) for line in cell['source']]
    return nb


def write_notebook(nb:dict, target:Path):
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')


def build(out_dir, root=ROOT, docs:bool=False)->list[str]:
    "Write the students' copy into `out_dir` (replaced if it exists); returns the relative paths written."
    out_dir = Path(out_dir).resolve()
    if out_dir == root.resolve() or root.resolve().is_relative_to(out_dir): raise ValueError(f'refusing to replace {out_dir}')
    if out_dir.exists(): shutil.rmtree(out_dir)
    written = [p for p in tracked(root) if keep(p)]
    for rel in written:
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith('nbs/') and rel.endswith('.ipynb'):
            nb = unlink_solutions(json.loads((root / rel).read_text(encoding='utf-8')))
            write_notebook(strip_09(nb) if rel == 'nbs/09_exercises.ipynb' else nb, target)
        else: shutil.copy2(root / rel, target)
    if docs: subprocess.run([sys.executable, 'tools/build_docs.py', 'docs'], cwd=out_dir, check=True)
    return written


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    out = Path(args[0]) if args else ROOT / 'student'
    files = build(out, docs='--docs' in sys.argv)
    print(f"students' copy: {len(files)} files in {out}" + (f", HTML pages in {out / 'docs'}" if '--docs' in sys.argv else ''))
