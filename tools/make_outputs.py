"""Execute the notebooks of nbs/ and store their outputs in them, so that a reader sees every result without running
anything (`make outputs`). Concept and library notebooks run top to bottom (exercise cells marked `#| eval: false`
are left for the student); driver notebooks run under papermill with the parameters in `DRIVERS`, which point them at
the committed state they document (reference runs, committed figures and tables, benchmark JSON). Only the outputs
are written back: the cells, their sources and the parameters a reader sees stay as committed.

    python tools/make_outputs.py                      # every notebook
    python tools/make_outputs.py 02b_routing 05_figures --medmnist <folder of MedMNIST .npz files>
"""
import argparse, base64, copy, io, json, os, shlex, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
BIN = Path(sys.executable).parent
MAX_PNG = 200_000  # bytes: a larger image output is re-encoded smaller
MEDMNIST_LINK = ROOT / 'data' / 'medmnist'  # gitignored: the drivers see the user's MedMNIST folder under this name

# papermill parameters of each driver notebook: the committed state each one documents
DRIVERS = {
    '03_pretrain': dict(use_reference=True, out_dir='runs/reference-outputs/cpu-midol'),  # not runs/pretrain/cpu-midol, which make demo trains
    '04_evaluate': dict(committed=True),
    '05_figures': dict(committed=True),
    '06_reproduce': dict(committed=True),
    '06b_medmnist': dict(folder='data/medmnist', use_reference=True, pretrain_seeds=1,   # data/reference holds seed 0 only
                         fig_dir='runs/medmnist/figures-reference'),                  # figures/medmnist-cpu (3 seeds) stays as committed
    '07_bench': dict(),
}


def code_sources(nb:dict)->list: # the source of every code cell, in order
    "What a notebook computes: the text of its code cells (outputs and metadata left out)."
    return [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']


def committed_sources(path:Path, rev:str='HEAD')->list|None: # None: the file is not in `rev`
    "The code-cell sources of notebook `path` as committed in `rev`."
    r = subprocess.run(['git', 'show', f'{rev}:{path.relative_to(ROOT).as_posix()}'], cwd=ROOT, capture_output=True, text=True)
    return code_sources(json.loads(r.stdout)) if r.returncode == 0 else None


def shrink_png(b64:str, limit:int=MAX_PNG)->str:
    "Re-encode a base64 PNG as a palette PNG, halving its size until it fits in `limit` bytes."
    from PIL import Image
    data = base64.b64decode(b64)
    im = Image.open(io.BytesIO(data)).convert('RGB')
    while len(data) > limit:
        buf = io.BytesIO(); im.quantize(256).save(buf, 'PNG', optimize=True); data = buf.getvalue()
        if len(data) > limit: im = im.resize((im.width * 3 // 4, im.height * 3 // 4))
    return base64.b64encode(data).decode()


def tidy_outputs(outputs:list)->list:
    "Outputs as stored: no stderr (warnings a test provokes on purpose, kernel noise), PNGs within the budget, no counts."
    out = [o for o in copy.deepcopy(outputs) if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
    for o in out:
        o.pop('execution_count', None) if o.get('output_type') != 'execute_result' else o.update(execution_count=None)
        png = o.get('data', {}).get('image/png')
        if png and len(base64.b64decode(png)) > MAX_PNG: o['data']['image/png'] = shrink_png(png)
    return out


def copy_outputs(src:dict, executed:dict)->int: # how many cells got outputs
    "Write the outputs of `executed` into the matching code cells of `src` (papermill's injected cell is skipped)."
    ran = [c for c in executed['cells'] if c['cell_type'] == 'code' and 'injected-parameters' not in c.get('metadata', {}).get('tags', [])]
    mine = [c for c in src['cells'] if c['cell_type'] == 'code']
    if [''.join(c['source']) for c in ran] != [''.join(c['source']) for c in mine]:
        raise RuntimeError('the executed notebook does not have the same code cells as its source')
    for c, r in zip(mine, ran): c['outputs'], c['execution_count'] = tidy_outputs(r.get('outputs', [])), None
    return sum(bool(c['outputs']) for c in mine)


def skipped(cell:dict)->bool:
    "Cells left unexecuted: exercises for the reader (`#| eval: false`) and cells tagged skip-execution."
    return '#| eval: false' in ''.join(cell['source']) or 'skip-execution' in cell.get('metadata', {}).get('tags', [])


def run_concept(path:Path, timeout:int, env:dict)->dict:
    "Execute a notebook top to bottom in nbs/ (as JupyterLab's Run All does), skipping the exercise cells."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == 'code' and skipped(c): c.metadata.setdefault('tags', []).append('skip-execution')
    os.environ.update(env)
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(NBS)}}).execute()
    return json.loads(nbformat.writes(nb))


def run_driver(path:Path, params:dict, timeout:int, env:dict)->dict:
    "Execute a driver notebook under papermill with `params`, in nbs/."
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / path.name
        cmd = [str(BIN / 'papermill'), '-k', 'python3', '--cwd', str(NBS), '--execution-timeout', str(timeout),
               str(path), str(out)] + [a for k, v in params.items() for a in ('-p', k, str(v))]
        subprocess.run(cmd, check=True, env={**os.environ, **env})
        return json.loads(out.read_text())


def command_line(name:str)->str:
    "The command a reader can run to remake this notebook's outputs."
    params = ' '.join(f'-p {k} {shlex.quote(str(v))}' for k, v in DRIVERS.get(name, {}).items())
    return f'python tools/make_outputs.py {name}' + (f'  (papermill {params})' if params else '')


def make_outputs(name:str, timeout:int=1800)->tuple: # (cells with outputs, seconds)
    "Execute notebook `name` of nbs/ and store its outputs in it."
    path, t0 = NBS / f'{name}.ipynb', time.time()
    src = json.loads(path.read_text())
    env = {'MIDOL_OUTPUTS_COMMAND': command_line(name), 'PYTHONHASHSEED': '0'}
    executed = run_driver(path, DRIVERS[name], timeout, env) if name in DRIVERS else run_concept(path, timeout, env)
    n = copy_outputs(src, executed)
    path.write_text(json.dumps(src, indent=1, ensure_ascii=False) + '\n')
    subprocess.run([str(BIN / 'nbdev-clean'), '--fname', str(path)], cwd=ROOT, check=True)
    return n, time.time() - t0


def link_medmnist(folder:str|None):
    "Expose the user's MedMNIST folder as data/medmnist (gitignored), so no outside path lands in an output."
    if folder is None: return
    src = Path(folder).resolve()
    if not any(src.glob('*.npz')): sys.exit(f'--medmnist {folder}: no MedMNIST .npz file in that folder')
    if MEDMNIST_LINK.is_symlink(): MEDMNIST_LINK.unlink()
    elif MEDMNIST_LINK.exists(): return print(f'using the existing {MEDMNIST_LINK.relative_to(ROOT)}')
    MEDMNIST_LINK.symlink_to(src, target_is_directory=True)


def check_committed(names:list):
    "Refuse notebooks whose code cells differ from HEAD: outputs are stamped with the commit that made them."
    dirty = [n for n in names if committed_sources(NBS / f'{n}.ipynb') != code_sources(json.loads((NBS / f'{n}.ipynb').read_text()))]
    if dirty: sys.exit(f'commit these notebooks first (their code differs from HEAD, and outputs name the commit): {", ".join(dirty)}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('names', nargs='*', help='notebooks of nbs/ without .ipynb (default: all)')
    p.add_argument('--medmnist', help='folder of the MedMNIST .npz files (for 06b_medmnist)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds per cell')
    p.add_argument('--allow-dirty', action='store_true', help='execute notebooks whose code is not committed yet')
    p.add_argument('--drivers-re', action='store_true', help='print a regex of the driver notebooks (for nbdev-test) and stop')
    a = p.parse_args(argv)
    if a.drivers_re: return print('^(' + '|'.join(sorted(DRIVERS)) + r')\.ipynb$')
    names = a.names or sorted(q.stem for q in NBS.glob('*.ipynb'))
    if missing := [n for n in names if not (NBS / f'{n}.ipynb').is_file()]: sys.exit(f'no such notebook in nbs/: {missing}')
    if '06b_medmnist' in names and a.medmnist is None and not MEDMNIST_LINK.exists():
        sys.exit('06b_medmnist runs on MedMNIST files: pass --medmnist <folder of .npz files>')
    if {'02b_routing', '02d_model'} & set(names) and not (ROOT / 'runs/pretrain/cpu-midol/checkpoint.pt').is_file():
        sys.exit('02b_routing and 02d_model read a finished cpu run in their last cells: run `make demo` first')
    if not a.allow_dirty: check_committed(names)
    link_medmnist(a.medmnist)
    for n in names:
        cells, secs = make_outputs(n, a.timeout)
        print(f'{n}: {cells} cells with outputs ({secs:.0f} s)', flush=True)


if __name__ == '__main__': main()
