"""Render every notebook of nbs/ and solutions/, with its stored outputs, to static HTML, plus an index page (`make docs`).

Usage: `python tools/make_docs.py [OUT_DIR]` (default `docs/`). Nothing is executed: the pages show the outputs the
notebooks were committed with. Pages land in OUT_DIR/nbs/ and OUT_DIR/solutions/, the same layout as the repository,
so links between notebooks keep working (rewritten from .ipynb to .html; a link to a notebook that is not there, such
as a solutions notebook in the students' copy, becomes plain text). The folder works offline and on its own:
- the formulas of the markdown cells are turned into MathML at build time (`latex2mathml`), which browsers draw
  natively; the LaTeX stays in each formula as its annotation. No MathJax, no script or stylesheet from the network;
- images and other repository files that the notebooks link (the committed figures/) are copied into OUT_DIR at the
  same relative place, so their links resolve inside OUT_DIR;
- page titles are plain text (no backticks, no LaTeX).
"""
import html, re, shutil, sys
from pathlib import Path
import nbformat
from latex2mathml.converter import convert
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {'nbs': 'Notebooks', 'solutions': 'Reference solutions to the exercises (for teachers)'}
MATH = re.compile(r'\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$', re.S)       # display, then inline math
CODE = re.compile(r'(```.*?```|`[^`\n]*`)', re.S)                        # fenced blocks and code spans: no math inside
SYMBOLS = {'tau': 'τ', 'lambda': 'λ', 'theta': 'θ', 'gamma': 'γ', 'varepsilon': 'ε', 'epsilon': 'ε', 'alpha': 'α',
           'beta': 'β', 'sigma': 'σ', 'mu': 'μ', 'pi': 'π', 'times': '×', 'le': '≤', 'ge': '≥', 'ne': '≠', 'to': '→',
           'cdot': '·', 'infty': '∞', 'sum': 'Σ', 'log': 'log'}


def notebooks(root=ROOT):
    "The notebooks to render, per section folder, in name order."
    return {d: sorted(p for p in (root / d).glob('*.ipynb')) for d in SECTIONS if (root / d).is_dir()}


def plain(text:str)->str:
    "Markdown with LaTeX as plain text: `$\\mathcal{L}_{route}$` -> L_route, backticks and emphasis dropped."
    def latex(m):
        s = re.sub(r'\\(?:mathcal|mathrm|mathbf|text|operatorname)\{([^{}]*)\}', r'\1', m.group(1) or m.group(2))
        s = re.sub(r'\\([A-Za-z]+)', lambda w: SYMBOLS.get(w.group(1), w.group(1)), s)
        return s.replace('{', '').replace('}', '').replace('\\', '')
    return re.sub(r'[`*]', '', MATH.sub(latex, text)).strip()


def title_and_summary(nb):
    "The title (first `# ` line) and the summary (first `> ` line) of a notebook's first markdown cell."
    first = next((c.source for c in nb.cells if c.cell_type == 'markdown'), '')
    title = next((l[2:].strip() for l in first.splitlines() if l.startswith('# ')), '')
    summary = next((l[1:].strip() for l in first.splitlines() if l.startswith('>')), '')
    return title, summary


def mathml(latex:str, display:bool)->str:
    "MathML for one formula, its LaTeX kept as the annotation (`application/x-tex`)."
    try: tree = convert(latex.strip(), display='block' if display else 'inline')
    except Exception: return f'<code>{html.escape(latex)}</code>'          # a formula latex2mathml cannot read stays LaTeX
    head, _, body = tree.partition('>')
    return (f'{head}><semantics>{body[:-len("</math>")]}'
            f'<annotation encoding="application/x-tex">{html.escape(latex, quote=False)}</annotation></semantics></math>')


def protect_math(nb)->dict:
    "Replace each formula of the markdown cells by a placeholder; returns placeholder -> (MathML, plain text)."
    formulas = {}
    def swap(m):
        key = f'MIDOLMATH{len(formulas)}X'
        formulas[key] = (mathml(m.group(1) or m.group(2), display=m.group(1) is not None), plain(m.group(0)))
        return key
    for cell in (c for c in nb.cells if c.cell_type == 'markdown'):
        cell.source = ''.join(part if CODE.fullmatch(part) else MATH.sub(swap, part) for part in CODE.split(cell.source))
    return formulas


_LINK = re.compile(r'(href|src)="(?![a-z][a-z0-9+.-]*:|#|/)([^"]+)"')   # relative links only
def fix_links(page:str, source_dir:Path, out_dir:Path, root=ROOT)->str:
    "Notebook links -> .html (plain text when the notebook is absent); other repository files copied into `out_dir`."
    def repl(m):
        attr, (target, _, anchor) = m.group(1), m.group(2).partition('#')
        anchor, path = (f'#{anchor}' if anchor else ''), (source_dir / target).resolve()
        if attr == 'href' and target.endswith('.ipynb'):
            return f'{attr}="{target[:-6]}.html{anchor}"' if path.is_file() else 'data-missing="notebook not in this copy"'
        if path.is_file() and path.is_relative_to(root):
            copy = out_dir / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        return m.group(0)
    return _LINK.sub(repl, page)


_REMOTE = re.compile(r'<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>|<script type="text/x-mathjax-config">.*?</script>'
                     r'|<script\b[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*?</script>'
                     r'|<link[^>]*\bhref="https?://[^"]*"[^>]*>|<!--[^>]*mathjax[^>]*-->', re.S | re.I)
def offline(page:str)->str:
    "Drop every script and stylesheet the template loads from the network (MathJax, require.js, mermaid) and their comments."
    return _REMOTE.sub('', page)


def render(path:Path, exporter:HTMLExporter, out_dir:Path, root=ROOT)->tuple[str, nbformat.NotebookNode]:
    "HTML of one notebook (outputs as stored, formulas as MathML) and the notebook as read."
    nb = nbformat.read(path, as_version=4)
    title, _ = title_and_summary(nb)
    shown = nbformat.from_dict(nb)
    formulas = protect_math(shown)
    page, _ = exporter.from_notebook_node(shown, resources={'metadata': {'name': plain(title) or path.stem, 'path': str(path.parent)}})
    def put_back(text, plain_text=False):
        def one(m):
            if m.group(0) not in formulas: return m.group(0)
            return formulas[m.group(0)][1].replace(' ', '-') if plain_text else formulas[m.group(0)][0]
        return re.sub(r'MIDOLMATH\d+X', one, text)
    page = re.sub(r'<[^<>]*MIDOLMATH\d+X[^<>]*>', lambda tag: put_back(tag.group(0), plain_text=True), page)  # ids, anchors: plain
    page = put_back(page)                                                                                       # text: MathML
    return fix_links(offline(page), path.parent, out_dir, root), nb


def index_page(entries)->str:
    "docs/index.html: one list per section, each notebook with its title and summary, as plain text."
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8"><title>midol notebooks</title>',
             '<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}li{margin:.4em 0}'
             'code{background:#f3f3f3}</style></head><body>',
             '<h1>midol: the notebooks</h1><p>Static copies of the notebooks with their stored outputs, made by '
             '<code>make docs</code> (<code>jupyter nbconvert</code>; nothing was re-executed). They need no network.</p>']
    for section, items in entries.items():
        parts.append(f'<h2>{html.escape(SECTIONS[section])}</h2><ul>')
        for href, stem, title, summary in items:
            parts.append(f'<li><a href="{href}"><code>{html.escape(stem)}</code>: {html.escape(plain(title))}</a>'
                         + (f'<br><small>{html.escape(plain(summary))}</small>' if summary else '') + '</li>')
        parts.append('</ul>')
    return '\n'.join(parts + ['</body></html>\n'])


def html_exporter()->HTMLExporter:
    "nbconvert's HTML exporter (lab template) without the sanitiser it runs over pygments' escaped code (most of its time)."
    return HTMLExporter(filters={'clean_html': lambda page: page})


def build(out_dir, root=ROOT)->list[Path]:
    "Render every notebook into `out_dir` and write its index; returns the pages written (index last)."
    out_dir = Path(out_dir)
    written, entries, exporter = [], {}, html_exporter()
    for section, paths in notebooks(root).items():
        (out_dir / section).mkdir(parents=True, exist_ok=True)
        entries[section] = []
        for path in paths:
            page, nb = render(path, exporter, out_dir, root)
            target = out_dir / section / f'{path.stem}.html'
            target.write_text(page, encoding='utf-8'); written.append(target)
            entries[section].append((f'{section}/{target.name}', path.stem, *title_and_summary(nb)))
    index = out_dir / 'index.html'
    index.write_text(index_page(entries), encoding='utf-8')
    return written + [index]


if __name__ == '__main__':
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / 'docs'
    pages = build(out)
    print(f'{len(pages) - 1} notebook pages and {pages[-1]}')
