"""The notebooks are committed with their outputs (`make outputs`), and those outputs cannot go stale silently: the
driver notebooks name the commit that made them, and the others are re-run and compared by `pytest --nbval`
(`make test`; the cells it skips and the text it ignores are in conftest.py and tests/nbval_sanitize.cfg)."""
import ast, base64, json, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
from make_outputs import DRIVERS, MAX_PNG, code_sources, committed_sources, copy_outputs, shrink_png

NOTEBOOKS = sorted((ROOT / 'nbs').glob('*.ipynb'))
STAMP = re.compile(r'^Outputs made at commit ([0-9a-f]{7,40}) \((\d{4}-\d\d-\d\d)\)( with uncommitted changes)?$')


def draws(src:str)->bool:
    "Does a cell show a figure to the reader: `plt.show()`, `display(Image(...))` or a `show(...)` helper, called at top level?"
    try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))))
    except SyntaxError: return False
    todo = list(tree.body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue  # definitions draw nothing yet
        if isinstance(n, ast.Call):
            f = ast.unparse(n.func)
            if f in ('plt.show', 'show') or (f == 'display' and n.args and isinstance(n.args[0], ast.Call) and ast.unparse(n.args[0].func) == 'Image'):
                return True
        todo.extend(ast.iter_child_nodes(n))
    return False


def load(p): return json.loads(Path(p).read_text())
def code_cells(nb): return [c for c in nb['cells'] if c['cell_type'] == 'code']
def first_output_text(nb):
    o = next((o for c in code_cells(nb) for o in c.get('outputs', [])), {})
    text = o.get('text') or o.get('data', {}).get('text/plain', '')
    return ''.join(text) if isinstance(text, list) else text
def git_history():
    r = subprocess.run(['git', 'rev-parse', '--is-shallow-repository'], cwd=ROOT, capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == 'false'


def test_all_but_two_notebooks_carry_outputs():
    bare = [p.name for p in NOTEBOOKS if not any(c.get('outputs') for c in code_cells(load(p)))]
    assert len(bare) <= 2, f'notebooks without any output (run `make outputs`): {bare}'


def test_every_figure_a_notebook_draws_is_an_image_output():
    missing = [f'{p.name} cell {i}' for p in NOTEBOOKS for i, c in enumerate(load(p)['cells'])
               if c['cell_type'] == 'code' and draws(''.join(c['source']))
               and not re.search(r'#\| (eval: false|export)', ''.join(c['source']))
               and not any('image/png' in o.get('data', {}) for o in c.get('outputs', []))]
    assert not missing, f'cells that draw a figure but store no image (run `make outputs`): {missing}'


def test_draws_finds_the_cells_that_show_a_figure():
    assert draws('fig, ax = plt.subplots()\nplt.show()') and draws("for n in names: display(Image(filename=n))")
    assert draws('show(plot_losses(h), "fig6")') and not draws('def show(n): display(Image(filename=n))')
    assert not draws('save_figure(fig, d, "x")') and not draws('print(1)')


def test_image_outputs_fit_the_budget():
    big = [f'{p.name}: {len(base64.b64decode(o["data"]["image/png"])) // 1000} KB' for p in NOTEBOOKS
           for c in code_cells(load(p)) for o in c.get('outputs', []) if 'image/png' in o.get('data', {})
           and len(base64.b64decode(o['data']['image/png'])) > MAX_PNG]
    assert not big, big


def test_shrink_png_meets_the_budget():
    from PIL import Image
    import io, numpy as np
    buf = io.BytesIO(); Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(buf, 'PNG')
    assert len(buf.getvalue()) > MAX_PNG
    assert len(base64.b64decode(shrink_png(base64.b64encode(buf.getvalue()).decode()))) <= MAX_PNG


@pytest.mark.parametrize('name', sorted(DRIVERS))
def test_driver_outputs_name_the_commit_whose_code_made_them(name):
    nb = load(ROOT / 'nbs' / f'{name}.ipynb')
    m = STAMP.match((first_output_text(nb).splitlines() or [''])[0])
    assert m, f'{name}: its first output must be the stamp "Outputs made at commit ..." (run `make outputs`)'
    assert not m[3], f'{name}: its outputs were made from uncommitted code: commit, then `make outputs`'
    if not git_history(): pytest.skip('a shallow clone: the stamped commit cannot be looked up')
    then = committed_sources(ROOT / 'nbs' / f'{name}.ipynb', m[1])
    assert then is not None, f'{name}: commit {m[1]} is not in this repository'
    assert then == code_sources(nb), f'{name}: its code changed since {m[1]}, which made its outputs: run `make outputs {name}`'


def test_copy_outputs_skips_the_injected_cell_and_refuses_other_code():
    src = {'cells': [{'cell_type': 'code', 'source': 'a = 1', 'outputs': [], 'metadata': {}},
                     {'cell_type': 'code', 'source': 'print(a)', 'outputs': [], 'metadata': {}}]}
    out = {'text': '1\n', 'name': 'stdout', 'output_type': 'stream'}
    ran = {'cells': [src['cells'][0], {'cell_type': 'code', 'source': 'a = 2', 'metadata': {'tags': ['injected-parameters']}},
                     {'cell_type': 'code', 'source': 'print(a)', 'outputs': [out], 'metadata': {}}]}
    assert copy_outputs(src, ran) == 1 and src['cells'][1]['outputs'] == [out]
    ran['cells'][2]['source'] = 'print(a + 1)'
    with pytest.raises(RuntimeError, match='same code cells'): copy_outputs(src, ran)


def test_nbdev_clean_keeps_the_outputs(tmp_path):
    p = tmp_path / '00_information.ipynb'; shutil.copy(ROOT / 'nbs' / p.name, p)
    before = [c.get('outputs') for c in code_cells(load(p))]
    subprocess.run([str(Path(sys.executable).parent / 'nbdev-clean'), '--fname', str(p)], cwd=ROOT, check=True)
    assert any(before) and [c.get('outputs') for c in code_cells(load(p))] == before


def test_nbval_fails_on_a_stale_output(tmp_path):
    "The comparison can fail: a stored number that the code no longer prints is reported."
    nb = load(ROOT / 'nbs' / '00_information.ipynb')
    cell = next(c for c in code_cells(nb) if any(o.get('name') == 'stdout' for o in c.get('outputs', [])))
    o = next(o for o in cell['outputs'] if o.get('name') == 'stdout')
    o['text'] = 'a stale result 12345\n'
    kept = [c for c in code_cells(nb)[:code_cells(nb).index(cell) + 1]]  # the cells up to the changed one
    nb['cells'] = [c for c in nb['cells'] if c['cell_type'] != 'code' or c in kept]
    for c in kept: c['execution_count'] = 1 if c.get('outputs') else None  # outside the repository conftest.py does not apply
    (tmp_path / 'stale.ipynb').write_text(json.dumps(nb))
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--nbval', '--nbval-current-env',
                        '--nbval-sanitize-with', str(ROOT / 'tests' / 'nbval_sanitize.cfg'), '--rootdir', str(ROOT),
                        '-c', str(ROOT / 'pyproject.toml'), str(tmp_path / 'stale.ipynb')],
                       cwd=ROOT / 'nbs', capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and 'a stale result 12345' in r.stdout, r.stdout[-2000:]
