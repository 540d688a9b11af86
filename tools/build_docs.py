"""Build the documentation site (`make docs`): Sphinx with MyST-NB and sphinx-book-theme, offline, into docs/.

Usage: `python tools/build_docs.py [OUT_DIR] [--stage DIR]` (default `docs/`; open `docs/index.html`). Nothing is executed:
the notebook pages show the outputs the notebooks were committed with. The script stages the sources in a build folder
(default `build/docs-src/`, which git ignores) and runs Sphinx on it with the settings of `site/conf.py`:
- `index.md`: `site/index.md` (what midol is, how to cite it) followed by the sidebar's tables of contents: the
  notebooks of `nbs/` in the reading order of `nbs/teaching.ipynb` (the order its sessions name them; notebooks it
  does not name follow in name order), the teachers' solutions of `solutions/` when the folder exists, the API
  reference, and the repository's Markdown pages (README, benchmarks, the figures' READMEs);
- every notebook, with its nbdev directives (`#| export`, `#| hide`, ...) removed: a `#| hide` cell is left out, a
  `#| echo: false` cell shows its output only, a cell of `fastcore.test` calls is collapsed under "Show code cell",
  a progress-bar widget shows the text of its last state, and a name that midol exports, written as code in the prose, links to its API entry;
- `api/<module>.md`: one page per module of midol, with each exported function's and class's signature, docstring
  and parameter comments (nbdev's docments, as a table; `site/conf.py` adds it);
- the rest of the repository's tracked files the pages link to (figures, benchmarks) through links to the checkout.
"""
import ast, html, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / 'site'
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*(.*?)\s*$')
TEST_NAMES = ('test_eq', 'test_ne', 'test_close', 'test_is', 'test_fail', 'test_warns', 'test_stdout', 'test_sig',
              'test_eq_type', 'test_shuffled', 'test_fig_exists', 'test')
WIDGET = 'application/vnd.jupyter.widget-view+json'
PAGES_MD = ('README.md', 'BENCHMARKS.md', 'figures/*/README.md')   # in the sidebar
TABLES_MD = ('figures/*/tables/*.md',)                               # pages the notebooks link to, not in the sidebar
LINKED = ('figures', 'benchmarks', 'data', 'midol', 'tests', 'tools', 'LICENSE', 'CITATION.cff', 'Makefile',
          'pyproject.toml', 'requirements.txt', 'environment.yml')


def notebooks(root=ROOT) -> dict:
    "The notebooks of each section folder that exists (`nbs`, `solutions`), in name order."
    return {d: sorted((root / d).glob('*.ipynb')) for d in ('nbs', 'solutions') if (root / d).is_dir()}


def source(cell) -> str:
    return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']


def reading_order(root=ROOT) -> list:
    "Notebook names of nbs/ in the order the sessions of teaching.ipynb name them, then the others in name order."
    names = [p.stem for p in sorted((root / 'nbs').glob('*.ipynb')) if p.stem not in ('index', 'teaching')]
    order, plan = [], root / 'nbs' / 'teaching.ipynb'
    if plan.is_file():
        cells = [source(c) for c in json.loads(plan.read_text())['cells'] if c['cell_type'] == 'markdown']
        start = next((i for i, c in enumerate(cells) if c.lstrip().startswith('## Session')), len(cells))
        body = '\n'.join(l for c in cells[start:] for l in c.splitlines() if not l.lstrip().startswith('#'))
        pattern = re.compile(r'(?<![\w/.])(' + '|'.join(sorted(map(re.escape, names), key=len, reverse=True)) + r')(?![\w])')
        for m in pattern.finditer(body) if names else ():
            if m.group(1) not in order: order.append(m.group(1))
    return order + [n for n in names if n not in order]


def is_test_cell(code: str, outputs=()) -> bool:
    "A cell that starts with a test_ call, or that only sets up and runs fastcore.test checks and shows nothing."
    if code.lstrip().startswith('test_'): return True
    try: body = ast.parse(code).body
    except SyntaxError: return False
    def test(node):
        return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id in TEST_NAMES)
    setup = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom, ast.With, ast.For, ast.Assert)
    return (bool(body) and not outputs and any(test(n) for n in body)
            and all(test(n) or isinstance(n, setup) for n in body))


def exported_names(root=ROOT) -> dict:
    "name -> dotted path of every name midol exports (`__all__` of each module of `_modidx`)."
    sys.path.insert(0, str(root))
    import importlib
    idx = importlib.import_module('midol._modidx').d['syms']
    names = {}
    for module, syms in idx.items():
        for full in syms:
            if full.count('.') == 2: names.setdefault(full.split('.')[-1], full)   # functions and classes, not methods
        names.setdefault(module, module)
    return names


CODE_SPAN = re.compile(r'(```.*?```|\$\$.*?\$\$|(?<![\\$])\$[^$\n]+?\$)', re.S)
NAME_SPAN = re.compile(r'(?<![\[`])`([A-Za-z_][\w.]*)(\(\))?`(?![`\]])')
def link_names(text: str, names: dict) -> str:
    "Inline code that is a name midol exports (`sinkhorn_knopp`, `midol.routing`) as a link to its API entry."
    def swap(m):
        target = names.get(m.group(1))
        if target is None: return m.group(0)
        role = 'py:mod' if target == m.group(1) and '.' in target else 'py:obj'
        return f'{{{role}}}`{m.group(1)}{m.group(2) or ""} <{target}>`'
    return ''.join(part if CODE_SPAN.fullmatch(part) else NAME_SPAN.sub(swap, part) for part in CODE_SPAN.split(text))


def widget_text(output: dict, state: dict):
    "A tqdm progress-bar widget as the text of its last state (`demo: 100%|##########| 3/3 [...]`), or None."
    model = state.get(output['data'][WIDGET].get('model_id'), {})
    kids = [state.get(c.removeprefix('IPY_MODEL_'), {}) for c in model.get('state', {}).get('children', [])]
    if [k.get('model_name') for k in kids] != ['HTMLModel', 'FloatProgressModel', 'HTMLModel']: return None
    left, bar, right = (k['state'] for k in kids)
    done = int(10 * bar.get('value', 0) / bar['max']) if bar.get('max') else 0
    text = html.unescape(f"{left.get('value', '')}|{'█' * done}{' ' * (10 - done)}|{right.get('value', '')}").replace('\u2007', ' ')
    return {'name': 'stderr', 'output_type': 'stream', 'text': text.strip() + '\n'}


def clean_outputs(outputs: list, state: dict) -> list:
    "Outputs without widgets: a progress bar becomes the text of its last state, other widgets are dropped."
    return [o if WIDGET not in o.get('data', {}) else widget_text(o, state) for o in outputs
            if WIDGET not in o.get('data', {}) or widget_text(o, state)]


def clean_cell(cell: dict, names: dict, state: dict = {}):
    "The cell as the site shows it, or None to leave it out."
    if cell['cell_type'] == 'markdown':
        cell['source'] = link_names(source(cell), names)
        return cell
    if cell['cell_type'] != 'code': return cell
    lines = source(cell).split('\n')
    directives = [DIRECTIVE.match(l).group(1) for l in lines if DIRECTIVE.match(l)]
    code = '\n'.join(l for l in lines if not DIRECTIVE.match(l)).strip('\n')
    tags = list(cell.get('metadata', {}).get('tags', []))
    if 'hide' in directives or (not code.strip() and not cell.get('outputs')): return None
    if 'echo: false' in directives: tags.append('remove-input')
    if 'output: false' in directives: tags.append('remove-output')
    if is_test_cell(code, cell.get('outputs')): tags.append('hide-cell')
    cell['source'] = code
    cell['outputs'] = clean_outputs(cell.get('outputs', []), state)
    cell.setdefault('metadata', {})['tags'] = tags
    return cell


def clean_notebook(nb: dict, names: dict) -> dict:
    "The notebook as the site shows it: no nbdev directive, no `#| hide` cell, test cells collapsed, no widgets."
    widgets = nb.get('metadata', {}).pop('widgets', {})
    state = widgets.get('application/vnd.jupyter.widget-state+json', {}).get('state', {})
    nb['cells'] = [c for c in (clean_cell(c, names, state) for c in nb['cells']) if c is not None]
    return nb


def title(path: Path) -> str:
    "The first `# ` heading of a notebook or Markdown file."
    text = '\n'.join(source(c) for c in json.loads(path.read_text())['cells'][:2]) if path.suffix == '.ipynb' else path.read_text()
    return next((l[2:].strip() for l in text.splitlines() if l.startswith('# ')), path.stem)


def summary(path: Path) -> str:
    "The one-line summary (the first `> ` line) of a notebook."
    first = source(json.loads(path.read_text())['cells'][0])
    return next((l[1:].strip() for l in first.splitlines() if l.startswith('>')), '')


def module_of(path: Path):
    "The module a notebook exports (`#| default_exp`), or None."
    for cell in json.loads(path.read_text())['cells']:
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', source(cell), re.M)
        if m: return m.group(1)
    return None


def api_page(module: str, nb: Path) -> str:
    return (f'# midol.{module}\n\nExported by the notebook [{nb.stem}](../nbs/{nb.name}), where each name is derived '
            f'and tested. Each entry gives the signature, the docstring and the comment beside each parameter.\n\n'
            f'```{{eval-rst}}\n.. automodule:: midol.{module}\n   :members:\n   :undoc-members:\n```\n')


def toctree(caption: str, entries: list, hidden=False) -> str:
    opts = f':caption: {caption}\n:maxdepth: 1\n' + (':hidden:\n' if hidden else '')
    return '```{toctree}\n' + opts + '\n' + '\n'.join(entries) + '\n```\n\n'


def stage(src: Path, root=ROOT) -> dict:
    "Write the Sphinx sources into `src` (replaced); returns the sidebar: caption -> page names."
    if src.exists(): shutil.rmtree(src)
    (src / 'api').mkdir(parents=True)
    names = exported_names(root)
    order = ['index', 'teaching'] + reading_order(root)
    nbs = {p.stem: p for p in (root / 'nbs').glob('*.ipynb')}
    sections = notebooks(root)
    for folder, paths in sections.items():
        (src / folder).mkdir()
        for p in paths:
            nb = clean_notebook(json.loads(p.read_text(encoding='utf-8')), names)
            (src / folder / p.name).write_text(json.dumps(nb, ensure_ascii=False), encoding='utf-8')
    for name in LINKED:                                       # files the pages link to, read where they are
        if (root / name).exists(): os.symlink(root / name, src / name)
    md_pages = []
    for pattern in PAGES_MD:
        for p in sorted(root.glob(pattern)):
            rel = p.relative_to(root)
            if rel.parts[0] in LINKED: continue               # under a linked folder: Sphinx reads it there
            shutil.copy2(p, src / rel); md_pages.append(str(rel.with_suffix('')))
    md_pages += [str(p.relative_to(root).with_suffix('')) for pattern in PAGES_MD for p in sorted(root.glob(pattern))
                 if p.relative_to(root).parts[0] in LINKED]
    modules = [(m, nbs[n]) for n in order if n in nbs for m in [module_of(nbs[n])] if m]
    for module, nb in modules: (src / 'api' / f'{module}.md').write_text(api_page(module, nb), encoding='utf-8')
    (src / 'api' / 'index.md').write_text('# API reference\n\nOne page per module of midol, in reading order, each '
                                          'exported by one notebook:\n\n' + ''.join(
        f'- [midol.{m}]({m}.md), from [{nb.stem}](../nbs/{nb.name}): {summary(nb)}\n' for m, nb in modules), encoding='utf-8')
    sidebar = {'Start here': [e for n, e in (('index', 'Overview: the notebooks and their modules <nbs/index>'),
                                             ('teaching', 'nbs/teaching')) if n in nbs],
               'Notebooks, in reading order': [f'nbs/{n}' for n in order[2:] if n in nbs]}
    if 'solutions' in sections:
        rank = {n: i for i, n in enumerate(order)}
        sols = sorted(sections['solutions'], key=lambda p: (rank.get(p.stem.removesuffix('_solutions'), 99), p.stem))
        sidebar["Teachers' solutions"] = [f'solutions/{p.stem}' for p in sols]
    sidebar['API reference'] = ['Modules and their notebooks <api/index>'] + [f'api/{m}' for m, _ in modules]
    sidebar['Repository pages'] = [f'README <{p}>' if p == 'README' else p for p in md_pages]   # its title is midol's
    index = (SITE / 'index.md').read_text(encoding='utf-8')
    (src / 'index.md').write_text(index + '\n' + ''.join(toctree(c, e) for c, e in sidebar.items()), encoding='utf-8')
    return sidebar


def build(out=ROOT / 'docs', root=ROOT, src=None, quiet=True) -> Path:
    "Stage the sources and run Sphinx into `out`; returns the path of the index page."
    out, src = Path(out).resolve(), Path(src or root / 'build' / 'docs-src').resolve()
    stage(src, root)
    html = src / '_build' / 'html'                            # MyST-NB writes beside the output folder: keep it in src
    pages = ','.join(('index.md', 'nbs/*.ipynb', 'solutions/*.ipynb', 'api/*.md') + PAGES_MD + TABLES_MD)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(root / 'site'), '-d', str(src / '.doctrees'),
           '-D', f'include_patterns={pages}', str(src), str(html)] + (['-q'] if quiet else [])
    subprocess.run(cmd, check=True, cwd=root, env={**os.environ, 'PYTHONPATH': str(root)})
    if out.exists(): shutil.rmtree(out)
    shutil.move(html, out)
    return out / 'index.html'


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    stage_dir = sys.argv[sys.argv.index('--stage') + 1] if '--stage' in sys.argv else None
    if stage_dir: args.remove(stage_dir)
    t0 = time.time()
    index = build(Path(args[0]) if args else ROOT / 'docs', src=stage_dir)
    print(f'site built in {time.time() - t0:.0f} s: open {index}')
