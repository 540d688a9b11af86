"""The documentation site of issue 30 (`make docs`: tools/build_docs.py, Sphinx + MyST-NB + sphinx-book-theme, settings in
site/conf.py), built once per test session with the network cut off (a new network namespace when `unshare` can make
one, else unreachable proxies), and checked the way a reader uses it: every notebook reachable from the index through
the sidebar, in the reading order of teaching.ipynb; the offline search finds Sinkhorn in 02b_routing; no nbdev
directive in any code block; no script from the network; every image inside the site; MathJax served from the site;
the API page of midol.routing shows sinkhorn_knopp with its parameters and their comments; names in the prose link
to the API pages; stored outputs are shown. Also the notebook conventions the pages depend on: one title per
notebook, typed papermill parameters, no error output."""
import html, importlib.util, inspect, json, os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest
from papermill.inspection import inspect_notebook

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ('nbs', 'solutions')
NOTEBOOKS = sorted(p for d in SECTIONS for p in (ROOT / d).glob('*.ipynb'))
IDS = [f'{p.parent.name}/{p.stem}' for p in NOTEBOOKS]


def load_tool():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT / 'tools' / 'build_docs.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


def offline_prefix() -> list:
    "`unshare -rn` (no network at all) where this machine allows it, else nothing (the proxies below still apply)."
    try: ok = shutil.which('unshare') and subprocess.run(['unshare', '-rn', 'true'], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError): ok = False
    return ['unshare', '-rn'] if ok else []


@pytest.fixture(scope='session')
def site(tmp_path_factory):
    "Build the site once, offline, into a temporary folder; returns (folder, seconds)."
    out, stage = tmp_path_factory.mktemp('site'), tmp_path_factory.mktemp('stage')
    dead = 'http://127.0.0.1:9'
    env = {**os.environ, 'http_proxy': dead, 'https_proxy': dead, 'HTTP_PROXY': dead, 'HTTPS_PROXY': dead, 'no_proxy': '',
           'OMP_NUM_THREADS': '1'}
    t0 = time.time()
    run = subprocess.run(offline_prefix() + [sys.executable, 'tools/build_docs.py', str(out), '--stage', str(stage)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, time.time() - t0


def pages(out: Path) -> list:
    return sorted(p for p in out.rglob('*.html') if '_static' not in p.parts)


def notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def sidebar_links(page: Path) -> list:
    "The hrefs of the sidebar (sphinx-book-theme's primary navigation) of a page, in order."
    nav = re.search(r'<nav class="bd-links bd-docs-nav"[^>]*>(.*?)</nav>', page.read_text(), re.S)
    assert nav, f'{page.name} has no sidebar'
    return re.findall(r'<a class="reference internal[^"]*" href="([^"#]+)', nav.group(1))


def test_build_time(site):
    "`make docs` builds in at most 3 minutes (measured here with the network cut off)."
    out, seconds = site
    assert (out / 'index.html').is_file() and seconds < 180, seconds


def test_sidebar_reaches_every_notebook_in_reading_order(site):
    out, _ = site
    links = [(out / l).resolve() for l in sidebar_links(out / 'index.html')]
    for path in NOTEBOOKS:
        page = (out / path.parent.name / f'{path.stem}.html').resolve()
        assert page in links, f'the sidebar of index.html does not link {path.parent.name}/{page.name}'
        assert page.is_file() and page.stat().st_size > 5_000, page
    order = load_tool().reading_order(ROOT)
    shown = [l.stem for l in links if l.parent.name == 'nbs' and l.stem in order]
    assert shown == order, 'the notebooks are not in the reading order of teaching.ipynb'
    for name in ('README', 'api/routing'): assert (out / f'{name}.html').resolve() in links, name


def test_previous_and_next_links(site):
    out, _ = site
    text = (out / 'nbs' / '02b_routing.html').read_text()
    assert 'class="left-prev"' in text and 'class="right-next"' in text


def test_reading_order_follows_teaching(tmp_path):
    "Notebooks named in teaching's sessions come in that order (headings ignored), the rest after in name order."
    (tmp_path / 'nbs').mkdir()
    for n in ('00_a', '01_b', '02_c', '03_d', 'index', 'teaching'): (tmp_path / 'nbs' / f'{n}.ipynb').write_text('{}')
    cells = [{'cell_type': 'markdown', 'source': 'Intro naming `02_c` first.'},
             {'cell_type': 'markdown', 'source': '## Session 1 (`03_d` to `00_a`)\n\n[00_a](00_a.ipynb), then `02_c`; 00_a again'}]
    (tmp_path / 'nbs' / 'teaching.ipynb').write_text(json.dumps({'cells': cells}))
    assert load_tool().reading_order(tmp_path) == ['00_a', '02_c', '01_b', '03_d']


def search(out: Path, word: str) -> set:
    "Sphinx's offline search, as its JavaScript runs it: the stemmed word in the index's terms and title terms."
    from sphinx.search.en import SearchEnglish
    text = (out / 'searchindex.js').read_text()
    index = json.loads(text[text.index('(') + 1:text.rindex(')')])
    stem = SearchEnglish({}).stem(word.lower())
    hits = set()
    for table in ('terms', 'titleterms'):
        found = index[table].get(stem, [])
        hits |= {index['docnames'][i] for i in ([found] if isinstance(found, int) else found)}
    return hits


def test_search_finds_sinkhorn(site):
    out, _ = site
    assert (out / 'search.html').is_file()
    hits = search(out, 'Sinkhorn')
    assert 'nbs/02b_routing' in hits and 'api/routing' in hits, sorted(hits)


def code_blocks(text: str) -> list:
    return [html.unescape(re.sub(r'<[^>]+>', '', b)) for b in re.findall(r'<pre\b[^>]*>(.*?)</pre>', text, re.S)]


def test_no_nbdev_directive_shown(site):
    "No `#| ...` line in any code block; outside inline code (prose that explains a directive) no `#|` either."
    out, _ = site
    for page in pages(out):
        text = page.read_text()
        bad = [l for b in code_blocks(text) for l in b.splitlines() if re.match(r'\s*#\s*\|', l)]
        assert not bad, f'{page.relative_to(out)} shows {bad[:3]}'
        body = re.sub(r'<(code|script|pre)\b.*?</\1>', '', text, flags=re.S)
        assert '#|' not in html.unescape(re.sub(r'<[^>]+>', '', body)), page.relative_to(out)


def test_no_script_from_the_network(site):
    out, _ = site
    for page in pages(out):
        text = page.read_text()
        remote = re.findall(r'<(?:script|link|iframe|img)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]*)"', text)
        assert not remote, f'{page.relative_to(out)} loads {remote[:3]}'
        inline = re.findall(r'<script\b[^>]*>(.*?)</script>', text, re.S)
        assert not [s for s in inline if re.search(r'https?://', s)], f'{page.relative_to(out)}: a script names a URL'


def test_images_inside_the_site(site):
    out, _ = site
    images = 0
    for page in pages(out):
        for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', page.read_text()):
            if src.startswith('data:'): continue
            target = (page.parent / html.unescape(src).split('#')[0]).resolve()
            assert target.is_relative_to(out.resolve()) and target.is_file(), f'{page.relative_to(out)}: image {src}'
            images += 1
    assert images > 0


def test_mathjax_served_from_the_site(site):
    "Formulas are typeset by the copy of MathJax 3 inside the site; `0 \\log 0` reaches MathJax as LaTeX (its \\log has its spacing)."
    out, _ = site
    page = out / 'nbs' / '02b_routing.html'
    text = page.read_text()
    src = re.search(r'<script[^>]*src="([^"]*mathjax/tex-chtml\.js)"', text)
    assert src and (page.parent / src.group(1)).resolve().is_file()
    assert (out / '_static' / 'mathjax' / 'output' / 'chtml' / 'fonts' / 'woff-v2').is_dir()
    assert r'\(\mathcal{L}_{route}\)' in text
    assert re.search(r'<span class="math[^"]*">\\\(0 \\log 0 = 0\\\)</span>', (out / 'nbs' / '00_information.html').read_text())


def test_api_page_shows_sinkhorn_with_its_parameters(site):
    from fastcore.docments import docments
    from midol.routing import sinkhorn_knopp
    out, _ = site
    text = (out / 'api' / 'routing.html').read_text()
    entry = re.search(r'id="midol\.routing\.sinkhorn_knopp">(.*?)</dd>', text, re.S)
    assert entry, 'api/routing.html has no entry for sinkhorn_knopp'
    body = html.unescape(re.sub(r'<[^>]+>', ' ', entry.group(1)))
    assert sinkhorn_knopp.__doc__.split(':')[0] in body
    for name, p in docments(sinkhorn_knopp, full=True).items():
        if name == 'return': continue
        assert name in body and p['docment'].split(' (')[0] in body, name
    for name in inspect.signature(sinkhorn_knopp).parameters: assert re.search(rf'\b{name}\b', body), name


def test_prose_names_link_to_the_api(site):
    out, _ = site
    text = (out / 'nbs' / '02b_routing.html').read_text()
    assert 'href="../api/routing.html#midol.routing.sinkhorn_knopp"' in text


def test_index_and_readme(site):
    "The README is a page, the index says how to cite the paper and the companion, like the README's top."
    out, _ = site
    index = html.unescape(re.sub(r'<[^>]+>', '', (out / 'index.html').read_text()))
    readme_top = (ROOT / 'README.md').read_text()[:4000]
    for text in (index, readme_top):
        assert 'How to cite' in text and 'arXiv:2604.08936' in text and '@software{midol' in text
    assert 'How to cite' in (out / 'README.html').read_text()


def test_citation_cff():
    import yaml
    cff = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    paper = cff['preferred-citation']
    assert cff['cff-version'] == '1.2.0' and cff['license'] == 'Apache-2.0' and cff['type'] == 'software'
    assert paper['title'].startswith('M-IDoL: Information Decomposition') and paper['url'].endswith('2604.08936')
    assert all(a.get('family-names') and a.get('given-names') for a in paper['authors'])
    assert 'Apache License' in (ROOT / 'LICENSE').read_text()[:200] and 'Version 2.0' in (ROOT / 'LICENSE').read_text()[:200]


def test_stored_outputs_are_shown(site):
    "Every stored PNG output of a shown cell is an image of its page (nothing re-executed, nothing dropped)."
    out, _ = site
    tool = load_tool()
    for path in NOTEBOOKS:
        nb = tool.clean_notebook(notebook(path), {})
        pngs = sum('image/png' in o.get('data', {}) for c in nb['cells'] if 'remove-output' not in c['metadata'].get('tags', [])
                   for o in c.get('outputs', []))
        shown = len(re.findall(r'<img\b[^>]*src="\.\./_images/', (out / path.parent.name / f'{path.stem}.html').read_text()))
        assert shown >= pngs, f'{path.name}: {pngs} PNG outputs, {shown} images on its page'


def test_clean_notebook():
    "What the site shows of a notebook: directives gone, `#| hide` cells gone, test cells folded, progress bars as text."
    tool = load_tool()
    state = {'h': {'model_name': 'HBoxModel', 'state': {'children': ['IPY_MODEL_a', 'IPY_MODEL_b', 'IPY_MODEL_c']}},
             'a': {'model_name': 'HTMLModel', 'state': {'value': 'train: 100%'}},
             'b': {'model_name': 'FloatProgressModel', 'state': {'value': 4.0, 'max': 4.0}},
             'c': {'model_name': 'HTMLModel', 'state': {'value': ' 4/4 [00:01&lt;00:00]'}}}
    bar = {'output_type': 'display_data', 'metadata': {}, 'data': {tool.WIDGET: {'model_id': 'h'}, 'text/plain': 'HBox()'}}
    code = lambda src, outputs=(): {'cell_type': 'code', 'metadata': {}, 'source': src, 'outputs': list(outputs)}
    nb = {'metadata': {'widgets': {'application/vnd.jupyter.widget-state+json': {'state': state}}}, 'cells': [
        code('#| default_exp routing'), code('#| export\ndef f(x): return x'), code('#| hide\nimport secret'),
        code('test_eq(f(1), 1)'), code('x = f(2)\ntest_close(x, 2.)'), code('#| echo: false\nprint(1)'),
        code('for _ in tqdm(range(4)): pass', [bar]),
        {'cell_type': 'markdown', 'metadata': {}, 'source': 'See `f` and `g`, not $`f`$ or `f` in [`f`](x).'}]}
    cells = tool.clean_notebook(nb, {'f': 'midol.routing.f'})['cells']
    assert [c['source'] for c in cells[:3]] == ['def f(x): return x', 'test_eq(f(1), 1)', 'x = f(2)\ntest_close(x, 2.)']
    assert [c['metadata']['tags'] for c in cells[:5]] == [[], ['hide-cell'], ['hide-cell'], ['remove-input'], []]
    assert cells[4]['outputs'] == [{'name': 'stderr', 'output_type': 'stream', 'text': 'train: 100%|██████████| 4/4 [00:01<00:00]\n'}]
    assert cells[5]['source'].startswith('See {py:obj}`f <midol.routing.f>` and `g`') and '[`f`](x)' in cells[5]['source']
    assert 'widgets' not in nb['metadata']


@pytest.mark.parametrize('path', NOTEBOOKS, ids=IDS)
def test_no_error_outputs(path):
    "No error output in the committed notebook."
    for i, cell in enumerate(notebook(path)['cells']):
        for output in cell.get('outputs', []):
            text = json.dumps(output)
            assert output['output_type'] != 'error' and '"ename"' not in text and 'Traceback' not in text, f'{path.name} cell {i}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=IDS)
def test_one_title_per_notebook(path):
    "Only the first cell is a level-1 heading: a `# ` line elsewhere would be a second title (and a second page entry)."
    cells = notebook(path)['cells']
    assert cells[0]['cell_type'] == 'markdown' and ''.join(cells[0]['source']).startswith('# ')
    stray = [i for i, c in enumerate(cells[1:], 1) if c['cell_type'] == 'markdown'
             and any(l.startswith('# ') for l in ''.join(c['source']).split('\n'))]
    assert not stray, f'{path.name}: level-1 headings in cells {stray}'


@pytest.mark.parametrize('path', [p for p in NOTEBOOKS if any('parameters' in c['metadata'].get('tags', []) for c in notebook(p)['cells'])],
                         ids=lambda p: p.stem)
def test_papermill_parameters_typed(path):
    "`papermill --help-notebook` shows a type and a help text for every parameter (annotated: `preset: str = 'cpu'  # ...`)."
    params = inspect_notebook(str(path))
    assert params, path.name
    cell = next(c for c in notebook(path)['cells'] if 'parameters' in c['metadata'].get('tags', []))
    names = [l.split(':')[0] for l in ''.join(cell['source']).splitlines() if l and l[0].isalpha() and ':' in l]
    assert sorted(params) == sorted(names), f'{path.name}: papermill does not see {set(names) - set(params)} (an "=" in a comment hides a line)'
    for name, p in params.items():
        assert p['inferred_type_name'] not in ('None', None), f'{path.name}: {name} has no type annotation'
        assert p['help'], f'{path.name}: {name} has no help comment'
