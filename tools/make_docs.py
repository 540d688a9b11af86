"""Render every notebook of nbs/ and solutions/, with its stored outputs, to static HTML, plus an index page (`make docs`).

Usage: `python tools/make_docs.py [OUT_DIR]` (default `docs/`). Nothing is executed: the pages show the outputs the
notebooks were committed with. Pages land in OUT_DIR/nbs/ and OUT_DIR/solutions/, the same layout as the repository,
so links between notebooks keep working (rewritten from .ipynb to .html); links and images that point at other files
of the repository (the committed figures/) are redirected one folder up, so they work while docs/ sits in the
repository. The math stays LaTeX and MathJax typesets it in the browser.
"""
import html, re, sys
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {'nbs': 'Notebooks', 'solutions': 'Reference solutions to the exercises (for teachers)'}

def notebooks(root=ROOT):
    "The notebooks to render, per section folder, in name order."
    return {d: sorted(p for p in (root / d).glob('*.ipynb')) for d in SECTIONS if (root / d).is_dir()}

def title_and_summary(nb):
    "The title (first `# ` line) and the summary (first `> ` line) of a notebook's first markdown cell."
    first = next((c.source for c in nb.cells if c.cell_type == 'markdown'), '')
    title = next((l[2:].strip() for l in first.splitlines() if l.startswith('# ')), '')
    summary = next((l[1:].strip() for l in first.splitlines() if l.startswith('>')), '')
    return title, summary

_LINK = re.compile(r'(href|src)="(?![a-z][a-z0-9+.-]*:|#|/)([^"]+)"')   # relative links only
def fix_links(page:str)->str:
    "Point relative links at the rendered pages: x.ipynb -> x.html; other repository files one folder further up."
    def repl(m):
        attr, (target, _, anchor) = m.group(1), m.group(2).partition('#')
        anchor = f'#{anchor}' if anchor else ''
        if attr == 'href' and target.endswith('.ipynb'): return f'href="{target[:-6]}.html{anchor}"'
        return f'{attr}="../{target}{anchor}"'
    return _LINK.sub(repl, page)

def render(path:Path, exporter:HTMLExporter)->tuple[str, nbformat.NotebookNode]:
    "HTML of one notebook (outputs as stored) and the notebook itself."
    nb = nbformat.read(path, as_version=4)
    title, _ = title_and_summary(nb)
    page, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title or path.stem, 'path': str(path.parent)}})
    return fix_links(page), nb

def index_page(entries)->str:
    "docs/index.html: one list per section, each notebook with its title and summary."
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8"><title>midol notebooks</title>',
             '<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}li{margin:.4em 0}'
             'code{background:#f3f3f3}</style></head><body>',
             '<h1>midol: the notebooks</h1><p>Static copies of the notebooks with their stored outputs, made by '
             '<code>make docs</code> (<code>jupyter nbconvert</code>; nothing was re-executed).</p>']
    for section, items in entries.items():
        parts.append(f'<h2>{html.escape(SECTIONS[section])}</h2><ul>')
        for href, stem, title, summary in items:
            parts.append(f'<li><a href="{href}"><code>{html.escape(stem)}</code>: {html.escape(title)}</a>'
                         + (f'<br><small>{html.escape(summary)}</small>' if summary else '') + '</li>')
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
            page, nb = render(path, exporter)
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
