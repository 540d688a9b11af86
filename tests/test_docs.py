"""The rendered copy of issues 15 and 25: `make docs` (tools/make_docs.py) turns every notebook of nbs/ and solutions/
into an HTML page whose formulas are MathML made at build time (the LaTeX kept as each formula's annotation), the
folder works offline and on its own (no script, stylesheet or image from the network, every image copied inside it,
titles in plain text), the committed notebooks carry no error outputs, and docs/index.html links every page.
Also the reader-facing notebook conventions the pages depend on: one title per notebook, typed papermill parameters."""
import html, importlib.util, json, re
from pathlib import Path
import pytest
from papermill.inspection import inspect_notebook

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ('nbs', 'solutions')
NOTEBOOKS = sorted(p for d in SECTIONS for p in (ROOT / d).glob('*.ipynb'))
IDS = [f'{p.parent.name}/{p.stem}' for p in NOTEBOOKS]
MATH = re.compile(r'\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$', re.S)   # display, then inline math of markdown cells


def load_make_docs():
    spec = importlib.util.spec_from_file_location('make_docs', ROOT / 'tools' / 'make_docs.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def docs(tmp_path_factory):
    "Render every notebook once (no execution; well under a minute) into a temporary docs folder."
    out = tmp_path_factory.mktemp('docs')
    pages = load_make_docs().build(out)
    return out, pages


def notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def page_of(out: Path, path: Path) -> Path:
    return out / path.parent.name / f'{path.stem}.html'


def math_fragments(nb: dict) -> list:
    return [m.group(1) or m.group(2) for c in nb['cells'] if c['cell_type'] == 'markdown'
            for m in MATH.finditer(''.join(c['source']))]


def test_notebooks_found():
    "The notebooks, and the solutions in the teachers' copy (the students' copy made by `make student` has none)."
    assert len([p for p in NOTEBOOKS if p.parent.name == 'nbs']) >= 15
    assert any(p.parent.name == 'solutions' for p in NOTEBOOKS) == (ROOT / 'solutions').is_dir()


def test_every_page_written_and_indexed(docs):
    out, pages = docs
    index = (out / 'index.html').read_text()
    assert pages[-1] == out / 'index.html' and len(pages) == len(NOTEBOOKS) + 1
    for path in NOTEBOOKS:
        page = page_of(out, path)
        assert page.is_file() and page.stat().st_size > 10_000, page
        assert f'href="{path.parent.name}/{page.name}"' in index, f'docs/index.html does not link {page.name}'
        title = load_make_docs().plain(next(l[2:] for l in notebook(path)['cells'][0]['source'] if l.startswith('# ')).strip())
        assert f'<title>{html.escape(title, quote=False)}</title>' in page.read_text(), f'{page.name}: title {title!r} missing'
        assert not re.search(r'[`$\\]', title), f'{page.name}: the title is not plain text: {title!r}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=IDS)
def test_latex_survives(docs, path):
    "Every $...$ / $$...$$ of the markdown reaches the page (HTML-escaped, as a MathML annotation), drawn as MathML."
    out, _ = docs
    text = page_of(out, path).read_text()
    fragments = math_fragments(notebook(path))
    missing = [f for f in fragments if f not in text and html.escape(f, quote=False) not in text]
    assert not missing, f'{path.name}: LaTeX lost in the HTML: {missing[:3]}'
    if fragments: assert '<math xmlns="http://www.w3.org/1998/Math/MathML"' in text and '<annotation encoding="application/x-tex">' in text
    assert 'mathjax' not in text.lower(), f'{path.name} still loads MathJax'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=IDS)
def test_page_works_offline_and_on_its_own(docs, path):
    "No script, stylesheet or image from the network; every image resolves to a file inside the docs folder."
    out, _ = docs
    page = page_of(out, path)
    text = page.read_text()
    remote = re.findall(r'<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)="(https?://[^"]*)"', text)
    assert not remote, f'{page.name} loads {remote[:3]}'
    assert not re.search(r'<script\b[^>]*>(?:(?!</script>).)*?https?://', text, re.S), f'{page.name}: a script fetches from the network'
    for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', text):
        if src.startswith('data:'): continue
        target = (page.parent / src.split('#')[0]).resolve()
        assert target.is_relative_to(out.resolve()) and target.is_file(), f'{page.name}: image {src} is not inside docs/'


def test_index_titles_are_plain_text(docs):
    out, _ = docs
    items = re.findall(r'<li><a href="[^"]+"><code>[^<]*</code>: ([^<]*)</a>', (out / 'index.html').read_text())
    assert len(items) == len(NOTEBOOKS) and not [t for t in items if re.search(r'[`$\\]', t)], items


def test_concept_notebooks_have_formulas():
    for name in ('00_information', '02b_routing', '02c_dino', '02d_model'):
        assert len(math_fragments(notebook(ROOT / 'nbs' / f'{name}.ipynb'))) >= 5, name


@pytest.mark.parametrize('path', NOTEBOOKS, ids=IDS)
def test_no_error_outputs(docs, path):
    "No error output in the committed notebook, and no traceback in its page."
    out, _ = docs
    for i, cell in enumerate(notebook(path)['cells']):
        for output in cell.get('outputs', []):
            text = json.dumps(output)
            assert output['output_type'] != 'error' and '"ename"' not in text and 'Traceback' not in text, f'{path.name} cell {i}'
    assert 'Traceback (most recent call last)' not in page_of(out, path).read_text()


def test_links_point_at_pages(docs):
    "Links between notebooks point at the rendered .html pages, and those pages exist."
    out, _ = docs
    for page in (out / d / f'{p.stem}.html' for d in SECTIONS for p in (ROOT / d).glob('*.ipynb')):
        for target in re.findall(r'href="(?![a-z][a-z0-9+.-]*:|#)([^"#]+)', page.read_text()):
            assert not target.endswith('.ipynb'), f'{page.name} links {target}'
            if target.endswith('.html'): assert (page.parent / target).resolve().is_file(), f'{page.name}: broken link {target}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=IDS)
def test_one_title_per_notebook(path):
    "Only the first cell is a level-1 heading: a `# ` line elsewhere would render as a second title."
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
