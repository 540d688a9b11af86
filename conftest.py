"""pytest settings for the notebooks: with `--nbval`, every notebook of nbs/ except the drivers is re-run and its
stored text outputs compared with fresh ones (`make test`), so a committed output cannot go stale silently.
Cells that nbdev-test skips are skipped here too (`#| slow`, `#| eval: false`, the skip-execution tag); the drivers
(tools/make_outputs.py's DRIVERS) show the committed runs they document, and their commit stamps are checked in
tests/test_outputs.py instead."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location('make_outputs', ROOT / 'tools' / 'make_outputs.py')
make_outputs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(make_outputs)
NOT_COMPARED = ('stderr',)  # warnings and progress bars: their text varies from run to run


def pytest_ignore_collect(collection_path, config):
    "Leave the driver notebooks (and checkpoints) out of --nbval."
    p = Path(collection_path)
    if p.suffix == '.ipynb': return p.stem in make_outputs.DRIVERS or '.ipynb_checkpoints' in p.parts or None


def pytest_collection_modifyitems(config, items):
    "Skip the cells nbdev-test skips; compare no stderr."
    for item in items:
        cell = getattr(item, 'cell', None)
        if cell is None or not hasattr(item, 'options'): continue
        src = ''.join(cell.get('source', ''))
        if '#| slow' in src or '#| eval: false' in src or 'skip-execution' in cell.get('metadata', {}).get('tags', []):
            item.options['skip'] = True
        if cell.get('outputs') and cell.get('execution_count') is None: cell['execution_count'] = 0  # nbdev-clean drops the counts
        item.parent.skip_compare = tuple(dict.fromkeys(item.parent.skip_compare + NOT_COMPARED))
