# Sphinx settings of the documentation site. `make docs` (tools/build_docs.py) stages the sources in a build folder
# (the notebooks with their nbdev directives stripped, the API pages, the index in reading order) and runs Sphinx with
# this folder as its configuration directory. Nothing here downloads: the theme, the search and MathJax are local.
import re
from fastcore.docments import docments

project = 'midol'
author = 'midol developers'
copyright = 'the midol developers; Apache-2.0'
html_title = 'midol'

extensions = [
    'myst_nb',                   # notebooks (stored outputs) and Markdown pages
    'sphinx.ext.autodoc',        # the API pages: signatures and docstrings of midol's exported names
    'sphinx.ext.mathjax',
    'sphinx-mathjax-offline',    # MathJax 3 copied into _static/mathjax and loaded from there, not from a CDN
]

# Notebooks: shown as committed, never executed.
nb_execution_mode = 'off'
nb_ipywidgets_js = {}            # no widget manager from a CDN: progress bars are dropped when the pages are staged
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3         # `[text](02b_routing.ipynb#sinkhorn-knopp)` links reach the heading
myst_dmath_double_inline = True

# API pages.
autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
autodoc_default_options = {'members': True, 'undoc-members': True}
autodoc_mock_imports = []
add_module_names = False
default_role = 'py:obj'          # `name` in a docstring links to its API entry when there is one

html_theme = 'sphinx_book_theme'
html_static_path = ['_static']
html_css_files = ['midol.css']
html_js_files = ['search-math.js']
html_theme_options = {
    'home_page_in_toc': True,
    'show_toc_level': 2,
    'use_download_button': True,
    'navigation_with_keys': False,
}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
suppress_warnings = ['mystnb.unknown_mime_type', 'myst.xref_missing', 'toc.not_included']
exclude_patterns = ['_build']


_MATH = re.compile(r'(?<![\\$])\$([^$\n]+?)\$')
def rst_text(text: str) -> str:
    "A comment or docstring line as reStructuredText: `$x$` as inline math; elsewhere `*`, `|` and a trailing `_` escaped."
    def plain(part):
        part = re.sub(r'(?<![`\\])([*|])', r'\\\1', part)
        return re.sub(r'(\w)_(?=\W|$)', r'\1\\_', part)
    parts = _MATH.split(text)          # even: text, odd: the LaTeX of a $...$ span
    return ''.join(plain(p) if i % 2 == 0 else f':math:`{p}`' for i, p in enumerate(parts))


def _type(anno) -> str:
    if anno is None or anno is getattr(__import__('inspect'), '_empty'): return ''
    return anno if isinstance(anno, str) else getattr(anno, '__name__', str(anno))


def parameter_table(obj) -> list:
    "nbdev's docments of `obj` (the comment beside each parameter) as an RST table: name, type, default, comment."
    try: params = docments(obj.__init__ if isinstance(obj, type) else obj, full=True)
    except Exception: return []
    empty = __import__('inspect')._empty
    rows = [(name, p) for name, p in params.items() if name not in ('self', 'cls')
            and (name != 'return' or p.get('docment'))]
    if not rows: return []
    lines = ['', '.. list-table:: Parameters', '   :header-rows: 1', '   :class: midol-params', '',
             '   * - name', '     - type', '     - default', '     - what it is']
    for name, p in rows:
        default = p.get('default', empty)
        lines += [f'   * - ``{name}``', f'     - ``{_type(p.get("anno", empty))}``' if _type(p.get('anno', empty)) else '     -',
                  f'     - ``{default!r}``' if default is not empty and name != 'return' else '     -',
                  f'     - {rst_text(p.get("docment") or "")}' if p.get('docment') else '     -']
    return lines + ['']


def add_docments(app, what, name, obj, options, lines):
    "autodoc hook: LaTeX of the docstring as math, then the parameter table of functions, methods and classes."
    lines[:] = [rst_text(l) for l in lines]
    if what in ('function', 'method', 'class'): lines.extend(parameter_table(obj))


def setup(app):
    app.set_html_assets_policy('always')   # MathJax on every page: the sidebar's titles carry formulas on all of them
    app.connect('autodoc-process-docstring', add_docments)
