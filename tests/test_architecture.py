"""The layering of the library, enforced: each module imports only from the modules before it, imports sit at the
top of a module (optional dependencies aside), and no function grows past 50 lines or 8 parameters."""
import ast, json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The reading order of the library: a module may import only from modules earlier in this list.
LAYERS = ['information', 'synthmed', 'data', 'views', 'loaders', 'downstream', 'registry', 'dist', 'routing', 'dino',
          'model', 'metrics', 'runs', 'schedules', 'batches', 'pretrain',
          'encoders', 'finetune', 'probes', 'floors', 'evaluate', 'tasks', 'tables', 'figures', 'reproduce', 'medmnist', 'bench', 'testing', 'exercises']
# Imports allowed inside a function, each with its reason.
OPTIONAL = {'tutel': 'not on PyPI: an optional MoE backend',
            'psutil': 'not a dependency: the benchmark falls back to the resource module',
            'umap': 'importing it compiles numba code for about a minute: loaded only when a UMAP panel is drawn'}
MAX_LINES, MAX_PARAMS = 50, 8
# Modules at the bottom of the import graph: what every long job needs (files that survive a kill, the per-step
# schedules), importing nothing from the rest of midol so that evaluation and training alike can take them.
FLOOR = {'runs', 'schedules'}
# The modules allowed to import `pretrain`: the ones that drive or look at pretraining runs. `reproduce` and `medmnist`
# pretrain (and take a preset's reference runs), `bench` times pretrain's own step functions, and `figures` rebuilds a
# run's model from its settings (`build_model`, `PRESETS`) to draw what the teacher does. The evaluation (encoders,
# finetune, probes, floors, evaluate, tasks, tables) must not: it reads encoders, not the training loop.
TRAINING = {'pretrain', 'reproduce', 'medmnist', 'bench', 'figures'}
CLI = {'main'}  # command-line entry points: their parameters are the options


def modules():
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted((ROOT / 'midol').glob('*.py'))
            if p.stem not in ('__init__', '_modidx')}


def midol_imports(tree):
    "(line, imported midol module) for every import of a midol module in `tree`."
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            mod = n.module or ''
            if n.level: yield from ((n.lineno, m) for m in ([mod.split('.')[0]] if mod else [a.name for a in n.names]))
            elif mod.startswith('midol.'): yield n.lineno, mod.split('.')[1]
        elif isinstance(n, ast.Import):
            yield from ((n.lineno, a.name.split('.')[1]) for a in n.names if a.name.startswith('midol.'))


def functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def params(f):
    a = f.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ('self', 'cls')]


def test_every_module_has_a_layer():
    assert sorted(modules()) == sorted(LAYERS), "add a new module to LAYERS at its place in the reading order"


def test_imports_follow_the_layers():
    bad = [f"midol/{m}.py:{line} imports midol.{dep}, which comes after it" for m, t in modules().items()
           for line, dep in midol_imports(t) if dep in LAYERS and LAYERS.index(dep) >= LAYERS.index(m)]
    assert not bad, '\n'.join(bad)


def test_the_floor_imports_nothing_from_midol():
    bad = [f"midol/{m}.py:{line} imports midol.{dep}" for m, t in modules().items() if m in FLOOR for line, dep in midol_imports(t)]
    assert not bad, "runs and schedules sit at the bottom of the library:\n" + '\n'.join(bad)


def test_only_training_imports_pretrain():
    bad = [f"midol/{m}.py:{line} imports midol.pretrain" for m, t in modules().items() if m not in TRAINING
           for line, dep in midol_imports(t) if dep == 'pretrain']
    assert not bad, "take schedules from midol.schedules and files from midol.runs, not the training loop:\n" + '\n'.join(bad)


def test_the_pretrain_check_catches_an_evaluation_module():
    "The check above can fail: an evaluation module that imports from pretrain is outside TRAINING."
    assert 'evaluate' not in TRAINING and [d for _, d in midol_imports(ast.parse('from .pretrain import cosine_schedule'))] == ['pretrain']


def test_no_import_inside_a_function_except_optional_dependencies():
    bad = [f"midol/{m}.py:{n.lineno} {f.name}: {ast.unparse(n)}" for m, t in modules().items() for f in functions(t)
           for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))
           and ((n.module or '') if isinstance(n, ast.ImportFrom) else n.names[0].name).split('.')[0] not in OPTIONAL]
    assert not bad, "move these imports to the module's imports cell:\n" + '\n'.join(bad)


def test_functions_are_short_and_take_few_parameters():
    long = [f"midol/{m}.py:{f.lineno} {f.name}: {f.end_lineno - f.lineno + 1} lines" for m, t in modules().items()
            for f in functions(t) if f.end_lineno - f.lineno + 1 > MAX_LINES]
    wide = [f"midol/{m}.py:{f.lineno} {f.name}: {len(params(f))} parameters" for m, t in modules().items()
            for f in functions(t) if len(params(f)) > MAX_PARAMS and f.name not in CLI]
    assert not long + wide, '\n'.join(long + wide)


def test_one_notebook_per_module_in_layer_order():
    "Each module is exported by exactly one notebook, and the notebooks sort in the order of LAYERS."
    owner = {}
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            s = ''.join(c['source'])
            if c['cell_type'] == 'code' and s.startswith('#| default_exp '):
                owner.setdefault(s.split()[2], []).append(nb.name)
    assert all(len(v) == 1 for v in owner.values()), owner
    assert sorted(owner, key=lambda m: owner[m][0]) == LAYERS


@pytest.mark.parametrize('bad', ['from .pretrain import x', 'from midol.figures import y', 'import midol.bench'])
def test_the_layer_check_catches_a_backward_import(bad):
    "The check above can fail: an import of a later module from `model` is reported."
    deps = [d for _, d in midol_imports(ast.parse(bad))]
    assert deps and all(LAYERS.index(d) > LAYERS.index('model') for d in deps)
